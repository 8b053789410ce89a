"""Training schemes of CSG-AE: naive (Algorithm 2), PIDA (Algorithm 1) and the Fig. 6 ablations.

The seven strategies of Fig. 6, in the paper's numbering (its caption names 1 as naive, 2 as
K-means initialization alone, 3 as pretraining alone and 4–7 as the strategies combining both;
we read 4–7 as the update rules layered on top, ending with PIDA):

====  ===================  ===========  ==============  ========  ============
 no.  name                 pretraining  k-means init    detached  asynchronous
====  ===================  ===========  ==============  ========  ============
 1    ``naive``            –            –               –         –
 2    ``kmeans-init``      –            ✓               –         –
 3    ``pretrain``         ✓            –               –         –
 4    ``pretrain-kmeans``  ✓            ✓               –         –
 5    ``detached``         ✓            ✓               ✓         –
 6    ``asynchronous``     ✓            ✓               –         ✓
 7    ``pida``             ✓            ✓               ✓         ✓
====  ===================  ===========  ==============  ========  ============

Update rules per step (one AdamW over encoder and codebook; a parameter whose gradient is
``None`` is not stepped, which is how each loss updates only its own parameters):

* synchronous, not detached (Algorithm 2): one step on ``w1 L1 + w2 L2`` for Θ and Ξ, with the
  assignment computed from the current embeddings.
* detached (eq. 25–26): one forward; Θ steps on ``L1``, Ξ on ``L2`` of the detached embeddings.
* asynchronous, not detached: Θ steps on ``w1 L1 + w2 L2`` first; then the embeddings are
  recomputed with the new Θ, reassigned with the old Ξ, and Ξ steps on ``L2`` of them.
* PIDA (Algorithm 1, lines 11–20): Θ steps on ``L1``; fresh detached embeddings; reassignment
  (eq. 27); Ξ steps on ``L2``.

The paper iterates over the whole training set per step; ``batch_size=None`` does that, and
a batch size gives mini-batch epochs (what the CPU presets use). After each phase the weights
with the lowest validation loss are kept (``L1`` in pretraining, ``w1 L1 + w2 L2`` after).
The active ratio (codewords with at least one training sample) is recorded after the
initialization and after every epoch.

Both phases run through :class:`chanlab.core.engine.Trainer` with ``manual_optimization=True``
steps (pretraining clears the codebook's gradient between backward and step; the asynchronous
rules step twice per batch), shuffled by generators seeded with ``seed`` (pretraining) and
``seed + 1`` (training). With a ``checkpoint`` each phase resumes exactly from its own
checkpointer; the train phase's checkpoint also holds the pretraining records and the
active ratio after the initialization, so a run resumed inside the train phase skips both.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
from sklearn.cluster import KMeans

from chanlab.core.checkpoint import Checkpointer
from chanlab.core.engine import Trainer
from chanlab.core.errors import ConfigError
from chanlab.gridization.model import CsgAutoencoder

# name -> (pretraining, k-means init, detached, asynchronous)
STRATEGIES: dict[str, tuple[bool, bool, bool, bool]] = {
    "naive": (False, False, False, False),
    "kmeans-init": (False, True, False, False),
    "pretrain": (True, False, False, False),
    "pretrain-kmeans": (True, True, False, False),
    "detached": (True, True, True, False),
    "asynchronous": (True, True, False, True),
    "pida": (True, True, True, True),
}


@dataclass
class CsgTraining:
    """Hyper-parameters of CSG-AE training (defaults: the paper's Section V-A-2)."""

    scheme: str = "pida"
    pretrain_epochs: int = 2000
    epochs: int = 2000
    batch_size: int | None = None
    lr: float = 1e-2
    weight_decay: float = 1e-4
    w1: float = 1.0
    w2: float = 1.0
    kmeans_max_iter: int = 100

    def __post_init__(self):
        if self.scheme not in STRATEGIES:
            raise ConfigError(f"scheme: unknown {self.scheme!r}; choose from {', '.join(STRATEGIES)}")
        if self.epochs < 1 or self.pretrain_epochs < 0:
            raise ConfigError(f"epochs: expected epochs >= 1 and pretrain_epochs >= 0, got "
                              f"{self.epochs} and {self.pretrain_epochs}")
        if self.batch_size is not None and self.batch_size < 1:
            raise ConfigError(f"batch_size: expected None (full batch) or >= 1, got {self.batch_size}")

    @property
    def flags(self) -> tuple[bool, bool, bool, bool]:
        return STRATEGIES[self.scheme]


@dataclass
class CsgHistory:
    """Per-epoch records of one training run (lists indexed by epoch of their phase)."""

    pretrain_l1: list[float] = field(default_factory=list)
    pretrain_val_l1: list[float] = field(default_factory=list)
    l1: list[float] = field(default_factory=list)
    l2: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    active_ratio: list[float] = field(default_factory=list)     # [0] after init, then per epoch
    best_pretrain_epoch: int = -1
    best_epoch: int = -1

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@torch.no_grad()
def embed_all(model: CsgAutoencoder, rsrp_dbm: torch.Tensor, chunk: int = 2048) -> torch.Tensor:
    """Embeddings of many samples in chunks: ``[n, M] → [n, N]`` (no gradient)."""
    return torch.cat([model.embed(part) for part in rsrp_dbm.split(chunk)])


@torch.no_grad()
def _losses(model: CsgAutoencoder, rsrp_dbm: torch.Tensor, cfg: CsgTraining) -> tuple[float, float, torch.Tensor]:
    x = embed_all(model, rsrp_dbm)
    l1 = float(torch.cat([(model.decoder(xp) - yp).abs().mean(1) for xp, yp in
                          zip(x.split(2048), rsrp_dbm.split(2048))]).mean())
    assign = model.quantizer.assign(x)
    return l1, float(model.quantizer.loss(x, assign)), assign


@torch.no_grad()
def kmeans_init(model: CsgAutoencoder, rsrp_dbm: torch.Tensor, seed: int, max_iter: int = 100) -> None:
    """Line 9 of Algorithm 1: the codebook starts at the K-means centroids of the embeddings."""
    x = embed_all(model, rsrp_dbm).cpu().numpy().astype(np.float32)
    km = KMeans(n_clusters=model.quantizer.n_codes, n_init=1, max_iter=max_iter, random_state=seed).fit(x)
    model.quantizer.init_from(torch.from_numpy(km.cluster_centers_))


def _pretrain(model: CsgAutoencoder, opt: torch.optim.Optimizer, y_train: torch.Tensor, y_val: torch.Tensor,
              cfg: CsgTraining, seed: int, checkpointer: Checkpointer | None, history: CsgHistory,
              desc: str) -> None:
    """Lines 1-8 of Algorithm 1: Θ alone on L1 (the codebook's gradient is cleared before each step)."""
    codebook = model.quantizer.weight

    def step(idx: torch.Tensor) -> dict[str, float]:
        y = y_train[idx.to(y_train.device)]
        opt.zero_grad(set_to_none=True)
        loss = model.reconstruction_loss(y, model.embed(y))
        loss.backward()
        codebook.grad = None
        opt.step()
        return {"loss": float(loss.detach())}

    trainer = Trainer(model, opt, num_samples=len(y_train), batch_size=cfg.batch_size, epochs=cfg.pretrain_epochs,
                      step=step, validate=lambda: {"val_l1": _losses(model, y_val, cfg)[0]}, monitor="val_l1",
                      mode="min", seed=seed, checkpoint=checkpointer, min_batch_size=1, manual_optimization=True,
                      desc=f"{desc} pretrain")
    h = trainer.fit()
    history.pretrain_l1, history.pretrain_val_l1 = list(h["train_loss"]), list(h["val_l1"])
    history.best_pretrain_epoch = h.best_epoch
    model.train()


def _codebook_step(model: CsgAutoencoder, opt: torch.optim.Optimizer, y: torch.Tensor,
                   cfg: CsgTraining) -> torch.Tensor:
    """Ξ steps on L2 of fresh, detached embeddings assigned with the current Ξ (eq. 27)."""
    opt.zero_grad(set_to_none=True)
    with torch.no_grad():
        x_new = model.embed(y)
    l2 = model.quantizer.loss(x_new)
    (cfg.w2 * l2).backward()
    for p in model.encoder.parameters():
        p.grad = None
    opt.step()
    return l2


def _step(model: CsgAutoencoder, opt: torch.optim.Optimizer, y: torch.Tensor, cfg: CsgTraining) -> tuple[float, float]:
    _, _, detached, asynchronous = cfg.flags
    codebook = model.quantizer.weight
    opt.zero_grad(set_to_none=True)
    x = model.embed(y)
    l1 = model.reconstruction_loss(y, x)
    if asynchronous:                                    # Θ first; PIDA is Algorithm 1 lines 11-20
        encoder_loss = cfg.w1 * l1 if detached else cfg.w1 * l1 + cfg.w2 * model.quantizer.loss(x)
        encoder_loss.backward()
        codebook.grad = None
        opt.step()
        l2 = _codebook_step(model, opt, y, cfg)
    elif detached:                                      # eq. (25)-(26), one forward
        l2 = model.quantizer.loss(x.detach())
        (cfg.w1 * l1 + cfg.w2 * l2).backward()          # the detach keeps L2 off the encoder
        opt.step()
    else:                                               # Algorithm 2
        l2 = model.quantizer.loss(x)
        (cfg.w1 * l1 + cfg.w2 * l2).backward()
        opt.step()
    return float(l1.detach()), float(l2.detach())


def train_csg(model: CsgAutoencoder, y_train: torch.Tensor, y_val: torch.Tensor, cfg: CsgTraining, *,
              seed: int = 0, checkpoint: Callable[[str], Checkpointer] | None = None,
              snapshot: Callable[[str, CsgAutoencoder], None] | None = None, desc: str = "CSG-AE") -> CsgHistory:
    """Train ``model`` in place with ``cfg.scheme`` (module docstring).

    Args:
        y_train, y_val: ``[n, M]`` RSRP in dBm on the model's device.
        checkpoint: ``phase -> Checkpointer`` for the checkpoints (on each checkpointer's
            cadence) of the phases ``"pretrain"`` and ``"train"`` (e.g.
            ``lambda p: ctx.checkpoint(f"csg-{p}")``), so a killed run resumes exactly where
            its last save was.
        snapshot: called as ``snapshot("init", model)`` after the initialization and
            ``snapshot("end", model)`` at the end (the Fig. 5 pictures use it).

    Returns:
        The :class:`CsgHistory`; the model holds the best validation weights of the last phase.
    """
    pretrain, kmeans, _, _ = cfg.flags
    history = CsgHistory()
    # One optimizer through both phases, as Algorithm 1 writes it: restarting AdamW's moments
    # after pretraining jolts the encoder in the first epochs and costs codewords.
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    ck_pre = ck_train = None
    if checkpoint is not None:
        ck_pre, ck_train = checkpoint("pretrain"), checkpoint("train")
    model.train()
    if ck_train is None or not ck_train.exists():
        # A run killed before the train phase's first save gets here again: pretraining resumes
        # from its own checkpoint (a finished one only reloads its best weights, its optimizer
        # and the RNG states), so the k-means initialization below comes out the same.
        if pretrain and cfg.pretrain_epochs:
            _pretrain(model, opt, y_train, y_val, cfg, seed, ck_pre, history, desc)
        if kmeans:
            kmeans_init(model, y_train, seed, cfg.kmeans_max_iter)
        history.active_ratio.append(model.quantizer.active_ratio(_losses(model, y_train, cfg)[2]))
        if snapshot is not None:
            snapshot("init", model)

    def step(idx: torch.Tensor) -> dict[str, float]:
        l1, l2 = _step(model, opt, y_train[idx.to(y_train.device)], cfg)
        return {"loss": cfg.w1 * l1 + cfg.w2 * l2, "l1": l1, "l2": l2}

    def after_epoch(epoch: int) -> dict[str, float]:
        return {"active_ratio": model.quantizer.active_ratio(_losses(model, y_train, cfg)[2])}

    def validate() -> dict[str, float]:
        v1, v2, _ = _losses(model, y_val, cfg)
        return {"val_loss": cfg.w1 * v1 + cfg.w2 * v2, "val_l1": v1, "val_l2": v2}

    trainer = Trainer(model, opt, num_samples=len(y_train), batch_size=cfg.batch_size, epochs=cfg.epochs,
                      step=step, validate=validate, monitor="val_loss", mode="min", seed=seed + 1,
                      checkpoint=ck_train, min_batch_size=1, after_epoch=after_epoch, manual_optimization=True,
                      desc=f"{desc} {cfg.scheme}")
    if trainer.resumed:                     # the records of the phases before, kept in this phase's history
        _init_records_from(trainer.history.metrics, history)
    else:
        trainer.history.metrics.update(_init_records(history))
    h = trainer.fit()
    history.l1, history.l2, history.val_loss = list(h["train_l1"]), list(h["train_l2"]), list(h["val_loss"])
    history.active_ratio = history.active_ratio[:1] + list(h["active_ratio"])
    history.best_epoch = h.best_epoch
    if snapshot is not None:
        snapshot("end", model)
    return history


# Pretraining records and the active ratio after the initialization travel in the train phase's
# TrainingHistory under these names (lists the engine never appends to), so that phase's
# checkpoint alone restores the whole CsgHistory.
def _init_records(history: CsgHistory) -> dict[str, list[float]]:
    return {"init_pretrain_l1": list(history.pretrain_l1), "init_pretrain_val_l1": list(history.pretrain_val_l1),
            "init_best_pretrain_epoch": [float(history.best_pretrain_epoch)],
            "init_active_ratio": list(history.active_ratio[:1])}


def _init_records_from(metrics: dict[str, list[float]], history: CsgHistory) -> None:
    history.pretrain_l1 = list(metrics.get("init_pretrain_l1", []))
    history.pretrain_val_l1 = list(metrics.get("init_pretrain_val_l1", []))
    history.best_pretrain_epoch = int(metrics.get("init_best_pretrain_epoch", [-1])[0])
    history.active_ratio = list(metrics.get("init_active_ratio", []))
