"""Incremental structure from motion: cameras and a sparse point cloud from calibrated images.

Given images ``I₀ … I_{N−1}`` of a static scene and their intrinsics ``Kᵢ``, find the
extrinsics ``(Rᵢ, tᵢ)`` (``x_cam = Rᵢ X + tᵢ``) and world points ``Xⱼ`` that minimise the
reprojection error

    E = Σ_(i,j) ρ(‖π(Kᵢ (Rᵢ Xⱼ + tᵢ)) − x̃ᵢⱼ‖²),      π(u, v, w) = (u / w, v / w),

over the observations ``x̃ᵢⱼ`` (keypoint of point ``j`` in image ``i``). ``E`` is not convex, so
the solution is grown one camera at a time from a good two-view start and kept close to the
optimum by bundle adjustment after every step (Snavely et al. 2006; Schönberger & Frahm 2016):

1. **Features.** SIFT keypoints and descriptors per image (:func:`foveal.geometry.features.
   detect_sift`), RootSIFT by default; optionally only on the foreground (pixels brighter than a
   grey level, dilated), for objects on a dark background.
2. **Matching.** Every pair ``i < j``: mutual nearest neighbours with Lowe's ratio test
   (:func:`foveal.geometry.matching.match_descriptors`).
3. **Geometric verification.** With known ``K`` the two-view relation is the essential matrix,
   ``x̂ⱼᵀ E x̂ᵢ = 0`` with ``x̂ = K⁻¹ x̃`` and ``E = [t]× R`` (HZ §9.6): five-point RANSAC
   (:func:`foveal.geometry.essential.find_essential`). A pair is kept with at least
   ``min_pair_inliers`` inliers making up ``min_inlier_ratio`` of its matches. *Guided matching*
   then re-matches the pair inside the epipolar band ``d_S(x̃ᵢ, x̃ⱼ; F) < guided_threshold_px``
   (Sampson distance, ``F = Kⱼ⁻ᵀ E Kᵢ⁻¹``): mutual nearest neighbours *among the candidates in
   the band* with a relaxed ratio, which recovers correct matches that a far-away look-alike
   hid from the global ratio test (HZ §11.6's guided matching). A keypoint alone in its band
   passes any ratio test, so a guided match must also be no less alike (descriptor distance)
   than 1.3 × the least alike RANSAC inlier. The relative pose ``(R, t)`` (``‖t‖ = 1``) comes
   from the cheirality test on the four decompositions of ``E`` (HZ §9.6.3).
4. **Tracks.** The verified matches are chained into tracks by union–find
   (:func:`foveal.geometry.tracks.build_tracks`); a track that reaches two keypoints of one image
   is inconsistent and dropped. Each track holds at most one point.
5. **Initial pair.** The pair with the most verified matches among those whose median
   triangulation angle is at least ``init_min_angle_deg`` (16°, COLMAP's default: depth from a
   small angle is ill-conditioned, its error grows like ``1 / angle``): cameras ``[I | 0]`` and
   ``[R | t]``, its tracks triangulated, then bundle adjustment. When the reconstruction ends
   with fewer than half of the images, the next pairs are tried (``init_attempts``) and the
   largest reconstruction is kept.
6. **Registration loop.** Candidates are the unregistered images, ranked by the number of
   triangulated tracks they see. PnP in RANSAC (:func:`foveal.geometry.pnp.solve_pnp_ransac`,
   EPnP + LM, ``pnp_threshold_px``) registers first an image with ``3 × min_observations``
   inliers if there is one (a weak image waits until the model has grown towards it), else one
   with ``min_pnp_inliers``. When none can be, *multi-pair registration* places an image from
   the relative poses of its verified pairs with registered images (:func:`_register_from_pairs`).
   A registration is *tentative*: the image's open tracks are triangulated
   (:meth:`_Model.triangulate`: n-view DLT and LM; the worst observation is dropped while one
   reprojects worse than ``max_reprojection_px`` or lies behind its camera; a point is kept
   when its widest ray angle is at least ``min_triangulation_angle_deg``) and points pick up the
   image's observations that reproject well; with fewer than ``min_observations`` observations
   the registration is undone — a wrong pose explains few of the image's other matches. Then
   bundle adjustment (Huber, :func:`foveal.geometry.bundle_adjustment.bundle_adjust`; global on
   models of up to ``global_ba_images`` images, local around the new image on larger ones),
   observations with a large error are dropped, points left with fewer than two observations
   or too narrow an angle are deleted, and failed tracks are triangulated again. Failed images
   are retried whenever the model has changed. The loop stops when no image can be registered.
7. **Final global bundle adjustment**, filtering and re-triangulation.

The reconstruction is defined up to a similarity: the first camera of the initial pair is
``[I | 0]`` and the baseline of the pair is 1 (bundle adjustment holds this gauge).
Every random choice is seeded by ``SfmOptions.seed``: the same input gives the same output.

References: N. Snavely, S. M. Seitz, R. Szeliski, "Photo tourism: exploring photo collections
in 3D", SIGGRAPH 2006; J. L. Schönberger, J.-M. Frahm, "Structure-from-Motion Revisited",
CVPR 2016 (COLMAP); HZ §9.6 (the essential matrix), §11.6 (guided matching), §12 (triangulation),
§18.1 (bundle adjustment).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from tqdm.auto import tqdm

from foveal.errors import GeometryError
from foveal.geometry.alignment import rotation_angle_deg
from foveal.geometry.bundle_adjustment import bundle_adjust
from foveal.geometry.camera import invert_intrinsics, read_intrinsics
from foveal.geometry.essential import find_essential, recover_pose
from foveal.geometry.features import Features, detect_sift
from foveal.geometry.image import read_image
from foveal.geometry.matching import match_descriptors
from foveal.geometry.pnp import refine_pose, solve_pnp_ransac
from foveal.geometry.ransac import ransac_iterations
from foveal.geometry.rotation import project_to_so3
from foveal.geometry.tracks import build_tracks
from foveal.geometry.triangulation import refine_points, triangulate_nview
from foveal.geometry.validate import calibration_matrix, positive

#: Images with this many times ``min_observations`` PnP inliers are registered before others.
_CONFIDENT = 3
_CAP = 1.3

#: File name endings ``run_sfm`` reads as images (case-insensitive).
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".ppm", ".pgm", ".webp")


@dataclass(frozen=True)
class SfmOptions:
    """Settings of :func:`incremental_sfm`; the defaults suit a few dozen images.

    Features and matching:
        max_features: SIFT keypoints kept per image, the strongest (``None``: all).
        contrast_threshold: SIFT's contrast threshold (OpenCV's default 0.04; lower finds
            more keypoints on weak texture).
        edge_threshold: SIFT's edge threshold ``r`` (OpenCV's default 10; higher keeps more
            keypoints along ridges).
        root_sift: RootSIFT descriptors (Hellinger kernel) instead of SIFT's.
        background_threshold: keep only keypoints within ``background_margin`` pixels of a
            pixel brighter than this grey level (0–255); ``None`` keeps all. For objects on a
            black background.
        background_margin: see ``background_threshold``.
        ratio: Lowe's ratio for the first matching pass.
        guided_matching: re-match verified pairs inside the epipolar band of their ``E``.
        guided_ratio: Lowe's ratio among the candidates inside the band.
        guided_threshold_px: half-width of the band (Sampson distance, pixels).

    Two-view verification:
        essential_threshold_px: RANSAC inlier threshold on the Sampson distance of ``E``.
        ransac_iterations: RANSAC samples at most per pair (99 % confidence at an inlier
            ratio of 0.3). Fewer are drawn where a pair could only pass with a higher ratio.
        min_pair_inliers: verified matches a pair needs.
        min_inlier_ratio: fraction of the putative matches that must be inliers.

    Initialisation and registration:
        init_min_inliers: verified matches the initial pair needs.
        init_min_angle_deg: median triangulation angle the initial pair needs.
        init_attempts: initial pairs tried when a reconstruction registers fewer than half of
            the images (the largest reconstruction is kept).
        pnp_threshold_px: PnP RANSAC inlier threshold (reprojection error).
        min_pnp_inliers: PnP inliers an image needs to be registered tentatively.
        min_observations: observations a tentatively registered image must have once its new
            tracks are triangulated (and keep after bundle adjustment); images with
            ``3 × min_observations`` PnP inliers are registered before weaker ones.
        multi_pair: place images from relative poses to registered images when PnP cannot.
        pair_rotation_tolerance_deg: agreement required between the rotations that different
            pairs predict.

    Triangulation, bundle adjustment and filtering:
        min_triangulation_angle_deg: a point's widest angle between two of its rays.
        max_reprojection_px: observations with a larger reprojection error are dropped.
        huber_px: Huber threshold of bundle adjustment (pixels).
        ba_iterations: LM iterations of each intermediate bundle adjustment.
        final_ba_iterations: LM iterations of the final global bundle adjustment.
        global_ba_images: models up to this size get a global bundle adjustment after every
            registration; larger ones a local one (the new image and ``local_ba_images`` − 1
            of its most co-visible neighbours) and a global one whenever the model has grown by
            ``global_ba_growth``.
        seed: seeds every RANSAC.
    """

    max_features: int | None = 8192
    contrast_threshold: float = 0.005
    edge_threshold: float = 10.0
    root_sift: bool = True
    background_threshold: int | None = None
    background_margin: int = 8
    ratio: float = 0.8
    guided_matching: bool = True
    guided_ratio: float = 0.9
    guided_threshold_px: float = 2.0
    essential_threshold_px: float = 1.5
    ransac_iterations: int = 2000
    min_pair_inliers: int = 15
    min_inlier_ratio: float = 0.25
    init_min_inliers: int = 30
    init_min_angle_deg: float = 16.0
    init_attempts: int = 3
    pnp_threshold_px: float = 4.0
    min_pnp_inliers: int = 12
    min_observations: int = 15
    multi_pair: bool = True
    pair_rotation_tolerance_deg: float = 3.0
    min_triangulation_angle_deg: float = 1.5
    max_reprojection_px: float = 4.0
    huber_px: float = 1.0
    ba_iterations: int = 25
    final_ba_iterations: int = 100
    global_ba_images: int = 30
    local_ba_images: int = 8
    global_ba_growth: float = 1.2
    seed: int = 0


@dataclass(frozen=True)
class SfmResult:
    """A reconstruction. Arrays of unregistered images are NaN.

    Attributes:
        names: (N) image names, in input order.
        K: (N, 3, 3) intrinsics.
        registered: (N,) bool.
        R: (N, 3, 3) rotations, world → camera.
        t: (N, 3) translations, ``x_cam = R X + t``.
        points: (P, 3) world points.
        colors: (P, 3) uint8 RGB, the mean colour of each point's observations.
        camera_index, point_index: (M,) the observations: point ``point_index[k]`` seen by
            image ``camera_index[k]`` at ``xy[k]``, keypoint ``keypoint_index[k]``.
        xy: (M, 2) observed pixels.
        keypoint_index: (M,).
        errors: (M,) reprojection error of each observation, pixels.
        keypoint_counts: (N,) keypoints detected per image.
        pair_matches: ``{(i, j): verified matches}`` of the pairs that passed verification.
        initial_pair: the two images the reconstruction started from.
        registration: ``(image, method)`` in the order of registration, method ``"initial"``,
            ``"pnp"`` or ``"pairs"``.
        timings: seconds per stage.
        log: what the registration loop did, one line per event (images by index).
    """

    names: list[str]
    K: np.ndarray
    registered: np.ndarray
    R: np.ndarray
    t: np.ndarray
    points: np.ndarray
    colors: np.ndarray
    camera_index: np.ndarray
    point_index: np.ndarray
    xy: np.ndarray
    keypoint_index: np.ndarray
    errors: np.ndarray
    keypoint_counts: np.ndarray
    pair_matches: dict[tuple[int, int], int]
    initial_pair: tuple[int, int]
    registration: list[tuple[int, str]]
    timings: dict[str, float] = field(default_factory=dict)
    log: list[str] = field(default_factory=list)

    @property
    def centers(self) -> np.ndarray:
        """(N, 3) camera centres ``C = −Rᵀ t`` (NaN for unregistered images)."""
        return -np.einsum("nji,nj->ni", self.R, self.t)

    @property
    def num_registered(self) -> int:
        return int(self.registered.sum())

    def observations_per_image(self) -> np.ndarray:
        """(N,) observations kept per image."""
        return np.bincount(self.camera_index, minlength=len(self.names))

    def metrics(self) -> dict[str, Any]:
        """Summary numbers: counts, reprojection error statistics (pixels), timings."""
        e = self.errors
        track = np.bincount(self.point_index, minlength=len(self.points))
        return {
            "views_registered": self.num_registered,
            "views": len(self.names),
            "points": len(self.points),
            "observations": len(e),
            "mean_track_length": float(track.mean()) if len(track) else 0.0,
            "reprojection_rmse_px": float(np.sqrt(np.mean(e * e))) if len(e) else None,
            "reprojection_median_px": float(np.median(e)) if len(e) else None,
            "reprojection_max_px": float(e.max()) if len(e) else None,
            "initial_pair": [self.names[i] for i in self.initial_pair],
            "registration": [{"image": self.names[i], "method": m} for i, m in self.registration],
            "unregistered": [n for n, r in zip(self.names, self.registered, strict=True) if not r],
            "verified_pairs": len(self.pair_matches),
            "timings_s": dict(self.timings),
        }


# --------------------------------------------------------------------------------------------
# Stages 1–3: features, matching, two-view verification
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Pair:
    """A verified image pair ``i < j``: matches (M, 2) keypoint indices, and the relative pose
    ``x_cam_j = R x_cam_i + t`` with ``‖t‖ = 1``."""

    i: int
    j: int
    matches: np.ndarray
    R: np.ndarray
    t: np.ndarray
    median_angle_deg: float


def _grey(image: np.ndarray) -> np.ndarray:
    """Luma of an RGB uint8 image (ITU-R BT.601), or the image itself if already grey."""
    if image.ndim == 2:
        return image
    luma = image[..., :3].astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    return np.clip(np.rint(luma), 0, 255).astype(np.uint8)


def _foreground(keypoints: np.ndarray, grey: np.ndarray, threshold: int, margin: int
                ) -> np.ndarray:
    """(N,) bool: keypoints within ``margin`` pixels (a square) of a pixel above ``threshold``."""
    from scipy.ndimage import maximum_filter

    bright = maximum_filter(grey > threshold, size=2 * margin + 1)
    h, w = grey.shape
    col = np.clip(np.rint(keypoints[:, 0]).astype(int), 0, w - 1)
    row = np.clip(np.rint(keypoints[:, 1]).astype(int), 0, h - 1)
    return bright[row, col]


def _subset(f: Features, keep: np.ndarray) -> Features:
    return Features(f.keypoints[keep], f.descriptors[keep], f.scales[keep],
                    f.orientations[keep], f.responses[keep])


def _detect(images: Sequence[np.ndarray], options: SfmOptions, progress: bool
            ) -> tuple[list[Features], list[np.ndarray]]:
    """Features per image and the RGB colour (K, 3) uint8 under each keypoint."""
    features, colors = [], []
    for image in tqdm(images, desc="sfm: features", disable=not progress, leave=False):
        grey = _grey(image)
        f = detect_sift(grey, options.max_features, root=options.root_sift,
                        contrast_threshold=options.contrast_threshold,
                        edge_threshold=options.edge_threshold)
        if options.background_threshold is not None and len(f):
            f = _subset(f, _foreground(f.keypoints, grey, options.background_threshold,
                                       options.background_margin))
        rgb = np.repeat(image[..., None], 3, axis=2) if image.ndim == 2 else image[..., :3]
        h, w = grey.shape
        col = np.clip(np.rint(f.keypoints[:, 0]).astype(int), 0, w - 1)
        row = np.clip(np.rint(f.keypoints[:, 1]).astype(int), 0, h - 1)
        features.append(f)
        colors.append(np.asarray(rgb[row, col], dtype=np.uint8).reshape(-1, 3))
    return features, colors


def _sampson_band(k1: np.ndarray, k2: np.ndarray, F: np.ndarray, threshold: float
                  ) -> np.ndarray:
    """(n1, n2) bool: pairs whose Sampson distance (HZ eq. 11.9) to ``F`` is below ``threshold``.

        d_S² = (x̃₂ᵀ F x̃₁)² / ((F x̃₁)₁² + (F x̃₁)₂² + (Fᵀ x̃₂)₁² + (Fᵀ x̃₂)₂²)
    """
    h1 = np.column_stack([k1, np.ones(len(k1))])
    h2 = np.column_stack([k2, np.ones(len(k2))])
    l2 = h1 @ F.T  # epipolar lines F x̃₁ in image 2
    l1 = h2 @ F  # Fᵀ x̃₂ in image 1
    algebraic = l2 @ h2.T
    denominator = (l2[:, :2] ** 2).sum(1)[:, None] + (l1[:, :2] ** 2).sum(1)[None, :]
    return algebraic * algebraic < threshold * threshold * denominator


def _guided_matches(f1: Features, f2: Features, F: np.ndarray, threshold: float,
                    ratio: float, max_distance: float = np.inf) -> np.ndarray:
    """Mutual nearest neighbours restricted to the epipolar band of ``F``, ratio-tested against
    the runner-up inside the band (HZ §11.6), no farther apart than ``max_distance`` in
    descriptor space. (M, 2) keypoint index pairs.

    A keypoint alone in its band has no runner-up and passes any ratio test; the distance cap
    keeps such a lone candidate from matching when its descriptor is unlike the other's."""
    if len(f1) == 0 or len(f2) == 0:
        return np.zeros((0, 2), dtype=np.int64)
    band = _sampson_band(f1.keypoints, f2.keypoints, F, threshold)
    d1 = f1.descriptors.astype(np.float64)
    d2 = f2.descriptors.astype(np.float64)
    dist2 = (d1 * d1).sum(1)[:, None] + (d2 * d2).sum(1)[None, :] - 2.0 * d1 @ d2.T
    cost = np.where(band, np.maximum(dist2, 0.0), np.inf)
    rows = np.arange(len(f1))
    best = np.argmin(cost, axis=1)
    first = cost[rows, best]
    cost[rows, best] = np.inf
    second = cost.min(axis=1)
    cost[rows, best] = first
    mutual = np.argmin(cost, axis=0)[best] == rows
    # Lowe's test on distances, not squared distances: δ₁ < r δ₂ ⇔ δ₁² < r² δ₂².
    keep = np.isfinite(first) & mutual & (first < ratio * ratio * second) & (
        first <= max_distance * max_distance)
    return np.column_stack([rows[keep], best[keep]]).astype(np.int64)


def _fundamental(E: np.ndarray, K1: np.ndarray, K2: np.ndarray) -> np.ndarray:
    """``F = K₂⁻ᵀ E K₁⁻¹`` (HZ eq. 9.12)."""
    return invert_intrinsics(K2).T @ E @ invert_intrinsics(K1)


def _median_angle(R: np.ndarray, t: np.ndarray, x1: np.ndarray, x2: np.ndarray,
                  K1: np.ndarray, K2: np.ndarray) -> float:
    """Median triangulation angle (degrees) of the correspondences under ``[I|0]``, ``[R|t]``,
    over the points in front of both cameras (0 if none)."""
    Ps = np.stack([K1 @ np.eye(3, 4), K2 @ np.column_stack([R, t])])
    X = triangulate_nview(Ps, np.stack([x1, x2]))
    C2 = -R.T @ t
    r1, r2 = X, X - C2
    depth1, depth2 = X[:, 2], (X @ R.T + t)[:, 2]
    ok = np.isfinite(X).all(1) & (depth1 > 0) & (depth2 > 0)
    if not ok.any():
        return 0.0
    cos = (r1[ok] * r2[ok]).sum(1) / (np.linalg.norm(r1[ok], axis=1)
                                      * np.linalg.norm(r2[ok], axis=1))
    return float(np.degrees(np.median(np.arccos(np.clip(cos, -1.0, 1.0)))))


def _verify(i: int, j: int, f1: Features, f2: Features, putative: np.ndarray,
            K1: np.ndarray, K2: np.ndarray, options: SfmOptions) -> _Pair | None:
    """E-RANSAC on the putative matches, guided re-matching, relative pose; None if it fails."""
    if len(putative) < max(options.min_pair_inliers, 5):
        return None
    x1, x2 = f1.keypoints[putative[:, 0]], f2.keypoints[putative[:, 1]]
    # A pair is rejected below w = max(min_inlier_ratio, min_pair_inliers / n) anyway, so
    # RANSAC needs only the samples that find a model of that support (HZ eq. 4.18): a few
    # dozen for the many hopeless pairs with a handful of chance matches.
    w = min(1.0, max(options.min_inlier_ratio, options.min_pair_inliers / len(putative)))
    budget = int(min(options.ransac_iterations, ransac_iterations(w, 5, 0.999)))
    try:
        E, inliers = find_essential(x1, x2, K1, K2, threshold=options.essential_threshold_px,
                                    seed=_seed(options.seed, i, j), max_iterations=budget)
    except GeometryError:
        return None
    inliers = np.asarray(inliers, dtype=bool)
    count = int(inliers.sum())
    if count < options.min_pair_inliers or count < options.min_inlier_ratio * len(putative):
        return None
    matches = putative[inliers]
    if options.guided_matching:
        # no guided match may be less alike than the least alike verified one
        cap = np.linalg.norm(f1.descriptors[matches[:, 0]].astype(np.float64)
                             - f2.descriptors[matches[:, 1]], axis=1).max() * _CAP
        guided = _guided_matches(f1, f2, _fundamental(E, K1, K2),
                                 options.guided_threshold_px, options.guided_ratio, cap)
        # Keep the RANSAC inliers whose keypoints the guided pass left unused.
        used1 = np.isin(matches[:, 0], guided[:, 0])
        used2 = np.isin(matches[:, 1], guided[:, 1])
        matches = np.concatenate([guided, matches[~used1 & ~used2]])
        matches = matches[np.argsort(matches[:, 0], kind="stable")]
    x1, x2 = f1.keypoints[matches[:, 0]], f2.keypoints[matches[:, 1]]
    try:
        R, t, front = recover_pose(E, x1, x2, K1, K2,
                                   threshold=options.essential_threshold_px)
    except GeometryError:
        return None
    front = np.asarray(front, dtype=bool)
    if front.sum() < options.min_pair_inliers:
        return None
    matches = matches[front]
    t = np.asarray(t, dtype=np.float64).reshape(3)
    t = t / np.linalg.norm(t)
    angle = _median_angle(R, t, x1[front], x2[front], K1, K2)
    return _Pair(i, j, matches, np.asarray(R, dtype=np.float64), t, angle)


def _seed(seed: int, *parts: int) -> int:
    """A 32-bit seed from ``seed`` and indices: independent streams for pairs and images."""
    return int(np.random.SeedSequence([int(seed) & 0xFFFFFFFF, *parts]).generate_state(1)[0])


def _match_and_verify(features: list[Features], K: np.ndarray, options: SfmOptions,
                      progress: bool, timings: dict[str, float]) -> dict[tuple[int, int], _Pair]:
    n = len(features)
    pairs_ij = [(i, j) for i in range(n) for j in range(i + 1, n)]
    start = time.perf_counter()
    putative = {}
    for i, j in tqdm(pairs_ij, desc="sfm: matching", disable=not progress, leave=False):
        if len(features[i]) < 2 or len(features[j]) < 2:
            putative[i, j] = np.zeros((0, 2), dtype=np.int64)
            continue
        putative[i, j] = np.asarray(match_descriptors(
            features[i].descriptors, features[j].descriptors, ratio=options.ratio,
            mutual=True).pairs, dtype=np.int64)
    timings["matching_s"] = time.perf_counter() - start
    start = time.perf_counter()
    verified = {}
    for i, j in tqdm(pairs_ij, desc="sfm: verification", disable=not progress, leave=False):
        pair = _verify(i, j, features[i], features[j], putative[i, j], K[i], K[j], options)
        if pair is not None:
            verified[i, j] = pair
    timings["verification_s"] = time.perf_counter() - start
    return verified


# --------------------------------------------------------------------------------------------
# Stages 4–7: the model and the incremental loop
# --------------------------------------------------------------------------------------------

class _Model:
    """The growing reconstruction: poses per image, a point per track (NaN until triangulated),
    and which track observations are in use ("active").

    Observations are the flat arrays of :class:`~foveal.geometry.tracks.Tracks` (sorted by
    track); an observation is active when its image is registered, its track has a point, and
    it reprojects within the threshold.
    """

    def __init__(self, keypoints: list[np.ndarray], K: np.ndarray,
                 pairs: dict[tuple[int, int], _Pair], options: SfmOptions) -> None:
        self.K = K
        self.options = options
        self.pairs = pairs
        n = len(keypoints)
        tracks = build_tracks({ij: p.matches for ij, p in pairs.items()},
                              [len(k) for k in keypoints], min_length=2)
        self.starts = tracks.starts
        self.track = tracks.track
        self.image = tracks.image
        self.keypoint = tracks.keypoint
        self.xy = np.zeros((len(self.track), 2))
        for i in range(n):
            mine = self.image == i
            self.xy[mine] = keypoints[i][self.keypoint[mine]]
        self.active = np.zeros(len(self.track), dtype=bool)
        self.X = np.full((len(tracks), 3), np.nan)
        self.R = np.full((n, 3, 3), np.nan)
        self.t = np.full((n, 3), np.nan)
        self.registered = np.zeros(n, dtype=bool)
        self.order: list[int] = []
        self.methods: list[str] = []
        self.log: list[str] = []
        self.by_image = [np.flatnonzero(self.image == i) for i in range(n)]
        self.K_inv = np.stack([invert_intrinsics(k) for k in K])

    # ---- geometry of observations ---------------------------------------------------------

    def residuals(self, obs: np.ndarray, X: np.ndarray | None = None
                  ) -> tuple[np.ndarray, np.ndarray]:
        """Reprojection errors (pixels; inf if undefined) and depths of observations ``obs``
        (indices), of their tracks' points or of the given points ``X`` (len(obs), 3)."""
        cam = self.image[obs]
        X = self.X[self.track[obs]] if X is None else X
        p = np.einsum("mij,mj->mi", self.R[cam], X) + self.t[cam]
        with np.errstate(divide="ignore", invalid="ignore"):
            uv = p[:, :2] / p[:, 2:]
            pix = np.einsum("mij,mj->mi", self.K[cam][:, :2, :2], uv) + self.K[cam][:, :2, 2]
        err = np.linalg.norm(pix - self.xy[obs], axis=1)
        return np.where(np.isfinite(err), err, np.inf), p[:, 2]

    def centre(self, i: int | np.ndarray) -> np.ndarray:
        return -np.einsum("...ji,...j->...i", self.R[i], self.t[i])

    def _max_angles(self, cam: np.ndarray, slot: np.ndarray, X: np.ndarray) -> np.ndarray:
        """(n,) widest angle (degrees) between two rays ``X − C`` of each point; ``cam``/``slot``
        list the rays (camera, point); rays with ``slot < 0`` are ignored."""
        cam, slot = cam[slot >= 0], slot[slot >= 0]
        rays = X[slot] - self.centre(cam)
        rays /= np.linalg.norm(rays, axis=1, keepdims=True)
        min_cos = np.ones(len(X))
        order = np.argsort(slot, kind="stable")
        slot, rays = slot[order], rays[order]
        starts = np.searchsorted(slot, np.arange(len(X) + 1))
        longest = int(np.diff(starts).max()) if len(X) else 0
        # rays of each point in a (n, longest, 3) block, zero-padded (cosine 0 never wins)
        dense = np.zeros((len(X), longest, 3))
        rank = np.arange(len(slot)) - starts[slot]
        dense[slot, rank] = rays
        present = np.zeros((len(X), longest), dtype=bool)
        present[slot, rank] = True
        for a in range(longest):
            cos = np.einsum("nd,nkd->nk", dense[:, a], dense)
            cos = np.where(present & present[:, a:a + 1], cos, 1.0)
            min_cos = np.minimum(min_cos, cos.min(axis=1))
        return np.degrees(np.arccos(np.clip(min_cos, -1.0, 1.0)))

    # ---- triangulation ---------------------------------------------------------------------

    def triangulate(self, tracks: np.ndarray) -> int:
        """Triangulate ``tracks`` (indices, without points) from their observations in
        registered images; returns the number of new points.

        n-view DLT then LM on the reprojection error (:func:`triangulate_nview`,
        :func:`refine_points`). While some observation reprojects worse than
        ``max_reprojection_px`` or lies behind its camera, the worst one is dropped (keeping at
        least two) and the point estimated again. A point is kept when all its remaining
        observations pass and its widest ray angle is at least ``min_triangulation_angle_deg``.
        """
        opt = self.options
        tracks = np.asarray(tracks, dtype=np.intp)
        if len(tracks) == 0:
            return 0
        counts = self.starts[tracks + 1] - self.starts[tracks]
        obs = np.repeat(self.starts[tracks] - np.cumsum(counts) + counts, counts) + np.arange(
            counts.sum())
        slot = np.repeat(np.arange(len(tracks)), counts)
        keep = self.registered[self.image[obs]]
        obs, slot = obs[keep], slot[keep]
        use = np.ones(len(obs), dtype=bool)
        X = np.full((len(tracks), 3), np.nan)
        todo = np.arange(len(tracks))
        for _ in range(4):
            live = use & np.isin(slot, todo)
            todo = todo[np.bincount(slot[live], minlength=len(tracks))[todo] >= 2]
            if len(todo) == 0:
                break
            live = np.flatnonzero(use & np.isin(slot, todo))
            X[todo] = self._triangulate_dense(obs[live], slot[live], todo)
            err, depth = self.residuals(obs[live], X[slot[live]])
            err = np.where(depth > 0, err, np.inf)
            failing = np.unique(slot[live][err > opt.max_reprojection_px])
            if len(failing) == 0:
                break
            views = np.bincount(slot[live], minlength=len(tracks))
            retry = failing[views[failing] > 2]
            X[np.setdiff1d(failing, retry)] = np.nan  # two views and one is wrong: give up
            # drop the worst observation of every point to retry (the first of equal ones)
            worst = np.full(len(tracks), -np.inf)
            np.maximum.at(worst, slot[live], err)
            is_worst = np.isin(slot[live], retry) & (err == worst[slot[live]])
            _, first = np.unique(slot[live][is_worst], return_index=True)
            use[live[np.flatnonzero(is_worst)[first]]] = False
            todo = retry
        live = np.flatnonzero(use & np.isfinite(X[slot]).all(1))
        err, depth = self.residuals(obs[live], X[slot[live]])
        passed = np.ones(len(tracks), dtype=bool)
        np.logical_and.at(passed, slot[live], (err <= opt.max_reprojection_px) & (depth > 0))
        passed &= np.isfinite(X).all(1) & (np.bincount(slot[live], minlength=len(tracks)) >= 2)
        cand = np.flatnonzero(passed)
        sel = live[passed[slot[live]]]
        local = np.full(len(tracks), -1)
        local[cand] = np.arange(len(cand))
        angle = self._max_angles(self.image[obs[sel]], local[slot[sel]], X[cand])
        good = np.zeros(len(tracks), dtype=bool)
        good[cand] = angle >= opt.min_triangulation_angle_deg
        self.X[tracks[good]] = X[good]
        self.active[obs[sel][good[slot[sel]]]] = True
        return int(good.sum())

    def _triangulate_dense(self, obs: np.ndarray, slot: np.ndarray, todo: np.ndarray
                           ) -> np.ndarray:
        """Points (len(todo), 3) of tracks ``todo`` from observations ``obs`` of track slots
        ``slot``: DLT over all registered cameras with a visibility mask, then LM."""
        cams = np.flatnonzero(self.registered)
        cam_pos = np.full(len(self.registered), -1)
        cam_pos[cams] = np.arange(len(cams))
        local = np.full(int(slot.max()) + 1, -1)
        local[todo] = np.arange(len(todo))
        Ps = self.K[cams] @ np.concatenate([self.R[cams], self.t[cams, :, None]], axis=2)
        xs = np.full((len(cams), len(todo), 2), np.nan)
        visible = np.zeros((len(cams), len(todo)), dtype=bool)
        c, s = cam_pos[self.image[obs]], local[slot]
        xs[c, s] = self.xy[obs]
        visible[c, s] = True
        X = triangulate_nview(Ps, xs, visible)
        return refine_points(Ps, xs, X, visible=visible, iterations=10)

    def open_tracks(self, image: int | None = None) -> np.ndarray:
        """Tracks without a point seen by ≥ 2 registered images (and by ``image`` if given)."""
        seen = self.registered[self.image]
        n_reg = np.bincount(self.track[seen], minlength=len(self.X))
        open_ = ~np.isfinite(self.X).all(1) & (n_reg >= 2)
        if image is not None:
            mine = np.zeros(len(self.X), dtype=bool)
            mine[self.track[self.by_image[image]]] = True
            open_ &= mine
        return np.flatnonzero(open_)

    def complete(self) -> int:
        """Activate the inactive observations of points in registered images that reproject
        within ``max_reprojection_px`` in front of the camera (COLMAP's track completion)."""
        cand = np.flatnonzero(~self.active & self.registered[self.image]
                              & np.isfinite(self.X[self.track]).all(1))
        if len(cand) == 0:
            return 0
        err, depth = self.residuals(cand)
        ok = (err <= self.options.max_reprojection_px) & (depth > 0)
        self.active[cand[ok]] = True
        return int(ok.sum())

    def filter(self) -> None:
        """Drop observations with a large error or behind the camera, then points left with
        fewer than two observations or too narrow a ray angle."""
        obs = np.flatnonzero(self.active)
        err, depth = self.residuals(obs)
        bad = (err > self.options.max_reprojection_px) | (depth <= 0)
        self.active[obs[bad]] = False
        self._drop_weak_points()

    def _drop_weak_points(self) -> None:
        has_point = np.isfinite(self.X).all(1)
        counts = np.bincount(self.track[self.active], minlength=len(self.X))
        dead = has_point & (counts < 2)
        cand = np.flatnonzero(has_point & ~dead)
        if len(cand):
            obs = np.flatnonzero(self.active)
            local = np.full(len(self.X), -1)
            local[cand] = np.arange(len(cand))
            angle = self._max_angles(self.image[obs], local[self.track[obs]], self.X[cand])
            dead[cand[angle < self.options.min_triangulation_angle_deg]] = True
        self.X[dead] = np.nan
        self.active[dead[self.track]] = False

    # ---- bundle adjustment ------------------------------------------------------------------

    def bundle(self, iterations: int, local_to: int | None = None,
               tolerance: float = 1e-6) -> None:
        """Bundle adjustment with a Huber loss: global, or local to image ``local_to`` and its
        most co-visible neighbours (the rest held fixed). The gauge: the first registered
        camera is fixed, and the scale too while fewer than two cameras are fixed."""
        opt = self.options
        obs = np.flatnonzero(self.active)
        if len(obs) == 0:
            return
        gauge = self.order[0]
        if local_to is None:
            free = set(self.order[1:])
        else:
            free = self._neighbours(local_to, opt.local_ba_images)
            free.discard(gauge)
            mine = np.zeros(len(self.X), dtype=bool)
            mine[self.track[obs[np.isin(self.image[obs], list(free))]]] = True
            obs = obs[mine[self.track[obs]]]
        cams_used = set(np.unique(self.image[obs]).tolist())
        # the fixed camera first, free ones in registration order (fix_scale holds the first)
        fixed = [c for c in self.order if c in cams_used and c not in free]
        if gauge not in fixed:
            fixed.insert(0, gauge)
        moving = [c for c in self.order if c in cams_used and c in free]
        if not moving:
            return
        cams = np.array(fixed + moving)
        cam_pos = np.full(len(self.registered), -1)
        cam_pos[cams] = np.arange(len(cams))
        tracks, pt = np.unique(self.track[obs], return_inverse=True)
        try:
            result = bundle_adjust(
                self.R[cams], self.t[cams], self.X[tracks], cam_pos[self.image[obs]], pt,
                self.xy[obs], self.K[cams], loss="huber", huber_delta=opt.huber_px,
                fixed_cameras=range(len(fixed)), fix_scale=len(fixed) < 2,
                max_iterations=iterations, tolerance=tolerance)
        except GeometryError:
            return  # a degenerate sub-problem: keep the current estimate
        self.R[cams], self.t[cams], self.X[tracks] = result.R, result.t, result.points

    def _neighbours(self, image: int, count: int) -> set[int]:
        """``image`` and the ``count − 1`` registered images sharing most points with it."""
        shared_tracks = np.zeros(len(self.X), dtype=bool)
        mine = self.by_image[image]
        shared_tracks[self.track[mine[self.active[mine]]]] = True
        obs = np.flatnonzero(self.active & shared_tracks[self.track])
        covis = np.bincount(self.image[obs], minlength=len(self.registered))
        covis[image] = -1
        ranked = [int(c) for c in np.argsort(-covis, kind="stable") if covis[c] > 0]
        return {image, *ranked[: count - 1]}

    # ---- registration ----------------------------------------------------------------------

    def correspondences(self, image: int) -> np.ndarray:
        """Observations of ``image`` whose track has a point: its 2D–3D correspondences."""
        obs = self.by_image[image]
        return obs[np.isfinite(self.X[self.track[obs]]).all(1)]

    def set_pose(self, image: int, R: np.ndarray, t: np.ndarray, method: str) -> None:
        self.R[image], self.t[image] = R, t
        self.registered[image] = True
        self.order.append(image)
        self.methods.append(method)

    def unregister(self, image: int) -> None:
        self.active[self.by_image[image]] = False
        self.registered[image] = False
        self.R[image], self.t[image] = np.nan, np.nan
        k = self.order.index(image)
        del self.order[k], self.methods[k]
        self._drop_weak_points()

    def pnp(self, image: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None:
        """PnP-RANSAC (EPnP, LM on the inliers) on the image's 2D–3D correspondences:
        ``(R, t, correspondences, inliers)``, or None when it finds no pose."""
        opt = self.options
        obs = self.correspondences(image)
        if len(obs) < max(opt.min_pnp_inliers, 6):
            return None
        X, x = self.X[self.track[obs]], self.xy[obs]
        try:
            R, t, inliers = solve_pnp_ransac(X, x, self.K[image], threshold=opt.pnp_threshold_px,
                                             seed=_seed(opt.seed, image, len(self.order)))
        except GeometryError:
            return None
        return R, t, obs, inliers

    def register_pnp(self, image: int, found: tuple[np.ndarray, ...] | None,
                     minimum: int) -> bool:
        """Register ``image`` with the pose :meth:`pnp` found if it has ``minimum`` inliers."""
        if found is None or found[3].sum() < minimum:
            return False
        R, t, obs, inliers = found
        self.set_pose(image, R, t, "pnp")
        self.active[obs[inliers]] = True
        self.log.append(f"image {image}: registered by PnP, {int(inliers.sum())} inliers among "
                        f"{len(obs)} 2D–3D matches")
        return True

    def register_from_pairs(self, image: int) -> bool:
        """See :func:`_register_from_pairs`."""
        return _register_from_pairs(self, image)


def _relative_poses(model: _Model, image: int) -> list[tuple[int, np.ndarray, np.ndarray, int]]:
    """``(r, R_rel, t_rel, matches)`` for the verified pairs of ``image`` with registered images
    ``r``, as ``x_cam_image = R_rel x_cam_r + t_rel``, most matches first."""
    out = []
    for (i, j), p in model.pairs.items():
        if image not in (i, j) or p.median_angle_deg < model.options.min_triangulation_angle_deg:
            continue
        r = j if i == image else i
        if not model.registered[r]:
            continue
        if j == image:
            out.append((r, p.R, p.t, len(p.matches)))
        else:  # x_i = Rᵀ x_j − Rᵀ t
            out.append((r, p.R.T, -p.R.T @ p.t, len(p.matches)))
    return sorted(out, key=lambda e: -e[3])


def _register_from_pairs(model: _Model, image: int) -> bool:
    """Place ``image`` from the relative poses of its verified pairs with registered images.

    Pair ``(image, r)`` gives ``x_k = R_rel x_r + t_rel`` up to the scale of ``t_rel``, so

        R_k = R_rel R_r,     C_k = C_r + s d_r,   d_r = −R_kᵀ t_rel,   s > 0:

    the rotation, and a ray from ``C_r`` on which the centre lies. The rotations of the pairs
    that agree with the best-supported one within ``pair_rotation_tolerance_deg`` are averaged
    (chordal mean: :func:`project_to_so3` of their sum). The centre is

    - the least-squares intersection of the rays, ``Σ_r (I − d_r d_rᵀ)(C − C_r) = 0``, when two
      or more agreeing rays are at least 5° apart;
    - otherwise on the best pair's ray, at the median of the scales that the image's 2D–3D
      correspondences ``(X, b)`` suggest (``b = R_kᵀ K⁻¹ x̃``, the world direction of the ray
      through the keypoint): ``s = (P d)·(P (X − C_r)) / ‖P d‖²`` with ``P = I − b bᵀ`` puts
      ``X`` closest to that ray. One correspondence fixes the scale a single pair leaves open.

    A relative pose from two narrow-angle views is only good to a degree or so (the
    rotation–translation ambiguity of nearly affine cameras), hundreds of pixels at a long focal
    length. So the placement only *starts* a robust refinement on the 2D–3D correspondences:
    LM with a Huber loss on the correspondences within a threshold that shrinks from
    ``64 × pnp_threshold_px`` to ``pnp_threshold_px`` (:func:`refine_pose`). The image is
    registered when ``min_observations`` correspondences agree with the refined pose, or, with
    fewer, when two agreeing pairs fixed the centre (the registration loop then checks that the
    image has ``min_observations`` observations after triangulation and adjustment).
    """
    opt = model.options
    rel = _relative_poses(model, image)
    if not rel:
        return False
    R_best = rel[0][1] @ model.R[rel[0][0]]
    agree = []
    for r, R_rel, t_rel, _ in rel:
        R_k = R_rel @ model.R[r]
        if rotation_angle_deg(R_k, R_best) <= opt.pair_rotation_tolerance_deg:
            agree.append((r, R_k, t_rel))
    R_k = project_to_so3(sum(a[1] for a in agree))
    C_r = np.stack([model.centre(r) for r, _, _ in agree])
    d = np.stack([-R_k.T @ t for _, _, t in agree])
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    K, K_inv = model.K[image], model.K_inv[image]
    obs = model.correspondences(image)
    X, x = model.X[model.track[obs]], model.xy[obs]
    C = None
    from_rays = len(agree) >= 2 and np.abs(d @ d.T).min() < math.cos(math.radians(5.0))
    if from_rays:
        proj = np.eye(3) - d[:, :, None] * d[:, None, :]
        C = np.linalg.solve(proj.sum(0), np.einsum("rij,rj->i", proj, C_r))
        from_rays = bool(np.all(((C - C_r) * d).sum(1) > 0))
        C = C if from_rays else None
    if C is None and len(obs):
        b = np.column_stack([x, np.ones(len(x))]) @ K_inv.T @ R_k  # rows (R_kᵀ K⁻¹ x̃)ᵀ
        b /= np.linalg.norm(b, axis=1, keepdims=True)
        Pd = d[0] - (b @ d[0])[:, None] * b
        v = X - C_r[0]
        Pv = v - (b * v).sum(1, keepdims=True) * b
        denominator = (Pd * Pd).sum(1)
        scale = (Pd * Pv).sum(1)[denominator > 1e-12] / denominator[denominator > 1e-12]
        if np.any(scale > 0):
            C = C_r[0] + np.median(scale[scale > 0]) * d[0]
    if C is None:
        model.log.append(f"image {image}: no placement from {len(agree)} agreeing pair(s) and "
                         f"{len(obs)} 2D–3D matches")
        return False
    R, t = R_k, -R_k @ C
    inliers = np.zeros(len(obs), dtype=bool)
    if len(obs) >= 6:
        for factor in (64, 32, 16, 8, 4, 2, 1):
            near = _inliers(X, x, K, R, t, factor * opt.pnp_threshold_px)
            if near.sum() < 6:
                break
            R, t = refine_pose(R, t, X[near], x[near], K, loss="huber",
                               huber_delta=factor * opt.huber_px)
        inliers = _inliers(X, x, K, R, t, opt.pnp_threshold_px)
        if inliers.sum() < opt.min_observations:
            R, t = R_k, -R_k @ C  # the refinement did not converge: back to the placement
            inliers = _inliers(X, x, K, R, t, opt.pnp_threshold_px)
    if inliers.sum() < opt.min_observations and not from_rays:
        model.log.append(f"image {image}: placed from pair with {agree[0][0]}, but only "
                         f"{int(inliers.sum())} of {len(obs)} 2D–3D matches agree")
        return False
    model.set_pose(image, R, t, "pairs")
    model.active[obs[inliers]] = True
    model.log.append(f"image {image}: placed from pairs with {[a[0] for a in agree]}, "
                     f"{int(inliers.sum())} of {len(obs)} 2D–3D matches agree")
    return True


def _inliers(X: np.ndarray, x: np.ndarray, K: np.ndarray, R: np.ndarray, t: np.ndarray,
             threshold: float) -> np.ndarray:
    """(N,) bool: points in front of the camera that reproject within ``threshold`` pixels."""
    p = X @ R.T + t
    with np.errstate(divide="ignore", invalid="ignore"):
        pix = p[:, :2] / p[:, 2:] @ K[:2, :2].T + K[:2, 2]
        return (p[:, 2] > 0) & (np.linalg.norm(pix - x, axis=1) <= threshold)


def _initial_pairs(pairs: dict[tuple[int, int], _Pair], options: SfmOptions) -> list[_Pair]:
    """Pairs that may start a reconstruction, best first: enough matches and a median
    triangulation angle of at least ``init_min_angle_deg``, ranked by matches."""
    good = [p for p in pairs.values() if len(p.matches) >= options.init_min_inliers
            and p.median_angle_deg >= options.init_min_angle_deg]
    return sorted(good, key=lambda p: (-len(p.matches), p.i, p.j))


def _initialise(model: _Model, pair: _Pair) -> bool:
    """Cameras ``[I | 0]`` and ``[R | t]`` for the pair, its tracks triangulated, then BA."""
    model.set_pose(pair.i, np.eye(3), np.zeros(3), "initial")
    model.set_pose(pair.j, pair.R, pair.t, "initial")
    model.triangulate(model.open_tracks())
    model.bundle(model.options.ba_iterations * 2)
    model.filter()
    points = int(np.isfinite(model.X).all(1).sum())
    model.log.append(f"initial pair ({pair.i}, {pair.j}): {len(pair.matches)} matches, median "
                     f"angle {pair.median_angle_deg:.1f}°, {points} points")
    return points >= model.options.min_observations


def _supported(model: _Model, image: int) -> bool:
    """Triangulate the new image's open tracks and extend points into it; keep the
    registration when the image then has ``min_observations`` observations, else undo it.

    A wrong pose explains few of the image's other matches: the points it would triangulate
    with registered images fail the reprojection, cheirality or angle tests.
    """
    model.triangulate(model.open_tracks(image))
    model.complete()
    kept = int(model.active[model.by_image[image]].sum())
    if kept >= model.options.min_observations:
        return True
    model.log.append(f"image {image}: only {kept} observations after triangulation "
                     f"(needs {model.options.min_observations}), taken out again")
    model.unregister(image)
    return False


def _next_image(model: _Model, pending: list[int], tried: set[int]) -> int | None:
    """Register one of ``pending``: PnP in tiers (confident ones first, so that a weak image
    waits until the model has grown towards it), then from pairs. Failed images go to
    ``tried``."""
    opt = model.options
    support = {i: len(model.correspondences(i)) for i in pending}
    ranked = sorted(pending, key=lambda i: (-support[i], i))
    found: dict[int, Any] = {}
    for minimum in (_CONFIDENT * opt.min_observations, opt.min_pnp_inliers):
        for i in ranked:
            if support[i] < minimum:
                break
            if i in tried:
                continue
            if i not in found:
                found[i] = model.pnp(i)
            if model.register_pnp(i, found[i], minimum):
                if _supported(model, i):
                    return i
                tried.add(i)
    for i in ranked:
        if i in found and i not in tried:
            n_in = 0 if found[i] is None else int(found[i][3].sum())
            model.log.append(f"image {i}: PnP found {n_in} inliers among {support[i]} "
                             f"2D–3D matches (needs {opt.min_pnp_inliers})")
    if opt.multi_pair:
        strength = {i: sum(e[3] for e in _relative_poses(model, i)) for i in pending}
        for i in sorted(pending, key=lambda i: (-strength[i], i)):
            if i not in tried and strength[i] and model.register_from_pairs(i):
                if _supported(model, i):
                    return i
                tried.add(i)
    return None


def _grow(model: _Model, progress: bool) -> None:
    """The registration loop (module docstring, step 6) and the final adjustment (step 7)."""
    opt = model.options
    n = len(model.registered)
    tried: set[int] = set()  # failed since the model last changed
    last_global = len(model.order)
    bar = tqdm(total=n, initial=len(model.order), desc="sfm: registration",
               disable=not progress, leave=False)
    while True:
        pending = [i for i in range(n) if not model.registered[i] and i not in tried]
        image = _next_image(model, pending, tried) if pending else None
        if image is None:
            break
        if len(model.order) <= opt.global_ba_images:
            model.bundle(opt.ba_iterations)
        else:
            model.bundle(opt.ba_iterations, local_to=image)
            if len(model.order) >= opt.global_ba_growth * last_global:
                model.bundle(opt.ba_iterations)
                last_global = len(model.order)
        model.filter()
        model.triangulate(model.open_tracks())
        model.complete()
        model.filter()
        kept = int(model.active[model.by_image[image]].sum())
        if kept < opt.min_observations:
            model.log.append(f"image {image}: only {kept} observations left after adjustment, "
                             "taken out again")
            model.unregister(image)
            tried.add(image)
            continue
        tried.clear()
        bar.update(1)
    bar.close()
    for _ in range(2):
        model.bundle(opt.final_ba_iterations, tolerance=1e-8)
        model.filter()
        model.triangulate(model.open_tracks())
        model.complete()
    model.bundle(opt.final_ba_iterations, tolerance=1e-10)
    model.filter()


def _result(model: _Model, names: list[str], keypoint_counts: list[int],
            colors: list[np.ndarray], pairs: dict[tuple[int, int], _Pair],
            initial: _Pair, timings: dict[str, float]) -> SfmResult:
    tracks = np.flatnonzero(np.isfinite(model.X).all(1))
    pos = np.full(len(model.X), -1)
    pos[tracks] = np.arange(len(tracks))
    obs = np.flatnonzero(model.active)
    obs = obs[pos[model.track[obs]] >= 0]
    err, _ = model.residuals(obs)
    point_index = pos[model.track[obs]]
    offsets = np.concatenate([[0], np.cumsum([len(c) for c in colors])])
    obs_rgb = np.concatenate(colors)[offsets[model.image[obs]] + model.keypoint[obs]] \
        if len(obs) else np.zeros((0, 3))
    seen = np.maximum(np.bincount(point_index, minlength=len(tracks)), 1)
    rgb = np.stack([np.bincount(point_index, obs_rgb[:, k], minlength=len(tracks)) / seen
                    for k in range(3)], axis=1)
    return SfmResult(
        names=list(names), K=model.K.copy(), registered=model.registered.copy(),
        R=model.R.copy(), t=model.t.copy(), points=model.X[tracks].copy(),
        colors=np.clip(np.rint(rgb), 0, 255).astype(np.uint8),
        camera_index=model.image[obs].astype(np.int64), point_index=point_index.astype(np.int64),
        xy=model.xy[obs].copy(), keypoint_index=model.keypoint[obs].astype(np.int64),
        errors=err, keypoint_counts=np.asarray(keypoint_counts, dtype=np.int64),
        pair_matches={ij: len(p.matches) for ij, p in pairs.items()},
        initial_pair=(initial.i, initial.j),
        registration=list(zip(model.order, model.methods, strict=True)),
        timings=dict(timings), log=list(model.log))


# --------------------------------------------------------------------------------------------
# Public entry points
# --------------------------------------------------------------------------------------------

def _intrinsics_stack(K: ArrayLike, n: int, op: str) -> np.ndarray:
    K = np.asarray(K, dtype=np.float64)
    if K.shape == (3, 3):
        return np.broadcast_to(calibration_matrix(K, op), (n, 3, 3)).copy()
    if K.shape == (n, 3, 3):
        return np.stack([calibration_matrix(k, op, f"K[{i}]") for i, k in enumerate(K)])
    raise GeometryError(f"{op}: expected K of shape (3, 3) or ({n}, 3, 3) for {n} images, "
                        f"got {K.shape}")


def _check_options(options: SfmOptions, op: str) -> None:
    if not isinstance(options, SfmOptions):
        raise GeometryError(f"{op}: expected options as an SfmOptions, got "
                            f"{type(options).__name__}")
    for name in ("ratio", "guided_ratio"):
        value = getattr(options, name)
        if not 0 < value <= 1:
            raise GeometryError(f"{op}: expected options.{name} in (0, 1], got {value}")
    for name in ("guided_threshold_px", "essential_threshold_px", "pnp_threshold_px",
                 "max_reprojection_px", "huber_px"):
        positive(getattr(options, name), op, f"options.{name}")
    for name in ("ransac_iterations", "min_pair_inliers", "init_min_inliers", "min_pnp_inliers",
                 "min_observations", "init_attempts", "ba_iterations", "final_ba_iterations",
                 "local_ba_images"):
        value = getattr(options, name)
        if int(value) != value or value < 1:
            raise GeometryError(f"{op}: expected options.{name} as an integer ≥ 1, got {value}")


def sfm_from_features(features: Sequence[Features], K: ArrayLike,
                      names: Sequence[str] | None = None, options: SfmOptions = SfmOptions(),
                      *, colors: Sequence[np.ndarray] | None = None,
                      progress: bool = False) -> SfmResult:
    """Incremental SfM from keypoints and descriptors already computed (stages 2–7).

    Args:
        features: one :class:`~foveal.geometry.features.Features` per image (only
            ``keypoints`` (n, 2) pixels and float ``descriptors`` (n, D) are used).
        K: (3, 3) shared intrinsics or (N, 3, 3), one per image.
        names: image names (default ``"0"``, ``"1"``, …).
        options: :class:`SfmOptions`.
        colors: optional (n, 3) uint8 RGB per keypoint, for the point colours (default grey).
        progress: show tqdm progress bars.

    Raises:
        GeometryError: fewer than two images, bad ``K`` or options, or "could not initialise"
            when no image pair qualifies as the initial pair (the message says why).
    """
    op = "sfm_from_features"
    _check_options(options, op)
    n = len(features)
    if n < 2:
        raise GeometryError(f"{op}: expected at least 2 images, got {n}")
    names = [str(i) for i in range(n)] if names is None else [str(s) for s in names]
    if len(names) != n:
        raise GeometryError(f"{op}: expected {n} names, one per image, got {len(names)}")
    K = _intrinsics_stack(K, n, op)
    if colors is None:
        colors = [np.full((len(f), 3), 128, dtype=np.uint8) for f in features]
    timings: dict[str, float] = {}
    pairs = _match_and_verify(list(features), K, options, progress, timings)
    start = time.perf_counter()
    keypoints = [f.keypoints for f in features]
    initial_pairs = _initial_pairs(pairs, options)
    if not initial_pairs:
        best = max(pairs.values(), key=lambda p: len(p.matches), default=None)
        detail = (f"the best verified pair ({names[best.i]}, {names[best.j]}) has "
                  f"{len(best.matches)} matches at a median triangulation angle of "
                  f"{best.median_angle_deg:.2f}°" if best is not None
                  else "no image pair passed geometric verification")
        raise GeometryError(f"{op}: could not initialise: expected an image pair with at least "
                            f"{options.init_min_inliers} verified matches and a median "
                            f"triangulation angle of at least {options.init_min_angle_deg}°; "
                            f"{detail}")
    best_model: _Model | None = None
    best_pair = initial_pairs[0]
    for pair in initial_pairs[: options.init_attempts]:
        model = _Model(keypoints, K, pairs, options)
        if not _initialise(model, pair):
            continue
        _grow(model, progress)
        if best_model is None or (model.registered.sum(), np.isfinite(model.X).all(1).sum()) > \
                (best_model.registered.sum(), np.isfinite(best_model.X).all(1).sum()):
            best_model, best_pair = model, pair
        if 2 * model.registered.sum() >= n:
            break
    if best_model is None:
        raise GeometryError(f"{op}: could not initialise: none of the {len(initial_pairs)} "
                            f"candidate initial pairs kept {options.min_observations} points "
                            f"after triangulation and bundle adjustment")
    timings["reconstruction_s"] = time.perf_counter() - start
    return _result(best_model, names, [len(f) for f in features], list(colors), pairs,
                   best_pair, timings)


def incremental_sfm(images: Sequence[np.ndarray], K: ArrayLike,
                    names: Sequence[str] | None = None, options: SfmOptions = SfmOptions(),
                    *, progress: bool = False) -> SfmResult:
    """Incremental structure from motion on images with known intrinsics (module docstring).

    Args:
        images: N uint8 images, ``(H, W)`` grey or ``(H, W, 3)`` RGB.
        K: (3, 3) shared intrinsics or (N, 3, 3), one per image.
        names: image names (default ``"0"``, ``"1"``, …).
        options: :class:`SfmOptions`.
        progress: show tqdm progress bars.

    Returns:
        :class:`SfmResult`: poses of the registered images, points with colours, observations
        with their reprojection errors, timings per stage.

    Raises:
        GeometryError: fewer than two images, a non-uint8 image, bad ``K``, or "could not
            initialise" when no image pair qualifies as the initial pair.
    """
    op = "incremental_sfm"
    _check_options(options, op)
    if len(images) < 2:
        raise GeometryError(f"{op}: expected at least 2 images, got {len(images)}")
    for i, image in enumerate(images):
        a = np.asarray(image)
        if a.dtype != np.uint8 or a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[2] < 3):
            raise GeometryError(f"{op}: expected uint8 images of shape (H, W) or (H, W, 3), "
                                f"got image {i} with dtype {a.dtype} and shape {a.shape}")
    K = _intrinsics_stack(K, len(images), op)
    start = time.perf_counter()
    features, colors = _detect([np.asarray(im) for im in images], options, progress)
    features_s = time.perf_counter() - start
    result = sfm_from_features(features, K, names, options, colors=colors, progress=progress)
    return replace(result, timings={"features_s": features_s, **result.timings})


def list_images(image_dir: str | os.PathLike[str]) -> list[Path]:
    """The image files of a folder (by suffix, :data:`IMAGE_SUFFIXES`), sorted by name."""
    d = Path(image_dir)
    if not d.is_dir():
        raise GeometryError(f"run_sfm: expected a folder of images, got '{d}' "
                            f"({'not a folder' if d.exists() else 'not found'})")
    return sorted((p for p in d.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES),
                  key=lambda p: p.name)


def ground_truth_errors(result: SfmResult, cameras: dict[str, Any]) -> dict[str, Any] | None:
    """Pose errors of the registered images against reference cameras (by name, objects with
    ``R`` and ``center``), after a similarity alignment of the centres
    (:func:`foveal.geometry.alignment.camera_pose_errors`); None with fewer than 3 in common.

    Returns median/max rotation error (degrees), median/max centre error in reference units and
    as a fraction of the diameter of the reference centres' spread (their largest distance).
    """
    from foveal.geometry.alignment import camera_pose_errors

    common = [i for i, n in enumerate(result.names) if result.registered[i] and n in cameras]
    if len(common) < 3:
        return None
    R_true = np.stack([cameras[result.names[i]].R for i in common])
    C_true = np.stack([cameras[result.names[i]].center for i in common])
    try:
        errors = camera_pose_errors(result.R[common], result.centers[common], R_true, C_true)
    except GeometryError:
        return None
    every = np.stack([c.center for c in cameras.values()])
    diameter = float(np.max(np.linalg.norm(every[:, None] - every[None], axis=2)))
    return {
        "images": len(common),
        "median_rotation_deg": errors.median_rotation_deg,
        "max_rotation_deg": float(errors.rotation_deg.max()),
        "median_center_error": errors.median_center,
        "max_center_error": float(errors.center.max()),
        "reference_diameter": diameter,
        "median_center_error_fraction": errors.median_center / diameter,
        "per_image": {result.names[i]: {"rotation_deg": float(r), "center_error": float(c)}
                      for i, r, c in zip(common, errors.rotation_deg, errors.center,
                                         strict=True)},
        # the reference centres in the reconstruction's frame, for plots: x = Rᵀ(y − t) / s
        "_reference_in_model": (C_true - errors.similarity.t) @ errors.similarity.R
        / errors.similarity.scale,
    }


def run_sfm(image_dir: str | os.PathLike[str], intrinsics_path: str | os.PathLike[str],
            out_dir: str | os.PathLike[str], options: SfmOptions = SfmOptions(),
            progress: bool = True) -> SfmResult:
    """Reconstruct a folder of images and write the results into ``out_dir``.

    Reads the images of ``image_dir`` (:data:`IMAGE_SUFFIXES`, sorted by name) and their
    intrinsics with :func:`foveal.geometry.camera.read_intrinsics` (a Middlebury ``*_par.txt``
    listing every image, or one K shared by all), runs :func:`incremental_sfm`, and writes
    (atomically):

    - ``cameras.json``: per image ``name``, ``registered``, ``K``, ``R``, ``t``, ``center``
      (``null`` for unregistered images);
    - ``points.ply``: the points with their colours (:func:`foveal.geometry.ply.write_ply`);
    - ``metrics.json``: :meth:`SfmResult.metrics`, plus pose errors against the par file's
      cameras when the intrinsics file is a Middlebury par file;
    - ``plots/*.png`` and ``report.html`` (:func:`foveal.report.sfm.write_sfm_report`).

    Raises:
        GeometryError: a missing folder or intrinsics file, an unreadable image (named), fewer
            than two images, or "could not initialise".
    """
    from foveal.atomic import atomic_write_json
    from foveal.geometry.camera import read_middlebury_par
    from foveal.geometry.ply import write_ply
    from foveal.report.sfm import write_sfm_report

    paths = list_images(image_dir)
    if len(paths) < 2:
        raise GeometryError(f"run_sfm: expected at least 2 images in '{image_dir}', got "
                            f"{len(paths)}")
    names = [p.name for p in paths]
    by_name = read_intrinsics(intrinsics_path, names)
    K = np.stack([by_name[n] for n in names])
    start = time.perf_counter()
    images = [read_image(p, op="run_sfm")
              for p in tqdm(paths, desc="sfm: reading", disable=not progress, leave=False)]
    read_s = time.perf_counter() - start
    result = incremental_sfm(images, K, names, options, progress=progress)
    result = replace(result, timings={"read_s": read_s, **result.timings})
    out = Path(out_dir)
    start = time.perf_counter()
    cameras = []
    for i, name in enumerate(names):
        reg = bool(result.registered[i])
        cameras.append({
            "name": name, "registered": reg, "K": result.K[i].tolist(),
            "R": result.R[i].tolist() if reg else None,
            "t": result.t[i].tolist() if reg else None,
            "center": result.centers[i].tolist() if reg else None,
        })
    atomic_write_json(out / "cameras.json", {"cameras": cameras})
    write_ply(out / "points.ply", result.points if len(result.points) else np.zeros((0, 3)),
              result.colors if len(result.points) else np.zeros((0, 3), np.uint8))
    metrics = result.metrics()
    metrics["options"] = asdict(options)
    reference = None
    with contextlib.suppress(GeometryError):  # not a par file: no reference poses
        reference = ground_truth_errors(result, read_middlebury_par(intrinsics_path))
    if reference is not None:
        metrics["ground_truth"] = {k: v for k, v in reference.items() if not k.startswith("_")}
    timings = metrics["timings_s"]
    timings["total_s"] = sum(timings.values())  # the report shows the time without its own
    write_sfm_report(out, result, metrics, reference=reference)
    timings["output_s"] = time.perf_counter() - start
    timings["total_s"] += timings["output_s"]
    atomic_write_json(out / "metrics.json", json.loads(json.dumps(metrics, default=_jsonable)))
    return result


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Iterable):
        return list(value)
    return str(value)
