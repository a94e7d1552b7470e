"""L-BFGS against scipy.optimize.minimize(method="L-BFGS-B"), the two-loop recursion against the
dense BFGS inverse-Hessian update, and the line search against the Wolfe conditions."""

import numpy as np
import pytest
from scipy.optimize import minimize, rosen, rosen_der

from foveal.scratch.optim import lbfgs, lbfgs_direction, strong_wolfe_line_search

SCIPY_TIGHT = {"gtol": 1e-12, "ftol": 1e-15, "maxiter": 10_000, "maxcor": 10}


def rosenbrock(x: np.ndarray) -> tuple[float, np.ndarray]:
    return float(rosen(x)), rosen_der(x)


def logistic_regression(seed: int = 0, n: int = 200, d: int = 6, lam: float = 1e-2):
    """Mean logistic loss + λ/2 ‖w‖², labels in {-1, +1}."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    y = np.sign(X @ rng.standard_normal(d) + 0.5 * rng.standard_normal(n))

    def fun(w: np.ndarray) -> tuple[float, np.ndarray]:
        z = y * (X @ w)
        f = np.mean(np.logaddexp(0.0, -z)) + 0.5 * lam * w @ w
        grad = -X.T @ (y * np.exp(-np.logaddexp(0.0, z))) / n + lam * w
        return float(f), grad

    return fun, d


def quadratic(seed: int = 0, d: int = 20):
    """½ xᵀAx - bᵀx with A SPD (condition number 100); minimiser A⁻¹b."""
    rng = np.random.default_rng(seed)
    Q, _ = np.linalg.qr(rng.standard_normal((d, d)))
    A = Q @ np.diag(np.logspace(0, 2, d)) @ Q.T
    b = rng.standard_normal(d)

    def fun(x: np.ndarray) -> tuple[float, np.ndarray]:
        return float(0.5 * x @ A @ x - b @ x), A @ x - b

    return fun, np.linalg.solve(A, b)


def assert_same_minimum(fun, x0: np.ndarray) -> np.ndarray:
    ours = lbfgs(fun, x0, max_iter=2000)
    ref = minimize(fun, x0, jac=True, method="L-BFGS-B", options=SCIPY_TIGHT)
    assert ours.converged, ours
    np.testing.assert_allclose(ours.x, ref.x, rtol=1e-6, atol=1e-6)
    assert ours.f == pytest.approx(ref.fun, rel=1e-9, abs=1e-12)
    return ours.x


def test_rosenbrock_2d_matches_scipy():
    x = assert_same_minimum(rosenbrock, np.array([-1.2, 1.0]))
    np.testing.assert_allclose(x, [1.0, 1.0], atol=1e-6)


def test_rosenbrock_10d_matches_scipy():
    x0 = np.random.default_rng(8).uniform(0.0, 2.0, size=10)
    x = assert_same_minimum(rosenbrock, x0)
    np.testing.assert_allclose(x, np.ones(10), atol=1e-6)


def test_regularised_logistic_regression_matches_scipy():
    fun, d = logistic_regression()
    assert_same_minimum(fun, np.zeros(d))


def test_convex_quadratic_matches_scipy_and_closed_form():
    fun, x_star = quadratic()
    x = assert_same_minimum(fun, np.zeros(len(x_star)))
    np.testing.assert_allclose(x, x_star, rtol=1e-6, atol=1e-8)


def test_two_loop_recursion_equals_dense_bfgs_inverse_hessian():
    """Closed form: H_0 = γI, H <- (I - ρ s yᵀ) H (I - ρ y sᵀ) + ρ s sᵀ for each pair in order."""
    rng = np.random.default_rng(9)
    n, m = 6, 4
    B = rng.standard_normal((n, n))
    hessian = B @ B.T + n * np.eye(n)  # y = H_true s gives sᵀy > 0
    s_hist = [rng.standard_normal(n) for _ in range(m)]
    y_hist = [hessian @ s + 0.1 * rng.standard_normal(n) for s in s_hist]
    g = rng.standard_normal(n)

    gamma = s_hist[-1] @ y_hist[-1] / (y_hist[-1] @ y_hist[-1])
    eye = np.eye(n)
    H = gamma * eye
    for s, y in zip(s_hist, y_hist, strict=True):
        rho = 1.0 / (y @ s)
        H = (eye - rho * np.outer(s, y)) @ H @ (eye - rho * np.outer(y, s)) + rho * np.outer(s, s)
    np.testing.assert_allclose(lbfgs_direction(g, s_hist, y_hist), -H @ g, rtol=1e-10)
    np.testing.assert_array_equal(lbfgs_direction(g, [], []), -g)


@pytest.mark.parametrize("alpha0", [1e-4, 1.0, 50.0])  # too short, about right, far too long
def test_line_search_step_satisfies_strong_wolfe_conditions(alpha0):
    c1, c2 = 1e-4, 0.9
    x = np.array([-1.2, 1.0])
    f0, g0 = rosenbrock(x)
    d = -g0 / np.linalg.norm(g0)
    found = strong_wolfe_line_search(rosenbrock, x, f0, g0, d, alpha0, c1, c2)
    assert found is not None
    alpha, f, g = found
    assert f <= f0 + c1 * alpha * (g0 @ d)
    assert abs(g @ d) <= c2 * abs(g0 @ d)
    assert (f, g.tolist()) == (rosenbrock(x + alpha * d)[0], rosenbrock(x + alpha * d)[1].tolist())


def test_line_search_refuses_an_ascent_direction():
    x = np.array([-1.2, 1.0])
    f0, g0 = rosenbrock(x)
    assert strong_wolfe_line_search(rosenbrock, x, f0, g0, g0) is None


def test_lbfgs_reports_not_converged_when_out_of_iterations():
    result = lbfgs(rosenbrock, np.array([-1.2, 1.0]), max_iter=3)
    assert result.iterations == 3 and not result.converged and result.grad_norm > 1e-8


def test_lbfgs_rejects_a_matrix_start():
    with pytest.raises(ValueError, match=r"x0 must be a 1-D array, got shape \(2, 2\)"):
        lbfgs(rosenbrock, np.zeros((2, 2)))
