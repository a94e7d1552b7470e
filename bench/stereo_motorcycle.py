"""Block-matching stereo on the Middlebury 2014 motorcycle pair against OpenCV's StereoBM/SGBM.

    python bench/stereo_motorcycle.py             # 5 timed repeats, writes the JSON and the PNG
    python bench/stereo_motorcycle.py --quick     # 1 repeat, writes nothing

The pair is the one scikit-image ships (``skimage.data.stereo_motorcycle()``, 500 × 741, the
Middlebury images downsampled 4×; its ground truth marks unknown pixels inf, max ≈ 60 px). Every
method gets the same uint8 grey images (``cv2.cvtColor`` RGB→GRAY) and the same 64 candidate
disparities 0…63. Ours: ``foveal.geometry.stereo.block_matching`` with a 9 × 9 window, SAD or NCC,
with and without the left-right check, sub-pixel refinement on. OpenCV: ``StereoBM`` (9 × 9,
its defaults otherwise: x-Sobel prefilter, texture and uniqueness thresholds, speckle filter off)
and ``StereoSGBM`` (5 × 5, P1 = 8·25, P2 = 32·25, left-right check at 1 px, uniqueness 10).

Per method: the bad-pixel rate at 2 px over all pixels with ground truth (a missing estimate is
bad), the rate over the pixels it estimates and its density, the median wall time, and the time
relative to StereoBM. Ours is NumPy/SciPy on one thread; OpenCV gets ``--threads`` threads
(default 1, the same). Also times the box filter, ours (SciPy running sums) against torch
(separable ``avg_pool2d``), on the 64-disparity SAD volume: the choice of backend.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from cli import parse_bench_args
from timing import median_ms

MAX_DISPARITY = 63  # inclusive: OpenCV's numDisparities = 64
BLOCK = 9




def methods() -> dict[str, Callable[[Any, Any], Any]]:
    import cv2
    import numpy as np

    from foveal.geometry.stereo import block_matching

    def ours(cost: str, lr: bool) -> Callable[[Any, Any], Any]:
        return lambda L, R: block_matching(L, R, MAX_DISPARITY, block_size=BLOCK, cost=cost,
                                           left_right_check=lr)

    def opencv(matcher: Any) -> Callable[[Any, Any], Any]:
        def run(L: Any, R: Any) -> Any:
            d = matcher.compute(L, R).astype(np.float32) / 16  # fixed point, 4 fractional bits
            d[d < 0] = np.nan  # failures are (minDisparity − 1) · 16
            return d
        return run

    bm = cv2.StereoBM_create(numDisparities=MAX_DISPARITY + 1, blockSize=BLOCK)
    sgbm = cv2.StereoSGBM_create(minDisparity=0, numDisparities=MAX_DISPARITY + 1, blockSize=5,
                                 P1=8 * 25, P2=32 * 25, disp12MaxDiff=1, uniquenessRatio=10,
                                 mode=cv2.STEREO_SGBM_MODE_SGBM)
    return {"ours SAD": ours("sad", False), "ours SAD + LR": ours("sad", True),
            "ours NCC": ours("ncc", False), "ours NCC + LR": ours("ncc", True),
            "cv2.StereoBM": opencv(bm), "cv2.StereoSGBM": opencv(sgbm)}


def box_filter_backends(L: Any, R: Any, repeats: int) -> dict[str, float]:
    """Seconds to box-filter the SAD volume |L(x) − R(x − d)|, d = 0…63, 9 × 9."""
    import numpy as np
    import torch
    import torch.nn.functional as F
    from scipy.ndimage import uniform_filter1d

    H, W = L.shape
    Lf, Rf = L.astype(np.float64), R.astype(np.float64)
    diffs = [np.abs(Lf[:, d:] - Rf[:, : W - d]) for d in range(MAX_DISPARITY + 1)]
    volume = torch.zeros((MAX_DISPARITY + 1, 1, H, W))
    for d, diff in enumerate(diffs):
        volume[d, 0, :, d:] = torch.from_numpy(diff)
    r = BLOCK // 2

    def scipy_sums() -> None:
        for diff in diffs:
            uniform_filter1d(uniform_filter1d(diff, BLOCK, 0, mode="constant"), BLOCK, 1,
                             mode="constant")

    def torch_pool() -> None:
        F.avg_pool2d(F.avg_pool2d(volume, (BLOCK, 1), 1, (r, 0)), (1, BLOCK), 1, (0, r))

    return {"scipy_uniform_filter1d_s": round(median_ms(scipy_sums, repeats)[0] / 1000, 3),
            "torch_avg_pool2d_s": round(median_ms(torch_pool, repeats)[0] / 1000, 3)}


def figure(L: Any, gt: Any, maps: dict[str, Any], rates: dict[str, float], path: Any) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    shown = ["ours SAD + LR", "ours NCC + LR", "cv2.StereoBM", "cv2.StereoSGBM"]
    cmap = plt.get_cmap("turbo").copy()
    cmap.set_bad("black")  # missing estimates and unknown ground truth
    fig, axes = plt.subplots(2, 3, figsize=(15, 7), constrained_layout=True)
    axes[0, 0].imshow(L, cmap="gray")
    axes[0, 0].set_title("left image")
    panels = [("ground truth", np.where(np.isfinite(gt), gt, np.nan))] + [
        (f"{name}: bad 2 px {100 * rates[name]:.1f}%", maps[name]) for name in shown]
    for ax, (title, d) in zip(axes.flat[1:], panels, strict=True):
        im = ax.imshow(d, cmap=cmap, vmin=0, vmax=MAX_DISPARITY)
        ax.set_title(title)
    for ax in axes.flat:
        ax.axis("off")
    fig.colorbar(im, ax=axes, shrink=0.6, label="disparity (px); black: none")
    fig.savefig(path, dpi=60)
    plt.close(fig)


def main() -> None:
    args = parse_bench_args(__doc__, repeats=5, threads=1)
    import cv2
    import numpy as np
    import torch
    from skimage import data

    from common import RESULTS, save
    from foveal.geometry.stereo import bad_pixel_rate

    cv2.setNumThreads(args.threads)
    torch.set_num_threads(args.threads)
    repeats = 1 if args.quick else args.repeats
    left, right, gt = data.stereo_motorcycle()
    L, R = (cv2.cvtColor(im, cv2.COLOR_RGB2GRAY) for im in (left, right))

    rows, maps, rates = [], {}, {}
    print("| method | bad 2 px (all) | bad 2 px (estimated) | density | time (s) | × StereoBM |")
    print("|---|---|---|---|---|---|")
    timed = {}
    for name, fn in methods().items():
        ms, disparity = median_ms(lambda fn=fn: fn(L, R), repeats)
        timed[name] = (ms / 1000, disparity)
    t_bm = timed["cv2.StereoBM"][0]
    for name, (seconds, d) in timed.items():
        e = bad_pixel_rate(d, gt, threshold=2.0)
        maps[name], rates[name] = d, e.rate
        row = {"method": name, "bad2_all": round(e.rate, 4),
               "bad2_estimated": round(e.rate_estimated, 4), "density": round(e.density, 4),
               "seconds": round(seconds, 4), "x_stereobm": round(seconds / t_bm, 1)}
        rows.append(row)
        print(f"| {name} | {100 * e.rate:.1f}% | {100 * e.rate_estimated:.1f}% | "
              f"{100 * e.density:.1f}% | {seconds:.3f} | {row['x_stereobm']} |", flush=True)
    box = box_filter_backends(L, R, repeats)
    print(f"box filter of the 64-disparity SAD volume: SciPy {box['scipy_uniform_filter1d_s']} s,"
          f" torch avg_pool2d {box['torch_avg_pool2d_s']} s")
    if args.quick:
        return
    summary = {"benchmark": "stereo_motorcycle", "image": list(L.shape),
               "disparities": MAX_DISPARITY + 1, "block_size": BLOCK, "threads": args.threads,
               "repeats": repeats, "valid_gt_pixels": int(np.isfinite(gt).sum()), "rows": rows,
               "box_filter": box}
    print(f"written to {save('stereo_motorcycle', summary)}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    figure(L, gt, maps, rates, RESULTS / "stereo_motorcycle.png")
    print(f"written to {RESULTS / 'stereo_motorcycle.png'}")


if __name__ == "__main__":
    main()
