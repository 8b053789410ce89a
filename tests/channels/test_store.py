"""Tests for chanlab.channels.store: HDF5 round trips, provenance, the dataset cache."""

from __future__ import annotations

import datetime
import hashlib
import os
import re
import tempfile
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import chanlab
from chanlab.channels import store
from chanlab.channels.store import (
    Dataset,
    cache_dir,
    cache_key,
    cached_dataset,
    dataset_info,
    read_dataset,
    write_dataset,
)
from chanlab.core.errors import ConfigError, DataError


def channel(n=4, n_ant=8, n_sc=16, seed=0) -> np.ndarray:
    """A complex64 channel [N, n_ant, n_sc]."""
    rng = np.random.default_rng(seed)
    h = rng.standard_normal((n, n_ant, n_sc)) + 1j * rng.standard_normal((n, n_ant, n_sc))
    return h.astype(np.complex64)


def write(path, arrays=None, **kwargs):
    kwargs.setdefault("generator", "cdl")
    kwargs.setdefault("params", {"model": "C", "snr_db": 10.0})
    kwargs.setdefault("seed", 7)
    return write_dataset(path, arrays if arrays is not None else {"H": channel()}, **kwargs)


def files_in(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


# --------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("compression", [None, "gzip", "lzf"])
def test_round_trip(tmp_path, compression):
    h = channel()
    labels = np.arange(4, dtype=np.int64)
    out = write(tmp_path / "d.h5", {"H": h, "labels": labels, "scalar": np.float32(2.5)},
                compression=compression)
    assert out == tmp_path / "d.h5"
    ds = read_dataset(out)
    assert isinstance(ds, Dataset) and ds.path == out
    assert set(ds.arrays) == {"H", "labels", "scalar"}
    assert ds.arrays["H"].dtype == np.complex64
    np.testing.assert_array_equal(ds.arrays["H"], h)
    np.testing.assert_array_equal(ds.arrays["labels"], labels)
    assert ds.arrays["scalar"] == np.float32(2.5)


def test_tensors_are_converted(tmp_path):
    h = torch.from_numpy(channel())
    x = torch.randn(3, 5, dtype=torch.float64)
    write(tmp_path / "d.h5", {"H": h.conj(), "x": x, "g": torch.ones(2, requires_grad=True)})
    ds = read_dataset(tmp_path / "d.h5")
    assert ds.arrays["H"].dtype == np.complex64
    np.testing.assert_array_equal(ds.arrays["H"], h.conj().resolve_conj().numpy())
    np.testing.assert_array_equal(ds.arrays["x"], x.numpy())


def test_read_selected_keys(tmp_path):
    write(tmp_path / "d.h5", {"H": channel(), "y": np.zeros(3)})
    ds = read_dataset(tmp_path / "d.h5", keys=["y"])
    assert list(ds.arrays) == ["y"]


def test_provenance(tmp_path):
    before = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    write(tmp_path / "d.h5", params={"model": "C", "n": np.int64(3), "fc": [3.5e9, 28e9],
                                     "nested": {"a": 1}},
          seed=np.int32(11), attrs={"note": "unit test", "snr": [0, 5], "ok": True})
    prov = read_dataset(tmp_path / "d.h5").provenance
    assert prov["generator"] == "cdl"
    assert prov["params"] == {"model": "C", "n": 3, "fc": [3.5e9, 28e9], "nested": {"a": 1}}
    assert prov["seed"] == 11 and isinstance(prov["seed"], int)
    assert prov["chanlab_version"] == chanlab.__version__
    assert datetime.datetime.fromisoformat(prov["created"]) >= before
    assert prov["note"] == "unit test" and prov["snr"] == [0, 5] and prov["ok"] is True
    assert "chanlab_format" not in prov
    # params are a JSON string attribute, readable by any HDF5 tool.
    with h5py.File(tmp_path / "d.h5", "r") as f:
        assert isinstance(f.attrs["params"], str)


def test_seed_none(tmp_path):
    write(tmp_path / "d.h5", seed=None)
    assert read_dataset(tmp_path / "d.h5").provenance["seed"] is None


def test_dataset_info_does_not_load(tmp_path, monkeypatch):
    write(tmp_path / "d.h5", {"H": channel(5, 2, 3), "y": np.zeros((5,), np.float32)})

    def boom(*args, **kwargs):
        raise AssertionError("dataset_info must not read array data")

    monkeypatch.setattr(h5py.Dataset, "__getitem__", boom)
    monkeypatch.setattr(h5py.Dataset, "read_direct", boom)
    info = dataset_info(tmp_path / "d.h5")
    assert info["path"] == str(tmp_path / "d.h5")
    assert info["datasets"] == {"H": {"shape": (5, 2, 3), "dtype": "complex64"},
                                "y": {"shape": (5,), "dtype": "float32"}}
    assert info["provenance"]["generator"] == "cdl"
    assert info["provenance"]["params"]["model"] == "C"


@settings(max_examples=25, deadline=None)
@given(shape=st.lists(st.integers(0, 4), min_size=0, max_size=3),
       dtype=st.sampled_from([np.float32, np.float64, np.complex64, np.complex128, np.int16]),
       seed=st.one_of(st.none(), st.integers(0, 2**31)),
       data_seed=st.integers(0, 1000))
def test_round_trip_property(shape, dtype, seed, data_seed):
    rng = np.random.default_rng(data_seed)
    x = rng.standard_normal(shape) * 100
    if np.issubdtype(dtype, np.complexfloating):
        x = x + 1j * rng.standard_normal(shape)
    x = np.asarray(x).astype(dtype)
    with tempfile.TemporaryDirectory() as tmp:
        path = write_dataset(Path(tmp) / "d.h5", {"x": x}, generator="g", params={"s": shape},
                             seed=seed, compression="gzip")
        ds = read_dataset(path)
        assert ds.arrays["x"].dtype == x.dtype and ds.arrays["x"].shape == x.shape
        np.testing.assert_array_equal(ds.arrays["x"], x)
        assert ds.provenance["seed"] == seed and ds.provenance["params"] == {"s": shape}


# --------------------------------------------------------------------------- write errors


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_rejected(tmp_path, bad):
    h = channel()
    h[1, 2, 3] = bad
    with pytest.raises(DataError, match="'H'.*NaN or infinite"):
        write(tmp_path / "d.h5", {"ok": np.zeros(2), "H": h})
    assert files_in(tmp_path) == []  # nothing written, no temp file


def test_non_finite_tensor_rejected(tmp_path):
    with pytest.raises(DataError, match="'x'.*NaN"):
        write(tmp_path / "d.h5", {"x": torch.tensor([1.0, float("nan")])})


@pytest.mark.parametrize("bad, words", [
    ({"s": np.array(["a", "b"])}, "numeric"),
    ({"o": np.array([{}, 1], dtype=object)}, "numeric"),
    ({"r": [[1, 2], [3]]}, "numpy-convertible|numeric"),
    ({"a/b": np.zeros(2)}, "without '/'"),
    ({}, "non-empty mapping"),
])
def test_bad_arrays_rejected(tmp_path, bad, words):
    with pytest.raises(DataError, match=words):
        write(tmp_path / "d.h5", bad)
    assert files_in(tmp_path) == []


def test_lists_are_converted(tmp_path):
    write(tmp_path / "d.h5", {"x": [[1.0, 2.0], [3.0, 4.0]]})
    np.testing.assert_array_equal(read_dataset(tmp_path / "d.h5").arrays["x"],
                                  [[1.0, 2.0], [3.0, 4.0]])


def test_bad_provenance_rejected(tmp_path):
    with pytest.raises(DataError, match="params.*JSON"):
        write(tmp_path / "d.h5", params={"f": object()})
    with pytest.raises(DataError, match="reserved.*'seed'"):
        write(tmp_path / "d.h5", attrs={"seed": 3})
    with pytest.raises(DataError, match="seed: expected an integer"):
        write(tmp_path / "d.h5", seed=1.5)
    with pytest.raises(ConfigError, match="compression"):
        write(tmp_path / "d.h5", compression="zstd")
    assert files_in(tmp_path) == []


def test_failed_write_keeps_old_file(tmp_path):
    path = write(tmp_path / "d.h5", {"H": channel(seed=1)})
    with pytest.raises(DataError):
        write(path, {"H": np.full(3, np.nan)})
    np.testing.assert_array_equal(read_dataset(path).arrays["H"], channel(seed=1))
    assert files_in(tmp_path) == ["d.h5"]


def test_crash_mid_write_leaves_nothing(tmp_path, monkeypatch):
    def crash(self, *args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(h5py.Group, "create_dataset", crash)
    with pytest.raises(RuntimeError, match="disk full"):
        write(tmp_path / "d.h5")
    assert files_in(tmp_path) == []


# --------------------------------------------------------------------------- read errors


def test_read_missing_file(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        read_dataset(tmp_path / "nope.h5")
    with pytest.raises(DataError, match="no such file"):
        dataset_info(tmp_path / "nope.h5")


def test_read_not_hdf5(tmp_path):
    (tmp_path / "x.h5").write_text("hello")
    with pytest.raises(DataError, match="non-HDF5"):
        read_dataset(tmp_path / "x.h5")


def test_read_foreign_hdf5(tmp_path):
    with h5py.File(tmp_path / "x.h5", "w") as f:
        f["H"] = np.zeros(3)
    with pytest.raises(DataError, match="chanlab dataset"):
        read_dataset(tmp_path / "x.h5")


def test_read_missing_key_names_available(tmp_path):
    write(tmp_path / "d.h5", {"H": channel(), "y": np.zeros(2)})
    with pytest.raises(DataError, match=r"\['X'\].*got only \['H', 'y'\]"):
        read_dataset(tmp_path / "d.h5", keys=["H", "X"])


# --------------------------------------------------------------------------- damage on disk


def _damage(path: Path, name: str, n: int = 400) -> None:
    """Zero ``n`` bytes in the middle of array ``name``'s raw data (not free space or metadata)."""
    with h5py.File(path, "r") as f:
        ds = f[name]
        offset, size = ds.id.get_offset(), ds.id.get_storage_size()
    assert offset is not None and size > n
    with open(path, "r+b") as fh:
        fh.seek(offset + (size - n) // 2)
        fh.write(b"\0" * n)


def test_damaged_array_is_detected(tmp_path):
    path = write(tmp_path / "d.h5", {"H": channel(8, 8, 16), "y": np.arange(300, dtype=np.float64) + 1})
    _damage(path, "H")
    with pytest.raises(DataError) as info:
        read_dataset(path)
    msg = str(info.value)
    assert str(path) in msg and "array 'H' is damaged" in msg and "checksum" in msg
    assert "delete the file and generate it again" in msg
    # Only the arrays read are checked: the intact one still reads.
    np.testing.assert_array_equal(read_dataset(path, keys=["y"]).arrays["y"], np.arange(300) + 1.0)
    with pytest.raises(DataError, match="array 'H' is damaged"):
        read_dataset(path, keys=["H"])
    # Metadata-only reads do not hash (and still work).
    assert dataset_info(path)["datasets"]["H"]["shape"] == (8, 8, 16)


def test_damaged_compressed_array_is_detected(tmp_path):
    path = write(tmp_path / "d.h5", {"H": channel(8, 8, 16)}, compression="gzip")
    with h5py.File(path, "r") as f:
        offset, size = f["H"].id.get_chunk_info(0).byte_offset, f["H"].id.get_chunk_info(0).size
    with open(path, "r+b") as fh:
        fh.seek(offset + size // 2)
        fh.write(b"\0" * min(400, size // 4))
    with pytest.raises(DataError, match=rf"{re.escape(str(path))}: array 'H' is damaged.*generate it again"):
        read_dataset(path)


def test_checksum_is_an_attribute_of_each_array(tmp_path):
    h = channel()
    path = write(tmp_path / "d.h5", {"H": h, "s": np.float32(2.5)})
    with h5py.File(path, "r") as f:
        assert f["H"].attrs["chanlab_checksum"] == "sha256:" + hashlib.sha256(h.tobytes()).hexdigest()
        assert "chanlab_checksum" in f["s"].attrs and "chanlab_checksum" not in f.attrs
    assert "chanlab_checksum" not in read_dataset(path).provenance


def test_big_endian_arrays_verify(tmp_path):
    x = np.arange(10, dtype=">f8")
    path = write(tmp_path / "d.h5", {"x": x, "c": (x + 1j * x).astype(">c16")})
    ds = read_dataset(path)
    np.testing.assert_array_equal(ds.arrays["x"], x)


def test_files_without_checksums_still_read(tmp_path):
    """Files written before checksums existed: no attribute, no verification, no failure."""
    path = write(tmp_path / "d.h5", {"H": channel()})
    with h5py.File(path, "r+") as f:
        del f["H"].attrs["chanlab_checksum"]
    _damage(path, "H", n=8)
    assert read_dataset(path).arrays["H"].shape == channel().shape


def test_directory_instead_of_a_dataset(tmp_path):
    (tmp_path / "d.h5").mkdir()
    for read in (read_dataset, dataset_info):
        with pytest.raises(DataError, match="expected a chanlab dataset file, got a directory"):
            read(tmp_path / "d.h5")
        with pytest.raises(DataError, match="no such file"):
            read(tmp_path / "missing.h5")


def test_writing_onto_a_directory_names_it(tmp_path):
    (tmp_path / "d.h5").mkdir()
    with pytest.raises(IsADirectoryError) as info:
        write(tmp_path / "d.h5")
    assert info.value.filename == str(tmp_path / "d.h5") and ".tmp" not in str(info.value)
    assert files_in(tmp_path) == ["d.h5"]


# --------------------------------------------------------------------------- cache


def test_cache_dir_env(tmp_path, monkeypatch):
    monkeypatch.setenv("CHANLAB_CACHE", str(tmp_path / "c1"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "c1" and (tmp_path / "c1").is_dir()
    monkeypatch.delenv("CHANLAB_CACHE")
    assert cache_dir() == tmp_path / "xdg" / "chanlab" and (tmp_path / "xdg" / "chanlab").is_dir()
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_dir() == tmp_path / "home" / ".cache" / "chanlab"


def test_cache_key():
    k = cache_key("cdl", {"a": 1, "b": [1, 2]}, 3)
    assert len(k) == 16 and int(k, 16) >= 0
    assert k == cache_key("cdl", {"b": [1, 2], "a": 1}, 3)  # order-independent
    assert k == cache_key("cdl", {"a": np.int64(1), "b": (1, 2)}, np.int32(3))
    assert k != cache_key("cdl", {"a": 1, "b": [1, 2]}, 4)
    assert k != cache_key("cdl", {"a": 1, "b": [1, 2]}, None)
    assert k != cache_key("tdl", {"a": 1, "b": [1, 2]}, 3)
    assert k != cache_key("cdl", {"a": 1.5, "b": [1, 2]}, 3)


def test_cache_key_version(monkeypatch):
    k = cache_key("cdl", {}, 0)
    monkeypatch.setattr(store, "__version__", "0.1.99")
    assert cache_key("cdl", {}, 0) == k  # patch releases share the cache
    monkeypatch.setattr(store, "__version__", "0.2.0")
    assert cache_key("cdl", {}, 0) != k


class Builder:
    """Counts calls; returns a fixed channel."""

    def __init__(self, fail: bool = False):
        self.calls = 0
        self.fail = fail

    def __call__(self):
        self.calls += 1
        if self.fail:
            raise RuntimeError("simulator crashed")
        return {"H": torch.from_numpy(channel())}


def test_cached_dataset_builds_once(tmp_path):
    build = Builder()
    params = {"model": "C", "n": 4}
    path, hit = cached_dataset("cdl", params, 1, build, attrs={"note": "x"}, cache=tmp_path)
    assert (hit, build.calls) == (False, 1)
    assert path.parent == tmp_path and cache_key("cdl", params, 1) in path.name
    path2, hit2 = cached_dataset("cdl", params, 1, build, cache=tmp_path)
    assert (path2, hit2, build.calls) == (path, True, 1)
    ds = read_dataset(path)
    np.testing.assert_array_equal(ds.arrays["H"], channel())
    assert ds.provenance["note"] == "x" and ds.provenance["params"] == params
    # Different seed: a different entry.
    path3, hit3 = cached_dataset("cdl", params, 2, build, cache=tmp_path)
    assert path3 != path and not hit3 and build.calls == 2
    assert files_in(tmp_path) == sorted([path.name, path3.name])


def test_cached_dataset_uses_env(tmp_path, monkeypatch):
    monkeypatch.setenv("CHANLAB_CACHE", str(tmp_path / "cache"))
    path, hit = cached_dataset("g", {}, None, Builder())
    assert not hit and path.parent == tmp_path / "cache" and path.is_file()


def test_cached_dataset_odd_generator_name(tmp_path):
    path, _ = cached_dataset("../sub/dir gen", {}, 0, Builder(), cache=tmp_path)
    assert path.parent == tmp_path and "/" not in path.name and not path.name.startswith(".")


@pytest.mark.parametrize("damage", ["garbage", "truncate", "empty", "foreign"])
def test_corrupt_cache_file_rebuilt(tmp_path, damage):
    build = Builder()
    path, _ = cached_dataset("cdl", {"a": 1}, 0, build, cache=tmp_path)
    data = path.read_bytes()
    if damage == "garbage":
        path.write_bytes(b"\x00garbage" * 100)
    elif damage == "truncate":
        path.write_bytes(data[: len(data) // 2])
    elif damage == "empty":
        path.write_bytes(b"")
    else:  # a valid chanlab file for other params under this name
        write(path, {"H": np.zeros(1)}, generator="cdl", params={"a": 2}, seed=0)
    path2, hit = cached_dataset("cdl", {"a": 1}, 0, build, cache=tmp_path)
    assert (path2, hit, build.calls) == (path, False, 2)
    np.testing.assert_array_equal(read_dataset(path).arrays["H"], channel())
    assert cached_dataset("cdl", {"a": 1}, 0, build, cache=tmp_path)[1] is True


def test_failing_build_leaves_no_file(tmp_path):
    with pytest.raises(RuntimeError, match="simulator crashed"):
        cached_dataset("cdl", {}, 0, Builder(fail=True), cache=tmp_path)
    assert files_in(tmp_path) == []


def test_build_with_bad_data_leaves_no_file(tmp_path):
    with pytest.raises(DataError, match="'H'.*NaN"):
        cached_dataset("cdl", {}, 0, lambda: {"H": np.array([np.nan])}, cache=tmp_path)
    assert files_in(tmp_path) == []
    assert not any(name.endswith(".tmp") for name in os.listdir(tmp_path))
