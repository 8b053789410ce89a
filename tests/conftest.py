"""Test-wide settings: no progress bars, a private dataset cache, headless matplotlib."""

import os

import pytest

os.environ.setdefault("CHANLAB_PROGRESS", "0")
os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("CHANLAB_CACHE", str(tmp_path_factory.getbasetemp() / "chanlab-cache"))


@pytest.fixture
def one_thread():
    """One intra-op thread: tests of many small ops only get contention from more on 2 shared cores.

    Use it in a module with ``pytestmark = pytest.mark.usefixtures("one_thread")``.
    """
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
