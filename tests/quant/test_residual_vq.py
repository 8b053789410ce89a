"""Residual vector quantizer (RVQ-VAE feedback of the scalable FDD precoding paper).

Hard quantization against a brute-force per-tier argmin, the NSVQ closed form, gradients
and tier freezing, dead-codeword replacement, the Lloyd construction, differentiable
k-means (Algorithm 2) and codebook shrinkage, and the bitstream by round trips.
"""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from chanlab.core.errors import BitstreamError, ConfigError, DataError
from chanlab.quant.residual_vq import ResidualVQ, differentiable_kmeans
from chanlab.quant.vector import kmeans, nearest_codeword

pytestmark = pytest.mark.usefixtures("one_thread")

F64 = torch.float64


def _randomized(dim, bits, dtype=F64, seed=0, scales=None):
    """An RVQ whose tier-n codewords are Gaussian with a decreasing scale (as trained tiers)."""
    rvq = ResidualVQ(dim, bits, seed=seed, dtype=dtype)
    gen = torch.Generator().manual_seed(seed + 100)
    with torch.no_grad():
        for t, cb in enumerate(rvq.codebooks):
            s = 1.0 / 2 ** t if scales is None else scales[t]
            cb.copy_(torch.randn(cb.shape, generator=gen, dtype=F64).to(dtype) * s)
    return rvq


def _brute(v, codebooks):
    """Per tier: explicit argmin over all codewords (exact pairwise distances), then the residual."""
    r = v.clone()
    idx = []
    for w in codebooks:
        d = torch.cdist(r, w.to(r.dtype), compute_mode="donot_use_mm_for_euclid_dist")
        i = d.argmin(1)
        idx.append(i)
        r = r - w.to(r.dtype)[i]
    return torch.stack(idx, 1)


@pytest.mark.parametrize("dim,bits,dtype", [(8, (4, 4, 4), F64), (3, (2, 5), F64), (16, (6, 3, 2, 1), torch.float32)])
def test_quantize_equals_brute_force(dim, bits, dtype):
    rvq = _randomized(dim, bits, dtype)
    gen = torch.Generator().manual_seed(1)
    v = torch.randn(500, dim, generator=gen, dtype=F64).to(dtype)
    v[0] = rvq.codebooks[0].detach()[3]                           # exactly a first-tier codeword
    v[1] = 1e3                                                    # far outlier
    v_q, idx = rvq.quantize(v)
    assert idx.shape == (500, len(bits)) and idx.dtype == torch.int64 and v_q.dtype == dtype
    assert torch.equal(idx, _brute(v, [cb.detach() for cb in rvq.codebooks]))
    assert idx[0, 0] == 3
    # v_q is the sum of the chosen codewords and equals dequantize(indices) bit for bit.
    expect = sum(cb.detach()[idx[:, t]] for t, cb in enumerate(rvq.codebooks))
    assert torch.allclose(v_q, expect, rtol=1e-6, atol=1e-6)
    assert torch.equal(v_q.detach(), rvq.dequantize(idx).detach())


def test_leading_dimensions_are_kept():
    rvq = _randomized(6, (3, 3))
    v = torch.randn(4, 5, 6, dtype=F64)
    v_q, idx = rvq.quantize(v)
    assert v_q.shape == (4, 5, 6) and idx.shape == (4, 5, 2)
    flat_q, flat_idx = rvq.quantize(v.reshape(20, 6))
    assert torch.equal(idx.reshape(20, 2), flat_idx) and torch.equal(v_q.reshape(20, 6), flat_q)
    assert torch.equal(rvq.dequantize(idx), v_q)
    rvq.eval()
    v_hat, idx2, loss = rvq(v)
    assert v_hat.shape == (4, 5, 6) and torch.equal(idx2, idx)
    assert torch.allclose(loss, ((v - v_q) ** 2).sum(-1).mean())


def test_n_tiers_truncation_uses_only_the_first_tiers():
    rvq = _randomized(5, (4, 4, 4))
    v = torch.randn(200, 5, dtype=F64)
    v_q, idx = rvq.quantize(v)
    v_q2, idx2 = rvq.quantize(v, n_tiers=2)
    assert idx2.shape == (200, 2) and torch.equal(idx2, idx[:, :2])
    assert torch.equal(v_q2, rvq.dequantize(idx2))
    with torch.no_grad():
        rvq.codebooks[2].add_(100.0)                              # a later tier does not matter
    assert torch.equal(rvq.quantize(v, n_tiers=2)[1], idx2)
    assert rvq.total_bits() == 12 and rvq.total_bits(2) == 8 and rvq.stream_bits(1) == 8


def test_compress_decompress_round_trip_and_stream_length():
    rvq = _randomized(7, (10, 10, 10), dtype=torch.float32)
    v = torch.randn(300, 7)
    v_q, _ = rvq.quantize(v)
    for n, crc in [(None, False), (3, True), (2, False), (1, True)]:
        streams = rvq.compress(v, n_tiers=n, crc=crc)
        nbits = rvq.total_bits(n)
        want = math.ceil(nbits / 8) + (2 if crc else 0)
        assert len(streams) == 300 and all(len(s) == want for s in streams)
        assert rvq.stream_bits(n, crc) == 8 * want
        back = rvq.decompress(streams, n_tiers=n, crc=crc)
        assert torch.equal(back, rvq.quantize(v, n)[0])
    assert torch.equal(rvq.decompress(rvq.compress(v)), v_q)
    assert rvq.decompress([]).shape == (0, 7)


@settings(max_examples=25, deadline=None)
@given(bits=st.lists(st.integers(1, 9), min_size=1, max_size=4), n=st.integers(0, 20), seed=st.integers(0, 99))
def test_round_trip_any_allocation(bits, n, seed):
    rvq = _randomized(3, bits, seed=seed)
    v = torch.randn(n, 3, generator=torch.Generator().manual_seed(seed), dtype=F64)
    streams = rvq.compress(v)
    assert all(len(s) == math.ceil(sum(bits) / 8) for s in streams)
    assert torch.equal(rvq.decompress(streams), rvq.quantize(v)[0])


def test_corrupt_streams_raise_bitstream_error():
    rvq = _randomized(4, (5, 5, 5))                               # 15 bits: 1 padding bit
    streams = rvq.compress(torch.randn(10, 4, dtype=F64))
    with pytest.raises(BitstreamError):
        rvq.decompress([streams[0][:-1]] + streams[1:])           # truncated
    with pytest.raises(BitstreamError):
        rvq.decompress(streams[:3] + [streams[3] + b"\x00"])      # extra byte
    with pytest.raises(BitstreamError):
        rvq.decompress([b""])
    with pytest.raises(BitstreamError):
        rvq.decompress(streams, n_tiers=1)                        # read with another truncation
    with pytest.raises(BitstreamError):
        rvq.decompress([bytes([streams[0][0], streams[0][1] | 1])])   # nonzero padding bit
    with pytest.raises(BitstreamError):
        rvq.decompress(streams[0])                                # one bytes object
    with pytest.raises(BitstreamError):
        rvq.decompress([1, 2])
    with pytest.raises(BitstreamError):
        rvq.decompress(5)
    crc_streams = rvq.compress(torch.randn(4, 4, dtype=F64), crc=True)
    flipped = bytearray(crc_streams[2])
    flipped[2] ^= 0x10
    with pytest.raises(BitstreamError):
        rvq.decompress(crc_streams[:2] + [bytes(flipped)], crc=True)


def test_nsvq_closed_form_and_eval_mode():
    rvq = _randomized(12, (4, 4))
    v = torch.randn(64, 12, dtype=F64) * 2
    v_q, idx = rvq.quantize(v)
    rvq.train()
    v_hat, idx_t, loss = rvq(v, generator=torch.Generator().manual_seed(0))
    assert torch.equal(idx_t, idx)
    # ||v_hat - v|| = ||v - v_q|| per sample, in a random direction.
    assert torch.allclose((v_hat - v).norm(dim=1), (v - v_q).norm(dim=1), rtol=1e-10)
    assert not torch.allclose(v_hat, v_q)
    assert torch.allclose(loss, ((v - v_q) ** 2).sum(1).mean(), rtol=1e-12)
    # Reproducible with a generator; real Gaussian directions differ per sample.
    again, _, _ = rvq(v, generator=torch.Generator().manual_seed(0))
    assert torch.equal(again, v_hat)
    rvq.eval()
    v_hat_e, idx_e, loss_e = rvq(v)
    assert torch.equal(v_hat_e, v_q) and torch.equal(idx_e, idx) and torch.equal(loss_e, loss)


def test_gradients_reach_input_and_unfrozen_codebooks_only():
    rvq = _randomized(6, (3, 3, 3))
    rvq.freeze_tier(1)
    assert rvq.frozen == (False, True, False)
    v = torch.randn(40, 6, dtype=F64, requires_grad=True)
    rvq.train()
    v_hat, idx, loss = rvq(v)
    (v_hat.sum() + loss).backward()
    assert v.grad is not None and torch.isfinite(v.grad).all() and v.grad.abs().sum() > 0
    assert rvq.codebooks[1].grad is None
    for t in (0, 2):
        g = rvq.codebooks[t].grad
        assert g is not None and g.abs().sum() > 0
        unused = torch.ones(8, dtype=torch.bool)
        unused[idx[:, t]] = False
        assert torch.all(g[unused] == 0)                          # only chosen codewords move
    # Loss alone: hand-derived gradient of mean ||v - v_q||² to v.
    v.grad = None
    rvq.eval()
    _, _, loss = rvq(v)
    loss.backward()
    v_q, _ = rvq.quantize(v.detach())
    assert torch.allclose(v.grad, 2 * (v.detach() - v_q) / 40, rtol=1e-12)
    rvq.unfreeze_tier(1)
    assert rvq.frozen == (False, False, False)
    # Freezing drops a stale gradient.
    rvq.codebooks[0].grad = torch.ones_like(rvq.codebooks[0])
    rvq.freeze_tier(0)
    assert rvq.codebooks[0].grad is None and not rvq.codebooks[0].requires_grad


def test_usage_counters_and_replace_unused():
    rvq = _randomized(4, (4, 4, 4))
    gen = torch.Generator().manual_seed(2)
    # Data near four first-tier codewords: most codewords of tier 0 stay unused.
    pick = torch.tensor([0, 5, 9, 12])
    v = rvq.codebooks[0].detach()[pick.repeat(50)] + 0.01 * torch.randn(200, 4, generator=gen, dtype=F64)
    rvq.train()
    _, idx, _ = rvq(v)
    _, idx2, _ = rvq(v[:30])
    usage = rvq.usage
    for t in range(3):
        assert torch.equal(usage[t], torch.bincount(torch.cat([idx[:, t], idx2[:, t]]), minlength=16))
    assert set(torch.nonzero(usage[0]).flatten().tolist()) == {0, 5, 9, 12}
    rvq.eval()
    rvq(v)                                                        # eval mode does not count
    assert torch.equal(rvq.usage[0], usage[0])
    dead = [(u == 0).clone() for u in usage]
    before = [cb.detach().clone() for cb in rvq.codebooks]
    replaced = rvq.replace_unused(v, generator=torch.Generator().manual_seed(0))
    assert replaced == [int(d.sum()) for d in dead] and replaced[0] == 12
    for t in range(3):
        after = rvq.codebooks[t].detach()
        assert torch.equal(after[~dead[t]], before[t][~dead[t]])             # used ones untouched
        assert torch.all((after[dead[t]] != before[t][dead[t]]).any(1))      # never-used ones moved
    # Replaced tier-0 codewords are distinct samples of v (r^0 = v).
    new0 = rvq.codebooks[0].detach()[dead[0]]
    hits = torch.cdist(new0, v, compute_mode="donot_use_mm_for_euclid_dist").argmin(1)
    assert torch.equal(v[hits], new0) and hits.unique().numel() == 12
    # Tier-1 replacements are residuals r^1 computed with the updated tier 0.
    r1 = v - rvq.quantize(v, 1)[0]
    new1 = rvq.codebooks[1].detach()[dead[1]]
    assert torch.cdist(new1, r1, compute_mode="donot_use_mm_for_euclid_dist").min(1).values.max() < 1e-12
    assert all(int(u.sum()) == 0 for u in rvq.usage)
    # Frozen tiers are skipped; n_tiers limits the tiers touched.
    rvq.freeze_tier(0)
    frozen_before = rvq.codebooks[0].detach().clone()
    third = rvq.codebooks[2].detach().clone()
    assert rvq.replace_unused(v, n_tiers=2) == [0, 16]
    assert torch.equal(rvq.codebooks[0].detach(), frozen_before) and torch.equal(rvq.codebooks[2].detach(), third)
    # Fewer samples than dead codewords: as many as samples.
    assert rvq.replace_unused(v[:3], n_tiers=2)[1] == 3


def test_fit_lloyd_lowers_the_error_tier_after_tier():
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(3000, 8, generator=gen) * torch.linspace(0.3, 2.0, 8)
    rvq = ResidualVQ(8, (5, 5, 5), seed=1)
    rvq.eval()
    random_loss = float(rvq(x)[2].detach())
    mses = rvq.fit_lloyd(x, n_iter=15, seed=0)
    assert len(mses) == 3 and mses[0] > mses[1] > mses[2]
    total = float((x ** 2).sum(1).mean())
    assert mses[0] < 0.6 * total and mses[2] < 0.5 * mses[0]
    losses = [float(rvq(x, n)[2].detach()) for n in (1, 2, 3)]
    assert losses == pytest.approx(mses, rel=1e-4)
    assert losses[-1] < 0.2 * random_loss
    # Partial fit leaves the later tiers alone.
    rvq2 = ResidualVQ(8, (5, 5, 5), seed=1)
    last = rvq2.codebooks[2].detach().clone()
    assert len(rvq2.fit_lloyd(x, n_tiers=2, n_iter=3)) == 2
    assert torch.equal(rvq2.codebooks[2].detach(), last)
    with pytest.raises(DataError):
        rvq.fit_lloyd(x[:20])                                     # fewer samples than 32 codewords


def test_differentiable_kmeans_converges_to_distinct_centers():
    gen = torch.Generator().manual_seed(4)
    q = torch.randn(256, 6, generator=gen, dtype=F64)
    c = differentiable_kmeans(q, 16, temperature=0.1, eps=1e-10, max_iter=500)
    assert c.shape == (16, 6) and c.dtype == F64
    assert torch.unique(c, dim=0).shape[0] == 16
    assert torch.cdist(c, c).add(torch.eye(16, dtype=F64)).min() > 1e-3
    # Converged: more iterations allowed give the same centers (it stopped on eps)...
    assert torch.equal(c, differentiable_kmeans(q, 16, temperature=0.1, eps=1e-10, max_iter=5000))
    # ...and one more DKM step (eqs. 25-27) moves them by at most eps (relative).
    a = torch.softmax(-torch.cdist(q, c) / 0.1, dim=1)
    step = (a.T @ q) / a.sum(0)[:, None]
    assert float(((step - c) ** 2).sum() / (c ** 2).sum()) < 1e-9
    # Centers are attention-weighted means of codewords: inside their convex hull.
    assert c.abs().max() <= q.abs().max()


def test_differentiable_kmeans_small_temperature_approaches_kmeans():
    gen = torch.Generator().manual_seed(5)
    q = torch.randn(512, 4, generator=gen, dtype=F64)
    _, km_mse = kmeans(q, 16, n_iter=100, seed=0)
    c = differentiable_kmeans(q, 16, temperature=1e-4, eps=1e-12, max_iter=300, seed=0)
    mse = float(nearest_codeword(q, c)[1].mean())
    assert mse <= 1.03 * km_mse
    # The paper's T = 1 on small codewords collapses the centers onto the mean.
    small = q * 0.01
    collapsed = differentiable_kmeans(small, 16)
    assert float(collapsed.std(0).max()) < 0.01 * float(small.std(0).min())
    # The automatic temperature is scale-free: same result (up to scale) at any codeword scale.
    auto = differentiable_kmeans(small, 16, temperature=None)
    assert torch.allclose(auto * 100, differentiable_kmeans(q, 16, temperature=None), rtol=1e-6, atol=1e-9)
    assert float(nearest_codeword(q, auto * 100)[1].mean()) <= 1.05 * km_mse


def test_differentiable_kmeans_is_differentiable_and_validates():
    q = torch.randn(32, 3, dtype=F64, requires_grad=True)
    c = differentiable_kmeans(q, 4, temperature=0.5, max_iter=20)
    c.sum().backward()
    assert q.grad is not None and torch.isfinite(q.grad).all()
    q = q.detach()
    for bad in (0, 33):
        with pytest.raises(ConfigError):
            differentiable_kmeans(q, bad)
    with pytest.raises(ConfigError):
        differentiable_kmeans(q, 4, temperature=0.0)
    with pytest.raises(ConfigError):
        differentiable_kmeans(q, 4, eps=-1.0)
    with pytest.raises(ConfigError):
        differentiable_kmeans(q, 4, max_iter=0)
    with pytest.raises(DataError):
        differentiable_kmeans(q[0], 1)
    with pytest.raises(DataError):
        differentiable_kmeans(torch.full((4, 2), float("nan")), 2)


def test_shrink_tiers_codewords_and_stream_bits():
    gen = torch.Generator().manual_seed(6)
    x = torch.randn(2000, 5, generator=gen, dtype=F64)
    rvq = ResidualVQ(5, (6, 6, 6), dtype=F64)
    rvq.fit_lloyd(x, n_iter=10)
    rvq.eval()
    for budget, tiers in [(18, (6, 6, 6)), (14, (6, 6, 2)), (12, (6, 6)), (7, (6, 1)), (4, (4,))]:
        small = rvq.shrink(budget)
        assert small.tier_bits == tiers and small.total_bits() == budget
        assert [cb.shape[0] for cb in small.codebooks] == [1 << b for b in tiers]
        assert small.stream_bits() == 8 * math.ceil(budget / 8) and small.codebooks[0].dtype == F64
        n0 = budget // 6
        for t in range(n0):
            assert torch.equal(small.codebooks[t].detach(), rvq.codebooks[t].detach())
        if budget % 6:
            extra = small.codebooks[n0].detach()
            assert torch.unique(extra, dim=0).shape[0] == 1 << (budget % 6)
        # The shrunk quantizer works end to end and beats dropping the extra tier.
        streams = small.compress(x)
        assert len(streams[0]) == math.ceil(budget / 8)
        assert torch.equal(small.decompress(streams), small.quantize(x)[0])
    l_12, l_14, l_18 = (float(rvq.shrink(b).eval()(x)[2].detach()) for b in (12, 14, 18))
    assert l_18 < l_14 < l_12
    # The shrunk copy does not share storage with the original.
    s = rvq.shrink(12)
    with torch.no_grad():
        s.codebooks[0].add_(1.0)
    assert not torch.equal(s.codebooks[0], rvq.codebooks[0])
    for bad in (0, 19):
        with pytest.raises(ConfigError):
            rvq.shrink(bad)
    with pytest.raises(ConfigError):
        ResidualVQ(5, (6, 4)).shrink(5)


def test_validation_errors():
    for bits in ((), (0,), (17,), (4, 2.5), "44", 3, (True,)):
        with pytest.raises(ConfigError):
            ResidualVQ(4, bits)
    for dim in (0, -1, 2.0):
        with pytest.raises(ConfigError):
            ResidualVQ(dim, (3,))
    with pytest.raises(ConfigError):
        ResidualVQ(4, (3,), dtype=torch.int64)
    rvq = ResidualVQ(4, (3, 3))
    with pytest.raises(DataError, match="D = 4"):
        rvq.quantize(torch.randn(5, 3))                           # wrong last dimension
    with pytest.raises(DataError):
        rvq.quantize(torch.randn(()))
    bad = torch.randn(5, 4)
    bad[2, 1] = float("nan")
    with pytest.raises(DataError, match="NaN"):
        rvq(bad)
    with pytest.raises(DataError):
        rvq.quantize(torch.ones(5, 4, dtype=torch.int64))
    with pytest.raises(DataError):
        rvq.quantize([[1.0, 2.0, 3.0, 4.0]])
    with pytest.raises(DataError):
        rvq.compress(torch.randn(2, 3, 4))                        # streams need [batch, D]
    for n in (0, 3, 1.0):
        with pytest.raises(ConfigError):
            rvq.quantize(torch.randn(5, 4), n_tiers=n)
    with pytest.raises(ConfigError):
        rvq.freeze_tier(2)
    with pytest.raises(DataError):
        rvq.dequantize(torch.tensor([[8, 0]]))                    # index out of range
    with pytest.raises(DataError):
        rvq.dequantize(torch.tensor([[1, 0, 0]]))                 # too many tiers
    with pytest.raises(DataError):
        rvq.dequantize(torch.tensor([[1.0, 0.0]]))
    assert rvq.dequantize(torch.tensor([[1]])).shape == (1, 4)    # first tier only
    # The initialization is small, seeded and documented: uniform in ±0.1/√D.
    a, b = ResidualVQ(16, (4, 4), seed=3), ResidualVQ(16, (4, 4), seed=3)
    assert all(torch.equal(x, y) for x, y in zip(a.codebooks, b.codebooks))
    assert float(a.codebooks[0].detach().abs().max()) <= 0.1 / 4
    assert not torch.equal(a.codebooks[0], ResidualVQ(16, (4, 4), seed=4).codebooks[0])
    # state_dict holds the codebooks only (usage counters are not persistent).
    assert set(a.state_dict()) == {"codebooks.0", "codebooks.1"}


def test_nsvq_gradient_is_finite_when_a_sample_sits_on_its_codeword():
    from chanlab.quant.residual_vq import ResidualVQ

    q = ResidualVQ(4, [2], seed=0)
    v = q.codebooks[0].detach()[:1].clone().requires_grad_(True)      # exactly a codeword
    q.train()
    v_hat, _, loss = q(v)
    (v_hat.sum() + loss).backward()
    assert torch.isfinite(v.grad).all() and torch.isfinite(q.codebooks[0].grad).all()
