"""Tests for chanlab.channels.loaders: classic and v7.3 MAT-files, COST2100, multi-user."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
import scipy.io
import torch

from chanlab.channels.loaders import (
    cost2100_path,
    load_cost2100,
    load_mat_channels,
    load_multiuser,
    read_mat,
)
from chanlab.core.errors import ConfigError, DataError

MATLAB_HEADER = (b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Mon Jan  1 00:00:00 2024 "
                 b"HDF5 schema 1.00 .")


def write_v73(path: Path, arrays: dict[str, np.ndarray], userblock: bool = True,
              extras: bool = True) -> Path:
    """Write ``arrays`` the way MATLAB's ``save -v7.3`` does.

    Axes reversed on disk (column-major), complex as a compound of 'real'/'imag',
    ``MATLAB_class`` attributes, the '#refs#' group, and the 512-byte text header.
    """
    kwargs = {"userblock_size": 512} if userblock else {}
    with h5py.File(path, "w", **kwargs) as f:
        for name, arr in arrays.items():
            arr = np.asarray(arr)
            if np.iscomplexobj(arr):
                part = arr.real.dtype
                stored = np.empty(arr.shape, np.dtype([("real", part), ("imag", part)]))
                stored["real"], stored["imag"] = arr.real, arr.imag
            else:
                stored = arr
            ds = f.create_dataset(name, data=stored.T)
            ds.attrs["MATLAB_class"] = np.bytes_(b"double" if arr.real.dtype == np.float64
                                                 else b"single")
        if extras:
            # MATLAB keeps cell contents here; the reader must not report them as variables.
            refs = f.create_group("#refs#")
            refs.create_dataset("a", data=np.zeros((2, 3)))
            f.create_group("#subsystem#").create_dataset("MCOS", data=np.zeros((1, 4), np.uint8))
    if userblock:
        with open(path, "r+b") as fh:
            fh.write(MATLAB_HEADER.ljust(116, b" ") + b"\x00" * 8 + b"\x00\x02" + b"IM")
    return path


def ht_data(n: int = 5, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((n, 2048))


# --------------------------------------------------------------------------- read_mat


def test_read_mat_classic_round_trip(tmp_path):
    a = np.arange(12.0).reshape(3, 4)
    c = (np.arange(6.0) + 1j * np.arange(6.0)[::-1]).reshape(2, 3)
    path = tmp_path / "classic.mat"
    scipy.io.savemat(path, {"a": a, "c": c})
    mats = read_mat(path)
    assert set(mats) == {"a", "c"}  # no __header__ / __version__ / __globals__
    np.testing.assert_array_equal(mats["a"], a)
    np.testing.assert_array_equal(mats["c"], c)


@pytest.mark.parametrize("userblock", [True, False])
def test_read_mat_v73_round_trip(tmp_path, userblock):
    rng = np.random.default_rng(1)
    a = rng.standard_normal((3, 5))
    c = rng.standard_normal((2, 3, 4)) + 1j * rng.standard_normal((2, 3, 4))
    c32 = c.astype(np.complex64)
    path = write_v73(tmp_path / "v73.mat", {"a": a, "c": c, "c32": c32}, userblock=userblock)
    if userblock:
        assert path.read_bytes().startswith(b"MATLAB 7.3 MAT-file")
    mats = read_mat(path)
    assert set(mats) == {"a", "c", "c32"}  # '#refs#' and '#subsystem#' skipped
    np.testing.assert_array_equal(mats["a"], a)
    np.testing.assert_array_equal(mats["c"], c)
    assert mats["c"].dtype == np.complex128
    np.testing.assert_array_equal(mats["c32"], c32)
    assert mats["c32"].dtype == np.complex64


def test_read_mat_v73_transposes_as_matlab_stores(tmp_path):
    ht = ht_data(4)
    path = write_v73(tmp_path / "v73.mat", {"HT": ht})
    with h5py.File(path, "r") as f:
        assert f["HT"].shape == (2048, 4)  # what MATLAB writes for a 4 x 2048 matrix
    assert read_mat(path)["HT"].shape == (4, 2048)


def test_read_mat_missing_file(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        read_mat(tmp_path / "nope.mat")


def test_directory_instead_of_a_mat_file(tmp_path):
    folder = tmp_path / "cost2100"
    folder.mkdir()
    for load in (read_mat, load_cost2100, load_multiuser, load_mat_channels):
        with pytest.raises(DataError, match="expected a .mat file, got a directory") as info:
            load(folder)
        assert "no such file" not in str(info.value)
    (folder / "DATA_Htrainin.mat").touch()
    with pytest.raises(DataError, match="got a directory .*DATA_H.*cost2100_path"):
        read_mat(folder)
    (folder / "DATA_Hvalin.mat").mkdir()
    with pytest.raises(DataError, match="DATA_Hvalin.mat: .*got a directory"):
        cost2100_path(folder, "val")
    with pytest.raises(DataError, match="expected the folder .*, got a file"):
        cost2100_path(folder / "DATA_Htrainin.mat")


def test_read_mat_unreadable_file(tmp_path):
    path = tmp_path / "junk.mat"
    path.write_bytes(b"this is not a MAT-file at all" * 10)
    with pytest.raises(DataError, match="readable MAT-file"):
        read_mat(path)


def test_read_mat_truncated_v73(tmp_path):
    path = write_v73(tmp_path / "v73.mat", {"a": np.ones((50, 50))})
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match="readable MAT-file"):
        read_mat(path)


# --------------------------------------------------------------------------- COST2100


def test_load_cost2100_classic(tmp_path):
    ht = ht_data(6)
    path = tmp_path / "DATA_Htrainin.mat"
    scipy.io.savemat(path, {"HT": ht})
    x = load_cost2100(path)
    assert x.shape == (6, 2, 32, 32) and x.dtype == torch.float32
    # CsiNet's layout: row n -> reshape(2, 32, 32) in C order.
    expected = ht.astype(np.float32).reshape(6, 2, 32, 32)
    np.testing.assert_array_equal(x.numpy(), expected)
    np.testing.assert_array_equal(x[2, 1, 3, 4].item(), np.float32(ht[2, 1024 + 3 * 32 + 4]))


def test_load_cost2100_v73_equals_classic(tmp_path):
    ht = ht_data(7, seed=3)
    classic = tmp_path / "classic.mat"
    scipy.io.savemat(classic, {"HT": ht})
    v73 = write_v73(tmp_path / "v73.mat", {"HT": ht})
    assert torch.equal(load_cost2100(classic), load_cost2100(v73))


def test_load_cost2100_other_key(tmp_path):
    path = tmp_path / "f.mat"
    scipy.io.savemat(path, {"HF_all": ht_data(2)})
    assert load_cost2100(path, key="HF_all").shape == (2, 2, 32, 32)


def test_load_cost2100_wrong_key(tmp_path):
    path = tmp_path / "f.mat"
    scipy.io.savemat(path, {"H": ht_data(2), "other": np.ones((1, 1))})
    with pytest.raises(DataError, match=r"'HT'.*keys present: \['H', 'other'\]"):
        load_cost2100(path)


def test_load_cost2100_wrong_shape(tmp_path):
    path = tmp_path / "f.mat"
    scipy.io.savemat(path, {"HT": np.random.default_rng(0).random((3, 1024))})
    with pytest.raises(DataError, match=r"2-D with 2048 columns.*got \(3, 1024\)"):
        load_cost2100(path)


def test_load_cost2100_wrong_shape_3d(tmp_path):
    path = write_v73(tmp_path / "f.mat", {"HT": np.zeros((2, 2, 2048))})
    with pytest.raises(DataError, match=r"2-D with 2048 columns.*got \(2, 2, 2048\)"):
        load_cost2100(path)


def test_load_cost2100_complex_rejected(tmp_path):
    path = tmp_path / "f.mat"
    scipy.io.savemat(path, {"HT": ht_data(2) + 0j})
    with pytest.raises(DataError, match="real floating.*complex"):
        load_cost2100(path)


def test_load_cost2100_integer_rejected(tmp_path):
    path = tmp_path / "f.mat"
    scipy.io.savemat(path, {"HT": np.zeros((2, 2048), np.int32)})
    with pytest.raises(DataError, match="real floating.*int32"):
        load_cost2100(path)


def test_load_cost2100_out_of_range(tmp_path):
    ht = ht_data(3)
    ht[1, 5] = 1.5
    path = tmp_path / "f.mat"
    scipy.io.savemat(path, {"HT": ht})
    with pytest.raises(DataError, match=r"values in \[0, 1\].*got range"):
        load_cost2100(path)


def test_load_cost2100_round_off_tolerated(tmp_path):
    ht = ht_data(3)
    ht[0, 0], ht[0, 1] = -1e-9, 1 + 1e-9
    path = tmp_path / "f.mat"
    scipy.io.savemat(path, {"HT": ht})
    x = load_cost2100(path)
    assert x.min() >= 0 and x.max() <= 1


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_load_cost2100_non_finite(tmp_path, bad):
    ht = ht_data(3)
    ht[2, 7] = bad
    path = tmp_path / "f.mat"
    scipy.io.savemat(path, {"HT": ht})
    with pytest.raises(DataError, match="finite values in 'HT'.*1 NaN/inf"):
        load_cost2100(path)


def test_cost2100_path(tmp_path):
    for split in ("train", "val", "test"):
        for env in ("in", "out"):
            (tmp_path / f"DATA_H{split}{env}.mat").touch()
    assert cost2100_path(tmp_path) == tmp_path / "DATA_Htrainin.mat"
    assert cost2100_path(tmp_path, "test", "out") == tmp_path / "DATA_Htestout.mat"
    assert cost2100_path(str(tmp_path), split="val", env="in").name == "DATA_Hvalin.mat"


def test_cost2100_path_errors(tmp_path):
    with pytest.raises(ConfigError, match=r"split.*\['train', 'val', 'test'\].*'validation'"):
        cost2100_path(tmp_path, "validation")
    with pytest.raises(ConfigError, match=r"env.*\['in', 'out'\].*'indoor'"):
        cost2100_path(tmp_path, "train", "indoor")
    with pytest.raises(DataError, match="DATA_Htrainout.mat.*no such file"):
        cost2100_path(tmp_path, "train", "out")


# --------------------------------------------------------------------------- multi-user


def h_mu_data(n=4, k=3, m=8, seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, k, m)) + 1j * rng.standard_normal((n, k, m))


@pytest.mark.parametrize("fmt", ["classic", "v73"])
def test_load_multiuser_round_trip(tmp_path, fmt):
    h = h_mu_data()
    path = tmp_path / "mu.mat"
    if fmt == "classic":
        scipy.io.savemat(path, {"H_mu": h, "snr": np.array([[10.0]])})
    else:
        write_v73(path, {"H_mu": h, "snr": np.array([[10.0]])})
    x = load_multiuser(path)
    assert x.dtype == torch.complex64 and x.shape == (4, 3, 8)
    np.testing.assert_array_equal(x.numpy(), h.astype(np.complex64))


def test_load_multiuser_complex64_exact(tmp_path):
    h = h_mu_data(2, 2, 4).astype(np.complex64)
    path = write_v73(tmp_path / "mu.mat", {"H_mu_test": h})
    np.testing.assert_array_equal(load_multiuser(path).numpy(), h)


def test_load_multiuser_several_keys(tmp_path):
    path = tmp_path / "mu.mat"
    scipy.io.savemat(path, {"H_mu_train": h_mu_data(), "H_mu_test": h_mu_data(seed=1)})
    with pytest.raises(DataError, match=r"exactly one.*'H_mu'.*several: \['H_mu_test', "
                                        r"'H_mu_train'\]"):
        load_multiuser(path)
    x = load_multiuser(path, key="H_mu_test")
    np.testing.assert_array_equal(x.numpy(), h_mu_data(seed=1).astype(np.complex64))


def test_load_multiuser_no_key(tmp_path):
    path = tmp_path / "mu.mat"
    scipy.io.savemat(path, {"H": h_mu_data()})
    with pytest.raises(DataError, match=r"'H_mu'.*keys present: \['H'\]"):
        load_multiuser(path)


def test_load_multiuser_wrong_key(tmp_path):
    path = tmp_path / "mu.mat"
    scipy.io.savemat(path, {"H_mu": h_mu_data()})
    with pytest.raises(DataError, match=r"'H_down'.*keys present: \['H_mu'\]"):
        load_multiuser(path, key="H_down")


def test_load_multiuser_real_rejected(tmp_path):
    path = tmp_path / "mu.mat"
    scipy.io.savemat(path, {"H_mu": h_mu_data().real})
    with pytest.raises(DataError, match="complex, got dtype float64"):
        load_multiuser(path)


def test_load_multiuser_wrong_shape(tmp_path):
    path = tmp_path / "mu.mat"
    scipy.io.savemat(path, {"H_mu": h_mu_data()[:, 0, :]})
    with pytest.raises(DataError, match=r"3-D \(N, K, M\), got \(4, 8\)"):
        load_multiuser(path)


def test_load_multiuser_non_finite(tmp_path):
    h = h_mu_data()
    h[0, 0, 0] = complex(np.nan, 0)
    path = write_v73(tmp_path / "mu.mat", {"H_mu": h})
    with pytest.raises(DataError, match="finite values in 'H_mu'"):
        load_multiuser(path)
