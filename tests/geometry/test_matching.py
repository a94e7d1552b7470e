"""Descriptor matching against cv2.BFMatcher (knnMatch k=2 + ratio test, crossCheck=True, plain
match) on real SIFT, RootSIFT and ORB descriptors of the Oxford graf images, NumPy closed forms
(brute-force distances, unpacked-bit popcounts) on synthetic ones, and bad input."""

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from foveal.errors import GeometryError
from foveal.geometry.features import detect_orb, detect_sift
from foveal.geometry.matching import Matches, match_descriptors

SHARED_DATA = Path(__file__).resolve().parents[3] / "shared" / "data"
GRAF = SHARED_DATA / "oxford_affine_graf/graf"
NORMS = {"l2": cv2.NORM_L2, "hamming": cv2.NORM_HAMMING}
rng = np.random.default_rng(7)


@pytest.fixture(scope="module")
def graf_descriptors():
    """img1 and img3 (about 40° apart): SIFT (integer-valued float32), RootSIFT, ORB."""
    if not (GRAF / "img1.ppm").exists() or not (GRAF / "img3.ppm").exists():
        pytest.skip(f"Oxford graf images not found under {GRAF}")
    out = {}
    for name, detect, metric in (("sift", lambda p: detect_sift(p, 1500), "l2"),
                                 ("rootsift", lambda p: detect_sift(p, 1500, root=True), "l2"),
                                 ("orb", lambda p: detect_orb(p, 2000), "hamming")):
        out[name] = (detect(GRAF / "img1.ppm").descriptors, detect(GRAF / "img3.ppm").descriptors,
                     metric)
    return out


def pair_set(pairs):
    return {(int(i), int(j)) for i, j in pairs}


KINDS = ["sift", "rootsift", "orb"]


@pytest.mark.parametrize("kind", KINDS)
def test_ratio_test_equals_cv2_bfmatcher_knnmatch(graf_descriptors, kind):
    """Oracle: cv2.BFMatcher(norm).knnMatch(d1, d2, k=2) keeping m.distance < 0.8 n.distance
    (Lowe's test on Euclidean distances, as OpenCV reports them). Distances agree too."""
    d1, d2, metric = graf_descriptors[kind]
    pairs, dist = match_descriptors(d1, d2, ratio=0.8, mutual=False, metric=metric)
    knn = cv2.BFMatcher(NORMS[metric]).knnMatch(d1, d2, k=2)
    ref = {(m.queryIdx, m.trainIdx): m.distance for m, n in knn if m.distance < 0.8 * n.distance}
    assert len(ref) > 100
    assert pair_set(pairs) == set(ref)
    np.testing.assert_allclose(dist, [ref[p] for p in map(tuple, pairs.tolist())], rtol=1e-5)


@pytest.mark.parametrize("kind", KINDS)
def test_mutual_nearest_neighbours_equal_cv2_bfmatcher_cross_check(graf_descriptors, kind):
    """Oracle: cv2.BFMatcher(norm, crossCheck=True).match(d1, d2)."""
    d1, d2, metric = graf_descriptors[kind]
    pairs, _ = match_descriptors(d1, d2, ratio=None, mutual=True, metric=metric)
    ref = cv2.BFMatcher(NORMS[metric], crossCheck=True).match(d1, d2)
    assert len(ref) > 300
    assert pair_set(pairs) == {(m.queryIdx, m.trainIdx) for m in ref}
    assert len(np.unique(pairs[:, 1])) == len(pairs)


@pytest.mark.parametrize("kind", KINDS)
def test_plain_nearest_neighbour_equals_cv2_bfmatcher_match(graf_descriptors, kind):
    """Oracle: cv2.BFMatcher(norm).match(d1, d2), one match per query, same tie-breaking."""
    d1, d2, metric = graf_descriptors[kind]
    pairs, dist = match_descriptors(d1, d2, ratio=None, mutual=False, metric=metric)
    ref = cv2.BFMatcher(NORMS[metric]).match(d1, d2)
    np.testing.assert_array_equal(pairs[:, 0], np.arange(len(d1)))
    np.testing.assert_array_equal(pairs[:, 1], [m.trainIdx for m in ref])
    np.testing.assert_allclose(dist, [m.distance for m in ref], rtol=1e-5)


def test_mutual_and_ratio_together_are_the_intersection_of_the_cv2_sets(graf_descriptors):
    """Oracle: crossCheck matches ∩ knnMatch ratio-test matches (ratio applied d1 → d2)."""
    d1, d2, _ = graf_descriptors["sift"]
    pairs, _ = match_descriptors(d1, d2, ratio=0.8, mutual=True)
    knn = cv2.BFMatcher(cv2.NORM_L2).knnMatch(d1, d2, k=2)
    ratio = {(m.queryIdx, m.trainIdx) for m, n in knn if m.distance < 0.8 * n.distance}
    cross = {(m.queryIdx, m.trainIdx)
             for m in cv2.BFMatcher(cv2.NORM_L2, crossCheck=True).match(d1, d2)}
    assert pair_set(pairs) == ratio & cross


def test_ratio_test_on_squared_distances_is_looser(graf_descriptors):
    """The pitfall: δ₁² < r δ₂² is δ₁ < √r δ₂, a ratio of 0.894 for r = 0.8, letting through
    matches that Lowe's test on distances rejects. Oracle: cv2.BFMatcher distances (Euclidean).
    Closed form: a query at distances 0.85 and 1 passes the squared test (0.7225 < 0.8) and
    fails ours (0.85 ≥ 0.8)."""
    d1 = np.array([[0.0, 0.0]], np.float32)
    d2 = np.array([[0.85, 0.0], [0.0, 1.0]], np.float32)
    assert len(match_descriptors(d1, d2, ratio=0.8, mutual=False).pairs) == 0
    assert len(match_descriptors(d1, d2, ratio=0.9, mutual=False).pairs) == 1

    d1, d2, _ = graf_descriptors["sift"]
    knn = cv2.BFMatcher(cv2.NORM_L2).knnMatch(d1, d2, k=2)
    squared = {(m.queryIdx, m.trainIdx) for m, n in knn if m.distance**2 < 0.8 * n.distance**2}
    ours = pair_set(match_descriptors(d1, d2, ratio=0.8, mutual=False).pairs)
    assert ours < squared and len(squared) > 1.2 * len(ours)
    assert pair_set(match_descriptors(d1, d2, ratio=np.sqrt(0.8), mutual=False).pairs) == squared


def test_l2_distances_equal_numpy_brute_force_closed_form():
    """Oracle: NumPy ‖aᵢ − bⱼ‖ over all pairs (float64), argmin, and the column argmin for the
    mutual check, on random float descriptors."""
    a, b = rng.normal(size=(90, 16)), rng.normal(size=(70, 16))
    full = np.linalg.norm(a[:, None] - b[None], axis=2)
    pairs, dist = match_descriptors(a, b, ratio=None, mutual=False)
    np.testing.assert_array_equal(pairs[:, 1], full.argmin(axis=1))
    np.testing.assert_allclose(dist, full.min(axis=1), rtol=1e-12)
    pairs, dist = match_descriptors(a, b, ratio=0.9, mutual=True)
    nn, back = full.argmin(axis=1), full.argmin(axis=0)
    two = np.sort(full, axis=1)[:, :2]
    keep = (back[nn] == np.arange(len(a))) & (two[:, 0] < 0.9 * two[:, 1])
    np.testing.assert_array_equal(pairs, np.c_[np.flatnonzero(keep), nn[keep]])
    assert pairs.dtype == np.int64 and dist.dtype == np.float64


def test_hamming_distances_equal_unpackbits_popcount_closed_form():
    """Oracle: popcount of the XOR of the bytes through np.unpackbits."""
    a = rng.integers(0, 256, (60, 32), dtype=np.uint8)
    b = rng.integers(0, 256, (50, 32), dtype=np.uint8)
    full = np.unpackbits(a[:, None] ^ b[None], axis=2).sum(axis=2)
    pairs, dist = match_descriptors(a, b, ratio=None, mutual=False, metric="hamming")
    np.testing.assert_array_equal(dist, full[np.arange(len(a)), pairs[:, 1]])
    np.testing.assert_array_equal(dist, full.min(axis=1))


def test_ties_go_to_the_lowest_index_like_cv2_bfmatcher():
    """Oracle: cv2.BFMatcher on duplicated rows. Equal candidates: the lowest d2 index wins;
    equal queries: the lowest d1 index is the mutual one; a best/second tie fails the ratio."""
    b = rng.integers(0, 256, (20, 32), dtype=np.uint8)
    b = np.concatenate([b, b[:5]])  # d2 rows 20..24 duplicate rows 0..4
    a = np.concatenate([b[[3, 7, 3]], rng.integers(0, 256, (10, 32), dtype=np.uint8)])
    pairs, _ = match_descriptors(a, b, ratio=None, mutual=False, metric="hamming")
    ref = cv2.BFMatcher(cv2.NORM_HAMMING).match(a, b)
    np.testing.assert_array_equal(pairs[:, 1], [m.trainIdx for m in ref])
    assert pairs[0, 1] == 3 and pairs[2, 1] == 3
    pairs, _ = match_descriptors(a, b, ratio=None, mutual=True, metric="hamming")
    cross = cv2.BFMatcher(cv2.NORM_HAMMING, crossCheck=True).match(a, b)
    assert pair_set(pairs) == {(m.queryIdx, m.trainIdx) for m in cross}
    assert (0, 3) in pair_set(pairs) and (2, 3) not in pair_set(pairs)
    pairs, _ = match_descriptors(a, b, ratio=0.99, mutual=False, metric="hamming")
    assert 0 not in pairs[:, 0] and 1 in pairs[:, 0]  # row 7 has no duplicate


def test_result_does_not_depend_on_block_size():
    """Blocks of 1, 7 (not dividing N) and all rows give the same matches, ties included."""
    a = rng.integers(0, 4, (50, 8)).astype(np.float32)  # coarse values: many exact ties
    b = rng.integers(0, 4, (40, 8)).astype(np.float32)
    ref = match_descriptors(a, b, ratio=None, mutual=True, block_size=50)
    for block in (1, 7, None):
        got = match_descriptors(a, b, ratio=None, mutual=True, block_size=block)
        np.testing.assert_array_equal(got.pairs, ref.pairs)
        np.testing.assert_array_equal(got.distances, ref.distances)


def test_max_distance_keeps_matches_at_or_below_it():
    """Closed form on a 1-d example: distances 0.5 and 2 with max_distance 0.5."""
    pairs, dist = match_descriptors(np.float32([[0.0], [10.0]]), np.float32([[0.5], [12.0]]),
                                    ratio=None, max_distance=0.5)
    np.testing.assert_array_equal(pairs, [[0, 0]])
    np.testing.assert_allclose(dist, [0.5])


def test_single_candidate_passes_the_ratio_test_and_empty_inputs_give_empty_matches():
    """With M = 1 there is no runner-up; with N = 0 or M = 0 there is nothing to match."""
    pairs, _ = match_descriptors(np.ones((3, 4), np.float32), np.zeros((1, 4), np.float32),
                                 mutual=False)
    np.testing.assert_array_equal(pairs, [[0, 0], [1, 0], [2, 0]])
    for a, b in ((np.zeros((0, 4)), np.ones((3, 4))), (np.ones((3, 4)), np.zeros((0, 4)))):
        m = match_descriptors(a, b)
        assert isinstance(m, Matches) and m.pairs.shape == (0, 2) and m.distances.shape == (0,)
        assert m.pairs.dtype == np.int64


def test_torch_input_gives_torch_output_equal_to_numpy():
    """Tensors in, tensors out on the same device; same matches as NumPy input."""
    a, b = rng.normal(size=(40, 8)).astype(np.float32), rng.normal(size=(30, 8)).astype(np.float32)
    ref = match_descriptors(a, b)
    got = match_descriptors(torch.from_numpy(a), torch.from_numpy(b))
    assert isinstance(got.pairs, torch.Tensor) and got.pairs.dtype == torch.int64
    np.testing.assert_array_equal(got.pairs.numpy(), ref.pairs)
    np.testing.assert_array_equal(got.distances.numpy(), ref.distances)
    mixed = match_descriptors(a, torch.from_numpy(b))
    assert isinstance(mixed.pairs, torch.Tensor)
    np.testing.assert_array_equal(mixed.pairs.numpy(), ref.pairs)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_gpu_matching_equals_cpu_matching():
    """Oracle: the CPU path (itself checked against cv2.BFMatcher), SIFT-like integer rows and
    ORB-like bytes, on CUDA tensors."""
    a = rng.integers(0, 256, (3000, 128)).astype(np.float32)
    b = rng.integers(0, 256, (2500, 128)).astype(np.float32)
    ref = match_descriptors(a, b, ratio=0.95)
    got = match_descriptors(torch.from_numpy(a).cuda(), torch.from_numpy(b).cuda(), ratio=0.95)
    assert got.pairs.is_cuda
    np.testing.assert_array_equal(got.pairs.cpu().numpy(), ref.pairs)
    a8 = rng.integers(0, 256, (3000, 32), dtype=np.uint8)
    b8 = rng.integers(0, 256, (2500, 32), dtype=np.uint8)
    ref = match_descriptors(a8, b8, metric="hamming", ratio=None)
    got = match_descriptors(torch.from_numpy(a8).cuda(), torch.from_numpy(b8).cuda(),
                            metric="hamming", ratio=None)
    np.testing.assert_array_equal(got.pairs.cpu().numpy(), ref.pairs)


@pytest.mark.parametrize("d1, d2, kwargs, words", [
    (np.ones((3, 4)), np.ones((3, 5)), {}, "same width"),
    (np.ones(4), np.ones((3, 4)), {}, r"shape \(N, D\)"),
    (np.full((3, 4), np.nan), np.ones((3, 4)), {}, "finite d1"),
    (np.ones((3, 4)), np.ones((3, 4)), {"metric": "hamming"}, "uint8"),
    (np.ones((3, 4)), np.ones((3, 4)), {"metric": "cosine"}, "metric"),
    (np.ones((3, 4)), np.ones((3, 4)), {"ratio": 1.5}, "ratio"),
    (np.ones((3, 4)), np.ones((3, 4)), {"ratio": float("nan")}, "ratio"),
    (np.ones((3, 4)), np.ones((3, 4)), {"max_distance": -1.0}, "max_distance"),
    (np.ones((3, 4)), np.ones((3, 4)), {"block_size": 0}, "block_size"),
    (np.ones((3, 4)), np.ones((3, 4)), {"block_size": 2.0}, "block_size"),
    ([["a"]], np.ones((3, 4)), {}, "d1"),
])
def test_bad_input_raises_one_line_geometry_error(d1, d2, kwargs, words):
    with pytest.raises(GeometryError, match=words) as info:
        match_descriptors(d1, d2, **kwargs)
    assert "\n" not in str(info.value) and "match_descriptors" in str(info.value)
