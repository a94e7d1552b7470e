"""SmallCNN against the published layer sizes of the PyTorch CIFAR-10 tutorial."""

import pytest
import torch

from foveal.errors import ConfigError
from foveal.models import SmallCNN


def test_parameter_count_matches_pytorch_tutorial():
    # The tutorial's Net (conv 3→6→16, FC 400→120→84→10) has 62,006 parameters.
    assert sum(p.numel() for p in SmallCNN(3, 10, 32).parameters()) == 62_006


def test_flatten_width_is_400_for_32px_and_256_for_28px():
    assert SmallCNN(3, 10, 32).fc1.in_features == 400
    assert SmallCNN(1, 10, 28).fc1.in_features == 256


def test_forward_shapes():
    assert SmallCNN(1, 7, 28)(torch.randn(5, 1, 28, 28)).shape == (5, 7)


def test_too_small_input_is_a_config_error():
    with pytest.raises(ConfigError, match="at least 16×16, got 8×8"):
        SmallCNN(1, 10, 8)
