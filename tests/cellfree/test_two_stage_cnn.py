import math

import pytest
import torch

from chanlab.cellfree.two_stage_cnn import (
    MultiBranchResidualCNN, TwoStageCNN, evaluate_sum_rate, gain_fraction_clusters, link_gains,
    predict_beamformers, train_two_stage_cnn,
)
from chanlab.channels.cellfree import generate_cellfree, noise_power_for_snr
from chanlab.classical.wmmse import average_serving_aps, serving_aps
from chanlab.core.checkpoint import Checkpointer
from chanlab.core.engine import SimulatedKill, kill_after_epochs
from chanlab.core.errors import ConfigError, DataError
from chanlab.metrics.flops import count_flops
from chanlab.metrics.rates import sum_rate

Q, M, I = 4, 2, 3
SIGMA2 = noise_power_for_snr(10.0)
SMALL = dict(channels=8, n_blocks=1, head_layers=2, head_width=8)


pytestmark = pytest.mark.usefixtures("one_thread")


def _h(num=8, seed=0, dtype=torch.complex64):
    return generate_cellfree(num, n_aps=Q, n_ant=M, n_users=I, seed=seed, dtype=dtype).h_hat


def _model(seed=0, **kw):
    torch.manual_seed(seed)
    return TwoStageCNN(Q, M, I, noise_power=SIGMA2, **{**SMALL, **kw})


def _ap_power(v):
    return (v.real.square() + v.imag.square()).sum((1, 3))


# --- the clustering rule --------------------------------------------------------------------------


def test_gain_fraction_rule_by_hand():
    g = torch.tensor([[[1.0, 5.0, 3.0, 1.0]]])  # one user, APs in arbitrary order
    assert gain_fraction_clusters(g, 0.5).tolist() == [[[False, True, False, False]]]
    assert gain_fraction_clusters(g, 0.6).tolist() == [[[False, True, True, False]]]
    three = gain_fraction_clusters(g, 0.85)  # 5 + 3 < 8.5: one of the two equal APs joins
    assert int(three.sum()) == 3 and bool(three[0, 0, 1]) and bool(three[0, 0, 2])
    assert gain_fraction_clusters(g, 1.0).all()
    h = _h(4)
    assert torch.equal(gain_fraction_clusters(h, 0.9), gain_fraction_clusters(link_gains(h), 0.9))
    mask = gain_fraction_clusters(h, 0.9)
    assert mask.any(-1).all()  # every user keeps its strongest AP
    assert torch.equal(mask.gather(-1, link_gains(h).argmax(-1, keepdim=True)).squeeze(-1),
                       torch.ones(4, I, dtype=torch.bool))
    with pytest.raises(ConfigError):
        gain_fraction_clusters(g, 0.0)


# --- forward ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.complex64, torch.complex128])
def test_shapes_power_and_exact_zeros(dtype):
    model = _model(p_max=2.0)
    h = _h(6, dtype=dtype)
    out = model(h)
    assert out["v"].shape == (6, I, Q, M) and out["v"].dtype == dtype
    assert out["mask"].shape == (6, I, Q) and out["mask"].dtype == torch.bool
    assert out["prob"].shape == out["logits"].shape == (6, I, Q)
    assert bool(((out["prob"] > 0) & (out["prob"] < 1)).all())
    assert model.cluster_features(h).shape == (6, M, Q, I)
    assert model.beam_features(h, out["mask"]).shape == (6, 2 * M + 2, Q, I)

    v, mask = out["v"], out["mask"]
    assert bool((_ap_power(v) <= 2.0).all())  # C1, exactly in the working precision
    assert bool((v[~mask] == 0).all())  # C2: blocks outside the cluster are exactly zero
    assert torch.equal(serving_aps(v), mask)
    assert torch.equal(average_serving_aps(v), mask.sum(-1).to(v.real.dtype).mean(-1))
    assert mask.any(-1).all()  # no user without an AP

    # The same with a sparse mask, and with trained-looking (nonzero) beamforming branches.
    with torch.no_grad():
        for p in model.beam_net.heads[-1].parameters():
            p.normal_(0.0, 0.5)
    sparse = torch.rand(6, I, Q, generator=torch.Generator().manual_seed(0)) < 0.4
    v = model.beamformers(h, sparse)
    assert (~sparse).any() and bool((_ap_power(v) <= 2.0).all())
    assert bool((v[~sparse] == 0).all()) and torch.equal(serving_aps(v), sparse)
    assert torch.equal(average_serving_aps(v), sparse.sum(-1).to(v.real.dtype).mean(-1))


def test_hard_mask_thresholds_and_keeps_strongest():
    model = _model()
    h = _h(5)
    logits = torch.full((5, I, Q), -3.0)
    only_strongest = model.hard_mask(h, logits)
    assert torch.equal(only_strongest.sum(-1), torch.ones(5, I, dtype=torch.long))
    assert model.hard_mask(h, torch.full((5, I, Q), 0.1)).all()
    model_hi = _model(threshold=0.9)
    assert torch.equal(model_hi.hard_mask(h, torch.full((5, I, Q), 0.1)), only_strongest)


def test_noise_power_reference_round_trip():
    model = _model()
    assert math.isclose(model.noise_power, SIGMA2, rel_tol=1e-12)
    model.set_noise_power(0.5)
    assert math.isclose(float(model.log_snr_ref), math.log10(1.0 / 0.5), rel_tol=1e-12)
    other = TwoStageCNN.from_spec(model.spec)
    other.load_state_dict(model.state_dict())
    assert math.isclose(other.noise_power, 0.5, rel_tol=1e-12)
    with pytest.raises(ConfigError):
        model.set_noise_power(0.0)


def test_gradients_are_separate_per_stage():
    model = _model()
    model.train()
    h = _h(8)
    out = model(h)
    (-sum_rate(h, out["v"], SIGMA2).mean()).backward()
    assert all(p.grad is None for p in model.cluster_net.parameters())
    grads = [p.grad for p in model.beam_net.parameters()]
    assert all(g is not None for g in grads) and sum(float(g.abs().sum()) for g in grads) > 0
    # The last layer starts at zero; once it is not, the gradient reaches the stem too.
    model.zero_grad(set_to_none=True)
    with torch.no_grad():
        for p in model.beam_net.heads[-1].parameters():
            p.normal_(0.0, 0.1)
    (-sum_rate(h, model(h)["v"], SIGMA2).mean()).backward()
    assert float(model.beam_net.stem[0].weight.grad.abs().sum()) > 0

    model.zero_grad(set_to_none=True)
    targets = model.cluster_targets(h).float()
    torch.nn.functional.binary_cross_entropy_with_logits(model.cluster_logits(h), targets).backward()
    assert all(p.grad is None for p in model.beam_net.parameters())
    assert sum(float(p.grad.abs().sum()) for p in model.cluster_net.parameters()) > 0


def test_input_checks():
    model = _model()
    with pytest.raises(DataError):
        model(_h(2).abs())
    with pytest.raises(DataError):
        model(torch.zeros(2, I, Q + 1, M, dtype=torch.complex64))
    with pytest.raises(DataError):
        model.beamformers(_h(2), torch.ones(2, I, Q))  # not a bool mask
    with pytest.raises(ConfigError):
        TwoStageCNN(Q, M, I, kernel=4)
    with pytest.raises(ConfigError):
        TwoStageCNN(Q, M, I, cluster_fraction=1.5)
    with pytest.raises(ConfigError):
        train_two_stage_cnn(model, _h(4), None, -1.0, epochs=1)


def test_predict_matches_eval_forward_and_restores_modes():
    model = _model()
    model.train()
    model.cluster_net.eval()
    h = _h(10)
    v, mask = predict_beamformers(model, h, batch_size=3, return_mask=True)
    assert model.beam_net.training and not model.cluster_net.training
    model.eval()
    with torch.no_grad():
        out = model(h)
    assert torch.allclose(v, out["v"], atol=1e-6) and torch.equal(mask, out["mask"])
    # Imperfect CSI treated as perfect: design on h_hat, rate on the true channel.
    drop = generate_cellfree(10, n_aps=Q, n_ant=M, n_users=I, seed=3, error_level=0.3)
    res = evaluate_sum_rate(model, drop.h_hat, SIGMA2, h_true=drop.h)
    v_hat = predict_beamformers(model, drop.h_hat)
    assert math.isclose(res["sum_rate"], float(sum_rate(drop.h, v_hat, SIGMA2).mean()), rel_tol=1e-6)
    assert math.isclose(res["n_ave"], float(average_serving_aps(v_hat).mean()), rel_tol=1e-6)


# --- training -------------------------------------------------------------------------------------


def test_untrained_beamforming_is_per_ap_mrt():
    model = _model().eval()
    h = _h(6)
    with torch.no_grad():
        out = model(h)
    mask = out["mask"]
    mrt = torch.where(mask.unsqueeze(-1), h, 0)
    mrt = mrt / _ap_power(mrt).sqrt()[:, None, :, None]  # every AP at full power
    assert torch.allclose(out["v"], mrt, atol=1e-5)


def test_tiny_training_improves_the_sum_rate():
    h_train, h_val = _h(64, seed=1), _h(64, seed=2)
    model = _model(seed=3)
    before_train = evaluate_sum_rate(model, h_train, SIGMA2)["sum_rate"]
    before = evaluate_sum_rate(model, h_val, SIGMA2)["sum_rate"]
    hist = train_two_stage_cnn(model, h_train, h_val, SIGMA2, epochs=20, batch_size=16, lr=3e-3,
                               seed=0)
    after = evaluate_sum_rate(model, h_val, SIGMA2)
    assert evaluate_sum_rate(model, h_train, SIGMA2)["sum_rate"] > before_train + 0.5
    assert bool((_ap_power(predict_beamformers(model, h_val)) <= 1.0).all())
    assert after["sum_rate"] > before + 0.2
    assert len(hist.cluster_train_loss) == len(hist.cluster_val_loss) == 20
    assert len(hist.train_rate) == len(hist.val_rate) == 20
    assert math.isclose(after["sum_rate"], max(hist.val_rate), rel_tol=1e-5)  # best kept
    assert hist.cluster_val_accuracy[hist.best_cluster_epoch] > 0.7
    assert not model.training
    assert math.isclose(model.noise_power, SIGMA2, rel_tol=1e-9)


# stage 1 runs 3 epochs, stage 2 runs 4, saves every 2: a kill after epoch 2 hits stage 1, after
# epoch 3 stage 2 (stage 1 finishes its 3 epochs first); then the stage resumes from its epoch 2.
@pytest.mark.parametrize("killed_after, stage", [(2, "clustering"), (3, "beamforming")])
def test_a_killed_run_resumes_exactly(tmp_path, killed_after, stage):
    h_train, h_val = _h(16, seed=4), _h(8, seed=5)

    def run(folder):
        model = _model(seed=7)
        ckpt = Checkpointer(folder, "x.pt", every_epochs=2, every_seconds=None)
        hist = train_two_stage_cnn(model, h_train, h_val, SIGMA2, epochs=4, batch_size=8, lr=1e-3, seed=1,
                                   cluster_epochs=3, checkpointer=ckpt)
        return model, hist

    full, h_full = run(tmp_path / "a")
    assert sorted(p.name for p in (tmp_path / "a").glob("*.pt") if ".best-" not in p.name) == \
        ["x-clustering.pt", "x.pt"]
    with pytest.raises(SimulatedKill), kill_after_epochs(killed_after):
        run(tmp_path / "b")
    assert (tmp_path / "b" / "x-clustering.pt").exists()               # saved at epoch 2 of stage 1
    assert (tmp_path / "b" / "x.pt").exists() == (stage == "beamforming")
    resumed, h_resumed = run(tmp_path / "b")
    for (name, a), b in zip(full.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), name
    assert h_full.to_dict() == h_resumed.to_dict()
    assert len(h_full.val_rate) == 4 and len(h_full.cluster_val_loss) == 3
    assert not resumed.training


def test_a_last_batch_of_one_drop_trains():
    model = _model()
    # 17 drops in batches of 8 leave one drop over: it joins the batch before it (BatchNorm)
    hist = train_two_stage_cnn(model, _h(17, seed=1), None, SIGMA2, epochs=2, batch_size=8, seed=0,
                               cluster_epochs=1)
    assert len(hist.cluster_train_loss) == 1 and len(hist.train_rate) == 2
    assert all(math.isfinite(x) for x in hist.cluster_train_loss + hist.train_rate)
    assert hist.best_cluster_epoch == 0 and hist.best_epoch == 1 and hist.val_rate == []


# --- complexity -----------------------------------------------------------------------------------


def test_multiplication_count_by_hand():
    q, i, m = 2, 3, 2
    model = TwoStageCNN(q, m, i, channels=4, n_blocks=1, kernel=3, head_layers=3, head_width=5)
    hw = q * i
    cluster = hw * m * 4 * 9 + 2 * hw * 16 * 9 + hw * (4 * 5 + 25 + 5)  # stem, block, 1 branch
    # 2M + 1 = 5 branches
    beam = hw * (2 * m + 2) * 4 * 9 + 2 * hw * 16 * 9 + hw * (5 * 4 * 5 + 5 * 25 + 5 * 5)
    parts = model.multiplication_breakdown()
    assert parts == {"cluster_features": 2 * 12, "cluster_cnn": cluster, "beam_features": 6 * 5,
                     "beam_cnn": beam, "beam_skip": 2 + 3 * 6 + 2 * 12, "power_projection": 6 * 12 + 2}
    assert cluster == 2460 and beam == 4524
    assert model.multiplication_count() == 24 + 2460 + 30 + 4524 + 44 + 74 == 7156
    # The convolution parts agree with torch's own counter (a multiply-add is 2 FLOPs).
    h = torch.randn(1, i, q, m, dtype=torch.complex64)
    model.eval()
    assert count_flops(model.cluster_net, model.cluster_features(h)) == 2 * cluster
    mask = torch.ones(1, i, q, dtype=torch.bool)
    assert count_flops(model.beam_net, model.beam_features(h, mask)) == 2 * beam


def test_receptive_field():
    assert TwoStageCNN(16, 4, 16).receptive_field() == 19  # covers the paper's 16 x 16 grid
    assert TwoStageCNN(2, 1, 2, n_blocks=0, kernel=5).receptive_field() == 5


def test_single_layer_branches_count():
    net = MultiBranchResidualCNN(3, 4, 0, 5, 2, 1, 7)
    assert net.multiplications(2, 3) == 6 * 3 * 4 * 25 + 6 * 4 * 2
    assert count_flops(net, torch.randn(1, 3, 2, 3)) == 2 * net.multiplications(2, 3)


# --- CUDA -----------------------------------------------------------------------------------------


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_forward_and_training():
    model = _model().cuda()
    h_train, h_val = _h(32, seed=1), _h(16, seed=2)  # data stays on the CPU
    hist = train_two_stage_cnn(model, h_train, h_val, SIGMA2, epochs=2, batch_size=16, seed=0)
    assert len(hist.val_rate) == 2
    out = model(h_val.cuda())
    assert out["v"].is_cuda and bool((_ap_power(out["v"]) <= 1.0).all())
    assert bool((out["v"][~out["mask"]] == 0).all())
    v = predict_beamformers(model, h_val)
    assert v.device.type == "cpu"
    assert torch.allclose(v, out["v"].cpu(), atol=1e-5)
