from pathlib import Path

import h5py
import numpy as np
import pytest

from chanlab.channels.sources import CHUNK, SOURCES, chunk_seeds, generate_dataset, get_source
from chanlab.core.errors import ConfigError

TINY = dict(n_ant=2, n_sc=8)


def test_chunks_cover_num_and_depend_only_on_seed_and_index():
    chunks = chunk_seeds(7, 2 * CHUNK + 3)
    assert [n for n, _ in chunks] == [CHUNK, CHUNK, 3]
    assert chunk_seeds(7, CHUNK)[0] == chunks[0]
    assert chunk_seeds(8, CHUNK)[0][1] != chunks[0][1]


def test_dataset_is_a_function_of_params_and_seed(tmp_path):
    big, hit = generate_dataset("cdl", dict(num=CHUNK + 2, **TINY), seed=1, out=tmp_path / "big.h5")
    small, _ = generate_dataset("cdl", dict(num=CHUNK, **TINY), seed=1, out=tmp_path / "small.h5")
    assert not hit
    with h5py.File(big) as fb, h5py.File(small) as fs:
        assert fb["H"].shape == (CHUNK + 2, 2, 8)
        np.testing.assert_array_equal(fb["H"][:CHUNK], fs["H"][:])
        assert fb.attrs["domain"] == "spatial-frequency"


def test_time_axis_with_angular_delay(tmp_path):
    path, _ = generate_dataset("umi", dict(num=3, n_time=4, n_delay=5, speed=10.0, **TINY), seed=0,
                               out=tmp_path / "t.h5")
    with h5py.File(path) as f:
        assert f["H_ad"].shape == (3, 4, 2, 5)
        assert f.attrs["layout"] == "H_ad [num, n_time, n_ant, n_delay]"


def test_multiuser_source(tmp_path):
    path, _ = generate_dataset("multiuser", dict(num=5, n_users=3, n_ant=4, channel="uma"), seed=0)
    with h5py.File(path) as f:
        assert f["H_mu"].shape == (5, 3, 4) and f["H_mu"].dtype == np.complex64


def test_parameter_errors():
    with pytest.raises(ConfigError, match="unknown data source 'cld'"):
        get_source("cld")
    with pytest.raises(ConfigError, match="unknown parameter 'n_antennas'"):
        generate_dataset("cdl", {"n_antennas": 3})
    with pytest.raises(ConfigError, match="model must be one of A, B, C, D, E"):
        generate_dataset("cdl", {"model": "F"})
    with pytest.raises(ConfigError, match="num"):
        generate_dataset("cdl", {"num": 0})
    assert set(SOURCES) == {"cdl", "umi", "uma", "rma", "inh", "multiuser", "cellfree"}


def test_out_is_a_directory(tmp_path, monkeypatch):
    from chanlab.channels import store

    def never(*args, **kwargs):
        raise AssertionError("nothing may be generated before --out is checked")

    monkeypatch.setattr(store, "cached_dataset", never)
    with pytest.raises(ConfigError, match=rf"--out {tmp_path} is a directory; give a file name such as "
                                          rf"{tmp_path}/cdl\.h5") as info:
        generate_dataset("cdl", dict(num=2, **TINY), out=tmp_path)
    assert ".tmp" not in str(info.value)
    (tmp_path / "f").write_text("x")
    with pytest.raises(NotADirectoryError) as err:
        generate_dataset("cdl", dict(num=2, **TINY), out=tmp_path / "f" / "sub" / "d.h5")
    assert err.value.filename == str(tmp_path / "f")


def test_cli_out_messages_name_the_real_file(tmp_path, monkeypatch, capsys):
    from chanlab import cli
    from chanlab.core import atomic

    args = ["data", "generate", "cdl", "--num", "2", "--n-ant", "2", "--n-sc", "8"]
    assert cli.main(args + ["--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert f"--out {tmp_path} is a directory" in err and ".tmp" not in err

    # A folder that refuses new files (simulated: tests may run as root): the message names --out.
    real_mkstemp = atomic.tempfile.mkstemp

    def refuse(prefix, suffix, dir):
        if Path(dir) != tmp_path:                       # the cache folder stays writable
            return real_mkstemp(prefix=prefix, suffix=suffix, dir=dir)
        raise PermissionError(13, "Permission denied", f"{dir}/{prefix}x1y2z3{suffix}")

    monkeypatch.setattr(atomic.tempfile, "mkstemp", refuse)
    assert cli.main(args + ["--out", str(tmp_path / "d.h5")]) == 2
    err = capsys.readouterr().err
    assert f"Permission denied: {tmp_path / 'd.h5'}" in err and ".tmp" not in err


def test_sharded_generation_equals_one_process(tmp_path, monkeypatch):
    """--workers N builds the chunks in N spawned processes and puts them back in order: the same
    arrays as one process (chunks of 4 samples here through $CHANLAB_DATA_CHUNK, 3 workers, 5 chunks)."""
    monkeypatch.setenv("CHANLAB_DATA_CHUNK", "4")
    one, _ = generate_dataset("multiuser", dict(num=18, n_users=2, n_ant=4), seed=3, out=tmp_path / "one.h5")
    monkeypatch.setenv("CHANLAB_CACHE", str(tmp_path / "other-cache"))           # no cache hit: build again
    many, hit = generate_dataset("multiuser", dict(num=18, n_users=2, n_ant=4), seed=3, out=tmp_path / "many.h5",
                                 workers=3)
    assert not hit
    with h5py.File(one) as f1, h5py.File(many) as f2:
        assert f1["H_mu"].shape == (18, 2, 4)
        np.testing.assert_array_equal(f1["H_mu"][:], f2["H_mu"][:])
    # a non-default chunk size changes the data, so it is part of the cache key
    monkeypatch.delenv("CHANLAB_DATA_CHUNK")
    default, _ = generate_dataset("multiuser", dict(num=18, n_users=2, n_ant=4), seed=3)
    with h5py.File(one) as f1, h5py.File(default) as f3:
        assert not np.array_equal(f1["H_mu"][4:8], f3["H_mu"][4:8])
    with pytest.raises(ConfigError, match="workers"):
        generate_dataset("multiuser", dict(num=4), workers=0)
