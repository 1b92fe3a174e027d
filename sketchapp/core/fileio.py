"""Atomic file writes (a temp file beside the target, fsync, then rename) and the one safe
door every file a user names is read through: regular files only, bytes capped per kind,
bounded JSON, and OS errors as one-line messages."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import stat
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

from sketchapp.core.errors import SketchAppError


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike[str]) -> Iterator[BinaryIO]:
    """Open a temp file for binary writing; on success it replaces ``path`` in one step.

    On any error (full disk, cancel, exception in the caller) the temp file is removed
    and an existing file at ``path`` is left untouched. A ``path`` that is a symbolic link
    is written through: the file it points to gets the new bytes and the link stays.
    """
    target = Path(os.path.realpath(path))
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
    remove_stale_temps(target)


#: A temp file of ours this old is a leftover (the process writing it was killed), not a save under way.
STALE_TEMP_SECONDS = 60.0


def remove_stale_temps(target: Path) -> None:
    """Remove the temp files a killed save of ``target`` left beside it (``.NAME.XXXXXXXX.tmp``, as
    ``atomic_write`` names them, unchanged for a minute); anything else is left alone."""
    pattern = re.compile(rf"\.{re.escape(target.name)}\.[a-z0-9_]{{8}}\.tmp")
    now = time.time()
    try:
        with os.scandir(target.parent) as entries:
            for entry in entries:
                if pattern.fullmatch(entry.name) and entry.is_file(follow_symlinks=False):
                    with contextlib.suppress(OSError):
                        if now - entry.stat(follow_symlinks=False).st_mtime > STALE_TEMP_SECONDS:
                            os.unlink(entry.path)
    except OSError:  # a folder we cannot list: the leftovers stay, the save itself succeeded
        return


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


def write_all_or_nothing(files: list[tuple[Path, bytes]], error: type[SketchAppError]) -> None:
    """Write every (path, bytes) or none: each goes to a temp file beside its target first, and
    the renames happen only when all were written. A failure or an interruption (Ctrl-C) on the
    way removes the temp files and whatever this call had already put in place that was not
    there before, so it leaves nothing new; a target that is a folder is refused before any
    byte is written."""
    files = [(Path(os.path.realpath(path)), data) for path, data in files]  # through links, as atomic_write
    for path, _data in files:
        if path.is_dir():
            raise error(f"{_shown(path)}: is a folder; nothing was written")
    staged: list[tuple[str, Path]] = []
    placed: list[Path] = []
    try:
        for path, data in files:
            fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
            staged.append((tmp_name, path))
            os.chmod(tmp_name, _mode_for(path))
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
        existed = {path for _tmp, path in staged if path.exists()}
        for tmp_name, path in staged:
            os.replace(tmp_name, path)
            if path not in existed:
                placed.append(path)
        for folder in {path.parent for _tmp, path in staged}:
            _fsync_dir(folder)
    except BaseException as exc:
        for tmp_name, _path in staged:
            with contextlib.suppress(OSError):
                os.unlink(tmp_name)
        for path in placed:
            with contextlib.suppress(OSError):
                path.unlink()
        if isinstance(exc, OSError):
            raise error(f"{_shown(getattr(exc, 'filename', None) or files[0][0])}: cannot write ({_os_reason(exc)}); nothing was written") from None
        raise


MB = 1 << 20
#: the most bytes read of each kind of file; anything larger is refused before it is read
READ_LIMITS = {
    "image": 256 * MB, "checkpoint": 2048 * MB, "model": 2048 * MB, "training state": 8192 * MB,
    "preset": 1 * MB, "thumbnail": 32 * MB, "data set manifest": 64 * MB, "run record": 64 * MB,
    "document": 256 * MB, "autosave": 256 * MB,
}
DEFAULT_LIMIT = 64 * MB
MAX_JSON_DEPTH = 64  # records nest a few levels; thousands deep only ever means an attack


def _article(kind: str) -> str:
    return "an" if kind[0] in "aeiou" else "a"


def _os_reason(exc: OSError) -> str:
    if exc.errno == errno.ENAMETOOLONG:
        return "the path is too long"
    if exc.errno == errno.ELOOP:
        return "too many levels of symbolic links"
    return exc.strerror or str(exc)


def printable(text: str) -> str:
    """``text`` with control, bidirectional-override and other unprintable characters escaped (\\u202e),
    so a name from a file can be shown or printed as it is."""
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)


def _shown(path: str | os.PathLike[str], room: int = 120) -> str:
    """The path for a message: unprintable characters escaped, a long one cut in the middle."""
    text = printable(str(path))
    return text if len(text) <= room else f"{text[: room // 2]}…{text[-room // 2 :]}"


def read_user_file(
    path: str | os.PathLike[str], error: type[SketchAppError], kind: str, limit: int | None = None
) -> bytes:
    """The bytes of a file a user named, or ``error`` with a one-line reason.

    ``kind`` names what the file should be ("image", "checkpoint") in the messages and
    picks its byte limit (READ_LIMITS). Only regular files are read (after symbolic links):
    a pipe would block forever and a device such as /dev/zero never ends.
    """
    file = Path(path)
    limit = limit if limit is not None else READ_LIMITS.get(kind, DEFAULT_LIMIT)
    check_regular(file, error, kind, limit)
    try:
        with open(file, "rb") as handle:
            data = handle.read(limit + 1)
    except OSError as exc:
        raise error(f"{_shown(file)}: cannot read ({_os_reason(exc)})") from None
    if len(data) > limit:
        raise error(f"{_shown(file)}: more than the {limit // MB} MB a {kind} file may have")
    if not data:
        raise error(f"{_shown(file.name)}: the {kind} file is empty (0 bytes)")
    return data


def check_regular(
    path: str | os.PathLike[str], error: type[SketchAppError], kind: str, limit: int | None = None
) -> int:
    """The size of ``path`` once it is known to be a regular, non-empty file within ``kind``'s limit
    (see ``read_user_file``), for readers that open the file themselves."""
    file = Path(path)
    limit = limit if limit is not None else READ_LIMITS.get(kind, DEFAULT_LIMIT)
    try:
        info = os.stat(file)
    except FileNotFoundError:
        raise error(f"{_shown(file)}: no such {kind} file") from None
    except (OSError, ValueError) as exc:
        reason = _os_reason(exc) if isinstance(exc, OSError) else "not a valid path"
        raise error(f"{_shown(file)}: cannot read ({reason})") from None
    if stat.S_ISDIR(info.st_mode):
        raise error(f"{_shown(file)}: is a folder, not {_article(kind)} {kind} file")
    if not stat.S_ISREG(info.st_mode):
        raise error(f"{_shown(file)}: not a regular file (a pipe, device or socket), so not {_article(kind)} {kind} file")
    if info.st_size > limit:
        raise error(f"{_shown(file)}: {info.st_size / MB:.0f} MB, more than the {limit // MB} MB a {kind} file may have")
    if info.st_size == 0:
        raise error(f"{_shown(file.name)}: the {kind} file is empty (0 bytes)")
    return info.st_size


_STRINGS = re.compile(rb'"(?:[^"\\]|\\.)*"')


def json_depth(data: bytes) -> int:
    """How deep arrays and objects nest in JSON ``data`` (brackets inside strings do not count)."""
    import numpy as np

    bare = _STRINGS.sub(b"", data)
    codes = np.frombuffer(bare, np.uint8)
    steps = np.isin(codes, (ord("["), ord("{"))).astype(np.int32) - np.isin(codes, (ord("]"), ord("}")))
    return int(np.cumsum(steps).max(initial=0))


class _DuplicateKey(ValueError):
    pass


def _unique_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for key, value in pairs:
        if key in found:
            raise _DuplicateKey(key)
        found[key] = value
    return found


def parse_json(data: bytes | str, error: type[SketchAppError], what: str, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """JSON ``data``, or ``error`` naming ``what``: not UTF-8, not JSON, a key given twice in one
    object (which of the two would count is anyone's guess), or nested deeper than ``max_depth``."""
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
    if json_depth(raw) > max_depth:
        raise error(f"{what}: JSON nested more than {max_depth} levels deep")
    try:
        return json.loads(raw.decode("utf-8"), object_pairs_hook=_unique_object)
    except UnicodeDecodeError:
        raise error(f"{what}: not UTF-8 text") from None
    except _DuplicateKey as exc:
        raise error(f"{what}: the key {_shown(Path(str(exc)), 60)!r} is given twice") from None
    except (ValueError, RecursionError) as exc:  # ValueError: also an integer of thousands of digits
        raise error(f"{what}: not valid JSON ({exc})"[:300]) from None


def read_json(path: str | os.PathLike[str], error: type[SketchAppError], kind: str, limit: int | None = None) -> Any:
    """A JSON file a user or a run left, through ``read_user_file`` and ``parse_json``."""
    return parse_json(read_user_file(path, error, kind, limit), error, _shown(Path(path).name))
