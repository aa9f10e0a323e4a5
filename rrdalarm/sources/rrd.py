"""RRD files under a root: glob expansion through the index, one fetch per file and window.

Files are fetched in worker processes (one per core by default, see rrd_pool),
never in the check's own process: both cores work, and a worker killed by what
librrd does with a bad or truncated file takes only that file with it (an ERROR
row), not the check. Each worker runs the breach rule next to the data and sends
back only compact outcomes. Files matched by several thresholds are fetched
once per distinct (consolidation function, window).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import rrdtool

from rrdalarm.common.rrdtime import last_update
from rrdalarm.model.definitions import Threshold
from rrdalarm.model.errors import ConfigError
from rrdalarm.rules import timespec
from rrdalarm.rules.evaluate import Criterion, Summary, summarize, window_slice
from rrdalarm.sources import rrdcached
from rrdalarm.sources.base import (
    Fail,
    Field,
    Outcome,
    OutcomeKind,
    ProgressCallback,
    SeriesKey,
    Shard,
    Source,
    SourceReport,
    criterion_of,
    outcome_of,
)
from rrdalarm.sources.rrd_index import FileIndex, Matches, cache_path_for, gc_paused, glob_problem
from rrdalarm.sources.rrd_pool import Lost, WorkerPool
from rrdalarm.sources.rrdcached import Daemon, Unreachable

UNDECODABLE = "file name is not UTF-8; skipped (rename it to check it)"

# Windows longer than this are first cut to what the file's archives hold (see held_window).
LONG_WINDOW = 2 * 86400

# Below this many files per worker, starting one more process costs more than it saves.
MIN_FILES_PER_WORKER = 200


@dataclass(frozen=True)
class Rule:
    """What a worker needs of a threshold: the pure rule and its resolved window."""

    id: int
    ds: tuple[str, ...]
    cf: str
    start: int
    end: int
    criterion: Criterion
    stale_before: int = 0
    """A file last updated before this time is STALE (0: never)."""


@dataclass(frozen=True)
class Job:
    """Shared by every worker for one check."""

    root: str
    rules: tuple[Rule, ...]
    want_ok: bool
    rrdcached: Daemon | None = None


Item = tuple[str, tuple[int, ...], tuple[tuple[int, str], ...]]
"""(relative file, indexes into Job.rules, (threshold id, ds) of its series now FIRING)."""

Task = list[Item]

TaskResult = tuple[list[Outcome], int, int]
"""(outcomes, files fetched, series evaluated)."""

DIED = "worker died while reading this file"


def fetch(root: str, rel: str, cf: str, start: int, end: int, daemon: Daemon | None = None) -> _Fetched:
    """The points of one file over (start, end], never more than its archives hold, through the daemon if any.

    Raises Unreachable for the daemon, rrdtool.OperationalError for the file.
    """
    note = ""
    if end - start > LONG_WINDOW:
        # Short windows, the usual ones, skip the header read: it costs about what the fetch does.
        # Through a daemon the file's last update lags the cached points: only the start is cut.
        info = rrdtool.info("--daemon", "", os.path.join(root, rel))
        start, end, note = held_window(info, cf, start, end, cut_end=daemon is None)
    window = (cf, "-s", str(start), "-e", str(end))
    if daemon is not None:
        (first, _end, step), names, rows = rrdcached.fetch(daemon, root, rel, window)
    else:
        # An empty --daemon: librrd must not pick up $RRDCACHED_ADDRESS on its own (the settings decide).
        (first, _end, step), names, rows = rrdtool.fetch("--daemon", "", os.path.join(root, rel), *window)
    return _Fetched(first + step, step, names, rows, end, note)


def _read(job: Job, rel: str, rule: Rule) -> _Fetched | str:
    """The points of one file and rule window, or the one-line reason they could not be read."""
    try:
        return fetch(job.root, rel, rule.cf, rule.start, rule.end, job.rrdcached)
    except Unreachable as exc:
        return str(exc)
    except rrdtool.OperationalError as exc:
        return _error_message(exc, os.path.join(job.root, rel))


def _error_message(exc: Exception, path: str) -> str:
    """One line saying why the file could not be read, without the absolute path."""
    text = str(exc).replace(f"'{path}'", "file").replace(path, "file")
    if "mmaping file" in text and "Invalid argument" in text:
        return "cannot read RRD: file is empty"
    if "No such file" in text:
        return "cannot read RRD: file vanished or is a dangling symlink"
    return f"cannot read RRD: {text}"


class _Fetched:
    """One fetch of one file and window; each data source summarised once, on first use.

    `note` says when the window was cut to what the file's archives hold.
    """

    __slots__ = ("columns", "first", "names", "note", "step", "summaries")

    def __init__(self, first: int, step: int, names: Sequence[str], rows: list[tuple[float | None, ...]],
                 end: int, note: str = "") -> None:
        # Points after the window's end belong to the future of an --at check.
        count = min(len(rows), window_slice(first, step, first - step, end)[1])
        self.first, self.step, self.names, self.note = first, step, list(names), note
        self.columns = list(zip(*rows[:count], strict=True)) if count else [() for _ in names]
        self.summaries: dict[int, Summary] = {}

    def summary(self, col: int) -> Summary:
        got = self.summaries.get(col)
        if got is None:
            got = self.summaries[col] = summarize(self.columns[col], self.first, self.step)
        return got


def archives(info: Mapping[str, Any], cf: str) -> list[tuple[int, int]]:
    """(resolution in seconds, rows) of each archive of consolidation function `cf`, from rrdtool.info."""
    base = int(info["step"])
    out = []
    i = 0
    while f"rra[{i}].cf" in info:
        if info[f"rra[{i}].cf"] == cf:
            out.append((base * int(info[f"rra[{i}].pdp_per_row"]), int(info[f"rra[{i}].rows"])))
        i += 1
    return out


def held_window(info: Mapping[str, Any], cf: str, start: int, end: int, *,
                cut_end: bool = True) -> tuple[int, int, str]:
    """The part of (start, end] that some archive of `cf` holds, and a note when the start was cut.

    rrdtool.fetch answers a window for the whole of it, at the resolution of the archive it
    picks: ten years at one minute is five million rows of unknown points, gigabytes of
    tuples. Outside what the archives hold every point is unknown, so cutting the window
    there changes no outcome; rrdtool still picks the archive it would have (the one that
    reaches back furthest).
    """
    held = archives(info, cf)
    if not held:
        return start, end, ""  # no archive of this CF: rrdtool says so
    last = int(info["last_update"])
    oldest = last - max(res * rows for res, rows in held)
    coarsest = max(res for res, _ in held)
    to = min(end, last - last % coarsest + coarsest) if cut_end else end
    cut_start = max(start, oldest)
    if to <= cut_start:  # the whole window is outside the file: a few unknown points say so
        cut_start, to = end - coarsest, end
    note = f"window cut to the last {_span(last - oldest)} the file's archives hold" if start < oldest else ""
    return cut_start, to, note


def _span(seconds: int) -> str:
    for unit, size in (("days", 86400), ("hours", 3600), ("minutes", 60)):
        if seconds >= 2 * size:
            return f"{seconds // size} {unit}"
    return f"{seconds} s"


def _unreadable(rule: Rule, rel: str, firing: tuple[tuple[int, str], ...], message: str) -> list[Outcome]:
    """ERROR outcomes for a file the rule could not read: its data sources, or those now firing."""
    wanted = rule.ds or tuple(ds for tid, ds in firing if tid == rule.id)
    return [Outcome(rule.id, rel, ds, OutcomeKind.ERROR, message=message) for ds in wanted or ("",)]


def lost_file(job: Job, lost: Lost[Item]) -> TaskResult:
    """What a file whose worker died (twice) counts as: one ERROR per series, never a missing row."""
    rel, rule_ids, firing = lost.item
    outcomes = [o for rid in rule_ids for o in _unreadable(job.rules[rid], rel, firing, f"{DIED} ({lost.how})")]
    return outcomes, 1, len(outcomes)


def check_files(job: Job, task: Task) -> TaskResult:
    """Fetch and evaluate the files of one task; never raises for a bad file."""
    outcomes: list[Outcome] = []
    series = 0
    for rel, rule_ids, firing in task:
        fetches: dict[tuple[str, int, int], _Fetched | str] = {}
        for rid in rule_ids:
            rule = job.rules[rid]
            window = (rule.cf, rule.start, rule.end)
            got = fetches.get(window)
            if got is None:
                got = fetches[window] = _read(job, rel, rule)
            if isinstance(got, str):
                errors = _unreadable(rule, rel, firing, got)
                series += len(errors)
                outcomes.extend(errors)
            elif rule.stale_before and (last := _stale_since(job, rel, got, rule.stale_before)) is not None:
                stale = [Outcome(rule.id, rel, ds, OutcomeKind.STALE, time=last, message="not updated since")
                         for ds in (rule.ds or got.names)]
                series += len(stale)
                outcomes.extend(stale)
            else:
                series += _evaluate(rule, rel, got, firing, job.want_ok, outcomes)
    return outcomes, len(task), series


def _stale_since(job: Job, rel: str, got: _Fetched, before: int) -> int | None:
    """The file's last update when it is older than `before`, else None.

    A known point at or after `before` in the fetched window proves the file fresh; only
    otherwise is the file's header read (through the daemon when there is one).
    """
    for col in range(len(got.names)):
        newest = got.summary(col).newest
        if newest is not None and newest[0] >= before:
            return None
    address = job.rrdcached.address if job.rrdcached is not None else ""
    try:
        last = last_update("--daemon", address, os.path.join(job.root, rel))
    except rrdtool.OperationalError:
        return None  # its fetch just worked: the evaluation says what the points say
    return last if last < before else None


def _evaluate(rule: Rule, rel: str, got: _Fetched, firing: tuple[tuple[int, str], ...], want_ok: bool,
              out: list[Outcome]) -> int:
    """Append the outcomes of one rule over one fetched file to `out`; returns the series evaluated.

    The hot loop of a check (files x thresholds): kept lean on purpose.
    """
    watched = rule.ds or got.names
    for ds in watched:
        try:
            col = got.names.index(ds)
        except ValueError:
            out.append(Outcome(rule.id, rel, ds, OutcomeKind.ERROR,
                               message=f"no data source '{ds}' (file has: {', '.join(got.names)})"))
            continue
        outcome = outcome_of(got.summary(col), rule.criterion, rule.id, rel, ds, want_ok, got.note,
                             (rule.id, ds) in firing)
        if outcome is not None:
            out.append(outcome)
    if firing:
        # A FIRING data source the rule no longer evaluates (dropped from `ds`, or from the file) is closed.
        why = "data source no longer listed by the threshold" if rule.ds else "data source no longer in the file"
        out.extend(Outcome(rule.id, rel, ds, OutcomeKind.GONE, message=why)
                   for tid, ds in firing if tid == rule.id and ds not in watched)
    return len(watched)


def _no_match(m: Matches, index: FileIndex) -> str:
    if not m.skipped:
        return f"glob matches no file under {index.root}"
    others = f"{m.skipped} other file{'s' if m.skipped > 1 else ''} skipped"
    return f"glob matches no RRD file under {index.root} ({others}: a wildcard takes *.rrd files only)"


def _every(_series: str) -> bool:
    return True


def _skipped(t: Threshold, m: Matches, keeps: Callable[[str], bool]) -> list[Outcome]:
    """ERROR outcomes for the matched names that are never read (escaping symlinks, names not UTF-8)."""
    out = [Outcome(t.id, rel, "", OutcomeKind.ERROR, message="symlink leads outside the RRD root; skipped")
           for rel in m.escapes if keeps(rel)]
    out.extend(Outcome(t.id, rel, "", OutcomeKind.ERROR, message=UNDECODABLE) for rel in m.undecodable if keeps(rel))
    return out


def chunk(items: Sequence[Item], size: int) -> Iterable[Task]:
    for i in range(0, len(items), size):
        yield list(items[i : i + size])


class RRDSource(Source):
    """Thresholds over RRD files under `rrd_root`."""

    name = "rrd"
    label = "RRD files"
    fields: ClassVar[Mapping[str, Field]] = {
        "glob": Field(required=True, label="Files (glob relative to the RRD root)",
                      help="RRD files relative to the RRD root, e.g. 'hosts/*/bytes.rrd'"),
    }
    rrd_files = True
    shardable = True

    @classmethod
    def read_fields(cls, raw: Mapping[str, Any], fail: Fail, foreign: Mapping[str, str]) -> dict[str, Any]:
        glob = raw.get("glob", "")
        if not isinstance(glob, str) or not glob.strip():
            raise fail("glob", "an RRD threshold needs a non-empty glob relative to the RRD root")
        problem = glob_problem(glob)
        if problem:
            raise fail("glob", problem)
        super().read_fields(raw, fail, foreign)
        return {"glob": glob.strip()}

    @classmethod
    def describe(cls, t: Threshold) -> str:
        return t.glob

    def validate_notes(self, thresholds: Sequence[Threshold]) -> tuple[str, list[str]]:
        """How many files each glob matches now; the ConfigError of every check when there is no RRD root."""
        if not thresholds:
            return "", []
        index = self.index()
        found = {t.id: index.match(t.glob) for t in thresholds}
        # A wildcard takes *.rrd files only: say how many others it passed over, so none is missed unknowingly.
        note = "; files matched: " + ", ".join(
            f"{k}: {len(m.files)}" + (f" ({m.skipped} not *.rrd, skipped)" if m.skipped else "")
            for k, m in found.items())
        warnings = [f"threshold {k}: glob matches no file under {index.root}" for k, m in found.items() if not m.files]
        return note, warnings

    def _root(self) -> Path:
        root = self.settings.rrd_root
        if root is None:
            raise ConfigError(self.settings.path, "no RRD root: set rrd_root or pass --rrd-root", field="rrd_root")
        if not root.is_dir():
            raise ConfigError(self.settings.path, f"RRD root {root} is not a directory", field="rrd_root")
        return root

    def _cache(self, root: Path) -> Path:
        return cache_path_for(self.settings.data_dir, Path(os.path.realpath(root)))

    def index(self) -> FileIndex:
        root = self._root()
        index = FileIndex(root, self._cache(root))
        index.refresh()
        return index

    def _daemon(self) -> Daemon | None:
        """The rrdcached to read through, probed once per check: if it is down, no file is read."""
        address = self.settings.rrdcached_address
        return Daemon(address, rrdcached.probe(address)) if address else None

    def workers(self) -> int:
        return self.settings.workers or os.cpu_count() or 1

    def pool_size(self, files: int) -> int:
        """Worker processes for `files` files: one per MIN_FILES_PER_WORKER, at least one, at most workers()."""
        return max(1, min(self.workers(), files // MIN_FILES_PER_WORKER))

    def check(
        self,
        thresholds: Sequence[Threshold],
        now: int,
        *,
        firing: frozenset[SeriesKey],
        want_ok: bool,
        progress: ProgressCallback | None = None,
        shard: Shard | None = None,
    ) -> SourceReport:
        root = self._root()
        cache = self._cache(root)
        rules = []
        bad: list[Outcome] = []
        usable = []
        for t in thresholds:
            try:
                start, end = timespec.resolve_window(t.start, t.end, now)
            except timespec.TimeSpecError as exc:
                # Valid when loaded, but not at this time (an epoch start that is still in the future, say).
                bad.append(Outcome(t.id, t.glob, "", OutcomeKind.ERROR, message=f"window: {exc}"))
                continue
            usable.append(t)
            stale_after = t.tuning.stale_after
            rules.append(Rule(t.id, t.ds, t.cf, start, end, criterion_of(t), now - stale_after if stale_after else 0))
        thresholds = usable
        job = Job(os.path.realpath(root), tuple(rules), want_ok, self._daemon())
        # The last walk's size says how many workers to start now, while this process walks the tree again.
        expected = cache.stat().st_size // 40 if cache.exists() else 0
        with self._pool(job, expected) as pool, gc_paused():
            index = FileIndex(root, cache)
            index.refresh()
            # A window error is the threshold's, not a file's: said once, by shard 0.
            first = shard is None or shard.index == 0
            report = SourceReport(outcomes=bad if first else [],
                                  warnings=[index.save_error] if index.save_error and first else [])
            items = self._plan(thresholds, index, firing, report, shard)
            total = len(items)
            for outcomes, fetched, evaluated in self._run(job, items, pool):
                report.outcomes.extend(outcomes)
                report.files_checked += fetched
                report.series_checked += evaluated
                if progress:
                    progress(report.files_checked, total)
            report.warnings.extend(pool.warnings)
        return report

    def _plan(
        self, thresholds: Sequence[Threshold], index: FileIndex, firing: frozenset[SeriesKey],
        report: SourceReport, shard: Shard | None = None,
    ) -> list[Item]:
        """Files to fetch (those of `shard`) with the rules that apply to each; unmatched things become outcomes.

        Globs are matched against the whole tree in every shard, so that "matches no file" (said by
        shard 0 only) and the GONE decisions for a shard's firing series stay what one check would say.
        """
        keeps = shard.keeps if shard is not None else _every
        per_file: dict[str, list[int]] = {}
        matched: dict[str, Matches] = {}
        for rid, t in enumerate(thresholds):
            m = matched.get(t.glob)
            if m is None:
                m = matched[t.glob] = index.match(t.glob)
            report.outcomes.extend(_skipped(t, m, keeps))
            if not m.files and not m.escapes and not m.undecodable and (shard is None or shard.index == 0):
                report.outcomes.append(Outcome(t.id, t.glob, "", OutcomeKind.ERROR, message=_no_match(m, index)))
            files = [rel for rel in m.files if keeps(rel)]
            report.watched[t.id] = len(files)
            for rel in files:
                per_file.setdefault(rel, []).append(rid)
        firing_by_file = self._firing(thresholds, index, frozenset(k for k in firing if keeps(k[1])),
                                      per_file, matched, report)
        return [(rel, tuple(rids), tuple(firing_by_file.get(rel, ()))) for rel, rids in per_file.items()]

    @staticmethod
    def _firing(thresholds: Sequence[Threshold], index: FileIndex, firing: frozenset[SeriesKey],
                per_file: Mapping[str, list[int]], matched: Mapping[str, Matches],
                report: SourceReport) -> dict[str, list[tuple[int, str]]]:
        """The firing (threshold, ds) of each file to fetch; firing series of files not fetched become outcomes."""
        firing_by_file: dict[str, list[tuple[int, str]]] = {}
        rule_of = {t.id: rid for rid, t in enumerate(thresholds)}
        for tid, series, ds in sorted(firing):
            if tid not in rule_of:
                continue
            if rule_of[tid] in per_file.get(series, ()):
                firing_by_file.setdefault(series, []).append((tid, ds))
            elif not matched[thresholds[rule_of[tid]].glob].files:
                # Nothing matches at all: an unmounted root looks just like this, so keep the state.
                report.outcomes.append(
                    Outcome(tid, series, ds, OutcomeKind.ERROR, message="glob matches no file; state kept")
                )
            else:
                # The glob still sees files, just not this one: it is no longer watched.
                gone = not os.path.lexists(os.path.join(index.root, series))
                report.outcomes.append(Outcome(tid, series, ds, OutcomeKind.GONE, message=(
                    "file removed" if gone else "file no longer matched by the glob")))
        return firing_by_file

    def _pool(self, job: Job, expected_files: int) -> WorkerPool[Job, Item, TaskResult]:
        return WorkerPool(check_files, job, self.pool_size(expected_files), preload=[__name__])

    def _run(self, job: Job, items: list[Item], pool: WorkerPool[Job, Item, TaskResult]) -> Iterable[TaskResult]:
        pool.grow(self.pool_size(len(items)))
        size = max(32, min(1000, len(items) // (pool.size * 16) or 1))
        for got in pool.run(chunk(items, size)):
            yield lost_file(job, got) if isinstance(got, Lost) else got
