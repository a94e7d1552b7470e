"""Classification metrics computed from predictions, targets and logits.

Convention: the confusion matrix ``C`` has one row per true class and one column per predicted
class, ``C[i, j] = #{n : t_n = i and p_n = j}`` (the scikit-learn convention). Accuracies are
fractions in ``[0, 1]``, not percentages.

Inputs may be NumPy arrays or torch tensors (on any device); results are NumPy arrays or floats.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from foveal.errors import DataError


def _to_numpy(x: Any) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu()
        if x.is_floating_point():
            x = x.float()  # NumPy has no bfloat16
        return x.numpy()
    return np.asarray(x)


def _labels(x: Any, name: str, length: int | None = None) -> np.ndarray:
    """Return ``x`` as an int64 array of shape ``(N,)``, checking dtype and (optionally) length."""
    array = _to_numpy(x)
    if array.ndim != 1:
        raise DataError(f"expected {name} of shape (N,), got shape {tuple(array.shape)}")
    if length is not None and len(array) != length:
        raise DataError(f"expected {name} of shape ({length},), got shape {tuple(array.shape)}")
    if len(array) and not np.issubdtype(array.dtype, np.integer):
        raise DataError(f"expected integer {name}, got dtype {array.dtype}")
    return array.astype(np.int64, copy=False)


def _check_range(labels: np.ndarray, name: str, num_classes: int) -> None:
    if len(labels) and (labels.min() < 0 or labels.max() >= num_classes):
        raise DataError(
            f"expected {name} in [0, {num_classes}), got range [{labels.min()}, {labels.max()}]"
        )


def _check_matrix(cm: Any) -> np.ndarray:
    cm = _to_numpy(cm)
    if cm.ndim != 2 or cm.shape[0] != cm.shape[1]:
        raise DataError(f"expected a square (K, K) confusion matrix, got shape {cm.shape}")
    if cm.size and cm.min() < 0:
        raise DataError(f"expected non-negative counts in the confusion matrix, got {cm.min()}")
    return cm


def confusion_matrix(predictions: Any, targets: Any, num_classes: int) -> np.ndarray:
    """Count (true class, predicted class) pairs.

    ``C[i, j] = #{n : t_n = i and p_n = j}``, so rows are true classes and columns predicted ones.
    Computed as one ``bincount`` of the flat index ``K * t_n + p_n``.

    Args:
        predictions: integer class predictions ``p``, shape ``(N,)``.
        targets: integer true classes ``t``, shape ``(N,)``.
        num_classes: ``K``; every label must lie in ``[0, K)``. Classes absent from both inputs
            get an all-zero row and column.

    Returns:
        ``int64`` array of shape ``(K, K)``.
    """
    if isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)):
        raise DataError(f"expected num_classes as an int, got {type(num_classes).__name__}")
    if num_classes < 1:
        raise DataError(f"expected num_classes >= 1, got {num_classes}")
    targets = _labels(targets, "targets")
    predictions = _labels(predictions, "predictions", length=len(targets))
    _check_range(targets, "targets", num_classes)
    _check_range(predictions, "predictions", num_classes)
    K = int(num_classes)
    counts = np.bincount(K * targets + predictions, minlength=K * K)
    return counts.reshape(K, K).astype(np.int64, copy=False)


def accuracy(cm: Any) -> float:
    """Overall accuracy ``trace(C) / sum(C)``, the fraction of samples on the diagonal.

    Returns NaN for an empty matrix (no samples), where accuracy is undefined.
    """
    cm = _check_matrix(cm)
    total = cm.sum()
    return float(np.trace(cm) / total) if total else float("nan")


def per_class_accuracy(cm: Any) -> np.ndarray:
    """Accuracy within each true class, i.e. recall: ``C[i, i] / sum_j C[i, j]``.

    Returns:
        ``float64`` array of shape ``(K,)``. A class with no samples (an all-zero row) gets NaN,
        not 0: its accuracy is undefined, and 0 would read as "always wrong". Use
        :func:`numpy.nanmean` to average over the classes that occur.
    """
    cm = _check_matrix(cm)
    support = cm.sum(axis=1)
    out = np.full(cm.shape[0], np.nan)
    np.divide(np.diag(cm), support, out=out, where=support > 0)
    return out


def top_k_accuracy(logits: Any, targets: Any, k: int) -> float:
    """Fraction of samples whose true class is among the ``k`` highest scores.

    The rank of the true class ``t`` among the scores ``s`` of one sample is
    ``r = #{j : s_j > s_t} + #{j < t : s_j = s_t}``, and the sample counts as correct when
    ``r < k``. Ties therefore go to the lower class index, as in ``argmax``, so ``k = 1`` gives
    exactly the accuracy of ``logits.argmax(1)``: a constant model does not score 100 %.

    Args:
        logits: scores (logits or probabilities), shape ``(N, K)``.
        targets: integer true classes in ``[0, K)``, shape ``(N,)``.
        k: ``1 <= k <= K``.

    Returns:
        A fraction in ``[0, 1]``; NaN when ``N = 0``.
    """
    scores = _to_numpy(logits)
    if scores.ndim != 2:
        raise DataError(f"expected logits of shape (N, K), got shape {tuple(scores.shape)}")
    N, K = scores.shape
    if not (np.issubdtype(scores.dtype, np.integer) or np.issubdtype(scores.dtype, np.floating)):
        raise DataError(f"expected real-valued logits, got dtype {scores.dtype}")
    targets = _labels(targets, "targets", length=N)
    _check_range(targets, "targets", K)
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= K:
        raise DataError(f"expected k as an int in [1, {K}], got {k!r}")
    if N == 0:
        return float("nan")
    if np.isnan(scores).any():
        raise DataError(f"expected finite logits, got {int(np.isnan(scores).sum())} NaN value(s)")
    true_score = scores[np.arange(N), targets][:, None]
    lower_index = np.arange(K)[None, :] < targets[:, None]
    rank = (scores > true_score).sum(1) + ((scores == true_score) & lower_index).sum(1)
    return float((rank < k).mean())
