"""Errors, seeding, devices, configs, the experiment registry, run folders and checkpoints."""

from chanlab.core.checkpoint import Checkpointer, load_checkpoint, save_checkpoint
from chanlab.core.config import apply_overrides
from chanlab.core.device import select_device
from chanlab.core.errors import BitstreamError, ChanlabError, CheckpointError, ConfigError, DataError
from chanlab.core.registry import Claim, Experiment, get_experiment, list_experiments, register
from chanlab.core.seeding import seed

__all__ = ["BitstreamError", "ChanlabError", "CheckpointError", "Checkpointer", "Claim", "ConfigError", "DataError",
           "Experiment", "apply_overrides", "get_experiment", "list_experiments", "load_checkpoint", "register",
           "save_checkpoint", "seed", "select_device"]
