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


def _fit(a, y, scheme, pretrain_epochs, epochs, folder=None):
    from chanlab.core.checkpoint import Checkpointer

    g = ChannelSpaceGridizer(5, 2, a, training=CsgTraining(scheme=scheme, pretrain_epochs=pretrain_epochs,
                                                           epochs=epochs, batch_size=32), hidden=16, seed=1)
    checkpoint = None if folder is None else \
        (lambda phase: Checkpointer(folder, name=f"{phase}.pt", every_epochs=2, every_seconds=None))
    return g.fit(y, checkpoint=checkpoint)


def _assert_same_fit(got, want, y):
    assert got.history_.to_dict() == want.history_.to_dict()
    s_got, s_want = got.model.state_dict(), want.model.state_dict()
    assert s_got.keys() == s_want.keys()
    for k in s_want:
        assert torch.equal(s_got[k], s_want[k]), k
    assert torch.equal(got.labels_, want.labels_)
    assert torch.equal(got.assign(y), want.assign(y))


_UNINTERRUPTED = {}


# (scheme, pretrain epochs, train epochs, the epochs each successive run is killed after, whether the
# train phase had saved before the last kill). Both phases save every 2 epochs; kill_after_epochs counts each phase's own epochs, so
# a kill at k >= pretrain epochs lets pretraining finish and kills the train phase after its epoch k.
@pytest.mark.parametrize("scheme, pre, epochs, kills, train_saved", [
    ("pida", 3, 5, (1,), False),                 # inside pretraining, before its first save
    ("pida", 3, 5, (2,), False),                 # inside pretraining, right after a save
    ("pida", 3, 5, (3,), True),                  # pretraining done; train phase killed after 3 (saved at 2)
    ("pida", 3, 5, (4,), True),                  # train phase, right after a save
    ("pida", 3, 5, (2, 3, 4), True),             # killed in pretraining, then twice in the train phase
    ("pida", 1, 4, (1,), False),                 # train phase killed before its first save: the finished
                                                 # pretraining reloads and k-means must redo the same init
    ("asynchronous", 2, 5, (3,), True),
    ("naive", 0, 5, (3,), True),                 # no pretraining, no k-means
])
def test_killed_training_resumes_exactly(data, tmp_path, scheme, pre, epochs, kills, train_saved):
    """Runs killed inside either phase and resumed from their checkpoints end as an uninterrupted run:
    the same history (active_ratio[0] included), weights and assignments."""
    from chanlab.core.engine import SimulatedKill, kill_after_epochs

    a, ds, y = data
    key = (scheme, pre, epochs)
    if key not in _UNINTERRUPTED:
        _UNINTERRUPTED[key] = _fit(a, y, scheme, pre, epochs)
    for kill in kills:
        with pytest.raises(SimulatedKill), kill_after_epochs(kill):
            _fit(a, y, scheme, pre, epochs, tmp_path)
    assert (tmp_path / "train.pt").is_file() == train_saved
    resumed = _fit(a, y, scheme, pre, epochs, tmp_path)
    _assert_same_fit(resumed, _UNINTERRUPTED[key], y)
    assert len(resumed.history_.active_ratio) == epochs + 1
    assert len(resumed.history_.pretrain_l1) == pre


def test_a_finished_checkpointed_run_reloads_without_training(data, tmp_path):
    a, ds, y = data
    first = _fit(a, y, "pida", 2, 3, tmp_path)
    again = _fit(a, y, "pida", 2, 3, tmp_path)
    _assert_same_fit(again, first, y)
