"""3GPP NR Type I single-panel codebook (TS 38.214 §5.2.2.2.1), rank 1, codebookMode 1.

The standard's own CSI feedback, the reference every learned codec is compared with. A gNB has
a single panel of ``N1 × N2`` dual-polarized elements, ``P = 2 N1 N2`` CSI-RS ports (port
``p·N1N2 + n1·N2 + n2`` is polarization ``p``, element ``(n1, n2)``); the UE has one antenna.

**Codewords.** With oversampling ``(O1, O2)`` (``O2 = 1`` when ``N2 = 1``) the 2-D DFT beam of
indices ``(l, m)`` is ``v_{l,m} = a_l ⊗ u_m``, ``a_l[n1] = e^{j2π l n1 / (O1 N1)}``,
``u_m[n2] = e^{j2π m n2 / (O2 N2)}``, and the rank-1 precoder is

    W_{l,m,n} = [v_{l,m}; φ_n v_{l,m}] / √P,    φ_n = e^{jπ n / 2},  n ∈ {0, 1, 2, 3}

with the wideband beam ``i1 = (i1,1, i1,2) = (l, m)``, ``l < N1 O1``, ``m < N2 O2``, and one
co-phasing ``i2 = n`` per subband. Two ports (``N1 = N2 = 1``) give the table of the 2-port case,
``[1; φ_n] / √2``.

**PMI search** (the UE side, :meth:`TypeISinglePanel.encode`): the beam and co-phasings that
maximize the received power ``Σ_subbands Σ_subcarriers |h^H W|²`` over the whole band, found
exhaustively and batched: for each beam the per-subband sums ``S = Σ |h1^H v|² + |h2^H v|²`` and
``C = Σ conj(h1^H v) h2^H v`` give ``max_n S + 2 Re(φ_n C)`` in closed form.

**Report size** (counted as the standard counts PMI bits): ``⌈log2(N1 O1)⌉ + ⌈log2(N2 O2)⌉`` bits
for ``i1`` plus ``2`` bits per subband for ``i2``. :meth:`compress` writes exactly those bits
(MSB first, padded to whole bytes, :mod:`chanlab.quant.bit_packing`); :meth:`decompress` reads
them back and raises :class:`~chanlab.core.errors.BitstreamError` on a malformed stream.

Shapes: CSI ``[n, P, n_sc]`` complex (spatial-frequency, one UE antenna); subbands of
``subband_size`` consecutive subcarriers (the last one may be shorter); precoders
``[n, n_subbands, P]`` complex64, unit norm.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from chanlab.core.errors import BitstreamError, ConfigError, DataError

#: (N1, N2) → (O1, O2) of TS 38.214 Table 5.2.2.2.1-2, plus the 2-port case (1, 1).
SUPPORTED_PANELS = {(1, 1): (1, 1), (2, 1): (4, 1), (2, 2): (4, 4), (4, 1): (4, 1), (3, 2): (4, 4),
                    (6, 1): (4, 1), (4, 2): (4, 4), (8, 1): (4, 1), (4, 3): (4, 4), (6, 2): (4, 4),
                    (12, 1): (4, 1), (4, 4): (4, 4), (8, 2): (4, 4), (16, 1): (4, 1)}
CO_PHASING_BITS = 2


class TypeISinglePanel:
    """Type I single-panel, rank 1, codebookMode 1 (module docstring).

    Args:
        n1, n2: the panel's elements per polarization (a row of Table 5.2.2.2.1-2, or 1, 1).
        subband_size: subcarriers per subband (e.g. 4 PRBs × 12 = 48); ``None``: one wideband
            co-phasing.
    """

    def __init__(self, n1: int, n2: int, subband_size: int | None = None):
        if (n1, n2) not in SUPPORTED_PANELS:
            raise ConfigError(f"(N1, N2): expected a panel of TS 38.214 Table 5.2.2.2.1-2 "
                              f"({', '.join(f'{a}x{b}' for a, b in SUPPORTED_PANELS)}), got {n1}x{n2}")
        if subband_size is not None and (isinstance(subband_size, bool) or not isinstance(subband_size, int)
                                         or subband_size < 1):
            raise ConfigError(f"subband_size: expected a number of subcarriers >= 1 or None, got {subband_size!r}")
        self.n1, self.n2 = n1, n2
        self.o1, self.o2 = SUPPORTED_PANELS[(n1, n2)]
        self.n_ports = 2 * n1 * n2
        self.subband_size = subband_size

    # ---- codebook

    def beams(self, dtype: torch.dtype = torch.complex64, device: str | torch.device = "cpu") -> torch.Tensor:
        """All DFT beams ``v_{l,m}`` as columns, ``[N1 N2, N1 O1 · N2 O2]`` (column ``l · N2 O2 + m``)."""
        real = torch.empty((), dtype=dtype).real.dtype
        n1 = torch.arange(self.n1, dtype=real, device=device)
        n2 = torch.arange(self.n2, dtype=real, device=device)
        ls = torch.arange(self.n1 * self.o1, dtype=real, device=device)
        ms = torch.arange(self.n2 * self.o2, dtype=real, device=device)
        a = torch.exp(2j * math.pi * torch.outer(n1, ls).to(dtype) / (self.o1 * self.n1))   # [N1, L]
        u = torch.exp(2j * math.pi * torch.outer(n2, ms).to(dtype) / (self.o2 * self.n2))  # [N2, Mb]
        # v[(n1, n2), (l, m)] = a[n1, l] u[n2, m]
        return (a[:, None, :, None] * u[None, :, None, :]).reshape(self.n1 * self.n2, -1)

    def n_subbands(self, n_sc: int) -> int:
        return 1 if self.subband_size is None else math.ceil(n_sc / self.subband_size)

    def field_bits(self, n_sc: int) -> list[int]:
        """Bits of each PMI field: ``[i1,1, i1,2, i2 of subband 0, i2 of subband 1, ...]``."""
        return [math.ceil(math.log2(self.n1 * self.o1)), math.ceil(math.log2(self.n2 * self.o2))] + \
            [CO_PHASING_BITS] * self.n_subbands(n_sc)

    def payload_bits(self, n_sc: int) -> int:
        """The report's PMI size in bits as the standard counts it (module docstring)."""
        return sum(self.field_bits(n_sc))

    def _check_csi(self, h) -> torch.Tensor:
        if not isinstance(h, torch.Tensor) or not h.is_complex() or h.ndim != 3 or h.shape[1] != self.n_ports:
            raise DataError(f"csi: expected a complex tensor [n, {self.n_ports} ports, n_sc], got "
                            f"{list(h.shape) if isinstance(h, torch.Tensor) else type(h).__name__}"
                            f"{'' if not isinstance(h, torch.Tensor) or h.is_complex() else ' (real)'}")
        if not bool(torch.isfinite(torch.view_as_real(h)).all()):
            raise DataError("csi: expected finite values, got NaN or inf")
        return h

    # ---- UE side

    def encode(self, h: torch.Tensor, chunk: int = 256) -> torch.Tensor:
        """PMI fields ``[n, 2 + n_subbands]`` int64 of CSI ``h`` ``[n, P, n_sc]`` (exhaustive search)."""
        h = self._check_csi(h)
        n, _, n_sc = h.shape
        half = self.n1 * self.n2
        v = self.beams(h.dtype, h.device)                                        # [N1N2, B]
        n_sb = self.n_subbands(n_sc)
        size = n_sc if self.subband_size is None else self.subband_size
        sb_of = torch.arange(n_sc, device=h.device) // size                      # subcarrier -> subband
        phis = torch.exp(0.5j * math.pi * torch.arange(4, device=h.device)).to(h.dtype)   # [4]
        out = torch.empty(n, 2 + n_sb, dtype=torch.int64, device=h.device)
        n_m = self.n2 * self.o2
        for lo in range(0, n, chunk):
            hc = h[lo:lo + chunk]
            p1 = torch.einsum("pb,nps->nbs", v, hc[:, :half].conj())           # h1^H v: [c, B, n_sc]
            p2 = torch.einsum("pb,nps->nbs", v, hc[:, half:].conj())
            power = p1.real.square() + p1.imag.square() + p2.real.square() + p2.imag.square()
            cross = p1.conj() * p2
            s_sb = torch.zeros(*power.shape[:2], n_sb, dtype=power.dtype, device=h.device)
            c_sb = torch.zeros(*cross.shape[:2], n_sb, dtype=cross.dtype, device=h.device)
            s_sb.index_add_(2, sb_of, power)
            c_sb.index_add_(2, sb_of, cross)
            # |p1 + φ p2|² summed = S + 2 Re(φ C): per subband the best of the four φ_n
            gain = s_sb[..., None] + 2 * (c_sb[..., None] * phis).real           # [c, B, n_sb, 4]
            best_gain, best_n = gain.max(-1)                                     # [c, B, n_sb]
            beam = best_gain.sum(-1).argmax(1)                                   # [c]
            rows = torch.arange(len(hc), device=h.device)
            out[lo:lo + chunk, 0] = beam // n_m
            out[lo:lo + chunk, 1] = beam % n_m
            out[lo:lo + chunk, 2:] = best_n[rows, beam]
        return out

    def compress(self, h: torch.Tensor) -> list[bytes]:
        """One byte string per CSI: exactly :meth:`payload_bits` PMI bits, padded to whole bytes."""
        from chanlab.quant.bit_packing import pack_indices

        h = self._check_csi(h)
        return pack_indices(self.encode(h).cpu(), self.field_bits(h.shape[-1]))

    # ---- gNB side

    def decompress(self, streams: Sequence[bytes], n_sc: int) -> torch.Tensor:
        """Precoders ``[n, n_subbands, P]`` complex64 from :meth:`compress` streams for ``n_sc`` subcarriers.

        Raises:
            BitstreamError: not byte strings, a wrong length, nonzero padding, or a field out of range.
        """
        from chanlab.quant.bit_packing import unpack_indices

        if isinstance(n_sc, bool) or not isinstance(n_sc, int) or n_sc < 1:
            raise ConfigError(f"n_sc: expected a number of subcarriers >= 1, got {n_sc!r}")
        fields = unpack_indices(streams, self.field_bits(n_sc))
        if len(fields) and (int(fields[:, 0].max()) >= self.n1 * self.o1
                            or int(fields[:, 1].max()) >= self.n2 * self.o2):
            raise BitstreamError(f"PMI: i1 out of range for a {self.n1}x{self.n2} panel "
                                 f"(i1,1 < {self.n1 * self.o1}, i1,2 < {self.n2 * self.o2})")
        return self.precoders(fields)

    def precoders(self, fields: torch.Tensor) -> torch.Tensor:
        """``W`` ``[n, n_subbands, P]`` complex64 of PMI fields ``[n, 2 + n_subbands]``."""
        v = self.beams(torch.complex64, fields.device)                           # [N1N2, B]
        beam = fields[:, 0] * (self.n2 * self.o2) + fields[:, 1]
        vb = v[:, beam].T                                                        # [n, N1N2]
        phi = torch.exp(0.5j * math.pi * fields[:, 2:].to(torch.float32)).to(torch.complex64)   # [n, n_sb]
        w = torch.cat([vb[:, None, :].expand(-1, phi.shape[1], -1), phi[..., None] * vb[:, None, :]], dim=-1)
        return w / math.sqrt(self.n_ports)


def subband_gain(h: torch.Tensor, w: torch.Tensor, subband_size: int | None) -> torch.Tensor:
    """``Σ_subcarriers |h^H w_subband|²`` per CSI, ``[n]``: the received power a precoder captures.

    Args:
        h: CSI ``[n, P, n_sc]``; w: precoders ``[n, n_subbands, P]``.
    """
    n_sc = h.shape[-1]
    size = n_sc if subband_size is None else subband_size
    w_sc = w[:, torch.arange(n_sc, device=h.device) // size]                    # [n, n_sc, P]
    g = torch.einsum("nps,nsp->ns", h.conj(), w_sc.to(h.dtype))
    return (g.real.square() + g.imag.square()).sum(-1)


__all__ = ["CO_PHASING_BITS", "SUPPORTED_PANELS", "TypeISinglePanel", "subband_gain"]
