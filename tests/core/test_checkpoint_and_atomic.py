import errno
import hashlib
import os
import re

import numpy as np
import pytest
import torch

from chanlab.core import atomic
from chanlab.core.atomic import atomic_path, atomic_write_json
from chanlab.core.checkpoint import Checkpointer, checksum_path, load_checkpoint, save_checkpoint
from chanlab.core.errors import CheckpointError


def test_save_load_round_trip(tmp_path):
    model = torch.nn.Linear(3, 2)
    path = save_checkpoint(tmp_path / "ck.pt", {"model": model.state_dict(), "step": 7})
    state = load_checkpoint(path)
    assert state["step"] == 7
    assert torch.equal(state["model"]["weight"], model.weight.detach())


def test_load_refuses_pickled_code(tmp_path):
    class Evil:
        def __reduce__(self):
            return (os.system, ("echo owned",))

    path = tmp_path / "evil.pt"
    torch.save({"x": Evil()}, path)
    with pytest.raises(CheckpointError, match="cannot be read safely"):
        load_checkpoint(path)


def test_missing_and_corrupt(tmp_path):
    with pytest.raises(CheckpointError, match="no such file"):
        load_checkpoint(tmp_path / "nope.pt")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError):
        load_checkpoint(bad)


def test_atomic_write_leaves_no_partial_file(tmp_path):
    target = tmp_path / "out.json"
    atomic_write_json(target, {"a": 1})
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed")
    assert target.read_text().strip().startswith("{")
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]


def test_checkpointer_resumes_rng(tmp_path):
    ck = Checkpointer(tmp_path)
    assert ck.load_latest() is None
    torch.manual_seed(1)
    np.random.seed(1)
    ck.save({"step": 3})
    expected = (torch.rand(3), np.random.rand(3))
    torch.manual_seed(99)
    np.random.seed(99)
    state = ck.load_latest()
    assert state == {"step": 3}
    assert torch.equal(torch.rand(3), expected[0])
    assert np.array_equal(np.random.rand(3), expected[1])


# --------------------------------------------------------------------------- checksums


def _saved(tmp_path, name="ck.pt"):
    return save_checkpoint(tmp_path / name, {"w": torch.arange(4096, dtype=torch.float32), "step": 3})


def test_checksum_is_written_beside_the_checkpoint(tmp_path):
    path = _saved(tmp_path)
    side = checksum_path(path)
    assert side.name == "ck.pt.sha256"
    digest, name = side.read_text().split()
    assert name == "ck.pt" and digest == hashlib.sha256(path.read_bytes()).hexdigest()  # sha256sum -c format
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ck.pt", "ck.pt.sha256"]


def test_flipped_bytes_are_detected(tmp_path):
    path = _saved(tmp_path)
    data = bytearray(path.read_bytes())
    mid = len(data) // 2
    data[mid:mid + 8] = bytes(b ^ 0xFF for b in data[mid:mid + 8])   # inside the tensor data: torch loads it
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match=rf"{re.escape(str(path))}: damaged.*delete it") as info:
        load_checkpoint(path)
    assert ".tmp" not in str(info.value)


def test_truncated_checkpoint_is_detected(tmp_path):
    path = _saved(tmp_path)
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(CheckpointError, match=rf"{re.escape(str(path))}: damaged or truncated.*delete it"):
        load_checkpoint(path)
    # Without the checksum file, torch's own error is turned into the same kind of message.
    checksum_path(path).unlink()
    with pytest.raises(CheckpointError, match=rf"{re.escape(str(path))}: damaged or truncated.*delete it"):
        load_checkpoint(path)


def test_checkpoint_without_checksum_still_loads(tmp_path):
    path = _saved(tmp_path)
    checksum_path(path).unlink()
    assert load_checkpoint(path)["step"] == 3
    torch.save({"step": 4}, tmp_path / "plain.pt")                   # written by other code
    assert load_checkpoint(tmp_path / "plain.pt")["step"] == 4


def test_resave_replaces_the_checksum(tmp_path):
    path = _saved(tmp_path)
    save_checkpoint(path, {"step": 9})
    assert load_checkpoint(path) == {"step": 9}


def test_damaged_checksum_file(tmp_path):
    path = _saved(tmp_path)
    checksum_path(path).write_text("garbage\n")
    with pytest.raises(CheckpointError, match=r"ck\.pt\.sha256 is damaged"):
        load_checkpoint(path)


def test_checkpointer_best_files_are_checked_and_pruned_with_their_checksums(tmp_path):
    ck = Checkpointer(tmp_path, "stage.pt")
    ck.save_best(1, {"w": torch.ones(3)})
    ck.save_best(2, {"w": torch.zeros(3)})
    ck.prune_best(2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["stage.best-2.pt", "stage.best-2.pt.sha256"]
    best = ck.best_path(2)
    best.write_bytes(best.read_bytes()[:-10])
    with pytest.raises(CheckpointError, match=r"stage\.best-2\.pt: damaged.*delete it and .*stage\.pt to restart "
                                              r"this training stage"):
        ck.load_best(2)
    ck.save({"step": 1})
    latest = ck.path
    latest.write_bytes(latest.read_bytes()[:-10])
    with pytest.raises(CheckpointError, match=r"stage\.pt: damaged.*delete it to restart this training stage"):
        ck.load_latest()


def test_directory_instead_of_a_checkpoint(tmp_path):
    (tmp_path / "ck.pt").mkdir()
    with pytest.raises(CheckpointError, match="expected a checkpoint file, got a directory"):
        load_checkpoint(tmp_path / "ck.pt")
    with pytest.raises(CheckpointError, match="no such file"):
        load_checkpoint(tmp_path / "other.pt")


# --------------------------------------------------------------------------- messages name the real file


def test_target_is_a_directory(tmp_path):
    (tmp_path / "out.json").mkdir()
    with pytest.raises(IsADirectoryError) as info:
        atomic_write_json(tmp_path / "out.json", {"a": 1})
    assert info.value.filename == str(tmp_path / "out.json")
    assert ".tmp" not in str(info.value) and "expected a file name" in str(info.value)
    with pytest.raises(IsADirectoryError, match="out.json") as info:
        save_checkpoint(tmp_path / "out.json", {"a": 1})
    assert ".tmp" not in str(info.value)
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]


def test_a_file_in_the_way_of_the_folder(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(NotADirectoryError) as info:
        atomic_write_json(tmp_path / "f" / "config.json", {})
    assert info.value.filename == str(tmp_path / "f") and ".tmp" not in str(info.value)


def test_unwritable_folder_names_the_target(tmp_path, monkeypatch):
    # Simulated (tests may run as root, who may write anywhere): mkstemp fails like on a read-only folder.
    def refuse(prefix, suffix, dir):
        raise PermissionError(errno.EACCES, "Permission denied", os.path.join(dir, f"{prefix}abc123{suffix}"))

    monkeypatch.setattr(atomic.tempfile, "mkstemp", refuse)
    with pytest.raises(PermissionError) as info:
        atomic_write_json(tmp_path / "config.json", {})
    assert info.value.filename == str(tmp_path / "config.json") and ".tmp" not in str(info.value)


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root may write to read-only folders")
def test_read_only_folder_names_the_target(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        with pytest.raises(PermissionError) as info:
            atomic_write_json(folder / "config.json", {})
    finally:
        folder.chmod(0o755)
    assert info.value.filename == str(folder / "config.json") and ".tmp" not in str(info.value)


def test_errors_while_writing_the_temporary_file_name_the_target(tmp_path):
    target = tmp_path / "x.h5"
    with pytest.raises(OSError) as info, atomic_path(target) as tmp:
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp))
    assert info.value.filename == str(target) and isinstance(info.value, OSError)
    assert ".tmp" not in str(info.value)
    with pytest.raises(OSError) as info, atomic_path(target) as tmp:  # h5py-style: the name only in the text
        raise OSError(f"Unable to create file (unable to open file: name = '{tmp}', errno = 28)")
    assert str(target) in str(info.value) and ".tmp" not in str(info.value)
    with pytest.raises(FileNotFoundError, match="source.bin"), atomic_path(target):  # another file: left as is
        (tmp_path / "source.bin").read_bytes()
    assert list(tmp_path.iterdir()) == []
