"""Changing the thresholds file from the web pages: one threshold at a time, comments and order kept.

The text functions are pure (text in, text out). `commit` is the only writer: under a
file lock it refuses when the file changed since the editor read it, validates the
whole new file with the loader's own rules, keeps the previous version as
`<file>.bak` and replaces the file atomically.
"""

from __future__ import annotations

import difflib
import hashlib
import os
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomlkit
from filelock import FileLock, Timeout
from tomlkit.items import AoT, Table

from rrdalarm.common.fileutil import atomic_write_text, split_lines
from rrdalarm.common.secrets import redact_config_text
from rrdalarm.config.lines import read_config_text
from rrdalarm.config.thresholds import is_legacy_text, parse_thresholds_toml
from rrdalarm.delivery.dispatch import plan_actions
from rrdalarm.model.definitions import DEFAULT_SOURCE, Threshold
from rrdalarm.model.errors import ConfigError
from rrdalarm.plugins import Action, action_plugins, secret_keys

# Keys written for a new threshold even when they hold their default, so the file shows the window.
_ALWAYS = ("id", "name", "glob", "schema", "query", "type", "value", "repetitions", "start", "end", "rearm")
_DEFAULTS: dict[str, Any] = {
    "source": DEFAULT_SOURCE, "cf": "AVERAGE", "enabled": True, "ds": [], "label": [], "action": [],
}
_HEADER_RE = re.compile(r"^\s*\[\[\s*threshold\s*\]\]")
# Any table header, with its first key: [[threshold.action]] and [threshold.labels] are a threshold's own,
# [[maintenance]] (or any other) ends it.
_ANY_HEADER_RE = re.compile(r"""^\s*\[\[?\s*(?:"([^"]*)"|'([^']*)'|([A-Za-z0-9_-]+))\s*[\].]""")


class EditError(Exception):
    """A change that cannot be made; the message is one line for the page."""


class Conflict(EditError):
    """The file changed on disk since the editor read it."""

    def __init__(self, path: Path) -> None:
        super().__init__(f"{path} was changed by someone else since this form was opened; "
                         "reload the page to see the current version, then make the change again")


@dataclass(frozen=True)
class Snapshot:
    """The thresholds file as an editor read it: text, its version, and the parsed thresholds."""

    path: Path
    text: str
    version: str
    thresholds: list[Threshold]

    def get(self, ident: int) -> Threshold:
        for t in self.thresholds:
            if t.id == ident:
                return t
        raise EditError(f"there is no threshold {ident} in {self.path}")


@dataclass(frozen=True)
class Committed:
    version: str
    diff: str


def version_of(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def read_snapshot(path: Path, sources: Sequence[str] | None = None) -> Snapshot:
    """Read the file for editing; EditError for a legacy file, ConfigError when it does not load."""
    try:
        text = read_config_text(path)
    except ConfigError as exc:
        if exc.message != "file not found":
            raise
        text = ""  # the first threshold creates the file
    if is_legacy_text(text):
        raise EditError(f"{path} is a legacy rrdAlarmConfig.txt; convert it with 'rrdalarm import-legacy' "
                        "and point the settings at the TOML file to edit thresholds here")
    return Snapshot(path, text, version_of(text), parse_thresholds_toml(text, str(path), _sources(sources)))


def _sources(sources: Sequence[str] | None) -> Sequence[str]:
    if sources is not None:
        return sources
    from rrdalarm.plugins import source_plugins

    return sorted(source_plugins())


def next_id(thresholds: Sequence[Threshold]) -> int:
    return max((t.id for t in thresholds), default=0) + 1


def _plain(value: Any) -> Any:
    """tomlkit items as plain Python values, for comparisons."""
    if hasattr(value, "unwrap"):
        return value.unwrap()
    return value


def _tables(doc: tomlkit.TOMLDocument) -> AoT | None:
    aot = doc.get("threshold")
    return aot if isinstance(aot, AoT) else None


def _index_of(doc: tomlkit.TOMLDocument, ident: int) -> int:
    aot = _tables(doc)
    for i, table in enumerate(aot or ()):
        if _plain(table.get("id")) == ident:
            return i
    raise EditError(f"there is no threshold {ident} in the file (was it deleted meanwhile?)")


def _inline(value: Mapping[str, Any]) -> Any:
    # A secret reference or a header map reads best on one line: secret = { env = "HOOK_KEY" }.
    table = tomlkit.inline_table()
    table.update(value)
    return table


def _action_aot(actions: Sequence[Mapping[str, Any]]) -> AoT:
    aot = tomlkit.aot()
    for spec in actions:
        table = tomlkit.table()
        for key, value in spec.items():
            table.add(key, _inline(value) if isinstance(value, Mapping) else value)
        aot.append(table)
    return aot


def _new_table(values: Mapping[str, Any]) -> Table:
    table = tomlkit.table()
    for key, value in values.items():
        if key == "action" or (key not in _ALWAYS and _DEFAULTS.get(key, object()) == value):
            continue
        table.add(key, _inline(value) if isinstance(value, Mapping) else value)  # labels = { team = "net" }
    if values.get("action"):
        table.add("action", _action_aot(values["action"]))
    return table


def add_threshold(text: str, values: Mapping[str, Any]) -> str:
    """The file with one more threshold at the end; everything before it is kept byte for byte."""
    doc = tomlkit.document()
    aot = tomlkit.aot()
    aot.append(_new_table(values))
    doc.add("threshold", aot)
    body = tomlkit.dumps(doc)
    head = text.rstrip("\n")
    return (head + "\n\n" if head else "") + body


def _segment(text: str, ident: int) -> tuple[list[str], int, int]:
    """Lines of the file and the range [start, end) of threshold `ident`'s tables (comments above excluded)."""
    doc = tomlkit.parse(text)
    index = _index_of(doc, ident)
    lines = split_lines(text, keepends=True)
    headers = _header_lines(lines)
    if len(headers) != len(_tables(doc) or ()):  # a table header hidden in a multi-line string, say
        raise EditError("cannot find each [[threshold]] table on its own line; edit this file by hand")
    end = _owned_start(lines, _table_end(lines, headers[index]))
    return lines, headers[index], end


def _table_end(lines: Sequence[str], header: int) -> int:
    """The line after a threshold's tables: the next [[threshold]], [[maintenance]] or other table, or the end."""
    for i in range(header + 1, len(lines)):
        m = _ANY_HEADER_RE.match(lines[i])
        if m and (_HEADER_RE.match(lines[i]) or (m.group(1) or m.group(2) or m.group(3)) != "threshold"):
            return i
    return len(lines)


def _edit_segment(text: str, ident: int, change: Any) -> str:
    # Only this threshold's own lines are parsed and rewritten, so the comments and
    # tables around it (even a comment tomlkit would attach to its last action) stay as they are.
    lines, start, end = _segment(text, ident)
    segment = "".join(lines[start:end])
    body = segment.rstrip()
    mini = tomlkit.parse(body + "\n")
    change(mini["threshold"][0])
    return "".join(lines[:start]) + tomlkit.dumps(mini).rstrip("\n") + segment[len(body):] + "".join(lines[end:])


def _merge(table: Table, values: Mapping[str, Any]) -> None:
    for key in [k for k in table if k not in values]:
        del table[key]
    for key, value in values.items():
        if key == "action":
            continue
        item = _inline(value) if isinstance(value, Mapping) else value  # labels = { team = "net" }
        if key in table:
            if _plain(table[key]) != value:
                table[key] = item
        elif _DEFAULTS.get(key, object()) != value or key in _ALWAYS:
            table[key] = item
    actions = list(values.get("action") or [])
    if _plain(table.get("action", [])) != actions:
        if "action" in table:
            del table["action"]
        if actions:
            table.add("action", _action_aot(actions))


def replace_threshold(text: str, ident: int, values: Mapping[str, Any]) -> str:
    """The file with threshold `ident` changed to `values`, in place: its comments and key order stay."""
    return _edit_segment(text, ident, lambda table: _merge(table, values))


def set_enabled(text: str, ident: int, enabled: bool) -> str:
    def change(table: Table) -> None:
        if enabled and "enabled" in table:
            del table["enabled"]
        elif not enabled:
            table["enabled"] = False

    return _edit_segment(text, ident, change)


def _header_lines(lines: Sequence[str]) -> list[int]:
    return [i for i, line in enumerate(lines) if _HEADER_RE.match(line)]


def _owned_start(lines: Sequence[str], header: int) -> int:
    """First line of the comment block written right above a [[threshold]] header (no blank line between)."""
    start = header
    while start > 0 and lines[start - 1].lstrip().startswith("#"):
        start -= 1
    return start


def delete_threshold(text: str, ident: int) -> str:
    """The file without threshold `ident`: its table, its actions and the comment right above it.

    Refused while a [[maintenance]] window names it: the file would no longer load.
    """
    naming = _windows_naming(text, ident)
    if naming:
        listed = ", ".join(repr(n) for n in naming)
        raise EditError(f"threshold {ident} is named by maintenance window{'s' if len(naming) > 1 else ''} "
                        f"{listed}; change or remove {'them' if len(naming) > 1 else 'it'} in the file first")
    lines, header, end = _segment(text, ident)
    kept = lines[:_owned_start(lines, header)] + lines[end:]
    out = "".join(kept)
    # Collapse the blank lines left where the table was.
    return re.sub(r"\n{3,}", "\n\n", out)


def _windows_naming(text: str, ident: int) -> list[str]:
    """Names of the [[maintenance]] windows whose `threshold` is `ident`."""
    try:
        tables = tomllib.loads(text).get("maintenance", [])
    except tomllib.TOMLDecodeError:
        return []  # _segment reports the file as it is
    if not isinstance(tables, list):
        return []
    return [str(t.get("name", "")) for t in tables if isinstance(t, Mapping) and t.get("threshold") == ident
            and not isinstance(t.get("threshold"), bool)]


def validate_text(text: str, path: Path, plugins: Mapping[str, type[Action]],
                  sources: Sequence[str] | None = None) -> list[Threshold]:
    """The loader's rules and the check's action rules over a whole file; ConfigError names the problem."""
    thresholds = parse_thresholds_toml(text, str(path), _sources(sources))
    plan_actions(thresholds, plugins)
    return thresholds


def unified_diff(old: str, new: str, path: Path) -> str:
    return "".join(difflib.unified_diff(split_lines(old, keepends=True), split_lines(new, keepends=True),
                                        f"{path.name} (before)", f"{path.name} (after)"))


def commit(path: Path, expected_version: str, new_text: str, plugins: Mapping[str, type[Action]],
           sources: Sequence[str] | None = None) -> Committed:
    """Write `new_text` if the file is still at `expected_version`; keep the old text as `<file>.bak`."""
    lock = FileLock(str(path) + ".lock", timeout=10)
    try:
        with lock:
            try:
                current = read_config_text(path)
            except ConfigError as exc:
                if exc.message != "file not found":
                    raise
                current = ""
            if version_of(current) != expected_version:
                raise Conflict(path)
            validate_text(new_text, path, plugins, sources)
            if current:
                mode = os.stat(path).st_mode & 0o777
                atomic_write_text(path.with_name(path.name + ".bak"), current, mode)
            else:
                mode = 0o644
            atomic_write_text(path, new_text, mode)
    except Timeout:
        raise EditError(f"{path} is being saved by another request; try again") from None
    except OSError as exc:
        raise EditError(f"cannot write {path}: {exc.strerror or exc}") from None
    return Committed(version_of(new_text), audit_diff(current, new_text, path, plugins))


def audit_diff(old: str, new: str, path: Path, plugins: Mapping[str, type[Action]]) -> str:
    """The diff the audit log keeps: secret parameters (as the plugins declare them) and URL secrets as ***."""
    secret, _ = secret_keys([*plugins.values(), *action_plugins().values()])
    return redact_config_text(unified_diff(old, new, path), secret)
