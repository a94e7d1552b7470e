"""PnP (DLT, EPnP, LM refinement, RANSAC) against ground truth of synthetic scenes,
cv2.solvePnP (SOLVEPNP_EPNP, SOLVEPNP_ITERATIVE), cv2.solvePnPRansac and scipy least_squares."""

import cv2
import numpy as np
import pytest
import scipy.optimize

from foveal.errors import GeometryError
from foveal.geometry import pnp
from foveal.geometry.camera import intrinsics, project
from foveal.geometry.pnp import epnp, pnp_dlt, refine_pose, solve_pnp_ransac
from foveal.geometry.rotation import exp_so3, log_so3

K = intrinsics(800.0, 780.0, 320.0, 240.0)


def scene(n, *, planar=False, noise=0.0, outliers=0.0, seed=0):
    """World points 5–7 units in front of a camera, their pixels, and the outlier mask."""
    rng = np.random.default_rng(seed)
    R = exp_so3(rng.normal(0.0, 0.5, 3))
    t = np.array([0.2, -0.1, 6.0]) + rng.normal(0.0, 0.2, 3)
    cam = rng.uniform([-2, -1.5, -1], [2, 1.5, 1], (n, 3))
    if planar:
        cam[:, 2] = 0.3 * cam[:, 0] - 0.2 * cam[:, 1]  # a tilted plane, then to world frame
    cam[:, 2] += 6.0
    X = (cam - t) @ R  # x_cam = R X + t  ⇔  X = Rᵀ (x_cam − t)
    x = project(X, K, R, t)[0] + rng.normal(0.0, noise, (n, 2))
    bad = rng.random(n) < outliers
    x[bad] = rng.uniform([0, 0], [640, 480], (bad.sum(), 2))
    return R, t, X, x, bad


def angle_deg(A, B):
    """The angle of A Bᵀ (via log_so3, accurate near 0 where arccos of the trace is not)."""
    return float(np.degrees(np.linalg.norm(log_so3(A @ B.T))))


def cv2_pose(X, x, flags, **kw):
    ok, rvec, tvec = cv2.solvePnP(X, x, K, None, flags=flags, **kw)
    assert ok
    return cv2.Rodrigues(rvec)[0], tvec.ravel()


def cost(R, t, X, x):
    return 0.5 * float(((project(X, K, R, t)[0] - x) ** 2).sum())


# ------------------------------------------------------------------------------------- EPnP


@pytest.mark.parametrize("planar", [False, True])
@pytest.mark.parametrize("n", [6, 50])
def test_epnp_is_exact_on_noise_free_data_like_cv2_epnp(planar, n):
    """Oracles: the ground-truth pose and cv2.solvePnP(SOLVEPNP_EPNP)."""
    R, t, X, x, _ = scene(n, planar=planar, seed=n)
    Re, te = epnp(X, x, K)
    assert angle_deg(Re, R) < 1e-6 and np.abs(te - t).max() < 1e-8
    Rc, tc = cv2_pose(X, x, cv2.SOLVEPNP_EPNP)
    assert angle_deg(Re, Rc) < 1e-2 and np.abs(te - tc).max() < 1e-3


@pytest.mark.parametrize("planar", [False, True])
def test_epnp_with_noise_is_at_least_as_accurate_as_cv2_epnp(planar):
    """Oracle: cv2.solvePnP(SOLVEPNP_EPNP) on the same 1-px-noise inputs, median over seeds."""
    ours, theirs = [], []
    for seed in range(12):
        R, _, X, x, _ = scene(30, planar=planar, noise=1.0, seed=seed)
        ours.append(angle_deg(epnp(X, x, K)[0], R))
        theirs.append(angle_deg(cv2_pose(X, x, cv2.SOLVEPNP_EPNP)[0], R))
    assert np.median(ours) <= 1.2 * np.median(theirs) + 0.05
    assert np.median(ours) < 1.0


def test_epnp_with_five_points_needs_two_null_vectors():
    """Pitfall: five points give a 10 × 12 M with a 2-D null space, so the N = 1 solution
    (the last singular vector alone) is wrong and the answer must combine two (EPnP §3.3).
    Oracle: the ground truth, noise-free."""
    for seed in range(5):
        R, t, X, x, _ = scene(5, seed=seed)
        Re, te = epnp(X, x, K)
        assert angle_deg(Re, R) < 1e-6 and np.abs(te - t).max() < 1e-8


def test_epnp_on_a_plane_uses_three_control_points():
    """Pitfall: with points on a plane (a checkerboard, Z = 0) a fourth control point off the
    plane has zero spread and the barycentric coordinates divide by it (EPnP §3.5). Oracle:
    the ground truth, exact data, Z = 0 exactly."""
    R, t, _, _, _ = scene(20, planar=True, seed=3)
    rng = np.random.default_rng(3)
    board = np.column_stack([rng.uniform(-1, 1, (20, 2)), np.zeros(20)])
    x = project(board, K, R, t)[0]
    Re, te = epnp(board, x, K)
    assert np.all(np.isfinite(Re))
    assert angle_deg(Re, R) < 1e-6 and np.abs(te - t).max() < 1e-8


# -------------------------------------------------------------------------------------- DLT


def test_pnp_dlt_is_exact_on_noise_free_data():
    """Oracle: the ground truth (HZ §7.1: six points determine P)."""
    for n in (6, 40):
        R, t, X, x, _ = scene(n, seed=n)
        Rd, td = pnp_dlt(X, x, K)
        assert angle_deg(Rd, R) < 1e-6 and np.abs(td - t).max() < 1e-8


def test_pnp_dlt_then_refine_equals_cv2_iterative():
    """Oracle: cv2.solvePnP(SOLVEPNP_ITERATIVE) (DLT start + LM) reaches the same ML pose."""
    _, _, X, x, _ = scene(60, noise=1.0, seed=7)
    Rr, tr = refine_pose(*pnp_dlt(X, x, K), X, x, K)
    Rc, tc = cv2_pose(X, x, cv2.SOLVEPNP_ITERATIVE)
    assert angle_deg(Rr, Rc) < 1e-4 and np.abs(tr - tc).max() < 1e-5
    assert cost(Rr, tr, X, x) <= cost(Rc, tc, X, x) * (1 + 1e-9)


def test_pnp_dlt_fixes_the_sign_and_scale_of_the_null_vector():
    """Pitfall: the SVD returns ±p at any scale; R must have det +1 and the points positive
    depth. Oracle: the ground truth over seeds (the sign of the singular vector varies)."""
    for seed in range(10):
        R, t, X, x, _ = scene(12, noise=0.2, seed=seed)
        Rd, td = pnp_dlt(X, x, K)
        assert np.isclose(np.linalg.det(Rd), 1.0)
        assert np.all((X @ Rd.T + td)[:, 2] > 0)
        assert angle_deg(Rd, R) < 2.0 and np.abs(td - t).max() < 0.3


def test_pnp_dlt_is_invariant_to_the_world_frame_thanks_to_normalisation():
    """Pitfall: without Hartley normalisation the DLT's algebraic error, hence its answer,
    depends on where the world origin is and on the units (HZ §4.4.4). Oracle: the pose found
    in one frame, mapped to the others by the known similarity; an unnormalised DLT written
    here moves by far more on the same data."""
    _, _, X, x, _ = scene(40, noise=0.5, seed=11)
    Q = exp_so3([0.3, 0.2, -0.1])

    def naive(Xw):
        m = np.column_stack([x, np.ones(len(x))]) @ np.linalg.inv(K).T
        Xh = np.column_stack([Xw, np.ones(len(Xw))])
        A = np.zeros((2 * len(Xw), 12))
        A[0::2, 0:4], A[0::2, 8:12] = Xh, -m[:, :1] * Xh
        A[1::2, 4:8], A[1::2, 8:12] = Xh, -m[:, 1:2] * Xh
        P = np.linalg.svd(A)[2][-1].reshape(3, 4)
        U, _, Vt = np.linalg.svd(P[:, :3] * np.sign(np.linalg.det(P[:, :3])))
        return U @ Vt

    R0, R0_naive = pnp_dlt(X, x, K)[0], naive(X)
    ours, theirs = [], []
    for scale, origin in ((1.0, [10.0, -8.0, 5.0]), (100.0, [0.0, 0.0, 0.0]),
                          (0.01, [1.0, 2.0, 3.0]), (1.0, [1000.0, -800.0, 500.0])):
        Xw = scale * X @ Q.T + origin  # the same scene in another world frame
        ours.append(angle_deg(pnp_dlt(Xw, x, K)[0] @ Q, R0))  # R_new = R Qᵀ
        theirs.append(angle_deg(naive(Xw) @ Q, R0_naive))
    assert max(ours) < 1e-8
    assert max(theirs) > 1e3 * max(max(ours), 1e-9)


def test_pnp_dlt_rejects_coplanar_points():
    """HZ §7.1: points on one plane leave the 12-unknown DLT rank-deficient."""
    _, _, X, x, _ = scene(20, planar=True)
    with pytest.raises(GeometryError, match="pnp_dlt: expected world points not all on one "
                       "plane"):
        pnp_dlt(X, x, K)


# -------------------------------------------------------------------------------- refinement


def test_refine_pose_equals_cv2_iterative_and_scipy_least_squares():
    """Oracles: cv2.solvePnP(ITERATIVE, useExtrinsicGuess) and scipy least_squares on
    (rotation vector, t) with cv2.projectPoints, all from the same EPnP start."""
    _, _, X, x, _ = scene(80, noise=1.0, seed=2)
    R0, t0 = epnp(X, x, K)
    Rr, tr = refine_pose(R0, t0, X, x, K)

    Rc, tc = cv2_pose(X, x, cv2.SOLVEPNP_ITERATIVE, useExtrinsicGuess=True,
                      rvec=cv2.Rodrigues(R0)[0].copy(), tvec=t0.copy())

    def residual(p):
        return (cv2.projectPoints(X, p[:3], p[3:], K, None)[0].reshape(-1, 2) - x).ravel()

    sol = scipy.optimize.least_squares(residual, np.r_[log_so3(R0), t0], xtol=1e-14,
                                       ftol=1e-14, gtol=1e-14)
    Rs, ts = exp_so3(sol.x[:3]), sol.x[3:]
    for Ro, to in ((Rc, tc), (Rs, ts)):
        assert angle_deg(Rr, Ro) < 1e-5 and np.abs(tr - to).max() < 1e-6
    assert cost(Rr, tr, X, x) == pytest.approx(sol.cost, rel=1e-10)


def test_refine_pose_converges_from_a_distant_start():
    """Oracle: the ground truth (noise-free data), starting 10° and 0.5 units away."""
    R, t, X, x, _ = scene(30, seed=4)
    Rr, tr = refine_pose(exp_so3([0.1, -0.12, 0.05]) @ R, t + np.array([0.3, -0.2, 0.3]), X, x, K)
    assert angle_deg(Rr, R) < 1e-8 and np.abs(tr - t).max() < 1e-9


def test_refine_pose_huber_equals_scipy_on_the_robust_cost_and_downweights_outliers():
    """Oracle: scipy least_squares on the same per-point Huber cost ½ Σ ρ(‖r‖²), written as
    residuals √ρ(‖r‖²) r / ‖r‖; and the ground truth, which Huber tracks better than L2."""
    R, _, X, x, bad = scene(100, noise=0.5, outliers=0.15, seed=9)
    R0, t0 = epnp(X[~bad], x[~bad], K)
    delta = 2.0
    Rh, th = refine_pose(R0, t0, X, x, K, loss="huber", huber_delta=delta)
    Rl, _ = refine_pose(R0, t0, X, x, K)

    def residual(p):
        r = cv2.projectPoints(X, p[:3], p[3:], K, None)[0].reshape(-1, 2) - x
        norm = np.maximum(np.linalg.norm(r, axis=1, keepdims=True), 1e-300)
        rho = np.where(norm <= delta, norm**2, 2 * delta * norm - delta**2)
        return (np.sqrt(rho) * r / norm).ravel()

    sol = scipy.optimize.least_squares(residual, np.r_[log_so3(R0), t0], xtol=1e-14,
                                       ftol=1e-14, gtol=1e-14)
    assert angle_deg(Rh, exp_so3(sol.x[:3])) < 1e-5 and np.abs(th - sol.x[3:]).max() < 1e-6
    assert angle_deg(Rh, R) < 0.5 * angle_deg(Rl, R)


# ------------------------------------------------------------------------------------ RANSAC


@pytest.mark.parametrize(("outliers", "planar"), [(0.3, False), (0.5, False), (0.3, True)])
def test_solve_pnp_ransac_vs_cv2_solve_pnp_ransac(outliers, planar):
    """Oracles: the ground truth (pose and outlier mask) and cv2.solvePnPRansac on the same
    inputs, with the same threshold and confidence."""
    R, t, X, x, bad = scene(300, planar=planar, noise=0.5, outliers=outliers, seed=21)
    Ro, to, inl = solve_pnp_ransac(X, x, K, threshold=2.0, confidence=0.999)
    ok, rvec, tvec, cv_inl = cv2.solvePnPRansac(X, x, K, None, reprojectionError=2.0,
                                                confidence=0.999, iterationsCount=10_000)
    assert ok
    Rc = cv2.Rodrigues(rvec)[0]
    true_inl = ~bad & (np.linalg.norm(project(X, K, R, t)[0] - x, axis=1) < 2.0)
    assert (inl & true_inl).sum() >= 0.98 * true_inl.sum()
    assert (inl & bad).sum() <= 2  # a random outlier may land within 2 px
    assert angle_deg(Ro, R) < 0.2 and np.linalg.norm(to - t) < 0.02 * np.linalg.norm(t)
    assert angle_deg(Ro, R) <= angle_deg(Rc, R) + 0.05
    assert np.linalg.norm(to - t) <= np.linalg.norm(tvec.ravel() - t) + 0.01
    assert abs(int(inl.sum()) - len(cv_inl)) <= 0.02 * len(x)


def test_solve_pnp_ransac_same_seed_same_answer_and_refine_off_returns_epnp():
    """Determinism for a seed; refine=False gives the EPnP pose of the inliers (oracle:
    epnp on the returned inliers)."""
    _, _, X, x, _ = scene(120, noise=0.5, outliers=0.4, seed=5)
    a = solve_pnp_ransac(X, x, K, seed=3)
    b = solve_pnp_ransac(X, x, K, seed=3)
    for u, v in zip(a, b, strict=True):
        np.testing.assert_array_equal(u, v)
    R, t, inl = solve_pnp_ransac(X, x, K, seed=3, refine=False)
    Re, te = epnp(X[inl], x[inl], K)
    assert angle_deg(R, Re) < 1e-9 and np.abs(t - te).max() < 1e-9


def test_solve_pnp_ransac_scores_squared_pixel_errors_as_the_engine_expects(monkeypatch):
    """Pitfall: ransac_batched compares its residuals with threshold², so handing it plain
    distances made the in-loop threshold 2 px → 4 px (and MSAC linear). Oracle: the squared
    distances to cv2.projectPoints, inf behind the camera."""
    R, t, X, x, _ = scene(60, noise=1.5, outliers=0.3, seed=11)
    seen = {}
    engine = pnp.ransac_batched

    def spy(n, s, fit, squared_residuals, threshold, **kw):
        seen["squared"] = squared_residuals
        return engine(n, s, fit, squared_residuals, threshold, **kw)

    monkeypatch.setattr(pnp, "ransac_batched", spy)
    solve_pnp_ransac(X, x, K)
    behind = t - [0.0, 0.0, 20.0]  # every point 13–15 units behind the camera
    models = np.stack([np.column_stack([R, t]), np.column_stack([R, behind])])
    ref = cv2.projectPoints(X, cv2.Rodrigues(R)[0], t, K, None)[0].reshape(-1, 2)
    r2 = seen["squared"](models, False)  # float64, as for the inliers returned
    np.testing.assert_allclose(r2[0], ((ref - x) ** 2).sum(1), rtol=1e-9)
    assert np.isinf(r2[1]).all()
    r2 = seen["squared"](models)  # float32, as in the loop: ~1e-4 px from rounding
    np.testing.assert_allclose(r2[0], ((ref - x) ** 2).sum(1), rtol=1e-5, atol=1e-3)
    assert np.isinf(r2[1]).all()


def test_solve_pnp_ransac_far_from_the_world_origin_scores_without_float32_cancellation():
    """Pitfall: scoring in float32 on raw world coordinates of ~1e6 (say UTM metres) rounds the
    points by ~0.1 units, hundreds of pixels here; and LM stepping about the world origin
    rather than the points' centroid stalls there (δω and δt become nearly interchangeable),
    ~0.1° short. Oracle: the same scene near the origin gives the same inliers and pose (the
    translation moved with the world)."""
    _, _, X, x, _ = scene(200, noise=0.5, outliers=0.3, seed=4)
    shift = np.array([1e6, -2e6, 5e5])
    R, t, inl = solve_pnp_ransac(X, x, K)
    R_far, t_far, inl_far = solve_pnp_ransac(X + shift, x, K)
    np.testing.assert_array_equal(inl_far, inl)
    assert angle_deg(R_far, R) < 1e-6
    np.testing.assert_allclose(t_far + R_far @ shift, t, atol=1e-6)


def test_solve_pnp_ransac_refinement_reaches_the_ml_pose_of_its_inliers():
    """Oracle: cv2.solvePnP(SOLVEPNP_ITERATIVE) on our inliers gives the same pose."""
    _, _, X, x, _ = scene(200, noise=0.5, outliers=0.3, seed=8)
    R, t, inl = solve_pnp_ransac(X, x, K)
    Rc, tc = cv2_pose(X[inl], x[inl], cv2.SOLVEPNP_ITERATIVE)
    assert angle_deg(R, Rc) < 1e-4 and np.abs(t - tc).max() < 1e-4


# --------------------------------------------------------------------------------- bad input


def _inputs(n=10):
    _, _, X, x, _ = scene(n)
    return X, x


@pytest.mark.parametrize(("fn", "minimum"), [(pnp_dlt, 6), (epnp, 4), (solve_pnp_ransac, 4)])
def test_too_few_points_raise(fn, minimum):
    X, x = _inputs()
    with pytest.raises(GeometryError, match=f"expected at least {minimum} correspondences, "
                       f"got {minimum - 1}"):
        fn(X[: minimum - 1], x[: minimum - 1], K)


@pytest.mark.parametrize("fn", [pnp_dlt, epnp, solve_pnp_ransac])
def test_mismatched_nan_and_collinear_inputs_raise(fn):
    X, x = _inputs()
    with pytest.raises(GeometryError, match=r"expected x of shape \(10, 2\)"):
        fn(X, x[:9], K)
    x_nan = x.copy()
    x_nan[3, 1] = np.nan
    with pytest.raises(GeometryError, match="expected finite x, got 1 NaN"):
        fn(X, x_nan, K)
    with pytest.raises(GeometryError, match=r"expected X of shape \(N, 3\)"):
        fn(X[:, :2], x, K)
    line = np.outer(np.linspace(-1, 1, 10), [1.0, 2.0, 0.5]) + np.array([0.0, 0.0, 5.0])
    with pytest.raises(GeometryError, match="not all on one line"):
        fn(line, x, K)
    with pytest.raises(GeometryError, match="focal lengths"):
        fn(X, x, np.diag([0.0, 1.0, 1.0]))


def test_refine_pose_and_ransac_reject_bad_settings():
    R, t, X, x, _ = scene(10)
    with pytest.raises(GeometryError, match="refine_pose: expected R to be a rotation"):
        refine_pose(2 * R, t, X, x, K)
    with pytest.raises(GeometryError, match="expected loss 'linear' or 'huber', got 'l1'"):
        refine_pose(R, t, X, x, K, loss="l1")  # type: ignore[arg-type]
    with pytest.raises(GeometryError, match="expected huber_delta > 0"):
        refine_pose(R, t, X, x, K, loss="huber", huber_delta=0.0)
    with pytest.raises(GeometryError, match="expected most points in front of the camera"):
        refine_pose(R, -t, X, x, K)  # the mirror pose: every depth negative
    with pytest.raises(GeometryError, match="expected threshold > 0"):
        solve_pnp_ransac(X, x, K, threshold=-1.0)
    with pytest.raises(GeometryError, match="expected 4 ≤ sample_size ≤ N = 10, got 3"):
        solve_pnp_ransac(X, x, K, sample_size=3)
