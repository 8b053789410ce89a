"""Training of the feedback schemes: end to end, alternating with bit allocation (Sec. III-C), two-step.

One step function, run by the training engine (:class:`chanlab.core.engine.Trainer`), serves
every scheme of :data:`chanlab.csi_feedback.model.SCHEMES`. Per mini-batch the reconstruction
loss is the paper's ``mean_batch ‖Ĥ − H‖²`` on CsiNet inputs and

* ``nq``, ``lloyd``: that loss, or its log (``nq``, ``lloyd-log``);
* scalar codebooks: eq. 8 (log loss + β'-weighted quantization loss; fixed β for var1, no log
  for var2) plus the codebook loss, one optimizer for all;
* ``round``: the reconstruction loss (the quantizer's smooth rounding carries the gradient);
* ``vector-L``: eq. 4 (reconstruction + β quantization loss) plus the codebook loss.

After every epoch the alternating schemes re-run the bit allocation of Section III-A on the
encoder outputs of ``alloc_samples`` training CSI, warm-started from the current allocation;
when it changes, the codewords are re-fitted by k-means (as the paper does). Its 3·M exact
k-means fits cost about a tenth of an epoch even when no bit moves, so two cheaper schedules
exist (:class:`AllocationSchedule`): every ``alloc_every`` epochs, and only when some output's
σ_m has drifted by more than ``alloc_drift`` since the last allocation. The learning
rate decays exponentially from ``lr`` to ``lr · lr_final_ratio`` over the epochs (the paper
says "exponential decay" without the rate). The weights with the best validation NMSE
(quantized) are kept. Lloyd's scalar quantizers are fitted after training on
``lloyd_samples`` CSI. A run with a checkpointer resumes exactly where a killed one stopped.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import torch

from chanlab.core.checkpoint import Checkpointer
from chanlab.core.engine import Trainer, exponential
from chanlab.core.errors import ConfigError
from chanlab.csi_feedback.data import nmse_db, rho
from chanlab.csi_feedback.model import FeedbackAutoencoder, get_scheme


@dataclass
class FeedbackTraining:
    """Hyper-parameters (defaults: the paper's Section IV-A where it gives them)."""

    epochs: int = 2000
    batch_size: int = 200
    lr: float = 1e-3
    lr_final_ratio: float = 0.01
    beta: float = 0.1
    alloc_samples: int = 2000
    alloc_every: int = 1           # re-run the bit allocation every this many epochs (the paper: every epoch)
    alloc_drift: float = 0.0       # ... and then only if some σ_m moved by more than this fraction (0: always)
    lloyd_samples: int = 20000
    max_bits: int = 8
    max_codewords: int = 1 << 14


@dataclass
class FeedbackHistory:
    train_loss: list[float] = field(default_factory=list)
    val_nmse_db: list[float] = field(default_factory=list)
    bits_std: list[float] = field(default_factory=list)       # spread of the allocation per epoch
    allocation_moves: list[int] = field(default_factory=list)
    allocation_runs: list[int] = field(default_factory=list)   # 1 where the allocation ran after the epoch
    best_epoch: int = -1

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@torch.no_grad()
def encode_all(model: FeedbackAutoencoder, x: torch.Tensor, chunk: int = 1000) -> torch.Tensor:
    """Encoder outputs ``[n, M]`` (eval mode, no gradient)."""
    was = model.training
    model.eval()
    dev = next(model.parameters()).device
    z = torch.cat([model.encode(part.to(dev)) for part in x.split(chunk)])
    model.train(was)
    return z


def make_quantizer(scheme_name: str, m: int, bits: int, z_init: torch.Tensor, cfg: FeedbackTraining):
    """The scheme's quantizer, initialized on encoder outputs ``z_init`` ``[n, M]``."""
    scheme = get_scheme(scheme_name)
    if scheme.quantizer == "scalar":
        from chanlab.quant.scalar_codebooks import ScalarCodebooks

        width = max(bits, min(cfg.max_bits, bits + 3)) if scheme.allocate else bits
        return ScalarCodebooks.from_samples(z_init.cpu(), [bits] * m, width_bits=width)
    if scheme.quantizer == "uniform":
        from chanlab.quant.uniform import UniformQuantizer

        return UniformQuantizer(m, bits)
    if scheme.quantizer == "vector":
        from chanlab.quant.vector import SharedVectorQuantizer

        q = SharedVectorQuantizer(m, scheme.sub_dim, bits, beta=cfg.beta, max_codewords=cfg.max_codewords)
        q.init_from(z_init)
        return q
    return None


def _recon(x_hat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return (x_hat - x).flatten(1).square().sum(1).mean()


def _loss(model: FeedbackAutoencoder, scheme, x: torch.Tensor, beta: float) -> torch.Tensor:
    x_hat, z, _, idx = model(x)
    recon = _recon(x_hat, x)
    q = model.quantizer
    if q is None:
        return torch.log(recon.clamp_min(1e-30)) if scheme.log_loss else recon
    if scheme.quantizer == "scalar":
        return (q.feedback_loss(recon, z, idx, beta, adaptive=scheme.adaptive, log_recon=scheme.log_loss)
                + q.codebook_loss(z, idx))
    return recon + q.loss(z, idx)


@torch.no_grad()
def reconstruct(model: FeedbackAutoencoder, x: torch.Tensor, chunk: int = 1000) -> torch.Tensor:
    """The decoder's output for ``x`` through the (hard) quantizer, in eval mode."""
    was = model.training
    model.eval()
    dev = next(model.parameters()).device
    out = torch.cat([model(part.to(dev))[0].cpu() for part in x.split(chunk)])
    model.train(was)
    return out


class AllocationSchedule:
    """When the alternating schemes re-run the bit allocation of Section III-A.

    It runs after epochs ``every − 1, 2·every − 1, …`` (0-based; ``every = 1``: after each, as the
    paper alternates), and there only when ``drift = 0`` or some encoder output's standard
    deviation σ_m has moved by more than ``drift · σ_m`` since the last allocation (the ranges
    are what the allocation depends on; the first due epoch always runs). Its state, the σ_m of
    the last allocation, is checkpointed with the training (:class:`~chanlab.core.engine.Trainer`
    ``stateful``) so that a resumed run decides as an uninterrupted one.
    """

    def __init__(self, every: int = 1, drift: float = 0.0):
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise ConfigError(f"training.alloc_every: expected a whole number of epochs >= 1, got {every!r}")
        if isinstance(drift, bool) or not isinstance(drift, (int, float)) or not math.isfinite(drift) or drift < 0:
            raise ConfigError(f"training.alloc_drift: expected a fraction >= 0 (0.1: 10 %), got {drift!r}")
        self.every, self.drift = every, float(drift)
        self.sigma_ref: torch.Tensor | None = None

    def due(self, epoch: int) -> bool:
        """Whether the allocation is scheduled after 0-based ``epoch``."""
        return (epoch + 1) % self.every == 0

    def drifted(self, z: torch.Tensor) -> bool:
        """Whether the ranges of ``z`` ``[n, M]`` moved enough since the last allocation to re-run it."""
        if self.drift == 0 or self.sigma_ref is None:
            return True
        sigma = z.double().std(0)
        return bool(((sigma - self.sigma_ref).abs() > self.drift * self.sigma_ref).any())

    def ran(self, z: torch.Tensor) -> None:
        self.sigma_ref = z.double().std(0)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {"sigma_ref": torch.empty(0, dtype=torch.float64) if self.sigma_ref is None else self.sigma_ref}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        ref = state["sigma_ref"]
        self.sigma_ref = None if ref.numel() == 0 else ref.cpu().double()


def _allocate(model: FeedbackAutoencoder, z: torch.Tensor, bits: int) -> int:
    """Section III-A's allocation on encoder outputs ``z`` ``[n, M]``, warm-started; the moves made."""
    from chanlab.quant.scalar_codebooks import allocate_bits

    q = model.quantizer
    alloc = allocate_bits(z, q.n_outputs * bits, init=q.bits.cpu(), max_bits=int(math.log2(q.codewords.shape[1])))
    old = q.bits.cpu()
    if not torch.equal(alloc.bits.cpu(), old):
        # outputs whose bit count changed get k-means codewords of the new size; the others keep
        # the codewords learned end to end with the decoder
        keep = alloc.bits.cpu() == old
        codebooks = [q.codebook(i).detach().cpu() if keep[i] else alloc.codebooks[i] for i in range(len(old))]
        q.set_allocation(alloc.bits, codebooks)
    return len(alloc.moves)


def train_feedback(model: FeedbackAutoencoder, scheme_name: str, bits: int, x_train: torch.Tensor,
                   x_val: torch.Tensor, cfg: FeedbackTraining, *, seed: int = 0,
                   checkpoint: Checkpointer | None = None, desc: str = "") -> FeedbackHistory:
    """Train ``model`` in place with scheme ``scheme_name`` at ``bits`` bits per encoder output.

    Args:
        x_train, x_val: CsiNet inputs ``[n, 2, n_ant, n_delay]`` (CPU; batches move to the
            model's device).

    Returns:
        The history; the model keeps the best validation weights (and, for Lloyd, the fitted
        quantizer).
    """
    scheme = get_scheme(scheme_name)
    if bits < 1:
        raise ConfigError(f"bits: expected at least 1 bit per encoder output, got {bits}")
    dev = next(model.parameters()).device
    gen = torch.Generator().manual_seed(seed)
    x_alloc = x_train[torch.randperm(len(x_train), generator=gen)[:cfg.alloc_samples]]
    m = model.encode(x_alloc[:2].to(dev)).shape[1]
    if scheme.quantizer is not None and not scheme.post_hoc and model.quantizer is None:
        model.quantizer = make_quantizer(scheme_name, m, bits, encode_all(model, x_alloc), cfg).to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)

    def step(idx: torch.Tensor) -> torch.Tensor:
        return _loss(model, scheme, x_train[idx].to(dev), cfg.beta)

    schedule = AllocationSchedule(cfg.alloc_every, cfg.alloc_drift)

    def after_epoch(epoch: int) -> dict[str, float]:
        moves, ran = 0, 0
        if schedule.due(epoch):
            z = encode_all(model, x_alloc).cpu()
            if schedule.drifted(z):
                moves, ran = _allocate(model, z, bits), 1
                schedule.ran(z)
        if moves:
            # the k-means refit moved every codeword: Adam's moments for them are stale
            opt.state.pop(model.quantizer.codewords, None)
        return {"allocation_moves": moves, "allocation_runs": ran, "bits_std": float(model.quantizer.bits.float().std())}

    trainer = Trainer(model, opt, num_samples=len(x_train), batch_size=cfg.batch_size, epochs=cfg.epochs,
                      step=step, validate=lambda: nmse_db(x_val, reconstruct(model, x_val)),
                      monitor="val_nmse_db", mode="min", schedule=exponential(cfg.lr_final_ratio, cfg.epochs),
                      seed=seed, checkpoint=checkpoint, after_epoch=after_epoch if scheme.allocate else None,
                      stateful={"allocation": schedule} if scheme.allocate else None,
                      desc=desc or scheme_name)
    h = trainer.fit()
    history = FeedbackHistory(train_loss=list(h["train_loss"]), val_nmse_db=list(h["val_nmse_db"]),
                              bits_std=list(h["bits_std"]),
                              allocation_moves=[int(v) for v in h["allocation_moves"]],
                              allocation_runs=[int(v) for v in h["allocation_runs"]], best_epoch=h.best_epoch)
    if scheme.post_hoc:
        fit_lloyd(model, x_train, bits, cfg, seed)
    return history


def fit_lloyd(model: FeedbackAutoencoder, x_train: torch.Tensor, bits: int, cfg: FeedbackTraining, seed: int = 0):
    """Lloyd-Max scalar quantizers (exact 1-D k-means) with ``bits`` bits on every output."""
    from chanlab.quant.scalar_codebooks import ScalarCodebooks

    gen = torch.Generator().manual_seed(seed + 1)
    x = x_train[torch.randperm(len(x_train), generator=gen)[:cfg.lloyd_samples]]
    z = encode_all(model, x).cpu()
    model.quantizer = ScalarCodebooks.from_samples(z, [bits] * z.shape[1]).to(next(model.parameters()).device)


def evaluate_feedback(model: FeedbackAutoencoder, x_test: torch.Tensor, n_sc: int = 1024) -> dict[str, Any]:
    """NMSE (dB) and ρ on ``x_test`` through real bitstreams; bits are the streams' lengths."""
    model.eval()
    if model.quantizer is None:
        x_hat = reconstruct(model, x_test)
        m = encode_all(model, x_test[:1]).shape[1]
        bits, payload = 32 * m, 32 * m
    else:
        streams = [s for part in x_test.split(1000) for s in model.compress(part.to(next(model.parameters()).device))]
        x_hat = torch.cat([model.decompress(streams[i:i + 1000]).cpu() for i in range(0, len(streams), 1000)])
        bits, payload = 8 * len(streams[0]), int(model.quantizer.total_bits)
    return {"nmse_db": nmse_db(x_test, x_hat), "rho": rho(x_test, x_hat, n_sc), "stream_bits": bits,
            "payload_bits": payload}
