"""Test-wide settings: no progress bars, a private dataset cache, headless matplotlib."""

import os

import pytest

os.environ.setdefault("CHANLAB_PROGRESS", "0")
os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("CHANLAB_CACHE", str(tmp_path_factory.getbasetemp() / "chanlab-cache"))
