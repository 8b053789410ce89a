"""Tests of the Sionna PHY TR 38.901 CSI generators (small sizes: the file runs in seconds)."""

import math

import pytest
import torch

from chanlab.channels import sionna_phy as sp
from chanlab.channels.sionna_phy import (
    generate_cdl,
    generate_multiuser,
    generate_scenario,
)
from chanlab.core.errors import ChanlabError, ConfigError

SMALL = dict(n_ant=8, n_sc=64)


def _mean_power(h, dims):
    return h.abs().to(torch.float64).square().mean(dim=dims)


# ----------------------------------------------------------------------------- shapes

@pytest.mark.parametrize("model", ["A", "B", "C", "D", "E"])
def test_cdl_shape_dtype_finite(model):
    h = generate_cdl(8, model=model, **SMALL)
    assert h.shape == (8, 8, 64)
    assert h.dtype == torch.complex64
    assert h.device.type == "cpu"
    assert torch.isfinite(torch.view_as_real(h)).all()
    assert h.abs().sum() > 0


def test_cdl_model_spelling_and_batching():
    ref = generate_cdl(5, model="C", batch_size=2, **SMALL)   # 3 batches, last one short
    assert ref.shape == (5, 8, 64)
    assert torch.equal(generate_cdl(5, model="c", batch_size=2, **SMALL), ref)
    assert torch.equal(generate_cdl(5, model="CDL-C", batch_size=2, **SMALL), ref)


@pytest.mark.parametrize("scenario", ["umi", "uma", "rma", "inh"])
def test_scenario_shape_dtype_finite(scenario):
    h = generate_scenario(6, scenario=scenario, batch_size=4, **SMALL)
    assert h.shape == (6, 8, 64)
    assert h.dtype == torch.complex64
    assert torch.isfinite(torch.view_as_real(h)).all()


@pytest.mark.parametrize("source", ["cdl", "umi", "uma"])
def test_multiuser_shape_dtype_finite(source):
    h = generate_multiuser(5, n_users=3, source=source, n_ant=8, batch_size=2)
    assert h.shape == (5, 3, 8)
    assert h.dtype == torch.complex64
    assert torch.isfinite(torch.view_as_real(h)).all()


def test_multiuser_source_scenario_reads_scenario():
    a = generate_multiuser(3, n_users=2, source="scenario", scenario="uma", n_ant=4, seed=3)
    b = generate_multiuser(3, n_users=2, source="uma", n_ant=4, seed=3)
    assert torch.equal(a, b)


def test_upa_shape():
    h = generate_cdl(4, model="B", n_ant=8, array="upa", n_rows=2, n_sc=16)
    assert h.shape == (4, 8, 16)
    h = generate_scenario(3, n_ant=12, array="upa", n_rows=3, n_sc=16)
    assert h.shape == (3, 12, 16)
    h = generate_multiuser(3, n_users=2, n_ant=8, array="upa", n_rows=4)
    assert h.shape == (3, 2, 8)


def test_device_argument_accepts_torch_device():
    h = generate_cdl(2, device=torch.device("cpu"), **SMALL)
    assert h.device.type == "cpu"


# ----------------------------------------------------------------------------- seeding

@pytest.mark.parametrize("fn,kw", [
    (generate_cdl, dict(model="A", **SMALL)),
    (generate_scenario, dict(scenario="umi", **SMALL)),
    (generate_multiuser, dict(n_users=2, source="cdl", n_ant=8)),
    (generate_multiuser, dict(n_users=2, source="uma", n_ant=8)),
])
def test_seed_reproducible(fn, kw):
    a = fn(4, seed=7, **kw)
    b = fn(4, seed=7, **kw)
    c = fn(4, seed=8, **kw)
    assert torch.equal(a, b)
    assert not torch.allclose(a, c)


def test_torch_global_rng_untouched():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    generate_cdl(2, seed=5, **SMALL)
    assert torch.equal(torch.rand(3), expected)


# ----------------------------------------------------------------------------- power

@pytest.mark.parametrize("model", ["A", "C", "D"])
def test_cdl_average_power_is_one(model):
    h = generate_cdl(128, model=model, n_ant=8, n_sc=32, seed=1)
    p = _mean_power(h, (0, 1, 2)).item()
    assert 0.85 < p < 1.15, p


def test_scenario_normalize():
    h = generate_scenario(6, scenario="umi", normalize=True, **SMALL)
    torch.testing.assert_close(_mean_power(h, (1, 2)), torch.ones(6, dtype=torch.float64),
                               rtol=1e-4, atol=0)
    raw = generate_scenario(6, scenario="umi", normalize=False, **SMALL)
    assert _mean_power(raw, (1, 2)).max() < 1e-3           # path loss is in the raw values
    # normalization only rescales each sample
    ratio = h / raw
    torch.testing.assert_close(ratio / ratio[:, :1, :1], torch.ones_like(ratio), rtol=1e-3, atol=1e-3)


def test_multiuser_normalize_per_drop():
    h = generate_multiuser(5, n_users=3, source="umi", n_ant=8, normalize=True)
    torch.testing.assert_close(_mean_power(h, (1, 2)), torch.ones(5, dtype=torch.float64),
                               rtol=1e-4, atol=0)
    raw = generate_multiuser(5, n_users=3, source="umi", n_ant=8, normalize=False)
    assert _mean_power(raw, (1, 2)).max() < 1e-3
    # CDL drops are returned as Sionna gives them, whatever `normalize` says
    a = generate_multiuser(4, n_users=2, source="cdl", n_ant=8, normalize=True)
    b = generate_multiuser(4, n_users=2, source="cdl", n_ant=8, normalize=False)
    assert torch.equal(a, b)


# ----------------------------------------------------------------------------- conventions

def test_ula_cdl_d_is_spatially_coherent():
    """CDL-D's LoS path leaves at azimuth 0 (broadside): with the documented ULA ordering
    almost all energy lands in DFT bin 0; a scrambled element order would spread it."""
    h = generate_cdl(32, model="D", n_ant=16, n_sc=16, seed=2)
    energy = torch.fft.fft(h, dim=1).abs().square().sum(dim=(0, 2))      # [n_ant] bins
    frac = energy / energy.sum()
    assert frac[0] > 0.8, frac
    assert torch.topk(frac, 3).values.sum() > 0.9
    perm = torch.randperm(16, generator=torch.Generator().manual_seed(0))
    scrambled = torch.fft.fft(h[:, perm], dim=1).abs().square().sum(dim=(0, 2))
    assert (scrambled / scrambled.sum()).max() < frac[0]


def test_cdl_c_angular_energy_is_concentrated():
    h = generate_cdl(32, model="C", n_ant=32, n_sc=16, seed=3)
    energy = torch.fft.fft(h, dim=1).abs().square().sum(dim=(0, 2))
    frac = torch.sort(energy / energy.sum(), descending=True).values
    assert frac[:8].sum() > 0.6            # 8 of 32 bins: ~0.7 (an i.i.d. channel: ~0.25)


def test_upa_row_major_ordering_matches_geometry():
    """Element k = r * n_cols + c: y grows with c, z falls with r (row 0 on top)."""
    n_rows, n_cols = 2, 3
    perm = sp._row_major_perm(n_rows, n_cols, torch.device("cpu"))
    assert perm.tolist() == [0, 2, 4, 1, 3, 5]
    bs, _ = sp._arrays(n_rows, n_cols, 0.5, 3.5e9, "cpu")
    pos = bs.ant_pos[perm].reshape(n_rows, n_cols, 3)
    assert (pos[:, 1:, 1] > pos[:, :-1, 1]).all()                 # y increases along a row
    assert (pos[1:, :, 2] < pos[:-1, :, 2]).all()                 # z decreases down the rows
    torch.testing.assert_close(pos[:, :, 1] - pos[:, :1, 1],      # same y within a column
                               (pos[:1, :, 1] - pos[:1, :1, 1]).expand(n_rows, -1))
    assert sp._row_major_perm(1, 8, torch.device("cpu")) is None  # ULA untouched


def test_ofdm_response_matches_sionna():
    from sionna.phy.channel import cir_to_ofdm_channel, subcarrier_frequencies

    g = torch.Generator().manual_seed(0)
    b, n, p = 3, 4, 5
    a = torch.complex(torch.randn(b, n, p, generator=g), torch.randn(b, n, p, generator=g))
    tau = torch.rand(b, p, generator=g) * 1e-6
    f = subcarrier_frequencies(16, 30e3, device="cpu")
    ref = cir_to_ofdm_channel(f, a[:, None, None, None, :, :, None], tau[:, None, None, :])
    got = sp._ofdm_response(a, tau, f)
    torch.testing.assert_close(got, ref[:, 0, 0, 0, :, 0, :], rtol=1e-4, atol=1e-4)


# ----------------------------------------------------------------------------- validation

@pytest.mark.parametrize("kwargs,match", [
    (dict(model="F"), r"model: expected one of \['A', 'B', 'C', 'D', 'E'\], got 'F'"),
    (dict(n_ant=0), r"n_ant: expected an integer in \[1, inf\], got 0"),
    (dict(n_sc=0), r"n_sc: expected an integer in \[1, inf\], got 0"),
    (dict(array="upa", n_rows=3), r"n_rows: expected a divisor of n_ant=8.*got 3"),
    (dict(array="upa"), r"n_rows: array='upa' needs n_rows"),
    (dict(array="ula", n_rows=2), r"n_rows: a ULA has one row"),
    (dict(array="circle"), r"array: expected one of \['ula', 'upa'\], got 'circle'"),
    (dict(carrier_frequency=0.0), r"carrier_frequency: expected a finite number > 0, got 0.0"),
    (dict(subcarrier_spacing=-30e3), r"subcarrier_spacing: expected a finite number > 0"),
    (dict(delay_spread=0.0), r"delay_spread: expected a finite number > 0"),
    (dict(speed=-1.0), r"speed: expected a finite number >= 0"),
    (dict(spacing="half"), r"spacing: expected a real number, got 'half'"),
    (dict(batch_size=0), r"batch_size: expected an integer in \[1, inf\]"),
    (dict(seed=-1), r"seed: expected an integer in \[0, "),
])
def test_cdl_validation(kwargs, match):
    args = dict(SMALL)
    args.update(kwargs)
    with pytest.raises(ConfigError, match=match):
        generate_cdl(4, **args)


def test_num_validation():
    with pytest.raises(ConfigError, match=r"num: expected an integer in \[1, inf\], got 0"):
        generate_cdl(0, **SMALL)
    with pytest.raises(ConfigError, match=r"num: expected an integer"):
        generate_scenario(2.5, **SMALL)


def test_scenario_validation():
    with pytest.raises(ConfigError, match=r"scenario: expected one of \['umi', 'uma', 'rma', 'inh'\], got 'inf'"):
        generate_scenario(2, scenario="inf", **SMALL)
    with pytest.raises(ConfigError, match=r"o2i_model: expected one of \['low', 'high'\]"):
        generate_scenario(2, o2i_model="medium", **SMALL)
    with pytest.raises(ConfigError, match=r"normalize: expected a bool"):
        generate_scenario(2, normalize="yes", **SMALL)
    with pytest.raises(ConfigError, match=r"carrier_frequency"):
        generate_scenario(2, carrier_frequency=-3.5e9, **SMALL)


def test_multiuser_validation():
    with pytest.raises(ConfigError, match=r"n_users: expected an integer in \[1, inf\], got 0"):
        generate_multiuser(2, n_users=0)
    with pytest.raises(ConfigError, match=r"source: expected one of .*got 'tdl'"):
        generate_multiuser(2, n_users=2, source="tdl")
    with pytest.raises(ConfigError, match=r"scenario: expected one of"):
        generate_multiuser(2, n_users=2, source="scenario", scenario="inf")
    with pytest.raises(ConfigError, match=r"model: expected one of"):
        generate_multiuser(2, n_users=2, source="cdl", model="Z")
    with pytest.raises(ChanlabError, match=r"n_rows"):
        generate_multiuser(2, n_users=2, n_ant=6, array="upa", n_rows=4)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU error")
def test_cuda_without_gpu_is_a_config_error():
    with pytest.raises(ConfigError, match="no CUDA GPU"):
        generate_cdl(2, device="cuda", **SMALL)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_output_device():
    h = generate_cdl(4, device="cuda", **SMALL)
    assert h.device.type == "cuda"
    assert torch.equal(h, generate_cdl(4, device="cuda", **SMALL))
    g = generate_scenario(3, device="cuda", **SMALL)
    assert g.device.type == "cuda"
    assert math.isclose(_mean_power(g, (1, 2)).mean().item(), 1.0, rel_tol=1e-3)


# ------------------------------------------------------------------- time sequences


def _lag_correlation(h: torch.Tensor, lag: int) -> float:
    """|E[h_t^H h_{t+lag}]| / E[|h|^2] over samples, antennas and subcarriers."""
    a, b = h[:, : h.shape[1] - lag], h[:, lag:]
    return float((a.conj() * b).sum().abs() / (a.abs().square().sum()))


@pytest.mark.parametrize("gen, kwargs", [
    (generate_cdl, dict(model="C")),
    (generate_scenario, dict(scenario="umi")),
])
def test_time_sequences_follow_speed(gen, kwargs):
    common = dict(n_ant=4, n_sc=16, n_time=6, time_step=2e-3, seed=3, show_progress=False, **kwargs)
    still = gen(8, speed=0.0, **common)
    assert still.shape == (8, 6, 4, 16)
    # nobody moves: every snapshot equals the first
    assert torch.allclose(still, still[:, :1].expand_as(still), atol=1e-5)
    moving = gen(8, speed=30.0, **common)
    # 30 m/s at 3.5 GHz: Doppler up to 350 Hz, so 10 ms (lag 5) decorrelates strongly
    assert _lag_correlation(moving, 0) == pytest.approx(1.0)
    assert _lag_correlation(moving, 5) < 0.8
    assert not torch.allclose(moving[:, 0], moving[:, 5], atol=1e-3)


def test_time_arguments_are_checked():
    with pytest.raises(ConfigError, match="n_time"):
        generate_cdl(2, n_ant=2, n_sc=4, n_time=0, show_progress=False)
    with pytest.raises(ConfigError, match="time_step"):
        generate_cdl(2, n_ant=2, n_sc=4, n_time=2, time_step=0.0, show_progress=False)


# ------------------------------------------------------------------- angular diversity


def _peak_angular_bins(h: torch.Tensor) -> int:
    """Distinct strongest DFT-over-antennas bins across samples."""
    return int(torch.fft.fft(h, dim=1).abs().square().sum(-1).argmax(-1).unique().numel())


def test_yaw_spread_spreads_cdl_samples_in_angle():
    kw = dict(model="D", n_ant=16, n_sc=8, seed=2, show_progress=False)
    fixed = generate_cdl(48, **kw)
    spread = generate_cdl(48, yaw_spread=60.0, **kw)
    # CDL-D is LoS-dominant: with the table's fixed angles every sample peaks in one bin
    assert _peak_angular_bins(fixed) == 1
    assert _peak_angular_bins(spread) >= 8
    # rotating the array keeps the power
    assert _mean_power(spread, (0, 1, 2)).item() == pytest.approx(_mean_power(fixed, (0, 1, 2)).item(), rel=0.05)
    assert torch.equal(spread, generate_cdl(48, yaw_spread=60.0, **kw))


def test_yaw_spread_gives_multiuser_cdl_users_distinct_angles():
    h = generate_multiuser(16, n_users=4, source="cdl", model="D", n_ant=16, yaw_spread=60.0, seed=1,
                           show_progress=False)
    assert _peak_angular_bins(h.reshape(-1, 16, 1)) >= 8
    with pytest.raises(ConfigError, match="yaw_spread"):
        generate_cdl(2, n_ant=2, n_sc=4, yaw_spread=200.0, show_progress=False)


def test_inh_drop_geometry():
    """Our indoor-office drop: users 1 m high within 1-20 m of the ceiling BS, in its 120° sector."""
    from chanlab.channels.sionna_phy import INH_BS_HEIGHT, INH_RADII, _inh_topology

    ut, bs, _, _, vel, indoor = _inh_topology(500, 2, 1.5, "cpu")
    r = ut[..., :2].norm(dim=-1)
    assert float(r.min()) >= INH_RADII[0] and float(r.max()) <= INH_RADII[1]
    assert float(torch.atan2(ut[..., 1], ut[..., 0]).abs().max()) <= torch.pi / 3 + 1e-6
    assert torch.allclose(bs[..., 2], torch.tensor(INH_BS_HEIGHT)) and indoor.all()
    torch.testing.assert_close(vel.norm(dim=-1), torch.full((500, 2), 1.5))


def test_multiuser_dual_polarized_upa_layout():
    h = generate_multiuser(40, n_users=2, source="umi", n_ant=16, array="upa", n_rows=2, polarization="dual",
                           seed=1)
    assert h.shape == (40, 2, 16)
    # both polarization blocks (antennas 0-7 and 8-15) carry about half of the power on average
    share = h[..., :8].abs().square().sum() / h.abs().square().sum()
    assert 0.35 < float(share) < 0.65
    # the two ports of one element are distinct channels (cross-polarized), not copies
    assert not torch.allclose(h[..., :8], h[..., 8:])
    with pytest.raises(ConfigError, match="even"):
        generate_multiuser(2, n_users=2, source="umi", n_ant=7, polarization="dual")
    with pytest.raises(ConfigError, match="polarization"):
        generate_multiuser(2, n_users=2, source="umi", n_ant=8, polarization="circular")
