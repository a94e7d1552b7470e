"""ResNet-9 against its published size and the residual identity y = x + f(x)."""

import pytest
import torch

from foveal.errors import ConfigError
from foveal.models import ResNet9
from foveal.models.resnet9 import Residual


def test_parameter_count_matches_dawnbench_resnet9():
    # Page's DAWNBench ResNet-9 (widths 64-128-256-512) has about 6.5 M parameters.
    n = sum(p.numel() for p in ResNet9(3, 10).parameters())
    assert 6.5e6 < n < 6.6e6


def test_residual_block_is_identity_when_branch_outputs_zero():
    block = Residual(4)
    # Zero BN scale and shift make f(x) = ReLU(0) = 0, so the block must return x exactly.
    for m in block.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            torch.nn.init.zeros_(m.weight)
            torch.nn.init.zeros_(m.bias)
    x = torch.randn(2, 4, 6, 6)
    torch.testing.assert_close(block(x), x)


@pytest.mark.parametrize(("c", "s"), [(1, 8), (1, 28), (3, 32)])
def test_any_input_of_at_least_8px(c, s):
    assert ResNet9(c, 10, width=4)(torch.randn(2, c, s, s)).shape == (2, 10)


def test_rejects_inputs_smaller_than_8px():
    with pytest.raises(ConfigError, match="at least 8×8"):
        ResNet9(1, 10, width=4)(torch.randn(1, 1, 4, 4))
