"""`foveal search`: hyper-parameter search over `foveal train` configs.

A thin layer over :func:`foveal.training.tuning.run_search`: the base config comes from
``--preset``, ``--config`` and ``--set KEY=JSON_VALUE`` (in that order, later wins), the space
from ``--space`` texts (:func:`foveal.training.tuning.parse_dimension`).
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path
from typing import Any

from foveal.errors import ConfigError


def base_config(preset: str | None, config_file: Path | None, settings: list[str],
                epochs: int | None = None) -> Any:
    """The TrainConfig every trial starts from: the preset (or the defaults), then the config
    file's values, then each ``KEY=JSON_VALUE`` of ``settings``, then ``epochs``."""
    from foveal.cli.config_file import read_config_file
    from foveal.training.config import TrainConfig
    from foveal.training.presets import preset as named_preset
    from foveal.training.tuning import parse_setting

    config = named_preset(preset) if preset else TrainConfig()
    changes: dict[str, Any] = {}
    if config_file is not None:
        changes.update(read_config_file(config_file))
    changes.update(parse_setting(text, "--set") for text in settings)
    if epochs is not None:
        changes["epochs"] = epochs
    if "model" in changes and changes["model"] != config.model:  # the old model's options
        changes.setdefault("model_options", {})
    return config.replace(**changes)


def _format(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def print_ranked(result: Any) -> None:
    """The trials from best to worst as an aligned table, then the best settings."""
    objective = result.objective
    names = list(result.space)
    header = ["trial", "round", *names, objective]
    lines = [header]
    for t in result.search.ranked():
        value = "failed" if not math.isfinite(t.value) else (
            f"{100 * t.value:.2f}%" if objective == "test_accuracy" else f"{t.value:.4f}")
        lines.append([str(t.index), str(t.round), *(_format(t.params[n]) for n in names), value])
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    for line in lines:
        print("  ".join(cell.rjust(w) for cell, w in zip(line, widths, strict=True)))
    if any(math.isfinite(t.value) for t in result.search.trials):
        best = result.search.best
        settings = "  ".join(f"{n}={_format(v)}" for n, v in best.params.items())
        print(f"best      trial {best.index}: {settings}")
    print(f"results   {result.out_dir / 'results.json'}")
    print(f"report    {result.out_dir / 'report.html'}")


def cmd_search(args: argparse.Namespace) -> int:
    """Run the search and print the ranked table."""
    from foveal.training.tuning import parse_space, run_search

    if not args.space:
        raise ConfigError("expected at least one --space NAME=log:LOW:HIGH, "
                          "NAME=uniform:LOW:HIGH or NAME=choice:A,B,..., got none")
    space = parse_space(args.space)
    config = base_config(args.preset, args.config, args.set or [], args.epochs)
    if args.method == "grid" and args.trials is not None:
        raise ConfigError("--trials does not apply to --method grid: it runs every "
                          "combination (set --points for continuous ranges)")
    out = args.out or Path("runs") / f"{time.strftime('%Y%m%d-%H%M%S')}-search"
    result = run_search(
        config, space, out, method=args.method,
        trials=10 if args.trials is None else args.trials, points=args.points,
        rounds=args.rounds, shrink=args.shrink, seed=args.seed, objective=args.objective,
        progress=False,
    )
    print_ranked(result)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``search`` sub-command to the ``foveal`` parser."""
    from foveal.training.presets import PRESETS
    from foveal.training.tuning import OBJECTIVES, SEARCH_METHODS

    p = sub.add_parser(
        "search", help="hyper-parameter search over training runs",
        description="Train one run per trial in OUT/trial-XXX and rank the trials by final "
        "test accuracy; writes results.json, plots/search.png and report.html.",
    )
    p.add_argument("--method", choices=SEARCH_METHODS, default="random",
                   help="random draws, every grid combination, or coarse-to-fine rounds")
    p.add_argument("--trials", type=int, default=None,
                   help="trials in all (random: default 10; coarse-to-fine: a multiple of "
                   "--rounds)")
    p.add_argument("--space", action="append", metavar="NAME=KIND:SPEC",
                   help="a searched setting: lr=log:1e-3:1, label_smoothing=uniform:0:0.2, "
                   "optimizer=choice:sgd,adamw (repeat for more)")
    p.add_argument("--preset", default=None, help=f"base recipe: {', '.join(PRESETS)}")
    p.add_argument("--config", type=Path, default=None, help="JSON file of base config values")
    p.add_argument("--set", action="append", metavar="KEY=JSON_VALUE",
                   help="a fixed train setting, e.g. model=mlp or model_options='{\"width\": 16}'")
    p.add_argument("--epochs", type=int, default=None, help="epochs of every trial")
    p.add_argument("--points", type=int, default=3,
                   help="grid values per continuous range (default 3)")
    p.add_argument("--rounds", type=int, default=3, help="coarse-to-fine rounds (default 3)")
    p.add_argument("--shrink", type=float, default=0.3,
                   help="coarse-to-fine: range kept around the best per round (default 0.3)")
    p.add_argument("--objective", choices=list(OBJECTIVES), default="test_accuracy",
                   help="final test accuracy (maximised) or test loss (minimised)")
    p.add_argument("--seed", type=int, default=0,
                   help="seed of the search's draws (the runs' seed: --set seed=N)")
    p.add_argument("--out", type=Path, default=None, help="search folder (default: runs/…)")
    p.set_defaults(func=cmd_search)
