"""GoogLeNet against published numbers: torchvision's ``GoogLeNet_Weights.IMAGENET1K_V1``
``num_params`` (exact, no auxiliary heads), closed forms for the auxiliary heads, the paper's 5×5
branch and the inception output widths (paper Table 1), the paper's loss
``L + 0.3 (L_aux1 + L_aux2)`` recomputed by hand, and torch autograd for gradient flow."""

import pytest
import torch
import torch.nn.functional as F

import foveal.models.googlenet as gnet
from foveal.errors import ConfigError
from foveal.models.registry import create, get_model_entry

# torchvision GoogLeNet_Weights.IMAGENET1K_V1 meta["num_params"] (1000 classes, aux_logits=False).
PUBLISHED = 6_624_904


def _count(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_parameter_count_matches_torchvision():
    with torch.device("meta"):
        model = create("googlenet")
    assert _count(model) == PUBLISHED
    assert get_model_entry("googlenet").params == PUBLISHED


def test_auxiliary_heads_add_closed_form_count():
    # Per head on c channels: conv 1×1 c → 128 (no bias) + BN (2·128) + FC 2048 → 1024 + FC → K.
    k = 1000

    def head(c: int) -> int:
        return c * 128 + 2 * 128 + (2048 + 1) * 1024 + (1024 + 1) * k

    with torch.device("meta"):
        model = create("googlenet", aux_logits=True)
    assert _count(model) - PUBLISHED == head(512) + head(528) == 6_379_984


def test_paper_5x5_branch_adds_16_weights_per_reduce_output_pair():
    # 5×5 instead of 3×3 adds (25 − 9) · #5×5reduce · #5×5 weights in each of the nine modules.
    extra = sum(16 * row[4] * row[5] for row in gnet.INCEPTION_CONFIGS.values())
    with torch.device("meta"):
        model = create("googlenet", kernel_5x5=5)
    assert _count(model) == PUBLISHED + extra == 7_005_832


def test_inception_output_widths_match_table_1():
    # Table 1 "output size" depths: 3a 256, 3b 480, 4a 512, 4b 512, 4c 512, 4d 528, 4e 832,
    # 5a 832, 5b 1024; each is the next module's input.
    widths = {name: row[1] + row[3] + row[5] + row[6]
              for name, row in gnet.INCEPTION_CONFIGS.items()}
    assert widths == {"3a": 256, "3b": 480, "4a": 512, "4b": 512, "4c": 512, "4d": 528,
                      "4e": 832, "5a": 832, "5b": 1024}
    module = gnet.Inception(*gnet.INCEPTION_CONFIGS["3a"])
    assert module(torch.randn(1, 192, 5, 5)).shape == (1, 256, 5, 5)


def test_forward_backward_at_the_minimum_size_15_with_one_channel():
    model = create("googlenet", 10, in_channels=1, image_size=15)
    out = model(torch.randn(2, 1, 15, 15))
    assert out.shape == (2, 10)
    F.cross_entropy(out, torch.tensor([1, 4])).backward()
    first = model.stem[0][0].weight.grad
    assert first is not None and torch.isfinite(first).all() and first.abs().sum() > 0


def test_forward_returns_plain_logits_in_training_mode_even_with_aux_heads():
    # torchvision returns a (logits, aux2, aux1) tuple in training mode, which a standard
    # classification loop cannot use; here forward is always the main logits.
    model = create("googlenet", 10, image_size=15, aux_logits=True).train()
    out = model(torch.randn(2, 3, 15, 15))
    assert isinstance(out, torch.Tensor) and out.shape == (2, 10)


def test_forward_with_aux_and_the_papers_loss():
    torch.manual_seed(0)
    model = create("googlenet", 10, image_size=15, aux_logits=True, dropout=0.0,
                   aux_dropout=0.0).eval()
    x, y = torch.randn(2, 3, 15, 15), torch.tensor([2, 5])
    outputs = model.forward_with_aux(x)
    assert [o.shape for o in outputs] == [(2, 10)] * 3
    torch.testing.assert_close(outputs.logits, model(x))
    expected = (F.cross_entropy(outputs.logits, y)
                + 0.3 * (F.cross_entropy(outputs.aux1, y) + F.cross_entropy(outputs.aux2, y)))
    torch.testing.assert_close(gnet.googlenet_loss(outputs, y), expected)
    gnet.googlenet_loss(outputs, y).backward()
    assert model.aux1.fc2.weight.grad.abs().sum() > 0
    assert model.aux2.fc2.weight.grad.abs().sum() > 0


def test_forward_with_aux_without_heads_is_a_config_error():
    model = create("googlenet", 10, image_size=32)
    with pytest.raises(ConfigError, match="needs a GoogLeNet built with aux_logits=True"):
        model.forward_with_aux(torch.randn(1, 3, 32, 32))


def test_too_small_image_is_a_config_error():
    with pytest.raises(ConfigError, match=r"googlenet needs images of at least 15×15 .*got 14×14"):
        create("googlenet", image_size=14)


def test_five_by_five_kernel_must_be_3_or_5():
    with pytest.raises(ConfigError, match=r"expected kernel_5x5 of 3 .* or 5 .*, got 7"):
        create("googlenet", kernel_5x5=7)


def test_wrong_channel_count_fails_at_first_forward():
    model = create("googlenet", 10, in_channels=1, image_size=32)
    with pytest.raises(RuntimeError, match="to have 1 channels, but got 3 channels"):
        model(torch.randn(1, 3, 32, 32))


@pytest.mark.parametrize("aux_logits", [False, True])
def test_parameter_shapes_match_torchvision(aux_logits):
    tv = pytest.importorskip("torchvision")
    with torch.device("meta"):
        ours = create("googlenet", aux_logits=aux_logits)
        theirs = tv.models.googlenet(aux_logits=aux_logits, init_weights=False)
    assert sorted(p.shape for p in ours.parameters()) == sorted(
        p.shape for p in theirs.parameters())
