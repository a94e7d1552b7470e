"""Bad input through the CLI: a one-line error, a non-zero exit and no partial outputs."""

import hashlib

import numpy as np
import pytest
from PIL import Image

from foveal.cli.main import main

FAST = ["--model", "mlp", "--epochs", "1", "--device", "cpu", "--no-progress"]


def image_folder(root, classes=("a", "b"), n=3):
    for c in classes:
        (root / c).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            Image.fromarray(np.full((16, 16, 3), 40 * i, np.uint8)).save(root / c / f"{i}.png")
    return root


def run(args, capsys):
    code = main([str(a) for a in args])
    return code, capsys.readouterr().err


def assert_one_line_error(code, err, *needles):
    assert code == 2, err
    assert err.startswith("foveal: error: ") and err.count("\n") == 1, err
    for needle in needles:
        assert needle in err, err


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("FOVEAL_CACHE", str(tmp_path / "cache"))


def split_folder(tmp_path):
    image_folder(tmp_path / "d" / "train")
    image_folder(tmp_path / "d" / "test")
    return tmp_path / "d"


@pytest.mark.parametrize("damage", ["truncated", "garbage"])
def test_corrupt_image(tmp_path, capsys, damage):
    data = split_folder(tmp_path)
    bad = data / "train" / "b" / "1.png"
    raw = bad.read_bytes()
    bad.write_bytes(raw[: len(raw) // 3] if damage == "truncated" else b"\x89PNG garbage")
    code, err = run(["train", "--data", data, *FAST, "--out", tmp_path / "run"], capsys)
    assert_one_line_error(code, err, "1.png: expected a readable image", "--skip-corrupt")
    assert not (tmp_path / "run").exists()


def test_corrupt_image_skipped_with_flag(tmp_path, capsys):
    data = split_folder(tmp_path)
    (data / "train" / "b" / "1.png").write_bytes(b"garbage")
    with pytest.warns(UserWarning, match="skipping unreadable image"):
        code, err = run(["train", "--data", data, *FAST, "--skip-corrupt", "--out",
                         tmp_path / "run"], capsys)
    assert code == 0, err


def test_directory_with_no_class_folders(tmp_path, capsys):
    (tmp_path / "d" / "train").mkdir(parents=True)
    (tmp_path / "d" / "test").mkdir()
    code, err = run(["train", "--data", tmp_path / "d", *FAST, "--out", tmp_path / "run"],
                    capsys)
    assert_one_line_error(code, err, "one sub-folder per class", "no sub-folders")
    assert not (tmp_path / "run").exists()


def test_empty_class(tmp_path, capsys):
    data = split_folder(tmp_path)
    (data / "train" / "c").mkdir()
    code, err = run(["train", "--data", data, *FAST, "--out", tmp_path / "run"], capsys)
    assert_one_line_error(code, err, "is empty: expected images", "train/c")


def test_non_image_file(tmp_path, capsys):
    data = split_folder(tmp_path)
    (data / "test" / "a" / "labels.csv").write_text("x,y\n")
    code, err = run(["train", "--data", data, *FAST, "--out", tmp_path / "run"], capsys)
    assert_one_line_error(code, err, "expected image files", "labels.csv")


def test_checksum_mismatch_on_download(tmp_path, capsys):
    import http.server
    import threading

    (tmp_path / "www").mkdir()
    (tmp_path / "www" / "train-images-idx3-ubyte.gz").write_bytes(b"tampered")

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a, **k):
            super().__init__(*a, directory=str(tmp_path / "www"), **k)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/"
        code, err = run(["download", "mnist", "--root", tmp_path / "data", "--url", url,
                         "--no-progress"], capsys)
    finally:
        server.shutdown()
        server.server_close()
    expected = hashlib.md5(b"tampered").hexdigest()
    assert_one_line_error(code, err, "expected md5 f68b3c2dcbeaaa9fbdd348bbdeb94873",
                          f"got {expected}")
    assert not list((tmp_path / "data").glob("*"))  # neither the file nor its .part


def test_predict_on_a_non_image(tmp_path, capsys):
    assert main(["demo", "--epochs", "1", "--out", str(tmp_path / "run"), "--no-progress"]) == 0
    capsys.readouterr()
    (tmp_path / "x.png").write_text("not an image")
    code, err = run(["predict", tmp_path / "run", tmp_path / "x.png"], capsys)
    assert_one_line_error(code, err, "x.png: expected a readable image")
