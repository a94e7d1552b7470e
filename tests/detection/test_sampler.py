"""Tests for foveal.detection.sampler.

Oracles: the closed-form counts of torchvision's ``BalancedPositiveNegativeSampler``
(num_pos = min(⌊B·f⌋, #pos), num_neg = min(B − num_pos, #neg)), set membership computed with a
Python loop, the uniform inclusion probability k/n of sampling without replacement (checked by
frequency), and torchvision itself (same global random stream → same masks) where installed.
"""

import pytest
import torch

from foveal.detection.sampler import sample_positive_negative
from foveal.errors import DetectionError


def random_labels(n, seed, p_pos=0.1, p_ignore=0.2, classes=1):
    g = torch.Generator().manual_seed(seed)
    u = torch.rand(n, generator=g)
    labels = torch.zeros(n, dtype=torch.int64)
    labels[u < p_pos] = torch.randint(1, classes + 1, (int((u < p_pos).sum()),), generator=g)
    labels[(u >= p_pos) & (u < p_pos + p_ignore)] = -1
    return labels


@pytest.mark.parametrize("n, p_pos, batch, fraction", [
    (2000, 0.01, 256, 0.5),   # few positives: negatives make up the batch
    (2000, 0.5, 256, 0.5),    # plenty of both
    (300, 0.9, 256, 0.25),    # few negatives: the batch stays short
    (50, 0.3, 512, 0.25),     # fewer examples than the batch
    (100, 0.2, 7, 0.5),       # ⌊7 · 0.5⌋ = 3 positives
    (100, 0.2, 0, 0.5),
    (100, 0.2, 64, 0.0),
    (100, 0.2, 64, 1.0),
])
def test_counts_and_membership_follow_torchvision_rules(n, p_pos, batch, fraction):
    for seed in range(4):
        labels = random_labels(n, seed, p_pos, classes=3)
        pos, neg = sample_positive_negative(labels, batch, fraction,
                                            torch.Generator().manual_seed(seed))
        positives = [i for i, v in enumerate(labels.tolist()) if v >= 1]
        negatives = [i for i, v in enumerate(labels.tolist()) if v == 0]
        num_pos = min(int(batch * fraction), len(positives))
        assert pos.dtype == neg.dtype == torch.int64
        assert pos.numel() == num_pos
        assert neg.numel() == min(batch - num_pos, len(negatives))
        assert len(set(pos.tolist())) == pos.numel() and set(pos.tolist()) <= set(positives)
        assert len(set(neg.tolist())) == neg.numel() and set(neg.tolist()) <= set(negatives)


def test_ignored_labels_are_never_sampled():
    labels = torch.tensor([-1, -2, 1, 0, -1, 2, 0])
    pos, neg = sample_positive_negative(labels, 100, 0.5)
    assert sorted(pos.tolist()) == [2, 5] and sorted(neg.tolist()) == [3, 6]


def test_generator_makes_draws_reproducible_and_different_seeds_differ():
    labels = random_labels(1000, 0, 0.3)
    a = sample_positive_negative(labels, 64, 0.5, torch.Generator().manual_seed(7))
    b = sample_positive_negative(labels, 64, 0.5, torch.Generator().manual_seed(7))
    c = sample_positive_negative(labels, 64, 0.5, torch.Generator().manual_seed(8))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[0], c[0])


def test_each_candidate_is_drawn_with_probability_k_over_n():
    labels = torch.tensor([1] * 10 + [0] * 20)  # draws 3 of 10 positives, 5 of 20 negatives
    g = torch.Generator().manual_seed(0)
    counts = torch.zeros(30)
    trials = 3000
    for _ in range(trials):
        pos, neg = sample_positive_negative(labels, 8, 3 / 8, g)
        counts[pos] += 1
        counts[neg] += 1
    freq = counts / trials
    # binomial std ≈ sqrt(0.3 · 0.7 / 3000) ≈ 0.008; allow 5 sigma
    assert torch.allclose(freq[:10], torch.full((10,), 0.3), atol=0.045)
    assert torch.allclose(freq[10:], torch.full((20,), 0.25), atol=0.045)


def test_empty_labels():
    pos, neg = sample_positive_negative(torch.zeros(0, dtype=torch.int64), 256, 0.5)
    assert pos.shape == neg.shape == (0,)


@pytest.mark.parametrize("args", [
    (torch.zeros(3, 2, dtype=torch.int64), 8, 0.5),
    (torch.zeros(3), 8, 0.5),
    ([0, 1], 8, 0.5),
    (torch.zeros(3, dtype=torch.int64), -1, 0.5),
    (torch.zeros(3, dtype=torch.int64), 8.0, 0.5),
    (torch.zeros(3, dtype=torch.int64), 8, 1.5),
    (torch.zeros(3, dtype=torch.int64), 8, float("nan")),
])
def test_bad_input_raises_one_line_detection_error(args):
    with pytest.raises(DetectionError) as info:
        sample_positive_negative(*args)
    assert "\n" not in str(info.value)


def test_sampler_equals_torchvision_balanced_sampler():
    pytest.importorskip("torchvision")
    from torchvision.models.detection._utils import BalancedPositiveNegativeSampler

    for seed in range(5):
        labels = random_labels(3000, seed, 0.05, classes=4)
        torch.manual_seed(seed)
        (ref_pos,), (ref_neg,) = BalancedPositiveNegativeSampler(256, 0.5)([labels])
        torch.manual_seed(seed)
        pos, neg = sample_positive_negative(labels, 256, 0.5)
        got_pos = torch.zeros_like(ref_pos)
        got_neg = torch.zeros_like(ref_neg)
        got_pos[pos] = 1
        got_neg[neg] = 1
        assert torch.equal(got_pos, ref_pos) and torch.equal(got_neg, ref_neg)
