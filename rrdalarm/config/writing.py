"""Writing thresholds back as TOML (tomlkit), atomically."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import tomlkit

from rrdalarm.common.fileutil import atomic_write_text
from rrdalarm.config.tuning import TUNING_FIELDS
from rrdalarm.model.control import MaintenanceWindow
from rrdalarm.model.definitions import DEFAULT_SOURCE, LOCAL_TREE, Threshold

# ---------------------------------------------------------------- writing TOML

def threshold_to_table(t: Threshold) -> tomlkit.items.Table:
    """A tomlkit table for one threshold, defaults left out to keep files short."""
    from rrdalarm.plugins import source_plugins

    table = tomlkit.table()
    table.add("id", t.id)
    table.add("name", t.name)
    if t.source != DEFAULT_SOURCE:
        table.add("source", t.source)
    if t.tree != LOCAL_TREE:
        table.add("tree", t.tree)
    plugin = source_plugins().get(t.source)
    # The source's own fields in its order (those of a source no longer installed as they are).
    for key in plugin.fields if plugin else t.fields:
        table.add(key, t.fields.get(key, plugin.fields[key].default if plugin else ""))
    if t.ds:
        table.add(plugin.series_key if plugin else "ds", list(t.ds))
    if t.cf != "AVERAGE":
        table.add("cf", t.cf)
    table.add("type", t.type.value)
    table.add("value", t.tuning.typed.get("value", t.value))  # as typed: "80M" stays "80M"
    table.add("repetitions", t.repetitions)
    table.add("start", t.start)
    table.add("end", t.end)
    table.add("rearm", t.rearm)
    if not t.enabled:
        table.add("enabled", False)
    for name in TUNING_FIELDS:
        if name in t.tuning.typed and name not in table:  # a source's own field of that name was written
            table.add(name, t.tuning.typed[name])
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


def window_to_table(w: MaintenanceWindow) -> tomlkit.items.Table:
    """A tomlkit table for one maintenance window; matchers left out match everything."""
    table = tomlkit.table()
    table.add("name", w.name)
    table.add("schedule", w.schedule)
    table.add("duration", w.duration)
    if w.comment:
        table.add("comment", w.comment)
    m = w.matchers
    for key, value in (("threshold", m.threshold), ("series", m.series), ("ds", m.ds), ("severity", m.severity)):
        if value is not None:
            table.add(key, value)
    if m.labels:
        labels = tomlkit.inline_table()
        labels.update(m.labels)
        table.add("labels", labels)
    return table


def thresholds_to_toml(thresholds: Sequence[Threshold], header: Sequence[str] = (),
                       windows: Sequence[MaintenanceWindow] = ()) -> str:
    doc = tomlkit.document()
    for line in header:
        doc.add(tomlkit.comment(line))
    if header:
        doc.add(tomlkit.nl())
    aot = tomlkit.aot()
    for t in thresholds:
        aot.append(threshold_to_table(t))
    doc.add("threshold", aot)
    if windows:
        doc.add("maintenance", tomlkit.aot())
        for w in windows:
            doc["maintenance"].append(window_to_table(w))
    return tomlkit.dumps(doc)


def save_thresholds(path: Path, thresholds: Sequence[Threshold], header: Sequence[str] = (),
                    windows: Sequence[MaintenanceWindow] = ()) -> None:
    """Write a whole thresholds file (the import commands): its thresholds, then its maintenance windows."""
    atomic_write_text(path, thresholds_to_toml(thresholds, header, windows))


# ---------------------------------------------------------------- settings
