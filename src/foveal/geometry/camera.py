"""The pinhole camera: intrinsics ``K``, projection, unprojection, and calibration files.

A world point ``X`` goes to the camera frame by the extrinsics, ``x_cam = R X + t``, to
normalised image coordinates by the perspective division ``(x, y) = (X_c / Z_c, Y_c / Z_c)``,
optionally through lens distortion (:mod:`foveal.geometry.distortion`), and to pixels by

    K = [[f_x, s,   c_x],          K⁻¹ = [[1/f_x, −s/(f_x f_y), (s c_y − c_x f_y)/(f_x f_y)],
         [0,   f_y, c_y],                 [0,     1/f_y,        −c_y/f_y                   ],
         [0,   0,   1  ]],                [0,     0,            1                          ]].

Without distortion this is ``x ~ P X`` with ``P = K [R | t]`` (HZ §6.1, eq. 6.8). The depth of
``X`` is ``Z_c``: positive in front of the camera. Pixel ``(0, 0)`` is the centre of the top-left
pixel, ``u`` to the right and ``v`` down (OpenCV's and Middlebury's convention).

Reference: HZ §6.1 (the finite projective camera), §6.2.3 (depth of points).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import ArrayLike

from foveal.errors import GeometryError
from foveal.geometry.distortion import _distort, distortion_coefficients, undistort
from foveal.geometry.rotation import project_to_so3
from foveal.geometry.validate import calibration_matrix, matrix, points, positive, rotations, stack

# The key of read_intrinsics' answer when one K serves every image and no names were given.
ALL_IMAGES = "*"


def _translation(t: ArrayLike, op: str) -> np.ndarray:
    a = stack(t, (), op, "t")
    if a.shape != (3,):
        raise GeometryError(f"{op}: expected t of shape (3,), got {a.shape}")
    return a


def _rotation(R: ArrayLike, op: str) -> np.ndarray:
    a = stack(R, (), op, "R")
    if a.shape != (3, 3):
        raise GeometryError(f"{op}: expected R of shape (3, 3), got {a.shape}")
    return rotations(a, op, "R")


def intrinsics(fx: float, fy: float, cx: float, cy: float, skew: float = 0.0) -> np.ndarray:
    """The calibration matrix ``K = [[fx, skew, cx], [0, fy, cy], [0, 0, 1]]`` (HZ eq. 6.10).

    Focal lengths in pixels (``f_x = f / pixel width``), principal point ``(c_x, c_y)`` in pixels.
    """
    fx = positive(fx, "intrinsics", "fx")
    fy = positive(fy, "intrinsics", "fy")
    c = matrix([cx, cy, skew], (3,), "intrinsics", "(cx, cy, skew)")
    return np.array([[fx, c[2], c[0]], [0.0, fy, c[1]], [0.0, 0.0, 1.0]])


def invert_intrinsics(K: ArrayLike) -> np.ndarray:
    """``K⁻¹`` (3, 3) in closed form for upper-triangular ``K = [[a, b, c], [0, d, e], [0, 0, f]]``:

        K⁻¹ = [[1/a, −b/(ad), (be − cd)/(adf)],
               [0,   1/d,     −e/(df)        ],
               [0,   0,       1/f            ]]

    Back-substitution in closed form: no pivoting, no round-off from a general solver, and it
    keeps the zeros exact. ``K`` need not have ``K₃₃ = 1``.
    """
    K = matrix(K, (3, 3), "invert_intrinsics", "K")
    calibration_matrix(K, "invert_intrinsics")
    (a, b, c), (_, d, e), (_, _, f) = K
    return np.array([[1 / a, -b / (a * d), (b * e - c * d) / (a * d * f)],
                     [0.0, 1 / d, -e / (d * f)],
                     [0.0, 0.0, 1 / f]])


def projection_matrix(K: ArrayLike, R: ArrayLike, t: ArrayLike) -> np.ndarray:
    """``P = K [R | t]`` (3, 4) (HZ eq. 6.8)."""
    K = calibration_matrix(K, "projection_matrix")
    R = _rotation(R, "projection_matrix")
    t = _translation(t, "projection_matrix")
    return K @ np.column_stack([R, t])


def project(X: ArrayLike, K: ArrayLike, R: ArrayLike, t: ArrayLike,
            dist: ArrayLike | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Pixels (N, 2) and depths (N,) of world points ``X`` (N, 3).

        x_cam = R X + t,   (x, y) = (X_c, Y_c) / Z_c,   (x_d, y_d) = distort(x, y),
        (u, v) = (f_x x_d + s y_d + c_x,  f_y y_d + c_y),   depth = Z_c

    ``dist`` holds ``(k₁, k₂, p₁, p₂[, k₃[, k₄, k₅, k₆]])`` in OpenCV order, as
    ``cv2.projectPoints``. A point behind the camera (depth < 0) still gets the pixel of its
    mirror image, as in the algebra of ``P X``: filter on ``depth > 0``. A point with depth 0
    (on the principal plane) projects to infinity and its pixel is ``inf``/NaN.
    """
    X = points(X, 3, "project", "X")
    K = calibration_matrix(K, "project")
    R = _rotation(R, "project")
    t = _translation(t, "project")
    d = distortion_coefficients(dist, "project")
    x_cam = X @ R.T + t
    depth = x_cam[:, 2]
    with np.errstate(divide="ignore", invalid="ignore"):  # depth 0 → inf, documented above
        xy = x_cam[:, :2] / depth[:, None]
        if np.any(d):
            xy = _distort(xy, d)[0]
        return xy @ K[:2, :2].T + K[:2, 2], depth


def unproject(pixels: ArrayLike, K: ArrayLike, R: ArrayLike | None = None,
              t: ArrayLike | None = None, dist: ArrayLike | None = None
              ) -> tuple[np.ndarray, np.ndarray]:
    """Rays ``(origins (N, 3), unit directions (N, 3))`` through pixels (N, 2).

    In the camera frame (``R``, ``t`` both None) the origin is 0 and the direction is
    ``d = K⁻¹ (u, v, 1)ᵀ / ‖·‖`` (after removing distortion), with ``d_z > 0``. Given
    extrinsics, the ray is in world coordinates: origin ``C = −Rᵀ t``, direction ``Rᵀ d``
    (HZ §8.1.1, the back-projection of a point). Pixels that cannot be undistorted give NaN rows.
    """
    uv = points(pixels, 2, "unproject", "pixels")
    K = calibration_matrix(K, "unproject")
    d = distortion_coefficients(dist, "unproject")
    if (R is None) != (t is None):
        raise GeometryError("unproject: expected both R and t (world frame) or neither "
                            f"(camera frame), got R={'None' if R is None else 'array'}, "
                            f"t={'None' if t is None else 'array'}")
    K_inv = invert_intrinsics(K)
    xy = uv @ K_inv[:2, :2].T + K_inv[:2, 2]
    if np.any(d):
        xy = undistort(xy, d)
    rays = np.column_stack([xy, np.ones(len(xy))])
    rays /= np.linalg.norm(rays, axis=1, keepdims=True)
    if R is None:
        return np.zeros_like(rays), rays
    R = _rotation(R, "unproject")
    t = _translation(t, "unproject")
    centre = -R.T @ t
    return np.broadcast_to(centre, rays.shape).copy(), rays @ R


def _frozen(a: np.ndarray) -> np.ndarray:
    a = np.array(a, dtype=np.float64)
    a.setflags(write=False)
    return a


@dataclass(frozen=True, eq=False)
class Camera:
    """A calibrated camera: intrinsics ``K`` (3, 3), extrinsics ``R`` (3, 3), ``t`` (3,) with
    ``x_cam = R X + t``, distortion ``dist`` (8,) in OpenCV order, image size in pixels.

    Arrays are validated, copied and made read-only on construction.
    """

    K: np.ndarray
    R: np.ndarray
    t: np.ndarray
    dist: np.ndarray | None = None
    width: int | None = None
    height: int | None = None

    def __post_init__(self) -> None:
        K = calibration_matrix(self.K, "Camera")
        R = _rotation(self.R, "Camera")
        t = _translation(self.t, "Camera")
        object.__setattr__(self, "K", _frozen(K))
        object.__setattr__(self, "R", _frozen(R))
        object.__setattr__(self, "t", _frozen(t))
        object.__setattr__(self, "dist", _frozen(distortion_coefficients(self.dist, "Camera")))
        for name in ("width", "height"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, int(positive(value, "Camera", name)))

    @property
    def P(self) -> np.ndarray:  # noqa: N802 (HZ's symbol for the projection matrix)
        """The projection matrix ``K [R | t]`` (3, 4); ignores distortion."""
        return projection_matrix(self.K, self.R, self.t)

    @property
    def center(self) -> np.ndarray:
        """The centre ``C = −Rᵀ t`` (3,) in world coordinates."""
        return -self.R.T @ self.t

    def project(self, X: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
        """Pixels (N, 2) and depths (N,) of world points (N, 3); see :func:`project`."""
        return project(X, self.K, self.R, self.t, self.dist)

    def unproject(self, pixels: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
        """World rays ``(origins, unit directions)`` (N, 3) through pixels (N, 2)."""
        return unproject(pixels, self.K, self.R, self.t, self.dist)


def _read_text(path: str | Path, op: str) -> tuple[Path, str]:
    p = Path(path)
    try:
        return p, p.read_text()
    except FileNotFoundError:
        raise GeometryError(f"{op}: expected an existing file, got '{p}' (not found)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise GeometryError(f"{op}: expected a readable text file, got '{p}' "
                            f"({type(exc).__name__})") from None


def _lines(text: str) -> list[tuple[int, list[str]]]:
    """Non-empty lines (1-based number, tokens), ``#`` comments dropped, commas as spaces."""
    out = []
    for number, line in enumerate(text.splitlines(), start=1):
        tokens = line.split("#", 1)[0].replace(",", " ").split()
        if tokens:
            out.append((number, tokens))
    return out


def _is_middlebury(text: str) -> bool:
    lines = _lines(text)
    return bool(lines) and len(lines[0][1]) == 1 and lines[0][1][0].isdigit()


def _parse_middlebury(p: Path, text: str, op: str) -> dict[str, tuple[np.ndarray, ...]]:
    lines = _lines(text)
    if not _is_middlebury(text):
        raise GeometryError(f"{op}: expected '{p}' to start with the number of images, got "
                            f"{' '.join(lines[0][1]) if lines else 'an empty file'!r}")
    n = int(lines[0][1][0])
    rows = lines[1:]
    if len(rows) != n:
        raise GeometryError(f"{op}: expected {n} camera lines in '{p}' as its first line says, "
                            f"got {len(rows)}")
    cameras: dict[str, tuple[np.ndarray, ...]] = {}
    for number, tokens in rows:
        if len(tokens) != 22:
            raise GeometryError(f"{op}: expected 'name k11..k33 r11..r33 t1 t2 t3' (22 fields) "
                                f"on line {number} of '{p}', got {len(tokens)} fields")
        try:
            values = np.array([float(v) for v in tokens[1:]])
        except ValueError:
            raise GeometryError(f"{op}: expected numbers after the name on line {number} of "
                                f"'{p}', got {' '.join(tokens[1:4])} ...") from None
        if tokens[0] in cameras:
            raise GeometryError(f"{op}: expected unique image names in '{p}', got "
                                f"'{tokens[0]}' twice (line {number})")
        cameras[tokens[0]] = (values[:9].reshape(3, 3), values[9:18].reshape(3, 3), values[18:])
    return cameras


def read_middlebury_par(path: str | Path, image_size: tuple[int, int] | None = None
                        ) -> dict[str, Camera]:
    """Cameras of a Middlebury multi-view ``*_par.txt`` file, by image name, in file order.

    Line 1 is the number of images ``N``; then one line per image,
    ``name k11 k12 k13 k21 k22 k23 k31 k32 k33 r11 ... r33 t1 t2 t3``, with ``x ~ K [R | t] X``
    (our convention). ``R`` is snapped to the nearest rotation (:func:`project_to_so3`) when
    it is one up to the file's rounding (``|RᵀR − I| < 1e-3``), which moves a pixel by
    ~``f · 1e-6``. ``image_size = (width, height)`` is stored on every camera when given
    (the file does not hold it). Reference: Seitz et al., "A comparison and evaluation of
    multi-view stereo reconstruction algorithms", CVPR 2006.
    """
    op = "read_middlebury_par"
    p, text = _read_text(path, op)
    width, height = image_size if image_size is not None else (None, None)
    out = {}
    for name, (K, R, t) in _parse_middlebury(p, text, op).items():
        try:
            # The files print R to ~7 digits (|RᵀR − I| ≈ 1e-6 in dinoSparseRing): snap it to
            # the nearest rotation so that closed forms such as C = −Rᵀt hold exactly.
            R = project_to_so3(rotations(R, "Camera", "R", tol=1e-3))
            out[name] = Camera(K, R, t, width=width, height=height)
        except GeometryError as exc:
            raise GeometryError(f"{op}: camera '{name}' in '{p}': {exc}") from None
    return out


def _k_from_json(value: object, p: Path, op: str) -> np.ndarray:
    if isinstance(value, dict):
        if "K" in value:
            value = value["K"]
        elif {"fx", "fy", "cx", "cy"} <= value.keys():
            try:
                return intrinsics(value["fx"], value["fy"], value["cx"], value["cy"],
                                  value.get("skew", 0.0))
            except GeometryError as exc:
                raise GeometryError(f"{op}: in '{p}': {exc}") from None
        else:
            raise GeometryError(f"{op}: expected a JSON object with 'K' or 'fx', 'fy', 'cx', "
                                f"'cy' in '{p}', got keys {sorted(value)}")
    try:
        K = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise GeometryError(f"{op}: expected K as 3×3 numbers in '{p}', got {value!r:.60}") \
            from None
    return K.reshape(3, 3) if K.size == 9 else K


def read_intrinsics(path: str | Path, names: list[str] | None = None) -> dict[str, np.ndarray]:
    """Calibration matrices ``K`` (3, 3) by image name, from one of three kinds of file:

    - a Middlebury ``*_par.txt`` file (see :func:`read_middlebury_par`): one K per image;
    - a JSON file: a 3×3 (or 9-number) list, ``{"K": [[...], ...]}``, or
      ``{"fx": ..., "fy": ..., "cx": ..., "cy": ..., "skew": ...}``: one K for every image;
    - a plain text file of 9 numbers (3 lines of 3, ``#`` comments allowed): one K for every
      image.

    With ``names``, the answer has exactly those keys (a shared K is repeated; a par file must
    list every name). Without, a par file gives its own names and a shared K comes back under
    the key :data:`ALL_IMAGES` (``"*"``). Each K is checked (upper triangular, invertible) and
    scaled so that ``K₃₃ = 1``.
    """
    op = "read_intrinsics"
    p, text = _read_text(path, op)
    if _is_middlebury(text):
        per_image = {name: K for name, (K, _, _) in _parse_middlebury(p, text, op).items()}
        if names is not None:
            missing = [n for n in names if n not in per_image]
            if missing:
                raise GeometryError(f"{op}: expected '{p}' to list every image, got no line for "
                                    f"{len(missing)} of them, e.g. '{missing[0]}'")
            per_image = {n: per_image[n] for n in names}
        return {name: calibration_matrix(K, f"{op}: '{p}'", f"K of '{name}'")
                for name, K in per_image.items()}
    stripped = text.lstrip()
    if stripped.startswith(("{", "[")) or p.suffix.lower() == ".json":
        try:
            K = _k_from_json(json.loads(text), p, op)
        except json.JSONDecodeError as exc:
            raise GeometryError(f"{op}: expected valid JSON in '{p}', got an error at line "
                                f"{exc.lineno}: {exc.msg}") from None
    else:
        tokens = [tok for _, line in _lines(text) for tok in line]
        try:
            K = np.array([float(tok) for tok in tokens])
        except ValueError:
            raise GeometryError(f"{op}: expected 9 numbers (a 3×3 K) in '{p}', got "
                                f"non-numeric text {' '.join(tokens[:3])!r}") from None
        if K.size != 9:
            raise GeometryError(f"{op}: expected 9 numbers (a 3×3 K) in '{p}', got {K.size}")
        K = K.reshape(3, 3)
    K = calibration_matrix(K, op, f"K in '{p}'")
    keys = names if names is not None else [ALL_IMAGES]
    return {name: K.copy() for name in keys}
