"""atomic_write_png: PIL decodes back exactly the pixels written, arrays and PIL images alike,
and a failed encode leaves no file behind."""

import numpy as np
import pytest
from PIL import Image

from foveal.atomic import atomic_write_png


@pytest.mark.parametrize("shape", [(5, 7), (5, 7, 3)])
def test_png_round_trips_through_pil(tmp_path, shape):
    image = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    path = atomic_write_png(tmp_path / "a.png", image, compress_level=1)
    np.testing.assert_array_equal(np.asarray(Image.open(path)), image)
    path = atomic_write_png(tmp_path / "b.png", Image.fromarray(image))
    np.testing.assert_array_equal(np.asarray(Image.open(path)), image)


def test_failed_encode_leaves_nothing(tmp_path):
    with pytest.raises(TypeError):
        atomic_write_png(tmp_path / "bad.png", np.zeros((2, 2, 7), dtype=np.complex64))
    assert list(tmp_path.iterdir()) == []
