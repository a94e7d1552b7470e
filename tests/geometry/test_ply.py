"""PLY round trip, and the header checked against the PLY 1.0 text layout."""

import numpy as np
import pytest

from foveal.errors import GeometryError
from foveal.geometry.ply import read_ply, write_ply


def test_round_trip_with_colors(tmp_path):
    rng = np.random.default_rng(0)
    xyz, rgb = rng.standard_normal((50, 3)), rng.integers(0, 256, (50, 3), dtype=np.uint8)
    write_ply(tmp_path / "c.ply", xyz, rgb)
    got_xyz, got_rgb = read_ply(tmp_path / "c.ply")
    np.testing.assert_array_equal(got_xyz, xyz)
    np.testing.assert_array_equal(got_rgb, rgb)
    head = (tmp_path / "c.ply").read_bytes()[:200].decode("ascii", "replace")
    assert head.startswith("ply\nformat binary_little_endian 1.0\nelement vertex 50\n")


def test_round_trip_without_colors(tmp_path):
    write_ply(tmp_path / "p.ply", np.eye(3))
    xyz, rgb = read_ply(tmp_path / "p.ply")
    assert rgb is None and np.array_equal(xyz, np.eye(3))


def test_truncated_file_is_a_one_line_error(tmp_path):
    write_ply(tmp_path / "p.ply", np.eye(3))
    data = (tmp_path / "p.ply").read_bytes()
    (tmp_path / "p.ply").write_bytes(data[:-5])
    with pytest.raises(GeometryError, match="expected 3 vertices"):
        read_ply(tmp_path / "p.ply")
