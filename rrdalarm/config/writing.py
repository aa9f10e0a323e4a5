"""Writing thresholds back as TOML (tomlkit), atomically."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import tomlkit

from rrdalarm.common.fileutil import atomic_write_text
from rrdalarm.model.definitions import Threshold

# ---------------------------------------------------------------- writing TOML

def threshold_to_table(t: Threshold) -> tomlkit.items.Table:
    """A tomlkit table for one threshold, defaults left out to keep files short."""
    table = tomlkit.table()
    table.add("id", t.id)
    table.add("name", t.name)
    if t.source != "rrd":
        table.add("source", t.source)
    if t.source == "ntopng":
        table.add("schema", t.schema)
        table.add("query", t.query)
        if t.ds:
            table.add("label", list(t.ds))
    else:
        table.add("glob", t.glob)
        if t.ds:
            table.add("ds", list(t.ds))
    if t.cf != "AVERAGE":
        table.add("cf", t.cf)
    table.add("type", t.type.value)
    table.add("value", t.value)
    table.add("repetitions", t.repetitions)
    table.add("start", t.start)
    table.add("end", t.end)
    table.add("rearm", t.rearm)
    if not t.enabled:
        table.add("enabled", False)
    if t.actions:
        actions = tomlkit.aot()
        for a in t.actions:
            at = tomlkit.table()
            at.add("type", a.type)
            for k, v in a.params.items():
                at.add(k, v)
            actions.append(at)
        table.add("action", actions)
    return table


def thresholds_to_toml(thresholds: Sequence[Threshold], header: Sequence[str] = ()) -> str:
    doc = tomlkit.document()
    for line in header:
        doc.add(tomlkit.comment(line))
    if header:
        doc.add(tomlkit.nl())
    aot = tomlkit.aot()
    for t in thresholds:
        aot.append(threshold_to_table(t))
    doc.add("threshold", aot)
    return tomlkit.dumps(doc)


def save_thresholds(path: Path, thresholds: Sequence[Threshold], header: Sequence[str] = ()) -> None:
    atomic_write_text(path, thresholds_to_toml(thresholds, header))


# ---------------------------------------------------------------- settings
