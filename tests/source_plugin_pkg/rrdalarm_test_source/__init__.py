"""A source of points in CSV files: each `<name>.csv` in `dir` is one series, rows `time,value`.

It knows nothing of rrdalarm's internals beyond the Source contract: it declares its
fields, and rrdalarm validates, edits, checks, previews and reports it as any other.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import ClassVar

from rrdalarm.model.definitions import Threshold
from rrdalarm.rules import timespec
from rrdalarm.rules.evaluate import summarize
from rrdalarm.sources.base import (
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


def _dir_problem(value: object) -> str | None:
    if not isinstance(value, str) or not os.path.isabs(value):
        return f"must be an absolute folder path, not {value!r}"
    return None


def _scale_problem(value: object) -> str | None:
    return None if isinstance(value, float) and value > 0 else f"must be a positive number, not {value!r}"


class CsvDirSource(Source):
    name = "csvdir"
    label = "CSV folder"
    fields: ClassVar[Mapping[str, Field]] = {
        "dir": Field(required=True, label="CSV folder", help="absolute folder of <series>.csv files",
                     check=_dir_problem),
        "factor": Field(type=float, default=1.0, label="Factor", help="each value is multiplied by this",
                        check=_scale_problem),
    }
    series_prefix = "csvdir:"

    @classmethod
    def describe(cls, t: Threshold) -> str:
        return f"csvdir:{t.fields['dir']}/*.csv"

    def check(self, thresholds: Sequence[Threshold], now: int, *, firing: frozenset[SeriesKey], want_ok: bool,
              progress: ProgressCallback | None = None, shard: Shard | None = None) -> SourceReport:
        report = SourceReport()
        for t in thresholds:
            start, end = timespec.resolve_window(t.start, t.end, now)
            files = sorted(Path(t.fields["dir"]).glob("*.csv"))
            if not files:
                report.outcomes.append(Outcome(t.id, self.describe(t), "", OutcomeKind.ERROR,
                                               message="no CSV file in the folder"))
            for path in files:
                report.files_checked += 1
                report.series_checked += 1
                self._one(t, path, start, end, firing, want_ok, report)
        return report

    def _one(self, t: Threshold, path: Path, start: int, end: int, firing: frozenset[SeriesKey], want_ok: bool,
             report: SourceReport) -> None:
        series = f"csvdir:{path.stem}"
        points = {}
        for line in path.read_text().splitlines():
            when, _, value = line.partition(",")
            points[int(when)] = float(value) * t.fields["factor"]
        step = 60
        first = start + step - start % step
        values = [points.get(at, math.nan) for at in range(first, end + 1, step)]
        outcome = outcome_of(summarize(values, first, step), criterion_of(t), t.id, series, "value", want_ok, "",
                             (t.id, series, "value") in firing)
        if outcome is not None:
            report.outcomes.append(outcome)
