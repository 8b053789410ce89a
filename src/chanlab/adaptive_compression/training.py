"""Training the backbone compressor on the RD loss (eq. 9): Adam, mini-batches, best-on-validation.

The paper trains with Adam (lr 1e-3, batch 32) for 200 epochs. We keep the model with the
lowest validation RD loss, measured as it will be deployed (rounded latents, eval mode). The
epochs run in the training engine (:class:`chanlab.core.engine.Trainer`), so a run with a
checkpointer resumes exactly where a killed one stopped.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Iterable

import torch
from torch.func import functional_call

from chanlab.adaptive_compression.model import RDCompressor, rd_loss
from chanlab.core.checkpoint import Checkpointer
from chanlab.core.engine import Trainer, constant
from chanlab.core.errors import ConfigError


@dataclass
class TrainHistory:
    """Per-epoch mean training loss/bits/distortion and validation RD loss."""

    train_loss: list[float] = field(default_factory=list)
    train_bits: list[float] = field(default_factory=list)
    train_distortion: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    best_epoch: int = -1

    def to_dict(self) -> dict:
        return dict(self.__dict__)


@torch.no_grad()
def evaluate_rd(model: RDCompressor, x: torch.Tensor, lam: float, batch_size: int = 64) -> dict[str, float]:
    """Deployed-mode (rounded latents) mean bits, distortion and RD loss on ``x``."""
    was = model.training
    model.eval()
    device = next(model.parameters()).device
    bits = dist = 0.0
    for i in range(0, x.shape[0], batch_size):
        xb = x[i:i + batch_size].to(device)
        _, parts = rd_loss(model(xb), xb, lam)
        bits += parts["bits"] * xb.shape[0]
        dist += parts["distortion"] * xb.shape[0]
    model.train(was)
    n = x.shape[0]
    return {"bits": bits / n, "distortion": dist / n, "loss": (bits + lam * dist) / n}


def train_rd(model: RDCompressor, x_train: torch.Tensor, x_val: torch.Tensor | None, lam: float, *,
             epochs: int = 200, batch_size: int = 32, lr: float = 1e-3, prior_lr_scale: float = 1.0,
             seed: int = 0, parameters: Iterable[torch.nn.Parameter] | None = None,
             substitute: Callable[[], dict[str, torch.Tensor]] | None = None,
             checkpointer: Checkpointer | None = None, desc: str = "train") -> TrainHistory:
    """Minimize eq. (9) on ``x_train [N, 2, n_ant, n_sc]`` (already scaled), in place.

    Args:
        model: the compressor (on the device to train on).
        x_train, x_val: real CSI; ``x_val=None`` keeps the last epoch instead of the best one.
        lam: λ of eq. (9).
        prior_lr_scale: the prior's parameters learn at ``lr * prior_lr_scale``. The paper
            uses one learning rate (1.0); a larger factor lets the density, which starts
            broad, catch up with the latents in short CPU runs.
        parameters: what to optimize (default: every parameter of ``model``).
        substitute: called before every training step; the tensors it returns (by parameter
            name) replace those parameters in the forward pass, e.g. quantized weights
            ``θ_0 + Q_t(θ − θ_0)`` whose gradients reach ``θ`` straight through.
        checkpointer: saves the state on its cadence (and at the end) and resumes from it.

    Returns:
        The per-epoch history; ``model`` holds the best (or last) weights on return.
    """
    if (epochs < 1 or batch_size < 1 or not (lr > 0) or not (prior_lr_scale > 0) or not (lam > 0)
            or not math.isfinite(lam)):
        raise ConfigError(f"training: epochs, batch_size, lr, prior_lr_scale and lam must be positive "
                          f"(got {epochs}, {batch_size}, {lr}, {prior_lr_scale}, {lam})")
    device = next(model.parameters()).device
    params = list(parameters) if parameters is not None else list(model.parameters())
    prior_ids = {id(p) for p in model.prior.parameters()}
    groups = [{"params": [p for p in params if id(p) not in prior_ids]},
              {"params": [p for p in params if id(p) in prior_ids], "lr": lr * prior_lr_scale}]
    opt = torch.optim.Adam([g for g in groups if g["params"]], lr=lr)

    def step(idx: torch.Tensor):
        xb = x_train[idx].to(device)
        out = model(xb) if substitute is None else functional_call(model, substitute(), (xb,))
        loss, parts = rd_loss(out, xb, lam)
        return loss, {"bits": parts["bits"], "distortion": parts["distortion"]}

    validate = None if x_val is None else (lambda: evaluate_rd(model, x_val, lam)["loss"])
    trainer = Trainer(model, opt, num_samples=x_train.shape[0], batch_size=batch_size, epochs=epochs, step=step,
                      validate=validate, monitor="val_loss", mode="min", schedule=constant(), seed=seed,
                      checkpoint=checkpointer, desc=desc)
    h = trainer.fit()
    history = TrainHistory(train_loss=list(h["train_loss"]), train_bits=list(h["train_bits"]),
                           train_distortion=list(h["train_distortion"]), val_loss=list(h["val_loss"]),
                           best_epoch=h.best_epoch)
    return history
