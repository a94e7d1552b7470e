"""Two-view geometry, ours against OpenCV on the same synthetic matches.

    python bench/geometry_two_view.py            # all rows, written to bench/results
    python bench/geometry_two_view.py --quick    # fewer repeats, nothing written

Rows (median milliseconds, ratio ours / OpenCV, goal ≤ 2):

- normalised 8-point F on 10,000 correspondences — ``fundamental_8point`` against
  ``cv2.findFundamentalMat(FM_8POINT)``;
- DLT triangulation of 100,000 points — ``triangulate_dlt`` against ``cv2.triangulatePoints``;
- RANSAC F and RANSAC E on 1,000 matches with 40 % outliers — ``find_fundamental`` /
  ``find_essential`` (which also refine on the inliers) against ``cv2.findFundamentalMat
  (FM_RANSAC)`` / ``cv2.findEssentialMat(RANSAC)``, with their accuracy alongside (Sampson error
  of the clean points, rotation error in degrees).

Both sides run on the same thread count (``--threads``: OpenCV's ``setNumThreads`` and the BLAS
threads NumPy uses). Scenes: points uniform in a 4 × 4 × 4 m box 4–8 m in front of camera 1,
f = 800 px, 640 × 480 images, 0.5 px Gaussian noise.
"""

from __future__ import annotations

from typing import Any

from cli import parse_bench_args
from timing import median_ms


def scene(n: int, outliers: float, seed: int = 0) -> dict[str, Any]:
    import numpy as np

    from foveal.geometry.rotation import exp_so3

    rng = np.random.default_rng(seed)
    K = np.array([[800.0, 0.0, 320.0], [0.0, 800.0, 240.0], [0.0, 0.0, 1.0]])
    R, t = exp_so3([0.05, -0.2, 0.03]), np.array([-1.0, 0.1, 0.2])
    X = rng.uniform([-2, -2, 4], [2, 2, 8], (n, 3))
    c1, c2 = X @ K.T, (X @ R.T + t) @ K.T
    c1, c2 = c1[:, :2] / c1[:, 2:], c2[:, :2] / c2[:, 2:]
    x1 = c1 + rng.normal(0, 0.5, c1.shape)
    x2 = c2 + rng.normal(0, 0.5, c2.shape)
    bad = rng.random(n) < outliers
    x2[bad] = rng.uniform([0, 0], [640, 480], (int(bad.sum()), 2))
    return {"K": K, "R": R, "t": t, "x1": x1, "x2": x2, "c1": c1, "c2": c2, "bad": bad,
            "P1": K @ np.eye(3, 4), "P2": K @ np.column_stack([R, t])}


def row(name: str, ours: float, opencv: float, **extra: Any) -> dict[str, Any]:
    return {"case": name, "ours_ms": round(ours, 3), "opencv_ms": round(opencv, 3),
            "ratio": round(ours / opencv, 2), **extra}


def measure(repeats: int) -> list[dict[str, Any]]:
    import cv2
    import numpy as np

    from foveal.geometry.alignment import rotation_angle_deg
    from foveal.geometry.epipolar import sampson_distance
    from foveal.geometry.essential import find_essential, recover_pose
    from foveal.geometry.fundamental import find_fundamental, fundamental_8point
    from foveal.geometry.triangulation import triangulate_dlt

    rows = []
    s = scene(10_000, 0.0)
    x1, x2 = s["x1"], s["x2"]
    rows.append(row("8-point F, 10k matches",
                    median_ms(lambda: fundamental_8point(x1, x2), 5 * repeats)[0],
                    median_ms(lambda: cv2.findFundamentalMat(x1, x2, cv2.FM_8POINT),
                              5 * repeats)[0]))

    s = scene(100_000, 0.0)
    P1, P2, x1, x2 = s["P1"], s["P2"], s["x1"], s["x2"]
    x1t, x2t = np.ascontiguousarray(x1.T), np.ascontiguousarray(x2.T)
    rows.append(row("DLT triangulation, 100k points",
                    median_ms(lambda: triangulate_dlt(P1, P2, x1, x2), repeats)[0],
                    median_ms(lambda: cv2.triangulatePoints(P1, P2, x1t, x2t), repeats)[0]))

    s = scene(1_000, 0.4, seed=1)
    x1, x2, c1, c2, good = s["x1"], s["x2"], s["c1"][~s["bad"]], s["c2"][~s["bad"]], ~s["bad"]
    F = find_fundamental(x1, x2)[0]
    Fc = cv2.findFundamentalMat(x1, x2, cv2.FM_RANSAC, 1.0, 0.999)[0]
    rows.append(row("RANSAC F, 1k matches, 40 % outliers",
                    median_ms(lambda: find_fundamental(x1, x2), repeats)[0],
                    median_ms(lambda: cv2.findFundamentalMat(x1, x2, cv2.FM_RANSAC, 1.0,
                                                             0.999), repeats)[0],
                    ours_sampson_px=round(float(sampson_distance(F, c1, c2).mean()), 3),
                    opencv_sampson_px=round(float(sampson_distance(Fc, c1, c2).mean()), 3)))

    K, R = s["K"], s["R"]

    def rotation_error(Rx: np.ndarray) -> float:
        return float(rotation_angle_deg(Rx, R))

    E, inliers = find_essential(x1, x2, K)
    Ec, mc = cv2.findEssentialMat(x1, x2, K, cv2.RANSAC, 0.999, 1.0)
    R_ours = recover_pose(E, x1, x2, K, mask=inliers)[0]
    R_cv = cv2.recoverPose(Ec[:3], x1, x2, K, mask=mc)[1]
    rows.append(row("RANSAC E, 1k matches, 40 % outliers",
                    median_ms(lambda: find_essential(x1, x2, K), repeats)[0],
                    median_ms(lambda: cv2.findEssentialMat(x1, x2, K, cv2.RANSAC, 0.999, 1.0),
                              repeats)[0],
                    ours_rotation_deg=round(rotation_error(R_ours), 3),
                    opencv_rotation_deg=round(rotation_error(R_cv), 3),
                    inlier_recall=round(float((inliers & good).sum() / good.sum()), 3)))
    return rows


def main() -> None:
    args = parse_bench_args(__doc__, repeats=9)
    import cv2

    from common import save

    cv2.setNumThreads(args.threads)
    repeats = 3 if args.quick else args.repeats
    rows = measure(repeats)
    print("| case | ours ms | OpenCV ms | ours / OpenCV | accuracy |")
    print("|---|---|---|---|---|")
    for r in rows:
        extra = ", ".join(f"{k} {v}" for k, v in r.items()
                          if k not in ("case", "ours_ms", "opencv_ms", "ratio"))
        print(f"| {r['case']} | {r['ours_ms']} | {r['opencv_ms']} | {r['ratio']} | {extra} |")
    summary = {"benchmark": "geometry_two_view", "threads": args.threads, "repeats": repeats,
               "opencv": cv2.__version__, "rows": rows}
    if not args.quick:
        print(f"written to {save('geometry_two_view', summary)}")


if __name__ == "__main__":
    main()
