"""RoIAlign and RoIPool throughput: ours against torchvision.ops, or a per-RoI loop.

    python bench/roi_align.py            # 512 and 2000 RoIs, 5 repeats
    python bench/roi_align.py --quick    # 512 RoIs only, 3 repeats, nothing written

Workload (a Faster R-CNN box head on one FPN-like level): two images of 800 × 800, features
``(2, 256, 50, 50)`` (stride 16, ``spatial_scale = 1/16``), RoIs with centres uniform in the
image, sides log-uniform in [32, 512] px clipped to the image, split evenly between the images;
output 7 × 7, ``sampling_ratio = 2``, ``aligned = False``; float32 on CUDA when available, else
on the CPU. "fwd" times the forward pass (under ``no_grad``), "fwd+bwd" the forward and the
backward to the features for a fixed random upstream gradient (CUDA timings end with a
synchronize). Median over ``--repeats``, reported as RoIs per second.

References: ``torchvision.ops.roi_align`` / ``roi_pool`` (compiled kernels) when torchvision
imports; otherwise naive loops over RoIs. For RoIAlign the loop samples each RoI's grid with
``F.grid_sample`` (border padding, which is the kernel's clamping, samples outside [−1, H]
masked to 0) and averages with ``F.avg_pool2d``: the same values, "max |Δ|" is the largest
difference of the forward outputs. For RoIPool the loop crops each rounded RoI and calls
``F.adaptive_max_pool2d``, whose bins (``⌊p·h/oh⌋ … ⌈(p+1)·h/oh⌉``) differ from RoIPool's: a
timing reference only, no "max |Δ|". Ratio = our time / the reference's time.
"""

from __future__ import annotations

from typing import Any

from cli import parse_bench_args
from timing import median_ms

CASES = [512, 2000]
CHANNELS, SIZE, STRIDE, OUTPUT, SAMPLING = 256, 50, 16, 7, 2


def naive_roi_align(x: Any, rois: Any, output: int, scale: float, sampling: int) -> Any:
    """RoIAlign (aligned=False, fixed sampling ratio) one RoI at a time with grid_sample."""
    import torch
    import torch.nn.functional as F

    height, width = x.shape[-2:]
    steps = (torch.arange(output * sampling, dtype=x.dtype, device=x.device) + 0.5) / sampling
    outs = []
    for b, x1, y1, x2, y2 in rois.tolist():
        x1, y1 = x1 * scale, y1 * scale
        bin_w = max(x2 * scale - x1, 1.0) / output
        bin_h = max(y2 * scale - y1, 1.0) / output
        xs, ys = x1 + steps * bin_w, y1 + steps * bin_h
        inside = (((ys >= -1) & (ys <= height))[:, None] & ((xs >= -1) & (xs <= width))[None, :])
        grid = torch.stack(torch.broadcast_tensors(
            (xs / (width - 1) * 2 - 1)[None, :], (ys / (height - 1) * 2 - 1)[:, None]), dim=-1)
        sampled = F.grid_sample(x[int(b)][None], grid[None], mode="bilinear",
                                padding_mode="border", align_corners=True)
        outs.append(F.avg_pool2d(sampled * inside, sampling))
    return torch.cat(outs)


def naive_roi_pool(x: Any, rois: Any, output: int, scale: float) -> Any:
    """Max pooling of each rounded RoI crop with ``F.adaptive_max_pool2d``, one RoI at a time
    (RoIPool's cost structure, not its bin rule)."""
    import torch
    import torch.nn.functional as F

    height, width = x.shape[-2:]
    outs = []
    for b, x1, y1, x2, y2 in rois.tolist():
        c0 = min(max(round(x1 * scale), 0), width - 1)
        r0 = min(max(round(y1 * scale), 0), height - 1)
        c1 = max(min(round(x2 * scale), width - 1), c0)
        r1 = max(min(round(y2 * scale), height - 1), r0)
        outs.append(F.adaptive_max_pool2d(x[int(b), :, r0:r1 + 1, c0:c1 + 1][None], output))
    return torch.cat(outs)


def make_inputs(k: int, device: str) -> tuple[Any, Any]:
    import torch

    g = torch.Generator().manual_seed(0)
    image = SIZE * STRIDE
    x = torch.randn(2, CHANNELS, SIZE, SIZE, generator=g)
    centre = torch.rand(k, 2, generator=g) * image
    side = torch.exp(torch.empty(k, 2).uniform_(3.4657, 6.2383, generator=g))  # 32 … 512
    boxes = torch.cat([centre - side / 2, centre + side / 2], 1).clamp(0, image)
    batch = (torch.arange(k) % 2).float()[:, None]
    return x.to(device), torch.cat([batch, boxes], 1).to(device)


def references() -> dict[str, tuple[str, Any]]:
    """``op -> (name, fn(features, rois))``: torchvision's kernels when it imports, else loops."""
    try:
        from torchvision.ops import roi_align as tv_roi_align
        from torchvision.ops import roi_pool as tv_roi_pool
    except ImportError:
        return {"roi_align": ("per-RoI grid_sample loop",
                              lambda f, r: naive_roi_align(f, r, OUTPUT, 1 / STRIDE, SAMPLING)),
                "roi_pool": ("per-RoI adaptive_max_pool2d loop (timing only)",
                             lambda f, r: naive_roi_pool(f, r, OUTPUT, 1 / STRIDE))}
    return {"roi_align": ("torchvision",
                          lambda f, r: tv_roi_align(f, r, OUTPUT, 1 / STRIDE, SAMPLING, False)),
            "roi_pool": ("torchvision", lambda f, r: tv_roi_pool(f, r, OUTPUT, 1 / STRIDE))}


def measure(k: int, device: str, repeats: int) -> list[dict[str, Any]]:
    import torch

    from foveal.detection.roi import roi_align, roi_pool

    ours_by_op = {"roi_align": lambda f, r: roi_align(f, r, OUTPUT, 1 / STRIDE, SAMPLING, False),
                  "roi_pool": lambda f, r: roi_pool(f, r, OUTPUT, 1 / STRIDE)}
    x, rois = make_inputs(k, device)
    upstream = torch.randn(k, CHANNELS, OUTPUT, OUTPUT, generator=torch.Generator().manual_seed(1))
    upstream = upstream.to(device)
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)

    def forward(fn: Any) -> Any:
        with torch.no_grad():
            out = fn(x, rois)
        sync()
        return out

    def forward_backward(fn: Any) -> None:
        f = x.detach().requires_grad_()
        fn(f, rois).backward(upstream)
        sync()

    rows = []
    for op, (ref_name, reference) in references().items():
        ours = ours_by_op[op]
        same_bins = not ref_name.endswith("(timing only)")
        max_diff = (float((forward(ours) - forward(reference)).abs().max()) if same_bins
                    else None)
        for name, step in (("fwd", forward), ("fwd+bwd", forward_backward)):
            t_ours, _ = median_ms(lambda s=step, fn=ours: s(fn), repeats)
            t_ref, _ = median_ms(lambda s=step, fn=reference: s(fn), repeats)
            rows.append({"op": op, "rois": k, "pass": name, "device": device,
                         "reference": ref_name, "ours_ms": round(t_ours, 2),
                         "ours_rois_per_s": round(k / t_ours * 1000), "ref_ms": round(t_ref, 2),
                         "ref_rois_per_s": round(k / t_ref * 1000),
                         "ratio": round(t_ours / t_ref, 2), "max_abs_diff": max_diff})
    return rows


def main() -> None:
    args = parse_bench_args(__doc__, repeats=5, extra=lambda ap: ap.add_argument(
        "--device", choices=("auto", "cpu", "cuda"), default="auto"))
    import torch

    from common import save

    torch.set_num_threads(args.threads)
    device = args.device if args.device != "auto" else (
        "cuda" if torch.cuda.is_available() else "cpu")
    cases = CASES[:1] if args.quick else CASES
    repeats = 3 if args.quick else args.repeats
    print("| op | RoIs | pass | device | ours ms | ours RoIs/s | reference | ref ms | ref RoIs/s "
          "| ratio | max abs diff |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    rows = []
    for k in cases:
        for r in measure(k, device, repeats):
            rows.append(r)
            diff = "n/a" if r["max_abs_diff"] is None else f"{r['max_abs_diff']:.1e}"
            print(f"| {r['op']} | {r['rois']} | {r['pass']} | {r['device']} | {r['ours_ms']} | "
                  f"{r['ours_rois_per_s']} | {r['reference']} | {r['ref_ms']} | "
                  f"{r['ref_rois_per_s']} | {r['ratio']} | {diff} |", flush=True)
    if not args.quick:
        summary = {"benchmark": "roi_align", "threads": args.threads, "repeats": repeats,
                   "channels": CHANNELS, "feature_size": SIZE, "output": OUTPUT,
                   "sampling_ratio": SAMPLING, "rows": rows}
        print(f"written to {save('roi_align', summary)}")


if __name__ == "__main__":
    main()
