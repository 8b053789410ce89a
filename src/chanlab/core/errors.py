"""Error hierarchy.

Every error chanlab raises on purpose is a :class:`ChanlabError`, so that the CLI can print
a one-line message instead of a traceback and users can catch one base class.
Messages say what was expected and what came.
"""


class ChanlabError(Exception):
    """Base class of every error chanlab raises on purpose."""


class DataError(ChanlabError, ValueError):
    """Channel data, a tensor or a file has the wrong shape, dtype, key or values."""


class ConfigError(ChanlabError, ValueError):
    """A configuration, preset, override or experiment name is invalid."""


class BitstreamError(ChanlabError, ValueError):
    """A bitstream is corrupt, truncated or was written by an incompatible codec."""


class CheckpointError(ChanlabError, RuntimeError):
    """A checkpoint is missing, corrupt or does not match the model it is loaded into."""
