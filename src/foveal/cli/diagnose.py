"""`foveal diagnose`: the pre-training checks of :mod:`foveal.training.diagnostics` on a dataset.

``foveal diagnose all|initial-loss|overfit|lr-range|layers --model NAME --data DATASET`` loads
the training split, normalises it with its own channel statistics
(:class:`foveal.data.loader.InMemoryLoader`, shuffled with ``--seed``), takes the first batch of
``--batch-size`` images, and runs each check on a fresh model built after
``torch.manual_seed(seed)``, so every check sees the same initialisation and each result equals
the library function's for the same seed. It writes ``metrics.json``, PNG plots and
``report.html`` into ``--out`` and prints a summary; a failed check (initial loss off ``log C``,
or one batch not overfitted) exits with status 2 after the folder is written.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from foveal.errors import ConfigError, TrainingError

TOOLS: tuple[str, ...] = ("all", "initial-loss", "overfit", "lr-range", "layers")


# --------------------------------------------------------------------------- the command


def _model_options(texts: Sequence[str]) -> dict[str, Any]:
    from foveal.training.tuning import parse_setting

    return dict(parse_setting(text, "--model-option") for text in texts)


def run_checks(args: argparse.Namespace) -> dict[str, Any]:
    """Run the checks ``args.tool`` names and return the ``metrics.json`` record."""
    import torch

    from foveal.data.datasets import load_dataset
    from foveal.data.loader import InMemoryLoader
    from foveal.models import build_model
    from foveal.training import diagnostics as dg
    from foveal.training.trainer import select_device

    options = _model_options(args.model_option or [])
    if args.batch_size < 1:
        raise ConfigError(f"--batch-size: expected at least 1, got {args.batch_size}")
    dataset = load_dataset(args.data, "train", root=args.data_root, progress=False)
    device = select_device(args.device)
    c, h, _ = dataset.image_shape
    num_classes = dataset.num_classes

    def fresh_model() -> torch.nn.Module:
        torch.manual_seed(args.seed)
        return build_model(args.model, in_channels=c, num_classes=num_classes, image_size=h,
                           **options).to(device)

    model = fresh_model()  # bad names and options fail before any work
    if args.optimizer is not None:
        dg.default_optimizer(args.optimizer, model, args.lr)
    mean, std = dataset.channel_stats()
    loader = InMemoryLoader(dataset, args.batch_size, device=device, mean=mean, std=std,
                            shuffle=True, drop_last=len(dataset) > args.batch_size,
                            seed=args.seed)
    batch = next(loader.batches(0))
    tools = TOOLS[1:] if args.tool == "all" else (args.tool,)
    record: dict[str, Any] = {
        "model": args.model, "model_options": options, "dataset": args.data,
        "num_classes": num_classes, "image_shape": [c, h, h], "batch_size": len(batch[1]),
        "seed": args.seed, "device": str(device), "checks": list(tools),
    }
    if "initial-loss" in tools:
        report = dg.initial_loss_check(fresh_model(), batch, num_classes, args.tolerance)
        record["initial_loss"] = dataclasses.asdict(report)
    if "overfit" in tools:
        model = fresh_model()
        optimizer = args.optimizer or "adam"
        report = dg.overfit_one_batch(model, batch, steps=args.overfit_steps, lr=args.lr,
                                      optimizer=optimizer, threshold=args.threshold)
        model.eval()  # predictions without dropout
        with torch.no_grad():
            accuracy = float((model(batch[0]).argmax(1) == batch[1]).float().mean())
        record["overfit"] = {**dataclasses.asdict(report), "accuracy": accuracy,
                             "optimizer": optimizer, "lr": args.lr}
    if "lr-range" in tools:
        model = fresh_model()
        optimizer = args.optimizer or "sgd"
        result = dg.lr_range_test(
            model, loader, optimizer=dg.default_optimizer(optimizer, model, args.min_lr),
            start_lr=args.min_lr, end_lr=args.max_lr, steps=args.steps,
        )
        record["lr_range"] = {**dataclasses.asdict(result), "optimizer": optimizer,
                              "min_loss_lr_over_10": result.min_loss_lr_over_10}
    if "layers" in tools:
        model = fresh_model()
        stats = dg.layer_statistics(model, batch)
        vanishing, exploding = dg.flag_gradient_layers(stats, args.grad_ratio)
        record["layers"] = {
            "stats": [dataclasses.asdict(s) for s in stats],
            "dead_relu_fraction": dg.dead_relu_fraction(model, batch),
            "vanishing": vanishing, "exploding": exploding, "grad_ratio": args.grad_ratio,
        }
    record["failures"] = failures(record)
    record["passed"] = not record["failures"]
    return record


def failures(record: dict[str, Any]) -> list[str]:
    """One line per failed check of a ``metrics.json`` record (initial loss, overfit)."""
    lines = []
    init = record.get("initial_loss")
    if init and not init["within_tolerance"]:
        lines.append(f"initial loss {init['loss']:.4f} is not within {init['tolerance']:g} of "
                     f"log C = {init['expected']:.4f}")
    fit = record.get("overfit")
    if fit and not fit["reached"]:
        lines.append(f"one batch not overfitted: loss {fit['final_loss']:.4g} after "
                     f"{fit['steps_taken']} steps, expected < {fit['threshold']:g}")
    return lines


def write_outputs(record: dict[str, Any], out: Path) -> Path:
    """``metrics.json``, the plots and ``report.html`` in ``out``; returns the report's path."""
    from foveal.atomic import atomic_write_json
    from foveal.report.diagnostics import plot_layer_statistics, plot_lr_range, plot_overfit
    from foveal.report.html import Table, write_report
    from foveal.training.diagnostics import LayerStats, LRRangeResult

    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "metrics.json", record)
    figures, tables = [], []
    summary: dict[str, Any] = {"passed": record["passed"]}
    if "initial_loss" in record:
        init = record["initial_loss"]
        summary |= {"initial_loss": init["loss"], "log_C": init["expected"]}
    if "overfit" in record:
        fit = record["overfit"]
        summary |= {"overfit_loss": fit["final_loss"], "overfit_accuracy": fit["accuracy"]}
        figures.append(("overfit one batch: loss per step",
                        plot_overfit(fit["losses"], fit["threshold"], out / "overfit.png")))
    if "lr_range" in record:
        lr = record["lr_range"]
        summary["suggested_lr"] = lr["suggested_lr"]
        fields = {f.name for f in dataclasses.fields(LRRangeResult)}
        result = LRRangeResult(**{k: v for k, v in lr.items() if k in fields})
        figures.append(("learning-rate range test (suggested rate dashed)",
                        plot_lr_range(result, out / "lr_range.png")))
    if "layers" in record:
        stats = [LayerStats(**s) for s in record["layers"]["stats"]]
        figures.append(("per-layer activations, weight gradients and dead ReLUs",
                        plot_layer_statistics(stats, out / "layers.png")))
        tables.append(Table(
            "per-layer statistics (input to output)",
            ["layer", "kind", "activation mean", "activation std", "grad norm", "grad std",
             "dead fraction"],
            [[s.name, s.kind, s.activation_mean, s.activation_std, s.weight_grad_norm,
              s.weight_grad_std, s.dead_fraction] for s in stats],
        ))
    notes = "\n\n".join(record["failures"]) if record["failures"] else "All checks passed."
    config = {k: record[k] for k in ("model", "model_options", "dataset", "batch_size", "seed",
                                     "device", "checks")}
    return write_report(out / "report.html", title=f"diagnostics: {record['model']} on "
                        f"{record['dataset']}", metrics=summary, config=config, figures=figures,
                        tables=tables, notes=notes)


def print_summary(record: dict[str, Any], out: Path) -> None:
    """A few lines per check."""
    def verdict(ok: bool) -> str:
        return "pass" if ok else "FAIL"

    if "initial_loss" in record:
        init = record["initial_loss"]
        print(f"initial loss   {init['loss']:.4f} vs log C {init['expected']:.4f} "
              f"(±{init['tolerance']:g}): {verdict(init['within_tolerance'])}")
    if "overfit" in record:
        fit = record["overfit"]
        print(f"overfit batch  loss {fit['final_loss']:.4g}, accuracy "
              f"{100 * fit['accuracy']:.1f}% after {fit['steps_taken']} steps "
              f"({fit['optimizer']}, lr {fit['lr']:g}): {verdict(fit['reached'])}")
    if "lr_range" in record:
        lr = record["lr_range"]
        suggested = "n/a" if lr["suggested_lr"] is None else f"{lr['suggested_lr']:.3g}"
        print(f"LR range       suggested {suggested} (steepest descent), min/10 "
              f"{lr['min_loss_lr_over_10']:.3g}" + (", diverged" if lr["diverged"] else ""))
    if "layers" in record:
        layers = record["layers"]
        print(f"gradients      vanishing: {', '.join(layers['vanishing']) or 'none'}; "
              f"exploding: {', '.join(layers['exploding']) or 'none'}")
        dead = layers["dead_relu_fraction"]
        shown = dead if len(dead) <= 6 else {n: f for n, f in dead.items() if f >= 0.1}
        text = ", ".join(f"{n} {100 * f:.0f}%" for n, f in shown.items())
        if len(dead) > 6:
            text = (f"max {100 * max(dead.values()):.0f}% over {len(dead)} ReLU modules"
                    + (f"; 10% or more: {text}" if text else ""))
        print("dead ReLUs     " + (text or "no ReLU modules"))
    print(f"report         {out / 'report.html'}")


def cmd_diagnose(args: argparse.Namespace) -> int:
    """Run the checks, write the folder, print the summary (or the record with ``--json``)."""
    out = args.out or Path("runs") / f"{time.strftime('%Y%m%d-%H%M%S')}-diagnose"
    record = run_checks(args)
    write_outputs(record, out)
    if args.json:
        print(json.dumps(record, indent=2))
    else:
        print_summary(record, out)
    if record["failures"]:
        raise TrainingError("; ".join(record["failures"]) + f" (see {out / 'report.html'})")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``diagnose`` sub-command to the ``foveal`` parser."""
    p = sub.add_parser(
        "diagnose", help="sanity checks before training: initial loss, overfit, LR range, layers",
        description="Run the checks of foveal.training.diagnostics on a fresh model and the "
        "first batch of a dataset; writes metrics.json, plots and report.html.",
    )
    p.add_argument("tool", choices=TOOLS, help="which check (all: every one)")
    p.add_argument("--model", required=True, help="model name (see `foveal models list`)")
    p.add_argument("--data", default="digits", help="dataset name or image-folder path")
    p.add_argument("--data-root", default=None, help="where mnist/cifar10 files live")
    p.add_argument("--batch-size", type=int, default=32, help="images in the batch (default 32)")
    p.add_argument("--model-option", action="append", metavar="KEY=JSON",
                   help="a model keyword argument, e.g. width=16 (repeat for more)")
    p.add_argument("--optimizer", default=None,
                   help="sgd (momentum 0.9), adam, adamw, … (default: adam to overfit, sgd for "
                   "the range test)")
    p.add_argument("--lr", type=float, default=1e-2, help="overfit learning rate (default 1e-2)")
    p.add_argument("--overfit-steps", type=int, default=500, help="overfit step limit")
    p.add_argument("--threshold", type=float, default=1e-3, help="overfit target loss")
    p.add_argument("--tolerance", type=float, default=0.25,
                   help="allowed |initial loss − log C| in nats (default 0.25)")
    p.add_argument("--min-lr", type=float, default=1e-7, help="range test start rate")
    p.add_argument("--max-lr", type=float, default=10.0, help="range test end rate")
    p.add_argument("--steps", type=int, default=100, help="range test steps")
    p.add_argument("--grad-ratio", type=float, default=100.0,
                   help="flag layers whose gradient scale is this far from the geometric mean")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or mps")
    p.add_argument("--seed", type=int, default=0, help="seeds the model and the batch order")
    p.add_argument("--out", type=Path, default=None, help="output folder (default: runs/…)")
    p.add_argument("--json", action="store_true", help="print metrics.json instead")
    p.set_defaults(func=cmd_diagnose)
