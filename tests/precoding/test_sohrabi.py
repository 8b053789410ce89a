import pytest
import torch

from chanlab.core.errors import BitstreamError, ConfigError, DataError
from chanlab.precoding.sohrabi import SohrabiTransceiver, binarize_ste

pytestmark = pytest.mark.usefixtures("one_thread")

M, K, L, B = 8, 2, 4, 4
SMALL = dict(hidden=(32, 16), bs_hidden=(32, 32))


def _gen(seed):
    return torch.Generator().manual_seed(seed)


def _h(batch=16, seed=0, k=K, m=M, dtype=torch.complex64):
    return torch.randn(batch, k, m, dtype=dtype, generator=_gen(seed))


def _model(seed=0, **kw):
    return SohrabiTransceiver(M, K, L, B, **{**SMALL, **kw}, seed=seed)


def test_shapes_power_and_pilot_norms():
    model = _model()
    h = _h()
    w = model(h, 0.1, power=2.0, generator=_gen(1))
    assert w.shape == (16, M, K) and w.dtype == torch.complex64
    assert torch.allclose(w.abs().square().sum((1, 2)), torch.full((16,), 2.0), rtol=1e-5)
    x = model.pilots(3.0)
    assert x.shape == (M, L)
    assert torch.allclose(x.abs().square().sum(0), torch.full((L,), 3.0), rtol=1e-5)
    # The DFT initialization gives orthogonal pilots.
    gram = x.mH @ x
    assert torch.allclose(gram, 3.0 * torch.eye(L, dtype=gram.dtype), atol=1e-5)
    assert model.feedback_bits == B and model.feedback_stream_bits == 8
    y = model.receive(h, 0.1, generator=_gen(2))
    assert y.shape == (16, K, L) and model.encode(y).shape == (16, K, B)
    assert model.loss(h, w, 0.1).shape == ()


def test_more_pilots_than_antennas_and_double():
    model = SohrabiTransceiver(4, 2, 6, 3, **SMALL).double()
    w = model(_h(k=2, m=4, dtype=torch.complex128), 0.1, generator=_gen(0))
    assert w.dtype == torch.complex128 and w.shape == (16, 4, 2)
    assert torch.allclose(model.pilots().abs().square().sum(0), torch.ones(6, dtype=torch.float64))


def test_bits_are_exactly_plus_minus_one():
    model = _model()
    y = model.receive(_h(64), 0.1, generator=_gen(1))
    bits = model.feedback(y)
    assert bits.shape == (64, K, B)
    assert bool(((bits == 1) | (bits == -1)).all())
    assert bool((bits == 1).any()) and bool((bits == -1).any())
    u = torch.tensor([-2.0, -1e-8, 0.0, 1e-8, 0.3, 5.0])
    assert binarize_ste(u).tolist() == [-1.0, -1.0, 1.0, 1.0, 1.0, 1.0]


def test_ste_gradient_is_the_tanh_derivative():
    u = torch.linspace(-3, 3, 13, dtype=torch.float64, requires_grad=True)
    binarize_ste(u, 2.0).sum().backward()
    assert torch.allclose(u.grad, 2.0 * (1 - torch.tanh(2.0 * u.detach()).square()))


def test_gradients_reach_pilots_encoders_and_bs():
    model = _model()
    h = _h(32)
    model.loss(h, model(h, 0.1, generator=_gen(1)), 0.1).backward()
    grads = {
        "pilot_real": model.pilot_real.grad,
        "pilot_imag": model.pilot_imag.grad,
        "encoder first layer": model.encoders.layers[0].weight.grad,
        "encoder last layer": model.encoders.layers[-1].weight.grad,
        "bs first layer": model.bs.layers[0].weight.grad,
    }
    for name, grad in grads.items():
        assert grad is not None and torch.isfinite(grad).all() and grad.abs().sum() > 0, name
    # Each user's encoder gets its own gradient.
    g = model.encoders.layers[0].weight.grad
    assert g[0].abs().sum() > 0 and g[1].abs().sum() > 0


def test_user_specific_encoders_differ():
    model = _model().eval()
    y = model.receive(_h(8), 0.1, generator=_gen(1))
    # The same received pilots at every user give different encoder outputs.
    same = y[:, :1].expand(-1, K, -1)
    u = model.encode(same)
    assert not torch.allclose(u[:, 0], u[:, 1])
    # Permuting users is not equivariant (a shared encoder would permute the outputs).
    perm = torch.tensor([1, 0])
    assert not torch.allclose(model.encode(y[:, perm]), model.encode(y)[:, perm])
    bits = model.feedback(y)
    assert not torch.allclose(model.precode(bits[:, perm]), model.precode(bits)[:, :, perm])
    h = _h(8, seed=3)
    w = model(h, 1e-9, generator=_gen(4))
    w_perm = model(h[:, perm], 1e-9, generator=_gen(4))
    assert not torch.allclose(w_perm, w[:, :, perm])


def test_seed_makes_the_model_reproducible_without_touching_global_rng():
    state = torch.get_rng_state()
    a, b, c = _model(seed=3), _model(seed=3), _model(seed=4)
    assert torch.equal(torch.get_rng_state(), state)
    for pa, pb in zip(a.parameters(), b.parameters()):
        assert torch.equal(pa, pb)
    assert not torch.equal(a.encoders.layers[0].weight, c.encoders.layers[0].weight)


def test_slope_is_saved_and_validated():
    model = _model()
    model.slope = 2.5
    other = _model()
    other.load_state_dict(model.state_dict())
    assert other.slope == 2.5
    with pytest.raises(ConfigError, match="slope"):
        model.slope = 0.0


def test_feedback_bitstreams_round_trip():
    model = _model().eval()
    y = model.receive(_h(10), 0.1, generator=_gen(1))
    streams = model.compress_feedback(y)
    assert len(streams) == 10 and all(len(s) == K for s in streams)
    assert all(isinstance(s, bytes) and len(s) * 8 == model.feedback_stream_bits for sample in streams for s in sample)
    bits = model.decompress_feedback(streams)
    assert torch.equal(bits, model.feedback(y))
    assert torch.allclose(model.precode(bits), model.precode(model.feedback(y)))
    with pytest.raises(BitstreamError):
        model.decompress_feedback([streams[0][:1]])
    with pytest.raises(BitstreamError):
        model.decompress_feedback([[b"", b""]])
    with pytest.raises(BitstreamError):
        model.decompress_feedback([[b"\x01", b"\x00"]])                # nonzero padding bits


def test_training_increases_the_sum_rate():
    torch.manual_seed(0)
    model = SohrabiTransceiver(M, K, L, B, hidden=(64, 32), bs_hidden=(64, 64), seed=0)
    noise = 0.1                                                      # SNR 10 dB at P = 1
    g = _gen(0)
    h_test = _h(2000, seed=123)

    def evaluate():
        model.eval()
        with torch.no_grad():
            rate = -model.loss(h_test, model(h_test, noise, generator=_gen(1)), noise)
        model.train()
        return float(rate)

    before = evaluate()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(300):
        h = torch.randn(128, K, M, dtype=torch.complex64, generator=g)
        loss = model.loss(h, model(h, noise, generator=g, check=False), noise)
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = evaluate()
    assert after > before + 1.0 and after > 1.4 * before, (before, after)


def test_validation_errors():
    model = _model()
    with pytest.raises(DataError, match="K=2"):
        model(_h(k=3), 0.1)
    with pytest.raises(DataError, match=r"\[batch, K=2, 8\]"):
        model(_h(m=6), 0.1)
    with pytest.raises(DataError, match="complex"):
        model(_h().real, 0.1)
    with pytest.raises(DataError, match="3-D"):
        model(_h()[0], 0.1)
    with pytest.raises(DataError, match="torch.Tensor"):
        model([[1j]], 0.1)
    with pytest.raises(DataError, match="NaN"):
        model(torch.full((4, K, M), float("nan"), dtype=torch.complex64), 0.1)
    with pytest.raises(DataError, match="noise_power"):
        model(_h(), 0.0)
    with pytest.raises(DataError, match="power"):
        model(_h(), 0.1, power=-1.0)
    with pytest.raises(DataError, match="batch >= 2"):
        model(_h(1), 0.1)
    model.eval()
    assert model(_h(1), 0.1).shape == (1, M, K)
    with pytest.raises(DataError, match="L"):
        model.feedback(torch.zeros(3, K, L + 1, dtype=torch.complex64))
    with pytest.raises(DataError, match="bits"):
        model.precode(torch.ones(3, K, B + 1))
    for bad in [dict(n_ant=0), dict(n_users=0), dict(n_pilots=0), dict(bits_per_user=0)]:
        args = {"n_ant": M, "n_users": K, "n_pilots": L, "bits_per_user": B, **bad}
        with pytest.raises(ConfigError):
            SohrabiTransceiver(**args)
    with pytest.raises(ConfigError, match="hidden"):
        SohrabiTransceiver(M, K, L, B, hidden=(8, 0))
    with pytest.raises(ConfigError, match="bs_hidden"):
        SohrabiTransceiver(M, K, L, B, bs_hidden="64")
