"""Progress bars and logging in one place, so that every loop a person waits on looks alike."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterable
from typing import TypeVar

from tqdm.auto import tqdm

T = TypeVar("T")

LOGGER_NAME = "chanlab"


def progress_enabled() -> bool:
    """Bars are shown unless ``CHANLAB_PROGRESS=0`` (tests and CI logs stay clean)."""
    return os.environ.get("CHANLAB_PROGRESS", "1") not in ("0", "false", "no")


def progress(iterable: Iterable[T] | None = None, *, total: int | None = None, desc: str = "",
             unit: str = "it", leave: bool = False) -> tqdm:
    """A tqdm bar on stderr (iterate over it, or use it as a context manager and ``update``);
    disabled when progress is switched off."""
    return tqdm(iterable, total=total, desc=desc, unit=unit, leave=leave,
                disable=not progress_enabled(), file=sys.stderr, dynamic_ncols=True)


def get_logger(name: str | None = None) -> logging.Logger:
    """The ``chanlab`` logger (or a child of it)."""
    return logging.getLogger(LOGGER_NAME if not name else f"{LOGGER_NAME}.{name}")
