"""Munin's own limits: the `warning` and `critical` levels of its master's datafile as thresholds.

The datafile (`/var/lib/munin/datafile`) has one `group;host:plugin.field.attribute value` line per
attribute (`group;host:plugin.graph_title value` for the graph's own), after a `version` line. Munin
keeps each field in `<group>/<host>-<plugin>-<field>-<type letter>.rrd` under its dbdir (a multigraph
plugin's dots become dashes, nested groups are folders) with one data source named "42".
A level is `max`, `min:max`, `:max` or `min:`: a value above max or below min is out of range.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from rrdalarm.common.fileutil import split_lines
from rrdalarm.config.import_limits import Imported, Rule, build_thresholds, glob_literal, labels, number
from rrdalarm.model.errors import ConfigError

MUNIN_DS = "42"
LEVELS = {"critical": "critical", "warning": "warning"}  # munin's attribute -> our severity


@dataclass
class _Field:
    """What the datafile says about one field of one plugin of one host."""

    attributes: dict[str, str] = field(default_factory=dict)
    lines: dict[str, int] = field(default_factory=dict)


@dataclass
class _Datafile:
    fields: dict[tuple[str, str, str, str], _Field] = field(default_factory=dict)
    graphs: dict[tuple[str, str, str], dict[str, str]] = field(default_factory=dict)


def parse_munin(text: str, path: str, start_id: int = 1, sources: Sequence[str] = ("rrd",)) -> Imported:
    """Every warning and critical level of the datafile `text`, as thresholds numbered from `start_id`."""
    data = _read(text, path)
    rules: list[Rule] = []
    # Munin writes the datafile in hash order: sorting keeps ids stable from one datafile to the next.
    for key in sorted(data.fields):
        item = data.fields[key]
        for attribute in ("critical", "warning"):
            if attribute in item.attributes:
                line = item.lines[attribute]
                graph = data.graphs.get(key[:3], {})
                rules += [(raw, {"": line}) for raw in _rules(key, item, graph, attribute, path)]
    return Imported(build_thresholds(rules, path, start_id, sources))


def _read(text: str, path: str) -> _Datafile:
    data = _Datafile()
    for number_, line in enumerate(split_lines(text), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#") or (number_ == 1 and stripped.startswith("version")):
            continue
        key, _, value = stripped.partition(" ")
        where, colon, rest = key.partition(":")
        group, semicolon, host = where.rpartition(";")
        if not colon or not semicolon or not group or not host:
            raise ConfigError(path, f"expected 'group;host:plugin.field.attribute value', not {stripped[:60]!r}",
                              number_)
        parts = rest.split(".")
        if len(parts) == 2:
            data.graphs.setdefault((group, host, parts[0]), {})[parts[1]] = value.strip()
        elif len(parts) > 2 and all(parts):
            item = data.fields.setdefault((group, host, ".".join(parts[:-2]), parts[-2]), _Field())
            item.attributes[parts[-1]] = value.strip()
            item.lines[parts[-1]] = number_
        # A host's own attributes (`group;host:address ...`) have no plugin: nothing to import.
    return data


def _rules(key: tuple[str, str, str, str], item: _Field, graph: dict[str, str], attribute: str,
           path: str) -> list[dict[str, Any]]:
    """One threshold table per end of the level's range (below min, above max)."""
    group, host, plugin, name = key
    line = item.lines[attribute]
    low, high = _range(item.attributes[attribute], path, line, attribute)
    kind = item.attributes.get("type", "")
    letter = glob_literal(kind[:1].lower()) if kind else "*"
    folder = "/".join(glob_literal(g) for g in group.split(";"))
    base = "-".join(glob_literal(p) for p in (host, plugin.replace(".", "-"), name))
    title = graph.get("graph_title") or plugin
    label = item.attributes.get("label") or name
    common: dict[str, Any] = {
        "glob": f"{folder}/{base}-{letter}.rrd",
        "ds": [MUNIN_DS],
        "severity": LEVELS[attribute],
        "labels": labels({"group": group, "host": host, "plugin": plugin, "field": name}),
    }
    if title != plugin or label != name:
        common["description"] = f"{title}: {label}"
    out = []
    for direction, limit in (("below", low), ("above", high)):
        if limit is not None:
            text = f"{host} {plugin}.{name} {attribute}: {direction} {limit}"
            out.append({"name": text, **common, "type": direction, "value": limit})
    return out


def _range(text: str, path: str, line: int, attribute: str) -> tuple[int | float | None, int | float | None]:
    """(min, max) of `max`, `min:max`, `:max` or `min:`; either may be None, not both."""
    if not text:
        raise ConfigError(path, "has no level (expected max, min:max, :max or min:)", line, attribute)
    if ":" not in text:
        return None, number(text, path, line, attribute)
    low_text, _, high_text = text.partition(":")
    if not low_text and not high_text:
        raise ConfigError(path, "':' without a min or a max (expected max, min:max, :max or min:)", line,
                          attribute)
    low = number(low_text, path, line, attribute) if low_text else None
    high = number(high_text, path, line, attribute) if high_text else None
    if low is not None and high is not None and low > high:
        raise ConfigError(path, f"min {low:g} is above max {high:g} in {text!r}", line, attribute)
    return low, high
