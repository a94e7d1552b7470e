"""Bundle adjustment: ours (LM + Schur complement) against scipy.optimize.least_squares.

    python bench/bundle_adjustment.py            # 4 sizes, up to 50 cameras × 10,000 points
    python bench/bundle_adjustment.py --quick    # the two small sizes only

Synthetic scene: cameras on a ring of radius 10 looking at a cube of points of side 4, each
point seen by a random 3–8 of the cameras, 0.5 px Gaussian noise on 800-px-focal images. The
start perturbs every camera but the first (held: the gauge) by ~1° and 0.1 units and every
point by 0.05 units. Three solvers minimise the same cost ½ Σ ‖r‖² from the same start:

- ``ours``: :func:`foveal.geometry.bundle_adjustment.bundle_adjust` (analytic Jacobian,
  Schur complement, dense Cholesky on the 6C × 6C reduced camera system);
- ``scipy-sparse``: ``least_squares(method="trf", tr_solver="lsmr", x_scale="jac")`` with the
  same analytic Jacobian as a sparse matrix (rotation vectors chained through the left Jacobian
  of SO(3)): the off-the-shelf alternative to a hand-written Schur-complement solver;
- ``scipy-dense``: a plain ``least_squares`` (``trf``, default 2-point finite differences, a
  dense Jacobian), only where it fits in memory and time: its Jacobian alone is
  ``2M × (6C + 3P)`` doubles (~25 GiB at full size).

Everything runs single-process with the same BLAS thread count (``--threads``). The table gives
the median seconds of ``--repeats`` runs, ours and scipy-sparse taking turns (the dense
reference runs once), final costs, iterations (Jacobian evaluations) and each time divided by
ours.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

from cli import parse_bench_args

SIZES = [(5, 50), (10, 200), (20, 400), (50, 10_000)]  # (cameras, points)
DENSE_LIMIT = 2_000  # parameters; above this the dense finite-difference reference is skipped


def make_problem(C: int, P: int, seed: int = 0) -> dict[str, Any]:
    import numpy as np

    from foveal.geometry.bundle_adjustment import reprojection_residuals
    from foveal.geometry.camera import intrinsics
    from foveal.geometry.rotation import exp_so3
    from foveal.geometry.transform import look_at

    rng = np.random.default_rng(seed)
    angles = np.linspace(0.0, 2 * np.pi, C, endpoint=False)
    centres = np.column_stack([10 * np.cos(angles), 10 * np.sin(angles), rng.uniform(-2, 2, C)])
    R, t = look_at(centres, up=(0.0, 0.0, -1.0))
    X = rng.uniform(-2, 2, (P, 3))
    views = np.minimum(rng.integers(3, 9, P), C)
    cam = np.concatenate([rng.choice(C, v, replace=False) for v in views])
    pt = np.repeat(np.arange(P), views)
    K = intrinsics(800.0, 800.0, 320.0, 240.0)
    xy = reprojection_residuals(R, t, X, cam, pt, np.zeros((len(cam), 2)), K)
    xy += rng.normal(0.0, 0.5, xy.shape)
    R0 = exp_so3(rng.normal(0.0, 0.02, (C, 3))) @ R
    t0 = t + rng.normal(0.0, 0.1, t.shape)
    R0[0], t0[0] = R[0], t[0]
    X0 = X + rng.normal(0.0, 0.05, X.shape)
    return {"R": R0, "t": t0, "X": X0, "cam": cam, "pt": pt, "xy": xy, "K": K}


def run_ours(p: dict[str, Any]) -> dict[str, Any]:
    from foveal.geometry.bundle_adjustment import bundle_adjust

    t0 = time.perf_counter()
    res = bundle_adjust(p["R"], p["t"], p["X"], p["cam"], p["pt"], p["xy"], p["K"])
    return {"seconds": time.perf_counter() - t0, "initial_cost": res.initial_cost,
            "final_cost": res.final_cost, "iterations": res.iterations}


def _scipy_parts(p: dict[str, Any]):
    """Parameters (ω, t) of cameras 1..C−1 (camera 0 held) and the points, R = exp(ω) R₀."""
    import numpy as np

    from foveal.geometry.rotation import exp_so3

    R_init, t_init, K = p["R"], p["t"], p["K"]
    C, P = len(R_init), len(p["X"])
    cam, pt, xy = p["cam"], p["pt"], p["xy"]

    def unpack(v):
        c = v[: 6 * (C - 1)].reshape(C - 1, 6)
        R = np.concatenate([R_init[:1], exp_so3(c[:, :3]) @ R_init[1:]])
        return R, np.concatenate([t_init[:1], c[:, 3:]]), v[6 * (C - 1):].reshape(P, 3), c

    def residual(v):  # lean (no input checks), so the reference is not slowed by ours
        R, t, X, _ = unpack(v)
        q = np.einsum("mij,mj->mi", R[cam], X[pt]) + t[cam]
        return ((q[:, :2] / q[:, 2:]) @ K[:2, :2].T + K[:2, 2] - xy).ravel()

    v0 = np.concatenate([np.column_stack([np.zeros((C - 1, 3)), t_init[1:]]).ravel(),
                         p["X"].ravel()])
    return unpack, residual, v0


def run_scipy_dense(p: dict[str, Any]) -> dict[str, Any]:
    import scipy.optimize

    _, residual, v0 = _scipy_parts(p)
    t0 = time.perf_counter()
    res = scipy.optimize.least_squares(residual, v0)
    return {"seconds": time.perf_counter() - t0, "final_cost": float(res.cost),
            "iterations": int(res.njev)}


def run_scipy_sparse(p: dict[str, Any]) -> dict[str, Any]:
    import numpy as np
    import scipy.optimize
    import scipy.sparse

    from foveal.geometry.bundle_adjustment import reprojection_jacobian
    from foveal.geometry.rotation import left_jacobian_so3

    unpack, residual, v0 = _scipy_parts(p)
    C, P = len(p["R"]), len(p["X"])

    def jacobian(v):
        R, t, X, c = unpack(v)
        J = reprojection_jacobian(R, t, X, p["cam"], p["pt"], p["K"])[:, 6:]
        # ∂/∂ω of exp(ω) R₀ = (∂/∂δ of exp(δ) R) · J_l(ω): scale the rotation columns.
        chain = np.zeros((C - 1, 6, 6))
        chain[:, :3, :3] = left_jacobian_so3(c[:, :3])
        chain[:, 3:, 3:] = np.eye(3)
        T = scipy.sparse.block_diag([scipy.sparse.block_diag(list(chain)),
                                     scipy.sparse.eye(3 * P)], format="csr")
        return (J @ T).tocsr()

    t0 = time.perf_counter()
    res = scipy.optimize.least_squares(residual, v0, jac=jacobian, method="trf",
                                       tr_solver="lsmr", x_scale="jac")
    return {"seconds": time.perf_counter() - t0, "final_cost": float(res.cost),
            "iterations": int(res.njev)}


def timed(runs: dict[str, Callable[[dict[str, Any]], dict[str, Any]]], p: dict[str, Any],
          repeats: int) -> dict[str, dict[str, Any]]:
    """Each solver's result with its median time over ``repeats`` runs, the solvers taking turns
    (so that a change in the machine's load hits both alike); the solvers are deterministic."""
    times: dict[str, list[float]] = {name: [] for name in runs}
    out: dict[str, dict[str, Any]] = {}
    for _ in range(repeats):
        for name, run in runs.items():
            out[name] = run(p)
            times[name].append(out[name]["seconds"])
    for name in runs:
        out[name]["seconds"] = statistics.median(times[name])
    return out


def main() -> None:
    args = parse_bench_args(__doc__, repeats=5)

    from common import save

    sizes = SIZES[:2] if args.quick else SIZES
    rows = []
    print("| cameras × points | observations | parameters | solver | seconds | final cost | "
          "iterations | time / ours |")
    print("|---|---|---|---|---|---|---|---|")
    for C, P in sizes:
        p = make_problem(C, P)
        n_params = 6 * (C - 1) + 3 * P
        results = timed({"ours": run_ours, "scipy-sparse": run_scipy_sparse}, p, args.repeats)
        ours = results["ours"]
        if n_params <= DENSE_LIMIT:
            results["scipy-dense"] = run_scipy_dense(p)
        for name, r in results.items():
            row = {"cameras": C, "points": P, "observations": len(p["cam"]),
                   "parameters": n_params, "solver": name,
                   "seconds": round(r["seconds"], 3), "final_cost": round(r["final_cost"], 6),
                   "iterations": r["iterations"],
                   "ratio_to_ours": round(r["seconds"] / ours["seconds"], 2)}
            rows.append(row)
            print(f"| {C} × {P} | {row['observations']} | {n_params} | {name} | "
                  f"{row['seconds']} | {row['final_cost']:.6f} | {row['iterations']} | "
                  f"{row['ratio_to_ours']} |", flush=True)
        if n_params > DENSE_LIMIT:
            gb = 2 * len(p["cam"]) * n_params * 8 / 2**30
            print(f"| {C} × {P} | {len(p['cam'])} | {n_params} | scipy-dense | skipped: the "
                  f"Jacobian alone is {gb:.1f} GiB | | | |")
    if not args.quick:
        summary = {"benchmark": "bundle_adjustment", "threads": args.threads,
                   "repeats": args.repeats, "rows": rows}
        print(f"written to {save('bundle_adjustment', summary)}")


if __name__ == "__main__":
    main()
