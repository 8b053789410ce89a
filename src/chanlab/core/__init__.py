"""Errors, seeding, devices, configs, the experiment registry, run folders and checkpoints.

Names are exported lazily, so that ``import chanlab`` (and the ``chanlab`` command's ``--help``)
does not import torch.
"""

from chanlab.core.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    "checkpoint": ("Checkpointer", "load_checkpoint", "save_checkpoint"),
    "config": ("apply_overrides",),
    "device": ("select_device",),
    "errors": ("BitstreamError", "ChanlabError", "CheckpointError", "ConfigError", "DataError"),
    "registry": ("Claim", "Experiment", "get_experiment", "list_experiments", "register"),
    "seeding": ("seed",),
})
