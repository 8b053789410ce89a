"""Lazy package exports (PEP 562): ``from chanlab.metrics import nmse_db`` without importing
every sibling module (scikit-learn, h5py, Sionna) at ``import chanlab.metrics`` time."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any


def lazy_exports(package: str, exports: Mapping[str, Sequence[str]]
                 ) -> tuple[Callable[[str], Any], Callable[[], list[str]], list[str]]:
    """``(__getattr__, __dir__, __all__)`` for a package exporting ``{module: names}``."""
    where = {name: module for module, names in exports.items() for name in names}
    names = sorted(where)

    def __getattr__(name: str) -> Any:
        if name not in where:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(f"{package}.{where[name]}"), name)

    def __dir__() -> list[str]:
        return names

    return __getattr__, __dir__, names
