"""conv2d (fast and naive) and conv_transpose2d against torch autograd (float64), centred
differences, the adjoint identity and a hand-worked example."""

import numpy as np
import pytest
import torch.nn.functional as F

from foveal.scratch import Tensor, gradcheck
from foveal.scratch.ops.conv import conv2d, conv2d_naive, conv_output_size, conv_transpose2d
from foveal.scratch.torchcheck import torch_check

rng = np.random.default_rng(0)

# (N, C_in, H, W, C_out, kernel, stride, padding, dilation, groups)
CASES = [
    (2, 3, 7, 6, 4, 3, 1, 1, 1, 1),
    (2, 4, 9, 8, 6, 3, 2, 1, 1, 2),
    (1, 6, 11, 10, 6, 3, 2, 2, 2, 6),          # depthwise, dilated
    (2, 3, 8, 8, 5, (2, 3), (2, 1), (1, 0), (1, 2), 1),
    (1, 2, 5, 5, 3, 1, 1, 0, 1, 1),            # 1×1
    (2, 3, 12, 12, 4, 5, 3, 2, 1, 1),          # 5×5, stride 3
]


def _case(n, c, h, w, o, k, g):
    kk = k if isinstance(k, tuple) else (k, k)
    return (rng.standard_normal((n, c, h, w)), rng.standard_normal((o, c // g, *kk)),
            rng.standard_normal(o))


@pytest.mark.parametrize(("n", "c", "h", "w", "o", "k", "s", "p", "d", "g"), CASES)
@pytest.mark.parametrize("impl", [conv2d, conv2d_naive])
def test_conv2d_matches_torch(impl, n, c, h, w, o, k, s, p, d, g):
    x, W, b = _case(n, c, h, w, o, k, g)
    torch_check(lambda x, W, b: impl(x, W, b, s, p, d, g),
                lambda x, W, b: F.conv2d(x, W, b, s, p, d, g), [x, W, b]).assert_close(1e-8)


@pytest.mark.parametrize(("n", "c", "h", "w", "o", "k", "s", "p", "d", "g"), CASES)
def test_conv_transpose2d_matches_torch(n, c, h, w, o, k, s, p, d, g):
    kk = k if isinstance(k, tuple) else (k, k)
    y = rng.standard_normal((n, o, 5, 4))
    W = rng.standard_normal((o, c // g, *kk))
    b = rng.standard_normal(c)
    torch_check(lambda y, W, b: conv_transpose2d(y, W, b, s, p, 0, g, d),
                lambda y, W, b: F.conv_transpose2d(y, W, b, s, p, 0, g, d),
                [y, W, b]).assert_close(1e-8)


def test_conv_transpose2d_output_padding_matches_torch():
    y, W = rng.standard_normal((2, 3, 4, 5)), rng.standard_normal((3, 2, 3, 3))
    torch_check(lambda y, W: conv_transpose2d(y, W, None, 2, 1, 1),
                lambda y, W: F.conv_transpose2d(y, W, None, 2, 1, 1), [y, W]).assert_close(1e-8)


def test_conv_gradients_match_centred_differences():
    x, W, b = _case(1, 2, 5, 4, 3, 3, 1)
    assert gradcheck(lambda x, W, b: conv2d(x, W, b, 2, 1), [x, W, b]).ok
    assert gradcheck(lambda y, W: conv_transpose2d(y, W, None, 2, 1),
                     [rng.standard_normal((1, 3, 3, 3)), rng.standard_normal((3, 2, 3, 3))]).ok


def test_transposed_conv_is_the_adjoint_of_conv():
    x, W, _ = _case(2, 4, 9, 7, 6, 3, 2)
    y = rng.standard_normal(conv2d(x, W, None, 2, 1, 1, 2).shape)
    lhs = np.sum(conv2d(x, W, None, 2, 1, 1, 2).data * y)
    rhs = np.sum(x * conv_transpose2d(y, W, None, 2, 1, 0, 2).data[:, :, :9, :7])
    np.testing.assert_allclose(lhs, rhs, rtol=1e-12)


def test_transposed_conv_is_the_transpose_not_the_inverse():
    x, W, _ = _case(1, 2, 6, 6, 2, 3, 1)
    back = conv_transpose2d(conv2d(x, W, None, 1, 1), W, None, 1, 1).data
    assert back.shape == x.shape and not np.allclose(back, x, atol=1e-3)


def test_non_integer_conv_output_size_is_an_error():
    assert conv_output_size(8, 3, stride=2, padding=0) == 3   # torch floors (8 − 3)/2 + 1
    with pytest.raises(ValueError, match="not an integer"):
        conv_output_size(8, 3, stride=2, padding=0, exact=True)
    x, W = rng.standard_normal((1, 1, 8, 8)), rng.standard_normal((1, 1, 3, 3))
    with pytest.raises(ValueError, match="not an integer"):
        conv2d(x, W, stride=2, exact=True)
    x7 = rng.standard_normal((1, 1, 7, 7))
    assert conv2d(x7, W, stride=2, padding=1, exact=True).shape == (1, 1, 4, 4)


@pytest.mark.parametrize("algorithm", ["im2col", "fft"])
def test_worked_example_from_the_docs(algorithm):
    """Exact for im2col; the FFT rounds in the last bits."""
    check = (np.testing.assert_array_equal if algorithm == "im2col" else
             lambda a, b: np.testing.assert_allclose(a, b, rtol=0, atol=1e-12))
    x = Tensor(np.arange(1.0, 10.0).reshape(1, 1, 3, 3), requires_grad=True)
    W = Tensor(np.array([[[[1.0, 0.0], [0.0, -1.0]]]]), requires_grad=True)
    y = conv2d(x, W, algorithm=algorithm)
    check(y.data[0, 0], [[-4, -4], [-4, -4]])
    y.backward(np.array([[[[1.0, 0.0], [0.0, 0.0]]]]))
    check(W.grad[0, 0], [[1, 2], [4, 5]])
    check(x.grad[0, 0], [[1, 0, 0], [0, -1, 0], [0, 0, 0]])


def test_float32_stays_float32():
    x, W, b = (a.astype(np.float32) for a in _case(2, 3, 6, 6, 4, 3, 1))
    xt = Tensor(x, requires_grad=True)
    y = conv2d(xt, W, b, padding=1)
    y.sum().backward()
    assert y.dtype == np.float32 and xt.grad.dtype == np.float32


def test_bad_inputs_name_the_op_and_shapes():
    x, W = rng.standard_normal((2, 5, 8, 8)), rng.standard_normal((4, 3, 3, 3))
    with pytest.raises(ValueError, match=r"conv2d: expected input channels 3 .*\(2, 5, 8, 8\)"):
        conv2d(x, W)
    with pytest.raises(ValueError, match=r"conv2d: expected stride .* got -1"):
        conv2d(rng.standard_normal((2, 3, 8, 8)), W, stride=-1)
    with pytest.raises(ValueError, match="floating-point input"):
        conv2d(np.ones((2, 3, 8, 8), dtype=np.int64), W)
    with pytest.raises(ValueError, match="does not fit"):
        conv2d(rng.standard_normal((1, 3, 2, 2)), W)
    with pytest.raises(ValueError, match=r"expected bias of shape \(4,\)"):
        conv2d(rng.standard_normal((1, 3, 5, 5)), W, np.zeros(3))


@pytest.mark.parametrize("chunk", [1, 200])
def test_batch_chunks_match_torch(monkeypatch, chunk):
    """Batches split into chunks (one image each, or a few) give torch's values and
    gradients, for conv2d and conv_transpose2d."""
    import foveal.scratch.ops.conv as conv

    monkeypatch.setattr(conv, "CHUNK_ELEMENTS", chunk)
    x, w = rng.standard_normal((5, 4, 9, 8)), rng.standard_normal((6, 2, 3, 3))
    torch_check(lambda x, w: conv2d(x, w, None, 2, 1, 1, 2),
                lambda x, w: F.conv2d(x, w, None, 2, 1, 1, 2), [x, w]).assert_close()
    xt, wt = rng.standard_normal((5, 6, 4, 5)), rng.standard_normal((6, 2, 3, 3))
    torch_check(lambda x, w: conv_transpose2d(x, w, None, 2, 1, 1, 3),
                lambda x, w: F.conv_transpose2d(x, w, None, 2, 1, 1, 3), [xt, wt]).assert_close()


def test_auto_keeps_half_precision_off_winograd():
    """Winograd's transforms (points ±2, fractions down to 1/24) amplify rounding: in float16
    its error is ~25× im2col's, so "auto" must not take it there, though it does in float32
    for the same shape (oracle: the route each dtype is given)."""
    from foveal.scratch.ops.conv import auto_algorithm

    args = (64, 16, 16, (3, 3), (32, 32), (36, 36))
    assert auto_algorithm(*args, itemsize=4) == "winograd"
    assert auto_algorithm(*args, itemsize=2) != "winograd"
