"""airbench94's network and its patch-whitening stem.

Oracles: closed forms (the parameter count layer by layer; the whitened patches' second-moment
matrix ``Λ (Λ + ε I)⁻¹``, with ``Λ`` from NumPy's ``eigvalsh`` of patches gathered by a Python
loop over offsets), the published 1.97M parameters (Jordan 2024, arXiv:2404.00498), and torch
autograd for gradients reaching the first layer.
"""

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F

import foveal.models.airbench  # noqa: F401  (registers the builder)
from foveal.errors import ConfigError
from foveal.models.airbench import Airbench, image_patches, patch_whitening_weights
from foveal.models.registry import build_model, create, get_model_entry


def closed_form_count(widths=(64, 256, 256), num_classes=10, in_channels=3) -> int:
    """Whitening conv 2×2 C → 8C with bias; per block two 3×3 convs (no bias) and two BNs
    (γ, β: 2 per channel, γ frozen but a parameter); a bias-free linear head."""
    w = 8 * in_channels
    total = w * in_channels * 4 + w
    c_in = w
    for c in widths:
        total += 9 * c_in * c + 2 * c + 9 * c * c + 2 * c
        c_in = c
    return total + c_in * num_classes


def smooth_images(n=64, size=12, seed=0) -> torch.Tensor:
    """Spatially correlated, per-channel normalised images (neighbouring pixels correlate as in
    natural images, so the patch covariance is far from the identity)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, size + 2, size + 2, generator=g)
    x = F.avg_pool2d(x, 3, stride=1)  # correlate neighbours
    x[:, 1] += 0.8 * x[:, 0]  # correlate channels
    return (x - x.mean((0, 2, 3), keepdim=True)) / x.std((0, 2, 3), keepdim=True)


def loop_patches(x: torch.Tensor, k: int = 2) -> np.ndarray:
    """All k×k patches by explicit offsets, each flattened as (C, k, k)."""
    x = x.numpy()
    n, _, h, w = x.shape
    rows = [x[i, :, r:r + k, s:s + k].reshape(-1)
            for i in range(n) for r in range(h - k + 1) for s in range(w - k + 1)]
    return np.stack(rows).astype(np.float64)


def test_parameter_count_is_closed_form_and_published():
    # Jordan 2024 reports 1.97M parameters for the 64-256-256 network with 10 classes.
    assert closed_form_count() == 1_972_792
    assert sum(p.numel() for p in create("airbench").parameters()) == 1_972_792
    assert get_model_entry("airbench").params == 1_972_792
    narrow = build_model("airbench", in_channels=1, num_classes=7, image_size=32,
                         widths=[16, 32, 48])
    assert sum(p.numel() for p in narrow.parameters()) == closed_form_count((16, 32, 48), 7, 1)


def test_patch_layout_matches_conv_kernel_layout():
    # Pitfall: patches flattened in another order than (C, k, k) whiten the wrong directions.
    x = smooth_images(4, 9)
    weight = torch.randn(5, 3, 2, 2, dtype=torch.float64)
    conv = F.conv2d(x.double(), weight)  # (N, 5, 8, 8)
    via_patches = image_patches(x.double(), 2) @ weight.view(5, -1).T
    assert torch.allclose(via_patches, conv.permute(0, 2, 3, 1).reshape(-1, 5))
    assert np.allclose(np.sort(image_patches(x.double(), 2).numpy(), axis=0),
                       np.sort(loop_patches(x), axis=0))


def test_whitened_patches_have_second_moment_lambda_over_lambda_plus_eps():
    x = smooth_images()
    eps = 5e-4
    weight = patch_whitening_weights(x, 2, eps).double()
    assert weight.shape == (24, 3, 2, 2)
    p = loop_patches(x)
    lam = np.linalg.eigvalsh(p.T @ p / len(p))[::-1]
    z = p @ weight.view(24, -1).numpy().T
    second = z.T @ z / len(z)
    d = np.diag(lam / (lam + eps))
    np.testing.assert_allclose(second, np.block([[d, -d], [-d, d]]), atol=1e-5)
    # The data's own patch covariance is far from white; the whitened one is close to I.
    assert np.abs(p.T @ p / len(p) - np.eye(12)).max() > 0.5
    tiny = patch_whitening_weights(x, 2, 1e-9).double().view(24, -1).numpy()[:12]
    zt = p @ tiny.T
    np.testing.assert_allclose(zt.T @ zt / len(zt), np.eye(12), atol=1e-5)


def test_data_init_sets_frozen_filters_and_conv_output_is_white():
    torch.manual_seed(0)
    model = create("airbench").eval()
    x = smooth_images()
    model.data_init(x)
    assert not model.whiten.weight.requires_grad and model.whiten.bias.requires_grad
    assert torch.allclose(model.whiten.weight, patch_whitening_weights(x))
    z = F.conv2d(x, model.whiten.weight)[:, :12].permute(0, 2, 3, 1).reshape(-1, 12).double()
    p = loop_patches(x)
    lam = torch.from_numpy(np.linalg.eigvalsh(p.T @ p / len(p))[::-1].copy())
    expected = torch.diag(lam / (lam + 5e-4))
    assert torch.allclose(z.T @ z / len(z), expected, atol=1e-4)


def test_identity_init_passes_channels_through():
    model = create("airbench", widths=[8, 16, 16]).eval()
    x = torch.randn(2, 8, 5, 5)
    # block1.conv2 is 8 → 8: entirely Dirac, so it is the identity.
    assert torch.allclose(model.block1.conv2(x), x)
    # block2.conv1 is 8 → 16: the first 8 filters copy the input, the other 8 do not.
    y = model.block2.conv1(x)
    assert torch.allclose(y[:, :8], x) and not torch.allclose(y[:, 8:], torch.zeros_like(y[:, 8:]))
    plain = create("airbench", widths=[8, 16, 16], identity_init=False)
    assert not torch.allclose(plain.block1.conv2(x), x)


def test_batchnorm_gamma_is_fixed_and_beta_trained():
    model = create("airbench")
    norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    assert len(norms) == 6
    for bn in norms:
        assert not bn.weight.requires_grad and bn.bias.requires_grad
        assert bn.momentum == 0.4 and bn.eps == 1e-12


def test_logits_are_head_of_global_max_pool_over_nine():
    torch.manual_seed(0)
    model = create("airbench", widths=[8, 16, 16]).eval()
    x = torch.randn(2, 3, 32, 32)
    feats = model.block3(model.block2(model.block1(F.gelu(model.whiten(x)))))
    assert feats.shape[-2:] == (3, 3)
    expected = model.head(feats.amax((2, 3))) / 9
    assert torch.allclose(model(x), expected, atol=1e-6)


@pytest.mark.parametrize("size", [32, 9])
def test_forward_backward_small_input(size):
    torch.manual_seed(0)
    model = build_model("airbench", in_channels=3, num_classes=5, image_size=size,
                        widths=[16, 32, 32])
    x = torch.randn(2, 3, size, size)
    model.data_init(x)
    out = model(x)
    assert out.shape == (2, 5)
    out.square().sum().backward()
    assert model.whiten.weight.grad is None  # frozen
    grad = model.whiten.bias.grad
    assert grad is not None and torch.isfinite(grad).all() and grad.abs().sum() > 0


def test_trainable_whitening_gets_gradients():
    model = create("airbench", widths=[8, 16, 16], freeze_whitening=False)
    model(torch.randn(2, 3, 16, 16)).sum().backward()
    assert model.whiten.weight.grad is not None
    assert torch.isfinite(model.whiten.weight.grad).all()


def test_single_channel_input():
    model = build_model("airbench", in_channels=1, num_classes=3, image_size=28,
                        widths=[8, 16, 16])
    assert model.whiten.weight.shape == (8, 1, 2, 2)
    x = torch.randn(4, 1, 28, 28)
    model.data_init(x)
    assert model.eval()(x).shape == (4, 3)


def test_bad_input():
    with pytest.raises(ConfigError, match="airbench needs images of at least 9×9, got "
                                          "image_size=8"):
        build_model("airbench", in_channels=3, num_classes=10, image_size=8)
    with pytest.raises(ConfigError, match=r"3 positive block widths, got \[64, 256\]"):
        create("airbench", widths=[64, 256])
    model = create("airbench", widths=[8, 16, 16]).eval()
    with pytest.raises(ConfigError, match=r"\(N, 3, H, W\), got \(2, 1, 32, 32\)"):
        model(torch.randn(2, 1, 32, 32))
    with pytest.raises(ConfigError, match="at least 9×9, got 8×8"):
        model(torch.randn(2, 3, 8, 8))
    with pytest.raises(ConfigError, match=r"data_init expects images of shape \(N, 3, H, W\)"):
        model.data_init(torch.randn(2, 1, 32, 32))


def test_is_an_airbench_instance_with_default_widths():
    model = create("airbench")
    assert isinstance(model, Airbench)
    assert [b.conv2.out_channels for b in (model.block1, model.block2, model.block3)] == [
        64, 256, 256]
