"""What is wrong now: the series that are not OK, grouped by threshold, the most severe first.

Pure: the stored states, and the rows of the newest check when the caller has them, in; the
"Alarms now" page's groups and counts out. The newest check's rows say how each series stands
(ERROR and NO DATA included); without them (checks from cron) the stored states do.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

from rrdalarm.model.control import Acknowledgement
from rrdalarm.model.definitions import Threshold
from rrdalarm.model.records import StateView
from rrdalarm.model.records import StoredState as Stored
from rrdalarm.model.results import Row
from rrdalarm.model.states import Severity, State, Status, severity_rank
from rrdalarm.rules.quieting import Quieting

SeriesKey = tuple[int, str, str]

# The order of statuses within a threshold: what needs people first.
STATUS_ORDER = ("FIRING", "NO DATA", "FLAPPING", "STALE", "ERROR")


@dataclass(frozen=True)
class Item:
    """One series that is not OK."""

    series: str
    ds: str
    status: str
    since: int | None
    value: float | None
    time: int | None
    message: str
    silenced: tuple[str, ...] = ()
    ack: Acknowledgement | None = None


@dataclass
class Group:
    """The troubled series of one threshold."""

    threshold: int
    name: str
    severity: str
    type: str
    limit: float
    unit: str
    items: list[Item] = field(default_factory=list)
    more: int = 0  # series of the group left out of `items` by `shown` (the counts include them)


@dataclass(frozen=True)
class Counts:
    """The count bar: series not silenced, per severity; then the silenced ones, and the acknowledged ones."""

    critical: int = 0
    warning: int = 0
    info: int = 0
    silenced: int = 0
    acknowledged: int = 0


@dataclass(frozen=True)
class AlarmsNow:
    groups: list[Group]
    counts: Counts


def status_of_row(row: Row) -> str:
    """ALARM FIRED and FIRING are both a firing series."""
    return "FIRING" if row.status in (Status.ALARM_FIRED, Status.FIRING) else row.status.value


def status_of_state(view: StateView) -> str:
    if view.flapping_since is not None:
        return "FLAPPING"
    if view.stale_since is not None:
        return "STALE"
    return "NO DATA" if view.reason == "no_data" else "FIRING"


def since_of(status: str, view: StateView | None) -> int | None:
    """Since when the series has stood as it does, as far as the stored state knows."""
    if view is None:
        return None
    if status == "FLAPPING":
        return view.flapping_since
    if status == "STALE":
        return view.stale_since
    return view.active_at or view.fired_at if view.state is State.FIRING else None


def _from_row(row: Row, view: StateView | None) -> Item:
    status = status_of_row(row)
    return Item(row.file, row.ds, status, since_of(status, view), row.value, row.time, row.message, row.silenced,
                row.acknowledged)


def _from_state(s: Stored) -> Item:
    status = status_of_state(s.view)
    silenced = ("silenced",) if s.view.silenced_since is not None else ()
    return Item(s.key[1], s.key[2], status, since_of(status, s.view), s.value, s.time, "", silenced, s.view.ack)


def troubled(stored: Sequence[Stored], rows: Sequence[Row] | None) -> dict[SeriesKey, Item]:
    """Every series that is not OK: by the newest check's rows when given, else by the stored states."""
    views = {s.key: s.view for s in stored}
    if rows is not None:
        return {(r.threshold, r.file, r.ds): _from_row(r, views.get((r.threshold, r.file, r.ds)))
                for r in rows if r.status is not Status.OK}
    return {s.key: _from_state(s) for s in stored
            if s.view.state is State.FIRING or s.view.stale_since is not None or s.view.flapping_since is not None}


def _group(tid: int, t: Threshold | None) -> Group:
    if t is None:  # gone from the file since: still shown, by its id
        return Group(tid, f"threshold {tid}", Severity.WARNING.value, "", 0.0, "")
    return Group(tid, t.name, t.tuning.severity.value, t.type.value, t.value, t.tuning.unit)


def _item_order(item: Item) -> tuple[int, str, str]:
    rank = STATUS_ORDER.index(item.status) if item.status in STATUS_ORDER else len(STATUS_ORDER)
    return (rank, item.series, item.ds)


@dataclass(frozen=True)
class Wanted:
    """What the page is narrowed to (its query string): text of the series, threshold, severity, status."""

    text: str | None = None
    threshold: int | None = None
    severity: str | None = None
    status: str | None = None

    def keeps(self, group: Group, item: Item) -> bool:
        return ((self.text is None or self.text.lower() in item.series.lower())
                and self.threshold in (None, group.threshold) and self.severity in (None, group.severity)
                and self.status in (None, item.status))


def _now_quieted(item: Item, key: SeriesKey, t: Threshold | None, view: StateView | None,
                 quieting: Quieting | None) -> Item:
    """The item as people have quieted it since the check: silences and windows in force now, the stored ack."""
    silenced = item.silenced
    if quieting is not None:
        labels, severity = (t.tuning.labels, t.tuning.severity.value) if t else ({}, "")
        quiet = quieting.of(key[0], key[1], key[2], labels, severity)
        silenced = quiet.refs if quiet else ()
    ack = view.ack if view is not None and view.state is State.FIRING else item.ack
    if silenced == item.silenced and ack == item.ack:
        return item  # most series: nothing to change, and a copy of each costs a page thousands of them
    return replace(item, silenced=silenced, ack=ack)


def alarms_now(stored: Sequence[Stored], rows: Sequence[Row] | None, thresholds: Mapping[int, Threshold],
               wanted: Wanted | None = None, quieting: Quieting | None = None) -> AlarmsNow:
    """Groups by threshold (critical first, then by id) of the series that are not OK, and the counts.

    `quieting` holds the silences and windows in force now: a silence made since the check shows at once.
    """
    views = {s.key: s.view for s in stored}
    groups: dict[int, Group] = {}
    for key, found in troubled(stored, rows).items():
        tid = key[0]
        item = _now_quieted(found, key, thresholds.get(tid), views.get(key), quieting)
        group = groups.setdefault(tid, _group(tid, thresholds.get(tid)))
        if wanted is None or wanted.keeps(group, item):
            group.items.append(item)
    ordered = sorted((g for g in groups.values() if g.items), key=lambda g: (severity_rank(g.severity), g.threshold))
    for g in ordered:
        g.items.sort(key=_item_order)
    return AlarmsNow(ordered, count(ordered))


def shown(view: AlarmsNow, per_group: int) -> AlarmsNow:
    """At most `per_group` series of each group, the most urgent first; the counts stay those of all.

    Thousands of firing series would make a page of megabytes that takes seconds to build on every
    refresh; the filters narrow the list to what someone reads.
    """
    groups = [replace(g, items=g.items[:per_group], more=max(0, len(g.items) - per_group)) for g in view.groups]
    return AlarmsNow(groups, view.counts)


def count(groups: Sequence[Group]) -> Counts:
    by: dict[str, int] = {s.value: 0 for s in Severity}
    silenced = acknowledged = 0
    for g in groups:
        for item in g.items:
            acknowledged += item.ack is not None
            if item.silenced:
                silenced += 1
            else:
                by[g.severity] = by.get(g.severity, 0) + 1
    return Counts(by["critical"], by["warning"], by["info"], silenced, acknowledged)
