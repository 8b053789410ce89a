"""The one training engine: every capability trains through :class:`Trainer` with a step function.

    trainer = Trainer(model, torch.optim.Adam(model.parameters(), lr=1e-3),
                      num_samples=len(x_train), batch_size=64, epochs=30,
                      step=lambda idx: loss_of(model, x_train[idx]),      # a loss tensor
                      validate=lambda: {"val_nmse_db": nmse_of(model, x_val)}, monitor="val_nmse_db",
                      schedule=exponential(final_ratio=0.1, epochs=30), seed=0,
                      checkpoint=Checkpointer(folder, "stage.pt"), desc="CsiNet")
    history = trainer.fit()          # model holds the best validation weights, in eval mode

What the engine does, so that no capability writes an epoch loop:

- **Batching.** Each epoch draws ``randperm(num_samples)`` from a seeded ``torch.Generator`` and
  splits it into batches of ``batch_size`` (``None``: one full batch). A last batch smaller than
  ``min_batch_size`` joins the one before it, so a BatchNorm model never sees a batch of one;
  ``min_batch_size`` defaults to 2 when the model holds a BatchNorm layer and 1 otherwise.
- **Steps.** ``step(idx)`` gets the batch's sample indices ``[b]`` (int64, CPU) and returns the
  loss tensor, or ``(loss, {"name": float, ...})``; the engine zeroes the gradients, calls
  ``backward`` and steps the optimizer. With ``manual_optimization=True`` the step does its own
  updates (e.g. two optimizer steps per batch) and returns ``{"loss": float, ...}``. Every value
  is averaged over the epoch's samples into ``history["train_<name>"]``.
- **Learning rate.** ``schedule(epoch, batch, batches_per_epoch) -> factor`` multiplies each
  parameter group's initial learning rate before every step: :func:`constant`,
  :func:`exponential`, :func:`warmup_cosine`.
- **Validation** after every epoch (after ``after_epoch``, whose metrics also go into the
  history): the weights with the best ``monitor`` value (``mode="min"`` or ``"max"``) are kept
  and loaded at the end; without ``validate`` the last weights stay.
- **Checkpoints** (with a :class:`~chanlab.core.checkpoint.Checkpointer`): on the checkpointer's
  cadence (every N epochs or T seconds), always at the end, and on Ctrl-C / SIGTERM, where the
  engine finishes the batch it is in, saves the position inside the epoch and re-raises
  ``KeyboardInterrupt``. The latest state and the best weights are the only files kept.
- **Exact resume.** A checkpoint holds the model, the optimizer, the shuffling generator (and any
  extra ``generators``), the global RNG states, the history, the best weights' epoch and the
  position inside an interrupted epoch. A run killed at any point and started again with the same
  arguments ends with the same weights and history as an uninterrupted one.
- **Data parallel.** In a ``torch.distributed`` process group each rank takes its shard of every
  batch and the gradients are summed with weights (:mod:`chanlab.core.distributed`); only rank 0
  saves. Batches hold at least one sample per rank.
"""

from __future__ import annotations

import contextlib
import math
import signal
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch

from chanlab.core.checkpoint import Checkpointer
from chanlab.core.distributed import is_main, reduce_gradients, reduce_values, shard, world
from chanlab.core.errors import ConfigError
from chanlab.core.progress import progress
from chanlab.core.seeding import torch_generator

Schedule = Callable[[int, int, int], float]
StepOutput = Any  # torch.Tensor | tuple[torch.Tensor, Mapping[str, float]] | Mapping[str, float]


# ---------------------------------------------------------------------------------------------
# learning-rate schedules: factor of each parameter group's initial learning rate
# ---------------------------------------------------------------------------------------------

def constant() -> Schedule:
    """The initial learning rate throughout."""
    return lambda epoch, batch, per_epoch: 1.0


def exponential(final_ratio: float, epochs: int) -> Schedule:
    """Per-epoch decay from 1 to ``final_ratio`` at the last of ``epochs`` epochs."""
    if not (final_ratio > 0) or not math.isfinite(final_ratio):
        raise ConfigError(f"exponential schedule: final_ratio must be a finite number > 0, got {final_ratio!r}")
    decay = final_ratio ** (1 / max(epochs - 1, 1))
    return lambda epoch, batch, per_epoch: decay ** epoch


def warmup_cosine(warmup_epochs: int, epochs: int, min_ratio: float = 0.0) -> Schedule:
    """Linear warm-up over ``warmup_epochs`` epochs of steps, then a cosine down to ``min_ratio``
    at the last step of ``epochs`` epochs (per step)."""
    if warmup_epochs < 0 or epochs < 1:
        raise ConfigError(f"warmup_cosine: expected warmup_epochs >= 0 and epochs >= 1, "
                          f"got {warmup_epochs} and {epochs}")

    def factor(epoch: int, batch: int, per_epoch: int) -> float:
        step, total, warmup = epoch * per_epoch + batch, epochs * per_epoch, warmup_epochs * per_epoch
        if warmup > 0 and step < warmup:
            return (step + 1) / warmup
        span = max(total - warmup, 1)
        t = min(max(step - warmup, 0), span) / span
        return min_ratio + 0.5 * (1.0 - min_ratio) * (1.0 + math.cos(math.pi * t))

    return factor


# ---------------------------------------------------------------------------------------------
# history
# ---------------------------------------------------------------------------------------------

@dataclass
class TrainingHistory:
    """Per-epoch metrics of one :meth:`Trainer.fit`.

    ``metrics[name]`` is a list with one value per epoch run (``train_*`` from the steps, the
    ``after_epoch`` and ``validate`` metrics under their own names, ``lr`` at the epoch's last
    step); ``best_epoch`` is the epoch whose weights were kept (the last one without validation).
    """

    metrics: dict[str, list[float]] = field(default_factory=dict)
    best_epoch: int = -1
    epochs_run: int = 0

    def __getitem__(self, name: str) -> list[float]:
        return self.metrics.get(name, [])

    def append(self, values: Mapping[str, float]) -> None:
        for name, value in values.items():
            self.metrics.setdefault(name, []).append(float(value))

    def to_dict(self) -> dict[str, Any]:
        return {"metrics": {k: list(v) for k, v in self.metrics.items()}, "best_epoch": self.best_epoch,
                "epochs_run": self.epochs_run}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> TrainingHistory:
        return cls({k: [float(x) for x in v] for k, v in d["metrics"].items()}, int(d["best_epoch"]),
                   int(d["epochs_run"]))


# ---------------------------------------------------------------------------------------------
# simulated kills (tests)
# ---------------------------------------------------------------------------------------------

class SimulatedKill(BaseException):
    """Raised by :func:`kill_after_epochs`: the process "dies" without any further save."""


_kill_after: list[int | None] = [None]


@contextlib.contextmanager
def kill_after_epochs(n_epochs: int) -> Iterator[None]:
    """Within the block, every :meth:`Trainer.fit` dies (:class:`SimulatedKill`) once it has
    finished epoch ``n_epochs`` (counted from 1) and done its cadence save, as a process killed
    right then would. Resume tests wrap the first run in it::

        with pytest.raises(SimulatedKill), kill_after_epochs(3):
            train(..., checkpoint=ck)
        train(..., checkpoint=ck)        # resumes and must end as an uninterrupted run
    """
    previous = _kill_after[0]
    _kill_after[0] = int(n_epochs)
    try:
        yield
    finally:
        _kill_after[0] = previous


# ---------------------------------------------------------------------------------------------
# the engine
# ---------------------------------------------------------------------------------------------

def batch_indices(order: torch.Tensor, batch_size: int | None, min_batch_size: int) -> list[torch.Tensor]:
    """``order`` split into batches of ``batch_size`` (``None``: one batch); a last batch smaller
    than ``min_batch_size`` joins the one before it."""
    if batch_size is None:
        return [order]
    batches = list(order.split(batch_size))
    if len(batches) > 1 and len(batches[-1]) < min_batch_size:
        batches[-2:] = [torch.cat(batches[-2:])]
    return batches


def _has_batchnorm(model: torch.nn.Module) -> bool:
    return any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in model.modules())


def _check_positive_int(value: Any, name: str, low: int = 1) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ConfigError(f"{name}: expected an integer >= {low}, got {value!r}")


class Trainer:
    """Train ``model`` with ``optimizer`` on ``num_samples`` samples through ``step`` (module docstring).

    Args:
        model: the module whose weights are trained, checkpointed and kept at their best.
        optimizer: its optimizer (its groups' ``lr`` are the initial learning rates).
        num_samples: training-set size; ``step`` gets indices into it.
        batch_size: samples per step (``None``: the whole set).
        epochs: total epochs (a resumed run counts the ones already done).
        step: ``step(idx) -> loss`` (see the module docstring for the other return forms).
        validate: ``() -> float`` (stored as ``monitor``) or ``-> {name: float}`` holding ``monitor``.
        monitor, mode: the validation value that picks the kept weights; ``"min"`` or ``"max"``.
        schedule: learning-rate factor hook (default :func:`constant`).
        seed: seed of the shuffling generator.
        checkpoint: where to save and resume from (``None``: nothing is saved).
        min_batch_size: smallest batch a step may get (default 2 with BatchNorm, else 1).
        after_epoch: ``(epoch) -> {name: float} | None`` after each epoch's steps (e.g. codebook
            refits); its values go into the history.
        train_mode: puts the model in training mode before each epoch (default ``model.train()``).
        generators: further generators the steps draw from; saved and restored with the rest.
        stateful: further objects with ``state_dict()`` / ``load_state_dict(state)`` whose state
            the hooks change (e.g. what ``after_epoch`` last decided); saved and restored with the rest.
        manual_optimization: ``step`` updates the weights itself and returns ``{"loss": ...}``.
        desc: progress-bar label.
    """

    def __init__(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer, *, num_samples: int,
                 batch_size: int | None, epochs: int, step: Callable[[torch.Tensor], StepOutput],
                 validate: Callable[[], float | Mapping[str, float]] | None = None, monitor: str = "val_loss",
                 mode: str = "min", schedule: Schedule | None = None, seed: int = 0,
                 checkpoint: Checkpointer | None = None, min_batch_size: int | None = None,
                 after_epoch: Callable[[int], Mapping[str, float] | None] | None = None,
                 train_mode: Callable[[], Any] | None = None,
                 generators: Mapping[str, torch.Generator] | None = None,
                 stateful: Mapping[str, Any] | None = None,
                 manual_optimization: bool = False, desc: str = "training"):
        _check_positive_int(epochs, "epochs", low=0)
        _check_positive_int(num_samples, "num_samples")
        if batch_size is not None:
            _check_positive_int(batch_size, "batch_size")
        if mode not in ("min", "max"):
            raise ConfigError(f"mode: expected 'min' or 'max', got {mode!r}")
        if checkpoint is not None and not isinstance(checkpoint, Checkpointer):
            raise ConfigError(f"checkpoint: expected a chanlab Checkpointer or None, got {type(checkpoint).__name__}")
        self.min_batch_size = (2 if _has_batchnorm(model) else 1) if min_batch_size is None else int(min_batch_size)
        # data parallel: every rank's shard of a batch holds at least one sample
        self.min_batch_size = max(self.min_batch_size, world()[1])
        if num_samples < self.min_batch_size:
            raise ConfigError(f"training set: {num_samples} sample(s) cannot fill one batch of at least "
                              f"{self.min_batch_size} (the model has BatchNorm layers, which need 2 or more "
                              f"samples per batch in training mode); use more training data")
        self.model, self.optimizer = model, optimizer
        self.num_samples, self.batch_size, self.epochs = num_samples, batch_size, epochs
        self.step, self.validate, self.monitor, self.mode = step, validate, monitor, mode
        self.schedule = schedule or constant()
        self.checkpoint, self.after_epoch, self.train_mode = checkpoint, after_epoch, train_mode
        self.manual_optimization, self.desc = manual_optimization, desc
        self.generator = torch_generator(seed)
        self.generators = dict(generators or {})
        self.stateful = dict(stateful or {})
        self.history = TrainingHistory()
        for group in optimizer.param_groups:
            group.setdefault("initial_lr", group["lr"])
        self._best_state: dict[str, torch.Tensor] | None = None
        self._best_value = math.inf if mode == "min" else -math.inf
        self._start_epoch = 0
        self._resume_batch = 0
        self._resume_sums: dict[str, float] = {}
        self._epoch_generator_state: torch.Tensor | None = None
        self._stop_requested = False
        self._saved_best_epoch = -1
        self.resumed = False
        if checkpoint is not None:
            self._load(checkpoint)

    # -- state -----------------------------------------------------------------------------------

    @property
    def start_epoch(self) -> int:
        """The epoch this fit starts at (non-zero after a resume)."""
        return self._start_epoch

    def _device(self) -> torch.device:
        p = next(self.model.parameters(), None)
        return p.device if p is not None else torch.device("cpu")

    def _load(self, checkpoint: Checkpointer) -> None:
        state = checkpoint.load_latest(map_location=self._device())
        if state is None:
            return
        if state.get("engine") != 1:
            raise ConfigError(f"checkpoint {checkpoint.path}: written by another chanlab training loop; "
                              f"delete it to start this stage again")
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        # generator states are CPU byte tensors whatever the device (map_location moved them)
        self.generator.set_state(state["generator"].cpu())
        for name, g_state in state["generators"].items():
            if name in self.generators:
                self.generators[name].set_state(g_state.cpu())
        for name, obj_state in state.get("stateful", {}).items():
            if name in self.stateful:
                self.stateful[name].load_state_dict(obj_state)
        self.history = TrainingHistory.from_dict(state["history"])
        self._best_value = float(state["best_value"])
        if state["best_epoch"] >= 0 and self.validate is not None:
            self._best_state = checkpoint.load_best(state["best_epoch"], map_location=self._device())
            self._saved_best_epoch = int(state["best_epoch"])
        self._start_epoch = int(state["epoch"])
        self._resume_batch = int(state["batch"])
        self._resume_sums = dict(state["sums"])
        epoch_generator = state.get("epoch_generator")
        self._epoch_generator_state = None if epoch_generator is None else epoch_generator.cpu()
        self.resumed = True

    def _save(self, epoch: int, batch: int = 0, sums: Mapping[str, float] | None = None) -> None:
        """Save the state at ``batch`` batches into ``epoch`` (``batch=0``: at the start of it)."""
        if self.checkpoint is None or not is_main():
            return
        state = {"engine": 1, "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                 "generator": self.generator.get_state(),
                 "generators": {k: g.get_state() for k, g in self.generators.items()},
                 "stateful": {k: obj.state_dict() for k, obj in self.stateful.items()},
                 "history": self.history.to_dict(), "best_epoch": self.history.best_epoch,
                 "best_value": self._best_value, "epoch": epoch, "batch": batch, "sums": dict(sums or {})}
        if batch:
            state["epoch_generator"] = self._epoch_generator_state
        if self._best_state is not None and self.history.best_epoch != self._saved_best_epoch:
            self.checkpoint.save_best(self.history.best_epoch, self._best_state)
            self._saved_best_epoch = self.history.best_epoch
        self.checkpoint.save(state)
        self.checkpoint.prune_best(self.history.best_epoch)

    # -- Ctrl-C ------------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _graceful_interrupts(self) -> Iterator[None]:
        """First Ctrl-C / SIGTERM: finish the batch, save, raise KeyboardInterrupt; second: now."""
        if self.checkpoint is None or threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}

        def handler(signum, frame):
            if self._stop_requested:
                raise KeyboardInterrupt
            self._stop_requested = True

        for s in previous:
            signal.signal(s, handler)
        try:
            yield
        finally:
            for s, h in previous.items():
                signal.signal(s, h)

    # -- the loop ------------------------------------------------------------------------------------

    def _run_step(self, idx: torch.Tensor) -> dict[str, float]:
        # data parallel: this rank's shard of the batch, gradients weighted by its share and summed
        # over the ranks (chanlab.core.distributed)
        distributed = world()[1] > 1
        if distributed and self.manual_optimization:
            raise ConfigError("data-parallel training needs the engine's own optimizer step; this training "
                              "updates its weights itself (manual_optimization): run it on one process")
        local = shard(idx) if distributed else idx
        out = self.step(local)
        if self.manual_optimization:
            if not isinstance(out, Mapping) or "loss" not in out:
                raise ConfigError("step: with manual_optimization it must return a dict holding 'loss'")
            return {k: float(v) for k, v in out.items()}
        extra: Mapping[str, float] = {}
        if isinstance(out, tuple):
            out, extra = out
        if not isinstance(out, torch.Tensor) or out.dim() != 0:
            raise ConfigError(f"step: expected a scalar loss tensor, got {type(out).__name__}")
        self.optimizer.zero_grad(set_to_none=True)
        out.backward()
        weight = len(local) / len(idx)
        if distributed:
            reduce_gradients(self.model.parameters(), weight)
        self.optimizer.step()
        values = {"loss": float(out.detach()), **{k: float(v) for k, v in extra.items()}}
        return reduce_values(values, weight) if distributed else values

    def _is_better(self, value: float) -> bool:
        return value < self._best_value if self.mode == "min" else value > self._best_value

    def _validate(self, epoch: int) -> dict[str, float]:
        if self.validate is None:
            return {}
        out = self.validate()
        values = {self.monitor: float(out)} if not isinstance(out, Mapping) else {k: float(v) for k, v in out.items()}
        if self.monitor not in values:
            raise ConfigError(f"validate: returned {sorted(values)}, which lacks the monitored {self.monitor!r}")
        value = values[self.monitor]
        if math.isfinite(value) and self._is_better(value):
            self._best_value = value
            self._best_state = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
            self.history.best_epoch = epoch
        return values

    def fit(self) -> TrainingHistory:
        """Run the remaining epochs; the model ends with the kept weights, in eval mode."""
        last_save = time.monotonic()
        every_epochs, every_seconds = (self.checkpoint.every_epochs, self.checkpoint.every_seconds) \
            if self.checkpoint is not None else (None, None)
        self._stop_requested = False
        with self._graceful_interrupts(), progress(total=self.epochs, desc=self.desc, unit="epoch") as bar:
            bar.update(self._start_epoch)
            for epoch in range(self._start_epoch, self.epochs):
                (self.train_mode or self.model.train)()
                if epoch == self._start_epoch and self._resume_batch:
                    self.generator.set_state(self._epoch_generator_state)
                self._epoch_generator_state = self.generator.get_state()
                order = torch.randperm(self.num_samples, generator=self.generator)
                batches = batch_indices(order, self.batch_size, self.min_batch_size)
                first = self._resume_batch if epoch == self._start_epoch else 0
                sums = dict(self._resume_sums) if first else {}
                lr = 0.0
                for b in range(first, len(batches)):
                    factor = self.schedule(epoch, b, len(batches))
                    for group in self.optimizer.param_groups:
                        group["lr"] = lr = group["initial_lr"] * factor
                    idx = batches[b]
                    for name, value in self._run_step(idx).items():
                        sums[name] = sums.get(name, 0.0) + value * len(idx)
                    if self._stop_requested and b + 1 < len(batches):
                        self._save(epoch, b + 1, sums)
                        raise KeyboardInterrupt(f"training stopped in epoch {epoch + 1}; state saved")
                self._resume_batch, self._resume_sums = 0, {}
                values = {f"train_{k}": v / self.num_samples for k, v in sums.items()}
                values["lr"] = lr
                if self.after_epoch is not None:
                    values.update(self.after_epoch(epoch) or {})
                values.update(self._validate(epoch))
                self.history.append(values)
                self.history.epochs_run = epoch + 1
                bar.update(1)
                bar.set_postfix({k: f"{v:.4g}" for k, v in values.items() if k != "lr"}, refresh=False)
                done = epoch + 1 == self.epochs
                due = (every_epochs is not None and (epoch + 1) % every_epochs == 0) or \
                      (every_seconds is not None and time.monotonic() - last_save >= every_seconds)
                if done or due or self._stop_requested:
                    self._save(epoch + 1)
                    last_save = time.monotonic()
                if self._stop_requested and not done:
                    raise KeyboardInterrupt(f"training stopped after epoch {epoch + 1}; state saved")
                if _kill_after[0] is not None and epoch + 1 >= _kill_after[0] and not done:
                    raise SimulatedKill(f"killed after epoch {epoch + 1}")
        if self.validate is None or self._best_state is None:
            self.history.best_epoch = self.history.epochs_run - 1
        else:
            self.model.load_state_dict(self._best_state)
        self.model.eval()
        return self.history


__all__ = ["Schedule", "SimulatedKill", "Trainer", "TrainingHistory", "batch_indices", "constant",
           "exponential", "kill_after_epochs", "warmup_cosine"]
