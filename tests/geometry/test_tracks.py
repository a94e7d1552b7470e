"""Tracks from pairwise matches, against a brute-force connected-components oracle (scipy)."""

import numpy as np
import pytest
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from foveal.errors import GeometryError
from foveal.geometry.tracks import build_tracks


def test_chain_of_matches_forms_one_track():
    matches = {(0, 1): np.array([[3, 0]]), (1, 2): np.array([[0, 5]])}
    tracks = build_tracks(matches, [4, 2, 6])
    assert len(tracks) == 1
    images, keypoints = tracks.observations(0)
    assert images.tolist() == [0, 1, 2] and keypoints.tolist() == [3, 0, 5]


def test_track_with_two_keypoints_of_one_image_is_dropped():
    """Pitfall: a wrong match merges two points; the component must not become one track."""
    matches = {(0, 1): np.array([[0, 0], [1, 1]]), (1, 2): np.array([[0, 0], [1, 0]])}
    tracks = build_tracks(matches, [2, 2, 1])
    assert len(tracks) == 0


def test_random_match_graph_equals_scipy_connected_components():
    rng = np.random.default_rng(0)
    counts = [40, 35, 50, 45]
    matches = {}
    for i in range(4):
        for j in range(i + 1, 4):
            a = rng.choice(counts[i], 20, replace=False)
            b = rng.choice(counts[j], 20, replace=False)
            matches[(i, j)] = np.stack([a, b], 1)
    tracks = build_tracks(matches, counts, min_length=2)
    offsets = np.concatenate([[0], np.cumsum(counts)])
    rows = np.concatenate([m[:, 0] + offsets[i] for (i, _), m in matches.items()])
    cols = np.concatenate([m[:, 1] + offsets[j] for (_, j), m in matches.items()])
    n = offsets[-1]
    _, labels = connected_components(coo_matrix((np.ones(len(rows)), (rows, cols)), (n, n)),
                                     directed=False)
    expected = set()
    for label in np.unique(labels):
        nodes = np.flatnonzero(labels == label)
        images = np.searchsorted(offsets, nodes, side="right") - 1
        if len(nodes) >= 2 and len(set(images)) == len(images):
            expected.add(frozenset(zip(images.tolist(), (nodes - offsets[images]).tolist(),
                                       strict=True)))
    got = {frozenset(zip(*(a.tolist() for a in tracks.observations(k)), strict=True))
           for k in range(len(tracks))}
    assert got == expected
    assert tracks.lengths().sum() == len(tracks.image)


def test_bad_matches_are_one_line_errors():
    with pytest.raises(GeometryError, match="exceed the keypoint counts"):
        build_tracks({(0, 1): np.array([[5, 0]])}, [3, 3])
    with pytest.raises(GeometryError, match=r"shape \(M, 2\)"):
        build_tracks({(0, 1): np.zeros((3, 3), int)}, [3, 3])
