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
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import rrdtool  # type: ignore[import-untyped]

from rrdalarm import timespec
from rrdalarm.config import ConfigError, Threshold
from rrdalarm.evaluate import Direction, Summary, breach_of, summarize
from rrdalarm.sources.base import (
    Outcome,
    OutcomeKind,
    ProgressCallback,
    SeriesKey,
    Source,
    SourceReport,
)
from rrdalarm.sources.rrd_index import FileIndex, Matches, cache_path_for, gc_paused
from rrdalarm.sources.rrd_pool import Lost, WorkerPool

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
    direction: Direction
    limit: float
    repetitions: int


@dataclass(frozen=True)
class Job:
    """Shared by every worker for one check."""

    root: str
    rules: tuple[Rule, ...]
    want_ok: bool


Item = tuple[str, tuple[int, ...], tuple[tuple[int, str], ...]]
"""(relative file, indexes into Job.rules, (threshold id, ds) of its series now FIRING)."""

Task = list[Item]

TaskResult = tuple[list[Outcome], int, int]
"""(outcomes, files fetched, series evaluated)."""

DIED = "worker died while reading this file"


def _error_message(exc: Exception, path: str) -> str:
    """One line saying why the file could not be read, without the absolute path."""
    text = str(exc).replace(f"'{path}'", "file").replace(path, "file")
    if "mmaping file" in text and "Invalid argument" in text:
        return "cannot read RRD: file is empty"
    if "No such file" in text:
        return "cannot read RRD: file vanished or is a dangling symlink"
    return f"cannot read RRD: {text}"


class _Fetched:
    """One fetch of one file and window; each data source summarised once, on first use."""

    __slots__ = ("columns", "first", "names", "step", "summaries")

    def __init__(self, first: int, step: int, names: Sequence[str], rows: list[tuple[float | None, ...]],
                 end: int) -> None:
        # Points after the window's end belong to the future of an --at check.
        count = len(rows)
        while count and first + (count - 1) * step > end:
            count -= 1
        self.first, self.step, self.names = first, step, list(names)
        self.columns = list(zip(*rows[:count], strict=True)) if count else [() for _ in names]
        self.summaries: dict[int, Summary] = {}

    def summary(self, col: int) -> Summary:
        got = self.summaries.get(col)
        if got is None:
            got = self.summaries[col] = summarize(self.columns[col], self.first, self.step)
        return got


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
        path = os.path.join(job.root, rel)
        fetches: dict[tuple[str, int, int], _Fetched | str] = {}
        for rid in rule_ids:
            rule = job.rules[rid]
            window = (rule.cf, rule.start, rule.end)
            got = fetches.get(window)
            if got is None:
                try:
                    (start, _end, step), names, rows = rrdtool.fetch(
                        path, rule.cf, "-s", str(rule.start), "-e", str(rule.end)
                    )
                    got = _Fetched(start + step, step, names, rows, rule.end)
                except rrdtool.OperationalError as exc:
                    got = _error_message(exc, path)
                fetches[window] = got
            if isinstance(got, str):
                errors = _unreadable(rule, rel, firing, got)
                series += len(errors)
                outcomes.extend(errors)
                continue
            for ds in rule.ds or got.names:
                series += 1
                try:
                    col = got.names.index(ds)
                except ValueError:
                    outcomes.append(
                        Outcome(rule.id, rel, ds, OutcomeKind.ERROR,
                                message=f"no data source '{ds}' (file has: {', '.join(got.names)})")
                    )
                    continue
                summary = got.summary(col)
                breach = breach_of(summary, rule.direction, rule.limit, rule.repetitions)
                if breach is not None:
                    outcomes.append(Outcome(rule.id, rel, ds, OutcomeKind.BREACH, breach.value, breach.time))
                elif summary.newest is None:
                    outcomes.append(
                        Outcome(rule.id, rel, ds, OutcomeKind.NO_DATA, message="no known point in the window")
                    )
                elif job.want_ok or (rule.id, ds) in firing:
                    t, v = summary.newest
                    outcomes.append(Outcome(rule.id, rel, ds, OutcomeKind.OK, v, t))
    return outcomes, len(task), series


def chunk(items: Sequence[Item], size: int) -> Iterable[Task]:
    for i in range(0, len(items), size):
        yield list(items[i : i + size])


class RRDSource(Source):
    """Thresholds over RRD files under `rrd_root`."""

    name = "rrd"

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
            rules.append(Rule(t.id, t.ds, t.cf, start, end, t.type, t.value, t.repetitions))
        thresholds = usable
        job = Job(os.path.realpath(root), tuple(rules), want_ok)
        # The last walk's size says how many workers to start now, while this process walks the tree again.
        expected = cache.stat().st_size // 40 if cache.exists() else 0
        with self._pool(job, expected) as pool, gc_paused():
            index = FileIndex(root, cache)
            index.refresh()
            report = SourceReport(outcomes=bad)
            items = self._plan(thresholds, index, firing, report)
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
        report: SourceReport,
    ) -> list[Item]:
        """Files to fetch with the rules that apply to each; unmatched things become outcomes."""
        per_file: dict[str, list[int]] = {}
        matched: dict[str, Matches] = {}
        for rid, t in enumerate(thresholds):
            m = matched.get(t.glob)
            if m is None:
                m = matched[t.glob] = index.match(t.glob)
            for rel in m.escapes:
                report.outcomes.append(
                    Outcome(t.id, rel, "", OutcomeKind.ERROR, message="symlink leads outside the RRD root; skipped")
                )
            if not m.files and not m.escapes:
                report.outcomes.append(
                    Outcome(t.id, t.glob, "", OutcomeKind.ERROR, message=f"glob matches no file under {index.root}")
                )
            for rel in m.files:
                per_file.setdefault(rel, []).append(rid)
        firing_by_file: dict[str, list[tuple[int, str]]] = {}
        rule_of = {t.id: rid for rid, t in enumerate(thresholds)}
        for tid, series, ds in sorted(firing):
            if tid not in rule_of:
                continue
            if rule_of[tid] in per_file.get(series, ()):
                firing_by_file.setdefault(series, []).append((tid, ds))
            else:
                # Its file no longer matches: keep the state and say so instead of forgetting it.
                report.outcomes.append(
                    Outcome(tid, series, ds, OutcomeKind.ERROR, message="file no longer matched by the glob")
                )
        return [(rel, tuple(rids), tuple(firing_by_file.get(rel, ()))) for rel, rids in per_file.items()]

    def _pool(self, job: Job, expected_files: int) -> WorkerPool[Job, Item, TaskResult]:
        return WorkerPool(check_files, job, self.pool_size(expected_files), preload=[__name__])

    def _run(self, job: Job, items: list[Item], pool: WorkerPool[Job, Item, TaskResult]) -> Iterable[TaskResult]:
        pool.grow(self.pool_size(len(items)))
        size = max(32, min(1000, len(items) // (pool.size * 16) or 1))
        for got in pool.run(chunk(items, size)):
            yield lost_file(job, got) if isinstance(got, Lost) else got
