"""The FDD transceiver of ``shared/papers/fdd-scalable-precoding-rvq-egat.txt`` (Sections II, IV).

Pilot network (eq. 10) -> shared feature extractor (eq. 11) -> residual VQ with NSVQ
(eqs. 12-17) -> EGAT precoder (eqs. 18-21)::

    y_k   = X^H h_k + n_k                   learned pilots X [M, L], ‖x_l‖² = P     [batch, K, L]
    v_k   = F([Re y_k; Im y_k])              FCN 1024-512-256-D, BN + Mish, tanh   [batch, K, D]
    v̂_k   = RVQ(v_k)                         N tiers of 2^{B_n} codewords, B bits  [batch, K, D]
    W     = EGAT(V̂, P)                       ‖W‖_F² = P                            [batch, M, K]

One feature extractor and one RVQ codebook serve every user (the paper's feedback-module
sharing, Section V-B), so the same weights take any ``K``. ``individual_feedback=True`` builds
the comparison variant of Fig. 7 instead: one extractor and one codebook per user slot
(``n_users`` fixed at construction).

Deployment is split as in Fig. 1: :meth:`FddTransceiver.feedback` runs at the users (pilots
received -> one byte string of ``B`` bits per user), :meth:`FddTransceiver.precode` at the BS
(byte strings -> ``W``).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from chanlab.classical.channel_estimation import receive_pilots
from chanlab.core.errors import BitstreamError, ConfigError, DataError
from chanlab.core.validation import check_complex, check_finite, check_int_range, check_ndim
from chanlab.nn.egat import EgatPrecoder
from chanlab.nn.activations import Mish
from chanlab.quant.residual_vq import ResidualVQ



_BYTES = (bytes, bytearray, memoryview)


def _check_stream_grid(streams) -> None:
    """``streams`` must be drops, each a sequence of the users' byte strings (``[batch][K]``)."""
    def kind(x) -> str:
        return "one bytes object" if isinstance(x, _BYTES) else type(x).__name__

    if isinstance(streams, _BYTES) or not isinstance(streams, Sequence):
        raise BitstreamError(f"streams: expected [batch][n_users] byte strings (a list of drops, each a list of "
                             f"the users' bytes), got {kind(streams)}")
    for b, row in enumerate(streams):
        if isinstance(row, _BYTES) or not isinstance(row, Sequence):
            raise BitstreamError(f"streams[{b}]: expected one drop's list of the users' byte strings, got "
                                 f"{kind(row)} (for one drop pass [[user_0, user_1, ...]])")
        for k, s in enumerate(row):
            if not isinstance(s, _BYTES):
                raise BitstreamError(f"streams[{b}][{k}]: expected a user's byte string, got {type(s).__name__}")

class PilotNetwork(nn.Module):
    """Learnable pilot matrix ``X`` ``[M, L]`` (eq. 10), columns scaled to ``‖x_l‖² = P`` at use.

    Initialized with i.i.d. Gaussian entries (a random pilot; normalization makes the scale
    irrelevant).
    """

    def __init__(self, n_ant: int, n_pilots: int, *, seed: int = 0):
        super().__init__()
        check_int_range(n_ant, "n_ant", low=1, error=ConfigError)
        check_int_range(n_pilots, "n_pilots", low=1, error=ConfigError)
        gen = torch.Generator().manual_seed(int(seed))
        self.real = nn.Parameter(torch.randn(n_ant, n_pilots, generator=gen))
        self.imag = nn.Parameter(torch.randn(n_ant, n_pilots, generator=gen))

    def matrix(self, power: float = 1.0) -> torch.Tensor:
        """``X`` ``[M, L]`` complex with every column of squared norm ``power``."""
        x = torch.complex(self.real, self.imag)
        return x * (float(power) ** 0.5 / x.abs().square().sum(0, keepdim=True).sqrt())

    def forward(self, h: torch.Tensor, noise_power: float, power: float = 1.0,
                generator: torch.Generator | None = None) -> torch.Tensor:
        """Received pilots ``[batch, K, L]`` complex for channels ``h`` ``[batch, K, M]``."""
        return receive_pilots(h, self.matrix(power), noise_power, generator=generator)


def feature_extractor(n_pilots: int, feature_dim: int, hidden: Sequence[int] = (1024, 512, 256)) -> nn.Sequential:
    """The extractor ``F`` of eq. 11: ``2L`` -> hidden (Linear, BatchNorm, Mish) -> ``D`` with tanh."""
    layers: list[nn.Module] = []
    width = 2 * n_pilots
    for h in hidden:
        layers += [nn.Linear(width, h), nn.BatchNorm1d(h), Mish()]
        width = h
    layers += [nn.Linear(width, feature_dim), nn.Tanh()]
    return nn.Sequential(*layers)


class FddTransceiver(nn.Module):
    """Pilots, shared feedback module (extractor + RVQ) and EGAT precoder, trained end to end.

    Args:
        n_ant: BS antennas ``M``.
        n_pilots: pilot length ``L``.
        feature_dim: feature size ``D`` (a multiple of ``M``: the EGAT gives each edge ``D / M``).
        tier_bits: bits of each RVQ tier (``B = Σ B_n``; the paper uses ``N`` equal tiers).
        extractor_hidden: hidden widths of ``F`` (paper: 1024, 512, 256).
        state_dim, init_hidden, norm_hidden, n_layers, alpha, beta: the EGAT's
            (paper: 128, 512, 512, 3, 0.1, 0.1); see :class:`~chanlab.nn.egat.EgatPrecoder`.
        individual_feedback: one extractor and codebook per user slot (needs ``n_users``).
        n_users: user slots of the individual variant.
        seed: initialization seed of the pilots and codebooks (network weights follow torch's
            global seed).
    """

    def __init__(self, n_ant: int, n_pilots: int, feature_dim: int, tier_bits: Sequence[int], *,
                 extractor_hidden: Sequence[int] = (1024, 512, 256), state_dim: int = 128,
                 init_hidden: int = 512, norm_hidden: int = 512, n_layers: int = 3,
                 alpha: float = 0.1, beta: float = 0.1, individual_feedback: bool = False,
                 n_users: int | None = None, seed: int = 0):
        super().__init__()
        check_int_range(feature_dim, "feature_dim", low=1, error=ConfigError)
        self.n_ant, self.n_pilots, self.feature_dim = int(n_ant), int(n_pilots), int(feature_dim)
        self.individual_feedback = bool(individual_feedback)
        if self.individual_feedback:
            if n_users is None:
                raise ConfigError("n_users: the individual-feedback variant has one module per user slot; "
                                  "give n_users")
            check_int_range(n_users, "n_users", low=1, error=ConfigError)
        self.n_slots = int(n_users) if self.individual_feedback else 1
        self._config = dict(n_ant=int(n_ant), n_pilots=int(n_pilots), feature_dim=int(feature_dim),
                            extractor_hidden=[int(h) for h in extractor_hidden], state_dim=int(state_dim),
                            init_hidden=int(init_hidden), norm_hidden=int(norm_hidden), n_layers=int(n_layers),
                            alpha=float(alpha), beta=float(beta), individual_feedback=self.individual_feedback,
                            n_users=None if n_users is None else int(n_users), seed=int(seed))
        self.pilots = PilotNetwork(n_ant, n_pilots, seed=seed)
        self.extractors = nn.ModuleList(feature_extractor(n_pilots, feature_dim, extractor_hidden)
                                        for _ in range(self.n_slots))
        self.quantizers = nn.ModuleList(ResidualVQ(feature_dim, tier_bits, seed=seed + 1 + s)
                                        for s in range(self.n_slots))
        self.precoder = EgatPrecoder(n_ant, feature_dim, state_dim=state_dim, init_hidden=init_hidden,
                                     norm_hidden=norm_hidden, n_layers=n_layers, alpha=alpha, beta=beta)

    # ------------------------------------------------------------------ pieces

    @property
    def quantizer(self) -> ResidualVQ:
        """The shared RVQ (the first slot's in the individual variant)."""
        return self.quantizers[0]

    @property
    def n_tiers(self) -> int:
        return self.quantizer.n_tiers

    @property
    def config(self) -> dict:
        """Constructor arguments that rebuild this model (``tier_bits`` as the RVQ has them now,
        e.g. after an expansion)."""
        return dict(self._config, tier_bits=list(self.quantizer.tier_bits))

    def _rvq(self, slot: int, quantizer: ResidualVQ | None) -> ResidualVQ:
        if quantizer is None:
            return self.quantizers[slot]
        if self.individual_feedback:
            raise ConfigError("quantizer: the individual-feedback variant has one codebook per user slot")
        return quantizer

    def _check_h(self, h: torch.Tensor) -> None:
        check_ndim(h, 3, "h", "[batch, n_users, n_ant]")
        check_complex(h, "h")
        if h.shape[2] != self.n_ant:
            raise DataError(f"h: expected n_ant = {self.n_ant} antennas, got shape {list(h.shape)}")
        if self.individual_feedback and h.shape[1] != self.n_slots:
            raise DataError(f"h: the individual-feedback variant serves exactly {self.n_slots} users, "
                            f"got {h.shape[1]}")

    def _slots(self, n_users: int) -> list[tuple[int, slice]]:
        """(module index, user slice) pairs: one shared module, or one per user."""
        if not self.individual_feedback:
            return [(0, slice(0, n_users))]
        return [(k, slice(k, k + 1)) for k in range(n_users)]

    def extract(self, y: torch.Tensor) -> torch.Tensor:
        """Features ``v`` ``[batch, K, D]`` from received pilots ``y`` ``[batch, K, L]`` (eq. 11)."""
        check_ndim(y, 3, "y", "[batch, n_users, n_pilots]")
        if y.shape[2] != self.n_pilots:
            raise DataError(f"y: expected {self.n_pilots} pilot samples per user, got {list(y.shape)}")
        b, n_users, _ = y.shape
        x = torch.cat([y.real, y.imag], dim=-1)
        parts = []
        for s, users in self._slots(n_users):
            xs = x[:, users]
            parts.append(self.extractors[s](xs.reshape(-1, xs.shape[-1])).reshape(b, -1, self.feature_dim))
        return torch.cat(parts, dim=1)

    def quantize(self, v: torch.Tensor, n_tiers: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``(v̂, L_Q)``: RVQ of every user's features (NSVQ in training mode) and the quantization
        loss of eq. 23 as a mean squared error per feature, ``mean_{drop, k, d} (v − v_q)²``.

        Eq. 23 writes ``Σ_k ‖v_k − v̂_k‖²``; the paper authors' code averages over users and
        feature dimensions instead (``F.mse_loss``), and with their ``λ = 1`` only the mean is
        usable: the sum is ``K D`` times larger and outweighs the sum rate so much that the
        features collapse onto the codewords (quick-size run, M = 16, 5 epochs per stage:
        9.0 bit/s/Hz with the sum, 15.5 with the mean)."""
        b, n_users, d = v.shape
        parts, loss = [], v.new_zeros(())
        for s, users in self._slots(n_users):
            vs = v[:, users]
            v_hat, _, q_loss = self.quantizers[s](vs.reshape(-1, d), n_tiers)
            parts.append(v_hat.reshape(b, -1, d))
            loss = loss + q_loss * vs.shape[1]            # RVQ loss: mean over (drop, user) of Σ_d
        return torch.cat(parts, dim=1), loss / (n_users * d)

    # ------------------------------------------------------------------ training-time forward

    def forward(self, h: torch.Tensor, noise_power: float, power: float = 1.0, *,
                n_tiers: int | None = None, generator: torch.Generator | None = None
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(W, L_Q)`` for channels ``h`` ``[batch, K, M]``: ``W`` ``[batch, M, K]`` with
        ``‖W‖_F² = power``; ``noise_power`` is ``σ²`` at the users (pilot phase)."""
        self._check_h(h)
        y = self.pilots(h, noise_power, power, generator=generator)
        v_hat, q_loss = self.quantize(self.extract(y), n_tiers)
        return self.precoder(v_hat, power), q_loss

    # ------------------------------------------------------------------ deployment

    def feedback(self, y: torch.Tensor, n_tiers: int | None = None, *,
                 quantizer: ResidualVQ | None = None) -> list[list[bytes]]:
        """What the users send: ``[batch][K]`` byte strings of ``Σ_{n ≤ n_tiers} B_n`` payload
        bits each (zero-padded to whole bytes), from received pilots ``y`` ``[batch, K, L]``.
        ``quantizer`` replaces the shared RVQ (e.g. a shrunk one for a smaller budget)."""
        b, n_users, _ = y.shape
        with torch.no_grad():
            v = self.extract(y)
        streams: list[list[bytes]] = [[b""] * n_users for _ in range(b)]
        for s, users in self._slots(n_users):
            vs = v[:, users]
            flat = self._rvq(s, quantizer).compress(vs.reshape(-1, self.feature_dim), n_tiers)
            width = vs.shape[1]
            for i, stream in enumerate(flat):
                streams[i // width][users.start + i % width] = stream
        return streams

    def precode(self, streams: Sequence[Sequence[bytes]], power: float = 1.0,
                n_tiers: int | None = None, *, quantizer: ResidualVQ | None = None) -> torch.Tensor:
        """The BS side: ``W`` ``[batch, M, K]`` from the users' byte strings (``[batch][K]``);
        ``quantizer`` as in :meth:`feedback`.

        Raises:
            BitstreamError: ``streams`` is not a ``[batch][K]`` nesting of byte strings (e.g. one
                ``bytes`` object, or one drop's list instead of a list of drops), or a stream is bad.
            DataError: no drops, or drops with different numbers of users.
        """
        _check_stream_grid(streams)
        if not streams or not streams[0]:
            raise DataError("streams: expected [batch][n_users] byte strings, got an empty list")
        n_users = len(streams[0])
        if any(len(row) != n_users for row in streams):
            raise DataError("streams: every drop must carry the same number of users")
        b = len(streams)
        device = next(self.parameters()).device
        v_hat = torch.empty(b, n_users, self.feature_dim, device=device)
        for s, users in self._slots(n_users):
            flat = [row[k] for row in streams for k in range(users.start, users.stop)]
            v_hat[:, users] = self._rvq(s, quantizer).decompress(flat, n_tiers).to(device).reshape(b, -1,
                                                                                                  self.feature_dim)
        with torch.no_grad():
            return self.precoder(v_hat, power)

    def feedback_bits(self, n_tiers: int | None = None) -> int:
        """Real length in bits of one user's feedback byte string."""
        return self.quantizer.stream_bits(n_tiers)


def check_channels(h: torch.Tensor, name: str = "h") -> torch.Tensor:
    """Validate multi-user channels ``[batch, K, M]`` complex and finite."""
    if not isinstance(h, torch.Tensor):
        raise DataError(f"{name}: expected a torch.Tensor, got {type(h).__name__}")
    check_ndim(h, 3, name, "[batch, n_users, n_ant]")
    check_complex(h, name)
    check_finite(h, name)
    return h
