"""Real-data results: train a preset on the shared CIFAR-10 or MNIST copy and record the figures.

    python bench/real_data.py cifar10            # ResNet-9, the cifar10 preset (goal: >= 90%)
    python bench/real_data.py classic            # the PyTorch tutorial recipe (about 50-60%)
    python bench/real_data.py mnist              # small CNN on MNIST (goal: >= 99%)
    python bench/real_data.py scratch-mnist      # the NumPy engine: small CNN (goal: >= 98%)
    python bench/real_data.py scratch-mnist-mlp  # the NumPy engine: two-layer net, 800 hidden
    python bench/real_data.py scratch-cifar10    # the NumPy engine: small CNN on CIFAR-10
    python bench/real_data.py cifar10 --set width=16 --set epochs=30   # any config override
    python bench/real_data.py cifar10 --resume runs/bench-cifar10-cpu-…  # continue a killed run
    python bench/real_data.py cifar10 --from-run runs/NAME --name cifar10-airbench-cpu
        # record a finished `foveal train … --out runs/NAME` run (one command, as a user runs it)

The tarballs in ``../shared/data`` are unpacked once into ``$FOVEAL_CACHE/bench`` (default
``~/.cache/foveal/bench``); the decoded-image cache then makes later runs start in seconds. Each
run is exactly ``foveal train --preset NAME --data <unpacked folder>``, and its metrics land in
``bench/results/<task>-<device>.json`` and the run folder under ``runs/bench-<task>``.
"""

from __future__ import annotations

import argparse
import json
import os
import tarfile
import time
from pathlib import Path

from common import REPO, SHARED_DATA, save
from foveal.training.presets import preset
from foveal.training.trainer import (
    CONFIG_FILE,
    HISTORY_FILE,
    resume_config,
    select_device,
    train,
)

TASKS = {
    # task: (preset, tarball, folder inside it)
    "cifar10": ("cifar10", "cifar10-jpg.tar.gz", "cifar10-jpg"),
    "classic": ("classic", "cifar10-jpg.tar.gz", "cifar10-jpg"),
    "mnist": ("mnist", "mnist-png.tar.gz", "mnist-pngs"),
    "scratch-mnist": ("scratch-mnist", "mnist-png.tar.gz", "mnist-pngs"),
    "scratch-mnist-mlp": ("scratch-mnist-mlp", "mnist-png.tar.gz", "mnist-pngs"),
    "scratch-cifar10": ("scratch-cifar10", "cifar10-jpg.tar.gz", "cifar10-jpg"),
}


def unpack(tarball: str, folder: str) -> Path:
    """Unpack ``tarball`` from the shared data once; return the unpacked folder."""
    cache = Path(os.environ.get("FOVEAL_CACHE", Path.home() / ".cache" / "foveal")) / "bench"
    target = cache / folder
    done = cache / f".{folder}.complete"
    if done.exists():
        return target
    source = SHARED_DATA / tarball
    if not source.is_file():
        raise SystemExit(f"missing {source}: the shared data folder is needed for this benchmark")
    cache.mkdir(parents=True, exist_ok=True)
    print(f"unpacking {source} into {cache} …", flush=True)
    with tarfile.open(source) as tar:
        tar.extractall(cache, filter="data")
    done.touch()
    return target


def parse_override(text: str) -> tuple[str, object]:
    key, _, value = text.partition("=")
    if key == "width":
        return "model_options", {"width": int(value)}
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("task", choices=sorted(TASKS))
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="config override, e.g. epochs=30 or width=16")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--resume", type=Path, default=None, metavar="RUN_DIR",
                    help="continue an interrupted benchmark run from its last checkpoint")
    ap.add_argument("--from-run", type=Path, default=None, metavar="RUN_DIR",
                    help="record a finished `foveal train` run folder instead of training")
    ap.add_argument("--name", default=None,
                    help="results file name (default: <task>-<device>)")
    args = ap.parse_args()
    if args.from_run is not None:
        record_run(args.task, args.from_run, args.name)
        return
    name, tarball, folder = TASKS[args.task]
    data = unpack(tarball, folder)
    if args.resume is not None:
        run_dir = args.resume
        config = resume_config(run_dir)
        device = str(select_device(config.device))
        result = train(config, run_dir, resume=True)
    else:
        overrides = dict(parse_override(s) for s in args.set)
        config = preset(name).replace(dataset=str(data), device=args.device, **overrides)
        device = str(select_device(args.device))
        run_dir = REPO / "runs" / f"bench-{args.task}-{device}-{time.strftime('%Y%m%d-%H%M%S')}"
        result = train(config, run_dir)
    history = [{k: r[k] for k in r if k in HISTORY_KEYS} for r in result.history]
    write_summary(args.task, result.metrics, config.to_json(), history,
                  args.name or f"{args.task}-{device}", preset=name, overrides=args.set)


HISTORY_KEYS = ("epoch", "test_acc", "train_loss", "train_time_s", "eval_time_s")


def write_summary(task: str, metrics: dict, config: dict, history: list[dict], name: str,
                  **extra: object) -> None:
    """Print a run's result and write it to ``bench/results/<name>.json``: the final metrics,
    the config, the per-epoch history and ``extra`` (preset, overrides, run folder)."""
    summary = {
        "benchmark": f"real_data/{task}", **extra,
        **{k: metrics[k] for k in ("test_accuracy", "epochs", "wall_time_s", "train_time_s",
                                   "images_per_s", "device", "model", "parameters")},
        "config": config, "history": history,
    }
    print(f"{task}: test accuracy {100 * metrics['test_accuracy']:.2f}% after "
          f"{metrics['epochs']} epochs, {metrics['wall_time_s']:.0f} s on {metrics['device']}")
    print(f"written to {save(name, summary)}")


def record_run(task: str, run_dir: Path, name: str | None) -> None:
    """Write the results file of a finished ``foveal train`` run folder from its metrics.json,
    config.json and metrics.jsonl."""
    if not (run_dir / "metrics.json").is_file():
        raise SystemExit(f"expected a finished run folder with metrics.json, got {run_dir}")
    metrics = json.loads((run_dir / "metrics.json").read_text())
    config = json.loads((run_dir / CONFIG_FILE).read_text())
    history = [json.loads(line) for line in (run_dir / HISTORY_FILE).read_text().splitlines()
               if line.strip()]
    write_summary(task, metrics, config,
                  [{k: r[k] for k in r if k in HISTORY_KEYS} for r in history],
                  name or f"{task}-{metrics['device']}", run_dir=run_dir.name)

if __name__ == "__main__":
    main()
