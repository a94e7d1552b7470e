"""Rigid transforms SE(3) as 4×4 homogeneous matrices, their exp/log, and camera poses.

A rigid transform maps ``X ↦ R X + t`` and is stored as

    T = [[R, t],
         [0, 1]],      T⁻¹ = [[Rᵀ, −Rᵀ t],
                              [0,   1   ]],

so ``compose(T_ab, T_bc) = T_ab T_bc`` maps frame ``c`` to frame ``a`` (apply the rightmost
first). Twists ``ξ = (ρ, ω)`` (translational part first) are the Lie algebra se(3):

    exp(ξ) = [[exp([ω]×), J(ω) ρ],
              [0,         1     ]],

with ``J`` the left Jacobian of SO(3) (often called ``V``), see
:func:`foveal.geometry.rotation.left_jacobian_so3`.

Extrinsics vs pose. A camera's *extrinsics* ``(R, t)`` map world to camera, ``x_cam = R X + t``
(``P = K [R | t]``). Its *pose* ``(R_c, C)`` places the camera in the world: the columns of
``R_c`` are the camera's x, y, z axes in world coordinates and ``C`` is its centre. A world point
in camera coordinates is its offset from the centre expressed along the camera axes,
``x_cam = R_cᵀ (X − C)``, hence ``R = R_cᵀ`` and ``t = −R_cᵀ C`` (HZ §6.1, eq. 6.6).

References: HZ §6.1; Barfoot, *State Estimation for Robotics*, 2017, §7.1 (SE(3) exp/log).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from foveal.errors import GeometryError
from foveal.geometry.rotation import exp_so3, left_jacobian_inverse_so3, left_jacobian_so3, log_so3
from foveal.geometry.validate import points, rotations, stack


def _transform_stack(value: ArrayLike, op: str, name: str = "T") -> np.ndarray:
    """(..., 4, 4) rigid transforms: bottom row ``[0, 0, 0, 1]`` and a rotation block."""
    T = stack(value, (4, 4), op, name)
    bottom = T[..., 3, :]
    if np.abs(bottom - [0.0, 0.0, 0.0, 1.0]).max(initial=0.0) > 1e-9:
        row = bottom.reshape(-1, 4)[np.abs(bottom - [0, 0, 0, 1]).reshape(-1, 4).max(1).argmax()]
        raise GeometryError(f"{op}: expected {name} with bottom row [0, 0, 0, 1], got "
                            f"{np.array2string(row, precision=4)}")
    rotations(T[..., :3, :3], op, f"{name}[:3, :3]")
    return T


def make_transform(R: ArrayLike, t: ArrayLike) -> np.ndarray:
    """The 4×4 transform ``[[R, t], [0, 1]]`` (..., 4, 4) of rotations (..., 3, 3) and
    translations (..., 3), broadcast against each other."""
    R = rotations(R, "make_transform", "R")
    t = stack(t, (3,), "make_transform", "t")
    batch = np.broadcast_shapes(R.shape[:-2], t.shape[:-1])
    T = np.zeros((*batch, 4, 4))
    T[..., :3, :3] = R
    T[..., :3, 3] = t
    T[..., 3, 3] = 1.0
    return T


def invert_transform(T: ArrayLike) -> np.ndarray:
    """``T⁻¹ = [[Rᵀ, −Rᵀ t], [0, 1]]`` (..., 4, 4) in closed form, exact for rotations."""
    T = _transform_stack(T, "invert_transform")
    Rt = np.swapaxes(T[..., :3, :3], -1, -2)
    out = np.zeros_like(T)
    out[..., :3, :3] = Rt
    out[..., :3, 3] = -np.einsum("...ij,...j->...i", Rt, T[..., :3, 3])
    out[..., 3, 3] = 1.0
    return out


def compose(*transforms: ArrayLike) -> np.ndarray:
    """The product ``T₁ T₂ ⋯ Tₙ`` (..., 4, 4): the rightmost transform is applied first.

    ``compose(T_world_from_cam, T_cam_from_body)`` gives ``T_world_from_body``.
    """
    if not transforms:
        raise GeometryError("compose: expected at least one transform, got none")
    out = _transform_stack(transforms[0], "compose", "transforms[0]")
    for i, T in enumerate(transforms[1:], start=1):
        out = out @ _transform_stack(T, "compose", f"transforms[{i}]")
    return out


def transform_points(T: ArrayLike, X: ArrayLike) -> np.ndarray:
    """Points ``X`` (N, 3) mapped by one transform ``T`` (4, 4): rows ``R Xᵢ + t``."""
    T = _transform_stack(T, "transform_points")
    if T.ndim != 2:
        raise GeometryError(f"transform_points: expected one T of shape (4, 4), got {T.shape}")
    X = points(X, 3, "transform_points", "X")
    return X @ T[:3, :3].T + T[:3, 3]


def exp_se3(xi: ArrayLike) -> np.ndarray:
    """Transforms (..., 4, 4) of twists ``ξ = (ρ, ω)`` (..., 6): ``R = exp([ω]×)``, ``t = J(ω) ρ``.

    For ``ω = 0`` this is a pure translation by ``ρ``; for ``ρ = 0`` a pure rotation. The
    translation is ``J ρ``, not ``ρ``: the twist moves along a screw (Barfoot eq. 7.83).
    """
    xi = stack(xi, (6,), "exp_se3", "xi")
    rho, omega = xi[..., :3], xi[..., 3:]
    T = np.zeros((*xi.shape[:-1], 4, 4))
    T[..., :3, :3] = exp_so3(omega)
    T[..., :3, 3] = np.einsum("...ij,...j->...i", left_jacobian_so3(omega), rho)
    T[..., 3, 3] = 1.0
    return T


def log_se3(T: ArrayLike) -> np.ndarray:
    """Twists ``ξ = (ρ, ω)`` (..., 6) of transforms (..., 4, 4), ``‖ω‖ ≤ π``:
    ``ω = log R`` (:func:`~foveal.geometry.rotation.log_so3`), ``ρ = J(ω)⁻¹ t``."""
    T = _transform_stack(T, "log_se3")
    omega = log_so3(T[..., :3, :3])
    rho = np.einsum("...ij,...j->...i", left_jacobian_inverse_so3(omega), T[..., :3, 3])
    return np.concatenate([rho, omega], axis=-1)


def extrinsics_from_pose(R_c: ArrayLike, C: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Extrinsics ``(R, t)`` (world → camera) of a camera with pose ``(R_c, C)``:
    ``R = R_cᵀ``, ``t = −R_cᵀ C`` (HZ eq. 6.6).

    ``R_c`` (..., 3, 3) holds the camera axes in world coordinates as columns, ``C`` (..., 3) is
    the centre.
    """
    R_c = rotations(R_c, "extrinsics_from_pose", "R_c")
    C = stack(C, (3,), "extrinsics_from_pose", "C")
    R = np.swapaxes(R_c, -1, -2)
    return R, -np.einsum("...ij,...j->...i", R, C)


def pose_from_extrinsics(R: ArrayLike, t: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Pose ``(R_c, C)`` of a camera with extrinsics ``(R, t)``: ``R_c = Rᵀ``, ``C = −Rᵀ t``."""
    R = rotations(R, "pose_from_extrinsics", "R")
    t = stack(t, (3,), "pose_from_extrinsics", "t")
    R_c = np.swapaxes(R, -1, -2)
    return R_c, -np.einsum("...ij,...j->...i", R_c, t)


def camera_center(R: ArrayLike, t: ArrayLike) -> np.ndarray:
    """The centre ``C = −Rᵀ t`` (..., 3) of cameras with extrinsics ``(R, t)``: the point with
    ``R C + t = 0`` (HZ §6.1)."""
    R = rotations(R, "camera_center", "R")
    t = stack(t, (3,), "camera_center", "t")
    return -np.einsum("...ji,...j->...i", R, t)


def look_at(center: ArrayLike, target: ArrayLike = (0.0, 0.0, 0.0),
            up: ArrayLike = (0.0, 0.0, 1.0)) -> tuple[np.ndarray, np.ndarray]:
    """Extrinsics ``(R, t)`` of cameras at ``center`` (..., 3) whose optical axis points at
    ``target``, with image rows running against ``up`` (``up`` appears towards the top).

    The camera's axes in world coordinates: ``z = (target − C)/‖target − C‖`` (forward),
    ``x = (z × up)/‖z × up‖`` (image right), ``y = z × x`` (image down); ``R`` has them as rows,
    and ``t = −R C``.
    """
    C = stack(center, (3,), "look_at", "center")
    T = stack(target, (3,), "look_at", "target")
    U = stack(up, (3,), "look_at", "up")
    z = T - C
    norm = np.linalg.norm(z, axis=-1, keepdims=True)
    if np.any(norm <= 1e-12):
        raise GeometryError("look_at: expected the target away from the camera centre, got "
                            "a centre on the target")
    z = z / norm
    x = np.cross(z, U)
    xn = np.linalg.norm(x, axis=-1, keepdims=True)
    if np.any(xn <= 1e-12):
        raise GeometryError("look_at: expected an up vector not parallel to the viewing "
                            "direction, got a parallel one")
    x = x / xn
    R = np.stack(np.broadcast_arrays(x, np.cross(z, x), z), axis=-2)
    return R, -np.einsum("...ij,...j->...i", R, C)
