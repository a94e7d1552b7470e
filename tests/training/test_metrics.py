"""Classification metrics against scikit-learn (`sklearn.metrics`) as the independent oracle."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn import metrics as skm

from foveal.errors import DataError
from foveal.training.metrics import accuracy, confusion_matrix, per_class_accuracy, top_k_accuracy


def _random_labels(seed: int, n: int, k: int, absent: tuple[int, ...] = ()):
    rng = np.random.default_rng(seed)
    present = np.setdiff1d(np.arange(k), absent)
    targets = rng.choice(present, size=n)
    # Predictions right about half the time, otherwise uniform over all classes.
    predictions = np.where(rng.random(n) < 0.5, targets, rng.integers(0, k, size=n))
    return predictions, targets


@pytest.mark.filterwarnings("ignore:A single label was found:UserWarning")  # sklearn, K = 1
@pytest.mark.parametrize(
    ("seed", "n", "k", "absent"),
    [(0, 500, 10, ()), (1, 200, 7, (2, 5)), (2, 1, 3, ()), (3, 50, 1, ())],
)
def test_confusion_matrix_matches_sklearn(seed, n, k, absent):
    """Oracle: sklearn.metrics.confusion_matrix with labels=range(K) (rows true, cols predicted)."""
    predictions, targets = _random_labels(seed, n, k, absent)
    cm = confusion_matrix(predictions, targets, k)
    expected = skm.confusion_matrix(targets, predictions, labels=list(range(k)))
    assert cm.dtype == np.int64 and cm.shape == (k, k)
    np.testing.assert_array_equal(cm, expected)


def test_confusion_matrix_rows_are_true_class_not_predicted():
    """Pitfall: transposing the matrix. Closed form: one sample, true 0 predicted 2 -> C[0, 2]."""
    cm = confusion_matrix(np.array([2]), np.array([0]), 3)
    assert cm[0, 2] == 1 and cm.sum() == 1


def test_confusion_matrix_accepts_torch_and_numpy_alike():
    """Oracle: the NumPy result; torch int64/int32 tensors must give the same matrix."""
    predictions, targets = _random_labels(4, 300, 5)
    expected = confusion_matrix(predictions, targets, 5)
    for dtype in (torch.int64, torch.int32):
        got = confusion_matrix(
            torch.tensor(predictions, dtype=dtype), torch.tensor(targets, dtype=dtype), 5
        )
        np.testing.assert_array_equal(got, expected)


def test_confusion_matrix_of_no_samples_is_zero():
    """Closed form: N = 0 gives a K×K zero matrix and undefined (NaN) accuracies."""
    cm = confusion_matrix(np.zeros(0, np.int64), np.zeros(0, np.int64), 4)
    np.testing.assert_array_equal(cm, np.zeros((4, 4), np.int64))
    assert np.isnan(accuracy(cm))
    assert np.isnan(per_class_accuracy(cm)).all()


@pytest.mark.parametrize(
    ("predictions", "targets", "k", "message"),
    [
        (
            np.zeros((3, 2), int),
            np.zeros(3, int),
            3,
            r"expected predictions of shape \(N,\), got shape \(3, 2\)",
        ),
        (
            np.zeros(3, int),
            np.zeros((3, 1), int),
            3,
            r"expected targets of shape \(N,\), got shape \(3, 1\)",
        ),
        (
            np.zeros(4, int),
            np.zeros(3, int),
            3,
            r"expected predictions of shape \(3,\), got shape \(4,\)",
        ),
        (
            np.array([0, 3]),
            np.array([0, 1]),
            3,
            r"expected predictions in \[0, 3\), got range \[0, 3\]",
        ),
        (
            np.array([0, 1]),
            np.array([-1, 1]),
            3,
            r"expected targets in \[0, 3\), got range \[-1, 1\]",
        ),
        (
            np.array([0.0, 1.0]),
            np.array([0, 1]),
            3,
            r"expected integer predictions, got dtype float64",
        ),
        (np.array([0, 1]), np.array([0, 1]), 0, r"expected num_classes >= 1, got 0"),
        (np.array([0, 1]), np.array([0, 1]), 2.0, r"expected num_classes as an int, got float"),
    ],
)
def test_confusion_matrix_rejects_bad_input_naming_expected_and_got(
    predictions, targets, k, message
):
    """Oracle: the documented one-line message; DataError is also a ValueError."""
    with pytest.raises(ValueError, match=message) as info:
        confusion_matrix(predictions, targets, k)
    assert isinstance(info.value, DataError) and "\n" not in str(info.value)


def test_accuracy_matches_sklearn_accuracy_score():
    """Oracle: sklearn.metrics.accuracy_score."""
    for seed in range(5):
        predictions, targets = _random_labels(seed, 257, 6, absent=(seed % 6,))
        cm = confusion_matrix(torch.from_numpy(predictions), torch.from_numpy(targets), 6)
        assert accuracy(cm) == pytest.approx(skm.accuracy_score(targets, predictions), abs=1e-12)


def test_per_class_accuracy_is_recall_and_nan_for_absent_classes():
    """Oracle: sklearn.metrics.recall_score(average=None) where the class has samples.

    Pitfall: a class with no samples must be NaN, not 0 (sklearn reports 0 with a warning).
    """
    absent = (1, 4)
    predictions, targets = _random_labels(7, 400, 8, absent=absent)
    per_class = per_class_accuracy(confusion_matrix(predictions, targets, 8))
    expected = skm.recall_score(
        targets, predictions, labels=list(range(8)), average=None, zero_division=0
    )
    present = np.setdiff1d(np.arange(8), absent)
    np.testing.assert_allclose(per_class[present], expected[present], rtol=0, atol=1e-12)
    assert np.isnan(per_class[list(absent)]).all()


@pytest.mark.parametrize("bad", [np.zeros((2, 3)), np.zeros(4), -np.ones((2, 2))])
def test_matrix_metrics_reject_non_square_or_negative_matrices(bad):
    """Oracle: the documented one-line message."""
    with pytest.raises(DataError, match="expected"):
        accuracy(bad)
    with pytest.raises(DataError, match="expected"):
        per_class_accuracy(bad)


@pytest.mark.filterwarnings("ignore:'k' .* greater than or equal")  # sklearn, k = K
@pytest.mark.parametrize("k", [1, 2, 3, 5, 10])
def test_top_k_accuracy_matches_sklearn(k):
    """Oracle: sklearn.metrics.top_k_accuracy_score with labels=range(K) (continuous scores)."""
    rng = np.random.default_rng(k)
    targets = rng.integers(0, 10, size=300)
    targets[targets == 3] = 4  # an absent class
    logits = rng.normal(size=(300, 10)) + 1.5 * np.eye(10)[targets]
    got = top_k_accuracy(logits, targets, k)
    expected = skm.top_k_accuracy_score(targets, logits, k=k, labels=list(range(10)))
    assert got == pytest.approx(expected, abs=1e-12)
    got_torch = top_k_accuracy(torch.from_numpy(logits).float(), torch.from_numpy(targets), k)
    assert got_torch == pytest.approx(expected, abs=1e-12)


def test_top_1_equals_argmax_accuracy_even_with_ties():
    """Pitfall: counting ties for the target makes a constant model score 100 % top-1.

    Oracle: accuracy of argmax predictions (ties resolved to the lowest index, as argmax does).
    """
    logits = torch.zeros(6, 4)
    logits[3] = torch.tensor([1.0, 5.0, 5.0, 0.0])
    targets = torch.tensor([0, 1, 2, 3, 2, 0])
    cm = confusion_matrix(logits.argmax(1), targets, 4)
    assert top_k_accuracy(logits, targets, 1) == pytest.approx(accuracy(cm))
    assert top_k_accuracy(logits, targets, 1) == pytest.approx(2 / 6)
    assert top_k_accuracy(logits, targets, 4) == 1.0


def test_top_k_accuracy_accepts_bfloat16_logits():
    """Oracle: the float32 result (NumPy has no bfloat16, so conversion must go through float)."""
    logits = torch.tensor([[0.0, 2.0, 1.0], [3.0, 0.0, 1.0]])
    targets = torch.tensor([2, 0])
    assert top_k_accuracy(logits.bfloat16(), targets, 2) == top_k_accuracy(logits, targets, 2)


@pytest.mark.parametrize(
    ("logits", "targets", "k", "message"),
    [
        (np.zeros(5), np.zeros(5, int), 1, r"expected logits of shape \(N, K\), got shape \(5,\)"),
        (np.zeros((5, 3)), np.zeros(4, int), 1, r"expected targets of shape \(5,\), got shape"),
        (np.zeros((2, 3)), np.array([0, 3]), 1, r"expected targets in \[0, 3\), got range"),
        (np.zeros((2, 3)), np.array([0, 1]), 4, r"expected k as an int in \[1, 3\], got 4"),
        (np.zeros((2, 3)), np.array([0, 1]), 0, r"expected k as an int in \[1, 3\], got 0"),
        (np.full((2, 3), np.nan), np.array([0, 1]), 1, r"expected finite logits, got 6 NaN"),
    ],
)
def test_top_k_accuracy_rejects_bad_input_naming_expected_and_got(logits, targets, k, message):
    """Oracle: the documented one-line message."""
    with pytest.raises(DataError, match=message):
        top_k_accuracy(logits, targets, k)
