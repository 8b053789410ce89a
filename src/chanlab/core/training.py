"""The bookkeeping every training loop shares: resume, best-on-validation weights, checkpoints.

    run = ResumableTraining(model, optimizer, seed, checkpointer)
    history = MyHistory(**run.history) if run.history else MyHistory()
    for epoch in run.epochs(n_epochs):
        order = torch.randperm(n, generator=run.generator)
        ...                                   # one epoch of updates
        if run.keep_if_best(epoch, val_loss):
            history.best_epoch = epoch
        run.save(epoch, history.to_dict())
    history.best_epoch = run.finish(n_epochs, history.best_epoch)

A resumed run restores the model, the optimizer, the shuffling generator, the best weights
and the history from the checkpointer's last save (the global RNG states come back with it),
so it continues exactly where the killed run stopped.
"""

from __future__ import annotations

import copy
import math
from typing import Any

import torch

from chanlab.core.checkpoint import Checkpointer
from chanlab.core.seeding import torch_generator


class ResumableTraining:
    """Optimizer, shuffling generator and best weights of one training run, checkpointed per epoch."""

    def __init__(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer, seed: int,
                 checkpointer: Checkpointer | None = None):
        self.model = model
        self.optimizer = optimizer
        self.checkpointer = checkpointer
        self.generator = torch_generator(seed)
        self.best_state: dict[str, Any] | None = None
        self.best_val = math.inf
        self.start = 0
        self.history: dict[str, Any] | None = None
        device = next(model.parameters()).device
        if checkpointer is not None and (state := checkpointer.load_latest(map_location=device)) is not None:
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            self.generator.set_state(state["generator"])
            self.history = state["history"]
            self.best_state, self.best_val, self.start = state["best_state"], state["best_val"], state["epoch"]

    def epochs(self, n_epochs: int) -> range:
        """The epochs still to run."""
        return range(self.start, n_epochs)

    def keep_if_best(self, epoch: int, val_loss: float) -> bool:
        """Remember the weights when ``val_loss`` is the lowest so far; True if it was."""
        if val_loss < self.best_val:
            self.best_val = val_loss
            self.best_state = copy.deepcopy(self.model.state_dict())
            return True
        return False

    def save(self, epoch: int, history: dict[str, Any]) -> None:
        """Checkpoint the state at the end of ``epoch`` (no-op without a checkpointer)."""
        if self.checkpointer is not None:
            self.checkpointer.save({"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                                    "generator": self.generator.get_state(), "history": history,
                                    "best_state": self.best_state, "best_val": self.best_val,
                                    "epoch": epoch + 1})

    def finish(self, n_epochs: int, best_epoch: int) -> int:
        """Load the best weights (or keep the last ones), switch to eval mode; the kept epoch."""
        if self.best_state is not None:
            self.model.load_state_dict(self.best_state)
        else:
            best_epoch = n_epochs - 1
        self.model.eval()
        return best_epoch
