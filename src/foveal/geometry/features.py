"""Keypoints and descriptors: a thin layer over OpenCV's SIFT and ORB detectors.

This is the only piece of :mod:`foveal.geometry` taken from OpenCV: detecting scale-space
extrema and describing them is a well-tuned C++ pipeline we have no reason to rewrite.
Matching (:mod:`foveal.geometry.matching`) and robust estimation are ours.

- **SIFT** (Lowe 2004): extrema of the difference of Gaussians ``D(x, y, σ) = (G(kσ) − G(σ)) * I``
  over space and scale, refined to sub-pixel and sub-scale accuracy by a quadratic fit (Lowe
  §4), rejected at low contrast ``|D(x̂)| < contrast_threshold / n_octave_layers`` and on edges
  (``tr(H)² / det(H) ≥ (r + 1)² / r`` with ``r = edge_threshold``), given one or more dominant
  gradient orientations (§5) and described by a 4×4×8 = 128-bin histogram of gradients,
  normalised, clipped at 0.2 and renormalised (§6). OpenCV scales it to norm 512 and rounds to
  integers, so SIFT descriptors are ``float32`` with integer values in [0, 255].
- **RootSIFT** (Arandjelović & Zisserman 2012, §3): ``d ↦ √(d / ‖d‖₁)``. The Euclidean distance
  between RootSIFT vectors compares the original histograms with the Hellinger kernel
  ``H(x, y) = Σᵢ √(xᵢ yᵢ)`` instead of the Euclidean one, which lets large bins dominate less.
  RootSIFT vectors have unit L2 norm.
- **ORB** (Rublee et al. 2011): FAST corners on an image pyramid, ranked by the Harris score,
  oriented by the intensity centroid ``θ = atan2(m₀₁, m₁₀)``, described by 256 steered binary
  intensity tests (rBRIEF) packed into 32 bytes; compare them with the Hamming distance.

Conventions of :class:`Features` (same for both detectors):

- ``keypoints`` ``(N, 2)`` float64 ``(x, y)`` pixels; pixel ``(0, 0)`` is the centre of the
  top-left pixel, ``x`` to the right, ``y`` down (``cv2.KeyPoint.pt``).
- ``scales`` ``(N,)`` float64: the diameter in pixels of the image region the descriptor
  summarises (``cv2.KeyPoint.size``). For SIFT it is proportional to the detection scale σ.
- ``orientations`` ``(N,)`` float64 radians in [0, 2π): the dominant direction measured from
  the +x axis towards +y in image coordinates (``y`` down, so clockwise as displayed); this is
  ``cv2.KeyPoint.angle`` in radians. Rotating the image content by ``+α`` in these coordinates
  adds ``α`` to the orientation.
- ``responses`` ``(N,)`` float64 detector strength (SIFT: ``|D(x̂)|``; ORB: the Harris score).

Images are ``uint8``: ``(H, W)`` grayscale, ``(H, W, 3)`` colour in RGB order by default (as
PIL, matplotlib and torchvision give them; pass ``channel_order="bgr"`` for arrays from
``cv2.imread``), or a path to any file OpenCV decodes. Colour is converted to luma
``Y = 0.299 R + 0.587 G + 0.114 B`` (ITU-R BT.601, OpenCV's ``COLOR_RGB2GRAY``).

References: D. G. Lowe, "Distinctive image features from scale-invariant keypoints", IJCV 60(2),
2004. R. Arandjelović and A. Zisserman, "Three things everyone should know to improve object
retrieval", CVPR 2012. E. Rublee, V. Rabaud, K. Konolige and G. Bradski, "ORB: an efficient
alternative to SIFT or SURF", ICCV 2011.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Literal

import numpy as np

from foveal.errors import GeometryError
from foveal.geometry.image import read_image
from foveal.geometry.validate import positive

ImageInput = str | os.PathLike | np.ndarray


@dataclass(frozen=True)
class Features:
    """Keypoints of one image and their descriptors, row ``i`` of each array describing the same
    keypoint (see the module docstring for units and conventions).

    Attributes:
        keypoints: ``(N, 2)`` float64 ``(x, y)`` pixel positions.
        descriptors: ``(N, D)``: float32 ``D = 128`` for SIFT/RootSIFT, uint8 ``D = 32`` packed
            bits for ORB.
        scales: ``(N,)`` float64 diameter in pixels of the described region.
        orientations: ``(N,)`` float64 radians in [0, 2π), from +x towards +y (y down).
        responses: ``(N,)`` float64 detector strength.
    """

    keypoints: np.ndarray
    descriptors: np.ndarray
    scales: np.ndarray
    orientations: np.ndarray
    responses: np.ndarray

    def __len__(self) -> int:
        return int(self.keypoints.shape[0])


def _cv2(op: str) -> ModuleType:
    """OpenCV, imported on first use so that the rest of foveal works without it."""
    try:
        import cv2
    except ImportError as exc:
        raise ImportError(f"{op}: needs OpenCV for keypoint detection; install the 'features' "
                          f"extra: pip install foveal[features] ({exc})") from None
    return cv2


def _grayscale(image: ImageInput, op: str, channel_order: str, cv2: ModuleType) -> np.ndarray:
    """The input as a contiguous ``(H, W)`` uint8 array."""
    if channel_order not in ("rgb", "bgr"):
        raise GeometryError(f"{op}: expected channel_order 'rgb' or 'bgr', got {channel_order!r}")
    if isinstance(image, (str, os.PathLike)):
        return read_image(image, grey=True, op=op)
    if not isinstance(image, np.ndarray):
        raise GeometryError(f"{op}: expected an image path or a NumPy uint8 array, got "
                            f"{type(image).__name__}")
    if image.dtype != np.uint8:
        raise GeometryError(f"{op}: expected a uint8 image (0..255), got dtype {image.dtype}; "
                            f"convert with (255 * x).round().clip(0, 255).astype(np.uint8)")
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim == 3 and image.shape[2] in (3, 4):
        code = {("rgb", 3): cv2.COLOR_RGB2GRAY, ("bgr", 3): cv2.COLOR_BGR2GRAY,
                ("rgb", 4): cv2.COLOR_RGBA2GRAY, ("bgr", 4): cv2.COLOR_BGRA2GRAY}
        image = cv2.cvtColor(np.ascontiguousarray(image), code[channel_order, image.shape[2]])
    if image.ndim != 2:
        raise GeometryError(f"{op}: expected an image of shape (H, W), (H, W, 3) or (H, W, 4), "
                            f"got {image.shape}")
    if min(image.shape) < 1:
        raise GeometryError(f"{op}: expected a non-empty image, got shape {image.shape}")
    return np.ascontiguousarray(image)


def _features(keypoints: Any, descriptors: np.ndarray | None, width: int) -> Features:
    """Our arrays from a list of ``cv2.KeyPoint`` and OpenCV's descriptor matrix."""
    n = len(keypoints)
    if descriptors is None:  # OpenCV answers None when nothing was detected
        descriptors = np.zeros((0, width), dtype=np.float32 if width == 128 else np.uint8)
    return Features(
        keypoints=np.array([k.pt for k in keypoints], dtype=np.float64).reshape(n, 2),
        descriptors=np.ascontiguousarray(descriptors),
        scales=np.array([k.size for k in keypoints], dtype=np.float64),
        orientations=np.deg2rad(np.array([k.angle for k in keypoints], dtype=np.float64))
        % (2 * np.pi),
        responses=np.array([k.response for k in keypoints], dtype=np.float64),
    )


def root_sift(descriptors: np.ndarray) -> np.ndarray:
    """RootSIFT ``√(d / ‖d‖₁)`` of non-negative ``(N, D)`` descriptors, as float32 rows of unit L2
    norm (Arandjelović & Zisserman 2012, §3). An all-zero row stays zero.

    Euclidean distance on the result is ``‖√x − √y‖² = 2 − 2 Σᵢ √(xᵢ yᵢ)``: the Hellinger
    kernel on the L1-normalised histograms.
    """
    d = np.asarray(descriptors, dtype=np.float64)
    if d.ndim != 2 or (d.size and (not np.all(np.isfinite(d)) or d.min() < 0)):
        raise GeometryError(f"root_sift: expected finite non-negative descriptors of shape (N, D), "
                            f"got shape {d.shape}")
    l1 = d.sum(axis=1, keepdims=True)
    return np.sqrt(d / np.where(l1 > 0, l1, 1.0)).astype(np.float32)


def detect_sift(image: ImageInput, max_features: int | None = None, *, root: bool = False,
                contrast_threshold: float = 0.04, edge_threshold: float = 10.0,
                sigma: float = 1.6, n_octave_layers: int = 3, precise_upscale: bool = True,
                channel_order: Literal["rgb", "bgr"] = "rgb") -> Features:
    """SIFT keypoints and 128-d descriptors (Lowe 2004) by OpenCV's ``cv2.SIFT``.

    Args:
        image: a path, or a uint8 array ``(H, W)`` or ``(H, W, 3)`` in ``channel_order``.
        max_features: keep the strongest this many by ``|D(x̂)|`` (``None``: all). OpenCV may
            keep a few more when responses tie at the cut.
        root: return RootSIFT descriptors ``√(d / ‖d‖₁)`` (:func:`root_sift`) instead of SIFT's.
        contrast_threshold: rejects extrema with ``|D(x̂)| < contrast_threshold /
            n_octave_layers`` (intensities in [0, 1]); lower finds more, weaker keypoints.
        edge_threshold: ``r`` of Lowe's edge test ``tr(H)²/det(H) < (r + 1)²/r`` (§4.1).
        sigma: blur of the first octave's base image.
        n_octave_layers: scales sampled per octave (Lowe's ``s = 3``).
        precise_upscale: OpenCV's ``enable_precise_upscale``, on by default here (OpenCV's
            default is off). Every octave descends from the image upsampled ×2; OpenCV's plain
            upsampling aligns pixel centres (``x ↦ 2x + ½``) while positions are halved back
            (``x ↦ x / 2``), which shifts every keypoint by ``+¼`` pixel in x and y.
            ``True`` upsamples with ``x ↦ 2x`` and removes the bias.
        channel_order: ``"rgb"`` (default) or ``"bgr"`` for colour arrays.

    Returns:
        :class:`Features` with float32 ``(N, 128)`` descriptors. A keypoint with several
        dominant orientations appears once per orientation, at the same position.

    Raises:
        GeometryError: missing or unreadable file, wrong dtype or shape, bad parameters.
        ImportError: OpenCV is not installed (``pip install foveal[features]``).
    """
    op = "detect_sift"
    cv2 = _cv2(op)
    gray = _grayscale(image, op, channel_order, cv2)
    n = _count(max_features, op, "max_features", allow_none=True)
    layers = _count(n_octave_layers, op, "n_octave_layers", allow_none=False)
    for name, value in (("contrast_threshold", contrast_threshold),
                        ("edge_threshold", edge_threshold), ("sigma", sigma)):
        positive(value, op, name)
    sift = cv2.SIFT_create(n or 0, layers, float(contrast_threshold), float(edge_threshold),
                           float(sigma), bool(precise_upscale))
    keypoints, descriptors = sift.detectAndCompute(gray, None)
    features = _features(keypoints, descriptors, 128)
    if root:
        features = Features(features.keypoints, root_sift(features.descriptors), features.scales,
                            features.orientations, features.responses)
    return features


def detect_orb(image: ImageInput, max_features: int = 1000, *, scale_factor: float = 1.2,
               n_levels: int = 8, fast_threshold: int = 20, patch_size: int = 31,
               channel_order: Literal["rgb", "bgr"] = "rgb") -> Features:
    """ORB keypoints and 256-bit descriptors (Rublee et al. 2011) by OpenCV's ``cv2.ORB``.

    Args:
        image: a path, or a uint8 array ``(H, W)`` or ``(H, W, 3)`` in ``channel_order``.
        max_features: keep at most this many, the strongest by Harris score.
        scale_factor: ratio between pyramid levels (> 1).
        n_levels: number of pyramid levels.
        fast_threshold: FAST intensity threshold: a corner needs a contiguous arc of 9 pixels on
            the circle of 16 all brighter or all darker than the centre by this much.
        patch_size: side of the patch the binary tests sample; also the border left undetected.
        channel_order: ``"rgb"`` (default) or ``"bgr"`` for colour arrays.

    Returns:
        :class:`Features` with uint8 ``(N, 32)`` descriptors (256 bits, compare them with
        ``metric="hamming"``).

    Raises:
        GeometryError: missing or unreadable file, wrong dtype or shape, bad parameters.
        ImportError: OpenCV is not installed (``pip install foveal[features]``).
    """
    op = "detect_orb"
    cv2 = _cv2(op)
    gray = _grayscale(image, op, channel_order, cv2)
    n = _count(max_features, op, "max_features", allow_none=False)
    levels = _count(n_levels, op, "n_levels", allow_none=False)
    patch = _count(patch_size, op, "patch_size", allow_none=False)
    fast = _count(fast_threshold, op, "fast_threshold", allow_none=False)
    if not np.isfinite(scale_factor) or scale_factor <= 1:
        raise GeometryError(f"{op}: expected scale_factor > 1, got {scale_factor}")
    orb = cv2.ORB_create(nfeatures=n, scaleFactor=float(scale_factor), nlevels=levels,
                         edgeThreshold=patch, patchSize=patch, fastThreshold=fast)
    keypoints, descriptors = orb.detectAndCompute(gray, None)
    return _features(keypoints, descriptors, 32)


def _count(value: Any, op: str, name: str, *, allow_none: bool) -> int | None:
    """A positive integer option (``None`` passes where allowed)."""
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise GeometryError(f"{op}: expected {name} as an integer ≥ 1"
                            f"{' or None' if allow_none else ''}, got {value!r}")
    return int(value)
