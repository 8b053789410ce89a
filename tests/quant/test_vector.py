"""Shared-codebook vector quantizer (the "Vector" baseline).

Nearest codewords against a brute-force argmin, gradients against hand-derived values,
the k-means initialization on well-separated clusters, the configuration limits, and the
bitstream by a round trip (hypothesis).
"""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from chanlab.core.errors import BitstreamError, ConfigError, DataError
from chanlab.quant.vector import SharedVectorQuantizer, kmeans, nearest_codeword

pytestmark = pytest.mark.usefixtures("one_thread")

F64 = torch.float64


def _brute(z: torch.Tensor, w: torch.Tensor, sub_dim: int) -> torch.Tensor:
    """argmin_k ||v - w_k||² per sub-vector (first minimum on ties)."""
    v = z.reshape(-1, sub_dim).to(w.dtype)
    return ((v[:, None, :] - w[None]) ** 2).sum(2).argmin(1).reshape(z.shape[0], -1)


@pytest.mark.parametrize("m,sub_dim,bits,dtype", [(12, 1, 3, F64), (12, 2, 2, F64), (12, 3, 2, torch.float32),
                                                  (8, 4, 3, torch.float32), (6, 2, 6, F64)])
def test_nearest_equals_brute_force(m, sub_dim, bits, dtype):
    gen = torch.Generator().manual_seed(m * sub_dim + bits)
    vq = SharedVectorQuantizer(m, sub_dim, bits, seed=3, dtype=dtype)
    with torch.no_grad():
        vq.codewords.normal_(generator=gen)
    z = torch.randn(300, m, generator=gen, dtype=dtype) * 1.5
    pick = torch.randint(vq.n_codewords, (2 * m // sub_dim,), generator=gen)
    z[:2] = vq.codewords.detach()[pick].reshape(2, m)                         # exact codewords
    z[2] = 1e3                                                                # far outliers
    _, idx = vq(z)
    assert idx.shape == (300, m // sub_dim) and idx.dtype == torch.int64
    assert torch.equal(idx, _brute(z, vq.codewords.detach(), sub_dim))
    # Several chunks of the distance computation (2^12 codewords → 256 rows per chunk).
    if vq.n_codewords == 4096:
        assert z.numel() // sub_dim > 256


def test_nearest_ties_go_to_the_smaller_index():
    w = torch.tensor([[2.0, 0.0], [0.0, 0.0], [1.0, 5.0]], dtype=F64)
    v = torch.tensor([[1.0, 0.0], [3.0, 0.0], [-7.0, 0.0]], dtype=F64)
    idx, d2 = nearest_codeword(v, w)
    assert idx.tolist() == [0, 0, 1] and d2.tolist() == [1.0, 1.0, 49.0]


def _exact_nearest(v: torch.Tensor, w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Brute force: ``Σ (v - w_k)²`` summed directly for every codeword, the smallest index
    among the minima (explicitly, not relying on argmin's tie rule); chunks of 2^22 entries."""
    idx, dist = [], []
    rows = max(1, (1 << 22) // (w.shape[0] * w.shape[1]))
    for lo in range(0, v.shape[0], rows):
        d = ((v[lo:lo + rows, None, :] - w[None]) ** 2).sum(2)                # [rows, K]
        m = d.amin(1, keepdim=True)
        i = torch.where(d == m, torch.arange(w.shape[0]), w.shape[0]).amin(1)
        idx.append(i)
        dist.append(m[:, 0])
    return torch.cat(idx), torch.cat(dist)


def _hard_cases(n: int, dim: int, k: int, dtype, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` vectors and ``k`` codewords ``[k, dim]``, adversarial rows mixed into random ones:
    exact codewords, exact and perturbed midpoints of two codewords, duplicated codewords,
    and (exact arithmetic) half-integer points against integer codewords or ``±w``."""
    gen = torch.Generator().manual_seed(seed)
    w = torch.randn(k, dim, generator=gen, dtype=dtype)
    if k >= 4:
        w[k // 4:k // 2] = torch.randint(-2, 3, (k // 2 - k // 4, dim), generator=gen).to(dtype)
        w[k - 1] = w[0]                                   # duplicated codewords (exact ties)
        w[k // 2] = w[k // 4]
    elif k >= 2:
        w[1] = -w[0]                                      # the origin is exactly equidistant
    v = torch.randn(n, dim, generator=gen, dtype=dtype) * 1.2
    q = n // 8
    a = torch.randint(k, (q,), generator=gen)
    b = torch.randint(k, (q,), generator=gen)
    v[:q] = w[a]                                          # exact codewords
    mid = (w[a] + w[b]) / 2                               # (nearly) equidistant to two codewords
    v[q:2 * q] = mid
    v[2 * q:3 * q] = mid * (1 + torch.finfo(dtype).eps * torch.randn(q, dim, generator=gen, dtype=dtype))
    v[3 * q:4 * q] = mid + 1e-4 * torch.randn(q, dim, generator=gen, dtype=dtype)
    v[4 * q:5 * q] = torch.randint(-5, 6, (q, dim), generator=gen).to(dtype) / 2
    v[5 * q:5 * q + 100] = 0
    return v, w


@pytest.mark.parametrize("dtype", [torch.float32, F64])
@pytest.mark.parametrize("dim,k", [(1, 1), (4, 1), (1, 2), (3, 2), (2, 7), (8, 60), (16, 130), (5, 257)])
def test_nearest_codeword_is_the_exact_brute_force(dim, k, dtype):
    """100 000 vectors: indices identical to the brute-force exact argmin (ties to the smallest
    index), distances equal to the directly summed Σ (v - w)² of the chosen codeword."""
    v, w = _hard_cases(100_000, dim, k, dtype, seed=dim * 1000 + k)
    idx, d2 = nearest_codeword(v, w)
    ref, ref_d2 = _exact_nearest(v, w)
    assert idx.dtype == torch.int64 and d2.dtype == dtype
    assert torch.equal(idx, ref)
    assert torch.equal(d2, ref_d2)


@pytest.mark.parametrize("dtype", [torch.float32, F64])
def test_nearest_codeword_exact_under_cancellation_and_outliers(dtype):
    """A large common offset (the expansion cancels catastrophically), far outliers and a
    wide range of codeword norms: still the brute-force answer."""
    gen = torch.Generator().manual_seed(7)
    w = torch.randn(300, 6, generator=gen, dtype=dtype) * torch.logspace(-3, 2, 300, dtype=dtype)[:, None]
    v = torch.randn(30_000, 6, generator=gen, dtype=dtype)
    v[:1000] *= 1e4
    w_off, v_off = w + 1e3, v[1000:] * 1e-2 + 1e3
    for vv, ww in ((v, w), (v_off, w_off), (v_off, w_off[:40])):
        idx, d2 = nearest_codeword(vv, ww)
        ref, ref_d2 = _exact_nearest(vv, ww)
        assert torch.equal(idx, ref) and torch.equal(d2, ref_d2)


def test_nearest_codeword_does_not_depend_on_chunking(monkeypatch):
    from chanlab.quant import vector

    v, w = _hard_cases(5000, 3, 200, torch.float32, seed=11)
    ref, ref_d2 = _exact_nearest(v, w)
    for cells in (1, 7, 300, 1 << 12):              # one row per chunk up to many
        monkeypatch.setattr(vector, "_CHUNK_CELLS", cells)
        idx, d2 = nearest_codeword(v, w)
        assert torch.equal(idx, ref) and torch.equal(d2, ref_d2)


@pytest.mark.parametrize("precision,unit", [("high", 2.0 ** -11), ("medium", 2.0 ** -8)])
def test_nearest_codeword_allows_for_reduced_precision_matmuls(precision, unit):
    """With TF32 / bfloat16 matmuls allowed the bound widens (float32 only) and the indices
    stay the brute-force ones."""
    from chanlab.quant.vector import _matmul_input_unit

    v, w = _hard_cases(20_000, 8, 100, torch.float32, seed=5)
    ref, _ = _exact_nearest(v, w)
    before = torch.get_float32_matmul_precision()
    try:
        torch.set_float32_matmul_precision(precision)
        assert _matmul_input_unit(torch.float32, v.device) == unit
        assert _matmul_input_unit(F64, v.device) == 0.0
        assert torch.equal(nearest_codeword(v, w)[0], ref)
    finally:
        torch.set_float32_matmul_precision(before)
    assert _matmul_input_unit(torch.float32, v.device) == 0.0


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("dtype", [torch.float32, F64])
def test_nearest_codeword_cuda_matches_brute_force(dtype):
    v, w = _hard_cases(100_000, 16, 1024, dtype, seed=3)
    ref, ref_d2 = _exact_nearest(v, w)
    idx, d2 = nearest_codeword(v.cuda(), w.cuda())
    assert idx.is_cuda and torch.equal(idx.cpu(), ref)
    # CUDA and CPU may sum Σ (v - w)² in different orders: the distances agree to rounding.
    assert torch.allclose(d2.cpu(), ref_d2, rtol=1e-5 if dtype == torch.float32 else 1e-12, atol=0)


def test_forward_value_is_exactly_the_codeword_and_gradients():
    gen = torch.Generator().manual_seed(0)
    beta = 0.3
    vq = SharedVectorQuantizer(6, 2, 2, beta=beta, dtype=F64)
    with torch.no_grad():
        vq.codewords.normal_(generator=gen)
    b = 16
    z = torch.randn(b, 6, generator=gen, dtype=F64).requires_grad_(True)
    g = torch.randn(b, 6, generator=gen, dtype=F64)
    z_q, idx = vq(z)
    w = vq.codewords.detach()[idx].reshape(b, 6)
    assert torch.equal(z_q.detach(), w)                                     # exact, not up to rounding
    # Straight-through path alone: identity to z, nothing to the codewords.
    (z_q * g).sum().backward()
    assert torch.equal(z.grad, g) and vq.codewords.grad is None
    z.grad = None
    # Training objective: decoder term + loss(z, indices).
    z_q, idx = vq(z)
    loss = vq.loss(z, idx)
    expect = beta * ((w - z.detach()) ** 2).sum(1).mean() + ((w - z.detach()) ** 2).sum(1).mean()
    assert torch.allclose(loss, expect, rtol=1e-12)
    ((z_q * g).sum() + loss).backward()
    # Encoder: STE + β-term 2β(z - sg(w)) / b.
    assert torch.allclose(z.grad, g + 2 * beta * (z.detach() - w) / b, rtol=1e-12, atol=1e-14)
    # Codebook: only the codebook loss, 2 (w_k - z_sub) / b summed over the sub-vectors using k.
    expect_w = torch.zeros_like(vq.codewords).index_add_(
        0, idx.flatten(), (2 * (w - z.detach()) / b).reshape(-1, 2))
    assert torch.allclose(vq.codewords.grad, expect_w, rtol=1e-12, atol=1e-14)
    # The two parts separately: disjoint gradient paths.
    vq.codewords.grad = None
    z.grad = None
    vq.commitment_loss(z, idx).backward()
    assert vq.codewords.grad is None and z.grad is not None
    z.grad = None
    vq.codebook_loss(z, idx).backward()
    assert z.grad is None and vq.codewords.grad is not None


@pytest.mark.parametrize("sub_dim,bits", [(2, 2), (3, 2), (1, 3), (2, 3)])
def test_init_from_uses_every_codeword_on_clustered_data(sub_dim, bits):
    k = 2 ** (sub_dim * bits)
    gen = torch.Generator().manual_seed(k)
    centers = torch.randn(k, sub_dim, generator=gen, dtype=F64) * 1.0
    centers = centers / centers.norm(dim=1, keepdim=True).clamp_min(1e-9) * torch.arange(1, k + 1)[:, None]
    # Well separated: random centers at radii 1..k with noise far below their spacing.
    spread = torch.cdist(centers, centers) + torch.eye(k, dtype=F64) * 1e9
    noise = 0.02 * float(spread.min())
    m = 4 * sub_dim
    n = 160                                                                 # 10 sub-vectors per cluster
    label = torch.arange(n * m // sub_dim) % k
    label = label[torch.randperm(label.numel(), generator=gen)]
    v = centers[label] + noise * torch.randn(label.numel(), sub_dim, generator=gen, dtype=F64)
    z = v.reshape(n, m)
    vq = SharedVectorQuantizer(m, sub_dim, bits, dtype=F64)
    mse = vq.init_from(z, seed=1)
    _, idx = vq(z)
    assert torch.unique(idx).numel() == k                                   # every codeword used
    # Codewords sit on the cluster means.
    d = torch.cdist(centers, vq.codewords.detach())
    assert float(d.min(1).values.max()) < 5 * noise
    assert mse < 3 * noise ** 2 * sub_dim


def test_init_from_handles_2_pow_14_codewords():
    gen = torch.Generator().manual_seed(0)
    vq = SharedVectorQuantizer(16, 2, 7)                                    # 2^14 codewords
    assert vq.n_codewords == 1 << 14 and vq.total_bits == 16 * 7
    z = torch.randn(4096, 16, generator=gen)                                # 32768 sub-vectors
    v = z.reshape(-1, 2)
    before = float(nearest_codeword(v, vq.codewords)[1].mean())
    mse = vq.init_from(z, n_iter=1)
    assert torch.isfinite(vq.codewords).all()
    assert mse < before / 10
    _, idx = vq(z[:64])
    assert int(idx.max()) < 1 << 14


def test_kmeans_lloyd_does_not_increase_the_error():
    gen = torch.Generator().manual_seed(5)
    x = torch.randn(2000, 3, generator=gen, dtype=F64)
    errs = [kmeans(x, 32, n_iter=it, seed=2)[1] for it in (1, 3, 10)]
    assert errs[0] >= errs[1] >= errs[2] > 0


def test_config_errors():
    with pytest.raises(ConfigError, match="divide"):
        SharedVectorQuantizer(10, 3, 2)
    with pytest.raises(ConfigError, match="max_codewords"):
        SharedVectorQuantizer(16, 4, 4)                                     # 2^16 > 2^14
    with pytest.raises(ConfigError, match="max_codewords"):
        SharedVectorQuantizer(8, 2, 3, max_codewords=32)                    # 2^6 > 32
    assert SharedVectorQuantizer(8, 2, 3, max_codewords=64).n_codewords == 64
    for bad in [dict(beta=-0.1), dict(beta=float("inf"))]:
        with pytest.raises(ConfigError):
            SharedVectorQuantizer(8, 2, 2, **bad)
    vq = SharedVectorQuantizer(8, 2, 2)
    with pytest.raises(DataError):
        vq(torch.randn(3, 6))
    with pytest.raises(DataError):
        vq.dequantize(torch.tensor([[0, 1, 2, 16]]))
    with pytest.raises(DataError):
        vq.loss(torch.randn(3, 8), torch.zeros(2, 4, dtype=torch.int64))
    with pytest.raises(DataError, match="sub-vectors"):
        vq.init_from(torch.randn(3, 8))                                     # 12 < 16 codewords


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), n=st.integers(1, 12), n_sym=st.integers(1, 6), sub_dim=st.integers(1, 3),
       bits=st.integers(1, 3), crc=st.booleans())
def test_compress_round_trip(seed, n, n_sym, sub_dim, bits, crc):
    gen = torch.Generator().manual_seed(seed)
    m = n_sym * sub_dim
    vq = SharedVectorQuantizer(m, sub_dim, bits, seed=seed % 1000)
    assert torch.equal(vq.symbol_bits, torch.full((n_sym,), sub_dim * bits, dtype=torch.int64))
    assert vq.total_bits == m * bits
    z = torch.randn(n, m, generator=gen)
    z_q, idx = vq(z)
    streams = vq.compress(z, crc=crc)
    assert all(len(s) == (m * bits + 7) // 8 + (2 if crc else 0) for s in streams)
    assert torch.equal(vq.decompress(streams, crc=crc), z_q.detach())
    assert torch.equal(vq.dequantize(idx), z_q.detach())


def test_decompress_rejects_truncated_stream():
    vq = SharedVectorQuantizer(8, 2, 3)
    streams = vq.compress(torch.randn(2, 8))
    with pytest.raises(BitstreamError):
        vq.decompress([streams[0][:-1]])
