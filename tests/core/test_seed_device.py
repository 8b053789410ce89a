import random

import numpy as np
import pytest
import torch

from chanlab.core.device import select_device
from chanlab.core.errors import ConfigError
from chanlab.core.seeding import seed


def test_seed_makes_every_generator_repeat():
    seed(5)
    a = (random.random(), np.random.rand(), torch.rand(1).item())
    seed(5)
    b = (random.random(), np.random.rand(), torch.rand(1).item())
    assert a == b


def test_seed_sets_sionna_when_present():
    import sionna.phy

    seed(11)
    assert sionna.phy.config.seed == 11


@pytest.mark.parametrize("bad", [-1, 1.5, "3", True])
def test_seed_rejects_bad_values(bad):
    with pytest.raises(ConfigError):
        seed(bad)


def test_select_device():
    assert select_device("cpu").type == "cpu"
    assert select_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ConfigError, match="expected 'auto'"):
        select_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="no CUDA GPU"):
            select_device("cuda")
