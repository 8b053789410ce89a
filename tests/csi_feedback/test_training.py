import numpy as np
import pytest
import torch

from chanlab.core.checkpoint import Checkpointer
from chanlab.core.engine import SimulatedKill, kill_after_epochs
from chanlab.core.errors import ConfigError, DataError
from chanlab.csi_feedback.data import feedback_csi, make_splits, nmse_db, rho
from chanlab.csi_feedback.model import SCHEMES, FeedbackAutoencoder, get_scheme
from chanlab.csi_feedback.training import FeedbackTraining, evaluate_feedback, train_feedback
from chanlab.nn.csinet import make_autoencoder

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def x():
    """Sparse angular-delay-like inputs in [0, 1] (a few strong taps around 0.5)."""
    g = torch.Generator().manual_seed(0)
    base = torch.full((96, 2, 8, 8), 0.5)
    taps = torch.randint(0, 8, (96, 3), generator=g)
    for k in range(3):
        base[torch.arange(96), 0, taps[:, k], k] += 0.3 * torch.rand(96, generator=g) - 0.15
        base[torch.arange(96), 1, taps[:, k], k] += 0.3 * torch.rand(96, generator=g) - 0.15
    return base


def model(m=16):
    torch.manual_seed(0)
    enc, dec = make_autoencoder("csinet", m, n_ant=8, n_delay=8)
    return FeedbackAutoencoder(enc, dec)


CFG = FeedbackTraining(epochs=2, batch_size=32, alloc_samples=64, lloyd_samples=64)


@pytest.mark.parametrize("scheme", ["nq", "proposed", "proposed-var1", "proposed-var2", "round", "vector-1", "vector-2",
                                    "lloyd", "lloyd-log"])
def test_schemes_train_and_send_real_bitstreams(x, scheme):
    net = model()
    hist = train_feedback(net, scheme, 3, x[:64], x[64:80], CFG)
    assert len(hist.val_nmse_db) == 2
    r = evaluate_feedback(net, x[80:], n_sc=16)
    if scheme == "nq":
        assert r["stream_bits"] == 32 * 16
    else:
        assert r["payload_bits"] == 16 * 3                      # the budget M·B is kept
        assert r["stream_bits"] == 8 * ((16 * 3 + 7) // 8)      # whole bytes of exactly M·B bits
        # the bitstream path reconstructs exactly what the quantized forward pass gives
        net.eval()
        with torch.no_grad():
            direct = net(x[80:])[0]
        torch.testing.assert_close(net.decompress(net.compress(x[80:])), direct)
    assert r["nmse_db"] == pytest.approx(r["nmse_db"])            # finite


def test_proposed_allocation_keeps_the_budget(x):
    net = model()
    train_feedback(net, "proposed", 2, x[:64], x[64:80], CFG)
    assert int(net.quantizer.bits.sum()) == 16 * 2
    assert len(net.quantizer.bits) == 16


@pytest.mark.parametrize("scheme, schedule", [("proposed", {}), ("proposed", {"alloc_every": 2, "alloc_drift": 0.02}),
                                              ("lloyd", {})])
def test_a_killed_run_resumes_to_the_uninterrupted_run(x, tmp_path, scheme, schedule):
    """Bit allocation (after_epoch, and its schedule's memory of the last ranges) and the post-hoc
    Lloyd fit come back exactly after a kill."""
    cfg = FeedbackTraining(epochs=5, batch_size=16, alloc_samples=48, lloyd_samples=48, **schedule)

    def run(folder):
        net = model()
        ck = Checkpointer(tmp_path / folder, "x.pt", every_epochs=2, every_seconds=None)
        return net, train_feedback(net, scheme, 2, x[:48], x[64:80], cfg, seed=4, checkpoint=ck)

    full, full_hist = run("a")
    with pytest.raises(SimulatedKill), kill_after_epochs(3):
        run("b")
    resumed, resumed_hist = run("b")
    assert resumed_hist == full_hist and len(full_hist.val_nmse_db) == 5
    if scheme == "proposed" and not schedule:
        # the allocation moves after the resume point too (k-means refit, Adam state dropped)
        assert len(full_hist.bits_std) == 5 and sum(full_hist.allocation_moves[2:]) > 0
        assert full_hist.allocation_runs == [1] * 5
    if schedule:
        assert full_hist.allocation_runs[0::2] == [0, 0, 0]       # due after epochs 1 and 3 only
    a, b = full.state_dict(), resumed.state_dict()
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_unknown_scheme_and_bits():
    with pytest.raises(ConfigError, match="proposed"):
        get_scheme("fancy")
    assert {"nq", "proposed", "round", "vector-2", "lloyd"} <= set(SCHEMES)
    with pytest.raises(ConfigError):
        train_feedback(model(), "nq", 0, torch.rand(4, 2, 8, 8), torch.rand(4, 2, 8, 8), CFG)


def test_nmse_and_rho_definitions(x):
    assert nmse_db(x, x) < -200
    assert nmse_db(x, torch.full_like(x, 0.5)) == pytest.approx(0.0, abs=1e-5)     # zero CSI: 0 dB
    assert rho(x, x, n_sc=16) == pytest.approx(1.0, abs=1e-5)


def test_generated_csi_is_cached_and_in_unit_interval():
    h = feedback_csi("indoor", 6, n_sc=64, n_ant=8, n_delay=8, show_progress=False)
    assert h.shape == (6, 8, 8) and h.dtype == torch.complex64
    torch.testing.assert_close(feedback_csi("indoor", 6, n_sc=64, n_ant=8, n_delay=8, show_progress=False), h)
    with pytest.raises(ConfigError, match="environment"):
        feedback_csi("lunar", 6)


def test_generation_device_reaches_sionna_and_is_not_part_of_the_cache_key(tmp_path, monkeypatch):
    from chanlab.channels import sionna_phy

    monkeypatch.setenv("CHANLAB_CACHE", str(tmp_path))
    original, devices = sionna_phy.generate_scenario, []

    def spy(*args, device="cpu", **kwargs):
        devices.append(device)
        return original(*args, device="cpu", **kwargs)

    monkeypatch.setattr(sionna_phy, "generate_scenario", spy)
    h = feedback_csi("indoor", 4, n_sc=32, n_ant=8, n_delay=8, device="cuda", show_progress=False)
    assert devices == ["cuda"] and h.device.type == "cpu"
    # another device finds the same cached set (nothing is generated again)
    again = feedback_csi("indoor", 4, n_sc=32, n_ant=8, n_delay=8, device="cpu", show_progress=False)
    assert devices == ["cuda"] and torch.equal(again, h)


def test_make_splits_uses_the_training_scale():
    sp = make_splits("outdoor", 8, 2, 2, n_sc=32, show_progress=False)
    assert sp.train.shape[0] == 8 and float(sp.train.min()) >= 0 and float(sp.train.max()) <= 1
    assert sp.scale > 0


def test_pca_baseline_with_bit_allocation():
    from chanlab.csi_feedback.baselines import PcaFeedback

    g = torch.Generator().manual_seed(3)
    coeffs = torch.randn(700, 16, generator=g) * torch.logspace(0, -2, 16)          # very unequal variances
    basis = torch.linalg.qr(torch.randn(128, 16, generator=g))[0].T
    x = (0.5 + 0.02 * coeffs @ basis).reshape(700, 2, 8, 8)
    pca = PcaFeedback(16, 3, alloc_samples=600).fit(x[:600])
    r = pca.evaluate(x[600:], n_sc=16)
    assert r["payload_bits"] == 48 and r["stream_bits"] == 48
    bits = pca.quantizer.bits
    assert int(bits.sum()) == 48 and bits[0] > bits[-1]        # strong components get more bits
    fine = PcaFeedback(16, 6, alloc_samples=600).fit(x[:600]).evaluate(x[600:], n_sc=16)
    assert fine["nmse_db"] < r["nmse_db"]                      # more bits, less error


def test_calibrated_model_standardizes_input_and_maps_the_linear_head_back(x, tmp_path):
    torch.manual_seed(0)
    enc, dec = make_autoencoder("csinet", 16, n_ant=8, n_delay=8, output="linear")
    net = FeedbackAutoencoder(enc, dec).calibrate(x)
    std = float((x.double() - 0.5).square().mean().sqrt())
    assert float(net.center) == 0.5 and float(net.scale) == pytest.approx(std, rel=1e-6)
    net.eval()
    torch.testing.assert_close(net.encode(x[:4]), enc((x[:4] - 0.5) / std))
    z = net.encode(x[:4])
    torch.testing.assert_close(net.decode(z), 0.5 + std * dec(z))
    # the standardization travels with the weights
    torch.save(net.state_dict(), tmp_path / "m.pt")
    torch.manual_seed(1)
    other = FeedbackAutoencoder(*make_autoencoder("csinet", 16, n_ant=8, n_delay=8, output="linear"))
    other.load_state_dict(torch.load(tmp_path / "m.pt", weights_only=True))
    other.eval()
    torch.testing.assert_close(other(x[:4])[0], net(x[:4])[0])


def test_calibrated_model_trains_and_sends_real_bitstreams(x):
    torch.manual_seed(0)
    net = FeedbackAutoencoder(*make_autoencoder("csinet", 16, n_ant=8, n_delay=8, output="linear")).calibrate(x[:64])
    train_feedback(net, "proposed", 2, x[:64], x[64:80], CFG)
    r = evaluate_feedback(net, x[80:], n_sc=16)
    assert r["stream_bits"] == 32 and np.isfinite(r["nmse_db"])
    streams = net.compress(x[80:])
    torch.testing.assert_close(net.decompress(streams), net.eval()(x[80:])[0])


def test_calibrate_rejects_bad_inputs():
    net = model()
    with pytest.raises(DataError, match="at least 2"):
        net.calibrate(torch.rand(1, 2, 8, 8))
    with pytest.raises(DataError, match="NaN"):
        net.calibrate(torch.full((4, 2, 8, 8), float("nan")))
    with pytest.raises(DataError, match="constant"):
        net.calibrate(torch.full((4, 2, 8, 8), 0.5))
