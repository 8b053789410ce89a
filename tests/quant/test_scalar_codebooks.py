"""Scalar codebooks with bit allocation (CSI-feedback paper, eqs. 1-8).

Quantization is checked against a brute-force argmin, gradients against hand-derived
values, β' (eqs. 5-7) against a hand computation, the k-means losses against
scikit-learn, and the bit allocation against brute force over all allocations.
"""

import itertools

import numpy as np
import pytest
import torch

from chanlab.core.errors import BitstreamError, ConfigError, DataError
from chanlab.quant.scalar_codebooks import (
    ScalarCodebooks,
    allocate_bits,
    codeword_spacing,
    feedback_loss,
    lloyd_max,
)

pytestmark = pytest.mark.usefixtures("one_thread")


def _brute_nearest(z: torch.Tensor, books: list[torch.Tensor]) -> torch.Tensor:
    """argmin_j (w_j - z)^2 over each output's whole codebook; first minimum on ties."""
    return torch.stack([((z[:, m, None] - w[None]) ** 2).argmin(1) for m, w in enumerate(books)], 1)


def _random_codebooks(gen, bits, dtype=torch.float64):
    return [torch.sort(torch.randn(1 << int(b), generator=gen, dtype=dtype) * (1 + m)).values
            for m, b in enumerate(bits)]


def _gaussian(n, stds, seed=0, dtype=torch.float64):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(n, len(stds), generator=gen, dtype=dtype) * torch.tensor(stds, dtype=dtype)


def _total_loss_table(z, max_bits):
    """l[m][b] for b = 0..max_bits by per-output exact k-means."""
    m_out = z.shape[1]
    return np.stack([lloyd_max(z, torch.full((m_out,), b))[1].numpy() for b in range(max_bits + 1)], 1)


# ----------------------------------------------------------------------------- quantization (eq. 1)

@pytest.mark.parametrize("seed,dtype", [(0, torch.float64), (1, torch.float64), (2, torch.float32)])
def test_nearest_codeword_equals_brute_force(seed, dtype):
    gen = torch.Generator().manual_seed(seed)
    bits = torch.tensor([0, 1, 2, 3, 5, 4, 2])
    books = _random_codebooks(gen, bits, dtype)
    cb = ScalarCodebooks(bits, books, dtype=dtype)
    z = torch.randn(500, bits.numel(), generator=gen, dtype=dtype) * 4
    # Exact codewords, exact midpoints (ties: the smaller index wins) and far outliers.
    z[:7] = torch.stack([b[-1] for b in books])
    z[7:14] = torch.stack([b[0] for b in books])
    z[14:21] = torch.stack([(b[:2].sum() / 2 if b.numel() > 1 else b[0]) for b in books])
    z[21:28] = 1e6
    z[28:35] = -1e6
    zq, idx = cb.quantize(z)
    ref = _brute_nearest(z, books)
    assert torch.equal(idx, ref)
    assert torch.equal(zq, torch.stack([books[m][ref[:, m]] for m in range(bits.numel())], 1))


def test_nearest_is_independent_of_parameter_order():
    gen = torch.Generator().manual_seed(3)
    bits = torch.tensor([3, 3])
    books = _random_codebooks(gen, bits)
    cb = ScalarCodebooks(bits, books, dtype=torch.float64)
    z = torch.randn(200, 2, generator=gen, dtype=torch.float64) * 2
    _, idx = cb.quantize(z)
    with torch.no_grad():
        cb.codewords.copy_(cb.codewords.flip(1))       # unsorted raw storage, same codebooks
    assert torch.equal(cb.quantize(z)[1], idx)
    cb.sort_()
    assert torch.equal(cb.codewords.detach(), torch.stack(books).to(cb.codewords))


def test_float32_forward_is_exactly_the_codeword():
    gen = torch.Generator().manual_seed(4)
    bits = torch.tensor([2, 4, 1])
    cb = ScalarCodebooks(bits, _random_codebooks(gen, bits, torch.float32))
    z = torch.randn(300, 3, generator=gen) * 3
    zq, idx = cb.quantize(z)
    assert torch.equal(zq, cb.dequantize(idx).detach())


def test_straight_through_and_codebook_gradients():
    gen = torch.Generator().manual_seed(5)
    bits = torch.tensor([2, 3, 0])
    cb = ScalarCodebooks(bits, _random_codebooks(gen, bits))
    z = (torch.randn(64, 3, generator=gen) * 2).requires_grad_(True)
    g = torch.randn(64, 3, generator=gen)

    zq, idx = cb.quantize(z)
    (zq * g).sum().backward()
    assert torch.equal(z.grad, g)                       # identity to z
    assert cb.codewords.grad is None                    # nothing to the codewords

    # Codebook loss: d/dw_{m,k} = (2 / batch) Σ_{samples at k} (w_{m,k} - z_m); no grad to z.
    z.grad = None
    cb.codebook_loss(z, idx).backward()
    assert z.grad is None
    w = cb.sorted_codewords().detach()
    expect = torch.zeros_like(w)
    for m in range(3):
        for k in range(1 << int(bits[m])):
            at = idx[:, m] == k
            expect[m, k] = 2 * (w[m, k] - z.detach()[at, m]).sum() / z.shape[0]
    torch.testing.assert_close(cb.codewords.grad, expect)

    # Quantization term: d/dz = -(2 / batch) β' (w_j - z); no grad to the codewords.
    cb.codewords.grad = None
    beta = 0.1
    cb.quantization_loss(z, idx, beta).backward()
    assert cb.codewords.grad is None
    wj = cb.dequantize(idx).detach()
    torch.testing.assert_close(z.grad, -2 * cb.adaptive_weights(idx, beta) * (wj - z.detach()) / z.shape[0])


# ----------------------------------------------------------------------------- adaptive weights (eqs. 5-7)

def test_adaptive_weights_hand_computation():
    books = [torch.tensor([-1.0, 0.0, 0.5, 2.0]),    # B = 2
             torch.tensor([0.0, 3.0]),               # B = 1: both codewords are edges
             torch.tensor([0.7])]                    # B = 0: single codeword
    cb = ScalarCodebooks([2, 1, 0], books)
    z = torch.tensor([[-5.0, -1.0, 0.0],             # -> indices [0, 0, 0]
                      [0.1, 2.0, 9.0],               # -> [1, 1, 0]
                      [0.6, 1.4, -3.0],              # -> [2, 0, 0]
                      [1.9, 1.6, 0.7]])              # -> [3, 1, 0]
    _, idx = cb.quantize(z)
    assert idx.tolist() == [[0, 0, 0], [1, 1, 0], [2, 0, 0], [3, 1, 0]]
    spacing = torch.tensor([
        [2 * (0.0 - -1.0), 2 * 3.0, 1.0],            # smallest codeword: 2 (w^L - w_j)
        [0.5 - -1.0, 2 * 3.0, 1.0],                  # interior: w^L - w^R
        [2.0 - 0.0, 2 * 3.0, 1.0],                   # interior
        [2 * (2.0 - 0.5), 2 * 3.0, 1.0],             # largest codeword: 2 (w_j - w^R)
    ])
    beta = 0.25
    torch.testing.assert_close(cb.adaptive_weights(idx, beta), beta * spacing)
    torch.testing.assert_close(codeword_spacing(cb.sorted_codewords().detach(), cb.bits, idx), spacing)

    wj = cb.dequantize(idx).detach()
    sq = (wj - z) ** 2
    torch.testing.assert_close(cb.quantization_loss(z, idx, beta), (beta * spacing * sq).sum(1).mean())
    # Fixed-β variant ("Proposed-var1", eq. 4's term).
    torch.testing.assert_close(cb.quantization_loss(z, idx, beta, adaptive=False), (beta * sq).sum(1).mean())


def test_feedback_loss_eq8_and_variants():
    books = [torch.tensor([-1.0, 1.0]), torch.tensor([-2.0, 0.0, 1.0, 4.0])]
    cb = ScalarCodebooks([1, 2], books)
    z = torch.tensor([[0.3, 0.2], [-0.5, 3.0]])
    _, idx = cb.quantize(z)
    recon = torch.tensor(1e-4)
    q = cb.quantization_loss(z, idx, 0.1)
    torch.testing.assert_close(cb.feedback_loss(recon, z, idx, 0.1), torch.log(recon) + q)
    torch.testing.assert_close(cb.feedback_loss(recon, z, idx, 0.1, log_recon=False), recon + q)
    torch.testing.assert_close(feedback_loss(recon, q), torch.log(recon) + q)
    assert torch.isfinite(feedback_loss(torch.tensor(0.0), q))


# ----------------------------------------------------------------------------- k-means (Lloyd-Max)

@pytest.mark.parametrize("kind,bits", [("gauss", 1), ("gauss", 2), ("gauss", 3), ("mixture", 2), ("laplace", 3)])
def test_kmeans_losses_match_sklearn(kind, bits):
    from sklearn.cluster import KMeans

    rng = np.random.default_rng(7)
    x = {"gauss": rng.normal(size=2000),
         "mixture": np.concatenate([rng.normal(c, 0.1, 200) for c in (-5.0, 0.0, 2.0, 9.0)]),
         "laplace": rng.laplace(size=1500)}[kind]
    books, losses = lloyd_max(torch.from_numpy(x[:, None]), [bits])
    ours = losses.item() * x.size
    km = KMeans(1 << bits, n_init=10, random_state=0, tol=0).fit(x[:, None])
    # Exact 1-D k-means is never worse than Lloyd's local optimum, and here they agree up
    # to Lloyd's slow final convergence (it stops after max_iter = 300 steps on Gaussian data).
    assert ours <= km.inertia_ * (1 + 1e-12)
    assert ours == pytest.approx(km.inertia_, rel=1e-3)
    # Our centers are a Lloyd fixed point whose inertia is our loss.
    start = books[0].numpy()[:, None]
    km0 = KMeans(1 << bits, init=start, n_init=1, max_iter=1, tol=0).fit(x[:, None])
    assert abs(km0.inertia_ - ours) <= 1e-9 * ours
    np.testing.assert_allclose(np.sort(km0.cluster_centers_[:, 0]), books[0].numpy(), rtol=0, atol=1e-9)


def test_kmeans_with_fewer_distinct_values_than_codewords():
    z = torch.tensor([[1.0, 5.0], [1.0, 5.0], [2.0, 5.0], [4.0, 5.0]], dtype=torch.float64)
    books, losses = lloyd_max(z, [3, 2])
    assert losses.tolist() == [0.0, 0.0]
    assert books[0][:3].tolist() == [1.0, 2.0, 4.0] and books[0].numel() == 8
    assert books[1][0].item() == 5.0 and books[1].numel() == 4
    for b in books:
        assert bool((b.diff() > 0).all())                 # strictly increasing, padding included
    cb = ScalarCodebooks([3, 2], books, dtype=torch.float64)
    zq, _ = cb.quantize(z)
    assert torch.equal(zq, z)


# ----------------------------------------------------------------------------- bit allocation (eqs. 2-3)

def test_wider_outputs_get_more_bits():
    stds = [0.05, 0.3, 1.0, 3.0, 10.0, 0.05, 1.0, 10.0]
    z = _gaussian(1500, stds, seed=1)
    bits, books, loss = allocate_bits(z, 3 * len(stds))
    assert int(bits.sum()) == 3 * len(stds)
    order = np.argsort(stds, kind="stable")
    assert bool((np.diff(bits.numpy()[order]) >= 0).all()), bits
    assert bits[4] > bits[2] > bits[0]
    assert [b.numel() for b in books] == (1 << bits).tolist()


def test_allocation_is_monotone_local_optimum_and_consistent():
    z = _gaussian(400, [0.2, 1.0, 2.5, 0.6], seed=2)
    res = allocate_bits(z, 10, max_bits=6)
    hist = np.array(res.history)
    assert len(res.moves) >= 1 and len(hist) == len(res.moves) + 1
    assert bool((np.diff(hist) < 0).all())               # strictly decreasing moves only
    # Caching: the first pass fits ≤ 3 per output, each move ≤ 2 more.
    assert res.n_fits <= 3 * 4 + 2 * len(res.moves)

    table = _total_loss_table(z, 6)                      # l[m][b]
    bits = res.bits.numpy()
    final = table[np.arange(4), bits].sum()
    assert res.loss == pytest.approx(final, rel=1e-12)
    np.testing.assert_allclose(res.losses.numpy(), table[np.arange(4), bits], rtol=1e-12)
    # Local optimum: no single-bit move between two outputs lowers the total loss.
    for d, a in itertools.permutations(range(4), 2):
        if bits[d] == 0 or bits[a] == 6:
            continue
        moved = bits.copy()
        moved[d] -= 1
        moved[a] += 1
        assert table[np.arange(4), moved].sum() >= final * (1 - 1e-12)

    # The reported loss is the empirical quantization MSE of the returned codebooks.
    cb = ScalarCodebooks.from_allocation(res, dtype=torch.float64)
    zq, _ = cb.quantize(z)
    assert ((zq - z) ** 2).sum(1).mean().item() == pytest.approx(res.loss, rel=1e-9)


def test_allocation_equals_brute_force_on_tiny_case():
    z = _gaussian(300, [0.3, 1.0, 3.0], seed=3)
    res = allocate_bits(z, 6, max_bits=6)
    table = _total_loss_table(z, 6)
    allocs = [a for a in itertools.product(range(7), repeat=3) if sum(a) == 6]
    totals = [table[np.arange(3), a].sum() for a in allocs]
    best = allocs[int(np.argmin(totals))]
    assert tuple(res.bits.tolist()) == best
    assert res.loss == pytest.approx(min(totals), rel=1e-12)


def test_zero_bit_outputs_and_init():
    z = _gaussian(500, [1.0, 2.0, 1.0, 0.5], seed=4)
    z[:, 2] = 0.7                                        # a constant output needs no bits
    res = allocate_bits(z, 8)
    assert res.bits[2].item() == 0
    assert res.codebooks[2].tolist() == pytest.approx([0.7])
    assert res.losses[2].item() == 0.0

    init = torch.tensor([5, 1, 1, 1])
    res2 = allocate_bits(z, 8, init=init)
    assert res2.history[0] == pytest.approx(_total_loss_table(z, 5)[np.arange(4), init.numpy()].sum(), rel=1e-12)
    assert res2.loss <= res2.history[0]

    # Budget not divisible by M: the first total % M outputs start with one more bit.
    res3 = allocate_bits(z, 6, max_iter=0)
    assert res3.bits.tolist() == [2, 2, 1, 1]

    # The whole capability path: codebooks of an allocation compress and decompress.
    cb = ScalarCodebooks.from_allocation(res)
    zq, _ = cb.quantize(z.float())
    streams = cb.compress(z.float(), crc=True)
    assert len(streams[0]) == (8 + 7) // 8 + 2
    assert torch.equal(cb.decompress(streams, crc=True), zq)
    with pytest.raises(BitstreamError):
        cb.decompress([s[:-1] for s in streams], crc=True)


def test_allocation_errors():
    z = _gaussian(50, [1.0, 2.0], seed=5)
    with pytest.raises(ConfigError):
        allocate_bits(z, 10, max_bits=4)                 # 10 > 2 * 4
    with pytest.raises(ConfigError):
        allocate_bits(z, 4, init=[3, 2])                 # wrong sum
    with pytest.raises(ConfigError):
        allocate_bits(z, 4, init=[4, 0], max_bits=3)
    with pytest.raises(ConfigError):
        allocate_bits(z, -1)
    with pytest.raises(DataError):
        allocate_bits(z[:, 0], 4)
    bad = z.clone()
    bad[3, 1] = float("nan")
    with pytest.raises(DataError):
        allocate_bits(bad, 4)


# ----------------------------------------------------------------------------- module bookkeeping

def test_set_allocation_state_dict_and_validation():
    z = _gaussian(300, [1.0, 2.0, 0.5], seed=6, dtype=torch.float32)
    cb = ScalarCodebooks([2, 2, 2], width_bits=3)
    param = cb.codewords
    res = allocate_bits(z, 6)
    cb.set_allocation(res.bits, res.codebooks)          # fits the width: same parameter
    assert cb.codewords is param and cb.total_bits == 6
    assert torch.equal(cb.codebook(1), res.codebooks[1])
    cb.set_allocation([5, 1, 0], lloyd_max(z, [5, 1, 0])[0])   # wider: a new parameter
    assert cb.codewords is not param and cb.codewords.shape == (3, 32)

    fresh = ScalarCodebooks([1, 1, 1])
    fresh.load_state_dict(cb.state_dict())
    assert fresh.bits.tolist() == [5, 1, 0]
    assert torch.equal(fresh.quantize(z)[1], cb.quantize(z)[1])

    with pytest.raises(DataError):
        cb.quantize(z[:, :2])
    with pytest.raises(DataError):
        cb.dequantize(torch.tensor([[0, 2, 0]]))          # B_1 = 1 admits indices 0, 1
    with pytest.raises(DataError):
        ScalarCodebooks([2, 1], [torch.zeros(4), torch.zeros(3)])
    with pytest.raises(DataError):
        ScalarCodebooks([17])
