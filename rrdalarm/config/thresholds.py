"""Thresholds: from TOML tables (or a legacy file) to validated Threshold objects, with locations."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable, Iterable, Mapping, Sequence, Set
from dataclasses import replace
from pathlib import Path
from typing import Any

from rrdalarm.common.fileutil import split_lines
from rrdalarm.common.quantities import parse_quantity
from rrdalarm.config.cluster import broker_urls
from rrdalarm.config.lines import Locate, _Lines, _toml_error_line, read_config_text, top_level_line
from rrdalarm.config.problems import Problems
from rrdalarm.config.tuning import TUNING_FIELDS, read_tuning
from rrdalarm.model.control import MaintenanceWindow
from rrdalarm.model.definitions import (
    CONSOLIDATION_FUNCTIONS,
    DEFAULT_SOURCE,
    LOCAL_TREE,
    ActionSpec,
    Location,
    Settings,
    Threshold,
    ThresholdsFile,
)
from rrdalarm.model.errors import ConfigError
from rrdalarm.model.states import Direction
from rrdalarm.rules import timespec
from rrdalarm.sources.base import Source

# Any time works here: it only checks that start comes before end for every "now".
_PROBE_NOW = 2_000_000_000


def _int(raw: Any, name: str, fail: Callable[[str, str], ConfigError], minimum: int = 0) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int):
        if isinstance(raw, float) and raw.is_integer():
            raw = int(raw)
        else:
            raise fail(name, f"must be a whole number, not {raw!r}")
    if raw < minimum:
        raise fail(name, f"must be {minimum} or more, not {raw}")
    return int(raw)


# Threshold ids are INTEGER columns: 32 bits in PostgreSQL, the smallest of the supported databases.
MAX_ID = 2**31 - 1


Fail = Callable[[str, str], ConfigError]
"""Makes the ConfigError for a field of the threshold being read: fail(field, message)."""

_COMMON = frozenset({
    "id", "name", "source", "ds", "cf", "type", "value", "repetitions",
    "start", "end", "rearm", "enabled", "action", "tree", *TUNING_FIELDS,
})
# A tree's name is part of its queue's name (rrdalarm.tree.NAME) and of its workers' node names.
_TREE_RE = re.compile(r"[A-Za-z0-9_.-]{1,64}")


def threshold_from_dict(
    raw: Mapping[str, Any],
    path: str,
    locate: Locate = lambda _key: None,
    locate_action: Callable[[int, str], int | None] = lambda _i, _key: None,
    sources: Sequence[str] = (DEFAULT_SOURCE,),
) -> Threshold:
    """Validate one threshold table; the single rule set the CLI, loader and web form share.

    Raises the first mistake, in field order. The installed source plugins declare and validate their
    own fields; `sources` are those allowed.
    """
    threshold = read_threshold(raw, path, locate, locate_action, sources)
    assert threshold is not None  # raising Problems: a mistake never gets this far
    return threshold


def threshold_problems(raw: Mapping[str, Any], path: str,
                       sources: Sequence[str] = (DEFAULT_SOURCE,)) -> tuple[Threshold | None, list[ConfigError]]:
    """(the threshold, []) when the table is valid, else (None, every field's first mistake, in field order).

    The same readers as threshold_from_dict, each field group on its own, for a form that shows every
    mistake at once.
    """
    problems = Problems(collect=True)
    threshold = read_threshold(raw, path, sources=sources, problems=problems)
    return (None, problems.errors) if problems.errors else (threshold, [])


def read_threshold(
    raw: Mapping[str, Any],
    path: str,
    locate: Locate = lambda _key: None,
    locate_action: Callable[[int, str], int | None] = lambda _i, _key: None,
    sources: Sequence[str] = (DEFAULT_SOURCE,),
    problems: Problems | None = None,
) -> Threshold | None:
    """The threshold of a table, its mistakes going to `problems` (default: raised); None when some were kept."""
    from rrdalarm.plugins import source_plugins

    p = problems or Problems()

    def fail(name: str, message: str) -> ConfigError:
        ident = raw.get("id")
        prefix = f"threshold {ident}: " if isinstance(ident, int) and not isinstance(ident, bool) else ""
        return ConfigError(path, prefix + message, locate(name), name)

    installed = source_plugins()
    foreign = _source_keys(installed)
    # Fields are read in this order, so that raising names the first mistake of a table.
    p.step(None, lambda: _known_keys(raw, fail, _COMMON | foreign.keys()))
    ident = p.step(0, lambda: _ident(raw, path, locate, fail))
    plugin = p.step(None, lambda: _source(raw, sources, installed, fail))
    own: dict[str, Any] = {}
    ds: tuple[str, ...] = ()
    if plugin is not None:
        own = p.step(own, lambda: plugin.read_fields(raw, fail, foreign))
        ds = p.step(ds, lambda: _series_names(raw, plugin.name, plugin.series_key, plugin.series_rule, fail))
    cf = p.step("AVERAGE", lambda: _cf(raw, fail))
    kind = p.step(Direction.ABOVE, lambda: _direction(raw, fail))
    value = p.step(0.0, lambda: _limit(raw, fail))
    start, end = _window(raw, fail, p)
    enabled = p.step(True, lambda: _enabled(raw, fail))
    name = p.step("", lambda: _name(raw, fail))
    actions: tuple[ActionSpec, ...] = p.step((), lambda: _actions(raw, path, ident, locate_action, fail))
    repetitions = p.step(0, lambda: _int(raw.get("repetitions", 0), "repetitions", fail))
    # A source's own field of the same name as a tuning field (csvdir's `scale`) is the source's.
    mine = plugin.fields if plugin else {}
    tuning = read_tuning({k: v for k, v in raw.items() if k not in mine}, fail, kind, value, repetitions, p)
    if isinstance(raw.get("value"), str):
        tuning = replace(tuning, typed={**tuning.typed, "value": raw["value"]})
    rearm = p.step(0, lambda: _int(raw.get("rearm", 0), "rearm", fail))
    tree = p.step(LOCAL_TREE, lambda: _tree(raw, fail))
    if p.errors or plugin is None:
        return None
    return Threshold(
        id=ident, name=name or f"threshold {ident}", source=plugin.name, ds=ds, cf=cf, type=kind, value=value,
        repetitions=repetitions, start=start, end=end, actions=actions, rearm=rearm, enabled=enabled,
        fields=own, tuning=tuning, location=Location(path, locate("id")), tree=tree,
    )


def _source_keys(installed: Mapping[str, Any]) -> dict[str, str]:
    """Every key a source owns (its fields and its name for `ds`) -> that source's name."""
    out: dict[str, str] = {}
    for name in sorted(installed):
        plugin = installed[name]
        for key in [*plugin.fields, plugin.series_key]:
            if key != "ds":
                out.setdefault(key, name)
    return out


def _known_keys(raw: Mapping[str, Any], fail: Fail, known: Set[str]) -> None:
    for key in raw:
        if key not in known:
            raise fail(key, f"unknown field (known: {', '.join(sorted(known))})")


def _ident(raw: Mapping[str, Any], path: str, locate: Locate, fail: Fail) -> int:
    """The threshold's id."""
    if "id" not in raw:
        raise ConfigError(path, "threshold without an 'id'", locate("id"), "id")
    ident = _int(raw["id"], "id", fail)
    if ident > MAX_ID:
        raise fail("id", f"must be at most {MAX_ID} (the largest id every supported database stores), not {ident}")
    return ident


def _source(raw: Mapping[str, Any], sources: Sequence[str], installed: Mapping[str, type[Source]],
            fail: Fail) -> type[Source]:
    """The plugin of the threshold's source, which reads its own fields."""
    source = raw.get("source", DEFAULT_SOURCE)
    if source not in sources or source not in installed:
        raise fail("source", f"unknown source {source!r} (available: {', '.join(sources)})")
    return installed[source]


def _series_names(raw: Mapping[str, Any], source: str, key: str, rule: str, fail: Fail) -> tuple[str, ...]:
    """The data sources (`ds`, or the source's own `key` for them) it evaluates; empty: all of them."""
    if key != "ds" and key in raw:
        if "ds" in raw:
            raise fail(key, f"give '{key}' ({source}) or 'ds' (RRD), not both")
        names = raw[key]
    else:
        names = raw.get("ds", [])
    if isinstance(names, str):
        names = [names]
    if not isinstance(names, list) or not all(isinstance(d, str) and d for d in names):
        raise fail(key, rule)
    twice = next((d for i, d in enumerate(names) if d in names[:i]), None)
    if twice is not None:
        # Both would be the same series, recorded twice in one check.
        raise fail(key if key in raw else "ds", f"{twice!r} is listed twice")
    return tuple(names)


def _cf(raw: Mapping[str, Any], fail: Fail) -> str:
    cf = raw.get("cf", "AVERAGE")
    if not isinstance(cf, str) or cf.upper() not in CONSOLIDATION_FUNCTIONS:
        raise fail("cf", f"must be one of {', '.join(CONSOLIDATION_FUNCTIONS)}, not {cf!r}")
    return cf.upper()


def _direction(raw: Mapping[str, Any], fail: Fail) -> Direction:
    kind = raw.get("type")
    if not isinstance(kind, str) or kind.lower() not in ("above", "below"):
        raise fail("type", f"must be 'above' or 'below', not {kind!r}")
    return Direction(kind.lower())


def _limit(raw: Mapping[str, Any], fail: Fail) -> float:
    try:
        return parse_quantity(raw.get("value"))  # a number, or text with an SI suffix ("80M")
    except ValueError as exc:
        raise fail("value", str(exc)) from None


def _window(raw: Mapping[str, Any], fail: Fail, p: Problems) -> tuple[str, str]:
    """(start, end) as AT-style times that resolve, start before end."""
    start = p.step("now-1h", lambda: _time(raw, "start", "now-1h", fail))
    end = p.step("now", lambda: _time(raw, "end", "now", fail))
    if p.ok("start", "end"):
        p.step(None, lambda: _ordered(start, end, fail))
    return start, end


def _time(raw: Mapping[str, Any], name: str, default: str, fail: Fail) -> str:
    spec = raw.get(name, default)
    if isinstance(spec, int) and not isinstance(spec, bool):
        spec = str(spec)
    if not isinstance(spec, str):
        raise fail(name, f"must be an AT-style time such as 'now-1h', not {spec!r}")
    try:
        timespec.validate(spec)
    except timespec.TimeSpecError as exc:
        raise fail(name, str(exc)) from None
    return spec


def _ordered(start: str, end: str, fail: Fail) -> None:
    try:
        timespec.resolve_window(start, end, _PROBE_NOW)
    except timespec.TimeSpecError as exc:
        raise fail("start", str(exc)) from None


def _name(raw: Mapping[str, Any], fail: Fail) -> str:
    name = raw.get("name", "")
    if not isinstance(name, str):
        raise fail("name", f"must be text, not {name!r}")
    if "\x00" in name:
        raise fail("name", "contains a NUL character (databases such as PostgreSQL cannot store it)")
    return name.strip()


def tree_problem(tree: object) -> str | None:
    """Why `tree` is not a tree's name, or None."""
    if isinstance(tree, str) and _TREE_RE.fullmatch(tree):
        return None
    shown = tree if isinstance(tree, str) and len(tree) <= 80 else type(tree).__name__
    return f"must be a tree name of letters, digits, '-', '_' and '.' (at most 64), such as \"collector-a\", " \
           f"not {shown!r}"


def _tree(raw: Mapping[str, Any], fail: Fail) -> str:
    """The tree whose workers read its data ("local": this machine)."""
    tree = raw.get("tree", LOCAL_TREE)
    problem = tree_problem(tree)
    if problem:
        raise fail("tree", problem)
    assert isinstance(tree, str)
    return tree


def check_trees(thresholds: Iterable[Threshold], settings: Settings) -> None:
    """A threshold read on another tree needs the broker that reaches that tree's workers, and a place
    for their answers."""
    remote = [t for t in thresholds if t.tree != LOCAL_TREE]
    if not remote:
        return
    if settings.cluster.broker is not None:
        broker_urls(settings)
        return
    t = remote[0]
    where = t.location
    raise ConfigError(where.path if where else None,
                      f"threshold {t.id}: tree {t.tree!r} needs [cluster] broker in the settings "
                      f"({settings.path or 'no settings file'})", where.line if where else None, "tree")


def _enabled(raw: Mapping[str, Any], fail: Fail) -> bool:
    enabled = raw.get("enabled", True)
    if not isinstance(enabled, bool):
        raise fail("enabled", f"must be true or false, not {enabled!r}")
    return enabled


def _actions(raw: Mapping[str, Any], path: str, ident: int, locate_action: Callable[[int, str], int | None],
             fail: Fail) -> tuple[ActionSpec, ...]:
    """Its [[threshold.action]] tables; their parameters are the plugins' to validate (dispatch)."""
    actions_raw = raw.get("action", [])
    if isinstance(actions_raw, Mapping):
        actions_raw = [actions_raw]
    if not isinstance(actions_raw, list):
        raise fail("action", "must be a list of [[threshold.action]] tables")
    actions = []
    for i, spec in enumerate(actions_raw):
        if not isinstance(spec, Mapping) or not isinstance(spec.get("type"), str) or not spec["type"]:
            raise ConfigError(
                path, f"threshold {ident}: action {i + 1} needs a 'type' naming the action",
                locate_action(i, "type"), "action.type",
            )
        actions.append(ActionSpec(type=spec["type"], params={k: v for k, v in spec.items() if k != "type"}))
    return tuple(actions)


def check_unique_ids(thresholds: Iterable[Threshold], path: str) -> None:
    seen: dict[int, Threshold] = {}
    for t in thresholds:
        if t.id in seen:
            first = seen[t.id].location
            line = t.location.line if t.location else None
            raise ConfigError(path, f"duplicate threshold id {t.id} (first defined at {first})", line, "id")
        seen[t.id] = t


def parse_thresholds_toml(text: str, path: str, sources: Sequence[str] = (DEFAULT_SOURCE,)) -> list[Threshold]:
    """Parse the TOML thresholds file: its thresholds (its windows are validated too)."""
    return parse_thresholds_file(text, path, sources).thresholds


def parse_thresholds_file(text: str, path: str, sources: Sequence[str] = (DEFAULT_SOURCE,)) -> ThresholdsFile:
    """Parse the TOML thresholds file: [[threshold]] and [[maintenance]] tables."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        line = _toml_error_line(str(exc))
        raise ConfigError(path, f"not valid TOML: {exc}", line) from None
    extra = [k for k in data if k not in ("threshold", "maintenance")]
    if extra:
        raise ConfigError(path, f"unknown top-level key {extra[0]!r} (the file holds [[threshold]] and "
                          "[[maintenance]] tables)", top_level_line(text, extra[0]), extra[0])
    tables = data.get("threshold", [])
    if not isinstance(tables, list):
        raise ConfigError(path, "'threshold' must be an array of tables: write [[threshold]]", None, "threshold")
    lines = _Lines(text)
    out = []
    for index, table in enumerate(tables):
        out.append(
            threshold_from_dict(
                table,
                path,
                locate=lambda key, i=index: lines.key(i, key),  # type: ignore[misc]
                locate_action=lambda sub, key, i=index: lines.action(i, sub, key),  # type: ignore[misc]
                sources=sources,
            )
        )
    check_unique_ids(out, path)
    windows: tuple[MaintenanceWindow, ...] = ()
    if "maintenance" in data:
        from rrdalarm.config.maintenance import windows_from_tables

        windows = windows_from_tables(data["maintenance"], path, lines.window_key, {t.id for t in out},
                                      top_level_line(text, "maintenance"))
    return ThresholdsFile(out, windows)


def is_legacy_text(text: str) -> bool:
    """A legacy rrdAlarmConfig.txt has rows of ten tab (or space) separated fields, not TOML."""
    from rrdalarm.config.legacy import FIELDS, split_fields

    for line in split_lines(text):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if len(split_fields(line)) == len(FIELDS) and not stripped.startswith("["):
            return True
        if stripped.startswith("[") or "=" in stripped.split("#", 1)[0]:
            return False
        return len(stripped.split("\t")) >= 2 or len(stripped.split()) >= 8
    return False


def load_thresholds(path: Path, sources: Sequence[str] | None = None) -> list[Threshold]:
    """Load a thresholds file, TOML or legacy (detected by content); `sources` default: the installed ones."""
    return load_thresholds_file(path, sources).thresholds


def load_thresholds_file(path: Path, sources: Sequence[str] | None = None) -> ThresholdsFile:
    """Load a thresholds file with its maintenance windows (a legacy rrdAlarmConfig.txt has none)."""
    from rrdalarm.config.legacy import parse_legacy

    if sources is None:
        from rrdalarm.plugins import source_plugins

        sources = sorted(source_plugins())
    text = read_config_text(path)
    if is_legacy_text(text):
        return ThresholdsFile(parse_legacy(text, str(path), sources=sources))
    return parse_thresholds_file(text, str(path), sources=sources)


