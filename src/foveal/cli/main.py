"""The ``foveal`` command line: a thin layer over the library.

Each sub-command parses its options, calls public functions a user could call from Python, and
prints a short summary. Errors in the input print one line, ``foveal: error: …``, and exit with
status 2; an interrupted run exits with 130 and says how to resume.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import foveal
from foveal.cli.config_file import read_config_file
from foveal.errors import ConfigError, FovealError

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

# train options that map one-to-one onto TrainConfig fields: (flag, field, type, help)
_TRAIN_OPTIONS: list[tuple[str, str, Any, str]] = [
    ("--data", "dataset", str, "dataset name (digits, mnist, cifar10) or image-folder path"),
    ("--data-root", "data_root", str, "where mnist/cifar10 files live (default: user cache)"),
    ("--model", "model", str, "model name (see: foveal models list)"),
    ("--epochs", "epochs", int, "number of epochs"),
    ("--batch-size", "batch_size", int, "training batch size"),
    ("--train-subset", "train_subset", int, "train on a class-balanced subset of N images"),
    ("--optimizer", "optimizer", str, "sgd, adam, adamw, rmsprop, adagrad or muon"),
    ("--lr", "lr", float, "peak learning rate (muon: of the Muon matrices)"),
    ("--adamw-lr", "adamw_lr", float, "muon: learning rate of the AdamW part (default: --lr)"),
    ("--momentum", "momentum", float, "SGD momentum"),
    ("--weight-decay", "weight_decay", float, "weight decay"),
    ("--lookahead-k", "lookahead_k", int, "wrap the optimizer in Lookahead with k steps (0: off)"),
    ("--lookahead-alpha", "lookahead_alpha", float, "Lookahead slow step size"),
    ("--schedule", "schedule", str, "cosine, linear, step, constant, multistep, exponential, "
     "inverse_sqrt, one_cycle or plateau"),
    ("--warmup-epochs", "warmup_epochs", float, "linear warmup length in epochs"),
    ("--final-lr-fraction", "final_lr_fraction", float,
     "final rate as a fraction of --lr (cosine, linear, exponential)"),
    ("--step-epochs", "step_epochs", int, "step schedule: epochs between decays"),
    ("--gamma", "gamma", float, "decay factor (step, multistep, plateau)"),
    ("--pct-start", "pct_start", float, "one_cycle: fraction of steps rising"),
    ("--plateau-patience", "plateau_patience", int, "plateau: epochs without improvement"),
    ("--grad-accum", "grad_accum", int, "accumulate gradients over N batches per step"),
    ("--label-smoothing", "label_smoothing", float, "label smoothing epsilon"),
    ("--l1", "l1", float, "L1 penalty weight (with --l2: elastic net)"),
    ("--l2", "l2", float, "L2 penalty weight added to the loss"),
    ("--max-norm", "max_norm", float, "max-norm constraint on each unit's weights"),
    ("--ema-decay", "ema_decay", float, "evaluate an EMA of the weights with this decay"),
    ("--grad-clip", "grad_clip", float, "clip the gradient norm to this value"),
    ("--crop-padding", "crop_padding", int, "random-crop padding in pixels (0: off)"),
    ("--cutout", "cutout", int, "cutout square side in pixels (0: off)"),
    ("--rand-augment", "rand_augment_ops", int, "RandAugment: ops per image N (0: off)"),
    ("--rand-augment-magnitude", "rand_augment_magnitude", int, "RandAugment: magnitude M"),
    ("--mixup", "mixup", float, "mixup Beta(alpha, alpha) (0: off)"),
    ("--cutmix", "cutmix", float, "CutMix Beta(alpha, alpha) (0: off)"),
    ("--mix-prob", "mix_prob", float, "fraction of batches mixed"),
    ("--init", "init", str, "default, xavier_uniform, xavier_normal, kaiming_uniform, "
     "kaiming_normal, lecun_uniform or lecun_normal"),
    ("--init-from", "init_from", str, "start from the weights of a model file or run folder"),
    ("--backbone-lr-scale", "backbone_lr_scale", float,
     "fine-tuning: the backbone's rate as a fraction of --lr"),
    ("--device", "device", str, "auto, cpu, cuda or mps"),
    ("--engine", "engine", str, "torch, or scratch: the NumPy engine (small_cnn, mlp)"),
    ("--seed", "seed", int, "random seed"),
    ("--checkpoint-every", "checkpoint_every", int, "also checkpoint every N steps"),
]
_TRAIN_FLAGS: list[tuple[str, str, str]] = [
    ("--nesterov", "nesterov", "Nesterov momentum for SGD"),
    ("--flip", "flip", "random horizontal flips"),
    ("--alternating-flip", "alternating_flip", "airbench's alternating flips"),
    ("--decay-norm-and-bias", "decay_norm_and_bias", "weight decay on biases and norms too"),
    ("--zero-init-residual", "zero_init_residual", "γ = 0 in each residual branch's last BN"),
    ("--freeze-backbone", "freeze_backbone", "train the classifier head only"),
    ("--tta-flip", "tta_flip", "average each test image's logits with its mirror's"),
    ("--bf16", "bf16", "bfloat16 autocast on CUDA"),
    ("--channels-last", "channels_last", "channels-last memory format"),
    ("--compile", "compile", "torch.compile the model"),
    ("--deterministic", "deterministic", "deterministic kernels"),
    ("--download", "download", "download mnist/cifar10 if missing"),
    ("--skip-corrupt", "skip_corrupt", "skip unreadable images with a warning"),
]


def _add_train_options(p: argparse.ArgumentParser) -> None:
    from foveal.training.presets import PRESETS

    p.add_argument("--preset", default=None, help=f"start from a recipe: {', '.join(PRESETS)}")
    p.add_argument("--config", type=Path, default=None, help="JSON file of config values")
    for flag, dest, type_, help_ in _TRAIN_OPTIONS:
        p.add_argument(flag, dest=dest, type=type_, default=None, help=help_)
    p.add_argument("--width", type=int, default=None, help="resnet9 base width (64 original)")
    p.add_argument("--model-option", dest="model_option", action="append", default=None,
                   metavar="KEY=VALUE", help="a model option, VALUE as JSON (e.g. drop_path=0.1);"
                   " repeatable")
    p.add_argument("--milestones", type=float, nargs="+", default=None,
                   help="multistep: decay points as fractions of the post-warmup steps")
    p.add_argument("--color-jitter", type=float, nargs="+", default=None, metavar="S",
                   help="colour jitter: one strength for brightness, contrast and saturation, "
                   "or four values with hue")
    p.add_argument("--head", nargs="+", default=None,
                   help="module name(s) of the classifier head (default: the last Linear)")
    for flag, dest, help_ in _TRAIN_FLAGS:
        p.add_argument(flag, dest=dest, action=argparse.BooleanOptionalAction, default=None,
                       help=help_)
    p.add_argument("--out", type=Path, default=None, help="run folder (default: runs/<name>)")
    p.add_argument("--resume", type=Path, default=None, metavar="RUN_DIR",
                   help="continue an interrupted run from its last checkpoint")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")


def _config_from_args(args: argparse.Namespace) -> Any:
    from foveal.training.config import TrainConfig
    from foveal.training.presets import preset

    config = preset(args.preset) if args.preset else TrainConfig()
    changes: dict[str, Any] = {}
    if args.config is not None:
        changes.update(read_config_file(args.config))
    dests = [d for _, d, _, _ in _TRAIN_OPTIONS] + [d for _, d, _ in _TRAIN_FLAGS]
    changes.update({d: getattr(args, d) for d in dests if getattr(args, d) is not None})
    for name in ("milestones", "head"):
        if getattr(args, name) is not None:
            changes[name] = getattr(args, name)
    if args.color_jitter is not None:
        changes["color_jitter"] = _color_jitter(args.color_jitter)
    options = changes.get("model_options", config.model_options)
    if "model" in changes and changes["model"] != config.model and "model_options" not in changes:
        options = {}
    if args.width is not None:
        options = {**options, "width": args.width}
    options = {**options, **_model_options(args.model_option or [])}
    if options != config.model_options:
        changes["model_options"] = options
    return config.replace(**changes)


def _color_jitter(values: list[float]) -> list[float]:
    if len(values) == 1:
        return [values[0]] * 3 + [0.0]
    if len(values) == 4:
        return list(values)
    raise ConfigError(
        f"--color-jitter expects 1 value (brightness = contrast = saturation) or 4 "
        f"(with hue), got {len(values)}"
    )


def _model_options(items: list[str]) -> dict[str, Any]:
    """``KEY=VALUE`` pairs with JSON values (bare words are strings)."""
    options: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key.isidentifier():
            raise ConfigError(f"--model-option expects KEY=VALUE, got {item!r}")
        try:
            options[key] = json.loads(text)
        except json.JSONDecodeError:
            options[key] = text
    return options


def _default_run_dir(config: Any, label: str | None) -> Path:
    name = label or f"{config.model}-{Path(config.dataset).name or 'data'}"
    return Path("runs") / f"{time.strftime('%Y%m%d-%H%M%S')}-{name}"


def _print_summary(result: Any) -> None:
    m = result.metrics
    print(f"test accuracy  {100 * m['test_accuracy']:.2f}%  (loss {m['test_loss']:.4f})")
    print(f"trained        {m['epochs']} epochs, {m['steps']} steps in {m['wall_time_s']:.1f} s "
          f"({m['images_per_s']:,.0f} img/s on {m['device']})")
    print(f"run folder     {result.run_dir}")
    print(f"report         {result.run_dir / 'report.html'}")


def cmd_train(args: argparse.Namespace) -> int:
    from foveal.training.trainer import resume_config, train

    if args.resume is not None:
        config = resume_config(args.resume)
        result = train(config, args.resume, resume=True, progress=not args.no_progress)
    else:
        config = _config_from_args(args)
        args.out = args.out or _default_run_dir(config, args.preset)
        result = train(config, args.out, progress=not args.no_progress)
    _print_summary(result)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from foveal.training.presets import preset
    from foveal.training.trainer import train

    config = preset("demo")
    if args.epochs is not None:
        config = config.replace(epochs=args.epochs)
    args.out = args.out or _default_run_dir(config, "demo")
    print("foveal demo: training a ResNet-9 on the built-in 8×8 handwritten digits "
          f"({config.epochs} epochs)", file=sys.stderr)
    result = train(config, args.out, progress=not args.no_progress)
    _print_summary(result)
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from foveal.data.datasets import load_dataset
    from foveal.models.classifier import Classifier
    from foveal.training.evaluate import evaluate_classifier

    classifier = Classifier.from_file(args.checkpoint, device=args.device)
    dataset = load_dataset(args.data, args.split, root=args.data_root,
                           skip_corrupt=args.skip_corrupt, progress=not args.no_progress)
    out = args.out or Path("runs") / f"{time.strftime('%Y%m%d-%H%M%S')}-eval"
    metrics, _ = evaluate_classifier(classifier, dataset, out, batch_size=args.batch_size)
    print(f"accuracy  {100 * metrics['test_accuracy']:.2f}%  (loss {metrics['test_loss']:.4f}, "
          f"{metrics['images']} images of {dataset.name})")
    print(f"report    {out / 'report.html'}")
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from foveal.models.classifier import Classifier

    classifier = Classifier.from_file(args.checkpoint, device=args.device)
    probs = classifier.predict(args.images)
    k = min(args.top_k, len(classifier.classes))
    rows = []
    for path, p in zip(args.images, probs, strict=True):
        top = p.argsort()[::-1][:k]
        rows.append({"image": str(path),
                     "top": [{"class": classifier.classes[i], "probability": float(p[i])}
                             for i in top]})
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        for row in rows:
            best = "  ".join(f"{t['class']} {100 * t['probability']:.1f}%" for t in row["top"])
            print(f"{row['image']}: {best}")
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    import numpy
    import torch

    mps = getattr(torch.backends, "mps", None)
    rows = {
        "foveal": foveal.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "cuda available": torch.cuda.is_available(),
        "cuda devices": ", ".join(torch.cuda.get_device_name(i)
                                  for i in range(torch.cuda.device_count())) or "none",
        "mps available": bool(mps is not None and mps.is_available()),
        "default device": _default_device(),
        "torch threads": torch.get_num_threads(),
        "cpu count": _cpu_count(),
    }
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        width = max(map(len, rows))
        for key, value in rows.items():
            print(f"{key:<{width}}  {value}")
    return 0


def _default_device() -> str:
    from foveal.training.trainer import select_device

    return str(select_device("auto"))


def _cpu_count() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def cmd_download(args: argparse.Namespace) -> int:
    from foveal.data.cifar10 import download_cifar10
    from foveal.data.datasets import default_data_root
    from foveal.data.mnist import download_mnist

    root = args.root or default_data_root()
    if args.dataset == "mnist":
        extra = {"base_url": args.url} if args.url else {}
        path = download_mnist(root, progress=not args.no_progress, **extra)
    else:
        path = download_cifar10(root, format=args.format, url=args.url,
                                progress=not args.no_progress)
    print(f"{args.dataset} ready in {path}")
    return 0


def cmd_stitch(args: argparse.Namespace) -> int:
    from foveal.atomic import atomic_write_json, atomic_write_png
    from foveal.geometry.image import read_image
    from foveal.geometry.panorama import stitch
    from foveal.report.html import write_report

    start = time.perf_counter()
    a, b = (read_image(p, op="foveal geometry stitch") for p in (args.image1, args.image2))
    pano = stitch(a, b, ratio=args.ratio, threshold=args.threshold,
                  max_features=args.max_features, blend=args.blend, seed=args.seed)
    seconds = time.perf_counter() - start
    out = args.out or Path("runs") / f"{time.strftime('%Y%m%d-%H%M%S')}-stitch"
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_png(out / "panorama.png", pano.image)
    metrics = {"inliers": pano.inliers, "panorama_size": list(pano.image.shape[:2]),
               "homography_1_to_2": pano.H.tolist(), "seconds": seconds,
               "image1": str(args.image1), "image2": str(args.image2)}
    atomic_write_json(out / "metrics.json", metrics)
    write_report(out / "report.html", title="two-image panorama",
                 metrics={"inliers": pano.inliers, "panorama": "×".join(
                     str(v) for v in pano.image.shape[1::-1]), "time_s": seconds},
                 config={k: str(v) for k, v in vars(args).items() if k != "func"},
                 figures=[("panorama (image 1 warped into image 2's frame)",
                           out / "panorama.png")])
    print(f"panorama  {pano.image.shape[1]}×{pano.image.shape[0]} px from {pano.inliers} "
          f"inlier matches in {seconds:.1f} s")
    print(f"report    {out / 'report.html'}")
    return 0


def cmd_sfm(args: argparse.Namespace) -> int:
    from foveal.geometry.sfm import SfmOptions, run_sfm

    overrides = {"seed": args.seed}
    if args.max_features is not None:
        overrides["max_features"] = args.max_features
    options = SfmOptions(**overrides)
    out = args.out or Path("runs") / f"{time.strftime('%Y%m%d-%H%M%S')}-sfm"
    result = run_sfm(args.image_dir, args.intrinsics, out, options,
                     progress=not args.no_progress)
    metrics = json.loads((out / "metrics.json").read_text())
    print(f"registered  {int(result.registered.sum())} of {len(result.names)} images, "
          f"{len(result.points)} points")
    rmse = metrics.get("reprojection_rmse_px")
    if rmse is not None:
        print(f"reprojection RMSE  {rmse:.3f} px")
    truth = metrics.get("ground_truth")
    if truth:
        print(f"vs ground truth  median rotation error {truth.get('median_rotation_deg', 0):.3f}°,"
              f" median centre error {truth.get('median_center_error', 0):.4g}")
    print(f"report      {out / 'report.html'}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The ``foveal`` argument parser with all sub-commands."""
    parser = argparse.ArgumentParser(
        prog="foveal", description="Computer vision and deep learning: train, evaluate and "
        "inspect models from the command line.",
    )
    parser.add_argument("--version", action="version", version=f"foveal {foveal.__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("train", help="train an image classifier",
                       description="Train an image classifier and write a run folder with "
                       "checkpoints, metrics, plots and report.html.")
    _add_train_options(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("demo", help="train on the built-in digits (offline, ~1 minute)",
                       description="Train the default ResNet-9 on scikit-learn's built-in 8×8 "
                       "digits and write a run folder with a report.")
    p.add_argument("--epochs", type=int, default=None, help="override the number of epochs")
    p.add_argument("--out", type=Path, default=None, help="run folder (default: runs/<name>)")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("eval", help="evaluate a trained model on a dataset",
                       description="Evaluate a model file, checkpoint or run folder on a "
                       "dataset; writes metrics.json, plots and report.html.")
    p.add_argument("checkpoint", type=Path, help="model.safetensors, checkpoint or run folder")
    p.add_argument("--data", default="digits", help="dataset name or image-folder path")
    p.add_argument("--split", default="test", help="train or test (default: test)")
    p.add_argument("--data-root", default=None, help="where mnist/cifar10 files live")
    p.add_argument("--batch-size", type=int, default=500, help="evaluation batch size")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or mps")
    p.add_argument("--skip-corrupt", action="store_true", help="skip unreadable images")
    p.add_argument("--out", type=Path, default=None, help="output folder")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("predict", help="classify image files",
                       description="Print the most likely classes of each image.")
    p.add_argument("checkpoint", type=Path, help="model.safetensors, checkpoint or run folder")
    p.add_argument("images", nargs="+", type=Path, help="image files (jpg, png, ppm, …)")
    p.add_argument("--top-k", type=int, default=3, help="classes to show per image")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or mps")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("info", help="show versions, devices and threads")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("download", help="download MNIST or CIFAR-10 (checksum-verified)")
    p.add_argument("dataset", choices=["mnist", "cifar10"])
    p.add_argument("--root", default=None, help="data folder (default: user cache)")
    p.add_argument("--format", choices=["python", "binary"], default="python",
                   help="CIFAR-10 format")
    p.add_argument("--url", default=None,
                   help="a mirror: base URL for mnist, archive URL for cifar10 (checksums are "
                   "still the official ones)")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    p.set_defaults(func=cmd_download)

    p = sub.add_parser("geometry", help="classical geometry tools (stitch)",
                       description="Classical geometric vision on image files.")
    geo = p.add_subparsers(dest="geometry_command", metavar="TOOL", required=True)
    q = geo.add_parser("stitch", help="stitch two overlapping images into a panorama",
                       description="SIFT matches, a RANSAC homography and a blended panorama "
                       "in image 2's frame; writes panorama.png, metrics.json and report.html.")
    q.add_argument("image1", type=Path, help="the image to warp")
    q.add_argument("image2", type=Path, help="the reference image")
    q.add_argument("--out", type=Path, default=None, help="output folder (default: runs/…)")
    q.add_argument("--ratio", type=float, default=0.75, help="Lowe's ratio for matches")
    q.add_argument("--threshold", type=float, default=3.0, help="RANSAC threshold (px)")
    q.add_argument("--max-features", type=int, default=4000, help="SIFT keypoints per image")
    q.add_argument("--blend", choices=["feather", "average"], default="feather")
    q.add_argument("--seed", type=int, default=0, help="RANSAC seed")
    q.set_defaults(func=cmd_stitch)

    p = sub.add_parser("sfm", help="structure from motion on a folder of images",
                       description="Incremental structure from motion with known intrinsics; "
                       "writes cameras.json, points.ply, metrics.json, plots and report.html.")
    p.add_argument("image_dir", type=Path, help="folder of images (png, jpg, ppm, …)")
    p.add_argument("--intrinsics", type=Path, required=True,
                   help="a Middlebury *_par.txt, or one K (JSON or 9 numbers) for all images")
    p.add_argument("--out", type=Path, default=None, help="output folder (default: runs/…)")
    p.add_argument("--max-features", type=int, default=None, help="SIFT keypoints per image")
    p.add_argument("--seed", type=int, default=0, help="RANSAC seed")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    p.set_defaults(func=cmd_sfm)

    from foveal.cli import coco, data, detect, diagnose, models, search

    for module in (coco, data, detect, models, diagnose, search):
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``foveal`` command; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except FovealError as exc:
        print(f"foveal: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:  # disk full, permissions: reported in one line, not a traceback
        print(f"foveal: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        resume = getattr(args, "out", None) or getattr(args, "resume", None)
        resumable = args.command == "train"
        hint = f"; continue with: foveal train --resume {resume}" if resume and resumable else ""
        print(f"foveal: interrupted{hint}", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
