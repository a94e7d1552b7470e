"""conv2d by the FFT (foveal.scratch.ops.conv_fft) against torch autograd (float64), centred
differences and the im2col version in float32."""

import math

import numpy as np
import pytest
import scipy.fft as sfft
import torch
import torch.nn.functional as F

from foveal.scratch import gradcheck
from foveal.scratch.ops.conv import conv2d, fft_applies, prefers_fft
from foveal.scratch.ops.conv_fft import batch_chunks, fft_shape
from foveal.scratch.torchcheck import torch_check

from .conftest import float32_against_im2col, frozen_against_im2col

rng = np.random.default_rng(1)

# (N, C_in, H, W, C_out, kernel, padding): odd sizes, rectangular kernels and padding pairs,
# padded sizes that are fast FFT lengths (8, 9) and ones that are not (17 → 18, 13 → 15)
CASES = [
    (2, 3, 7, 6, 4, 3, 1),
    (1, 2, 15, 11, 3, 3, 1),
    (2, 4, 8, 9, 5, 5, 2),
    (1, 3, 13, 10, 2, (2, 4), (0, 1)),
    (3, 1, 6, 6, 1, 6, 0),                 # kernel as large as the input: one output pixel
    (1, 5, 4, 7, 6, (1, 3), 0),
]


@pytest.mark.parametrize(("n", "c", "h", "w", "o", "k", "p"), CASES)
def test_fft_conv2d_matches_torch(n, c, h, w, o, k, p):
    kk = k if isinstance(k, tuple) else (k, k)
    x, W = rng.standard_normal((n, c, h, w)), rng.standard_normal((o, c, *kk))
    b = rng.standard_normal(o)
    torch_check(lambda x, W, b: conv2d(x, W, b, 1, p, algorithm="fft"),
                lambda x, W, b: F.conv2d(x, W, b, 1, p), [x, W, b]).assert_close(1e-8)


@pytest.mark.parametrize("n", [0, 5, 33])
def test_fft_batch_parts_match_torch(n, monkeypatch):
    """The batch split over worker threads (parts of ≥ 8 images), including an empty batch,
    gives torch's values and gradients."""
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "3")
    x, W = rng.standard_normal((n, 4, 9, 9)), rng.standard_normal((5, 4, 3, 3))
    torch_check(lambda x, W: conv2d(x, W, padding=1, algorithm="fft"),
                lambda x, W: F.conv2d(x, W, padding=1), [x, W]).assert_close(1e-8)


def test_fft_conv_gradients_match_centred_differences():
    x, W = rng.standard_normal((2, 2, 5, 6)), rng.standard_normal((3, 2, 3, 2))
    assert gradcheck(lambda x, W: conv2d(x, W, padding=1, algorithm="fft"), [x, W]).ok


def test_fft_and_im2col_agree_in_float32():
    for a, b in float32_against_im2col("fft", 5, rng):
        np.testing.assert_allclose(a, b, rtol=0, atol=2e-5 * np.abs(b).max())


@pytest.mark.parametrize(("n", "step", "parts"), [(64, 7, 2), (64, 7, 1), (64, 64, 2), (10, 3, 4),
                                                  (3, 100, 2), (5, 1, 3), (1, 4, 2), (0, 4, 2)])
def test_batch_chunks_cover_the_batch_in_even_slices(n, step, parts):
    """Closed form: the slices tile 0 … n − 1 in order, hold at most ``step`` images (the
    cache budget) and at least one, differ by one image at most, and are a multiple of
    ``parts`` in number unless there are fewer images than that."""
    chunks = batch_chunks(n, 10, 10 * step, parts)
    sizes = [b.stop - b.start for b in chunks]
    assert [b.start for b in chunks] == [sum(sizes[:k]) for k in range(len(sizes))]
    assert sum(sizes) == n and all(1 <= size <= step for size in sizes)
    assert not sizes or max(sizes) - min(sizes) <= 1
    assert len(chunks) % parts == 0 or len(chunks) == n
    fewest = math.ceil(n / step)  # the chunks the budget needs
    assert len(chunks) == min(n, math.ceil(fewest / parts) * parts)


def test_fft_transform_size_covers_the_padded_input_not_just_the_output():
    """The pitfall: transforms of the output's size wrap the kernel around the map's edge.
    With S ≥ the padded input (what fft_shape returns) the circular correlation equals the
    linear one; with S = the output size it does not."""
    x, W = rng.standard_normal((1, 1, 8, 8)), rng.standard_normal((1, 1, 3, 3))
    assert all(s >= 8 for s in fft_shape(8, 8))
    ref = F.conv2d(torch.from_numpy(x), torch.from_numpy(W)).numpy()[0, 0]
    np.testing.assert_allclose(conv2d(x, W, algorithm="fft").data[0, 0], ref, atol=1e-12)
    s = (6, 6)  # the output size: too small
    wrapped = sfft.irfft2(sfft.rfft2(x[0, 0], s=s) * sfft.rfft2(W[0, 0], s=s).conj(), s=s)
    assert np.abs(wrapped - ref).max() > 0.1


def test_auto_takes_the_fft_only_where_it_applies():
    assert fft_applies((1, 1), (1, 1), 1, (3, 3))
    assert not fft_applies((2, 2), (1, 1), 1, (3, 3))
    assert not fft_applies((1, 1), (2, 2), 1, (3, 3))
    assert not fft_applies((1, 1), (1, 1), 2, (3, 3))
    assert not fft_applies((1, 1), (1, 1), 1, (1, 1))


def test_auto_prefers_the_fft_for_few_channels_and_large_kernels():
    """The cost estimate picks what bench/scratch_conv.py measured faster at batch 64 (the FFT
    for 5×5, im2col for 3×3 kernels), im2col for an RGB input layer and for a single image at
    3×3, and im2col where the kernels' spectra would be too large."""
    assert prefers_fft(64, 16, 16, (5, 5), (32, 32), (36, 36))
    assert prefers_fft(64, 32, 32, (5, 5), (32, 32), (36, 36))
    assert prefers_fft(64, 64, 64, (5, 5), (32, 32), (36, 36))
    assert not prefers_fft(64, 3, 64, (3, 3), (32, 32), (36, 36))
    assert not prefers_fft(64, 16, 16, (3, 3), (32, 32), (36, 36))
    assert not prefers_fft(64, 128, 128, (3, 3), (32, 32), (36, 36))
    assert not prefers_fft(1, 16, 16, (3, 3), (32, 32), (36, 36))
    assert not prefers_fft(1, 32, 32, (3, 3), (32, 32), (36, 36))
    assert not prefers_fft(64, 64, 64, (5, 5), (128, 128), (132, 132))


def test_fft_with_frozen_weights_or_input_gives_the_other_gradient():
    """Only the spectra a gradient needs are kept: x̂ for ∂L/∂W, Ŵ for ∂L/∂x. Oracle: im2col."""
    x, W = rng.standard_normal((2, 3, 6, 6)), rng.standard_normal((4, 3, 3, 3))
    for a, b in frozen_against_im2col("fft", x, W):
        np.testing.assert_allclose(a, b, atol=1e-12)


def test_fft_refuses_what_it_cannot_do_and_unknown_algorithms():
    x, W = rng.standard_normal((1, 4, 8, 8)), rng.standard_normal((4, 2, 3, 3))
    with pytest.raises(ValueError, match=r"'fft' needs stride 1, dilation 1 and groups 1, got "
                                         r"stride=\(1, 1\), dilation=\(1, 1\), groups=2"):
        conv2d(x, W, groups=2, algorithm="fft")
    with pytest.raises(ValueError, match="expected algorithm one of auto, im2col, fft, winograd, "
                                         "got 'x'"):
        conv2d(x, W, groups=2, algorithm="x")
    with pytest.raises(ValueError, match="does not fit"):
        conv2d(rng.standard_normal((1, 2, 2, 2)), rng.standard_normal((1, 2, 3, 3)),
               algorithm="fft")



def test_blas_thread_limit_survives_overlapping_convolutions():
    """The worker threads run with one BLAS thread, a process-wide setting. Two user threads'
    convolutions can overlap as: A in, B in, A out, B out. A plain save-and-restore would let
    A restore the original count under B's workers and B then "restore" the 1 it saw, leaving
    BLAS at one thread for good (oracle: threadpoolctl's report of the thread count)."""
    from threadpoolctl import threadpool_info, threadpool_limits

    from foveal.scratch.ops.conv_fft import _one_blas_thread

    def blas_threads() -> list[int]:
        return [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]

    with threadpool_limits(limits=2, user_api="blas"):
        assert blas_threads() and set(blas_threads()) == {2}
        a, b = _one_blas_thread(), _one_blas_thread()
        a.__enter__()
        b.__enter__()
        assert set(blas_threads()) == {1}
        a.__exit__(None, None, None)
        assert set(blas_threads()) == {1}  # B's workers still run
        b.__exit__(None, None, None)
        assert set(blas_threads()) == {2}
