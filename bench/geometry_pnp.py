"""Robust PnP: our solve_pnp_ransac against cv2.solvePnPRansac on the same correspondences.

    python bench/geometry_pnp.py            # all cases, 15 repeats
    python bench/geometry_pnp.py --quick    # two cases, 5 repeats

Synthetic scenes: 500 world points 5–7 units in front of an 800-px camera (a cube, or a tilted
plane), 0.5 px pixel noise, a fraction of the pixels replaced by uniform outliers. Both solvers
get the same threshold (2 px) and the same iteration budget, in two modes:

- ``adaptive``: confidence 0.999, at most 1000 samples, each stopping when its own estimate of
  the inlier ratio says it may (OpenCV: EPnP on 5-point samples, then SOLVEPNP_ITERATIVE on the
  inliers; ours: batched EPnP on 5-point samples, MSAC, then LM on the inliers);
- ``fixed``: confidence 1 − 10⁻¹² (OpenCV refuses 1), so both need more than their 100-sample
  cap at these inlier ratios and draw exactly 100: the same work, hypothesis for hypothesis.

For each: median milliseconds over ``--repeats`` (same inputs, ours and OpenCV called in turn so
that load on a shared machine hits both alike), the ratio ours / OpenCV (goal
≤ 2), and the accuracy of both against the ground truth: rotation error (degrees), translation
error (relative), and the fraction of true inliers found. Both run with the same thread count
(``--threads``: BLAS for us, cv2.setNumThreads for OpenCV).
"""

from __future__ import annotations

from typing import Any

from cli import parse_bench_args
from timing import alternating_median_ms

CASES = [  # (points, outlier fraction, planar, mode)
    (500, 0.3, False, "adaptive"), (500, 0.5, False, "adaptive"), (500, 0.3, True, "adaptive"),
    (500, 0.3, False, "fixed"), (500, 0.5, False, "fixed"),
]


def make_scene(n: int, outliers: float, planar: bool, seed: int = 0) -> dict[str, Any]:
    import numpy as np

    from foveal.geometry.camera import intrinsics, project
    from foveal.geometry.rotation import exp_so3

    rng = np.random.default_rng(seed)
    K = intrinsics(800.0, 800.0, 320.0, 240.0)
    R = exp_so3(rng.normal(0.0, 0.5, 3))
    t = np.array([0.2, -0.1, 6.0])
    cam = rng.uniform([-2, -1.5, -1], [2, 1.5, 1], (n, 3))
    if planar:
        cam[:, 2] = 0.3 * cam[:, 0] - 0.2 * cam[:, 1]
    cam[:, 2] += 6.0
    X = (cam - t) @ R  # x_cam = R X + t
    x = project(X, K, R, t)[0] + rng.normal(0.0, 0.5, (n, 2))
    bad = rng.random(n) < outliers
    x[bad] = rng.uniform([0, 0], [640, 480], (bad.sum(), 2))
    return {"X": X, "x": x, "K": K, "R": R, "t": t, "inliers": ~bad}


def accuracy(R: Any, t: Any, inliers: Any, s: dict[str, Any]) -> dict[str, float]:
    import numpy as np

    from foveal.geometry.rotation import log_so3

    found = np.zeros(len(s["X"]), dtype=bool)
    found[inliers] = True
    return {"rot_err_deg": float(np.degrees(np.linalg.norm(log_so3(R @ s["R"].T)))),
            "t_err_rel": float(np.linalg.norm(t - s["t"]) / np.linalg.norm(s["t"])),
            "recall": float((found & s["inliers"]).sum() / s["inliers"].sum())}


def measure(n: int, outliers: float, planar: bool, mode: str, repeats: int) -> dict[str, Any]:
    import cv2
    import numpy as np

    from foveal.geometry.pnp import solve_pnp_ransac

    s = make_scene(n, outliers, planar)
    confidence, budget = (0.999, 1000) if mode == "adaptive" else (1.0 - 1e-12, 100)

    def ours() -> tuple[Any, Any, Any]:
        return solve_pnp_ransac(s["X"], s["x"], s["K"], threshold=2.0, confidence=confidence,
                                max_iterations=budget)

    def theirs() -> tuple[Any, Any, Any]:
        _, rvec, tvec, inl = cv2.solvePnPRansac(
            s["X"], s["x"], s["K"], None, iterationsCount=budget, reprojectionError=2.0,
            confidence=confidence)
        return cv2.Rodrigues(rvec)[0], tvec.ravel(), np.asarray(inl).ravel()

    t_ours, t_cv = alternating_median_ms([ours, theirs], repeats)
    (R, t, inl), (Rc, tc, inl_c) = ours(), theirs()
    a, b = accuracy(R, t, np.flatnonzero(inl), s), accuracy(Rc, tc, inl_c, s)
    return {"case": f"N={n} outliers={outliers:.0%} {'planar' if planar else '3-D'} {mode}",
            "ours_ms": round(t_ours, 2), "opencv_ms": round(t_cv, 2),
            "ratio": round(t_ours / t_cv, 2),
            **{f"ours_{k}": round(v, 5) for k, v in a.items()},
            **{f"opencv_{k}": round(v, 5) for k, v in b.items()}}


def main() -> None:
    args = parse_bench_args(__doc__, repeats=15)
    import cv2

    from common import save

    cv2.setNumThreads(args.threads)
    cases = CASES[::3] if args.quick else CASES
    repeats = 5 if args.quick else args.repeats
    print("| case | ours ms | OpenCV ms | ratio | rot. err. ° ours / OpenCV | "
          "t err. ours / OpenCV | inlier recall ours / OpenCV |")
    print("|---|---|---|---|---|---|---|")
    rows = []
    for case in cases:
        r = measure(*case, repeats=repeats)
        rows.append(r)
        print(f"| {r['case']} | {r['ours_ms']} | {r['opencv_ms']} | {r['ratio']} | "
              f"{r['ours_rot_err_deg']:.4f} / {r['opencv_rot_err_deg']:.4f} | "
              f"{r['ours_t_err_rel']:.2e} / {r['opencv_t_err_rel']:.2e} | "
              f"{r['ours_recall']:.3f} / {r['opencv_recall']:.3f} |", flush=True)
    if not args.quick:
        summary = {"benchmark": "geometry_pnp", "threads": args.threads, "repeats": repeats,
                   "rows": rows}
        print(f"written to {save('geometry_pnp', summary)}")


if __name__ == "__main__":
    main()
