import pytest
import torch

from chanlab.adaptive_compression.environments import ENVIRONMENTS, environment_csi, split_40_40_20
from chanlab.core.errors import ConfigError


@pytest.mark.parametrize("name", sorted(ENVIRONMENTS))
def test_each_environment_gives_unit_power_csi(name):
    h = environment_csi(name, 12, 16, 8, seed=3, show_progress=False)
    assert h.shape == (12, 16, 8) and h.dtype == torch.complex64
    power = h.abs().square().mean(dim=(1, 2))
    assert torch.allclose(power, torch.ones(12), atol=1e-4)
    again = environment_csi(name, 12, 16, 8, seed=3, show_progress=False)  # from the cache
    assert torch.equal(h, again)


def test_environments_differ_and_mobile_samples_are_correlated():
    src = environment_csi("source", 40, 16, 8, seed=0, show_progress=False)
    mob = environment_csi("street-mobile", 40, 16, 8, seed=0, show_progress=False, snapshots_per_drop=20)
    assert not torch.allclose(src, mob)

    def corr(a, b):
        return float((a.conj() * b).sum().abs() / (a.norm() * b.norm()))

    # Consecutive snapshots of a walking user are 3.7 cm (0.45 wavelength) apart: correlated,
    # unlike samples of independent drops (source samples; the two walks of mob).
    within = sum(corr(mob[i], mob[i + 1]) for i in range(19)) / 19
    across = (corr(src[0], src[1]) + corr(mob[0], mob[20])) / 2
    assert within > 0.5 and within > across + 0.3


def test_split_is_40_40_20_and_disjoint():
    tr, va, te = split_40_40_20(100, seed=1)
    assert (len(tr), len(va), len(te)) == (40, 40, 20)
    assert len(set(tr.tolist()) | set(va.tolist()) | set(te.tolist())) == 100
    with pytest.raises(ConfigError):
        split_40_40_20(2)


def test_unknown_environment():
    with pytest.raises(ConfigError, match="known: source"):
        environment_csi("mars", 4, 8, 8)
