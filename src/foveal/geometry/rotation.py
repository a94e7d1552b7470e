"""Rotations: the Lie group SO(3), its algebra so(3), rotation vectors and unit quaternions.

A rotation vector ``ω = θ n`` (unit axis ``n``, angle ``θ`` in radians, right hand) is an element
of the Lie algebra so(3) through the hat map ``ω ↦ [ω]×``, the skew-symmetric matrix with
``[u]× v = u × v``. The exponential map is Rodrigues' formula

    R = exp([ω]×) = I + A [ω]× + B [ω]×²,   A = sin θ / θ,   B = (1 − cos θ) / θ²,

and the logarithm inverts it for ``θ ∈ [0, π]``. Every function is batched over leading axes:
``(..., 3)`` vectors and ``(..., 3, 3)`` matrices. Near ``θ = 0`` the coefficients use their
Taylor series; near ``θ = π`` the logarithm reads the axis from the symmetric part of ``R``
rather than dividing the skew part by ``sin θ ≈ 0`` (the classic pitfall).

Quaternions are ``(w, x, y, z)`` (scalar first, Hamilton product), unit norm, and are returned
sign-canonical (``w ≥ 0``) because ``q`` and ``−q`` are the same rotation.

References: HZ A4.3.2 (rotation vectors); T. D. Barfoot, *State Estimation for Robotics*,
Cambridge University Press, 2017, §7.1 (exp, log and the Jacobian of SO(3)); K. Shoemake,
"Animating rotation with quaternion curves", SIGGRAPH 1985; S. W. Shepperd, "Quaternion from
rotation matrix", J. Guidance and Control 1(3), 1978.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike

from foveal.errors import GeometryError
from foveal.geometry.validate import stack

# Below this angle the closed-form coefficients lose digits to cancellation (or divide 0 by 0);
# their Taylor series, truncated after the θ⁴ (or θ⁶) term, are exact to double precision there.
_SMALL_ANGLE = 1e-2


def hat(v: ArrayLike) -> np.ndarray:
    """The skew-symmetric matrix ``[v]×`` (..., 3, 3) of vectors ``v`` (..., 3).

        [v]× = [[ 0, −v₃,  v₂],
                [ v₃,  0, −v₁],
                [−v₂,  v₁,  0]],   so that  [u]× v = u × v.
    """
    v = stack(v, (3,), "hat", "v")
    x, y, z = v[..., 0], v[..., 1], v[..., 2]
    M = np.zeros((*v.shape[:-1], 3, 3))
    M[..., 0, 1], M[..., 0, 2] = -z, y
    M[..., 1, 0], M[..., 1, 2] = z, -x
    M[..., 2, 0], M[..., 2, 1] = -y, x
    return M


def vee(M: ArrayLike) -> np.ndarray:
    """The vector ``v`` (..., 3) with ``[v]× = ½(M − Mᵀ)``: the inverse of :func:`hat`.

    Reading the skew part (rather than three entries) makes ``vee`` a least-squares inverse for a
    matrix that is skew only up to rounding.
    """
    M = stack(M, (3, 3), "vee", "M")
    return 0.5 * np.stack([M[..., 2, 1] - M[..., 1, 2],
                           M[..., 0, 2] - M[..., 2, 0],
                           M[..., 1, 0] - M[..., 0, 1]], axis=-1)


def _angle(omega: np.ndarray) -> np.ndarray:
    return np.linalg.norm(omega, axis=-1)


def _sinc(theta: np.ndarray | float) -> np.ndarray | float:
    """``A = sin θ / θ`` with the series ``1 − θ²/6 + θ⁴/120 − θ⁶/5040`` near 0; a Python
    float in, a float out."""
    t2 = theta * theta
    series = 1.0 - t2 / 6.0 * (1.0 - t2 / 20.0 * (1.0 - t2 / 42.0))
    if type(theta) is float:  # a Python float (not a NumPy scalar, which takes the array path)
        return series if theta < _SMALL_ANGLE else math.sin(theta) / theta
    small = theta < _SMALL_ANGLE
    safe = np.where(small, 1.0, theta)
    return np.where(small, series, np.sin(safe) / safe)


def _cosc(theta: np.ndarray | float) -> np.ndarray | float:
    """``B = (1 − cos θ) / θ² = 2 sin²(θ/2) / θ²`` (the half-angle form avoids cancellation);
    a Python float in, a float out."""
    t2 = theta * theta
    series = 0.5 - t2 / 24.0 * (1.0 - t2 / 30.0)
    if type(theta) is float:  # a Python float (not a NumPy scalar, which takes the array path)
        return series if theta < _SMALL_ANGLE else 2.0 * math.sin(0.5 * theta) ** 2 / t2
    small = theta < _SMALL_ANGLE
    safe = np.where(small, 1.0, theta)
    return np.where(small, series, 2.0 * np.sin(0.5 * safe) ** 2 / (safe * safe))


def _sinc3(theta: np.ndarray) -> np.ndarray:
    """``C = (θ − sin θ) / θ³`` with the series ``1/6 − θ²/120 + θ⁴/5040`` near 0."""
    small = theta < _SMALL_ANGLE
    safe = np.where(small, 1.0, theta)
    t2 = theta * theta
    return np.where(small, 1.0 / 6.0 - t2 / 120.0 * (1.0 - t2 / 42.0),
                    (safe - np.sin(safe)) / safe**3)


def exp_so3(omega: ArrayLike) -> np.ndarray:
    """Rotation matrices (..., 3, 3) of rotation vectors ``ω`` (..., 3) by Rodrigues' formula.

        R = I + A [ω]× + B [ω]×²,   A = sin θ / θ,   B = (1 − cos θ) / θ²,   θ = ‖ω‖

    (HZ A4.3.2; Barfoot eq. 7.15). Equal to ``cv2.Rodrigues`` for a single vector.
    """
    omega = stack(omega, (3,), "exp_so3", "omega")
    if omega.ndim == 1:
        # One vector (an optimiser's step): the same formula on Python floats, entry by entry
        # with [ω]×² = ω ωᵀ − θ² I written as K @ K's sums. The batched path spends tens of µs
        # in per-call overhead on a single 3 × 3.
        x, y, z = omega.tolist()
        theta2 = x * x + y * y + z * z
        if theta2 < math.inf:  # NaN, or |ω| > 1e154 overflowing θ²: the batched path below
            theta = math.sqrt(theta2)
            a, b = _sinc(theta), _cosc(theta)
            return np.array(
                [[1.0 - b * (z * z + y * y), b * (y * x) - a * z, b * (z * x) + a * y],
                 [b * (x * y) + a * z, 1.0 - b * (z * z + x * x), b * (z * y) - a * x],
                 [b * (x * z) - a * y, b * (y * z) + a * x, 1.0 - b * (y * y + x * x)]])
    theta = _angle(omega)
    K = hat(omega)
    A = _sinc(theta)[..., None, None]
    B = _cosc(theta)[..., None, None]
    return np.eye(3) + A * K + B * (K @ K)


def log_so3(R: ArrayLike) -> np.ndarray:
    """Rotation vectors ``ω = θ n`` (..., 3), ``θ ∈ [0, π]``, of rotation matrices (..., 3, 3).

    With ``c = cos θ = (tr R − 1)/2`` and ``a = vee(R) = sin θ · n`` (the skew part), the angle is
    ``θ = atan2(‖a‖, c)``, accurate at every angle (``arccos`` loses half the digits near 0 and
    π). The axis then comes from

    - ``θ ≤ π/2``: ``ω = θ / sin θ · a``, with ``θ / sin θ → 1`` near 0;
    - ``θ > π/2``: the symmetric part, ``½(R + Rᵀ) − c I = (1 − c) n nᵀ``: take the column of
      largest diagonal, normalise, and give it the sign of ``a``. Dividing ``a`` by
      ``sin θ → 0`` here would amplify rounding without bound (and 0/0 at ``θ = π``).

    At exactly ``θ = π`` both ``±π n`` are valid; the sign is then whatever the column gives.
    ``R`` should be a rotation; use :func:`project_to_so3` first for a noisy estimate.
    Reference: Barfoot §7.1.3; HZ A4.3.2.
    """
    R = stack(R, (3, 3), "log_so3", "R")
    a = vee(R)
    s = np.linalg.norm(a, axis=-1)
    c = 0.5 * (np.trace(R, axis1=-2, axis2=-1) - 1.0)
    theta = np.arctan2(s, c)

    near_zero = c > 0
    omega_small = (1.0 / np.where(near_zero, _sinc(theta), 1.0))[..., None] * a

    # Axis from the symmetric part: n nᵀ = (S − c I) / (1 − c), well conditioned since 1 − c ≥ 1.
    S = 0.5 * (R + np.swapaxes(R, -1, -2))
    N = (S - c[..., None, None] * np.eye(3)) / (1.0 - np.minimum(c, 0.0))[..., None, None]
    diag = np.diagonal(N, axis1=-2, axis2=-1)
    k = np.argmax(diag, axis=-1)
    column = np.take_along_axis(N, k[..., None, None], axis=-1)[..., 0]
    n = column / np.sqrt(np.maximum(np.take_along_axis(diag, k[..., None], -1), 1e-300))
    sign = np.where(np.einsum("...i,...i->...", n, a) < 0, -1.0, 1.0)
    omega_large = (sign * theta)[..., None] * n

    return np.where(near_zero[..., None], omega_small, omega_large)


def left_jacobian_so3(omega: ArrayLike) -> np.ndarray:
    """The left Jacobian ``J(ω)`` (..., 3, 3) of SO(3), also the ``V`` matrix of ``exp_se3``.

        J = I + B [ω]× + C [ω]×²,   B = (1 − cos θ) / θ²,   C = (θ − sin θ) / θ³

    It maps a twist's translational part to the translation of ``exp_se3`` and is the
    derivative ``exp([ω + δ]×) ≈ exp([J δ]×) exp([ω]×)`` (Barfoot eq. 7.77).
    """
    omega = stack(omega, (3,), "left_jacobian_so3", "omega")
    K = hat(omega)
    theta = _angle(omega)
    return (np.eye(3) + _cosc(theta)[..., None, None] * K
            + _sinc3(theta)[..., None, None] * (K @ K))


def left_jacobian_inverse_so3(omega: ArrayLike) -> np.ndarray:
    """``J(ω)⁻¹`` (..., 3, 3) in closed form, for ``‖ω‖ < 2π`` (Barfoot eq. 7.79).

        J⁻¹ = I − ½ [ω]× + D [ω]×²,   D = (1 − (θ/2) cot(θ/2)) / θ² → 1/12 + θ²/720 near 0.
    """
    omega = stack(omega, (3,), "left_jacobian_inverse_so3", "omega")
    K = hat(omega)
    theta = _angle(omega)
    if np.any(theta >= 2 * np.pi - 1e-9):
        raise GeometryError("left_jacobian_inverse_so3: expected rotation angles below 2π, got "
                            f"{float(theta.max()):.6g} rad (J is singular at 2π)")
    small = theta < _SMALL_ANGLE
    safe = np.where(small, 1.0, theta)
    t2 = theta * theta
    D = np.where(small, 1.0 / 12.0 + t2 / 720.0 + t2 * t2 / 30240.0,
                 (1.0 - 0.5 * safe / np.tan(0.5 * safe)) / (safe * safe))
    return np.eye(3) - 0.5 * K + D[..., None, None] * (K @ K)


def project_to_so3(M: ArrayLike) -> np.ndarray:
    """The rotation nearest to ``M`` (..., 3, 3) in the Frobenius norm.

    With ``M = U Σ Vᵀ``, ``R = U diag(1, 1, det(U Vᵀ)) Vᵀ``: the sign fix keeps ``det R = +1``
    (without it a reflection comes out whenever ``det M < 0``). Reference: HZ A4.3 (via the SVD);
    Umeyama, TPAMI 1991.
    """
    M = stack(M, (3, 3), "project_to_so3", "M")
    U, _, Vt = np.linalg.svd(M)
    if M.ndim == 2:  # one matrix: the same, without the batched sign bookkeeping
        if np.linalg.det(U @ Vt) < 0:
            U[:, 2] = -U[:, 2]
        return U @ Vt
    d = np.sign(np.linalg.det(U @ Vt))
    d = np.where(d == 0, 1.0, d)
    U = U.copy()
    U[..., :, 2] *= d[..., None]
    return U @ Vt


def _canonical_sign(q: np.ndarray) -> np.ndarray:
    """``q`` or ``−q`` so that ``w > 0``, or for ``w = 0`` the first non-zero entry is > 0."""
    first = np.take_along_axis(q, np.argmax(q != 0, axis=-1)[..., None], axis=-1)[..., 0]
    return np.where((first < 0)[..., None], -q, q)


def quaternion_from_matrix(R: ArrayLike) -> np.ndarray:
    """Unit quaternions ``(w, x, y, z)`` (..., 4), ``w ≥ 0``, of rotation matrices (..., 3, 3).

    Shepperd's method: of ``4w² = 1 + tr R``, ``4x² = 1 + 2R₁₁ − tr R``, ... take the largest
    (so the square root is of a number ≥ 1 and the division is safe) and read the other three
    from the off-diagonal sums and differences, e.g. ``4wx = R₃₂ − R₂₃``, ``4xy = R₁₂ + R₂₁``.
    """
    R = stack(R, (3, 3), "quaternion_from_matrix", "R")
    r = R
    tr = np.trace(r, axis1=-2, axis2=-1)
    d0, d1, d2 = r[..., 0, 0], r[..., 1, 1], r[..., 2, 2]
    # Each row is 4·q_k·(w, x, y, z) for k = w, x, y, z.
    candidates = np.stack([
        np.stack([1 + tr, r[..., 2, 1] - r[..., 1, 2], r[..., 0, 2] - r[..., 2, 0],
                  r[..., 1, 0] - r[..., 0, 1]], -1),
        np.stack([r[..., 2, 1] - r[..., 1, 2], 1 + 2 * d0 - tr, r[..., 0, 1] + r[..., 1, 0],
                  r[..., 0, 2] + r[..., 2, 0]], -1),
        np.stack([r[..., 0, 2] - r[..., 2, 0], r[..., 0, 1] + r[..., 1, 0], 1 + 2 * d1 - tr,
                  r[..., 1, 2] + r[..., 2, 1]], -1),
        np.stack([r[..., 1, 0] - r[..., 0, 1], r[..., 0, 2] + r[..., 2, 0],
                  r[..., 1, 2] + r[..., 2, 1], 1 + 2 * d2 - tr], -1),
    ], axis=-2)
    k = np.argmax(np.diagonal(candidates, axis1=-2, axis2=-1), axis=-1)
    q = np.take_along_axis(candidates, k[..., None, None], axis=-2)[..., 0, :]
    q = q / np.linalg.norm(q, axis=-1, keepdims=True)
    return _canonical_sign(q)


def _unit_quaternion(q: ArrayLike, op: str, name: str) -> np.ndarray:
    q = stack(q, (4,), op, name)
    norm = np.linalg.norm(q, axis=-1, keepdims=True)
    if np.any(norm < 1e-12):
        raise GeometryError(f"{op}: expected non-zero quaternions {name}, got "
                            f"{int(np.count_nonzero(norm < 1e-12))} of norm ≈ 0")
    return q / norm


def matrix_from_quaternion(q: ArrayLike) -> np.ndarray:
    """Rotation matrices (..., 3, 3) of quaternions ``(w, x, y, z)`` (..., 4), normalised first.

        R = [[1 − 2(y² + z²), 2(xy − wz),     2(xz + wy)    ],
             [2(xy + wz),     1 − 2(x² + z²), 2(yz − wx)    ],
             [2(xz − wy),     2(yz + wx),     1 − 2(x² + y²)]]
    """
    q = _unit_quaternion(q, "matrix_from_quaternion", "q")
    w, x, y, z = np.moveaxis(q, -1, 0)
    return np.stack([
        np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)], -1),
        np.stack([2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)], -1),
        np.stack([2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)], -1),
    ], axis=-2)


def quaternion_multiply(p: ArrayLike, q: ArrayLike) -> np.ndarray:
    """The Hamilton product ``p ⊗ q`` (..., 4) of ``(w, x, y, z)`` quaternions (broadcast).

        p ⊗ q = (p_w q_w − p_v · q_v,  p_w q_v + q_w p_v + p_v × q_v)

    so that ``R(p ⊗ q) = R(p) R(q)`` (rotate by ``q`` first). Not normalised or re-signed: the
    product is algebra, not a canonical rotation.
    """
    p = stack(p, (4,), "quaternion_multiply", "p")
    q = stack(q, (4,), "quaternion_multiply", "q")
    pw, pv = p[..., :1], p[..., 1:]
    qw, qv = q[..., :1], q[..., 1:]
    w = pw * qw - np.sum(pv * qv, axis=-1, keepdims=True)
    v = pw * qv + qw * pv + np.cross(pv, qv)
    return np.concatenate([w, v], axis=-1)
