"""Unsupervised training of RJAPCBN on the loss of Eq. (32): Adam, mini-batches, best-on-validation.

The paper (Sec. V-A) trains with Adam on 10000 generated channels and tests on 6400. No labels
are needed: the loss is the negative worst-case sum rate plus the ``lambda``-weighted ``l1``
term, from the network's own output (the closed loop of Fig. 1).

Hyper-parameters. The paper's text reads "the learning rate and batch size are set to 64 and
0.1". This is evidently swapped: the batch size is 64, and read literally the learning rate is
0.1 (:data:`PAPER_LR`). Adam trains with either learning rate here. In one 15-epoch run on 2000 drops
(``Q = I = 16``, ``M = 4``, 10 dB reference SNR, ``lambda = 0.1``), ``lr = 0.1`` converged
fastest but its validation figures jumped from epoch to epoch. ``lr = 1e-2`` ended slightly
higher, and ``lr = 1e-3`` was still climbing. The default is ``lr = 1e-2``; pass ``lr=0.1``
for the literal reading. The paper gives no number of epochs. ``lambda = 0.1`` is its value.

Training runs through the library's one engine, :class:`chanlab.core.engine.Trainer`: each
epoch reshuffles the training drops with a seeded generator, and the model with the lowest
validation loss is kept. That loss is measured as the model is deployed: eval mode, so BN
running statistics and the exact (hard) threshold. A last batch of a single drop is merged into
the batch before it (the engine's minimum batch size is 2 for a model with BatchNorm); the
loop this replaced skipped that drop instead, so runs whose training-set size leaves one drop
over differ from the older ones. The state is checkpointed on the checkpointer's cadence, at the
end and on Ctrl-C, and a killed run resumes exactly where its last save left it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from chanlab.cellfree.model import PAPER_LAMBDA, RJAPCBN, loss_eq32
from chanlab.channels.cellfree import CellFreeDrop
from chanlab.classical.robust_sinr import worst_case_sum_rate
from chanlab.classical.wmmse import average_serving_aps
from chanlab.core.checkpoint import Checkpointer
from chanlab.core.engine import Trainer
from chanlab.core.errors import ConfigError, DataError

#: Batch size of Sec. V-A (see the module docstring about the swapped sentence).
PAPER_BATCH_SIZE = 64
#: Training and test set sizes of Sec. V-A.
PAPER_N_TRAIN = 10_000
PAPER_N_TEST = 6_400
#: The learning rate of Sec. V-A, read literally (see the module docstring).
PAPER_LR = 0.1
#: Default Adam learning rate (see the module docstring).
DEFAULT_LR = 1e-2


@dataclass
class TrainHistory:
    """Per-epoch training and validation figures.

    Attributes:
        train_loss: mean Eq. (32) loss over the epoch's batches (soft threshold, train mode).
        train_rate: mean worst-case sum rate of those batches, in bit/s/Hz.
        val_loss: Eq. (32) on the validation drops, as deployed (eval mode, hard threshold).
        val_rate: worst-case sum rate on the validation drops, as deployed.
        val_q_ave: ``Q_ave`` of Eq. (33) on the validation drops, as deployed.
        best_epoch: the epoch whose weights the model holds on return (0-based).
    """

    train_loss: list[float] = field(default_factory=list)
    train_rate: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    val_rate: list[float] = field(default_factory=list)
    val_q_ave: list[float] = field(default_factory=list)
    best_epoch: int = -1

    def to_dict(self) -> dict:
        return {k: (list(v) if isinstance(v, list) else v) for k, v in self.__dict__.items()}


def _drop_tensors(drops, name: str) -> tuple[torch.Tensor, torch.Tensor]:
    """``(h_hat, eps)`` from a :class:`CellFreeDrop` or a ``(h_hat, eps)`` pair."""
    if isinstance(drops, CellFreeDrop):
        h, eps = drops.h_hat, drops.eps
    elif isinstance(drops, (tuple, list)) and len(drops) == 2:
        h, eps = drops
    else:
        raise DataError(f"{name}: expected a CellFreeDrop or a (h_hat, eps) pair, got "
                        f"{type(drops).__name__}")
    if not isinstance(h, torch.Tensor) or not h.is_complex() or h.ndim != 4:
        raise DataError(f"{name}: expected h_hat as a complex [N, n_users, n_aps, n_ant] tensor, "
                        f"got {getattr(h, 'shape', type(h).__name__)}")
    if not isinstance(eps, torch.Tensor) or not eps.is_floating_point() \
            or list(eps.shape) not in (list(h.shape[:3]), list(h.shape[:2])):
        raise DataError(f"{name}: expected eps as a real [N, n_users, n_aps] or [N, n_users] tensor "
                        f"matching h_hat {list(h.shape)}, got {getattr(eps, 'shape', type(eps).__name__)}")
    if not bool(torch.isfinite(h).all()) or not bool(torch.isfinite(eps).all()) or bool((eps < 0).any()):
        raise DataError(f"{name}: h_hat and eps must be finite and eps >= 0")
    return h, eps


def _noise(noise_power, device: torch.device) -> float | torch.Tensor:
    """Validate ``noise_power``: a positive float, or a tensor broadcastable to ``[batch, n_users]``
    that does not depend on the sample (shape ``[]``, ``[n_users]`` or ``[1, n_users]``)."""
    if isinstance(noise_power, torch.Tensor):
        if noise_power.is_complex() or not noise_power.is_floating_point() or noise_power.ndim > 2 \
                or (noise_power.ndim == 2 and noise_power.shape[0] != 1):
            raise DataError(f"noise_power: expected a real tensor of shape [], [n_users] or "
                            f"[1, n_users], got {noise_power.dtype} {list(noise_power.shape)}")
        if not bool(torch.isfinite(noise_power).all()) or bool((noise_power <= 0).any()):
            raise DataError("noise_power: expected finite values > 0")
        return noise_power.to(device)
    if isinstance(noise_power, bool) or not isinstance(noise_power, (int, float)) \
            or not math.isfinite(noise_power) or noise_power <= 0:
        raise DataError(f"noise_power: expected a finite number > 0, got {noise_power!r}")
    return float(noise_power)


@torch.no_grad()
def evaluate_rjapcbn(model: RJAPCBN, drops, noise_power: float | torch.Tensor,
                     lam: float = PAPER_LAMBDA, *, batch_size: int = 256, hard: bool = True,
                     penalty: str = "l1") -> dict[str, float]:
    """Deployed-mode figures on ``drops``: eval mode, exact threshold by default.

    Args:
        model: the network (on any device; the drops are moved to it batch by batch).
        drops: a :class:`CellFreeDrop` or a ``(h_hat, eps)`` pair.
        noise_power: ``sigma^2`` (see :func:`train_rjapcbn`).
        lam: ``lambda`` of Eq. (32).
        batch_size: evaluation batch size.
        hard: apply the threshold exactly (as deployed) or through Eq. (26).
        penalty: the norm of Eq. (32) (see :func:`chanlab.cellfree.model.loss_eq32`).

    Returns:
        Means over the drops: ``"loss"`` (Eq. 32), ``"worst_case_sum_rate"`` (bit/s/Hz),
        ``"penalty"`` and ``"q_ave"`` (Eq. 33, the mean number of serving APs per user).
    """
    h_all, eps_all = _drop_tensors(drops, "drops")
    was = model.training
    model.eval()
    device = next(model.parameters()).device
    sigma2 = _noise(noise_power, device)
    sums = dict(loss=0.0, worst_case_sum_rate=0.0, penalty=0.0, q_ave=0.0)
    n = h_all.shape[0]
    try:
        for i in range(0, n, batch_size):
            h = h_all[i:i + batch_size].to(device)
            eps = eps_all[i:i + batch_size].to(device)
            v = model(h, hard=hard)
            loss, parts = loss_eq32(v, h, eps, sigma2, lam, penalty=penalty, check=False)
            w = h.shape[0]
            sums["loss"] += float(loss) * w
            sums["worst_case_sum_rate"] += parts["worst_case_sum_rate"] * w
            sums["penalty"] += parts["penalty"] * w
            sums["q_ave"] += float(average_serving_aps(v).sum())
    finally:
        model.train(was)
    return {k: s / n for k, s in sums.items()}


def train_rjapcbn(model: RJAPCBN, drops_train, drops_val, lam: float = PAPER_LAMBDA,
                  noise_power: float | torch.Tensor = 1.0, epochs: int = 20,
                  batch_size: int = PAPER_BATCH_SIZE, lr: float = DEFAULT_LR, seed: int = 0,
                  checkpointer: Checkpointer | None = None, desc: str = "RJAPCBN", *,
                  penalty: str = "l1", weight_decay: float = 0.0) -> TrainHistory:
    """Train ``model`` in place on the loss of Eq. (32), without labels.

    Args:
        model: an :class:`~chanlab.cellfree.model.RJAPCBN` on the device to train on. The
            drops are moved to the model's device batch by batch.
        drops_train: a :class:`~chanlab.channels.cellfree.CellFreeDrop` (its ``h_hat`` and
            ``eps`` are used) or a ``(h_hat, eps)`` pair, ``[N, I, Q, M]`` and ``[N, I, Q]``
            (or ``[N, I]``).
        drops_val: the same, or ``None`` to keep the last epoch instead of the best one.
        lam: ``lambda`` of Eq. (32). The paper uses 0.1.
        noise_power: ``sigma^2``, a float or a real tensor of shape ``[]``, ``[n_users]`` or
            ``[1, n_users]``. Use :func:`chanlab.channels.cellfree.noise_power_for_snr`.
        epochs: passes over the training drops.
        batch_size: mini-batch size. The paper uses 64. A last batch of one drop joins the
            batch before it (BN), so that drop is trained on rather than skipped.
        lr: Adam learning rate (see the module docstring).
        seed: seeds the shuffling.
        checkpointer: saves the state on its cadence (``every_epochs`` / ``every_seconds``), at
            the end and on Ctrl-C, and resumes from it exactly.
        desc: progress-bar label.
        penalty: the norm of Eq. (32), ``"l1"`` (as written) or ``"group"``.
        weight_decay: Adam weight decay (0 in the paper).

    Returns:
        The per-epoch :class:`TrainHistory`. On return, ``model`` holds the best (or last)
        weights and is in eval mode.
    """
    if not isinstance(model, RJAPCBN):
        raise ConfigError(f"model: expected an RJAPCBN, got {type(model).__name__}")
    for name, v, low in (("epochs", epochs, 1), ("batch_size", batch_size, 2)):
        if isinstance(v, bool) or not isinstance(v, int) or v < low:
            raise ConfigError(f"{name}: expected an integer >= {low}, got {v!r}")
    for name, v, allow_zero in (("lr", lr, False), ("lam", lam, True),
                                ("weight_decay", weight_decay, True)):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) \
                or v < 0 or (v == 0 and not allow_zero):
            raise ConfigError(f"{name}: expected a finite number {'>= 0' if allow_zero else '> 0'}, "
                              f"got {v!r}")
    h_train, eps_train = _drop_tensors(drops_train, "drops_train")
    if drops_val is not None:
        _drop_tensors(drops_val, "drops_val")
    want = [model.n_users, model.n_aps, model.n_ant]
    if list(h_train.shape[1:]) != want:
        raise DataError(f"drops_train: expected h_hat [N, {want[0]}, {want[1]}, {want[2]}] for this "
                        f"model, got {list(h_train.shape)}")
    device = next(model.parameters()).device
    sigma2 = _noise(noise_power, device)

    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)

    def step(idx: torch.Tensor):
        h = h_train[idx].to(device)
        eps = eps_train[idx].to(device)
        v = model(h, hard=False)
        loss, parts = loss_eq32(v, h, eps, sigma2, lam, penalty=penalty, check=False)
        return loss, {"rate": parts["worst_case_sum_rate"]}

    def validate() -> dict[str, float]:
        val = evaluate_rjapcbn(model, drops_val, sigma2, lam, penalty=penalty)
        return {"val_loss": val["loss"], "val_rate": val["worst_case_sum_rate"], "val_q_ave": val["q_ave"]}

    trainer = Trainer(model, opt, num_samples=h_train.shape[0], batch_size=batch_size, epochs=epochs, step=step,
                      validate=None if drops_val is None else validate, monitor="val_loss", mode="min",
                      seed=seed, checkpoint=checkpointer, desc=desc)
    h = trainer.fit()
    return TrainHistory(train_loss=list(h["train_loss"]), train_rate=list(h["train_rate"]),
                        val_loss=list(h["val_loss"]), val_rate=list(h["val_rate"]), val_q_ave=list(h["val_q_ave"]),
                        best_epoch=h.best_epoch)


def fit_unfolded(model, drops_train, drops_val=None, noise_power: float | torch.Tensor = 1.0, p_max: float = 1.0, *,
                 steps: tuple[float, ...] = (0.015, 0.03, 0.06), final_ratios: tuple[float, ...] = (0.05, 0.2),
                 momenta: tuple[float, ...] = (0.9,), refine_rounds: int = 1, batch_size: int = 256,
                 desc: str = "unfolded fit") -> dict:
    """Fit the schedule ``(a_1, r, b)`` of an :class:`~chanlab.cellfree.unfolded.UnfoldedRobustAscent`.

    A derivative-free search (see the module for why not gradients): every combination of
    ``steps × final_ratios × momenta``, then ``refine_rounds`` rounds of a coordinate search around
    the best (``a_1`` × 0.7 / 1.4, ``r`` × 0.5 / 2, ``b`` ± 0.05). The score is the mean worst-case
    sum rate (bit/s/Hz) of the deployed output on the training drops; the model keeps the best.

    Args:
        model: the unfolded beamformer (its device is used).
        drops_train, drops_val: :class:`~chanlab.channels.cellfree.CellFreeDrop` or ``(h_hat, eps)``
            pairs; ``drops_val`` (optional) is scored with the chosen and the starting schedule.
        noise_power, p_max: ``σ²`` and the per-AP budget of the drops.

    Returns:
        ``{"schedule": {...}, "train_rate", "start_schedule", "start_train_rate", "val_rate",
        "start_val_rate", "evaluated": [[a_1, r, b, train rate], ...]}``.
    """
    from chanlab.cellfree.unfolded import UnfoldedRobustAscent
    from chanlab.core.progress import progress

    if not isinstance(model, UnfoldedRobustAscent):
        raise ConfigError(f"model: expected an UnfoldedRobustAscent, got {type(model).__name__}")
    if isinstance(refine_rounds, bool) or not isinstance(refine_rounds, int) or refine_rounds < 0:
        raise ConfigError(f"refine_rounds: expected an integer >= 0, got {refine_rounds!r}")
    h_train, eps_train = _drop_tensors(drops_train, "drops_train")
    device = model.schedule.device
    sigma2 = _noise(noise_power, device)

    def score(h_all, eps_all) -> float:
        total = 0.0
        for i in range(0, h_all.shape[0], batch_size):
            h, eps = h_all[i:i + batch_size].to(device), eps_all[i:i + batch_size].to(device)
            total += float(worst_case_sum_rate(h, model(h, eps, sigma2, p_max), eps, sigma2, check=False).sum())
        return total / h_all.shape[0]

    seen: dict[tuple[float, float, float], float] = {}

    def evaluate(candidates) -> None:
        for cand in progress(candidates, desc=desc, unit="schedule"):
            key = tuple(round(float(c), 6) for c in cand)
            if key not in seen and 0 < key[1] <= 1 and 0 < key[2] < 1:
                model.set_schedule(*key)
                seen[key] = score(h_train, eps_train)

    start = tuple(round(float(c), 6) for c in model.schedule.tolist())
    evaluate([start] + [(a, r, b) for a in steps for r in final_ratios for b in momenta])
    for _ in range(refine_rounds):
        a, r, b = max(seen, key=seen.get)
        evaluate([(a * 0.7, r, b), (a * 1.4, r, b), (a, r * 0.5, b), (a, min(r * 2, 1.0), b),
                  (a, r, b - 0.05), (a, r, b + 0.05)])
    best = max(seen, key=seen.get)
    out = {"start_schedule": dict(zip(("step", "final_ratio", "momentum"), start)), "start_train_rate": seen[start],
           "schedule": dict(zip(("step", "final_ratio", "momentum"), best)), "train_rate": seen[best],
           "evaluated": [[*k, v] for k, v in seen.items()]}
    if drops_val is not None:
        h_val, eps_val = _drop_tensors(drops_val, "drops_val")
        model.set_schedule(*start)
        out["start_val_rate"] = score(h_val, eps_val)
    model.set_schedule(*best)
    if drops_val is not None:
        out["val_rate"] = score(h_val, eps_val)
    return out


__all__ = ["DEFAULT_LR", "PAPER_BATCH_SIZE", "PAPER_LR", "PAPER_N_TEST", "PAPER_N_TRAIN", "TrainHistory",
           "evaluate_rjapcbn", "fit_unfolded", "train_rjapcbn"]
