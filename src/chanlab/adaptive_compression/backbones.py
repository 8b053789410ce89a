"""Trained backbone codecs for the experiments: one per (CSI size, λ), cached on disk.

Several experiments (the RD curve, the shift test, the fine-tuning experiments) start from
the same backbones, so a trained codec is kept in ``<cache>/models/`` under a key of
everything that determines it (environment, size, data count, λ, training settings, seed).
A run that finds its backbone there loads it instead of training again; training itself
checkpoints every epoch into the run folder, so a killed run resumes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from chanlab.adaptive_compression.codec import CsiCodec
from chanlab.adaptive_compression.environments import environment_csi, split_40_40_20
from chanlab.core.errors import CheckpointError

ARCHITECTURE_VERSION = 1


@dataclass(frozen=True)
class SizeSetup:
    """One CSI size of the experiments: data count and the λ grid to train."""

    n_ant: int
    n_sc: int
    num: int
    lams: tuple[float, ...]
    epochs: int
    enabled: bool = True

    @property
    def label(self) -> str:
        return f"{self.n_ant}x{self.n_sc}"


@dataclass(frozen=True)
class TrainSetup:
    source: str = "source"
    batch_size: int = 32
    lr: float = 1e-3
    prior_lr_scale: float = 1.0
    reuse_models: bool = True


def source_splits(size: SizeSetup, train: TrainSetup, seed: int, device, show_progress: bool = True):
    """Source-environment CSI of ``size`` split 40/40/20: ``(train, val, test)``."""
    h = environment_csi(train.source, size.num, size.n_ant, size.n_sc, seed=seed, device=device,
                        show_progress=show_progress)
    tr, va, te = split_40_40_20(h.shape[0], seed)
    return h[tr], h[va], h[te]


def _model_path(size: SizeSetup, lam: float, train: TrainSetup, seed: int) -> Path:
    from chanlab.channels.store import cache_dir, cache_key

    params = dict(source=train.source, n_ant=size.n_ant, n_sc=size.n_sc, num=size.num, lam=float(lam),
                  epochs=size.epochs, batch_size=train.batch_size, lr=train.lr,
                  prior_lr_scale=train.prior_lr_scale, arch=ARCHITECTURE_VERSION)
    return cache_dir() / "models" / f"rd-backbone-{size.label}-{cache_key('rd-backbone', params, seed)}.pt"


def backbone(size: SizeSetup, lam: float, train: TrainSetup, data, ctx) -> CsiCodec:
    """The backbone codec of ``size`` at ``lam``: from the model cache, or trained now."""
    path = _model_path(size, lam, train, ctx.seed)
    if train.reuse_models and path.is_file():
        try:
            codec = CsiCodec.load(path, device=ctx.device)
            ctx.log.info("backbone %s λ=%g loaded from %s", size.label, lam, path)
            return codec
        except CheckpointError as exc:
            ctx.log.warning("ignoring unreadable cached backbone %s: %s", path, exc)
    h_train, h_val, _ = data
    torch.manual_seed(ctx.seed)
    codec = CsiCodec(size.n_ant, size.n_sc, lam, device=ctx.device)
    codec.fit(h_train, h_val, epochs=size.epochs, batch_size=train.batch_size, lr=train.lr,
              prior_lr_scale=train.prior_lr_scale, seed=ctx.seed,
              checkpointer=ctx.checkpoint(f"backbone-{size.label}-lam{lam:g}"),
              desc=f"{size.label} λ={lam:g}")
    if train.reuse_models:
        codec.save(path)
    ctx.log.info("backbone %s λ=%g trained (best epoch %d)", size.label, lam, codec.history.best_epoch)
    return codec
