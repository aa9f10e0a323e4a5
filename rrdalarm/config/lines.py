"""Locating lines in a TOML file: which line holds a threshold's table, a key, an action's key."""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable
from pathlib import Path

from rrdalarm.common.fileutil import split_lines
from rrdalarm.model.errors import ConfigError

_TABLE_RE = re.compile(r"^\s*\[\[\s*threshold\s*\]\]\s*(#.*)?$")
_SUBTABLE_RE = re.compile(r"^\s*\[\[\s*threshold\s*\.\s*action\s*\]\]\s*(#.*)?$")
_ANY_TABLE_RE = re.compile(r"^\s*\[")
_WINDOW_RE = re.compile(r"^\s*\[\[\s*maintenance\s*\]\]\s*(#.*)?$")
_WINDOW_SUB_RE = re.compile(r"^\s*\[\s*maintenance\s*\.\s*([A-Za-z0-9_-]+)\s*\]\s*(#.*)?$")
_KEY_RE = re.compile(r"""^\s*(?:"([^"]+)"|'([^']+)'|([A-Za-z0-9_-]+))\s*=""")


def top_level_line(text: str, key: str) -> int | None:
    """Line of a top-level `key = ...`, `[key]` or `[[key]]` (the first one), for messages."""
    header = re.compile(r"^\s*\[{1,2}\s*" + re.escape(key) + r"\s*[\].]")
    in_table = False
    for i, ln in enumerate(split_lines(text)):
        if header.match(ln):
            return i + 1
        if _ANY_TABLE_RE.match(ln):
            in_table = True
            continue
        m = _KEY_RE.match(ln)
        if m and not in_table and (m.group(1) or m.group(2) or m.group(3)) == key:
            return i + 1
    return None


def table_key_line(text: str, table: str, key: str) -> int | None:
    """Line of `key = ...` inside the `[table]` table, else of the table's header, for messages."""
    header = re.compile(r"^\s*\[\s*" + re.escape(table) + r"\s*\]\s*(#.*)?$")
    start = None
    for i, ln in enumerate(split_lines(text)):
        if start is None:
            start = i + 1 if header.match(ln) else None
            continue
        if _ANY_TABLE_RE.match(ln):
            break
        m = _KEY_RE.match(ln)
        if m and (m.group(1) or m.group(2) or m.group(3)) == key:
            return i + 1
    return start or top_level_line(text, table)


class _Lines:
    """Finds the line of the n-th [[threshold]] (or [[maintenance]]) table and of keys inside it.

    tomllib gives no positions, so lines are recovered from the text; this is
    only used for messages, never for values.
    """

    def __init__(self, text: str) -> None:
        self.lines = split_lines(text)
        self.tables = [i + 1 for i, ln in enumerate(self.lines) if _TABLE_RE.match(ln)]
        self.windows = [i + 1 for i, ln in enumerate(self.lines) if _WINDOW_RE.match(ln)]

    def table(self, index: int) -> int | None:
        return self.tables[index] if index < len(self.tables) else None

    def _key_in(self, start: int | None, key: str, sub_index: int | None) -> int | None:
        """Line of `key` in the table starting at line `start` (or in its sub_index-th action)."""
        if start is None:
            return None
        want = -1 if sub_index is None else sub_index
        sub = -1
        for i in range(start, len(self.lines)):
            ln = self.lines[i]
            if _TABLE_RE.match(ln):
                break
            if _SUBTABLE_RE.match(ln):
                sub += 1
                if sub == want and not key:
                    return i + 1
                continue
            if _ANY_TABLE_RE.match(ln):
                break
            m = _KEY_RE.match(ln)
            if m and key and sub == want and (m.group(1) or m.group(2) or m.group(3)) == key:
                return i + 1
        return None

    def key(self, index: int, key: str) -> int | None:
        return self._key_in(self.table(index), key, None) or self.table(index)

    def action(self, index: int, sub: int, key: str = "") -> int | None:
        return self._key_in(self.table(index), key, sub) or self._key_in(self.table(index), "", sub)

    def window_key(self, index: int, key: str) -> int | None:
        """Line of `key` in the index-th [[maintenance]] table ([maintenance.labels] counts), else its header."""
        start = self.windows[index] if index < len(self.windows) else None
        if start is None:
            return None
        in_sub = False  # keys under [maintenance.labels] are labels, not the window's
        for i in range(start, len(self.lines)):
            ln = self.lines[i]
            sub = _WINDOW_SUB_RE.match(ln)
            if sub:
                if sub.group(1) == key:
                    return i + 1
                in_sub = True
                continue
            if _ANY_TABLE_RE.match(ln):
                break
            m = _KEY_RE.match(ln)
            if m and not in_sub and (m.group(1) or m.group(2) or m.group(3)) == key:
                return i + 1
        return start


# ---------------------------------------------------------------- validation

Locate = Callable[[str], int | None]


def _toml_error_line(message: str) -> int | None:
    m = re.search(r"line (\d+)", message)
    return int(m.group(1)) if m else None


# A file is trusted whole once it has been left alone this long (see read_config_text): longer than a
# writer that is busy, on a loaded machine, is likely to be kept from running in the middle of its file.
QUIET = 0.2
# Seconds a file may keep changing under a reader before the read is given up.
CHANGING_FOR = 3.0
# Pause before reading a changing file again.
RETRY = 0.02

Identity = tuple[int, int, int, int, int]


def _identity(st: os.stat_result) -> Identity:
    # ctime too: every write and rename moves it, and touch cannot set it back.
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def _read_once(path: Path) -> tuple[bytes, Identity | None]:
    """The file's bytes, and its identity if nothing changed while they were read (else None)."""
    with open(path, "rb") as fh:
        before = _identity(os.fstat(fh.fileno()))
        data = fh.read()
        after = _identity(os.fstat(fh.fileno()))
    # The name too: a file renamed over it meanwhile is the newer version, to be read instead.
    named = _identity(os.stat(path))
    return data, (after if before == after == named else None)


def _left_alone(path: Path, identity: Identity, quiet: float) -> bool:
    """True once the file has gone `quiet` seconds without a change, waiting for that if need be."""
    age = time.time() - identity[4] / 1e9
    # An empty file may be one just truncated, and some file systems do not stamp a truncation.
    if age >= quiet and identity[2] > 0:
        return True
    # Changed a moment ago, or stamped by another clock (NFS): watch it for the rest of `quiet`.
    time.sleep(quiet - age if 0 <= age < quiet else quiet)
    return _identity(os.stat(path)) == identity


def _read_whole(path: Path, quiet: float) -> bytes:
    """The bytes of a version of the file that nobody was writing; ConfigError after CHANGING_FOR s of changes."""
    deadline = time.monotonic() + CHANGING_FOR
    while True:
        data, identity = _read_once(path)
        if identity is not None and _left_alone(path, identity, quiet):
            return data
        if time.monotonic() >= deadline:
            raise ConfigError(path, f"kept changing while it was read, for {CHANGING_FOR:g} s: whatever edits it "
                                    "should write it atomically (a new file renamed over it)")
        time.sleep(RETRY)


def read_config_text(path: Path, *, quiet: float = QUIET) -> str:
    """The text of a settings or thresholds file: a whole version of it, never one half written.

    An editor that saves in place truncates the file and writes it again; a read in between sees
    a shorter file that may well parse (a threshold cut before its `rearm` gets the default 0).
    What a reader can detect, and does:

    * a change during the read: the file's device, inode, size, mtime or ctime differ between
      fstat before and after reading, or the name now leads to another file -> read again;
    * a write just before the read: the file's ctime is less than `quiet` seconds old -> wait
      until it is, and read again if it changed meanwhile;
    * an empty file: maybe one just truncated, which some file systems do not stamp -> watch it
      for `quiet` seconds the same way.

    So a text is used only when the file went unchanged from `quiet` seconds before the read
    ended until after it: a check or the service waits at most `quiet` after a save. A writer
    that stops for longer than `quiet` in the middle of the file cannot be told from one that
    has finished: tools should write atomically (a new file renamed over the old one, as the
    web editor does), which every reader sees whole. A file still changing after CHANGING_FOR
    seconds is a one-line ConfigError.
    """
    try:
        data = _read_whole(Path(path), quiet)
    except FileNotFoundError:
        raise ConfigError(path, "file not found") from None
    except IsADirectoryError:
        raise ConfigError(path, "is a directory, not a file") from None
    except PermissionError:
        raise ConfigError(path, "permission denied") from None
    except OSError as exc:  # a name too long, a loop of symlinks, an I/O error
        raise ConfigError(path, f"cannot be read: {exc.strerror or exc}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(path, f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    # Line ends as text mode reads them (Path.read_text did until now): \r\n and a lone \r are \n.
    return text.replace("\r\n", "\n").replace("\r", "\n")
