"""Locating lines in a TOML file: which line holds a threshold's table, a key, an action's key."""

from __future__ import annotations

import re
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


def read_config_text(path: Path) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(path, "file not found") from None
    except IsADirectoryError:
        raise ConfigError(path, "is a directory, not a file") from None
    except PermissionError:
        raise ConfigError(path, "permission denied") from None
    except OSError as exc:  # a name too long, a loop of symlinks, an I/O error
        raise ConfigError(path, f"cannot be read: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(path, f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None
