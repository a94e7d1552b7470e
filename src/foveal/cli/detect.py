"""`foveal detect train | eval | predict`: the Faster R-CNN detector.

A thin layer over :mod:`foveal.detection.train`: ``train`` writes a run folder (checkpoints,
metrics, report), ``eval`` runs the COCO evaluation of a trained model on a dataset, ``predict``
draws or prints the detections in image files.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from foveal.cli.config_file import read_config_file
from foveal.errors import DataError

# train options that map onto DetectorTrainConfig fields: (flag, field, type, help)
_TRAIN_OPTIONS: list[tuple[str, str, Any, str]] = [
    ("--data", "data", str, "shapes (built in), a COCO data folder or a COCO JSON file"),
    ("--epochs", "epochs", int, "number of epochs"),
    ("--batch-size", "batch_size", int, "images per step"),
    ("--lr", "lr", float, "peak learning rate"),
    ("--optimizer", "optimizer", str, "adamw or sgd"),
    ("--weight-decay", "weight_decay", float, "weight decay"),
    ("--warmup-steps", "warmup_steps", int, "linear warmup steps"),
    ("--image-size", "image_size", int, "side images are resized to"),
    ("--train-size", "train_size", int, "shapes: number of training images"),
    ("--val-size", "val_size", int, "shapes: number of held-out images"),
    ("--eval-every", "eval_every", int, "evaluate every N epochs (0: last only)"),
    ("--seed", "seed", int, "random seed"),
]


def _config_from_args(args: argparse.Namespace) -> Any:
    from foveal.detection.train import DetectorTrainConfig

    changes: dict[str, Any] = {}
    if args.config is not None:
        changes.update(read_config_file(args.config))
    changes.update({dest: getattr(args, dest) for _, dest, _, _ in _TRAIN_OPTIONS
                    if getattr(args, dest) is not None})
    return DetectorTrainConfig.from_json({**DetectorTrainConfig().to_json(), **changes})


def _print_metrics(metrics: dict[str, Any]) -> None:
    print(f"AP@0.5         {metrics['ap50']:.4f}")
    print(f"AP@[.5:.95]    {metrics['ap']:.4f}")


def cmd_train(args: argparse.Namespace) -> int:
    import torch

    from foveal.detection.train import resume_config, train_detector

    if args.threads is not None:
        torch.set_num_threads(args.threads)
    if args.resume is not None:
        config = resume_config(args.resume)
        run_dir = args.resume
    else:
        config = _config_from_args(args)
        run_dir = args.out or Path("runs") / f"{time.strftime('%Y%m%d-%H%M%S')}-detect"
    args.out = run_dir  # for the resume hint if interrupted
    try:
        result = train_detector(config, run_dir, resume=args.resume is not None,
                                progress=not args.no_progress)
    except KeyboardInterrupt:
        print(f"foveal: interrupted; continue with: foveal detect train --resume {run_dir}",
              file=sys.stderr)
        return 130
    m = result.metrics
    _print_metrics(m)
    print(f"trained        {m['epochs']} epochs, {m['steps']} steps in {m['wall_time_s']:.1f} s "
          f"({m['images_per_s']:.1f} img/s)")
    print(f"run folder     {run_dir}")
    print(f"report         {Path(run_dir) / 'report.html'}")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from foveal.atomic import atomic_write_json
    from foveal.detection.train import (
        detect_batches,
        evaluate_detector,
        load_detection_data,
        load_detector,
        resume_config,
    )
    from foveal.report.detector import write_detector_report

    model, spec = load_detector(args.model)
    run = Path(args.model)
    trained = resume_config(run) if (run / "checkpoint.safetensors").is_file() else None
    data_source = args.data or (trained.data if trained else "shapes")
    val_size = args.val_size or (trained.val_size if trained else 500)
    data = load_detection_data(data_source, "all", image_size=spec.image_size,
                               val_size=val_size, progress=not args.no_progress)
    if data.classes != spec.classes:
        raise DataError(f"expected the model's {len(spec.classes)} categories "
                        f"{spec.classes[:4]}…, got {len(data.classes)}: {data.classes[:4]}…")
    detections = detect_batches(model, data)
    evaluation = evaluate_detector(model, data, detections=detections)
    out = args.out or Path("runs") / f"{time.strftime('%Y%m%d-%H%M%S')}-detect-eval"
    stats = [float(s) for s in evaluation.stats]
    metrics = {"ap50": stats[1], "ap": stats[0], "coco_stats": stats,
               "coco_evaluation": evaluation.to_dict(), "images": len(data),
               "dataset": str(data_source), "model": str(args.model)}
    Path(out).mkdir(parents=True, exist_ok=True)
    atomic_write_json(Path(out) / "metrics.json", metrics)
    from foveal.detection.coco_eval import STAT_NAMES

    metrics["coco_stat_names"] = list(STAT_NAMES)
    write_detector_report(out, metrics=metrics, history=[], config={"model": str(args.model),
                          "data": str(data_source)}, evaluation=evaluation, data=data,
                          detections=detections, title=f"Faster R-CNN on {data.name}")
    print(evaluation.summary())
    _print_metrics(metrics)
    print(f"report         {Path(out) / 'report.html'}")
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from foveal.atomic import atomic_write_png
    from foveal.data.image_file import read_image_file
    from foveal.detection.train import load_detector, predict
    from foveal.report.detector import draw_detections

    model, spec = load_detector(args.model)
    images = [read_image_file(p, op="foveal detect predict") for p in args.images]
    detections = predict(model, images, image_size=spec.image_size,
                         score_threshold=args.score_threshold)
    rows = []
    for path, det in zip(args.images, detections, strict=True):
        rows.append({"image": str(path), "detections": [
            {"class": spec.classes[int(label) - 1], "score": round(float(score), 4),
             "box": [round(float(v), 2) for v in box]}
            for box, label, score in zip(det["boxes"], det["labels"], det["scores"],
                                         strict=True)]})
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        for path, image, det in zip(args.images, images, detections, strict=True):
            drawn = draw_detections(image, det["boxes"].numpy(), det["labels"].tolist(),
                                    det["scores"].numpy(), spec.classes)
            atomic_write_png(args.out / f"{Path(path).stem}.png", drawn)
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        for row in rows:
            found = ", ".join(f"{d['class']} {d['score']:.2f} {d['box']}"
                              for d in row["detections"]) or "nothing"
            print(f"{row['image']}: {found}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add this module's sub-command(s) to the ``foveal`` parser."""
    p = sub.add_parser("detect", help="train, evaluate and run the Faster R-CNN detector",
                       description="Faster R-CNN with a feature pyramid, trained from scratch.")
    det = p.add_subparsers(dest="detect_command", metavar="ACTION", required=True)

    q = det.add_parser("train", help="train a detector (default: on synthetic shapes)",
                       description="Train Faster R-CNN + FPN and write a run folder with "
                       "checkpoints, metrics.json and report.html.")
    for flag, dest, type_, help_ in _TRAIN_OPTIONS:
        q.add_argument(flag, dest=dest, type=type_, default=None, help=help_)
    q.add_argument("--config", type=Path, default=None,
                   help="JSON file of settings (e.g. {\"model\": {\"fpn_channels\": 32}})")
    q.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    q.add_argument("--out", type=Path, default=None, help="run folder (default: runs/<time>)")
    q.add_argument("--resume", type=Path, default=None, metavar="RUN_DIR",
                   help="continue an interrupted run from its last checkpoint")
    q.add_argument("--no-progress", action="store_true", help="hide progress bars")
    q.set_defaults(func=cmd_train)

    q = det.add_parser("eval", help="COCO evaluation of a trained detector",
                       description="Evaluate a detector on a dataset's validation split (the "
                       "whole file for a single JSON); writes metrics.json and report.html.")
    q.add_argument("model", type=Path, metavar="RUN_OR_CKPT",
                   help="run folder, model.safetensors or checkpoint")
    q.add_argument("--data", default=None,
                   help="shapes, COCO folder or JSON (default: the run's training data)")
    q.add_argument("--val-size", type=int, default=None,
                   help="shapes: held-out images (default: the run's)")
    q.add_argument("--out", type=Path, default=None, help="output folder")
    q.add_argument("--no-progress", action="store_true", help="hide progress bars")
    q.set_defaults(func=cmd_eval)

    q = det.add_parser("predict", help="detect objects in image files",
                       description="Print (or draw) the detections in each image.")
    q.add_argument("model", type=Path, metavar="RUN_OR_CKPT",
                   help="run folder, model.safetensors or checkpoint")
    q.add_argument("images", nargs="+", type=Path, help="image files")
    q.add_argument("--score-threshold", type=float, default=0.5, help="minimum score")
    q.add_argument("--out", type=Path, default=None, help="folder for the drawn images")
    q.add_argument("--json", action="store_true", help="print JSON")
    q.set_defaults(func=cmd_predict)
