"""build_model: names, options and error messages."""

import pytest

from foveal.errors import ConfigError
from foveal.models import MODEL_NAMES, build_model


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_every_name_builds(name):
    assert build_model(name, in_channels=3, num_classes=10, image_size=32) is not None


def test_unknown_model_lists_valid_names():
    with pytest.raises(ConfigError, match=r"unknown model 'nosuchnet': expected one of .*resnet9"):
        build_model("nosuchnet", in_channels=3, num_classes=10, image_size=32)


def test_unknown_option_lists_valid_options():
    with pytest.raises(ConfigError, match="valid options: width, scale"):
        build_model("resnet9", in_channels=3, num_classes=10, image_size=32, depth=3)
