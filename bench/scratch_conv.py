"""The scratch engine's fast conv2d (forward + backward) against torch.nn.functional.conv2d.

    python bench/scratch_conv.py            # all shapes
    python bench/scratch_conv.py --quick    # two shapes, fewer repeats

Each shape is timed in ``--processes`` fresh processes (default 3), and each side's time is the
fastest of its per-process medians (times vary more between processes than within one). Both
run float32 on the CPU with the same thread count (torch's intra-op threads = the BLAS
threads NumPy uses = the FFT and Winograd workers, set through ``--threads``). For each shape:
median milliseconds of forward plus backward (input, weight and bias gradients) for ours, by
``conv2d``'s default ``"auto"`` (the route its cost estimate ``auto_algorithm`` picks: recorded
per row) and forced to each route that applies (``"im2col"``, ``"fft"``, and ``"winograd"``
for 3×3 kernels), and for torch autograd, each side's repeats back to back; the ratios
ours / torch (goal ≤ 2); the peak memory NumPy allocated during each of ours (tracemalloc);
the im2col buffer size ``C_in·k²·N·OH·OW·4`` bytes that an unchunked im2col would hold, and
the Winograd input transform kept for the weight gradient, ``36·⌈OH/4⌉·⌈OW/4⌉·N·C_in·4``
bytes.
"""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable
from typing import Any

from cli import parse_bench_args
from timing import median_ms

SHAPES = [  # (N, C_in, C_out, H, k)
    (64, 16, 16, 32, 3), (64, 32, 32, 32, 3), (64, 64, 64, 32, 3), (64, 128, 128, 32, 3),
    (64, 16, 16, 32, 5), (64, 32, 32, 32, 5), (64, 64, 64, 32, 5), (64, 128, 128, 32, 5),
]
FORCED = ["im2col", "fft", "winograd"]  # the routes timed on their own (winograd: 3×3 only)


def measure(n: int, c: int, o: int, h: int, k: int, repeats: int) -> dict[str, Any]:
    """Time forward + backward of ours and torch's conv2d on one shape ("same" padding)."""
    import numpy as np
    import torch
    import torch.nn.functional as F

    from foveal.scratch import Tensor
    from foveal.scratch.ops.conv import auto_algorithm, conv2d
    from foveal.scratch.ops.conv_fft import fft_shape
    from foveal.scratch.ops.conv_winograd import tile_counts

    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, c, h, h), dtype=np.float32)
    w = rng.standard_normal((o, c, k, k), dtype=np.float32) * 0.1
    b = np.zeros(o, dtype=np.float32)
    g = rng.standard_normal((n, o, h, h), dtype=np.float32)
    pad = k // 2

    def ours(algorithm: str) -> Callable[[], None]:
        def run() -> None:
            xt, wt, bt = (Tensor(a, requires_grad=True) for a in (x, w, b))
            conv2d(xt, wt, bt, 1, pad, algorithm=algorithm).backward(g)
        return run

    tx, tw, tb = (torch.from_numpy(a).requires_grad_() for a in (x, w, b))
    tg = torch.from_numpy(g)

    def theirs() -> None:
        tx.grad = tw.grad = tb.grad = None
        F.conv2d(tx, tw, tb, 1, pad).backward(tg)

    # Each side's repeats run back to back, not alternated: BLAS and OpenMP worker threads
    # spin for a while after each call, and alternating would charge that to the other side.
    # Warm-up: one pass of every side before any timing, then three calls before each side's
    # repeats. A process's first forward and backward passes are 10–40% slower: glibc's
    # allocator returns large freed arrays to the OS, and maps them afresh at the next call,
    # until it has seen larger arrays freed (its mmap and trim thresholds grow with them);
    # without the common pass, whichever side ran after a memory-hungry one was faster.
    routes = ["auto", *FORCED] if k == 3 else ["auto", *FORCED[:-1]]
    for fn in [*(ours(r) for r in routes), theirs]:
        fn()
    times = {r: median_ms(ours(r), repeats, warmup=3)[0] for r in routes}
    t_torch = median_ms(theirs, repeats, warmup=3)[0]
    peaks = {}
    for r in routes:
        tracemalloc.start()
        ours(r)()
        peaks[r] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    chosen = auto_algorithm(n, c, o, (k, k), (h, h), fft_shape(h + 2 * pad, h + 2 * pad))
    row: dict[str, Any] = {"shape": f"N={n} C={c}->{o} {h}x{h} k={k}", "auto": chosen,
                           "ours_ms": round(times["auto"], 2), "torch_ms": round(t_torch, 2),
                           "ratio": round(times["auto"] / t_torch, 2),
                           "peak_numpy_mb": round(peaks["auto"] / 2**20, 1)}
    for r in FORCED:
        row[f"{r}_ms"] = round(times[r], 2) if r in times else None
        row[f"{r}_ratio"] = round(times[r] / t_torch, 2) if r in times else None
        row[f"{r}_peak_numpy_mb"] = round(peaks[r] / 2**20, 1) if r in peaks else None
    row["im2col_mb"] = round(c * k * k * n * h * h * 4 / 2**20, 1)
    tiles = tile_counts((h, h))
    row["winograd_v_mb"] = round(36 * tiles[0] * tiles[1] * n * c * 4 / 2**20, 1) if k == 3 \
        else None
    return row


def _measure_in_process(shape: tuple[int, ...], repeats: int, threads: int) -> dict[str, Any]:
    """:func:`measure` in this (fresh) process with ``threads`` torch threads."""
    import torch

    torch.set_num_threads(threads)
    return measure(*shape, repeats=repeats)


def measure_fresh(shape: tuple[int, ...], repeats: int, threads: int, processes: int
                  ) -> dict[str, Any]:
    """:func:`measure` in ``processes`` fresh processes; each side's time is the fastest of
    its per-process medians. Both sides' times vary between processes far more than within
    one (torch's 16-channel 3×3 case: 24–43 ms from one process to the next, each steady
    within itself), so one process would pick a mode at random for each side."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    rows = []
    for _ in range(processes):
        with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
            rows.append(pool.submit(_measure_in_process, shape, repeats, threads).result())
    row = dict(rows[0])
    for key in ["ours_ms", "torch_ms", *(f"{r}_ms" for r in FORCED)]:
        if row[key] is not None:
            row[key] = min(r[key] for r in rows)
    row["ratio"] = round(row["ours_ms"] / row["torch_ms"], 2)
    for r in FORCED:
        if row[f"{r}_ms"] is not None:
            row[f"{r}_ratio"] = round(row[f"{r}_ms"] / row["torch_ms"], 2)
    row["processes"] = processes
    return row


def main() -> None:
    args = parse_bench_args(__doc__, repeats=7, extra=lambda ap: ap.add_argument(
        "--processes", type=int, default=3, help="fresh processes per shape (fastest kept)"))
    import numpy as np

    from common import save

    shapes = SHAPES[::3] if args.quick else SHAPES
    repeats = 3 if args.quick else args.repeats
    processes = 1 if args.quick else args.processes
    rows = []
    print("| shape | auto | ours ms | " + " | ".join(f"{r} ms" for r in FORCED)
          + " | torch ms | ratio | " + " | ".join(f"{r} ratio" for r in FORCED)
          + " | peak MB | " + " | ".join(f"{r} peak MB" for r in FORCED)
          + " | im2col MB | winograd V MB |")
    for shape in shapes:
        row = measure_fresh(shape, repeats, args.threads, processes)
        rows.append(row)
        cells = [row["shape"], row["auto"], row["ours_ms"], *(row[f"{r}_ms"] for r in FORCED),
                 row["torch_ms"], row["ratio"], *(row[f"{r}_ratio"] for r in FORCED),
                 row["peak_numpy_mb"], *(row[f"{r}_peak_numpy_mb"] for r in FORCED),
                 row["im2col_mb"], row["winograd_v_mb"]]
        print("| " + " | ".join("–" if v is None else str(v) for v in cells) + " |", flush=True)

    def geomean(key: str) -> float:
        values = [r[key] for r in rows if r[key] is not None]
        return round(float(np.exp(np.mean(np.log(values)))), 2)

    summary = {"benchmark": "scratch_conv", "threads": args.threads, "repeats": repeats,
               "processes": processes,
               "rows": rows, "geomean_ratio": geomean("ratio"),
               **{f"{r}_geomean_ratio": geomean(f"{r}_ratio") for r in FORCED}}
    print(f"geometric-mean ratio ours/torch: {summary['geomean_ratio']}")
    if not args.quick:
        print(f"written to {save('scratch_conv_cpu', summary)}")


if __name__ == "__main__":
    main()
