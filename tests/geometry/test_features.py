"""Keypoint detection against cv2.SIFT / cv2.ORB run directly, cv2.cvtColor for the colour
conversion, closed forms (a Gaussian blob's centre, a 90° rotation, RootSIFT's Hellinger
identity) and bad input."""

import sys

import cv2
import numpy as np
import pytest

from foveal.errors import GeometryError
from foveal.geometry.features import Features, detect_orb, detect_sift, root_sift


def texture(h=160, w=200, seed=0):
    """Smoothed uniform noise: blob- and corner-rich, so both detectors find plenty."""
    rng = np.random.default_rng(seed)
    img = cv2.GaussianBlur(rng.uniform(0, 255, (h, w)).astype(np.float32), (0, 0), 3)
    return cv2.normalize(img, None, 0, 255, cv2.NORM_MINMAX).astype(np.uint8)


def colour(seed=1):
    return np.stack([texture(seed=seed), texture(seed=seed + 1), texture(seed=seed + 2)], axis=2)


def assert_same(f: Features, keypoints, descriptors):
    """Our Features equal OpenCV's raw keypoints and descriptors, field by field."""
    assert len(f) == len(keypoints) > 0
    np.testing.assert_array_equal(f.keypoints, np.float64([k.pt for k in keypoints]))
    np.testing.assert_array_equal(f.scales, np.float64([k.size for k in keypoints]))
    np.testing.assert_allclose(f.orientations,
                               np.deg2rad(np.float64([k.angle for k in keypoints])) % (2 * np.pi),
                               atol=1e-12)
    np.testing.assert_array_equal(f.responses, np.float64([k.response for k in keypoints]))
    np.testing.assert_array_equal(f.descriptors, descriptors)


def test_detect_sift_equals_cv2_sift_detect_and_compute():
    """Oracle: cv2.SIFT_create(...).detectAndCompute with the same settings, both upscalings."""
    img = texture()
    for precise in (False, True):
        ours = detect_sift(img, precise_upscale=precise)
        ref = cv2.SIFT_create(0, 3, 0.04, 10, 1.6, precise).detectAndCompute(img, None)
        assert_same(ours, *ref)
        assert ours.keypoints.dtype == np.float64 and ours.descriptors.dtype == np.float32
        assert ours.descriptors.shape == (len(ours), 128)


def test_detect_sift_max_features_keeps_the_strongest_like_cv2():
    """Oracle: cv2.SIFT_create(nfeatures=50); closed form: the kept responses are the top ones."""
    img = texture()
    ours = detect_sift(img, 50, precise_upscale=False)
    assert_same(ours, *cv2.SIFT_create(50).detectAndCompute(img, None))
    everything = detect_sift(img, precise_upscale=False)
    assert len(ours) < len(everything)
    assert ours.responses.min() >= np.sort(everything.responses)[-len(ours)] - 1e-12


def test_detect_orb_equals_cv2_orb_detect_and_compute():
    """Oracle: cv2.ORB_create with the same settings; 32-byte uint8 descriptors."""
    img = texture()
    ours = detect_orb(img, 300, fast_threshold=10)
    ref = cv2.ORB_create(nfeatures=300, fastThreshold=10).detectAndCompute(img, None)
    assert_same(ours, *ref)
    assert ours.descriptors.dtype == np.uint8 and ours.descriptors.shape == (len(ours), 32)


def test_colour_input_is_converted_like_cv2_cvtcolor_in_the_given_channel_order():
    """Oracle: cv2.cvtColor(RGB2GRAY / BGR2GRAY). Reading an OpenCV (BGR) array as RGB swaps
    the red and blue weights (0.299 ↔ 0.114) and changes the detections: the pitfall."""
    rgb = colour()
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    ref = detect_sift(gray)
    for ours in (detect_sift(rgb), detect_sift(np.ascontiguousarray(rgb[:, :, ::-1]),
                                               channel_order="bgr"),
                 detect_sift(np.dstack([rgb, np.full(gray.shape, 255, np.uint8)]))):
        np.testing.assert_array_equal(ours.keypoints, ref.keypoints)
        np.testing.assert_array_equal(ours.descriptors, ref.descriptors)
    swapped = detect_sift(rgb, channel_order="bgr")
    assert len(swapped) != len(ref) or not np.array_equal(swapped.keypoints, ref.keypoints)
    single = detect_orb(gray[:, :, None])
    np.testing.assert_array_equal(single.keypoints, detect_orb(gray).keypoints)


def test_path_input_equals_array_input(tmp_path):
    """Oracle: the array the file was written from (PNG is lossless), as str and as Path."""
    img = texture()
    path = tmp_path / "texture.png"
    cv2.imwrite(str(path), img)
    ref = detect_sift(img)
    for p in (path, str(path)):
        ours = detect_sift(p)
        np.testing.assert_array_equal(ours.keypoints, ref.keypoints)
        np.testing.assert_array_equal(ours.descriptors, ref.descriptors)
    np.testing.assert_array_equal(detect_orb(path).descriptors, detect_orb(img).descriptors)


def test_root_sift_is_the_hellinger_kernel_closed_form():
    """Closed form (Arandjelović & Zisserman 2012, §3): RootSIFT rows have unit L2 norm and
    ‖√x̂ − √ŷ‖² = 2 − 2 Σᵢ √(x̂ᵢ ŷᵢ) for the L1-normalised histograms x̂, ŷ."""
    f = detect_sift(texture())
    r = detect_sift(texture(), root=True)
    np.testing.assert_array_equal(r.keypoints, f.keypoints)
    np.testing.assert_allclose(np.linalg.norm(r.descriptors, axis=1), 1.0, atol=1e-6)
    x = f.descriptors[:20].astype(np.float64)
    x /= x.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(r.descriptors[:20], np.sqrt(x), atol=1e-7)
    a, b = r.descriptors[0].astype(np.float64), r.descriptors[1].astype(np.float64)
    np.testing.assert_allclose(np.sum((a - b) ** 2), 2 - 2 * np.sum(np.sqrt(x[0] * x[1])),
                               atol=1e-6)
    np.testing.assert_array_equal(root_sift(np.zeros((2, 128))), np.zeros((2, 128)))
    with pytest.raises(GeometryError, match="non-negative"):
        root_sift(-np.ones((2, 128)))


def test_sift_default_upscale_biases_keypoints_by_a_quarter_pixel():
    """Closed form: a Gaussian blob centred at (cx, cy) is detected at its centre. OpenCV's
    default upsampling (x ↦ 2x + ½, positions halved back) puts it at (cx + ¼, cy + ¼); our
    default (precise_upscale=True, x ↦ 2x) puts it at the centre."""
    yy, xx = np.mgrid[0:128, 0:160].astype(np.float64)
    for cx, cy, s in ((60.0, 50.0, 3.0), (80.3, 70.6, 6.0)):
        img = (40 + 180 * np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * s * s)))
        img = img.round().astype(np.uint8)
        biased = detect_sift(img, precise_upscale=False).keypoints - [cx, cy]
        ours = detect_sift(img).keypoints - [cx, cy]
        assert len(ours) and len(biased)
        np.testing.assert_allclose(biased, 0.25, atol=0.04)
        np.testing.assert_allclose(ours, 0.0, atol=0.04)


@pytest.mark.parametrize("detect", [detect_sift, detect_orb], ids=["sift", "orb"])
def test_orientation_convention_rotating_the_image_by_minus_90_degrees_subtracts_pi_over_2(
        detect):
    """Closed form: np.rot90 maps pixel (x, y) to (y, W − 1 − x), a rotation by −π/2 in image
    coordinates (y down), so each orientation θ (from +x towards +y) becomes θ − π/2."""
    img = texture()
    f, g = detect(img), detect(np.ascontiguousarray(np.rot90(img)))
    moved = np.c_[f.keypoints[:, 1], img.shape[1] - 1 - f.keypoints[:, 0]]
    near = np.linalg.norm(moved[:, None] - g.keypoints[None], axis=2) < 0.05
    errors = []
    for i in np.flatnonzero(near.any(axis=1)):
        turn = np.angle(np.exp(1j * (g.orientations[near[i]] - (f.orientations[i] - np.pi / 2))))
        errors.append(np.abs(turn).min())
    assert len(errors) > 50
    assert np.median(errors) < np.deg2rad(1)
    for o in (f.orientations, g.orientations):
        assert np.all((o >= 0) & (o < 2 * np.pi))


def test_blank_image_gives_empty_features_of_the_right_shapes():
    """Closed form: a constant image has no extrema and no corners."""
    blank = np.full((64, 64), 128, np.uint8)
    for f, width, dtype in ((detect_sift(blank), 128, np.float32),
                            (detect_sift(blank, root=True), 128, np.float32),
                            (detect_orb(blank), 32, np.uint8)):
        assert len(f) == 0
        assert f.keypoints.shape == (0, 2) and f.descriptors.shape == (0, width)
        assert f.descriptors.dtype == dtype
        assert f.scales.shape == f.orientations.shape == f.responses.shape == (0,)


def test_features_is_frozen():
    f = detect_orb(texture())
    with pytest.raises(AttributeError):
        f.keypoints = None


def test_unreadable_images_raise_one_line_geometry_errors(tmp_path):
    """Missing path, corrupt file, empty file, a directory: one-line GeometryError naming it."""
    corrupt = tmp_path / "corrupt.png"
    corrupt.write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    empty = tmp_path / "empty.ppm"
    empty.write_bytes(b"")
    for path, words in ((tmp_path / "missing.png", "not found"), (corrupt, "corrupt"),
                        (empty, "corrupt"), (tmp_path, "readable")):
        for detect in (detect_sift, detect_orb):
            with pytest.raises(GeometryError, match=words) as info:
                detect(path)
            assert "\n" not in str(info.value) and detect.__name__ in str(info.value)


@pytest.mark.parametrize("image, words", [
    (np.zeros((32, 32), np.float32), "uint8"),
    (np.zeros((32, 32, 2), np.uint8), "shape"),
    (np.zeros((2, 32, 32, 3), np.uint8), "shape"),
    (np.zeros((0, 32), np.uint8), "non-empty"),
    ([[0, 1], [2, 3]], "NumPy uint8 array"),
])
def test_bad_image_arrays_raise_geometry_error(image, words):
    with pytest.raises(GeometryError, match=words):
        detect_sift(image)


@pytest.mark.parametrize("kwargs, words", [
    ({"max_features": 0}, "max_features"), ({"max_features": 2.5}, "max_features"),
    ({"channel_order": "bgra"}, "channel_order"), ({"sigma": -1.0}, "sigma"),
    ({"contrast_threshold": float("nan")}, "contrast_threshold"),
    ({"n_octave_layers": 0}, "n_octave_layers"),
])
def test_bad_sift_options_raise_geometry_error(kwargs, words):
    with pytest.raises(GeometryError, match=words):
        detect_sift(texture(32, 32), **kwargs)


@pytest.mark.parametrize("kwargs, words", [
    ({"max_features": None}, "max_features"), ({"scale_factor": 1.0}, "scale_factor"),
    ({"n_levels": 0}, "n_levels"), ({"patch_size": 0}, "patch_size"),
])
def test_bad_orb_options_raise_geometry_error(kwargs, words):
    with pytest.raises(GeometryError, match=words):
        detect_orb(texture(32, 32), **kwargs)


def test_missing_opencv_raises_import_error_naming_the_features_extra(monkeypatch):
    """With cv2 unimportable, detection says how to install it; importing foveal still works."""
    monkeypatch.setitem(sys.modules, "cv2", None)
    for detect in (detect_sift, detect_orb):
        with pytest.raises(ImportError, match=r"pip install foveal\[features\]"):
            detect(texture(32, 32))
