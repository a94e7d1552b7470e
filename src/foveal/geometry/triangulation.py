"""Triangulation: world points from their pixels in two or more views with known cameras.

Given cameras ``Pᵥ`` (3, 4) and a point's pixels ``xᵥ = (uᵥ, vᵥ)``, find ``X`` with
``x̃ᵥ ∼ Pᵥ X̃``. Each view gives two linear equations in the homogeneous ``X̃`` (HZ §12.2):

    (uᵥ pᵥ³ᵀ − pᵥ¹ᵀ) X̃ = 0,     (vᵥ pᵥ³ᵀ − pᵥ²ᵀ) X̃ = 0,      pᵥⁱᵀ the rows of Pᵥ,

stacked into ``A X̃ = 0`` (2M × 4). The DLT solution is the right singular vector of ``A`` of the
smallest singular value, i.e. the eigenvector of the 4×4 ``M = AᵀA`` of its smallest eigenvalue.

Speed. ``M`` is linear in the per-view features ``(u² + v², u, v, 1)``:

    (u p³ − p¹)(u p³ − p¹)ᵀ + (v p³ − p²)(v p³ − p²)ᵀ
        = (u² + v²) p³p³ᵀ − u (p³p¹ᵀ + p¹p³ᵀ) − v (p³p²ᵀ + p²p³ᵀ) + p¹p¹ᵀ + p²p²ᵀ,

so the 10 distinct entries of every point's ``M`` come from one ``(10, 4M) @ (4M, N)`` matrix
product. Its null vector is read from the adjugate: ``adj M = Σᵢ (Πⱼ≠ᵢ λⱼ) vᵢ vᵢᵀ`` is dominated
by ``v₄ v₄ᵀ`` (exactly so when the rays meet, ``λ₄ = 0``), and multiplying by ``adj M`` twice
more is inverse iteration, shrinking the other directions by ``(λ₄ / λ₃)²`` each time. All of it
is elementwise arithmetic on ``N``-vectors — no per-point LAPACK call.

Other pieces: the midpoint method (HZ §12.1 mentions it; the closest points of two rays),
Gauss–Newton/Levenberg–Marquardt refinement of the reprojection error per point (HZ §12.3's
cost, minimised directly), triangulation angles, depths (HZ §6.2.3) and the cheirality test.

Reference: HZ §12.2 (linear triangulation), §6.2.3 (depth of points), §12.3 (the geometric
error), §6.2.2 (back-projection: camera centre and rays).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike

from foveal.errors import GeometryError
from foveal.geometry.validate import matrix, points

# |w| below this fraction of ‖X̃‖ is a point at infinity (parallel rays): no finite position.
_INFINITY_RTOL = 1e-12

# Upper-triangle index pairs of a symmetric 4×4 in the order the 10 columns are stored.
_PAIRS = [(i, j) for i in range(4) for j in range(i, 4)]

# Points per block of the vectorised DLT (see _null_vectors).
_CHUNK = 8192


def _projection(P: ArrayLike, op: str, name: str) -> np.ndarray:
    P = matrix(P, (3, 4), op, name)
    if np.linalg.matrix_rank(P) < 3:
        raise GeometryError(f"{op}: expected {name} of rank 3 (a camera), got rank "
                            f"{np.linalg.matrix_rank(P)}")
    return P


def _projections(Ps: ArrayLike | Sequence[ArrayLike], op: str) -> np.ndarray:
    try:
        arr = np.asarray(Ps, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise GeometryError(f"{op}: expected Ps as an (M, 3, 4) array of cameras, got "
                            f"{type(Ps).__name__} ({exc})") from None
    if arr.ndim != 3 or arr.shape[1:] != (3, 4) or len(arr) < 2:
        raise GeometryError(f"{op}: expected Ps of shape (M, 3, 4) with M ≥ 2, got {arr.shape}")
    return np.stack([_projection(P, op, f"Ps[{i}]") for i, P in enumerate(arr)])


def _observations(xs: ArrayLike, m: int, op: str, name: str = "xs") -> np.ndarray:
    try:
        arr = np.asarray(xs, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise GeometryError(f"{op}: expected {name} as an (M, N, 2) array, got "
                            f"{type(xs).__name__} ({exc})") from None
    if arr.ndim != 3 or arr.shape[0] != m or arr.shape[2] != 2:
        raise GeometryError(f"{op}: expected {name} of shape ({m}, N, 2) for {m} cameras, got "
                            f"{arr.shape}")
    return arr


def _visibility(visible: ArrayLike | None, xs: np.ndarray, op: str) -> np.ndarray:
    """(M, N) bool mask; invisible observations may hold NaN, visible ones must be finite."""
    if visible is None:
        mask = np.ones(xs.shape[:2], dtype=bool)
    else:
        mask = np.asarray(visible, dtype=bool)
        if mask.shape != xs.shape[:2]:
            raise GeometryError(f"{op}: expected visible of shape {xs.shape[:2]}, got "
                                f"{mask.shape}")
    bad = mask & ~np.isfinite(xs).all(axis=2)
    if bad.any():
        raise GeometryError(f"{op}: expected finite pixels where visible, got {int(bad.sum())} "
                            "NaN or inf observation(s)")
    if (mask.sum(axis=0) < 2).any():
        raise GeometryError(f"{op}: expected every point visible in at least 2 views, got "
                            f"{int((mask.sum(axis=0) < 2).sum())} point(s) seen fewer times")
    return mask


def _feature_map(P: np.ndarray) -> np.ndarray:
    """(4, 10): the upper triangle of one view's ``AᵀA`` as a linear map of the features
    ``(u² + v², u, v, 1)`` (module docstring)."""
    p1, p2, p3 = P
    blocks = [np.outer(p3, p3), -(np.outer(p3, p1) + np.outer(p1, p3)),
              -(np.outer(p3, p2) + np.outer(p2, p3)), np.outer(p1, p1) + np.outer(p2, p2)]
    return np.array([[b[i, j] for i, j in _PAIRS] for b in blocks])


def _normal_entries(maps: np.ndarray, xs: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    """The 10 distinct entries (10, N) of each point's ``M = AᵀA`` (rows contiguous: the
    eigenvector code below works on whole rows); ``maps`` (10, 4M) stacks the views'
    :func:`_feature_map`."""
    m, n = xs.shape[:2]
    features = np.empty((4 * m, n))
    for v in range(m):
        u, w = xs[v, :, 0], xs[v, :, 1]
        features[4 * v] = u * u + w * w
        features[4 * v + 1] = u
        features[4 * v + 2] = w
        features[4 * v + 3] = 1.0
        if mask is not None:
            features[4 * v:4 * v + 4, ~mask[v]] = 0.0  # an unseen view adds no rows to A
    return maps @ features


def _smallest_eigenvectors(entries: np.ndarray) -> np.ndarray:
    """Unit eigenvectors (N, 4) of the smallest eigenvalue of symmetric 4×4 matrices given by
    their upper triangles (10, N), from the adjugate (module docstring).

    The adjugate by 2×2 minors: with ``s`` the minors of rows 0–1 and ``c`` those of rows 2–3,
    each cofactor is a sum of three products ``a·c`` or ``a·s`` (Laplace expansion along two
    rows). Everything is kept as separate ``N``-vectors: elementwise arithmetic on contiguous
    rows is several times faster here than any batched 4×4 LAPACK call.
    """
    a00, a01, a02, a03, a11, a12, a13, a22, a23, a33 = entries
    s0 = a00 * a11 - a01 * a01
    s1 = a00 * a12 - a01 * a02
    s2 = a00 * a13 - a01 * a03
    s3 = a01 * a12 - a11 * a02
    s4 = a01 * a13 - a11 * a03
    s5 = a02 * a13 - a12 * a03
    c5 = a22 * a33 - a23 * a23
    c4 = a12 * a33 - a13 * a23
    c3 = a12 * a23 - a13 * a22
    c2 = a02 * a33 - a03 * a23
    c1 = a02 * a23 - a03 * a22
    b00 = a11 * c5 - a12 * c4 + a13 * c3
    b01 = -a01 * c5 + a02 * c4 - a03 * c3
    b02 = a13 * s5 - a23 * s4 + a33 * s3
    b03 = -a12 * s5 + a22 * s4 - a23 * s3
    b11 = a00 * c5 - a02 * c2 + a03 * c1
    b12 = -a03 * s5 + a23 * s2 - a33 * s1
    b13 = a02 * s5 - a22 * s2 + a23 * s1
    b22 = a03 * s4 - a13 * s2 + a33 * s0
    b23 = -a02 * s4 + a12 * s2 - a23 * s0
    b33 = a02 * s3 - a12 * s1 + a22 * s0
    adj = ((b00, b01, b02, b03), (b01, b11, b12, b13), (b02, b12, b22, b23),
           (b03, b13, b23, b33))  # M symmetric ⇒ adj M symmetric
    # Start from the column of the largest diagonal entry: v₄ times its largest component
    # (the diagonal of adj M = c v₄v₄ᵀ is c v₄², c > 0).
    v, best = list(adj[0]), np.abs(b00)
    for k in range(1, 4):
        larger = np.abs(adj[k][k]) > best
        best = np.where(larger, np.abs(adj[k][k]), best)
        v = [np.where(larger, new, old) for new, old in zip(adj[k], v, strict=True)]
    for _ in range(2):
        scale = 1.0 / np.maximum(np.maximum(np.abs(v[0]), np.abs(v[1])),
                                 np.maximum(np.abs(v[2]), np.abs(v[3])))
        v = [c * scale for c in v]
        v = [row[0] * v[0] + row[1] * v[1] + row[2] * v[2] + row[3] * v[3] for row in adj]
    V = np.stack(v, axis=1)
    return V / np.linalg.norm(V, axis=1, keepdims=True)


def _null_vectors(Ps: np.ndarray, xs: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    """Unit DLT solutions ``X̃`` (N, 4), in chunks: each chunk's few dozen temporaries then
    stay in cache instead of being fresh multi-megabyte allocations (page faults dominate
    otherwise)."""
    n = xs.shape[1]
    maps = np.concatenate([_feature_map(P) for P in Ps]).T
    out = np.empty((n, 4))
    for s in range(0, n, _CHUNK):
        sl = slice(s, s + _CHUNK)
        out[sl] = _smallest_eigenvectors(
            _normal_entries(maps, xs[:, sl], None if mask is None else mask[:, sl]))
    return out


def _dehomogenise(Xh: np.ndarray) -> np.ndarray:
    """(N, 4) → (N, 3); rows at infinity (parallel rays) become NaN."""
    w = Xh[:, 3]
    finite = np.abs(w) > _INFINITY_RTOL * np.linalg.norm(Xh, axis=1)
    safe = np.where(finite, w, 1.0)
    return np.where(finite[:, None], Xh[:, :3] / safe[:, None], np.nan)


def triangulate_nview(Ps: ArrayLike | Sequence[ArrayLike], xs: ArrayLike,
                      visible: ArrayLike | None = None) -> np.ndarray:
    """Linear (DLT) triangulation (N, 3) of N points seen by M ≥ 2 cameras.

    ``Ps`` (M, 3, 4) cameras, ``xs`` (M, N, 2) pixels, ``visible`` (M, N) bool (default: all;
    unseen entries of ``xs`` may be NaN). Each point needs two views. Solves ``A X̃ = 0`` in the
    least-squares sense, ``min ‖A X̃‖`` subject to ``‖X̃‖ = 1`` (HZ §12.2; module docstring),
    vectorised over points. This is an algebraic error, weighted by the (arbitrary) scale of
    each ``Pᵥ`` — give cameras of comparable norm, e.g. ``K [R | t]``, also because the
    normal-equations shortcut loses digits when they differ by orders of magnitude. Follow
    with :func:`refine_points` for the reprojection-error optimum. Points whose rays are
    parallel (at infinity) are NaN rows; points behind a camera are *not* removed here (see
    :func:`in_front`).
    """
    op = "triangulate_nview"
    Ps = _projections(Ps, op)
    xs = _observations(xs, len(Ps), op)
    mask = _visibility(visible, xs, op)
    clean = np.where(mask[..., None], xs, 0.0)
    return _dehomogenise(_null_vectors(Ps, clean, mask))


def triangulate_dlt(P1: ArrayLike, P2: ArrayLike, x1: ArrayLike, x2: ArrayLike) -> np.ndarray:
    """Linear (DLT) triangulation (N, 3) of correspondences ``x1 ↔ x2`` (N, 2) in two views.

    The two-view case of :func:`triangulate_nview` (HZ §12.2): the same estimate as
    ``cv2.triangulatePoints(P1, P2, x1.T, x2.T)`` (which returns it homogeneous, 4 × N), in
    Euclidean coordinates. Parallel rays give NaN rows.
    """
    op = "triangulate_dlt"
    P1, P2 = _projection(P1, op, "P1"), _projection(P2, op, "P2")
    x1 = points(x1, 2, op, "x1")
    x2 = points(x2, 2, op, "x2", count=len(x1))
    Ps = np.stack([P1, P2])
    return _dehomogenise(_null_vectors(Ps, np.stack([x1, x2]), None))


def _centre_and_rays(P: np.ndarray, x: np.ndarray, op: str, name: str
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Centre ``C = −M⁻¹ p₄`` (3,) and forward ray directions ``sign(det M) M⁻¹ x̃`` (N, 3) of a
    finite camera ``P = [M | p₄]`` (HZ §6.2.2, eq. 6.14)."""
    M = P[:, :3]
    det = np.linalg.det(M)
    if abs(det) <= 1e-12 * np.linalg.norm(M) ** 3:
        raise GeometryError(f"{op}: expected a finite camera {name} (det P[:, :3] ≠ 0), got a "
                            "camera at infinity")
    M_inv = np.linalg.inv(M)
    rays = np.column_stack([x, np.ones(len(x))]) @ M_inv.T * np.sign(det)
    return -M_inv @ P[:, 3], rays


def triangulate_midpoint(P1: ArrayLike, P2: ArrayLike, x1: ArrayLike, x2: ArrayLike
                         ) -> np.ndarray:
    """Midpoint triangulation (N, 3): the middle of the shortest segment between the two rays.

    Rays ``Cᵢ + sᵢ dᵢ`` (centres and directions of finite cameras, HZ §6.2.2). The closest
    points solve the 2×2 normal equations of ``min ‖C₁ + s₁ d₁ − C₂ − s₂ d₂‖²``:

        [d₁·d₁  −d₁·d₂] [s₁]   [d₁·b]
        [d₁·d₂  −d₂·d₂] [s₂] = [d₂·b],     b = C₂ − C₁,

    and ``X = (C₁ + s₁ d₁ + C₂ + s₂ d₂) / 2``. Not projectively invariant and less accurate
    than the DLT with unequal depths (HZ §12.1), but fast and meaningful in Euclidean frames.
    Parallel rays (determinant ~0) give NaN rows.
    """
    op = "triangulate_midpoint"
    P1, P2 = _projection(P1, op, "P1"), _projection(P2, op, "P2")
    x1 = points(x1, 2, op, "x1")
    x2 = points(x2, 2, op, "x2", count=len(x1))
    C1, d1 = _centre_and_rays(P1, x1, op, "P1")
    C2, d2 = _centre_and_rays(P2, x2, op, "P2")
    d1 /= np.linalg.norm(d1, axis=1, keepdims=True)
    d2 /= np.linalg.norm(d2, axis=1, keepdims=True)
    b = C2 - C1
    c = np.einsum("ij,ij->i", d1, d2)
    e1, e2 = d1 @ b, d2 @ b
    det = c * c - 1.0  # det [[1, −c], [c, −1]] for unit directions
    ok = np.abs(det) > 1e-12
    safe = np.where(ok, det, 1.0)
    s1 = (-e1 + c * e2) / safe
    s2 = (-c * e1 + e2) / safe
    X = 0.5 * (C1 + s1[:, None] * d1 + C2 + s2[:, None] * d2)
    return np.where(ok[:, None], X, np.nan)


def point_depths(P: ArrayLike, X: ArrayLike) -> np.ndarray:
    """Depths (N,) of points ``X`` (N, 3) in front of camera ``P = [M | p₄]`` (HZ eq. 6.15):

        depth = sign(det M) · w / ‖m³‖,     (·, ·, w)ᵀ = P X̃,

    with ``m³`` the third row of ``M``. Positive in front of the camera, negative behind; for
    ``P = K [R | t]`` with ``K₃₃ = 1`` it is the ``Z`` of ``R X + t``. Invariant to the scale and
    sign of ``P``.
    """
    op = "point_depths"
    P = _projection(P, op, "P")
    X = points(X, 3, op, "X")
    return _depths(P, X)


def _depths(P: np.ndarray, X: np.ndarray) -> np.ndarray:
    M = P[:, :3]
    w = X @ P[2, :3] + P[2, 3]
    return np.sign(np.linalg.det(M)) * w / np.linalg.norm(M[2])


def in_front(Ps: ArrayLike | Sequence[ArrayLike], X: ArrayLike) -> np.ndarray:
    """The cheirality test (N,) bool: which points ``X`` (N, 3) have positive depth in every
    camera of ``Ps`` (M, 3, 4) (HZ §6.2.3, §21.1). Triangulation solves for a projective point
    and happily returns one behind the cameras (a mismatch, or the wrong one of the four
    ``(R, t)`` from an essential matrix); this is the filter. NaN points are not in front."""
    op = "in_front"
    Ps = _projections(Ps, op)
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2 or X.shape[1] != 3:
        raise GeometryError(f"{op}: expected X of shape (N, 3), got {X.shape}")
    with np.errstate(invalid="ignore"):
        return np.logical_and.reduce([_depths(P, X) > 0 for P in Ps])


def triangulation_angles(P1: ArrayLike, P2: ArrayLike, X: ArrayLike) -> np.ndarray:
    """Angles (N,) in degrees at each point ``X`` (N, 3) between the rays to the two camera
    centres, ``a = X − C₁`` and ``b = X − C₂``: ``atan2(‖a × b‖, a · b)``.

    Small angles mean little parallax: depth is then poorly determined (the uncertainty grows
    like 1/angle), and a near-zero angle for every point means no baseline at all. The
    ``atan2`` form keeps full relative precision there, where ``acos(a·b / ‖a‖‖b‖)`` loses
    half the digits (``cos θ ≈ 1 − θ²/2``).
    """
    op = "triangulation_angles"
    P1, P2 = _projection(P1, op, "P1"), _projection(P2, op, "P2")
    X = points(X, 3, op, "X")
    C1 = _centre(P1)
    C2 = _centre(P2)
    a, b = X - C1, X - C2
    return np.degrees(np.arctan2(np.linalg.norm(np.cross(a, b), axis=1),
                                 np.einsum("ij,ij->i", a, b)))


def _centre(P: np.ndarray) -> np.ndarray:
    """The centre of a finite camera, the null vector of ``P`` made Euclidean."""
    C = np.linalg.svd(P)[2][-1]
    if abs(C[3]) <= _INFINITY_RTOL * np.linalg.norm(C):
        raise GeometryError("triangulation_angles: expected finite cameras, got a camera centre "
                            "at infinity")
    return C[:3] / C[3]


def refine_points(Ps: ArrayLike | Sequence[ArrayLike], xs: ArrayLike, X: ArrayLike, *,
                  visible: ArrayLike | None = None, iterations: int = 10) -> np.ndarray:
    """Points (N, 3) minimising their reprojection error, from a start ``X`` (N, 3).

    Per point, ``min_X Σᵥ ‖π(Pᵥ X̃) − xᵥ‖²`` (HZ §12.3's geometric error, over the visible views)
    by Levenberg–Marquardt, vectorised over all points: with ``(a, b, w) = P X̃`` the Jacobian
    of ``π = (a/w, b/w)`` has rows ``(p¹ − (a/w) p³) / w`` and ``(p² − (b/w) p³) / w`` (first
    three columns of ``P``'s rows), the damped normal equations
    ``(JᵀJ + λ diag JᵀJ) δ = −Jᵀr`` are 3×3 per point (solved in closed form), and a step is
    kept only where it lowers that point's cost (then λ ÷ 10, else λ × 10). Runs ``iterations``
    steps; rows of ``X`` that are NaN stay NaN.

    ``Ps`` (M, 3, 4), ``xs`` (M, N, 2), ``visible`` (M, N) bool as in :func:`triangulate_nview`.
    """
    op = "refine_points"
    Ps = _projections(Ps, op)
    xs = _observations(xs, len(Ps), op)
    mask = _visibility(visible, xs, op)
    X = np.array(X, dtype=np.float64)
    if X.shape != (xs.shape[1], 3):
        raise GeometryError(f"{op}: expected X of shape ({xs.shape[1]}, 3), got {X.shape}")
    if np.isinf(X).any():
        raise GeometryError(f"{op}: expected finite X (NaN rows allowed), got inf")
    live = np.flatnonzero(np.isfinite(X).all(axis=1))
    obs = np.where(mask[..., None], xs, 0.0)
    for s in range(0, len(live), _CHUNK):
        idx = live[s:s + _CHUNK]
        X[idx] = _refine_chunk(Ps, obs[:, idx], mask[:, idx].astype(np.float64), X[idx].T,
                               int(iterations)).T
    return X


def _reprojection(Ps: np.ndarray, obs: np.ndarray, weight: np.ndarray, X: np.ndarray
                  ) -> tuple[list[tuple[np.ndarray, ...]], np.ndarray]:
    """Per view ``(a/w, b/w, 1/w, ru, rv)`` and the cost (n,) of points ``X`` (3, n)."""
    parts, cost = [], np.zeros(X.shape[1])
    for P, x, wt in zip(Ps, obs, weight, strict=True):
        a, b, w = P[:, :3] @ X + P[:, 3:]
        with np.errstate(divide="ignore", invalid="ignore"):
            iw = 1.0 / w
            pu, pv = a * iw, b * iw
            ru, rv = (pu - x[:, 0]) * wt, (pv - x[:, 1]) * wt
        cost += ru * ru + rv * rv
        parts.append((pu, pv, iw, ru, rv))
    return parts, cost


def _refine_chunk(Ps: np.ndarray, obs: np.ndarray, weight: np.ndarray, X: np.ndarray,
                  iterations: int) -> np.ndarray:
    """Levenberg–Marquardt of :func:`refine_points` on points ``X`` (3, n), elementwise."""
    parts, cost = _reprojection(Ps, obs, weight, X)
    lam = np.full(X.shape[1], 1e-3)
    for _ in range(iterations):
        H = {k: 0.0 for k in ("00", "01", "02", "11", "12", "22")}
        g = [0.0, 0.0, 0.0]
        for P, wt, (pu, pv, iw, ru, rv) in zip(Ps, weight, parts, strict=True):
            s = iw * wt
            Ju = [(P[0, k] - pu * P[2, k]) * s for k in range(3)]
            Jv = [(P[1, k] - pv * P[2, k]) * s for k in range(3)]
            for k in H:
                i, j = int(k[0]), int(k[1])
                H[k] = H[k] + Ju[i] * Ju[j] + Jv[i] * Jv[j]
            for i in range(3):
                g[i] = g[i] + Ju[i] * ru + Jv[i] * rv
        # damped 3×3 system, solved by the adjugate (Cramer's rule)
        tiny = 1e-15 * (H["00"] + H["11"] + H["22"])
        h00 = H["00"] * (1 + lam) + tiny
        h11 = H["11"] * (1 + lam) + tiny
        h22 = H["22"] * (1 + lam) + tiny
        h01, h02, h12 = H["01"], H["02"], H["12"]
        c00 = h11 * h22 - h12 * h12
        c01 = h02 * h12 - h01 * h22
        c02 = h01 * h12 - h02 * h11
        c11 = h00 * h22 - h02 * h02
        c12 = h01 * h02 - h00 * h12
        c22 = h00 * h11 - h01 * h01
        with np.errstate(divide="ignore", invalid="ignore"):
            inv_det = -1.0 / (h00 * c00 + h01 * c01 + h02 * c02)
        step = np.array([(c00 * g[0] + c01 * g[1] + c02 * g[2]) * inv_det,
                         (c01 * g[0] + c11 * g[1] + c12 * g[2]) * inv_det,
                         (c02 * g[0] + c12 * g[1] + c22 * g[2]) * inv_det])
        trial = X + step
        trial_parts, trial_cost = _reprojection(Ps, obs, weight, trial)
        better = trial_cost < cost  # NaN (a step onto a principal plane) is never better
        X = np.where(better, trial, X)
        parts = [tuple(np.where(better, t, o) for t, o in zip(tp, op_, strict=True))
                 for tp, op_ in zip(trial_parts, parts, strict=True)]
        cost = np.where(better, trial_cost, cost)
        lam = np.where(better, lam * 0.1, lam * 10.0)
    return X
