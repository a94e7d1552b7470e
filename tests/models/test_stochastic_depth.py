"""Stochastic depth against its definition: per-sample Bernoulli masks, unbiased rescaling,
identity at evaluation, and the linear decay rule of Huang et al. (2016), eq. 4."""

import pytest
import torch

from foveal.errors import ConfigError
from foveal.models.stochastic_depth import DropPath, drop_path, linear_drop_rates


def test_drop_path_zeroes_whole_samples_and_rescales_the_rest():
    torch.manual_seed(0)
    x = torch.ones(1000, 3, 4, 4)
    y = drop_path(x, 0.3)
    per_sample = y.flatten(1)
    # each sample is either all zero or all 1/(1-p)
    scaled = torch.isclose(per_sample, torch.tensor(1 / 0.7)).all(1)
    assert torch.all((per_sample == 0).all(1) | scaled)
    kept = (per_sample[:, 0] > 0).float().mean().item()
    assert abs(kept - 0.7) < 0.05


def test_drop_path_is_unbiased():
    torch.manual_seed(1)
    x = torch.randn(20000, 2)
    assert torch.allclose(drop_path(x, 0.5).mean(0), x.mean(0), atol=0.05)


def test_drop_path_is_identity_in_eval_and_at_zero():
    x = torch.randn(4, 3)
    m = DropPath(0.9).eval()
    assert torch.equal(m(x), x)
    assert torch.equal(drop_path(x, 0.0), x)


def test_drop_path_batch_mode_drops_everything_or_nothing():
    torch.manual_seed(2)
    for _ in range(20):
        y = drop_path(torch.ones(8, 3), 0.5, mode="batch")
        assert len(torch.unique(y)) == 1


def test_linear_drop_rates_closed_form():
    assert linear_drop_rates(0.2, 5) == pytest.approx([0.0, 0.05, 0.1, 0.15, 0.2])
    assert linear_drop_rates(0.2, 1) == [0.0]


@pytest.mark.parametrize(("p", "mode"), [(-0.1, "row"), (1.5, "row"), (0.1, "col")])
def test_drop_path_rejects_bad_settings(p, mode):
    with pytest.raises(ConfigError, match="expected"):
        drop_path(torch.ones(2, 2), p, mode=mode)
