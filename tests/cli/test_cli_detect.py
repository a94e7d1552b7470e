"""Tests for ``foveal detect`` through :func:`foveal.cli.main.main`.

Oracle: the library functions the commands wrap (a run folder that load_detector reads, the
metrics.json the evaluation writes, the JSON predict prints) and the one-line error contract
(``foveal: error: …`` and exit status 2).
"""

import json

from PIL import Image

from foveal.cli.main import main
from foveal.data.shapes import write_shapes_dataset

TINY = {"image_size": 64, "train_size": 6, "val_size": 3, "epochs": 1, "batch_size": 3,
        "warmup_steps": 1, "eval_batch_size": 3,
        "model": {"widths": [8, 8, 16, 16], "fpn_channels": 8, "representation_size": 16,
                  "anchor_sizes": [[8], [16], [32], [64], [128]],
                  "rpn": {"pre_nms_top_n_train": 50, "post_nms_top_n_train": 30,
                          "pre_nms_top_n_test": 50, "post_nms_top_n_test": 20},
                  "roi_heads": {"batch_size_per_image": 16}}}


def test_train_eval_predict(tmp_path, capsys):
    config = tmp_path / "tiny.json"
    config.write_text(json.dumps(TINY))
    run = tmp_path / "run"
    assert main(["detect", "train", "--config", str(config), "--out", str(run),
                 "--no-progress", "--seed", "3"]) == 0
    assert "AP@0.5" in capsys.readouterr().out
    assert json.loads((run / "config.json").read_text())["seed"] == 3
    assert (run / "report.html").is_file() and (run / "model.safetensors").is_file()

    assert main(["detect", "eval", str(run), "--out", str(tmp_path / "eval"),
                 "--no-progress"]) == 0
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert metrics["images"] == 3 and len(metrics["coco_stats"]) == 12
    capsys.readouterr()

    ds = write_shapes_dataset(tmp_path / "ds", 2, image_size=64).parent
    images = sorted((ds / "images").glob("*.png"))
    assert main(["detect", "predict", str(run / "model.safetensors"), *map(str, images),
                 "--score-threshold", "0", "--json", "--out", str(tmp_path / "drawn")]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["image"] for r in rows] == [str(p) for p in images]
    for row in rows:
        for det in row["detections"]:
            assert det["class"] and len(det["box"]) == 4 and 0 <= det["score"] <= 1
    drawn = sorted((tmp_path / "drawn").glob("*.png"))
    assert len(drawn) == 2 and Image.open(drawn[0]).size == (64, 64)


def test_bad_input_prints_one_line_errors(tmp_path, capsys):
    assert main(["detect", "eval", str(tmp_path / "nothing")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("foveal: error:") and "\n" not in err
    assert main(["detect", "train", "--data", str(tmp_path / "none"), "--out",
                 str(tmp_path / "r"), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert "no such file or folder" in err and "\n" not in err
    assert main(["detect", "train", "--epochs", "0", "--out", str(tmp_path / "r")]) == 2
    assert "expected epochs >= 1" in capsys.readouterr().err
    assert main(["detect", "train", "--resume", str(tmp_path / "r")]) == 2
    assert "foveal: error:" in capsys.readouterr().err


def test_train_and_eval_on_real_tiny_coco(tmp_path, tiny_coco_dir, capsys):
    # the real COCO layout (annotations/instances_{train,val}2017.json + image folders): only the
    # pipeline is checked here, one short epoch of a tiny model, not the accuracy
    config = tmp_path / "tiny.json"
    config.write_text(json.dumps({k: v for k, v in TINY.items()
                                  if k not in ("train_size", "val_size")}))
    run = tmp_path / "coco-run"
    assert main(["detect", "train", "--data", str(tiny_coco_dir), "--config", str(config),
                 "--out", str(run), "--no-progress"]) == 0, capsys.readouterr().err
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["val_images"] == 50 and len(metrics["coco_stats"]) == 12
    assert (run / "report.html").is_file()
