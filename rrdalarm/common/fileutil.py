"""Files: atomic writes (a reader sees the old file or the new one, never half of one), their lines, private folders."""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600


def make_private_dirs(path: Path) -> None:
    """Create `path` and its missing parents as 0700 (what rrdalarm keeps is nobody else's business).

    A folder that exists already keeps its mode: the operator may have opened it on purpose.
    """
    path = Path(path)
    missing = []
    here = path
    while not os.path.lexists(here) and here != here.parent:
        missing.append(here)
        here = here.parent
    for folder in reversed(missing):
        try:
            folder.mkdir(mode=PRIVATE_DIR)
        except FileExistsError:  # made by a concurrent caller a moment ago
            continue
        os.chmod(folder, PRIVATE_DIR)  # mkdir's mode goes through the umask
    if not path.is_dir():
        raise FileExistsError(errno.EEXIST, "exists and is not a folder", str(path))


def create_private_file(path: Path) -> None:
    """Create an empty 0600 file unless it exists, so that a library opening it later cannot make it 0644."""
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT, PRIVATE_FILE))


def atomic_write_text(path: Path, text: str, mode: int | None = None) -> None:
    """Write text to a temp file beside `path`, fsync it, then rename it over `path`."""
    atomic_write_bytes(path, text.encode("utf-8"), mode)


def _keep_owner(tmp: str, before: os.stat_result) -> None:
    """Give the new file the old one's owner and group, where this process may (root may; others keep theirs)."""
    if (before.st_uid, before.st_gid) == (os.geteuid(), os.getegid()):
        return
    with contextlib.suppress(PermissionError):
        os.chown(tmp, before.st_uid, before.st_gid)


def _written_beside(path: Path, data: bytes) -> str:
    """A new 0600 temp file beside `path` holding `data`, on disk (fsync); its name."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return tmp


def atomic_write_bytes(path: Path, data: bytes, mode: int | None = None) -> None:
    """Write bytes to a temp file beside `path`, fsync it, then rename it over `path`."""
    path = Path(path)
    make_private_dirs(path.parent)
    try:
        before: os.stat_result | None = path.stat()
    except FileNotFoundError:
        before = None
    if mode is None and before is not None:
        mode = before.st_mode & 0o777
    tmp = _written_beside(path, data)
    try:
        if before is not None:
            _keep_owner(tmp, before)
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def split_lines(text: str, keepends: bool = False) -> list[str]:
    """The lines of a TOML or legacy file: only \\n ends a line (a \\r before it is no part of the line).

    Not str.splitlines, which also breaks at U+0085, U+2028, form feeds and others that a
    TOML string may hold: line numbers would drift from tomllib's and a table header
    could seem to start inside a string.
    """
    parts = text.split("\n")
    last = parts.pop()
    if keepends:
        return [p + "\n" for p in parts] + ([last] if last else [])
    return [p.removesuffix("\r") for p in parts] + ([last] if last else [])


def private_file(path: Path, make: Callable[[], bytes]) -> bytes:
    """The content of `path`, created once (mode 0600, in a private folder) from `make()` if missing.

    For keys and tokens. The file appears whole (written aside, then linked into place),
    and when two processes make it at once the first wins and the other reads it back.
    """
    try:
        return path.read_bytes()
    except FileNotFoundError:
        pass
    make_private_dirs(path.parent)
    data = make()
    tmp = _written_beside(path, data)
    try:
        os.link(tmp, path)
    except FileExistsError:  # another process made it first: theirs counts
        data = path.read_bytes()
    finally:
        os.unlink(tmp)
    return data
