"""Bundle adjustment against scipy.optimize.least_squares with a dense finite-difference
Jacobian, a numeric Jacobian, cv2.projectPoints, and the ground truth of synthetic scenes."""

import cv2
import numpy as np
import pytest
import scipy.optimize

from foveal.errors import GeometryError
from foveal.geometry.bundle_adjustment import (
    bundle_adjust,
    reprojection_jacobian,
    reprojection_residuals,
)
from foveal.geometry.camera import intrinsics
from foveal.geometry.rotation import exp_so3
from foveal.geometry.transform import look_at

K = intrinsics(800.0, 780.0, 320.0, 240.0)


def scene(C=6, P=60, *, noise=0.5, seed=0, per_camera_K=False):
    """C cameras on a ring of radius 10 looking at a 4-unit cube of P points, each point seen
    by 3–5 cameras; observations with Gaussian pixel noise."""
    rng = np.random.default_rng(seed)
    angles = np.linspace(0.0, 2 * np.pi, C, endpoint=False)
    centres = np.column_stack([10 * np.cos(angles), 10 * np.sin(angles), rng.uniform(-2, 2, C)])
    R, t = look_at(centres, up=(0.0, 0.0, -1.0))
    X = rng.uniform(-2, 2, (P, 3))
    cam, pt = [], []
    for j in range(P):
        seen = rng.choice(C, size=min(C, rng.integers(3, 6)), replace=False)
        cam += list(seen)
        pt += [j] * len(seen)
    cam, pt = np.array(cam), np.array(pt)
    Ks = (np.stack([intrinsics(700 + 20 * i, 690 + 25 * i, 320, 240, skew=i) for i in range(C)])
          if per_camera_K else K)
    xy = reprojection_residuals(R, t, X, cam, pt, np.zeros((len(cam), 2)), Ks)
    return R, t, X, cam, pt, xy + rng.normal(0.0, noise, xy.shape), Ks


def perturb(R, t, X, *, seed=1, keep=(0,)):
    rng = np.random.default_rng(seed)
    R2 = exp_so3(rng.normal(0.0, 0.02, (len(R), 3))) @ R
    t2 = t + rng.normal(0.0, 0.1, t.shape)
    R2[list(keep)], t2[list(keep)] = R[list(keep)], t[list(keep)]
    return R2, t2, X + rng.normal(0.0, 0.05, X.shape)


def dense_scipy_cost(R, t, X, cam, pt, xy, Ks, robust=None):
    """Oracle: scipy least_squares (MINPACK LM, forward differences: a dense Jacobian), on
    rotation increments ω (R = exp(ω) R₀), t and points; camera 0 held, like our default."""
    C, P = len(R), len(X)

    def unpack(v):
        c = v[: 6 * (C - 1)].reshape(C - 1, 6)
        Rv = np.concatenate([R[:1], exp_so3(c[:, :3]) @ R[1:]])
        tv = np.concatenate([t[:1], c[:, 3:]])
        return Rv, tv, v[6 * (C - 1):].reshape(P, 3)

    Kc = np.broadcast_to(Ks, (C, 3, 3))[cam]

    def residual(v):  # written out here: an independent projection, and no input checks
        Rv, tv, Xv = unpack(v)
        p = np.einsum("mij,mj->mi", Rv[cam], Xv[pt]) + tv[cam]
        r = np.einsum("mij,mj->mi", Kc, p / p[:, 2:])[:, :2] - xy
        if robust is None:
            return r.ravel()
        norm = np.maximum(np.linalg.norm(r, axis=1, keepdims=True), 1e-300)
        rho = np.where(norm <= robust, norm**2, 2 * robust * norm - robust**2)
        return (np.sqrt(rho) * r / norm).ravel()  # ½‖·‖² = ½ ρ(‖r‖²), per observation

    v0 = np.concatenate([np.column_stack([np.zeros((C - 1, 3)), t[1:]]).ravel(), X.ravel()])
    return scipy.optimize.least_squares(residual, v0, method="lm", ftol=1e-12, xtol=1e-12,
                                        gtol=1e-12).cost


def test_residuals_equal_cv2_project_points():
    """Oracle: cv2.projectPoints per camera (no skew: OpenCV ignores K[0, 1])."""
    R, t, X, cam, pt, xy, _ = scene()
    r = reprojection_residuals(R, t, X, cam, pt, xy, K)
    for i in range(len(R)):
        sel = cam == i
        ref = cv2.projectPoints(X[pt[sel]], cv2.Rodrigues(R[i])[0], t[i], K, None)[0]
        np.testing.assert_allclose(r[sel], ref.reshape(-1, 2) - xy[sel], atol=1e-9)


@pytest.mark.parametrize("per_camera_K", [False, True])
def test_analytic_jacobian_equals_central_differences(per_camera_K):
    """Oracle: central differences of reprojection_residuals, perturbing rotations on the left
    (R ← exp([ε eₖ]×) R), translations and points, with per-camera K with skew."""
    R, t, X, cam, pt, xy, Ks = scene(4, 12, per_camera_K=per_camera_K, seed=3)
    J = reprojection_jacobian(R, t, X, cam, pt, Ks).toarray()
    C, P, h = len(R), len(X), 1e-6
    numeric = np.empty_like(J)
    for k in range(6 * C + 3 * P):
        out = []
        for sign in (1.0, -1.0):
            Rp, tp, Xp = R.copy(), t.copy(), X.copy()
            if k < 6 * C:
                i, a = divmod(k, 6)
                if a < 3:
                    Rp[i] = exp_so3(sign * h * np.eye(3)[a]) @ R[i]
                else:
                    tp[i, a - 3] += sign * h
            else:
                j, a = divmod(k - 6 * C, 3)
                Xp[j, a] += sign * h
            out.append(reprojection_residuals(Rp, tp, Xp, cam, pt, xy, Ks).ravel())
        numeric[:, k] = (out[0] - out[1]) / (2 * h)
    np.testing.assert_allclose(J, numeric, atol=1e-5 * np.abs(J).max())
    assert np.count_nonzero(J) <= 9 * J.shape[0]  # 9 non-zeros per row: the sparsity pattern


def test_bundle_adjust_reaches_the_dense_scipy_cost_from_a_perturbed_start():
    """Oracle: scipy least_squares with a dense finite-difference Jacobian reaches the same
    final cost; and the cost is at the noise level (≤ the cost of the true scene)."""
    R, t, X, cam, pt, xy, _ = scene(5, 30)
    R0, t0, X0 = perturb(R, t, X)
    res = bundle_adjust(R0, t0, X0, cam, pt, xy, K)
    assert res.converged and res.initial_cost > 100 * res.final_cost
    assert res.final_cost == pytest.approx(dense_scipy_cost(R0, t0, X0, cam, pt, xy, K),
                                           rel=1e-8)
    true_cost = 0.5 * (reprojection_residuals(R, t, X, cam, pt, xy, K) ** 2).sum()
    assert res.final_cost <= true_cost
    assert 0.3 < res.rms_error < 0.7  # noise σ = 0.5 px per coordinate, minus the fit's dof
    np.testing.assert_allclose(res.residuals,
                               reprojection_residuals(res.R, res.t, res.points, cam, pt, xy, K))


def test_bundle_adjust_with_per_camera_intrinsics_reaches_the_dense_scipy_cost():
    """Oracle: scipy least_squares, dense finite differences, with one K (with skew) per
    camera."""
    R, t, X, cam, pt, xy, Ks = scene(4, 24, per_camera_K=True, seed=2)
    R0, t0, X0 = perturb(R, t, X, seed=4)
    res = bundle_adjust(R0, t0, X0, cam, pt, xy, Ks)
    assert res.final_cost == pytest.approx(dense_scipy_cost(R0, t0, X0, cam, pt, xy, Ks),
                                           rel=1e-8)


def _with_outliers(xy, seed=7, fraction=0.05):
    rng = np.random.default_rng(seed)
    bad = rng.random(len(xy)) < fraction
    out = xy.copy()
    out[bad] += rng.choice([-1.0, 1.0], (bad.sum(), 2)) * rng.uniform(20, 60, (bad.sum(), 2))
    return out, bad


def test_huber_reaches_the_dense_scipy_robust_cost():
    """Oracle: scipy least_squares (dense finite differences) on residuals √ρ(‖r‖²) r/‖r‖, whose
    cost is our ½ Σ ρ(‖r‖²) with the Huber ρ on each observation's 2-D residual."""
    R, t, X, cam, pt, xy, _ = scene(3, 12, seed=5)
    xy, _ = _with_outliers(xy, fraction=0.1)
    R0, t0, X0 = perturb(R, t, X)
    res = bundle_adjust(R0, t0, X0, cam, pt, xy, K, loss="huber", huber_delta=2.0)
    ref = dense_scipy_cost(R0, t0, X0, cam, pt, xy, K, robust=2.0)
    assert res.final_cost == pytest.approx(ref, rel=1e-9)


def test_huber_uses_the_loss_curvature_not_plain_reweighting():
    """Pitfall: iteratively reweighted least squares with weights ρ' I keeps a curvature the
    Huber loss does not have along an outlier's residual, and crawls (hundreds of iterations
    on this problem). Oracle: the minimum found by a run with no tolerance and 2000
    iterations; the default run reaches it to 1e-9 in well under 100."""
    R, t, X, cam, pt, xy, _ = scene(seed=5)
    xy, _ = _with_outliers(xy)
    R0, t0, X0 = perturb(R, t, X)
    res = bundle_adjust(R0, t0, X0, cam, pt, xy, K, loss="huber", huber_delta=2.0)
    best = bundle_adjust(R0, t0, X0, cam, pt, xy, K, loss="huber", huber_delta=2.0,
                         tolerance=0.0, max_iterations=2000)
    assert res.converged and res.iterations < 100
    assert res.final_cost == pytest.approx(best.final_cost, rel=1e-9)


def test_huber_is_applied_to_the_residual_norm_not_per_coordinate():
    """Pitfall: scipy's loss="huber" robustifies each coordinate; ours robustifies each
    observation's ‖r‖ (the textbook ρ(‖x̃ − π‖²)). Oracle: the closed form ½ Σ ρ(‖r‖²) of the
    returned residuals, which differs from the per-coordinate sum."""
    R, t, X, cam, pt, xy, _ = scene(seed=6)
    xy, _ = _with_outliers(xy)
    res = bundle_adjust(R, t, X, cam, pt, xy, K, loss="huber", huber_delta=1.0)
    norm = np.linalg.norm(res.residuals, axis=1)
    per_observation = 0.5 * np.where(norm <= 1, norm**2, 2 * norm - 1).sum()
    a = np.abs(res.residuals)
    per_coordinate = 0.5 * np.where(a <= 1, a**2, 2 * a - 1).sum()
    assert res.final_cost == pytest.approx(per_observation, rel=1e-12)
    assert abs(per_coordinate - per_observation) > 1e-3 * per_observation


def test_huber_down_weights_planted_outliers():
    """Oracle: the ground truth. Cameras 0 and 1 are held at their true poses, which fixes the
    whole gauge (including scale), so poses and points compare directly; Huber lands much
    closer than least squares when 5% of the observations are 20–60 px off."""
    R, t, X, cam, pt, xy, _ = scene(8, 120, seed=8)
    xy, bad = _with_outliers(xy, fraction=0.05)
    R0, t0, X0 = perturb(R, t, X, keep=(0, 1))

    def errors(res):
        return np.abs(res.t - t).max(), np.median(np.linalg.norm(res.points - X, axis=1))

    l2 = errors(bundle_adjust(R0, t0, X0, cam, pt, xy, K, fixed_cameras=(0, 1)))
    huber_res = bundle_adjust(R0, t0, X0, cam, pt, xy, K, fixed_cameras=(0, 1), loss="huber",
                              huber_delta=1.0)
    huber = errors(huber_res)
    assert huber[0] < 0.5 * l2[0] and huber[1] < 0.5 * l2[1]
    r = np.linalg.norm(huber_res.residuals, axis=1)
    assert np.median(r[bad]) > 10 and np.median(r[~bad]) < 1  # outliers stay outliers


def test_fixed_cameras_are_returned_unchanged():
    """Gauge: held cameras are bit-for-bit the input; the others move."""
    R, t, X, cam, pt, xy, _ = scene()
    R0, t0, X0 = perturb(R, t, X, keep=())
    res = bundle_adjust(R0, t0, X0, cam, pt, xy, K, fixed_cameras=(0, 3))
    for i in (0, 3):
        np.testing.assert_array_equal(res.R[i], R0[i])
        np.testing.assert_array_equal(res.t[i], t0[i])
    assert np.abs(res.t[1] - t0[1]).max() > 1e-3


def test_fix_scale_holds_one_baseline_coordinate_and_keeps_the_minimum():
    """Gauge: the scale is a gauge freedom, so fixing it does not change the minimum cost
    (oracle: the run without it), and the held translation coordinate is unchanged."""
    R, t, X, cam, pt, xy, _ = scene(seed=9)
    R0, t0, X0 = perturb(R, t, X)
    free = bundle_adjust(R0, t0, X0, cam, pt, xy, K)
    held = bundle_adjust(R0, t0, X0, cam, pt, xy, K, fix_scale=True)
    assert held.final_cost == pytest.approx(free.final_cost, rel=1e-7)
    t_rel = t0[1] - R0[1] @ R0[0].T @ t0[0]
    k = int(np.argmax(np.abs(t_rel)))
    assert held.t[1, k] == t0[1, k]
    assert np.abs(held.t[1] - t0[1]).max() > 1e-4  # the other coordinates still move


def test_bundle_adjust_without_a_gauge_still_converges():
    """Pitfall: with no camera held the normal equations are singular (7 gauge directions);
    LM's damping must still give finite steps. Oracle: the dense scipy cost."""
    R, t, X, cam, pt, xy, _ = scene(4, 20, seed=10)
    R0, t0, X0 = perturb(R, t, X)
    res = bundle_adjust(R0, t0, X0, cam, pt, xy, K, fixed_cameras=())
    assert np.all(np.isfinite(res.points))
    assert res.final_cost == pytest.approx(dense_scipy_cost(R0, t0, X0, cam, pt, xy, K),
                                           rel=1e-6)


def test_bad_input_raises():
    R, t, X, cam, pt, xy, _ = scene(4, 10)
    with pytest.raises(GeometryError, match="expected point_index of length"):
        bundle_adjust(R, t, X, cam, pt[:-1], xy, K)
    with pytest.raises(GeometryError, match=r"expected xy of shape \("):
        bundle_adjust(R, t, X, cam, pt, xy[:-1], K)
    with pytest.raises(GeometryError, match=r"expected camera_index in \[0, 4\)"):
        bundle_adjust(R, t, X, np.where(cam == 0, 4, cam), pt, xy, K)
    with pytest.raises(GeometryError, match="expected camera_index as a 1-D integer array"):
        bundle_adjust(R, t, X, cam.astype(float), pt, xy, K)
    bad = xy.copy()
    bad[0, 0] = np.nan
    with pytest.raises(GeometryError, match="expected finite xy"):
        bundle_adjust(R, t, X, cam, pt, bad, K)
    with pytest.raises(GeometryError, match="expected R to be a rotation"):
        bundle_adjust(2 * R, t, X, cam, pt, xy, K)
    with pytest.raises(GeometryError, match="observed at most once"):
        bundle_adjust(R, t, X, np.r_[cam, cam[:1]], np.r_[pt, pt[:1]], np.r_[xy, xy[:1]], K)
    with pytest.raises(GeometryError, match=r"expected fixed_cameras in \[0, 4\)"):
        bundle_adjust(R, t, X, cam, pt, xy, K, fixed_cameras=(5,))
    with pytest.raises(GeometryError, match="expected fix_scale with at least one fixed"):
        bundle_adjust(R, t, X, cam, pt, xy, K, fixed_cameras=(), fix_scale=True)
    with pytest.raises(GeometryError, match="expected loss 'linear' or 'huber'"):
        bundle_adjust(R, t, X, cam, pt, xy, K, loss="cauchy")  # type: ignore[arg-type]
    with pytest.raises(GeometryError, match=r"expected K of shape \(3, 3\) or \(4, 3, 3\)"):
        bundle_adjust(R, t, X, cam, pt, xy, np.stack([K] * 3))
