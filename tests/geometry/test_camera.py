"""The pinhole camera against cv2.projectPoints, np.linalg.inv, closed forms, and the Middlebury
dinoSparseRing calibration (a real par file)."""

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from foveal.errors import GeometryError
from foveal.geometry.camera import (
    ALL_IMAGES,
    Camera,
    intrinsics,
    invert_intrinsics,
    project,
    projection_matrix,
    read_intrinsics,
    read_middlebury_par,
    unproject,
)
from foveal.geometry.rotation import exp_so3

rng = np.random.default_rng(5)
SHARED_DATA = Path(__file__).resolve().parents[3] / "shared" / "data"
DINO = SHARED_DATA / "middlebury_dinoSparseRing/dinoSparseRing/dinoSR_par.txt"
K = intrinsics(700.0, 720.0, 330.0, 250.0)
R = exp_so3([0.1, -0.3, 0.2])
t = np.array([0.2, -0.1, 4.0])
DIST = np.array([-0.2, 0.05, 1e-3, -2e-3, -0.01])


def scene(n=100):
    return rng.uniform(-1.5, 1.5, (n, 3))


def test_invert_intrinsics_closed_form_equals_numpy_inv():
    """Oracle: np.linalg.inv, with skew and with K₃₃ ≠ 1 (a scaled K)."""
    for Ki in (K, intrinsics(1200.5, 1100.0, 640.2, 360.7, skew=3.5),
               2.0 * intrinsics(50.0, 60.0, 10.0, 20.0, skew=-1.0)):
        np.testing.assert_allclose(invert_intrinsics(Ki), np.linalg.inv(Ki), rtol=1e-14,
                                   atol=1e-18)


def test_project_equals_cv2_project_points_without_and_with_distortion():
    """Oracle: cv2.projectPoints (rvec from cv2.Rodrigues of our R)."""
    X = scene()
    rvec = cv2.Rodrigues(R)[0]
    for dist in (None, DIST):
        ours, depth = project(X, K, R, t, dist)
        ref = cv2.projectPoints(X, rvec, t, K, np.zeros(5) if dist is None else dist)[0]
        np.testing.assert_allclose(ours, ref.reshape(-1, 2), atol=1e-9)
        np.testing.assert_allclose(depth, (X @ R.T + t)[:, 2], atol=1e-14)


def test_project_equals_projection_matrix_times_homogeneous_point_closed_form():
    """Closed form: x ~ P X̃ with P = K [R | t] (HZ eq. 6.8); the last coordinate is the depth
    when K₃₃ = 1 and R is a rotation (HZ §6.2.3)."""
    X = scene()
    P = projection_matrix(K, R, t)
    x = np.column_stack([X, np.ones(len(X))]) @ P.T
    pixels, depth = project(X, K, R, t)
    np.testing.assert_allclose(pixels, x[:, :2] / x[:, 2:], atol=1e-10)
    np.testing.assert_allclose(depth, x[:, 2], atol=1e-14)


def test_project_honours_skew_that_opencv_ignores():
    """Pitfall: cv2.projectPoints drops K[0, 1]; HZ's K has u = f_x x + s y + c_x. Oracle: P X̃."""
    Ks = intrinsics(700.0, 720.0, 330.0, 250.0, skew=5.0)
    X = scene(20)
    x = np.column_stack([X, np.ones(len(X))]) @ projection_matrix(Ks, R, t).T
    np.testing.assert_allclose(project(X, Ks, R, t)[0], x[:, :2] / x[:, 2:], atol=1e-10)
    cv = cv2.projectPoints(X, cv2.Rodrigues(R)[0], t, Ks, None)[0].reshape(-1, 2)
    assert np.abs(cv - x[:, :2] / x[:, 2:]).max() > 0.1


def test_points_behind_the_camera_have_negative_depth():
    X = np.array([[0.0, 0.0, 2.0], [0.0, 0.0, -2.0]])
    _, depth = project(X, K, np.eye(3), np.zeros(3))
    np.testing.assert_array_equal(depth, [2.0, -2.0])


def test_unproject_inverts_project_in_camera_and_world_frames():
    """Closed form: the world point lies on its ray at distance ‖X − C‖, with distortion."""
    X = scene()
    pixels, _ = project(X, K, R, t, DIST)
    origins, dirs = unproject(pixels, K, R, t, DIST)
    np.testing.assert_allclose(np.linalg.norm(dirs, axis=1), 1.0, atol=1e-15)
    dist_along = np.linalg.norm(X - origins, axis=1)
    np.testing.assert_allclose(origins + dist_along[:, None] * dirs, X, atol=1e-10)
    np.testing.assert_allclose(origins, np.broadcast_to(-R.T @ t, X.shape), atol=1e-14)
    o_cam, d_cam = unproject(pixels, K, dist=DIST)
    x_cam = X @ R.T + t
    np.testing.assert_array_equal(o_cam, 0.0)
    np.testing.assert_allclose(d_cam, x_cam / np.linalg.norm(x_cam, axis=1, keepdims=True),
                               atol=1e-12)


def test_unproject_of_the_principal_point_is_the_optical_axis():
    """Closed form: K⁻¹ (c_x, c_y, 1) = (0, 0, 1); in the world, the third row of R."""
    _, d = unproject([[330.0, 250.0]], K)
    np.testing.assert_allclose(d, [[0.0, 0.0, 1.0]], atol=1e-16)
    _, d = unproject([[330.0, 250.0]], K, R, t)
    np.testing.assert_allclose(d, R[2:], atol=1e-15)


def test_camera_dataclass_is_frozen_and_matches_the_functions():
    cam = Camera(K, R, t, DIST, width=640, height=480)
    X = scene(10)
    np.testing.assert_array_equal(cam.project(X)[0], project(X, K, R, t, DIST)[0])
    np.testing.assert_allclose(cam.center, -R.T @ t)
    np.testing.assert_allclose(cam.P, projection_matrix(K, R, t))
    np.testing.assert_allclose(cam.unproject(cam.project(X)[0])[1],
                               unproject(project(X, K, R, t, DIST)[0], K, R, t, DIST)[1])
    with pytest.raises(AttributeError):
        cam.K = np.eye(3)  # type: ignore[misc]
    with pytest.raises(ValueError, match="read-only"):
        cam.t[0] = 1.0
    assert Camera(K, R, t).dist.shape == (8,)


@pytest.mark.skipif(not DINO.exists(), reason=f"Middlebury dinoSparseRing not present at {DINO}")
def test_middlebury_dino_sparse_ring_has_16_cameras_on_a_ring():
    """Real data: the 16 centres are coplanar and equidistant from their centroid (a ring),
    and the dino's bounding-box centre (from the data set's README) projects into every
    640×480 image in front of the camera. Oracle: P X̃ with the file's own K, R, t."""
    cams = read_middlebury_par(DINO, image_size=(640, 480))
    assert len(cams) == 16 and next(iter(cams)) == "dinoSR0001.png"
    C = np.array([c.center for c in cams.values()])
    centred = C - C.mean(0)
    s = np.linalg.svd(centred, compute_uv=False)
    assert s[2] < 1e-6 * s[0]  # coplanar
    radius = np.linalg.norm(centred, axis=1)
    assert radius.std() < 0.05 * radius.mean()
    box = np.array([[-0.061897, -0.018874, -0.057845], [0.010897, 0.068227, 0.015495]])
    centre = box.mean(0)[None]
    line = DINO.read_text().splitlines()[1].split()
    vals = np.array(line[1:], dtype=float)
    P_file = vals[:9].reshape(3, 3) @ np.column_stack([vals[9:18].reshape(3, 3), vals[18:]])
    x = P_file @ np.append(centre, 1.0)
    np.testing.assert_allclose(cams["dinoSR0001.png"].project(centre)[0][0], x[:2] / x[2],
                               atol=0.01)  # R snapped to SO(3) moves pixels ≈ f · 1e-6
    for cam in cams.values():
        (u, v), depth = cam.project(centre)[0][0], cam.project(centre)[1][0]
        assert depth > 0 and 0 <= u < cam.width and 0 <= v < cam.height


@pytest.mark.skipif(not DINO.exists(), reason=f"Middlebury dinoSparseRing not present at {DINO}")
def test_read_intrinsics_from_a_middlebury_par_file():
    Ks = read_intrinsics(DINO)
    assert len(Ks) == 16
    np.testing.assert_allclose(Ks["dinoSR0003.png"], [[3310.4, 0, 316.73], [0, 3325.5, 200.55],
                                                       [0, 0, 1]])
    assert list(read_intrinsics(DINO, names=["dinoSR0002.png"])) == ["dinoSR0002.png"]
    with pytest.raises(GeometryError, match=r"no line for 1 of them, e\.g\. 'nope\.png'"):
        read_intrinsics(DINO, names=["nope.png"])


def test_read_intrinsics_plain_text_and_json_shared_k(tmp_path):
    expected = intrinsics(500.0, 510.0, 320.0, 240.0, skew=0.5)
    (tmp_path / "K.txt").write_text("# calibration\n500 0.5 320\n0 510 240\n0 0 1\n")
    (tmp_path / "K.json").write_text(json.dumps({"K": expected.tolist()}))
    (tmp_path / "k2.json").write_text(json.dumps({"fx": 500, "fy": 510, "cx": 320, "cy": 240,
                                                  "skew": 0.5}))
    (tmp_path / "k3.json").write_text(json.dumps(expected.ravel().tolist()))
    for name in ("K.txt", "K.json", "k2.json", "k3.json"):
        Ks = read_intrinsics(tmp_path / name)
        assert list(Ks) == [ALL_IMAGES]
        np.testing.assert_allclose(Ks[ALL_IMAGES], expected)
    Ks = read_intrinsics(tmp_path / "K.txt", names=["a.png", "b.png"])
    assert list(Ks) == ["a.png", "b.png"]
    np.testing.assert_allclose(Ks["b.png"], expected)


@pytest.mark.parametrize(
    ("reader", "content", "message"),
    [(read_intrinsics, None, r"expected an existing file, got '.*missing\.txt' \(not found\)"),
     (read_middlebury_par, None, r"read_middlebury_par: expected an existing file"),
     (read_intrinsics, "1 2 3\n4 5 6\n", r"expected 9 numbers \(a 3×3 K\) in '.*', got 6"),
     (read_intrinsics, "1 2 x\n4 5 6\n7 8 9\n", "non-numeric text"),
     (read_intrinsics, "500 0 320\n0 500 240\n1 0 1\n", "upper triangular"),
     (read_intrinsics, "0 0 320\n0 500 240\n0 0 1\n", "focal lengths ≠ 0"),
     (read_intrinsics, '{"K": [[1, 0]', "expected valid JSON"),
     (read_intrinsics, '{"f": 3}', "expected a JSON object with 'K' or 'fx'"),
     (read_intrinsics, '{"fx": -3, "fy": 1, "cx": 0, "cy": 0}', "fx > 0"),
     (read_middlebury_par, "500 0 320\n0 500 240\n0 0 1\n", "start with the number of images"),
     (read_middlebury_par, "2\nimg.png 1 0 0 0 1 0 0 0 1 1 0 0 0 1 0 0 0 1 0 0 0\n",
      "expected 2 camera lines"),
     (read_middlebury_par, "1\nimg.png 1 0 0 0 1 0 0 0 1 1 0 0 0 1 0 0 0 1 0 0\n",
      r"22 fields\) on line 2"),
     (read_middlebury_par, "1\nimg.png 1 0 0 0 1 0 0 0 1 2 0 0 0 1 0 0 0 1 0 0 0\n",
      "camera 'img.png'.*rotation")],
)
def test_malformed_calibration_files_raise_one_line_geometry_error(tmp_path, reader, content,
                                                                   message):
    path = tmp_path / ("missing.txt" if content is None else "calib.txt")
    if content is not None:
        path.write_text(content)
    with pytest.raises(GeometryError, match=message) as info:
        reader(path)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("call", "message"),
    [(lambda: intrinsics(0.0, 1.0, 0.0, 0.0), "intrinsics: expected fx > 0, got 0.0"),
     (lambda: invert_intrinsics(np.zeros((3, 3))), "upper triangular"),
     (lambda: project(np.zeros((4, 2)), K, R, t), r"X of shape \(N, 3\)"),
     (lambda: project(np.zeros((4, 3)), K, 2 * R, t), r"rotation \(RᵀR = I\)"),
     (lambda: project(np.zeros((4, 3)), K, R, t, [0.1]), "4, 5 or 8 coefficients"),
     (lambda: project([[np.nan, 0, 1]], K, R, t), "finite X"),
     (lambda: unproject(np.zeros((3, 2)), K, R=R), "both R and t"),
     (lambda: Camera(K, R, t, width=0), "Camera: expected width > 0"),
     (lambda: projection_matrix(K, R, np.zeros(4)), r"t of shape \(3,\), got \(4,\)")],
)
def test_bad_input_raises_one_line_geometry_error(call, message):
    with pytest.raises(GeometryError, match=message) as info:
        call()
    assert "\n" not in str(info.value)


def test_unproject_matches_cv2_undistort_points_directions():
    """Oracle: cv2.undistortPoints gives normalised (x, y); the ray is (x, y, 1)/‖·‖."""
    pixels = rng.uniform([50, 50], [600, 450], (50, 2))
    criteria = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 200, 1e-15)
    xy = cv2.undistortPoints(pixels.reshape(-1, 1, 2), K, DIST, criteria=criteria).reshape(-1, 2)
    ref = np.column_stack([xy, np.ones(len(xy))])
    ref /= np.linalg.norm(ref, axis=1, keepdims=True)
    np.testing.assert_allclose(unproject(pixels, K, dist=DIST)[1], ref, atol=1e-10)
