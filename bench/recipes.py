"""CIFAR-10 recipes: train the named presets on the shared CIFAR-10 copy and record the figures.

    python bench/recipes.py airbench                 # one recipe, its full schedule (a GPU's job)
    python bench/recipes.py all                      # the five, one after the other
    python bench/recipes.py all --epochs 2 --train-subset 10000 --threads 2   # short CPU schedule
    python bench/recipes.py airbench --option widths=[32,128,128]   # model option override
    python bench/recipes.py resnet56 --set batch_size=256 --set lr=0.2  # any config override
    python bench/recipes.py all --quick              # seconds-long smoke run, writes nothing

Recipes (:mod:`foveal.training.presets`, where each schedule's source is cited): ``resnet18``,
``resnet56``, ``vit``, ``convnext`` and ``airbench`` are the presets ``cifar10-<name>``.

A short schedule (``--epochs``, ``--train-subset``) keeps the recipe's shape: warm-up stays the
same fraction of the run, milestones are fractions already, and ``--train-subset N`` trains on a
fixed class-balanced draw of ``N`` images. The test set is always the full 10,000 images unless
``--test-subset`` says otherwise. Every result records whether the schedule was the full one.

Data: the JPEG copy of CIFAR-10 in ``../shared/data`` is unpacked once into
``$FOVEAL_CACHE/bench`` (see ``bench/real_data.py``) and read as an image folder. Results land
in ``bench/results/recipe-<name>-<device>[-short].json`` with the machine, and the run folders
under ``runs/bench-recipe-<name>-…``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from cli import parse_bench_args

RECIPES: dict[str, str] = {
    "resnet18": "cifar10-resnet18",
    "resnet56": "cifar10-resnet56",
    "vit": "cifar10-vit",
    "convnext": "cifar10-convnext",
    "airbench": "cifar10-airbench",
}

# --quick: a few batches on a tiny class-balanced subset, evaluated on a few hundred images
QUICK = {"epochs": 1, "train_subset": 100, "test_subset": 100, "batch_size": 50}


def parse_assignment(text: str) -> tuple[str, Any]:
    """``KEY=VALUE`` with ``VALUE`` read as JSON when it parses (``3``, ``[16, 64, 64]``,
    ``true``), else as a string."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise SystemExit(f"expected KEY=VALUE, got {text!r}")
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


def add_options(ap: argparse.ArgumentParser) -> None:
    """The short-schedule options shared with ``bench/ablation.py``."""
    ap.add_argument("--epochs", type=int, default=None, help="shorten the schedule to E epochs")
    ap.add_argument("--train-subset", type=int, default=None, metavar="N",
                    help="train on a class-balanced subset of N images")
    ap.add_argument("--test-subset", type=int, default=None, metavar="N",
                    help="evaluate on a class-balanced subset of N test images (default: all)")
    ap.add_argument("--option", action="append", default=[], metavar="KEY=JSON",
                    help="model option override, e.g. widths=[32,128,128] or depth=4")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=JSON",
                    help="config override, e.g. batch_size=256")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--seed", type=int, default=0)


def shorten(config, epochs: int | None = None, train_subset: int | None = None,
            batch_size: int | None = None):
    """``config`` with ``epochs`` (warm-up kept at the same fraction of the run), a training
    subset and a smaller batch where given."""
    changes: dict[str, Any] = {}
    if epochs is not None and epochs != config.epochs:
        changes["epochs"] = epochs
        changes["warmup_epochs"] = config.warmup_epochs * epochs / config.epochs
    if train_subset is not None:
        changes["train_subset"] = train_subset
    if batch_size is not None and batch_size < config.batch_size:
        changes["batch_size"] = batch_size
    return config.replace(**changes) if changes else config


def configure(preset_name: str, args: argparse.Namespace, **extra: Any):
    """The preset with the command line's short schedule and overrides applied."""
    from foveal.training.presets import preset

    config = preset(preset_name)
    quick = QUICK if args.quick else {}
    config = shorten(config, quick.get("epochs", args.epochs),
                     quick.get("train_subset", args.train_subset), quick.get("batch_size"))
    options = {**config.model_options, **dict(parse_assignment(s) for s in args.option)}
    overrides = dict(parse_assignment(s) for s in args.set)
    return config.replace(device=args.device, seed=args.seed, model_options=options,
                          **{**extra, **overrides})


def load_cifar10(test_subset: int | None = None):
    """The shared CIFAR-10 copy as (train, test) ArrayDatasets and the folder it came from."""
    from foveal.data.datasets import load_dataset
    from real_data import unpack

    folder = unpack("cifar10-jpg.tar.gz", "cifar10-jpg")
    train_set = load_dataset(str(folder), "train")
    test_set = load_dataset(str(folder), "test")
    if test_subset is not None:
        test_set = test_set.balanced_subset(test_subset)
    return train_set, test_set, folder


def is_full_schedule(config, preset_name: str, train_size: int, test_size: int) -> bool:
    """True when ``config`` runs its preset's epochs on all training and test images."""
    from foveal.training.presets import preset

    return (config.epochs == preset(preset_name).epochs and config.train_subset is None
            and train_size == 50_000 and test_size == 10_000)


def run(config, train_set, test_set, run_dir: Path) -> dict[str, Any]:
    """Train ``config`` and return its figures (a JSON-ready dict)."""
    from foveal.training.trainer import train

    result = train(config, run_dir, train_set=train_set, test_set=test_set, progress=False)
    m = result.metrics
    figures = {k: m[k] for k in ("test_accuracy", "test_loss", "train_accuracy", "train_loss",
                                 "epochs", "steps", "wall_time_s", "train_time_s",
                                 "images_per_s", "device", "model", "parameters", "train_size",
                                 "test_size") if k in m}
    for key in ("test_accuracy_raw",):  # without the EMA weights / TTA, when the run has them
        if key in m:
            figures[key] = m[key]
    figures["history"] = [{k: r[k] for k in ("epoch", "test_acc", "train_loss", "train_time_s")
                           if k in r} for r in result.history]
    return figures


def main() -> None:
    args = parse_bench_args(__doc__, extra=lambda ap: (
        ap.add_argument("recipe", choices=[*RECIPES, "all"]), add_options(ap)))
    import tempfile

    import torch

    from common import REPO, save

    torch.set_num_threads(args.threads)
    names = list(RECIPES) if args.recipe == "all" else [args.recipe]
    train_set, test_set, folder = load_cifar10(QUICK["test_subset"] if args.quick
                                               else args.test_subset)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            config = configure(RECIPES[name], args, dataset=str(folder))
            full = is_full_schedule(config, RECIPES[name], len(train_set), len(test_set))
            device = config.device if config.device != "auto" else (
                "cuda" if torch.cuda.is_available() else "cpu")
            stamp = time.strftime("%Y%m%d-%H%M%S")
            run_dir = (Path(tmp) / name if args.quick
                       else REPO / "runs" / f"bench-recipe-{name}-{device}-{stamp}")
            print(f"{name}: {config.model} {config.model_options}, {config.epochs} epochs, "
                  f"batch {config.batch_size}, {'full' if full else 'short'} schedule",
                  flush=True)
            figures = run(config, train_set, test_set, run_dir)
            summary = {"benchmark": f"recipes/{name}", "preset": RECIPES[name],
                       "schedule": "full" if full else "short",
                       "overrides": {"epochs": args.epochs, "train_subset": args.train_subset,
                                     "test_subset": args.test_subset, "option": args.option,
                                     "set": args.set, "quick": args.quick},
                       **figures, "config": config.to_json()}
            rows.append(summary)
            print(f"{name}: test accuracy {100 * figures['test_accuracy']:.2f}% after "
                  f"{figures['epochs']} epochs, {figures['wall_time_s']:.0f} s on "
                  f"{figures['device']}", flush=True)
            if not args.quick:
                suffix = "" if full else "-short"
                print(f"written to {save(f'recipe-{name}-{device}{suffix}', summary)}")
    print()
    print("| recipe | model | params | schedule | epochs | train images | test acc | wall s "
          "| img/s | device |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['preset']} | {r['model']} | {r['parameters']:,} | {r['schedule']} | "
              f"{r['epochs']} | {r['train_size']:,} | {100 * r['test_accuracy']:.2f}% | "
              f"{r['wall_time_s']:.0f} | {r['images_per_s']:,.0f} | {r['device']} |")


if __name__ == "__main__":
    main()
