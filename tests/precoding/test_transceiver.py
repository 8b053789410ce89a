import contextlib
import math

import pytest
import torch
from chanlab.core.checkpoint import Checkpointer
from chanlab.core.engine import SimulatedKill, kill_after_epochs
from chanlab.core.errors import ConfigError, DataError
from chanlab.metrics.rates import sum_rate
from chanlab.precoding.baselines import LloydRvqZf, LmmseZf, wmmse_csit, zf_csit
from chanlab.precoding.data import ChannelSplits, normalize_users
from chanlab.precoding.model import FddTransceiver
from chanlab.precoding.training import (TransceiverTraining, history_dict, noise_power, train_transceiver,
                                        transceiver_sum_rate, warmup_cosine)


def _h(n, k=3, m=8, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return torch.complex(torch.randn(n, k, m, generator=gen), torch.randn(n, k, m, generator=gen)) / math.sqrt(2)


def _model(**kw):
    torch.manual_seed(0)
    args = dict(extractor_hidden=(32,), state_dim=8, init_hidden=16, norm_hidden=16, n_layers=2)
    args.update(kw)
    return FddTransceiver(8, 4, 16, [3, 3], **args)


def test_forward_shapes_power_and_loss():
    model = _model()
    w, q_loss = model(_h(5), 0.1, 2.0)
    assert w.shape == (5, 8, 3)
    torch.testing.assert_close(w.abs().square().sum((1, 2)), torch.full((5,), 2.0))
    assert q_loss.ndim == 0 and q_loss >= 0


def test_feedback_bytes_reproduce_the_eval_forward_exactly():
    model = _model().eval()
    h = _h(7, k=4)
    gen = torch.Generator().manual_seed(3)
    y = model.pilots(h, 0.05, 1.0, generator=gen)
    streams = model.feedback(y)
    assert len(streams) == 7 and all(len(row) == 4 for row in streams)
    assert {len(s) for row in streams for s in row} == {1}            # 6 bits -> one byte
    assert model.feedback_bits() == 8
    w = model.precode(streams, 1.0)
    gen = torch.Generator().manual_seed(3)
    w_direct, _ = model(h, 0.05, 1.0, generator=gen)
    torch.testing.assert_close(w, w_direct)
    # truncated feedback (first tier only) is a valid, different precoder
    w1 = model.precode(model.feedback(y, n_tiers=1), 1.0, n_tiers=1)
    assert not torch.allclose(w1, w)


def test_one_model_serves_any_number_of_users():
    model = _model().eval()
    for k in (1, 2, 5):
        assert model(_h(3, k=k), 0.1)[0].shape == (3, 8, k)


def test_individual_feedback_variant_has_one_module_per_user_and_fixed_k():
    model = _model(individual_feedback=True, n_users=3)
    assert len(model.extractors) == 3 and len(model.quantizers) == 3
    w, _ = model(_h(4), 0.1)
    assert w.shape == (4, 8, 3)
    with pytest.raises(DataError, match="exactly 3 users"):
        model(_h(4, k=2), 0.1)
    with pytest.raises(ConfigError, match="n_users"):
        FddTransceiver(8, 4, 16, [3], individual_feedback=True)


def test_codebook_fits_see_as_many_features_per_module_shared_or_individual():
    from chanlab.precoding.training import _sample_features

    h, cfg, gen = _h(400), TransceiverTraining(snr_db=10.0), torch.Generator().manual_seed(0)
    shared = _sample_features(_model(), h, cfg, gen, 90)
    individual = _sample_features(_model(individual_feedback=True, n_users=3), h, cfg, gen, 90)
    assert shared.shape[:2] == (30, 3)           # 90 features for the one shared module
    assert individual.shape[:2] == (90, 3)       # 90 features for each user's module


def test_input_validation():
    model = _model()
    with pytest.raises(DataError, match="n_ant"):
        model(_h(2, m=6), 0.1)
    with pytest.raises(DataError, match="complex"):
        model(torch.randn(2, 3, 8), 0.1)


def test_warmup_cosine_closed_form():
    assert warmup_cosine(0, 100, 10, 1e-3, 1e-5) == pytest.approx(1e-4)
    assert warmup_cosine(9, 100, 10, 1e-3, 1e-5) == pytest.approx(1e-3)
    assert warmup_cosine(10, 100, 10, 1e-3, 1e-5) == pytest.approx(1e-3)
    assert warmup_cosine(55, 100, 10, 1e-3, 1e-5) == pytest.approx(1e-5 + 0.5 * (1e-3 - 1e-5))
    assert warmup_cosine(100, 100, 10, 1e-3, 1e-5) == pytest.approx(1e-5)
    assert noise_power(20.0, 2.0) == pytest.approx(0.02)


def test_stage_schedule_is_the_old_per_step_warmup_cosine():
    """The engine's per-step factor times lr is the learning rate the old loop set at every step."""
    from chanlab.core.engine import warmup_cosine as engine_warmup_cosine

    def old(step, total, warmup, lr, lr_min):
        if warmup > 0 and step < warmup:
            return lr * (step + 1) / warmup
        span = max(total - warmup, 1)
        t = min(max(step - warmup, 0), span) / span
        return lr_min + 0.5 * (lr - lr_min) * (1.0 + math.cos(math.pi * t))

    lr, lr_min, epochs, per_epoch = 1e-3, 1e-5, 7, 5
    for warmup_epochs in (0, 1, 3):
        factor = engine_warmup_cosine(warmup_epochs, epochs, min_ratio=lr_min / lr)
        for epoch in range(epochs):
            for i in range(per_epoch):
                want = old(epoch * per_epoch + i, epochs * per_epoch, warmup_epochs * per_epoch, lr, lr_min)
                assert lr * factor(epoch, i, per_epoch) == pytest.approx(want, rel=1e-12)


@pytest.mark.parametrize("schedule", ["progressive", "e2e"])
def test_training_raises_the_sum_rate_and_freezes_tiers(schedule, one_thread):
    h_train, h_val = _h(600, seed=1), _h(100, seed=2)
    model = _model()
    before = transceiver_sum_rate(model, h_val, 10.0)
    cfg = TransceiverTraining(epochs=6, batch_size=50, lr=1e-2, warmup_epochs=0, snr_db=10.0, replace_every=2,
                              schedule=schedule)
    hist = train_transceiver(model, h_train, h_val, cfg)
    assert len(hist) == (2 if schedule == "progressive" else 1)
    assert hist[0].n_tiers == (1 if schedule == "progressive" else 2)
    after = transceiver_sum_rate(model, h_val, 10.0)
    assert after > before + 0.3
    assert model.quantizer.frozen == ((True, True) if schedule == "progressive" else (False, False))
    assert not model.training


def test_progressive_stage_two_leaves_tier_one_untouched(one_thread):
    h_train, h_val = _h(300, seed=1), _h(50, seed=2)
    model = _model()
    cfg = TransceiverTraining(epochs=2, batch_size=100, warmup_epochs=0, replace_every=1)
    seen = {}
    orig = model.quantizer.unfreeze_tier

    def spy(n):
        if n == 1:       # stage 2 starts: remember tier 1 as stage 1 left it
            seen["tier0"] = model.quantizer.codebooks[0].detach().clone()
        orig(n)

    model.quantizer.unfreeze_tier = spy
    train_transceiver(model, h_train, h_val, cfg)
    torch.testing.assert_close(model.quantizer.codebooks[0].detach(), seen["tier0"])


def test_zf_csit_has_no_interference_and_equal_power():
    h = _h(4, k=3, m=8)
    w = zf_csit(h, 3.0)
    torch.testing.assert_close(w.abs().square().sum(1), torch.ones(4, 3))
    sr = sum_rate(h, w, 0.01)
    assert torch.isfinite(sr).all()


def test_lmmse_zf_approaches_zf_csit_with_full_pilots_at_high_snr():
    h_train, h_test = _h(2000, seed=1), _h(50, seed=2)
    lm = LmmseZf.fit(h_train, n_pilots=8)
    s2 = noise_power(40.0)
    h_hat = lm.estimate(h_test, s2, generator=torch.Generator().manual_seed(0))
    assert ((h_hat - h_test).abs().square().sum() / h_test.abs().square().sum()) < 1e-3
    short = LmmseZf.fit(h_train, n_pilots=3)
    rate = lambda f: float(sum_rate(h_test, f(h_test, s2, 1.0, torch.Generator().manual_seed(0)), s2).mean())  # noqa: E731
    assert rate(short) < rate(lm) <= float(sum_rate(h_test, zf_csit(h_test), s2).mean()) + 0.5


def test_lmmse_zf_refuses_fewer_pilots_than_users():
    lm = LmmseZf.fit(_h(100), n_pilots=2)
    with pytest.raises(ConfigError, match="L >= K"):
        lm(_h(3), 0.1)


def test_lloyd_rvq_zf_quantizes_through_tiers_and_reports_stream_bits():
    h_train, h_test = _h(1500, seed=1), _h(40, seed=2)
    base = LloydRvqZf(8, [4, 4]).fit(h_train, n_iter=5)
    assert base.tier_mse[1] < base.tier_mse[0]
    h_q = base.quantize(h_test)
    assert h_q.shape == h_test.shape and h_q.dtype == h_test.dtype
    assert base.feedback_bits() == 8
    err = (h_q - h_test).abs().square().sum() / h_test.abs().square().sum()
    assert err < 1.0


def test_wmmse_csit_beats_zf_at_low_snr():
    h = _h(20, k=4, m=4, seed=5)
    s2 = noise_power(0.0)
    assert sum_rate(h, wmmse_csit(h, s2, 1.0, 50), s2).mean() > sum_rate(h, zf_csit(h), s2).mean()


def test_normalize_users_and_splits():
    h = _h(5) * torch.tensor([1.0, 10.0, 0.1])[None, :, None]
    g = normalize_users(h)
    torch.testing.assert_close(g.abs().square().mean(-1), torch.ones(5, 3))
    sp = ChannelSplits(g, g, g).users(2)
    assert sp.train.shape == (5, 2, 8)
    with pytest.raises(ConfigError):
        ChannelSplits(g, g, g).users(4)
    with pytest.raises(DataError):
        normalize_users(torch.zeros(1, 1, 4, dtype=torch.complex64))


def test_random_user_counts_train_one_model_for_every_k(one_thread):
    from chanlab.precoding.training import pick_users

    gen = torch.Generator().manual_seed(0)
    h = _h(50, k=5)
    seen = {pick_users(h, (2, 3, 4), gen).shape[1] for _ in range(30)}
    assert seen == {2, 3, 4}
    sub = pick_users(h, (3,), gen)
    # every picked row is one of the drop's own users
    d = (sub[:, :, None, :] - h[:, None, :, :]).abs().sum(-1)
    assert bool((d.min(-1).values == 0).all())
    model = _model()
    cfg = TransceiverTraining(epochs=1, batch_size=50, warmup_epochs=0, users=(2, 3, 4), replace_every=0)
    hist = train_transceiver(model, _h(200, k=5, seed=1), _h(40, k=5, seed=2), cfg)
    assert len(hist) == 2
    with pytest.raises(ConfigError, match="users"):
        train_transceiver(model, _h(20, k=3), _h(20, k=3), TransceiverTraining(epochs=1, users=(4,)))


def test_expansion_adds_trainable_tiers_and_keeps_the_rest(one_thread):
    from chanlab.precoding.training import train_expansion

    model = _model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    cfg = TransceiverTraining(epochs=2, batch_size=50, warmup_epochs=0, lr=1e-2, replace_every=0)
    hist = train_expansion(model, [3], _h(200, seed=1), _h(40, seed=2), cfg)
    assert len(hist) == 1 and hist[0].n_tiers == 3
    assert model.quantizer.tier_bits == (3, 3, 3) and model.feedback_bits() == 16
    after = model.state_dict()
    for k, v in before.items():           # everything but the new tier is unchanged
        torch.testing.assert_close(after[k], v)
    assert not torch.allclose(after["quantizers.0.codebooks.2"], ResidualVQ_init_tier())
    assert all(p.requires_grad for n, p in model.named_parameters() if not n.startswith("quantizers."))


def ResidualVQ_init_tier():
    from chanlab.quant.residual_vq import ResidualVQ

    return ResidualVQ(16, [3, 3, 3], seed=101).codebooks[2].detach()


def test_scalable_transceiver_serves_every_budget_and_user_count(tmp_path):
    from chanlab.precoding.scalable import ScalableTransceiver

    torch.manual_seed(0)
    model = FddTransceiver(8, 4, 16, [4, 4, 4], extractor_hidden=(32,), state_dim=8, init_hidden=16, norm_hidden=16,
                           n_layers=1)
    st = ScalableTransceiver(model)
    h = _h(6, k=4)
    y = st.receive(h, 0.1, generator=torch.Generator().manual_seed(1))
    for bits in (2, 4, 7, 12):
        streams = st.feedback(y, bits=bits)
        assert st.quantizer(bits).total_bits() == bits
        assert {len(s) for row in streams for s in row} == {math.ceil(bits / 8)}
        w = st.precode(streams, power=2.0, bits=bits)
        assert w.shape == (6, 8, 4)
        torch.testing.assert_close(w.abs().square().sum((1, 2)), torch.full((6,), 2.0))
    for k in (1, 3):
        assert st.precode(st.feedback(y[:, :k], bits=8), bits=8).shape == (6, 8, k)
    with pytest.raises(ConfigError, match="expansion"):
        st.quantizer(13)
    st.save(tmp_path / "st.pt")
    again = ScalableTransceiver.load(tmp_path / "st.pt")
    torch.testing.assert_close(again.precode(st.feedback(y, bits=7), bits=7), st.precode(st.feedback(y, bits=7), bits=7))
    with pytest.raises(ConfigError, match="individual"):
        ScalableTransceiver(_model(individual_feedback=True, n_users=3))


@pytest.mark.parametrize("bad, words", [
    (b"\x01", "got one bytes object"),                # one user's stream
    ([b"\x01", b"\x02"], "streams[0]: expected one drop's list"),      # one drop without the outer list
    ([[b"\x01", 3]], "streams[0][1]: expected a user's byte string, got int"),
    (7, "got int"),
])
def test_precode_says_what_it_expected_for_a_misshapen_feedback(bad, words):
    from chanlab.core.errors import BitstreamError
    from chanlab.precoding.scalable import ScalableTransceiver

    model = _model().eval()
    for precode in (lambda x: model.precode(x, 1.0), lambda x: ScalableTransceiver(model).precode(x, bits=6)):
        with pytest.raises(BitstreamError) as e:
            precode(bad)
        assert words in str(e.value) and "\n" not in str(e.value)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_transceiver_trains_and_feeds_back_on_cuda():
    from chanlab.precoding.scalable import ScalableTransceiver

    model = _model().cuda()
    h = _h(64).cuda()
    cfg = TransceiverTraining(epochs=1, batch_size=32, warmup_epochs=0, replace_every=1)
    train_transceiver(model, h, h[:16], cfg)
    st = ScalableTransceiver(model)
    y = st.receive(h[:4], 0.1)
    w = st.precode(st.feedback(y, bits=4), bits=4)
    assert w.is_cuda and w.shape == (4, 8, 3)


# ------------------------------------------------------------------------------------ exact resume

def _resume_setup(users=()):
    h_train, h_val = _h(48, k=4, seed=1), _h(16, k=4, seed=2)
    cfg = TransceiverTraining(epochs=4, batch_size=20, lr=1e-2, warmup_epochs=1, snr_db=10.0, replace_every=2,
                              users=users)
    return h_train, h_val, cfg


def _train(tmp_path, folder, users=(), kill_in=None):
    """Progressive training with per-stage checkpoints every 2 epochs in ``tmp_path/folder``;
    ``kill_in=(stage name, k)`` kills that stage after its epoch ``k``."""
    h_train, h_val, cfg = _resume_setup(users)
    model = _model()
    stack = contextlib.ExitStack()

    def checkpoint(n):
        if kill_in is not None and n == kill_in[0]:
            stack.enter_context(kill_after_epochs(kill_in[1]))
        return Checkpointer(tmp_path / folder, name=f"{n}.pt", every_epochs=2, every_seconds=None)

    with stack:
        hist = train_transceiver(model, h_train, h_val, cfg, seed=3, checkpoint=checkpoint)
    return model, history_dict(hist)


def _assert_same(a, b):
    (ma, ha), (mb, hb) = a, b
    assert ha == hb
    sa, sb = ma.state_dict(), mb.state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k


@pytest.mark.parametrize("users, kill_in", [
    ((), "transceiver-stage1:3"),          # stage 1, after an epoch that was not saved
    ((), "transceiver-stage2:2"),          # stage 2, right after a save
    ((), "transceiver-stage2:3"),          # stage 2, one epoch of work lost
    ((2, 3, 4), "transceiver-stage2:3"),   # random user counts: the users generator resumes too
])
def test_progressive_training_resumes_exactly_after_a_kill(tmp_path, one_thread, users, kill_in):
    stage, k = kill_in.split(":")
    whole = _train(tmp_path, "whole", users)
    with pytest.raises(SimulatedKill):
        _train(tmp_path, "killed", users, kill_in=(stage, int(k)))
    assert (tmp_path / "killed" / f"{stage}.pt").exists()         # the kill came after a save of that stage
    resumed = _train(tmp_path, "killed", users)
    _assert_same(resumed, whole)
    assert [len(h["val_sum_rate"]) for h in whole[1]] == [4, 4]


def test_killed_twice_in_both_stages_still_resumes_exactly(tmp_path, one_thread):
    users = (2, 3)
    whole = _train(tmp_path, "whole", users)
    with pytest.raises(SimulatedKill), kill_after_epochs(1):      # stage 1 dies before any save
        _train(tmp_path, "killed", users)
    with pytest.raises(SimulatedKill):
        _train(tmp_path, "killed", users, kill_in=("transceiver-stage1", 3))
    with pytest.raises(SimulatedKill):
        _train(tmp_path, "killed", users, kill_in=("transceiver-stage2", 1))
    _assert_same(_train(tmp_path, "killed", users), whole)


def test_expansion_resumes_exactly_after_a_kill(tmp_path, one_thread):
    from chanlab.precoding.training import train_expansion

    h_train, h_val, cfg = _resume_setup(users=(2, 3))

    def expand(folder, kill=None):
        model = _model()
        ck = lambda n: Checkpointer(tmp_path / folder, name=f"{n}.pt", every_epochs=2, every_seconds=None)  # noqa: E731
        with kill_after_epochs(kill) if kill else contextlib.nullcontext():
            hist = train_expansion(model, [3, 3], h_train, h_val, cfg, seed=5, checkpoint=ck)
        return model, history_dict(hist)

    whole = expand("whole")
    with pytest.raises(SimulatedKill):
        expand("killed", kill=3)
    _assert_same(expand("killed"), whole)


def test_snr_smoke_with_a_last_batch_of_one_drop(tmp_path, one_thread):
    """Regression: 65 training drops in batches of 32 left a last batch of one drop, which the
    Sohrabi DNN's BatchNorm refused in training mode; the engine merges it into the one before."""
    import chanlab.experiments  # noqa: F401  (registers the experiments)
    from chanlab.core.run import run_experiment
    from chanlab.experiments.precoding import _SMOKE

    assert 65 % _SMOKE["training.batch_size"] == 1
    res = run_experiment("precoding/snr", preset="smoke", overrides=["data.n_train=65"], out=tmp_path / "r",
                         device="cpu")
    assert res.results["n_train"] == 65
    assert all(math.isfinite(x) for x in res.results["sum_rate"]["sohrabi"])
