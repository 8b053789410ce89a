import pytest
import torch

from chanlab.channels.lscm import LscmPanel, dbm_to_mw, mw_to_dbm
from chanlab.channels.synthetic_caps import synthetic_caps
from chanlab.core.errors import CheckpointError, ConfigError, DataError
from chanlab.gridization import ChannelSpaceGridizer, CsgTraining
from chanlab.gridization.training import STRATEGIES


@pytest.fixture(scope="module")
def data():
    panel = LscmPanel(n_y=4, n_z=2, beam_azimuths_deg=(-40.0, -15.0, 15.0, 40.0), beam_tilts_deg=(5.0, 15.0),
                      n_elevation=6, n_azimuth=8)
    a = panel.beam_pattern()
    ds = synthetic_caps(n_grids=5, samples_per_grid=20, n_angles=panel.n_angles, sparsity=2, scale=0.2,
                        generator=torch.Generator().manual_seed(0))
    return a, ds, mw_to_dbm(ds.rsrp_mw(a)).float()


def tiny(a, scheme="pida", **kw):
    return ChannelSpaceGridizer(5, 2, a, training=CsgTraining(scheme=scheme, pretrain_epochs=3, epochs=3,
                                                              batch_size=32), hidden=16, **kw)


def test_fit_assign_and_grid_outputs(data):
    a, ds, y = data
    g = tiny(a).fit(y)
    labels = g.assign(y)
    assert labels.shape == (100,) and labels.dtype == torch.int64
    assert torch.equal(labels, g.labels_)
    centers = g.grid_centers()
    assert centers.shape == (5, a.shape[1]) and ((centers > 0).sum(1) <= 2).all()
    caps = g.grid_caps()
    emb = g.embed(y)
    for k in range(5):
        if (labels == k).any():
            torch.testing.assert_close(caps[k], emb[labels == k].mean(0), rtol=1e-5, atol=1e-12)
    assert len(g.history_.active_ratio) == 3 + 1


def test_predict_rsrp_is_eq_29(data):
    a, ds, y = data
    g = tiny(a).fit(y)
    other = a.flip(0) * 3
    pred = g.predict_rsrp(other)
    assert pred.shape == (5, a.shape[0])
    active = g.grid_sizes_ > 0
    torch.testing.assert_close(pred[active], mw_to_dbm(g.grid_caps()[active] @ other.T))
    assert torch.isinf(pred[~active]).all()
    with pytest.raises(DataError, match="angular grid"):
        g.predict_rsrp(torch.rand(3, 7))


def test_save_load_round_trip(data, tmp_path):
    a, ds, y = data
    g = tiny(a).fit(y)
    path = g.save(tmp_path / "grid.pt")
    h = ChannelSpaceGridizer.load(path)
    assert torch.equal(h.assign(y), g.assign(y))
    torch.testing.assert_close(h.predict_rsrp(a), g.predict_rsrp(a))
    assert h.history_.active_ratio == g.history_.active_ratio
    torch.save({"format": "other"}, tmp_path / "bad.pt")
    with pytest.raises(CheckpointError):
        ChannelSpaceGridizer.load(tmp_path / "bad.pt")


def test_input_validation(data):
    a, ds, y = data
    g = tiny(a)
    with pytest.raises(DataError, match="8 beams"):
        g.fit(y[:, :7])
    bad = y.clone()
    bad[3, 2] = float("nan")
    with pytest.raises(DataError, match="NaN"):
        g.fit(bad)
    with pytest.raises(DataError, match="mW"):
        g.fit(dbm_to_mw(y.double()))
    with pytest.raises(ConfigError, match="not fitted"):
        g.assign(y)
    with pytest.raises(ConfigError):
        ChannelSpaceGridizer(5, 2, None)
    with pytest.raises(ConfigError, match="sparsity"):
        ChannelSpaceGridizer(5, 8, a)
    with pytest.raises(ConfigError, match="scheme"):
        CsgTraining(scheme="fancy")


@pytest.mark.parametrize("scheme", list(STRATEGIES))
def test_every_strategy_trains(data, scheme):
    a, ds, y = data
    g = tiny(a, scheme=scheme).fit(y)
    h = g.history_
    assert len(h.l1) == 3 and all(torch.isfinite(torch.tensor(h.l1)))
    assert len(h.pretrain_l1) == (3 if STRATEGIES[scheme][0] else 0)


def _one_step_encoder(a, y, scheme, w2):
    from chanlab.gridization.model import CsgAutoencoder
    from chanlab.gridization.training import _step

    torch.manual_seed(0)
    m = CsgAutoencoder(a, 5, 2, caps_scale=1e-4, input_mean=-80.0, input_std=10.0, hidden=16)
    opt = torch.optim.AdamW(m.parameters(), lr=1e-2)
    _step(m, opt, y, CsgTraining(scheme=scheme, w2=w2))
    return [p.detach().clone() for p in m.encoder.parameters()], m.quantizer.weight.detach().clone()


@pytest.mark.parametrize("scheme", ["detached", "pida"])
def test_detached_updates_keep_the_quantization_loss_off_the_encoder(data, scheme):
    a, ds, y = data
    enc0, _ = _one_step_encoder(a, y, scheme, w2=0.0)
    enc1, cb1 = _one_step_encoder(a, y, scheme, w2=1e3)
    for p0, p1 in zip(enc0, enc1):
        torch.testing.assert_close(p0, p1)


def test_naive_updates_let_the_quantization_loss_reach_the_encoder(data):
    a, ds, y = data
    enc0, _ = _one_step_encoder(a, y, "naive", w2=0.0)
    enc1, _ = _one_step_encoder(a, y, "naive", w2=1e3)
    assert any(not torch.allclose(p0, p1) for p0, p1 in zip(enc0, enc1))


def test_pida_assigns_with_fresh_embeddings(data, monkeypatch):
    """Algorithm 1, line 17: the codebook step sees the embeddings of the updated encoder."""
    from chanlab.gridization import training
    from chanlab.gridization.model import CsgAutoencoder

    a, ds, y = data
    torch.manual_seed(0)
    m = CsgAutoencoder(a, 5, 2, caps_scale=1e-4, input_mean=-80.0, input_std=10.0, hidden=16)
    opt = torch.optim.AdamW(m.parameters(), lr=1e-2)
    seen = []
    original = m.quantizer.loss
    monkeypatch.setattr(m.quantizer, "loss", lambda x, assignments=None: seen.append(x.clone()) or original(x))
    before = m.embed(y).detach()
    training._step(m, opt, y, CsgTraining(scheme="pida"))
    after = m.embed(y).detach()
    assert len(seen) == 1 and not seen[0].requires_grad
    torch.testing.assert_close(seen[0], after)
    assert not torch.allclose(seen[0], before)


def test_killed_training_resumes_to_the_same_result(data, tmp_path):
    """A run stopped after 2 of 3 epochs and resumed from its checkpoints ends as an uninterrupted one."""
    from chanlab.core.checkpoint import Checkpointer

    a, ds, y = data

    def fit(folder, epochs):
        g = ChannelSpaceGridizer(5, 2, a, training=CsgTraining(pretrain_epochs=3, epochs=epochs, batch_size=32),
                                 hidden=16)
        return g.fit(y, checkpoint=lambda phase: Checkpointer(tmp_path / folder, name=f"{phase}.pt"))

    full = fit("full", 3)
    fit("killed", 2)
    resumed = fit("killed", 3)
    assert resumed.history_.active_ratio == full.history_.active_ratio
    assert resumed.history_.l1 == full.history_.l1
    assert torch.equal(resumed.assign(y), full.assign(y))
