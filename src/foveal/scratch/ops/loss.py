"""Loss functions, each one fused op with a hand-derived backward, matching torch's definitions.

Every loss computes a per-element (or per-sample) value ``ℓ`` and reduces it as torch does:
``reduction="mean"`` (the default) averages over all entries of ``ℓ``, ``"sum"`` adds them and
``"none"`` returns ``ℓ`` itself. The backward first spreads the upstream gradient ``g`` back
over ``ℓ`` (``g/n`` each for the mean, ``g`` for the sum) and then applies the local rule.

=====================================  =========================  ==============================
loss                                   ℓ (per entry)              ∂ℓ/∂input
=====================================  =========================  ==============================
cross_entropy (logits s, label y)      −Σ_c q_c log softmax(s)_c  softmax(s) − q
multiclass_hinge (scores s, label y)   Σ_{j≠y} max(0, s_j−s_y+Δ)  1[m_j > 0], −Σ_j 1[m_j > 0] at y
binary_cross_entropy_with_logits       (1−t)x + w·softplus(−x)    (1−t) − w σ(−x)
mse_loss                               (x − t)²                   2(x − t)
l1_loss                                |x − t|                    sign(x − t)
smooth_l1_loss                         ½d²/β if |d| < β else      d/β or sign(d)
                                       |d| − ½β
triplet_margin_loss                    max(0, d(a,p) − d(a,n)+Δ)  see the function
=====================================  =========================  ==============================

Labels are integer class indices in ``[0, C)``; anything else raises ``ValueError``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from foveal.scratch.ops.activation import _sigmoid
from foveal.scratch.ops.softmax import log_softmax
from foveal.scratch.tensor import ArrayLike, Tensor, float_tensor, node, unbroadcast

REDUCTIONS = ("mean", "sum", "none")

Spread = Callable[[np.ndarray], np.ndarray]


# ----------------------------------------------------------------------------- shared pieces
def _reduce(values: np.ndarray, reduction: str, op: str) -> tuple[np.ndarray, Spread]:
    """``values`` reduced as torch does, and the map taking the upstream gradient of the result
    back to one gradient per entry of ``values`` (the backward of the reduction)."""
    if reduction == "none":
        return values, lambda g: g
    if reduction == "sum":
        return np.asarray(values.sum()), lambda g: np.broadcast_to(g, values.shape)
    if reduction == "mean":
        n = values.size
        return np.asarray(values.mean()), lambda g: np.broadcast_to(g / n, values.shape)
    raise ValueError(f"{op}: reduction must be one of {REDUCTIONS}, got {reduction!r}")


def _labels(target: ArrayLike, n: int, classes: int, input_shape: tuple[int, ...],
            op: str) -> np.ndarray:
    """Class indices ``(N,)`` in ``[0, C)`` as int64; a Tensor (always float) must hold whole
    numbers."""
    labels = target.data if isinstance(target, Tensor) else np.asarray(target)
    if isinstance(target, Tensor) and np.all(labels == np.round(labels)):
        labels = labels.astype(np.int64)
    if labels.dtype.kind not in "iu":
        raise ValueError(f"{op}: expected integer class labels, got dtype {labels.dtype}")
    if labels.shape != (n,):
        raise ValueError(
            f"{op}: expected target of shape ({n},) for input of shape {input_shape}, "
            f"got {labels.shape}"
        )
    bad = (labels < 0) | (labels >= classes)
    if bad.any():
        raise ValueError(
            f"{op}: labels must lie in [0, C) with C = {classes}, got {labels[bad][0]}"
        )
    return labels.astype(np.int64, copy=False)


def _class_scores(x: ArrayLike, op: str) -> Tensor:
    x = float_tensor(x, op)
    if x.ndim != 2:
        raise ValueError(f"{op}: expected input of shape (N, C), got {x.shape}")
    return x


def _same_shape(x: ArrayLike, t: ArrayLike, op: str) -> tuple[Tensor, Tensor]:
    """Input and target as tensors of one shape (integer/boolean targets become floats)."""
    x = float_tensor(x, op)
    if not isinstance(t, Tensor):
        array = np.asarray(t)
        t = Tensor(array if array.dtype.kind == "f" else array.astype(x.dtype))
    if t.shape != x.shape:
        raise ValueError(f"{op}: expected target of the input's shape {x.shape}, got {t.shape}")
    return x, t


def _cast(g: np.ndarray, like: Tensor) -> np.ndarray:
    return g.astype(like.dtype, copy=False)


# ----------------------------------------------------------------------------- classification
def cross_entropy(logits: ArrayLike, target: ArrayLike, label_smoothing: float = 0.0,
                  reduction: str = "mean") -> Tensor:
    """Softmax cross-entropy of logits ``s`` (N, C) against labels ``y`` (N,), as
    ``F.cross_entropy``.

    ``ℓᵢ = −Σ_c q_ic log softmax(sᵢ)_c`` with the target distribution
    ``q_i = (1 − ε) onehot(yᵢ) + ε/C`` (label smoothing ε gives ε/C to every class, the
    true one included; Szegedy et al., CVPR 2016, section 7). ε = 0 is ``−log softmax(sᵢ)_{yᵢ}``.
    ``log softmax`` is the max-shifted one of :func:`~foveal.scratch.ops.softmax.log_softmax`.

    Fused backward: ``∂ℓᵢ/∂sᵢ = softmax(sᵢ) − qᵢ`` (the log-sum-exp and the log cancel), so the
    mean loss has gradient ``(softmax − q)/N``.
    """
    op = "cross_entropy"
    x = _class_scores(logits, op)
    n, c = x.shape
    y = _labels(target, n, c, x.shape, op)
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"{op}: label_smoothing must lie in [0, 1], got {label_smoothing}")
    log_p = log_softmax(x.data, axis=1).data  # a constant here: no graph is recorded
    q = np.full_like(log_p, label_smoothing / c)
    q[np.arange(n), y] += 1.0 - label_smoothing
    out, spread = _reduce(-(q * log_p).sum(axis=1), reduction, op)

    def backward(g: np.ndarray) -> tuple[np.ndarray]:
        return ((np.exp(log_p) - q) * spread(g)[:, None],)

    return node(out, (x,), backward, op)


def multiclass_hinge(scores: ArrayLike, target: ArrayLike, margin: float = 1.0,
                     reduction: str = "mean") -> Tensor:
    """Multiclass SVM loss (Weston & Watkins, 1999; the form of CS231n's linear classifiers):

        ℓᵢ = Σ_{j ≠ yᵢ} max(0, m_ij),     m_ij = s_ij − s_iyᵢ + Δ.

    Summed over classes (torch's ``F.multi_margin_loss`` divides this by C).
    Backward: ``∂ℓᵢ/∂s_ij = 1[m_ij > 0]`` for j ≠ yᵢ and ``−Σ_{j≠yᵢ} 1[m_ij > 0]`` for the true
    class; a margin of exactly 0 counts as inactive (gradient 0), as torch.
    """
    op = "multiclass_hinge"
    x = _class_scores(scores, op)
    n, c = x.shape
    y = _labels(target, n, c, x.shape, op)
    rows = np.arange(n)
    margins = x.data - x.data[rows, y][:, None] + margin
    active = margins > 0
    active[rows, y] = False
    out, spread = _reduce(np.where(active, margins, 0).sum(axis=1), reduction, op)

    def backward(g: np.ndarray) -> tuple[np.ndarray]:
        slope = active.astype(x.dtype)
        slope[rows, y] = -active.sum(axis=1)
        return (slope * spread(g)[:, None],)

    return node(out, (x,), backward, op)


def binary_cross_entropy_with_logits(
    logits: ArrayLike, target: ArrayLike, pos_weight: ArrayLike | None = None,
    reduction: str = "mean",
) -> Tensor:
    """Sigmoid + binary cross-entropy in one stable step, as
    ``F.binary_cross_entropy_with_logits``.

    ``ℓ = −w t log σ(x) − (1 − t) log(1 − σ(x)) = (1 − t) x + w · softplus(−x)``, with
    ``w = 1 + (pos_weight − 1) t`` (pos_weight broadcasts along the last axis; w = 1 without).
    ``softplus(−x) = max(−x, 0) + log(1 + e^{−|x|})`` never overflows; for w = 1 this is the
    familiar ``max(x, 0) − x t + log(1 + e^{−|x|})``.

    Backward: ``∂ℓ/∂x = (1 − t) − w σ(−x)`` (= σ(x) − t for w = 1),
    ``∂ℓ/∂t = −x + (pos_weight − 1) softplus(−x)``, ``∂ℓ/∂pos_weight = t softplus(−x)``.
    """
    op = "binary_cross_entropy_with_logits"
    x, t = _same_shape(logits, target, op)
    pw: Tensor | None = None
    if pos_weight is not None:
        pw = float_tensor(pos_weight, op)
        try:
            broadcast = np.broadcast_shapes(pw.shape, x.shape)
        except ValueError:
            broadcast = None
        if broadcast != x.shape:
            raise ValueError(
                f"{op}: pos_weight of shape {pw.shape} does not broadcast to the input's shape "
                f"{x.shape}"
            )
    softplus_neg = np.maximum(-x.data, 0) + np.log1p(np.exp(-np.abs(x.data)))
    w = 1 if pw is None else 1 + (pw.data - 1) * t.data
    values = ((1 - t.data) * x.data + w * softplus_neg).astype(x.dtype, copy=False)
    out, spread = _reduce(values, reduction, op)

    def backward(g: np.ndarray) -> tuple[np.ndarray | None, ...]:
        gl = spread(g)
        gx = _cast(gl * ((1 - t.data) - w * _sigmoid(-x.data)), x)
        dt = -x.data if pw is None else -x.data + (pw.data - 1) * softplus_neg
        gt = _cast(gl * dt, t) if t.requires_grad else None
        if pw is None:
            return gx, gt
        gpw = _cast(unbroadcast(gl * t.data * softplus_neg, pw.shape), pw)
        return gx, gt, gpw

    parents = (x, t) if pw is None else (x, t, pw)
    return node(out, parents, backward, op)


# ----------------------------------------------------------------------------- regression
def mse_loss(input: ArrayLike, target: ArrayLike, reduction: str = "mean") -> Tensor:
    """Squared error ``ℓ = (x − t)²``, as ``F.mse_loss``.

    Backward: ``∂ℓ/∂x = 2(x − t)``, ``∂ℓ/∂t = −2(x − t)``.
    """
    op = "mse_loss"
    x, t = _same_shape(input, target, op)
    d = x.data - t.data
    out, spread = _reduce((d * d).astype(x.dtype, copy=False), reduction, op)

    def backward(g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        gx = 2 * d * spread(g)
        return _cast(gx, x), _cast(-gx, t)

    return node(out, (x, t), backward, op)


def l1_loss(input: ArrayLike, target: ArrayLike, reduction: str = "mean") -> Tensor:
    """Absolute error ``ℓ = |x − t|``, as ``F.l1_loss``.

    Backward: ``∂ℓ/∂x = sign(x − t)`` (0 where x = t, as torch), ``∂ℓ/∂t = −sign(x − t)``.
    """
    op = "l1_loss"
    x, t = _same_shape(input, target, op)
    d = x.data - t.data
    out, spread = _reduce(np.abs(d).astype(x.dtype, copy=False), reduction, op)

    def backward(g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        gx = np.sign(d) * spread(g)
        return _cast(gx, x), _cast(-gx, t)

    return node(out, (x, t), backward, op)


def smooth_l1_loss(input: ArrayLike, target: ArrayLike, beta: float = 1.0,
                   reduction: str = "mean") -> Tensor:
    """Smooth L1 (Girshick, ICCV 2015, eq. 3, with a width β), as ``F.smooth_l1_loss``:

        ℓ = ½ d² / β      if |d| < β,       ℓ = |d| − ½ β   otherwise,     d = x − t.

    Quadratic near 0, linear in the tails; β = 0 is exactly the L1 loss.
    Backward: ``∂ℓ/∂x = d/β`` inside, ``sign(d)`` outside (the two agree at |d| = β);
    ``∂ℓ/∂t = −∂ℓ/∂x``.
    """
    op = "smooth_l1_loss"
    if not beta >= 0:
        raise ValueError(f"{op}: beta must be >= 0, got {beta}")
    x, t = _same_shape(input, target, op)
    d = x.data - t.data
    inside = np.abs(d) < beta
    safe_beta = beta if beta > 0 else 1.0  # with β = 0 nothing is inside
    values = np.where(inside, 0.5 * d * d / safe_beta, np.abs(d) - 0.5 * beta)
    out, spread = _reduce(values.astype(x.dtype, copy=False), reduction, op)

    def backward(g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        gx = np.where(inside, d / safe_beta, np.sign(d)) * spread(g)
        return _cast(gx, x), _cast(-gx, t)

    return node(out, (x, t), backward, op)


# ----------------------------------------------------------------------------- metric learning
def _pairwise_distance(a: np.ndarray, b: np.ndarray, p: float,
                       eps: float) -> tuple[np.ndarray, np.ndarray]:
    """``d = ‖a − b + eps‖_p`` over the last axis, and ``∂d/∂a`` (= −∂d/∂b).

    ``∂d/∂uₖ = sign(uₖ) |uₖ|^{p−1} / d^{p−1}`` for ``u = a − b + eps`` (u/d for p = 2), and 0
    where d = 0, as torch.
    """
    u = a - b + eps
    d = np.sum(np.abs(u) ** p, axis=-1) ** (1 / p)
    safe_d = np.where(d > 0, d, 1)[..., None]
    jac = np.sign(u) * (np.abs(u) / safe_d) ** (p - 1)
    return d, np.where(d[..., None] > 0, jac, 0)


def triplet_margin_loss(
    anchor: ArrayLike, positive: ArrayLike, negative: ArrayLike, margin: float = 1.0,
    p: float = 2, eps: float = 1e-6, swap: bool = False, reduction: str = "mean",
) -> Tensor:
    """Triplet loss (Schroff, Kalenichenko & Philbin, CVPR 2015; Balntas et al., BMVC 2016 for
    the swap), as ``F.triplet_margin_loss``, on embeddings (N, D) or (D,):

        ℓᵢ = max(0, d(aᵢ, pᵢ) − d(aᵢ, nᵢ) + Δ),      d(u, v) = ‖u − v + eps‖_p

    (torch's ``pairwise_distance`` adds ``eps`` to the difference, not to the norm). With
    ``swap`` the negative distance is ``min(d(a, n), d(p, n))``.

    Backward, where ``ℓᵢ > 0`` (0 at exactly 0, as torch), with ``J(u, v) = ∂d(u, v)/∂u``:
    ``∂ℓ/∂a = J(a, p) − J(a, n)``, ``∂ℓ/∂p = −J(a, p)``, ``∂ℓ/∂n = J(a, n)``; with the swap
    taking d(p, n), its terms go to p (``−J(p, n)``) and n (``+J(p, n)``) instead, split evenly
    on a tie as torch's ``min``.
    """
    op = "triplet_margin_loss"
    a, pos, neg = (float_tensor(v, op) for v in (anchor, positive, negative))
    if not a.shape == pos.shape == neg.shape or a.ndim not in (1, 2):
        raise ValueError(
            f"{op}: expected anchor, positive and negative of one shape (N, D) or (D,), got "
            f"{a.shape}, {pos.shape} and {neg.shape}"
        )
    if not margin > 0:
        raise ValueError(f"{op}: margin must be > 0, got {margin}")
    if not (np.isfinite(p) and p >= 1):
        raise ValueError(f"{op}: p must be a finite norm degree >= 1, got {p}")
    d_ap, j_ap = _pairwise_distance(a.data, pos.data, p, eps)
    d_an, j_an = _pairwise_distance(a.data, neg.data, p, eps)
    from_anchor = np.ones_like(d_an)  # share of the negative distance taken from d(a, n)
    d_neg = d_an
    if swap:
        d_pn, j_pn = _pairwise_distance(pos.data, neg.data, p, eps)
        from_anchor = np.where(d_an < d_pn, 1.0, np.where(d_an > d_pn, 0.0, 0.5))
        d_neg = np.minimum(d_an, d_pn)
    m = d_ap - d_neg + margin
    active = m > 0
    out, spread = _reduce(np.where(active, m, 0).astype(a.dtype, copy=False), reduction, op)

    def backward(g: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        w = (active * spread(g))[..., None]
        lam = from_anchor[..., None]
        ga = w * (j_ap - lam * j_an)
        gp = -w * j_ap
        gn = w * lam * j_an
        if swap:
            gp = gp - w * (1 - lam) * j_pn
            gn = gn + w * (1 - lam) * j_pn
        return _cast(ga, a), _cast(gp, pos), _cast(gn, neg)

    return node(out, (a, pos, neg), backward, op)
