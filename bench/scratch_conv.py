"""The scratch engine's fast conv2d (forward + backward) against torch.nn.functional.conv2d.

    python bench/scratch_conv.py            # all shapes
    python bench/scratch_conv.py --quick    # two shapes, fewer repeats

Both run float32 on the CPU with the same thread count (torch's intra-op threads = the BLAS
threads NumPy uses = the FFT workers, set through ``--threads``). For each shape: median
milliseconds of forward plus backward (input, weight and bias gradients) for ours, by
``conv2d``'s default ``"auto"`` (the FFT or im2col, whichever its cost estimate
``prefers_fft`` picks: recorded per row) and by ``"im2col"``, and for torch autograd, each
side's repeats back to back; the ratios ours / torch (goal ≤ 2); the
peak memory NumPy allocated during each of ours (tracemalloc); and the im2col buffer size
``C_in·k²·N·OH·OW·4`` bytes that an unchunked im2col would hold.
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




def measure(n: int, c: int, o: int, h: int, k: int, repeats: int) -> dict[str, Any]:
    """Time forward + backward of ours and torch's conv2d on one shape ("same" padding)."""
    import numpy as np
    import torch
    import torch.nn.functional as F

    from foveal.scratch import Tensor
    from foveal.scratch.ops.conv import conv2d

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
    t_auto, t_im2col, t_torch = (median_ms(fn, repeats)[0]
                                 for fn in (ours("auto"), ours("im2col"), theirs))
    peaks = []
    for algorithm in ("auto", "im2col"):
        tracemalloc.start()
        ours(algorithm)()
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
    cols = c * k * k * n * h * h * 4
    from foveal.scratch.ops.conv import prefers_fft
    from foveal.scratch.ops.conv_fft import fft_shape

    chosen = "fft" if prefers_fft(n, c, o, (k, k), (h, h), fft_shape(h + 2 * pad, h + 2 * pad)) \
        else "im2col"
    return {"shape": f"N={n} C={c}->{o} {h}x{h} k={k}", "auto": chosen,
            "ours_ms": round(t_auto, 2),
            "im2col_ms": round(t_im2col, 2), "torch_ms": round(t_torch, 2),
            "ratio": round(t_auto / t_torch, 2), "im2col_ratio": round(t_im2col / t_torch, 2),
            "peak_numpy_mb": round(peaks[0] / 2**20, 1),
            "im2col_peak_numpy_mb": round(peaks[1] / 2**20, 1), "im2col_mb": round(cols / 2**20, 1)}


def main() -> None:
    args = parse_bench_args(__doc__, repeats=7)
    import numpy as np
    import torch

    from common import save

    torch.set_num_threads(args.threads)
    shapes = SHAPES[::3] if args.quick else SHAPES
    repeats = 3 if args.quick else args.repeats
    rows = []
    for shape in shapes:
        row = measure(*shape, repeats=repeats)
        rows.append(row)
        print(f"| {row['shape']} | {row['auto']} | {row['ours_ms']} | {row['im2col_ms']} | "
              f"{row['torch_ms']} | "
              f"{row['ratio']} | {row['im2col_ratio']} | {row['peak_numpy_mb']} | "
              f"{row['im2col_peak_numpy_mb']} | {row['im2col_mb']} |", flush=True)
    ratios = [r["ratio"] for r in rows]
    summary = {"benchmark": "scratch_conv", "threads": args.threads, "repeats": repeats,
               "rows": rows, "geomean_ratio": round(float(np.exp(np.mean(np.log(ratios)))), 2),
               "im2col_geomean_ratio": round(float(np.exp(np.mean(np.log(
                   [r["im2col_ratio"] for r in rows])))), 2)}
    print(f"geometric-mean ratio ours/torch: {summary['geomean_ratio']}")
    if not args.quick:
        print(f"written to {save('scratch_conv_cpu', summary)}")


if __name__ == "__main__":
    main()
