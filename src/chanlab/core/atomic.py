"""Atomic file writes: write to a temporary file in the same folder, then rename.

A reader never sees a half-written file, and a process killed mid-write leaves the previous
version (or nothing) in place.

The temporary file (``.NAME.xxxx.tmp``) is an implementation detail: an ``OSError`` while
creating, writing or renaming it is raised again as the same kind of error (``PermissionError``,
``IsADirectoryError``, ...) naming the real target path, so that messages say
``Permission denied: out/config.json`` rather than the name of a file the user never asked for.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

_NOT_A_FILE = "Is a directory, expected a file name"


def _mentions(exc: OSError, tmp: Path) -> bool:
    """Whether ``exc`` is about the temporary file ``tmp`` (by its file names or its message)."""
    names = (exc.filename, exc.filename2)
    return any(n is not None and tmp.name in os.fsdecode(n) for n in names) or tmp.name in str(exc)


def _naming(exc: OSError, path: Path, tmp: Path | None = None) -> OSError:
    """``exc`` made again about ``path`` (same class and errno), without the temporary name."""
    if exc.errno is not None and exc.strerror:
        strerror = _NOT_A_FILE if exc.errno == errno.EISDIR else exc.strerror
        try:
            return type(exc)(exc.errno, strerror, str(path))
        except TypeError:  # a subclass with its own constructor
            return OSError(exc.errno, strerror, str(path))
    text = str(exc)
    if tmp is not None:
        text = text.replace(str(tmp), str(path)).replace(tmp.name, path.name)
    return OSError(f"{path}: {text}" if str(path) not in text else text)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it is renamed onto ``path``.

    Use for writers that want a file name (h5py, matplotlib, torch.save)::

        with atomic_path("x.h5") as tmp:
            with h5py.File(tmp, "w") as f: ...

    Raises:
        IsADirectoryError: ``path`` is an existing directory (checked before anything is written).
        NotADirectoryError: a file is in the way of ``path``'s folder.
        OSError: the folder cannot be written (``PermissionError``), the disk is full, ...;
            always naming ``path``, never the temporary file.
    """
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(errno.EISDIR, _NOT_A_FILE, str(path))
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except FileExistsError:  # mkdir(exist_ok=True) says this when a *file* has the folder's name
        raise NotADirectoryError(errno.ENOTDIR, "Not a directory (a file is in the way of the folder for "
                                 f"{path.name})", str(path.parent)) from None
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise _naming(exc, path) from None
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        # mkstemp makes the file private (0600); give the result the permissions open() would.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        try:
            yield tmp
        except OSError as exc:
            if _mentions(exc, tmp):
                raise _naming(exc, path, tmp) from None
            raise
        try:
            os.replace(tmp, path)
        except OSError as exc:
            raise _naming(exc, path, tmp) from None
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (fsync before the rename)."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, obj: Any,
                      default: Callable[[Any], Any] | None = None) -> None:
    """Write ``obj`` as indented JSON to ``path`` atomically."""
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=default) + "\n")
