"""conv2d by Winograd's F(4×4, 3×3) (foveal.scratch.ops.conv_winograd) against torch autograd
(float64), centred differences, the 1-D correlation the matrices must compute, Lavin & Gray's
published F(2×2, 3×3) matrices and the im2col version in float32."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import foveal.scratch.ops.conv as conv_module
from foveal.scratch import Tensor, gradcheck
from foveal.scratch.layers import Conv2d
from foveal.scratch.ops import conv_winograd
from foveal.scratch.ops.conv import auto_algorithm, conv2d, winograd_applies
from foveal.scratch.ops.conv_fft import batch_chunks, fft_shape
from foveal.scratch.ops.conv_winograd import (
    winograd_conv_backward,
    winograd_conv_forward,
    winograd_matrices,
)
from foveal.scratch.torchcheck import torch_check

from .conftest import float32_against_im2col, frozen_against_im2col

rng = np.random.default_rng(2)

# (N, C_in, H, W, C_out, padding): odd and rectangular maps whose outputs are not multiples of
# the 4×4 tile, a 1×1 input that only padding makes convolvable, rectangular padding
CASES = [
    (2, 3, 7, 9, 4, 1),
    (1, 2, 5, 5, 3, 0),
    (2, 3, 5, 5, 2, 2),
    (1, 4, 1, 1, 3, 1),
    (3, 2, 8, 8, 5, 1),
    (1, 3, 6, 11, 2, (0, 2)),
    (2, 5, 13, 4, 6, (2, 1)),
]


@pytest.mark.parametrize(("n", "c", "h", "w", "o", "p"), CASES)
def test_winograd_conv2d_matches_torch(n, c, h, w, o, p):
    x, W = rng.standard_normal((n, c, h, w)), rng.standard_normal((o, c, 3, 3))
    b = rng.standard_normal(o)
    torch_check(lambda x, W, b: conv2d(x, W, b, 1, p, algorithm="winograd"),
                lambda x, W, b: F.conv2d(x, W, b, 1, p), [x, W, b]).assert_close(1e-10)


@pytest.mark.parametrize("n", [0, 5, 33])
def test_winograd_batch_chunks_on_threads_match_torch(n, monkeypatch):
    """Chunks of two images (or one, in an odd batch; a tiny CHUNK_VALUES), shared among
    three threads, including an empty batch, give torch's values and gradients; the bias is
    added and its gradient summed chunk by chunk."""
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "3")
    monkeypatch.setattr(conv_winograd, "CHUNK_VALUES", 4 * 36 * 9 * 4)  # 2 images a chunk
    x, W = rng.standard_normal((n, 4, 9, 10)), rng.standard_normal((5, 4, 3, 3))
    b = rng.standard_normal(5)
    torch_check(lambda x, W, b: conv2d(x, W, b, padding=1, algorithm="winograd"),
                lambda x, W, b: F.conv2d(x, W, b, padding=1), [x, W, b]).assert_close(1e-10)


@pytest.mark.parametrize("workers", [1, 2, 3, 4])
def test_winograd_threads_get_equal_shares_of_the_batch(workers, monkeypatch):
    """Closed form: over batches 1–96 and chunk sizes 1–9 images, the threads' runs of
    chunks cover every chunk once and their image counts differ by one at most (dealing the
    chunks in turn gave one of two threads 3 images of 9 and the other 6)."""
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", str(workers))
    for n in range(1, 97):
        for step in range(1, 10):
            chunks = batch_chunks(n, 1, step, workers)
            runs = conv_winograd._deal(len(chunks))
            assert sorted(i for run in runs for i in run) == list(range(len(chunks)))
            images = [sum(chunks[i].stop - chunks[i].start for i in run) for run in runs]
            assert max(images) - min(images) <= 1, (n, step, images)


def test_winograd_with_a_frozen_bias_adds_it_and_gives_it_no_gradient():
    """Oracle: torch, with a float64 bias added to a float32 convolution (the output stays
    float32, as im2col's)."""
    x = rng.standard_normal((3, 4, 8, 8)).astype(np.float32)
    W = rng.standard_normal((5, 4, 3, 3)).astype(np.float32)
    b = Tensor(rng.standard_normal(5))
    xt = Tensor(x, requires_grad=True)
    y = conv2d(xt, W, b, padding=1, algorithm="winograd")
    y.sum().backward()
    tx = torch.from_numpy(x).requires_grad_()
    ref = F.conv2d(tx, torch.from_numpy(W), torch.from_numpy(b.data.astype(np.float32)), 1, 1)
    ref.sum().backward()
    assert y.dtype == np.float32 and b.grad is None
    np.testing.assert_allclose(y.data, ref.detach().numpy(), rtol=0, atol=1e-4)
    np.testing.assert_allclose(xt.grad, tx.grad.numpy(), rtol=0, atol=1e-4)


def test_winograd_gradients_match_centred_differences():
    x, W = rng.standard_normal((2, 2, 5, 6)), rng.standard_normal((3, 2, 3, 3))
    assert gradcheck(lambda x, W: conv2d(x, W, padding=1, algorithm="winograd"), [x, W]).ok


def test_winograd_and_im2col_agree_in_float32():
    """Tolerance 3e-5 of the largest value: F(4×4)'s transforms scale values by up to 8 and
    1/24 before the sums, so its float32 rounding error is 5–10× im2col's (about 1e-6 RMS,
    1e-5 at worst, relative to the largest value; module doc)."""
    for a, b in float32_against_im2col("winograd", 3, rng):
        np.testing.assert_allclose(a, b, rtol=0, atol=3e-5 * np.abs(b).max())


def test_winograd_crops_the_ragged_last_tile_instead_of_wrapping_or_dropping_it():
    """The pitfall: a 5×7 output is not a multiple of the 4×4 tile. The last tiles must read
    zeros beyond the input and be cropped: dropping them loses the last row and column,
    wrapping them reads the map's other edge. Oracle: torch, on exactly those pixels and on
    the input pixels only the ragged tiles see."""
    x, W = rng.standard_normal((1, 1, 7, 9)), rng.standard_normal((1, 1, 3, 3))
    xt = Tensor(x, requires_grad=True)
    y = conv2d(xt, W, algorithm="winograd")
    tx = torch.from_numpy(x).requires_grad_()
    ref = F.conv2d(tx, torch.from_numpy(W))
    assert y.shape == ref.shape == (1, 1, 5, 7)
    g = rng.standard_normal(y.shape)
    y.backward(g)
    ref.backward(torch.from_numpy(g))
    ref_y, ref_dx = ref.detach().numpy(), tx.grad.numpy()
    np.testing.assert_allclose(y.data[..., 4, :], ref_y[..., 4, :], atol=1e-12)
    np.testing.assert_allclose(y.data[..., :, 4:], ref_y[..., :, 4:], atol=1e-12)
    np.testing.assert_allclose(xt.grad[..., 4:, :], ref_dx[..., 4:, :], atol=1e-12)
    np.testing.assert_allclose(xt.grad[..., :, 4:], ref_dx[..., :, 4:], atol=1e-12)


def test_winograd_with_frozen_weights_or_input_computes_only_the_other_gradient():
    """Only what a gradient needs is kept: V for ∂L/∂W, U for ∂L/∂x. Oracle: im2col."""
    x, W = rng.standard_normal((2, 3, 6, 7)), rng.standard_normal((4, 3, 3, 3))
    for a, b in frozen_against_im2col("winograd", x, W):
        np.testing.assert_allclose(a, b, atol=1e-12)
    xp, g = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1))), np.ones((2, 4, 6, 7))
    _, v, u = winograd_conv_forward(xp, W, keep_v=False)
    assert v is None
    dxp, dw, db = winograd_conv_backward(g, None, u, xp.shape, input_grad=True,
                                         weight_grad=False)
    assert db is None and dw is None and dxp.shape == xp.shape
    _, v, _ = winograd_conv_forward(xp, W)
    dxp, dw, _ = winograd_conv_backward(g, v, None, xp.shape, input_grad=False,
                                        weight_grad=True)
    assert dxp is None and dw.shape == W.shape


@pytest.mark.parametrize(("m", "points"), [(2, None), (4, None), (4, (0, 1, -1, 0.5, -3))])
def test_winograd_matrices_compute_the_1d_correlation(m, points):
    """Closed form: Aᵀ((G g) ⊙ (Bᵀ d)) is the 'valid' correlation of d (m + 2) with g (3)."""
    at, g, bt = winograd_matrices(m, points=points)
    for _ in range(3):
        d, k = rng.standard_normal(m + 2), rng.standard_normal(3)
        np.testing.assert_allclose(at @ ((g @ k) * (bt @ d)), np.correlate(d, k, "valid"),
                                   atol=1e-12)


def test_f2x2_matrices_are_lavin_and_grays():
    """Lavin & Gray 2016, §4.1, F(2×2, 3×3): equal up to the sign of the point at infinity's
    row of Bᵀ and column of Aᵀ, which cancel in the product."""
    at, g, bt = winograd_matrices(2)
    flip = np.diag([1.0, 1.0, 1.0, -1.0])
    np.testing.assert_array_equal(flip @ bt, [[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0],
                                              [0, 1, 0, -1]])
    np.testing.assert_array_equal(g, [[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]])
    np.testing.assert_array_equal(at @ flip, [[1, 1, 1, 0], [0, 1, -1, -1]])


def test_winograd_refuses_what_it_cannot_do():
    x = rng.standard_normal((1, 4, 8, 8))
    W3, W5 = rng.standard_normal((4, 4, 3, 3)), rng.standard_normal((4, 4, 5, 5))
    base = r"conv2d: algorithm 'winograd' needs a 3×3 kernel, stride 1, dilation 1 and groups 1, "
    with pytest.raises(ValueError, match=base + r"got kernel=\(5, 5\), stride=\(1, 1\), "
                                                r"dilation=\(1, 1\), groups=1"):
        conv2d(x, W5, algorithm="winograd")
    with pytest.raises(ValueError, match=base + r"got kernel=\(3, 3\), stride=\(2, 2\)"):
        conv2d(x, W3, stride=2, algorithm="winograd")
    with pytest.raises(ValueError, match=r"dilation=\(2, 2\), groups=1"):
        conv2d(x, W3, dilation=2, algorithm="winograd")
    with pytest.raises(ValueError, match=r"groups=2"):
        conv2d(x, W3[:, :2], groups=2, algorithm="winograd")
    with pytest.raises(ValueError, match="expected algorithm one of auto, im2col, fft, "
                                         "winograd, got 'wino'"):
        conv2d(x, W3, algorithm="wino")
    with pytest.raises(ValueError, match="does not fit"):
        conv2d(rng.standard_normal((1, 4, 2, 2)), W3, algorithm="winograd")


def test_auto_picks_winograd_for_3x3_and_keeps_the_fft_for_5x5(monkeypatch):
    """The cost estimates pick what the measurements (auto_algorithm's doc) found fastest:
    Winograd for 3×3 kernels from 16 channels at batch 64, and through conv2d itself for
    16 → 16 channels; the FFT still for 5×5; im2col for one 16-channel image and for an RGB
    input layer; none of the stride-1 routes for strides or groups."""
    s36 = fft_shape(34, 34)
    for c in (16, 32, 64, 128):
        assert auto_algorithm(64, c, c, (3, 3), (32, 32), s36) == "winograd"
    assert auto_algorithm(1, 32, 32, (3, 3), (32, 32), s36) == "winograd"
    assert auto_algorithm(1, 16, 16, (3, 3), (32, 32), s36) == "im2col"
    assert auto_algorithm(64, 3, 64, (3, 3), (32, 32), s36) == "im2col"
    for c in (16, 32, 64):
        assert auto_algorithm(64, c, c, (5, 5), (32, 32), fft_shape(36, 36)) == "fft"
    assert auto_algorithm(64, 16, 16, (3, 3), (16, 16), s36, stride=(2, 2)) == "im2col"
    assert auto_algorithm(64, 16, 16, (3, 3), (32, 32), s36, groups=2) == "im2col"
    assert winograd_applies((1, 1), (1, 1), 1, (3, 3))
    assert not winograd_applies((1, 1), (1, 1), 1, (3, 5))

    routes = []
    real = conv_module.winograd_conv_forward
    monkeypatch.setattr(conv_module, "winograd_conv_forward",
                        lambda *a, **k: routes.append("winograd") or real(*a, **k))
    x = rng.standard_normal((64, 16, 32, 32)).astype(np.float32)
    W = rng.standard_normal((16, 16, 3, 3)).astype(np.float32)
    conv2d(x, W, padding=1)
    assert routes == ["winograd"]


def test_conv2d_layer_takes_the_winograd_route():
    """Oracle: torch.nn.Conv2d with the same parameters."""
    ours = Conv2d(3, 5, 3, padding=1, algorithm="winograd", dtype=np.float64)
    theirs = torch.nn.Conv2d(3, 5, 3, padding=1).double()
    ours.load_state_dict(theirs.state_dict())
    x = rng.standard_normal((2, 3, 9, 6))
    out, ref = ours(Tensor(x)), theirs(torch.as_tensor(x))
    np.testing.assert_allclose(out.data, ref.detach().numpy(), rtol=1e-10, atol=1e-12)
    out.sum().backward()
    ref.sum().backward()
    np.testing.assert_allclose(ours.weight.grad, theirs.weight.grad.numpy(), rtol=1e-10,
                               atol=1e-12)
