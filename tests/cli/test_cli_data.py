"""`foveal data shapes`, run in-process through main().

Oracle: the library call it wraps (write_shapes_dataset / generate_shapes with the same
arguments) and PIL for the written images.
"""

import json

import numpy as np
import pytest
from PIL import Image

from foveal.cli.main import main
from foveal.data.shapes import generate_shapes


def run_cli(args, capsys):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def test_data_shapes_writes_the_library_dataset(tmp_path, capsys):
    out = tmp_path / "shapes"
    code, stdout, _ = run_cli(["data", "shapes", "--out", out, "--n", 3, "--seed", 4,
                               "--image-size", 64, "--max-objects", 2, "--no-progress"], capsys)
    assert code == 0
    images, gt = generate_shapes(3, seed=4, image_size=64, max_objects=2)
    assert json.loads((out / "annotations.json").read_text()) == json.loads(json.dumps(gt))
    for record, image in zip(gt["images"], images, strict=True):
        with Image.open(out / "images" / record["file_name"]) as png:
            np.testing.assert_array_equal(np.asarray(png), image)
    assert str(out / "annotations.json") in stdout
    assert f"3 images (64×64) with {len(gt['annotations'])} objects" in stdout


def test_data_shapes_progress_bar_goes_to_stderr(tmp_path, capsys):
    code, stdout, err = run_cli(["data", "shapes", "--out", tmp_path, "--n", 2], capsys)
    assert code == 0
    assert "shapes: writing" in err and "/2" in err
    assert "shapes: writing" not in stdout


@pytest.mark.parametrize("args, message", [
    (["--n", "0"], "expected n >= 1, got 0"),
    (["--n", "2", "--image-size", "16"], "expected image_size >= 32, got 16"),
    (["--n", "2", "--min-objects", "3", "--max-objects", "2"], "expected max_objects in"),
])
def test_data_shapes_bad_arguments_exit_2_with_one_line(tmp_path, capsys, args, message):
    code, _, err = run_cli(["data", "shapes", "--out", tmp_path / "x", *args, "--no-progress"],
                           capsys)
    assert code == 2
    assert err.strip().count("\n") == 0 and err.startswith("foveal: error: ")
    assert message in err
    assert not (tmp_path / "x").exists()  # validated before anything is written


@pytest.mark.parametrize("command", [["data"], ["data", "shapes"]])
def test_data_commands_have_help(command, capsys):
    with pytest.raises(SystemExit) as info:
        main([*command, "--help"])
    assert info.value.code == 0
    assert "shapes" in capsys.readouterr().out


def test_data_shapes_requires_out_and_n(capsys):
    with pytest.raises(SystemExit) as info:
        main(["data", "shapes", "--n", "2"])
    assert info.value.code == 2
    assert "--out" in capsys.readouterr().err
