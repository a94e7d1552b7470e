"""build_model: names, options and error messages."""

import pytest
import torch

from foveal.errors import ConfigError
from foveal.models import MODEL_NAMES, build_model, create, get_model_entry


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_every_name_builds(name):
    # on the meta device: no memory, no initialisation; forward passes are tested per family
    with torch.device("meta"):
        model = create(name)
    assert sum(p.numel() for p in model.parameters()) > 0


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_published_parameter_counts(name):
    entry = get_model_entry(name)
    if entry.params is None:
        pytest.skip(f"{name} has no published parameter count")
    with torch.device("meta"):
        model = create(name)
    assert sum(p.numel() for p in model.parameters()) == entry.params, entry.source


def test_create_uses_the_builders_default_class_count():
    with torch.device("meta"):
        assert create("resnet9").fc.out_features == 10


def test_unknown_model_lists_valid_names():
    with pytest.raises(ConfigError, match=r"unknown model 'nosuchnet': expected one of .*resnet9"):
        build_model("nosuchnet", in_channels=3, num_classes=10, image_size=32)


def test_unknown_option_lists_valid_options():
    with pytest.raises(ConfigError, match="valid options: width, scale"):
        build_model("resnet9", in_channels=3, num_classes=10, image_size=32, depth=3)
