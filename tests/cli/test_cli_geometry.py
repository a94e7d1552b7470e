"""`foveal geometry stitch` and `foveal sfm` from the command line: outputs and one-line errors."""

import json

import numpy as np
import pytest
from PIL import Image
from scipy.ndimage import gaussian_filter

from foveal.cli.main import main


def textured(rng, shape):
    """A smooth random texture with blobs SIFT can find."""
    noise = gaussian_filter(rng.standard_normal(shape), 2.0)
    return np.clip(128 + 60 * noise / noise.std(), 0, 255).astype(np.uint8)


def test_stitch_two_shifted_crops_recovers_the_shift(tmp_path, capsys):
    """Closed form: two crops of one texture 60 px apart are related by a pure translation."""
    scene = textured(np.random.default_rng(0), (200, 320))
    Image.fromarray(scene[:, :240]).save(tmp_path / "a.png")
    Image.fromarray(scene[:, 60:300]).save(tmp_path / "b.png")
    code = main(["geometry", "stitch", str(tmp_path / "a.png"), str(tmp_path / "b.png"),
                 "--out", str(tmp_path / "out")])
    assert code == 0 and "report" in capsys.readouterr().out
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    H = np.array(metrics["homography_1_to_2"])
    np.testing.assert_allclose(H / H[2, 2], [[1, 0, -60], [0, 1, 0], [0, 0, 1]], atol=0.05)
    assert metrics["panorama_size"] == [200, 300]
    assert (tmp_path / "out" / "report.html").is_file()


@pytest.mark.parametrize("command", [["geometry", "stitch", "--help"], ["sfm", "--help"]])
def test_geometry_commands_have_help(command, capsys):
    with pytest.raises(SystemExit) as info:
        main(command)
    assert info.value.code == 0 and "usage: foveal" in capsys.readouterr().out


def test_stitch_of_an_unreadable_image_is_a_one_line_error(tmp_path, capsys):
    (tmp_path / "bad.png").write_bytes(b"not an image")
    code = main(["geometry", "stitch", str(tmp_path / "bad.png"), str(tmp_path / "bad.png")])
    err = capsys.readouterr().err
    assert code == 2 and "bad.png" in err and err.count("\n") == 1
def test_sfm_with_a_missing_intrinsics_file_is_a_one_line_error(tmp_path, capsys):
    rng = np.random.default_rng(1)
    for i in range(2):
        Image.fromarray(textured(rng, (60, 80))).save(tmp_path / f"{i}.png")
    code = main(["sfm", str(tmp_path), "--intrinsics", str(tmp_path / "K.txt"),
                 "--out", str(tmp_path / "out"), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("foveal: error: ") and err.count("\n") == 1
    assert "K.txt" in err


