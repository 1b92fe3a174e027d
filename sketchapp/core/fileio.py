"""Atomic file writes: a temp file beside the target, fsync, then rename."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from sketchapp.core.errors import SketchAppError


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike[str]) -> Iterator[BinaryIO]:
    """Open a temp file for binary writing; on success it replaces ``path`` in one step.

    On any error (full disk, cancel, exception in the caller) the temp file is removed
    and an existing file at ``path`` is left untouched.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        os.chmod(tmp_name, _mode_for(target))  # mkstemp makes 0600; keep what a plain open() would give
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, target)
        _fsync_dir(target.parent)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise


def _mode_for(target: Path) -> int:
    """The existing file's permissions, or the ones the process umask gives a new file."""
    try:
        return target.stat().st_mode & 0o7777
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def _fsync_dir(folder: Path) -> None:
    """Make the rename itself durable (POSIX); a no-op where folders cannot be opened."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_bytes_atomic(path: str | os.PathLike[str], data: bytes) -> None:
    with atomic_write(path) as handle:
        handle.write(data)


def read_user_file(path: str | os.PathLike[str], error: type[SketchAppError], kind: str) -> bytes:
    """The bytes of a file a user named, or ``error`` with a one-line reason.

    ``kind`` names what the file should be ("image", "checkpoint") in the messages.
    """
    file = Path(path)
    if not file.exists():
        raise error(f"{file}: no such {kind} file")
    if file.is_dir():
        raise error(f"{file}: is a folder, not a{'n' if kind[0] in 'aeiou' else ''} {kind} file")
    try:
        data = file.read_bytes()
    except OSError as exc:
        raise error(f"{file}: cannot read ({exc.strerror or exc})") from exc
    if not data:
        raise error(f"{file.name}: the {kind} file is empty (0 bytes)")
    return data
