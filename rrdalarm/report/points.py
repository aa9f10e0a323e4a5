"""The points of one series for the series page's interactive chart, with what happened to it.

Beside the data flow, read only: the web app's /api/points answers `chart(...)` as JSON.
Points come from one rrdtool.fetch of the requested window with the threshold's
consolidation function, so rrdtool picks the archive as it does for any fetch; values
are multiplied by the threshold's `scale` as the check does before comparing. Firing
periods, events, silences and acknowledgements come from the store.

No Flask here: the core never imports the web app.
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import rrdtool
from sqlalchemy import select

from rrdalarm.model.control import Silence
from rrdalarm.model.definitions import Settings, Threshold
from rrdalarm.model.errors import ConfigError
from rrdalarm.model.states import EventKind
from rrdalarm.plugins import source_plugins
from rrdalarm.report.graphs import BadGraphRequest, GraphError, confined_file
from rrdalarm.rules.quieting import matches
from rrdalarm.sources import rrdcached
from rrdalarm.sources.rrd import _error_message
from rrdalarm.store.control import silences
from rrdalarm.store.database import AlarmEvent, Store

RANGES = {"1h": 3600, "6h": 6 * 3600, "1d": 86400, "7d": 7 * 86400, "30d": 30 * 86400}
MAX_SPAN = 400 * 86400
# An answer past this many points is refused rather than sent: a browser draws a few thousand.
MAX_POINTS = 100_000
MAX_EVENTS = 2000
CHARTS_RRD_ONLY = "charts exist for RRD files only"
_STARTS = (EventKind.FIRED.value, EventKind.NO_DATA.value)
_ENDS = (EventKind.RESOLVED.value,)
# librrd's connection to rrdcached is one per process; the web server reads from several threads.
_FETCH_LOCK = threading.Lock()


class PointsError(Exception):
    """A request that cannot be answered; str() is one line, `status` the HTTP status to answer with."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(" ".join(message.split()))
        self.status = status


@dataclass(frozen=True)
class SeriesPoints:
    """One data source over a window: point i is at `first + i * step` (the end of its interval)."""

    step: int
    start: int
    end: int
    points: list[tuple[int, float | None]]


def window(range_: str | None, start: int | None, end: int | None, now: int) -> tuple[int, int]:
    """The window asked for: a named range ending at `end` (default now), or start and end."""
    if range_:
        if range_ not in RANGES:
            raise PointsError(f"range must be one of {', '.join(RANGES)}, not {range_!r}")
        to = now if end is None else end
        return to - RANGES[range_], to
    if start is None:
        raise PointsError("give range (1h, 6h, 1d, 7d, 30d) or start and end (epoch seconds)")
    to = now if end is None else end
    if to <= start:
        raise PointsError("start must be before end")
    if to - start > MAX_SPAN:
        raise PointsError(f"the window is longer than {MAX_SPAN // 86400} days")
    return start, to


def chartable(threshold: Threshold) -> None:
    """Raise PointsError (404) unless the threshold's series are RRD files (the only ones drawn)."""
    plugin = source_plugins().get(threshold.source)
    if plugin is None or not plugin.rrd_files:
        raise PointsError(CHARTS_RRD_ONLY, 404)


def _fetch(settings: Settings, rel: str, cf: str, start: int, end: int) -> Any:
    """rrdtool.fetch of the file, through rrdcached when one is configured (as the check reads)."""
    try:
        path = confined_file(settings, rel)
    except BadGraphRequest as exc:
        raise PointsError(str(exc)) from None
    except GraphError as exc:
        raise PointsError(str(exc), 404) from None
    except ConfigError as exc:
        raise PointsError(str(exc).splitlines()[0], 503) from None
    args = (cf, "-s", str(start), "-e", str(end))
    root = os.path.realpath(str(settings.rrd_root))
    try:
        with _FETCH_LOCK:
            address = settings.rrdcached_address
            if address:
                daemon = rrdcached.Daemon(address, rrdcached.probe(address))
                return rrdcached.fetch(daemon, root, os.path.relpath(path, root), args)
            return rrdtool.fetch("--daemon", "", str(path), *args)
    except rrdcached.Unreachable as exc:
        raise PointsError(str(exc), 502) from None
    except rrdtool.OperationalError as exc:
        raise PointsError(f"{rel}: {_error_message(exc, str(path))}", 404) from None


def read_points(settings: Settings, threshold: Threshold, rel: str, ds: str, start: int, end: int) -> SeriesPoints:
    """The points of data source `ds` of file `rel` over (start, end], scaled as the check scales them."""
    (first, last, step), names, rows = _fetch(settings, rel, threshold.cf, start, end)
    if ds not in names:
        raise PointsError(f"{rel} has no data source {ds!r} (it has: {', '.join(names)})", 404)
    if len(rows) > MAX_POINTS:
        raise PointsError(f"the window holds {len(rows)} points at {step} s; choose a shorter one")
    col, scale = names.index(ds), threshold.tuning.scale
    points = [(first + (i + 1) * step, _scaled(row[col], scale)) for i, row in enumerate(rows)]
    return SeriesPoints(step, first, last, points)


def _scaled(value: float | None, scale: float) -> float | None:
    return None if value is None or math.isnan(value) else value * scale


# ---------------------------------------------------------------- what happened


def _edge(store: Store, key: tuple[int, str, str], kinds: Sequence[str], *, before: int | None = None,
          after: int | None = None) -> AlarmEvent | None:
    """The newest event of `kinds` before `before`, or the oldest after `after`."""
    q = select(AlarmEvent).where(AlarmEvent.threshold_id == key[0], AlarmEvent.series == key[1],
                                 AlarmEvent.ds == key[2], AlarmEvent.kind.in_(list(kinds)))
    if before is not None:
        q = q.where(AlarmEvent.at < before).order_by(AlarmEvent.at.desc(), AlarmEvent.id.desc())
    else:
        q = q.where(AlarmEvent.at > (after or 0)).order_by(AlarmEvent.at, AlarmEvent.id)
    with store.session() as s:
        return s.scalars(q.limit(1)).first()


def firing_periods(events: Iterable[AlarmEvent], open_since: int | None) -> list[tuple[int, int | None]]:
    """(from, to) of each firing in `events` (oldest first); to is None while it still fires.

    A firing starts with a FIRED or NO DATA (alarm) event and ends with RESOLVED; `open_since`
    is when a firing that started before these events began.
    """
    out: list[tuple[int, int | None]] = []
    since = open_since
    for e in events:
        if e.kind in _STARTS and since is None:
            since = e.at
        elif e.kind in _ENDS and since is not None:
            out.append((since, e.at))
            since = None
    if since is not None:
        out.append((since, None))
    return out


def _periods(store: Store, key: tuple[int, str, str], events: Sequence[AlarmEvent],
             start: int, end: int) -> list[list[int | None]]:
    # When the window held more than MAX_EVENTS events, only the newest came: start from the oldest of them.
    first = events[0].at if len(events) >= MAX_EVENTS else start
    before = _edge(store, key, _STARTS + _ENDS, before=first)
    open_since = before.at if before is not None and before.kind in _STARTS else None
    periods = firing_periods(events, open_since)
    if periods and periods[-1][1] is None:
        # Still firing at the window's end: the resolution after it, if any, closes the shading.
        after = _edge(store, key, _ENDS, after=end)
        if after is not None:
            periods[-1] = (periods[-1][0], after.at)
    return [[a, b] for a, b in periods]


def _silences(store: Store, threshold: Threshold, series: str, ds: str, start: int,
              end: int) -> list[dict[str, Any]]:
    tu = threshold.tuning
    return [
        {"id": s.id, "start": s.starts_at, "end": s.ends_at, "comment": s.comment, "author": s.author}
        for s in sorted(silences(store, start, include_ended=True), key=_silence_order)
        if s.starts_at < end and s.ends_at > start
        and matches(s.matchers, threshold.id, series, ds, tu.labels, tu.severity.value)
    ]


def _silence_order(s: Silence) -> tuple[int, int]:
    return s.starts_at, s.id


def chart(settings: Settings, store: Store, threshold: Threshold, series: str, ds: str, start: int,
          end: int) -> dict[str, Any]:
    """The /api/points answer: the series' points over (start, end] and what happened to it then."""
    chartable(threshold)
    got = read_points(settings, threshold, series, ds, start, end)
    key = (threshold.id, series, ds)
    events = list(reversed(store.find_events(threshold=key[0], series=series, ds=ds, since=start, until=end,
                                             limit=MAX_EVENTS)))
    return {
        "step": got.step, "start": got.start, "end": got.end, "window": [start, end], "cf": threshold.cf,
        "points": [[t, v] for t, v in got.points],
        "limit": threshold.value, "clear": threshold.tuning.clear_value, "type": threshold.type.value,
        "unit": threshold.tuning.unit,
        "firing": _periods(store, key, events, start, end),
        "events": [{"at": e.at, "kind": e.kind, "status": e.status, "message": e.message} for e in events],
        "silences": _silences(store, threshold, series, ds, start, end),
        "acks": [{"at": e.at, "message": e.message} for e in events if e.kind == EventKind.ACK.value],
    }
