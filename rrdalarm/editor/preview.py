"""Preview and backtest of one threshold, saved or not, for the web configurator's "preview before saving".

`preview` asks the threshold's own source plugin for one check as of `now`,
so every rule (globs, windows, breach, errors) is the engine's; nothing is
stored and no action runs. `backtest` reads each matched RRD file once and
replays the check over the past `period` with `rrdalarm.editor.backtest`, as if the
scheduler had checked every `interval` seconds. Neither raises for data it
cannot read: those become error rows. ConfigError (no RRD root, no ntopng
address) propagates.
"""

from __future__ import annotations

import math
import os
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import rrdtool

from rrdalarm.editor.backtest import Check, evaluation_times, replay, resolve_checks, tally
from rrdalarm.model.definitions import Settings, Threshold
from rrdalarm.model.errors import ConfigError
from rrdalarm.plugins import source_plugins
from rrdalarm.report import messages
from rrdalarm.report.render import fmt_time
from rrdalarm.rules import timespec
from rrdalarm.rules.evaluate import Value
from rrdalarm.sources.base import Outcome, OutcomeKind, Source
from rrdalarm.sources.ntopng import NtopngSource
from rrdalarm.sources.rrd import UNDECODABLE, RRDSource, _error_message, archives

__all__ = [
    "BACKTEST_UNSUPPORTED",
    "MAX_EVALUATIONS",
    "BacktestError",
    "BacktestReport",
    "Preview",
    "PreviewRow",
    "PreviewStatus",
    "SeriesBacktest",
    "backtest",
    "preview",
]

# A day of checks every minute; a longer period widens the interval instead.
MAX_EVALUATIONS = 1440
BACKTEST_UNSUPPORTED = NtopngSource.backtest_unsupported() or ""
ESCAPES_ROOT = "symlink leads outside the RRD root; skipped"


class PreviewStatus(StrEnum):
    """What one series would show if the threshold were checked now."""

    WOULD_FIRE = "would fire"
    OK = "ok"
    ERROR = "error"
    NO_DATA = "no data"
    STALE = "stale"


_STATUS = {
    OutcomeKind.BREACH: PreviewStatus.WOULD_FIRE,
    OutcomeKind.OK: PreviewStatus.OK,
    OutcomeKind.ERROR: PreviewStatus.ERROR,
    OutcomeKind.NO_DATA: PreviewStatus.NO_DATA,
    OutcomeKind.STALE: PreviewStatus.STALE,
}
# The rows worth seeing first when the list is cut at `limit`.
_ORDER = {PreviewStatus.WOULD_FIRE: 0, PreviewStatus.ERROR: 1, PreviewStatus.NO_DATA: 2, PreviewStatus.STALE: 3,
          PreviewStatus.OK: 4}


@dataclass(frozen=True)
class PreviewRow:
    """One series: a file relative to the RRD root (or an ntopng series name, as in the engine's rows) and a DS."""

    file: str
    ds: str
    status: PreviewStatus
    value: float | None
    time: int | None
    message: str


@dataclass(frozen=True)
class Preview:
    """What the threshold would do now; counts cover every series, `rows` at most `limit` of them.

    Rows come would-fire first, then errors, no data and ok, each by file
    and data source. `start`/`end` are the window resolved at `now` (None when
    it cannot be resolved, which is then the only row).
    """

    matched: int
    rows: tuple[PreviewRow, ...]
    would_fire: int
    errors: int
    no_data: int
    truncated: bool
    start: int | None
    end: int | None


def _row(o: Outcome, t: Threshold) -> PreviewRow:
    status = _STATUS[o.kind]
    message = o.message
    if status is PreviewStatus.WOULD_FIRE and o.value is not None:
        message = messages.crossing(o.value, t.type.value, t.value, t.tuning.unit)  # as the check will word it
        message += f"; {o.message}" if o.message else ""
    elif status is PreviewStatus.STALE:
        message = f"{o.message} {fmt_time(o.time)}" if o.time is not None else "never updated"
    return PreviewRow(o.series, o.ds, status, o.value, o.time, message)


def _matched(plugin: type[Source], t: Threshold, outcomes: Sequence[Outcome], files_checked: int) -> int:
    if plugin.rrd_files:
        return files_checked  # each matched file is fetched exactly once
    # Rows about the whole query (nothing listed, a server unreachable) carry its wildcard name.
    return len({o.series for o in outcomes if "*" not in o.series})


def _plugin(settings: Settings, t: Threshold) -> type[Source]:
    plugin = source_plugins().get(t.source)
    if plugin is None:
        raise ConfigError(settings.path, f"unknown source {t.source!r}", field="source")
    return plugin


def preview(settings: Settings, threshold: Threshold, now: int, *, limit: int = 200) -> Preview:
    """One check of `threshold` as of `now`, through its source plugin; changes nothing, runs no action.

    Evaluated even when the threshold is disabled.
    """
    t = threshold
    plugin = _plugin(settings, t)
    try:
        start, end = timespec.resolve_window(t.start, t.end, now)
    except timespec.TimeSpecError as exc:
        row = PreviewRow(plugin.describe(t), "", PreviewStatus.ERROR, None, None, str(exc))
        return Preview(0, (row,), 0, 1, 0, False, None, None)
    report = plugin(settings).check([t], now, firing=frozenset(), want_ok=True)
    rows = sorted((_row(o, t) for o in report.outcomes), key=lambda r: (_ORDER[r.status], r.file, r.ds))
    counts = Counter(r.status for r in rows)
    return Preview(
        matched=_matched(plugin, t, report.outcomes, report.files_checked),
        rows=tuple(rows[: max(0, limit)]),
        would_fire=counts[PreviewStatus.WOULD_FIRE],
        errors=counts[PreviewStatus.ERROR],
        no_data=counts[PreviewStatus.NO_DATA],
        truncated=len(rows) > limit,
        start=start,
        end=end,
    )


# ---------------------------------------------------------------- backtest


@dataclass(frozen=True)
class SeriesBacktest:
    """One (file, data source) replayed: its events over the period and the resolution it was read at."""

    file: str
    ds: str
    fires: int
    repeats: int
    resolves: int
    first_fire: int | None
    last_fire: int | None
    firing_at_end: bool
    no_data: int
    step: int


@dataclass(frozen=True)
class BacktestError:
    """A file (or the glob itself) that could not be replayed, with a one-line reason."""

    file: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}: {self.message}"


@dataclass(frozen=True)
class BacktestReport:
    """The threshold replayed over `period` seconds ending at `now`, one check every `interval` seconds.

    `series` are sorted by fires, most first. `files_examined` is at most
    `max_files` of the `files_matched`; `truncated` says some were left out.
    `unsupported`, when set, says why nothing was replayed.
    """

    period: int
    interval: int
    evaluations: int
    series: tuple[SeriesBacktest, ...] = ()
    total_fires: int = 0
    files_matched: int = 0
    files_examined: int = 0
    truncated: bool = False
    errors: tuple[BacktestError, ...] = ()
    unsupported: str = ""


def _interval(settings: Settings, period: int, interval: int | None) -> int:
    """The check interval to replay: the scheduler's unless given, widened to at most MAX_EVALUATIONS checks."""
    if period <= 0:
        raise ValueError(f"period must be positive, not {period}")
    if interval is not None and interval <= 0:
        raise ValueError(f"interval must be positive, not {interval}")
    base = interval if interval is not None else math.ceil(settings.service.check_interval)
    return max(1, base, -(-period // MAX_EVALUATIONS))


def _archive(info: Mapping[str, Any], cf: str, window: int) -> tuple[int, int] | None:
    """(resolution, oldest covered time) of the archive a check of a `window`-second window reads.

    rrdtool.fetch picks the finest archive of the CF that reaches back over the
    whole window. A check in the past read the same archive (its window had the
    same length), so the backtest reads it too, for as far back as it goes;
    fetching the whole period at once would let rrdtool fall back to a coarser
    archive that reaches further.
    """
    last = int(info["last_update"])
    held = archives(info, cf)
    if not held:
        return None
    full = [a for a in held if a[0] * a[1] >= window]
    res, rows = min(full) if full else max(held, key=lambda a: (a[0] * a[1], -a[0]))
    return res, last - last % res - rows * res


@dataclass(frozen=True)
class _Points:
    """One fetch: column i holds data source names[i], its point j at first + j*step."""

    first: int
    step: int
    names: list[str]
    columns: list[Sequence[Value]]


def _fetch(path: str, cf: str, start: int, end: int, window: int) -> _Points:
    """The points of `path` over (start, end] at the resolution checks read; raises rrdtool.OperationalError."""
    info = rrdtool.info(path)
    archive = _archive(info, cf, window)
    if archive is None:
        args = ["-s", str(start), "-e", str(end)]  # no archive of this CF: let rrdtool say so
    else:
        res, covered = archive
        # Nothing after the last update is known: a file left years ago is not read up to now row by row.
        last, lo = int(info["last_update"]), max(start, covered)
        if end > last + res:
            end = max(lo + res, last - last % res + res)
        args = ["-r", str(res), "-s", str(min(lo, end - 1)), "-e", str(end)]
    (first, _end, step), names, rows = rrdtool.fetch(path, cf, *args)
    columns: list[Sequence[Value]] = list(zip(*rows, strict=True)) if rows else [() for _ in names]
    return _Points(first + step, step, list(names), columns)


def _confined(root: Path, rel: str) -> str | None:
    """The real path of `rel` under `root`, or None when it resolves outside (checked again at read time)."""
    path = os.path.realpath(root / rel)
    return path if path.startswith(str(root) + os.sep) else None


def _replay_file(t: Threshold, rel: str, points: _Points, checks: Sequence[Check],
                 errors: list[BacktestError]) -> list[SeriesBacktest]:
    out = []
    for ds in t.ds or points.names:
        if ds not in points.names:
            errors.append(BacktestError(rel, f"no data source '{ds}' (file has: {', '.join(points.names)})"))
            continue
        column = points.columns[points.names.index(ds)]
        r = tally(replay(column, points.first, points.step, checks, t.type, t.value, t.repetitions, t.rearm,
                         t.tuning))
        out.append(SeriesBacktest(
            file=rel, ds=ds, fires=len(r.fires), repeats=r.repeats, resolves=r.resolves,
            first_fire=r.fires[0] if r.fires else None, last_fire=r.fires[-1] if r.fires else None,
            firing_at_end=r.firing_at_end, no_data=r.no_data, step=points.step,
        ))
    return out


def backtest(
    settings: Settings,
    threshold: Threshold,
    now: int,
    *,
    period: int = 86400,
    interval: int | None = None,
    max_files: int = 20,
) -> BacktestReport:
    """How often `threshold` would have fired over the `period` seconds before `now` (RRD thresholds only).

    The replay starts OK and ignores the threshold's stored state. `interval`
    defaults to the scheduler's check interval.
    """
    t = threshold
    step = _interval(settings, period, interval)
    times = evaluation_times(now, period, step)
    unsupported = _plugin(settings, t).backtest_unsupported()
    if unsupported is not None:
        return BacktestReport(period, step, len(times), unsupported=unsupported)
    try:
        checks = resolve_checks(t.start, t.end, times)
    except timespec.TimeSpecError as exc:
        return BacktestReport(period, step, len(times), errors=(BacktestError(t.glob, str(exc)),))
    index = RRDSource(settings).index()
    matches = index.match(t.glob)
    errors = [BacktestError(rel, ESCAPES_ROOT) for rel in matches.escapes]
    errors.extend(BacktestError(rel, UNDECODABLE) for rel in matches.undecodable)
    if not matches.files and not matches.escapes and not matches.undecodable:
        errors.append(BacktestError(t.glob, "glob matches no file under the RRD root"))
    files = matches.files[: max(0, max_files)]
    span = (min(c.start for c in checks), max(c.end for c in checks))
    window = checks[-1].end - checks[-1].start
    series: list[SeriesBacktest] = []
    for rel in files:
        path = _confined(index.root, rel)
        if path is None:
            errors.append(BacktestError(rel, ESCAPES_ROOT))
            continue
        try:
            points = _fetch(path, t.cf, *span, window)
        except rrdtool.OperationalError as exc:
            errors.append(BacktestError(rel, _error_message(exc, path)))
            continue
        series.extend(_replay_file(t, rel, points, checks, errors))
    series.sort(key=lambda s: (-s.fires, -s.repeats, s.file, s.ds))
    return BacktestReport(
        period=period, interval=step, evaluations=len(times), series=tuple(series),
        total_fires=sum(s.fires for s in series),
        files_matched=len(matches.files), files_examined=len(files), truncated=len(matches.files) > len(files),
        errors=tuple(errors),
    )
