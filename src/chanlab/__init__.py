"""chanlab: learned wireless channel representations and the network optimizations built on them.

Layers (lower never imports higher): ``core`` → ``channels`` → ``metrics`` → ``quant`` /
``classical`` / ``nn`` → capabilities → ``experiments`` → ``cli``. See ``DESIGN.md``.
"""

__version__ = "0.1.0"

from chanlab.core.errors import (  # noqa: E402  (re-exported for users)
    BitstreamError,
    ChanlabError,
    CheckpointError,
    ConfigError,
    DataError,
)

__all__ = [
    "__version__",
    "ChanlabError",
    "DataError",
    "ConfigError",
    "BitstreamError",
    "CheckpointError",
]
