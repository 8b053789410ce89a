import math

import pytest
import torch

from chanlab.cellfree import (
    RJAPCBN, evaluate_rjapcbn, loss_eq32, project_per_ap_power, sparsity_penalty, train_rjapcbn,
    update_slack_variables,
)
from chanlab.cellfree.model import ap_power, beamforming_conversion, csi_conversion, rms_pool
from chanlab.channels.cellfree import generate_cellfree, noise_power_for_snr
from chanlab.classical.robust_sinr import worst_case_sum_rate
from chanlab.classical.wmmse import serving_aps
from chanlab.core.checkpoint import Checkpointer
from chanlab.core.engine import SimulatedKill, kill_after_epochs
from chanlab.core.errors import ConfigError, DataError
from chanlab.nn.residual_cnn import ResidualCNN, conv_output_size, size_preserving_padding

Q, M, I = 4, 2, 3
SIGMA2 = noise_power_for_snr(10.0)


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def drops():
    tr = generate_cellfree(64, n_aps=Q, n_ant=M, n_users=I, area=400.0, error_level=0.1, seed=1)
    va = generate_cellfree(64, n_aps=Q, n_ant=M, n_users=I, area=400.0, error_level=0.1, seed=2)
    return tr, va


def _model(**kw):
    torch.manual_seed(0)
    return RJAPCBN(Q, M, I, **{"kernel": 3, **kw})


# ---------------------------------------------------------------- residual CNN (Props. 1-2)

def test_proposition_paddings():
    assert size_preserving_padding(16, 5, 1) == 2                     # Prop. 1: (k - 1) / 2
    assert size_preserving_padding(16, 5, 3) == (16 * 3 - 16 - 3 + 5) // 2  # Prop. 2
    for size, k, s in [(16, 5, 1), (16, 5, 3), (4, 3, 3), (3, 5, 2), (7, 7, 5)]:
        p = size_preserving_padding(size, k, s)
        assert conv_output_size(size, k, p, s) == size
    with pytest.raises(ConfigError, match="Proposition 1"):
        size_preserving_padding(16, 4, 1)                   # even kernel, stride 1
    with pytest.raises(ConfigError, match="Proposition 2"):
        size_preserving_padding(16, 5, 2)                   # 2p = 19 is odd


def test_residual_cnn_shapes_and_validation():
    net = ResidualCNN(M, 2 * M, (Q, I), kernel=[3, (5, 3), 3, 3, 3], stride=[1, (3, 2), 1, 1, 1])
    y = net(torch.randn(2, M, Q, I))
    assert y.shape == (2, 2 * M, Q, I) and y.abs().max() <= 1
    assert len(net.units) == 5 and net.units[-1][0].out_channels == 2 * M
    assert isinstance(net.units[0][2], torch.nn.ReLU) and len(net.units[-1]) == 2  # tanh after the sum
    with pytest.raises(ConfigError, match="Proposition 1"):
        ResidualCNN(M, 2 * M, (Q, I), kernel=4)
    with pytest.raises(ConfigError, match="Proposition 2"):
        ResidualCNN(M, 2 * M, (Q, I), kernel=5, stride=2)   # Q: 2p = 7
    with pytest.raises(ConfigError, match="Eq. 22"):
        ResidualCNN(M, 2 * M, (Q, I), kernel=5, padding=1)  # explicit padding shrinks Q x I
    with pytest.raises(ConfigError, match="one entry per unit"):
        ResidualCNN(M, 2 * M, (Q, I), kernel=[3, 3, 3])
    with pytest.raises(ConfigError):
        RJAPCBN(Q, M, I, kernel=4)
    with pytest.raises(DataError):
        net(torch.randn(2, M, Q, I + 1))


# ---------------------------------------------------------------- model

def test_output_shapes_and_power(drops):
    tr, _ = drops
    model = _model()
    for mode in (True, False):
        model.train(mode)
        out = model.run(tr.h_hat[:8])
        assert out.v.shape == (8, I, Q, M) and out.v.dtype == torch.complex64
        assert out.v_r.shape == (8, 2 * M, Q, I)
        assert out.thresholds.shape == out.mask.shape == out.pooled.shape == (8, Q, I)
        assert out.hard is (not mode)
        assert bool((ap_power(out.v) <= model.p_max).all())
    with pytest.raises(DataError):
        model(tr.h_hat[:2, :, :, :1])
    with pytest.raises(DataError):
        model(tr.h_hat.abs())


def test_power_projection_eq30():
    torch.manual_seed(1)
    v = torch.randn(5, I, Q, M, dtype=torch.complex64) * torch.logspace(-3, 2, Q)[None, None, :, None]
    for p_max in (1.0, 0.25):
        w = project_per_ap_power(v, p_max)
        p_in, p_out = ap_power(v), ap_power(w)
        assert bool((p_out <= p_max).all())
        inside = p_in <= p_max
        assert torch.equal(w[:, :, inside[0]][0], v[:, :, inside[0]][0])          # untouched
        assert torch.allclose(p_out[~inside], torch.full_like(p_out[~inside], p_max), rtol=1e-5)
        # a projection: the direction of every over-budget block is kept
        ratio = (w / v)[~torch.isnan((w / v).real)]
        assert torch.allclose(ratio.imag, torch.zeros_like(ratio.imag), atol=1e-6)
    assert torch.equal(project_per_ap_power(torch.zeros(1, I, Q, M, dtype=torch.complex64)),
                       torch.zeros(1, I, Q, M, dtype=torch.complex64))


def test_hard_mask_zeroes_exactly_the_blocks_below_threshold(drops):
    tr, _ = drops
    model = _model().eval()
    pv = model.run(tr.h_hat).pooled
    with torch.no_grad():  # thresholds near the median pv, so that both cases occur
        model.threshold.weight_raw.fill_(-5.0)
        model.threshold.bias.fill_(float(torch.logit(pv.median())))
    out = model.run(tr.h_hat)
    below = out.pooled <= out.thresholds                        # [B, Q, I]
    assert below.any() and (~below).any()
    block_norm = out.v.abs().square().sum(-1).transpose(1, 2)   # [B, Q, I]
    assert bool((block_norm[below] == 0).all())
    assert bool((block_norm[~below] > 0).all())
    mask = model.serving_mask(tr.h_hat)                         # [B, I, Q]
    assert mask.shape == (64, I, Q) and mask.dtype == torch.bool
    assert torch.equal(mask, ~below.transpose(1, 2))
    assert torch.equal(mask, serving_aps(model(tr.h_hat)))
    # the soft mask of Eq. (26) with k = 50 agrees away from the threshold
    soft = torch.sigmoid(50.0 * (out.pooled - out.thresholds))
    far = (out.pooled - out.thresholds).abs() > 0.2
    assert torch.equal(soft[far] > 0.5, ~below[far])


def test_thresholds_follow_proposition_3(drops):
    tr, _ = drops
    model = _model()
    with torch.no_grad():
        model.threshold.weight_raw.fill_(-3.0)   # any raw value: the weight stays positive
    x = csi_conversion(tr.h_hat)
    t = model.threshold(x)
    strength = rms_pool(x)
    order = strength.flatten(1).argsort(-1)
    t_sorted = t.flatten(1).gather(1, order)
    assert bool((t_sorted.diff(dim=-1) >= 0).all())       # weaker link -> smaller threshold


def test_gradients_reach_every_parameter(drops):
    tr, _ = drops
    for threshold in ("attention", "shared"):
        model = _model(threshold=threshold, kernel=3)
        with torch.no_grad():  # bring some pv near their thresholds so Eq. (26) passes gradient
            if threshold == "attention":
                model.threshold.bias.fill_(0.0)
            else:
                model.threshold.raw.fill_(0.0)
        model.train()
        v = model(tr.h_hat[:16])
        loss, parts = loss_eq32(v, tr.h_hat[:16], tr.eps[:16], SIGMA2, 0.1)
        loss.backward()
        for name, p in model.named_parameters():
            assert p.grad is not None and bool(torch.isfinite(p.grad).all()), name
            assert float(p.grad.abs().sum()) > 0, name
        assert math.isfinite(parts["worst_case_sum_rate"]) and parts["penalty"] > 0


def test_shared_threshold_is_one_parameter(drops):
    tr, _ = drops
    model = _model(threshold="shared")
    params = list(model.threshold.parameters())
    assert len(params) == 1 and params[0].numel() == 1
    t = model.threshold(csi_conversion(tr.h_hat[:4]))
    assert t.shape == (4, Q, I) and bool((t == t.flatten()[0]).all())
    attention = _model(threshold="attention")
    assert sum(p.numel() for p in attention.threshold.parameters()) == 2   # 1x1 conv: w, b
    with pytest.raises(ConfigError):
        RJAPCBN(Q, M, I, threshold="per-user")


def test_loss_eq32_matches_its_definition(drops):
    tr, _ = drops
    model = _model().eval()
    h, eps = tr.h_hat[:8], tr.eps[:8]
    with torch.no_grad():
        v = model(h)
    lam = 0.3
    loss, parts = loss_eq32(v, h, eps, SIGMA2, lam)
    rate = worst_case_sum_rate(h, v, eps, SIGMA2)
    l1 = v.abs().sum((1, 2, 3))
    assert math.isclose(float(loss), float((-rate + lam * l1).mean()), rel_tol=1e-5, abs_tol=1e-5)
    assert math.isclose(parts["worst_case_sum_rate"], float(rate.mean()), rel_tol=1e-5)
    slack = update_slack_variables(v, h, eps, SIGMA2)
    assert torch.allclose(slack.gamma, slack.alpha / slack.beta)
    group = sparsity_penalty(v, "group")
    assert bool((group <= l1 + 1e-5).all())
    with pytest.raises(ConfigError):
        loss_eq32(v, h, eps, SIGMA2, -1.0)


def test_beamforming_conversion_eq29():
    v_spa = torch.arange(2 * M * Q * I, dtype=torch.float32).reshape(1, 2 * M, Q, I)
    v = beamforming_conversion(v_spa)
    assert v.shape == (1, I, Q, M)
    assert v[0, 2, 1, 0] == torch.complex(v_spa[0, 0, 1, 2], v_spa[0, M, 1, 2])


# ---------------------------------------------------------------- training

def test_training_improves_worst_case_sum_rate(drops, tmp_path):
    tr, va = drops
    model = _model()
    before = evaluate_rjapcbn(model, va, SIGMA2, 0.1)
    ckpt = Checkpointer(tmp_path / "ckpt")
    hist = train_rjapcbn(model, tr, va, 0.1, SIGMA2, epochs=8, batch_size=16, lr=1e-2, seed=0,
                         checkpointer=ckpt)
    after = evaluate_rjapcbn(model, va, SIGMA2, 0.1)
    assert not model.training
    assert len(hist.val_rate) == 8 and 0 <= hist.best_epoch < 8
    assert after["loss"] == pytest.approx(min(hist.val_loss), rel=1e-4, abs=1e-4)
    assert after["worst_case_sum_rate"] > 1.2 * before["worst_case_sum_rate"]
    assert 0 <= after["q_ave"] <= Q
    # a finished run resumes as a no-op with the same history
    again = train_rjapcbn(_model(), tr, va, 0.1, SIGMA2, epochs=8, batch_size=16, lr=1e-2,
                          checkpointer=ckpt)
    assert again.val_loss == hist.val_loss and again.best_epoch == hist.best_epoch


@pytest.mark.parametrize("killed_after", [1, 3])
def test_a_killed_run_resumes_exactly(drops, tmp_path, killed_after):
    tr, va = drops
    tr, va = (tr.h_hat[:32], tr.eps[:32]), (va.h_hat[:16], va.eps[:16])

    def run(folder):
        model = _model()
        ckpt = Checkpointer(folder, "x.pt", every_epochs=2, every_seconds=None)
        hist = train_rjapcbn(model, tr, va, 0.1, SIGMA2, epochs=4, batch_size=8, lr=1e-2, seed=2,
                             checkpointer=ckpt)
        return model, hist

    full, h_full = run(tmp_path / "a")
    with pytest.raises(SimulatedKill), kill_after_epochs(killed_after):
        run(tmp_path / "b")
    resumed, h_resumed = run(tmp_path / "b")
    for (name, a), b in zip(full.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), name
    assert h_full.to_dict() == h_resumed.to_dict()
    assert len(h_full.val_loss) == 4 and not resumed.training


def test_a_last_batch_of_one_drop_trains(drops):
    tr, va = drops
    model = _model()
    # 17 drops in batches of 8 leave one drop over: it joins the batch before it (BN needs two)
    hist = train_rjapcbn(model, (tr.h_hat[:17], tr.eps[:17]), None, 0.1, SIGMA2, epochs=2, batch_size=8)
    assert len(hist.train_loss) == 2 and all(math.isfinite(x) for x in hist.train_loss + hist.train_rate)
    assert hist.val_loss == [] and hist.best_epoch == 1       # without validation: the last epoch


def test_training_validates_inputs(drops):
    tr, va = drops
    model = _model()
    with pytest.raises(ConfigError):
        train_rjapcbn(model, tr, va, 0.1, SIGMA2, epochs=0)
    with pytest.raises(DataError):
        train_rjapcbn(model, tr.h_hat, va, 0.1, SIGMA2, epochs=1)
    with pytest.raises(DataError):
        train_rjapcbn(model, tr, va, 0.1, -1.0, epochs=1)
    other = generate_cellfree(4, n_aps=Q + 1, n_ant=M, n_users=I, seed=0)
    with pytest.raises(DataError):
        train_rjapcbn(model, other, None, 0.1, SIGMA2, epochs=1)


def test_cartesian_input_option(drops):
    tr, _ = drops
    model = _model(csi="cartesian")
    assert model.cnn.in_channels == 2 * M
    assert model(tr.h_hat[:4]).shape == (4, I, Q, M)
    assert RJAPCBN(**model.config()).cnn.in_channels == 2 * M


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda(drops):
    tr, va = drops
    model = _model().cuda()
    hist = train_rjapcbn(model, tr, va, 0.1, SIGMA2, epochs=1, batch_size=16)
    assert len(hist.val_loss) == 1
    v = model(tr.h_hat[:4].cuda())
    assert v.is_cuda and bool((ap_power(v) <= 1.0).all())
    assert model.serving_mask(tr.h_hat[:4].cuda()).is_cuda


def test_power_projection_gradient_is_finite_at_near_zero_power():
    """A block whose power underflows must not turn the gradient into NaN (regression)."""
    from chanlab.cellfree.model import project_per_ap_power

    v = torch.zeros(2, 3, 4, 2, dtype=torch.complex64)
    v[0, :, 0] = 3e-19  # power ~5e-37: normal, but 1 / power² overflows float32
    v[1, :, 1] = 10.0   # over budget: scaled
    v.requires_grad_(True)
    project_per_ap_power(v, 1.0).abs().sum().backward()
    assert torch.isfinite(torch.view_as_real(v.grad)).all()
