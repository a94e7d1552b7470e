"""Feature tracks: chain pairwise matches across many images into multi-view observations.

A *track* is the set of (image, keypoint) observations of one 3-D point. Pairwise matches are
edges of a graph whose nodes are (image, keypoint); tracks are its connected components, found
with union–find (path halving, union by size) in near-linear time.

A component that holds two different keypoints of the same image is *inconsistent* (some match
on its path is wrong: one 3-D point projects to one place per image), so it is dropped, as is
any track seen in fewer than ``min_length`` images.

Reference: Snavely, Seitz, Szeliski, "Photo Tourism", SIGGRAPH 2006, §4.1; Moulon & Monasse,
"Unordered feature tracking made fast and easy", CVMP 2012.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from foveal.errors import GeometryError


@dataclass(frozen=True)
class Tracks:
    """Tracks as flat observation arrays, sorted by track.

    Attributes:
        track: (M,) track index of each observation, 0..T−1, non-decreasing.
        image: (M,) image index of each observation.
        keypoint: (M,) keypoint index within its image.
        starts: (T + 1,) observations of track ``k`` are ``starts[k]:starts[k + 1]``.
    """

    track: np.ndarray
    image: np.ndarray
    keypoint: np.ndarray
    starts: np.ndarray

    def __len__(self) -> int:
        return len(self.starts) - 1

    def observations(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(image indices, keypoint indices) of track ``k``."""
        a, b = self.starts[k], self.starts[k + 1]
        return self.image[a:b], self.keypoint[a:b]

    def lengths(self) -> np.ndarray:
        """(T,) number of images that see each track."""
        return np.diff(self.starts)


def _find(parent: np.ndarray, i: int) -> int:
    while parent[i] != i:
        parent[i] = parent[parent[i]]  # path halving keeps later finds short
        i = parent[i]
    return i


def build_tracks(
    matches: Mapping[tuple[int, int], np.ndarray],
    keypoint_counts: list[int] | np.ndarray,
    *,
    min_length: int = 2,
) -> Tracks:
    """Connected components of the match graph, without inconsistent ones.

    Args:
        matches: ``{(i, j): (M_ij, 2) int array}``, rows ``(keypoint in image i, keypoint in
            image j)``, for image pairs ``i != j``.
        keypoint_counts: number of keypoints in each image.
        min_length: drop tracks seen in fewer images than this.
    """
    counts = np.asarray(keypoint_counts, dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(counts)])
    parent = np.arange(offsets[-1], dtype=np.int64)
    size = np.ones(offsets[-1], dtype=np.int64)
    for (i, j), m in matches.items():
        m = np.asarray(m)
        if i == j or not (0 <= i < len(counts) and 0 <= j < len(counts)):
            raise GeometryError(f"build_tracks: expected a pair of two image indices below "
                                f"{len(counts)}, got {(i, j)}")
        if m.size == 0:
            continue
        if m.ndim != 2 or m.shape[1] != 2:
            raise GeometryError(f"build_tracks: expected matches of shape (M, 2) for pair "
                                f"{(i, j)}, got {m.shape}")
        if m[:, 0].max() >= counts[i] or m[:, 1].max() >= counts[j] or m.min() < 0:
            raise GeometryError(f"build_tracks: match indices of pair {(i, j)} exceed the "
                                f"keypoint counts {counts[i]} and {counts[j]}")
        for a, b in zip(m[:, 0] + offsets[i], m[:, 1] + offsets[j], strict=True):
            ra, rb = _find(parent, int(a)), _find(parent, int(b))
            if ra != rb:
                if size[ra] < size[rb]:
                    ra, rb = rb, ra
                parent[rb] = ra
                size[ra] += size[rb]
    nodes = np.arange(offsets[-1])
    roots = np.array([_find(parent, int(n)) for n in nodes], dtype=np.int64)
    singleton = np.bincount(roots, minlength=len(nodes))[roots] == 1
    nodes, roots = nodes[~singleton], roots[~singleton]
    image = np.searchsorted(offsets, nodes, side="right") - 1
    keypoint = nodes - offsets[image]
    order = np.lexsort((image, roots))
    nodes, roots, image, keypoint = nodes[order], roots[order], image[order], keypoint[order]
    _, first, per_root = np.unique(roots, return_index=True, return_counts=True)
    # a component is consistent when its images are distinct (sorted: no equal neighbours)
    same_image = np.zeros(len(roots), dtype=bool)
    same_image[1:] = (roots[1:] == roots[:-1]) & (image[1:] == image[:-1])
    bad_root = np.zeros(len(first), dtype=bool)
    np.logical_or.at(bad_root, np.repeat(np.arange(len(first)), per_root), same_image)
    keep_root = ~bad_root & (per_root >= min_length)
    keep = np.repeat(keep_root, per_root)
    new_index = np.cumsum(keep_root) - 1
    track = np.repeat(new_index, per_root)[keep]
    starts = np.concatenate([[0], np.cumsum(per_root[keep_root])])
    return Tracks(track=track, image=image[keep], keypoint=keypoint[keep], starts=starts)
