"""One trained transceiver for every feedback budget and user count (Section V of the paper).

:class:`ScalableTransceiver` wraps a trained shared-module :class:`~chanlab.precoding.model.FddTransceiver`:

* **Feedback budget** ``bits = B_deploy``: equal to the trained ``B`` uses the codebook as it
  is; smaller budgets use :meth:`ResidualVQ.shrink <chanlab.quant.residual_vq.ResidualVQ.shrink>`
  (keep ``N_0 = ⌊B_deploy / B̄⌋`` tiers, compress tier ``N_0 + 1`` to ``2^{B_r}`` codewords by
  differentiable k-means, eq. 24), computed once per budget and cached; larger budgets need
  the extra tiers of :func:`~chanlab.precoding.training.train_expansion` first.
* **Users**: the extractor and codebook are shared and the EGAT takes any ``K``, so
  :meth:`feedback` and :meth:`precode` accept any number of users.

Usage::

    st = ScalableTransceiver(model)
    x = st.pilot_matrix(power=1.0)                  # [M, L] what the BS broadcasts
    streams = st.feedback(y, bits=15)               # y [batch, K, L] at the users -> [batch][K] bytes
    w = st.precode(streams, power=1.0, bits=15)     # at the BS: [batch, M, K]
    st.save("transceiver.pt"); st = ScalableTransceiver.load("transceiver.pt")
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import torch

from chanlab.core.checkpoint import load_checkpoint, save_checkpoint
from chanlab.core.errors import CheckpointError, ConfigError
from chanlab.precoding.model import FddTransceiver
from chanlab.quant.residual_vq import ResidualVQ

_FORMAT = "chanlab.precoding.ScalableTransceiver/1"


class ScalableTransceiver:
    """Deployment wrapper of a trained shared-module transceiver (module docstring).

    Args:
        model: a trained :class:`FddTransceiver` with the shared feedback module and equal
            tier bits.
        temperature: DKM temperature of the shrinkage (None: the automatic, scale-free choice
            of :func:`~chanlab.quant.residual_vq.differentiable_kmeans`).
        seed: seed of the DKM k-means++ initialization.
    """

    def __init__(self, model: FddTransceiver, *, temperature: float | None = None, seed: int = 0):
        if not isinstance(model, FddTransceiver):
            raise ConfigError(f"model: expected an FddTransceiver, got {type(model).__name__}")
        if model.individual_feedback:
            raise ConfigError("model: the individual-feedback variant has one module per user slot and does not "
                              "scale with K; use the shared model")
        self.model = model.eval()
        self.temperature, self.seed = temperature, int(seed)
        self._shrunk: dict[int, ResidualVQ] = {}

    @property
    def trained_bits(self) -> int:
        """``B`` of the trained codebook (all tiers)."""
        return self.model.quantizer.total_bits()

    def quantizer(self, bits: int | None = None) -> ResidualVQ:
        """The RVQ for a budget of ``bits`` per user (the trained one, or a cached shrink)."""
        full = self.trained_bits
        if bits is None or int(bits) == full:
            return self.model.quantizer
        bits = int(bits)
        if bits > full:
            raise ConfigError(f"bits: the model was trained for B = {full}; a budget of {bits} bits needs "
                              "codebook expansion first (chanlab.precoding.training.train_expansion)")
        if bits < 1:
            raise ConfigError(f"bits: expected a positive feedback budget, got {bits}")
        if bits not in self._shrunk:
            q = self.model.quantizer.shrink(bits, temperature=self.temperature, seed=self.seed)
            self._shrunk[bits] = q.eval()
        return self._shrunk[bits]

    def pilot_matrix(self, power: float = 1.0) -> torch.Tensor:
        """The learned pilots ``X`` ``[M, L]`` with ``‖x_l‖² = power``."""
        with torch.no_grad():
            return self.model.pilots.matrix(power)

    def receive(self, h: torch.Tensor, noise_power: float, power: float = 1.0,
                generator: torch.Generator | None = None) -> torch.Tensor:
        """Simulated pilot reception ``y = X^H h + n`` ``[batch, K, L]`` for channels ``h`` ``[batch, K, M]``."""
        with torch.no_grad():
            return self.model.pilots(h, noise_power, power, generator=generator)

    def feedback(self, y_pilot: torch.Tensor, bits: int | None = None) -> list[list[bytes]]:
        """The users' feedback: ``[batch][K]`` byte strings of ``bits`` payload bits each."""
        return self.model.feedback(y_pilot, quantizer=self.quantizer(bits))

    def precode(self, feedback: Sequence[Sequence[bytes]], power: float = 1.0, bits: int | None = None
                ) -> torch.Tensor:
        """The BS's precoder ``W`` ``[batch, M, K]`` (``‖W‖_F² = power``) from the users' feedback."""
        return self.model.precode(feedback, power, quantizer=self.quantizer(bits))

    def sum_rate(self, h: torch.Tensor, snr_db: float, power: float = 1.0, bits: int | None = None, *,
                 seed: int = 0, chunk: int = 2000) -> tuple[float, int]:
        """Mean sum rate (bit/s/Hz) over the drops ``h`` ``[n, K, M]`` through the real feedback:
        pilots received at ``snr_db`` (noise seeded with ``seed``) -> byte strings of ``bits`` bits
        -> precoder. Also returns the length in bits of one user's byte string."""
        from chanlab.metrics.rates import sum_rate
        from chanlab.precoding.training import noise_power

        sigma2 = noise_power(snr_db, power)
        gen = torch.Generator(device=h.device).manual_seed(int(seed))
        total, sizes = 0.0, set()
        for lo in range(0, h.shape[0], chunk):
            hc = h[lo:lo + chunk]
            streams = self.feedback(self.receive(hc, sigma2, power, generator=gen), bits=bits)
            sizes.update(len(s) for row in streams for s in row)
            total += float(sum_rate(hc, self.precode(streams, power, bits=bits), sigma2, check=False).sum())
        if len(sizes) != 1:
            raise RuntimeError(f"feedback streams of different lengths: {sorted(sizes)}")
        return total / h.shape[0], 8 * sizes.pop()

    def stream_bits(self, bits: int | None = None) -> int:
        """Real length in bits of one user's byte string at this budget (whole bytes)."""
        return self.quantizer(bits).stream_bits()

    # ------------------------------------------------------------------ persistence

    def save(self, path: str | os.PathLike) -> None:
        """Write the model's configuration and weights (atomically)."""
        save_checkpoint(path, {"format": _FORMAT, "config": self.model.config,
                               "state": self.model.state_dict(), "temperature": self.temperature,
                               "seed": self.seed})

    @classmethod
    def load(cls, path: str | os.PathLike, map_location: str | torch.device = "cpu") -> ScalableTransceiver:
        """Read what :meth:`save` wrote (``weights_only`` loading; CheckpointError if it is not ours)."""
        state = load_checkpoint(path, map_location=map_location)
        if not isinstance(state, dict) or state.get("format") != _FORMAT:
            raise CheckpointError(f"{path}: not a ScalableTransceiver checkpoint")
        cfg = dict(state["config"])
        tier_bits = cfg.pop("tier_bits")
        model = FddTransceiver(tier_bits=tier_bits, **cfg)
        try:
            model.load_state_dict(state["state"])
        except RuntimeError as exc:
            raise CheckpointError(f"{path}: weights do not match the stored configuration: {exc}") from None
        return cls(model.to(map_location), temperature=state["temperature"], seed=state["seed"])
