"""RRD files under a root: glob expansion through the index, one fetch per file and window.

Files are fetched in worker processes (one per core by default) so that both
cores work; each worker runs the breach rule next to the data and sends back
only compact outcomes. Files matched by several thresholds are fetched once
per distinct (consolidation function, window).
"""

from __future__ import annotations

import math
import multiprocessing
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import rrdtool  # type: ignore[import-untyped]

from rrdalarm import timespec
from rrdalarm.config import ConfigError, Threshold
from rrdalarm.evaluate import Direction, find_breach, newest_known
from rrdalarm.sources.base import (
    Outcome,
    OutcomeKind,
    ProgressCallback,
    SeriesKey,
    Source,
    SourceReport,
)
from rrdalarm.sources.rrd_index import FileIndex, cache_path_for

# Below this many files per worker, starting processes costs more than it saves.
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
    firing: frozenset[SeriesKey]
    want_ok: bool


Task = list[tuple[str, tuple[int, ...]]]
"""(relative file, indexes into Job.rules) per file."""

TaskResult = tuple[list[Outcome], int, int]
"""(outcomes, files fetched, series evaluated)."""

_JOB: Job | None = None


def _init_worker(job: Job) -> None:
    global _JOB
    _JOB = job


def _run_task(task: Task) -> TaskResult:
    assert _JOB is not None
    return check_files(_JOB, task)


def _error_message(exc: Exception, path: str) -> str:
    """One line saying why the file could not be read, without the absolute path."""
    text = str(exc).replace(f"'{path}'", "file").replace(path, "file")
    if "mmaping file" in text and "Invalid argument" in text:
        return "cannot read RRD: file is empty"
    if "No such file" in text:
        return "cannot read RRD: file vanished or is a dangling symlink"
    return f"cannot read RRD: {text}"


def check_files(job: Job, task: Task) -> TaskResult:
    """Fetch and evaluate the files of one task; never raises for a bad file."""
    outcomes: list[Outcome] = []
    series = 0
    fetched = 0
    for rel, rule_ids in task:
        path = os.path.join(job.root, rel)
        cache: dict[tuple[str, int, int], tuple[int, int, Sequence[str], list[tuple[float | None, ...]]] | str] = {}
        fetched += 1
        for rid in rule_ids:
            rule = job.rules[rid]
            window = (rule.cf, rule.start, rule.end)
            got = cache.get(window)
            if got is None:
                try:
                    (start, _end, step), names, rows = rrdtool.fetch(
                        path, rule.cf, "-s", str(rule.start), "-e", str(rule.end)
                    )
                    got = (start + step, step, names, rows)
                except rrdtool.OperationalError as exc:
                    got = _error_message(exc, path)
                cache[window] = got
            if isinstance(got, str):
                wanted = rule.ds or tuple(sorted({k[2] for k in job.firing if k[0] == rule.id and k[1] == rel}))
                for ds in wanted or ("",):
                    series += 1
                    outcomes.append(Outcome(rule.id, rel, ds, OutcomeKind.ERROR, message=got))
                continue
            first, step, names, rows = got
            # Points after the window's end belong to the future of an --at check.
            count = len(rows)
            while count and first + (count - 1) * step > rule.end:
                count -= 1
            for ds in rule.ds or names:
                series += 1
                try:
                    col = names.index(ds)
                except ValueError:
                    outcomes.append(
                        Outcome(rule.id, rel, ds, OutcomeKind.ERROR,
                                message=f"no data source '{ds}' (file has: {', '.join(names)})")
                    )
                    continue
                values = [rows[i][col] for i in range(count)]
                breach = find_breach(values, first, step, rule.direction, rule.limit, rule.repetitions)
                if breach is not None:
                    outcomes.append(Outcome(rule.id, rel, ds, OutcomeKind.BREACH, breach.value, breach.time))
                    continue
                newest = newest_known(values, first, step)
                if newest is None:
                    outcomes.append(
                        Outcome(rule.id, rel, ds, OutcomeKind.NO_DATA, message="no known point in the window")
                    )
                elif job.want_ok or (rule.id, rel, ds) in job.firing:
                    outcomes.append(Outcome(rule.id, rel, ds, OutcomeKind.OK, newest[1], newest[0]))
    return outcomes, fetched, series


def chunk(items: Sequence[tuple[str, tuple[int, ...]]], size: int) -> Iterable[Task]:
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

    def index(self) -> FileIndex:
        root = self._root()
        cache = cache_path_for(self.settings.data_dir, Path(os.path.realpath(root)))
        index = FileIndex(root, cache)
        index.refresh()
        return index

    def workers(self) -> int:
        return self.settings.workers or os.cpu_count() or 1

    def check(
        self,
        thresholds: Sequence[Threshold],
        now: int,
        *,
        firing: frozenset[SeriesKey],
        want_ok: bool,
        progress: ProgressCallback | None = None,
    ) -> SourceReport:
        index = self.index()
        report = SourceReport()
        rules: list[Rule] = []
        per_file: dict[str, list[int]] = {}
        for t in thresholds:
            start, end = timespec.resolve_window(t.start, t.end, now)
            rid = len(rules)
            rules.append(Rule(t.id, t.ds, t.cf, start, end, t.type, t.value, t.repetitions))
            matches = index.match(t.glob)
            for rel in matches.escapes:
                report.outcomes.append(
                    Outcome(t.id, rel, "", OutcomeKind.ERROR, message="symlink leads outside the RRD root; skipped")
                )
            if not matches.files and not matches.escapes:
                report.outcomes.append(
                    Outcome(t.id, t.glob, "", OutcomeKind.ERROR,
                            message=f"glob matches no file under {index.root}")
                )
            for rel in matches.files:
                per_file.setdefault(rel, []).append(rid)
        # Series whose file no longer matches keep their state; say so instead of forgetting them.
        matched = {(rules[r].id, rel) for rel, rids in per_file.items() for r in rids}
        for key in sorted(firing):
            tid, series, ds = key
            if any(t.id == tid for t in thresholds) and (tid, series) not in matched:
                report.outcomes.append(
                    Outcome(tid, series, ds, OutcomeKind.ERROR, message="file no longer matched by the glob")
                )
        job = Job(str(index.root), tuple(rules), firing, want_ok)
        items = [(rel, tuple(rids)) for rel, rids in per_file.items()]
        total = len(items)
        for outcomes, fetched, evaluated in self._run(job, items, progress):
            report.outcomes.extend(outcomes)
            report.files_checked += fetched
            report.series_checked += evaluated
            if progress:
                progress(report.files_checked, total)
        return report

    def _run(
        self, job: Job, items: list[tuple[str, tuple[int, ...]]], progress: ProgressCallback | None
    ) -> Iterable[TaskResult]:
        workers = min(self.workers(), math.ceil(len(items) / MIN_FILES_PER_WORKER))
        if workers <= 1:
            for task in chunk(items, 500):
                yield check_files(job, task)
            return
        size = max(32, min(1000, len(items) // (workers * 16) or 1))
        ctx = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn")
        with ctx.Pool(workers, initializer=_init_worker, initargs=(job,)) as pool:
            yield from pool.imap_unordered(_run_task, chunk(items, size))
