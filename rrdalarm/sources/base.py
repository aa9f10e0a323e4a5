"""The source contract: thresholds and a time in, one outcome per series out.

A source expands what a threshold matches, reads the window's points and runs
the pure breach rule (`rrdalarm.rules.evaluate.find_breach`) next to the data, so
that only outcomes cross process boundaries. It never raises for data it
cannot read: an unreadable file or an unreachable server becomes an ERROR
outcome for the series concerned, and the check goes on. It keeps no alarm
state; the engine owns state transitions.
"""

from __future__ import annotations

import zlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, ClassVar

from rrdalarm.model.definitions import Settings, Threshold
from rrdalarm.model.errors import ConfigError
from rrdalarm.rules.evaluate import Criterion, Summary, breach_of, crosses, crossing_count

SeriesKey = tuple[int, str, str]
"""(threshold id, series name, data source)."""

ProgressCallback = Callable[[int, int], None]
"""Called with (done, total) as work proceeds."""


class OutcomeKind(StrEnum):
    BREACH = "breach"
    OK = "ok"
    NO_DATA = "no data"
    STALE = "stale"
    """The file (or series) has not been updated for the threshold's `stale_after`: not evaluated."""
    ERROR = "error"
    GONE = "gone"
    """A FIRING series no longer watched (its file gone or no longer matched): the engine closes it.

    Only for what the source knows is gone, never for what it cannot see right now: an
    unreadable file is an ERROR, and so is a pattern that matches nothing at all (an
    unmounted root, an unreachable listing), which keeps every state as it is.
    """


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one series looked like in this check."""

    threshold: int
    series: str
    ds: str
    kind: OutcomeKind
    value: float | None = None
    time: int | None = None
    message: str = ""
    holding: bool = False
    """OK, but the newest point still crosses the threshold's clear level (hysteresis)."""
    count: tuple[int, int] | None = None
    """(crossing points, points the rule counts) of a FIRING series that no longer breaches."""

    @property
    def key(self) -> SeriesKey:
        return (self.threshold, self.series, self.ds)


@dataclass
class SourceReport:
    """All outcomes of one source in one check, plus its counters and what the operator should hear of.

    `files_checked` counts the reads the check made from where the data lives: one per RRD file
    fetched; for ntopng, one per REST request (listings and timeseries answers alike).
    `series_checked` counts the (series, data source) pairs evaluated. Both are shown as they are
    by `rrdalarm check --json`
    ("files_checked", "series_checked"). `warnings` are one-line notes for the operator.
    """

    outcomes: list[Outcome] = field(default_factory=list)
    files_checked: int = 0
    series_checked: int = 0
    warnings: list[str] = field(default_factory=list)
    watched: dict[int, int] = field(default_factory=dict)
    """Files (or series) each threshold watched in this check, for "stale: 3 of 40 files"."""

    def add(self, other: SourceReport) -> None:
        """Fold another report (another source's, or another shard's of the same thresholds) into this one."""
        self.outcomes.extend(other.outcomes)
        self.warnings.extend(other.warnings)
        self.files_checked += other.files_checked
        self.series_checked += other.series_checked
        for tid, count in other.watched.items():
            self.watched[tid] = self.watched.get(tid, 0) + count


@dataclass(frozen=True, slots=True)
class Shard:
    """One part of a check's series (index of count), for checks split across workers.

    A series belongs to the shard of a stable hash of its name (CRC-32: the same in every
    process and on every machine, as Python's hash() of a string is not).
    """

    index: int
    count: int

    def __post_init__(self) -> None:
        if not 0 <= self.index < self.count:
            raise ValueError(f"shard {self.index} of {self.count} does not exist")

    @staticmethod
    def of(series: str, count: int) -> int:
        """The index of the shard that `series` belongs to among `count`."""
        crc = zlib.crc32(series.encode("utf-8", "surrogatepass"))
        # CRC-32 is linear: names that differ in one digit share their low bits, so they would share a
        # shard. A multiplication by the golden ratio (Fibonacci hashing) spreads every bit to the high
        # ones, which pick the shard.
        return (((crc * 0x9E3779B1) & 0xFFFFFFFF) >> 16) % count

    def keeps(self, series: str) -> bool:
        return self.count == 1 or Shard.of(series, self.count) == self.index


def criterion_of(t: Threshold) -> Criterion:
    """The threshold's rule over one series' points."""
    tu = t.tuning
    return Criterion(t.type, t.value, t.repetitions, tu.within, tu.scale, tu.clear_value)


def outcome_of(summary: Summary, c: Criterion, threshold: int, series: str, ds: str, keep_ok: bool,
               note: str = "", firing: bool = False) -> Outcome | None:
    """One series' outcome from its window's summary: BREACH, NO_DATA, or OK (None when neither `keep_ok`
    nor `firing`: the engine needs OK outcomes only for the report and for series that fire).

    The one rule every source turns points into an outcome with; called once per series and
    threshold in the RRD hot loop, so it stays a plain function of positional arguments.
    """
    breach = breach_of(summary, c)
    if breach is not None:
        return Outcome(threshold, series, ds, OutcomeKind.BREACH, breach.value, breach.time, note)
    if summary.newest is None:
        message = f"no known point in the window; {note}" if note else "no known point in the window"
        return Outcome(threshold, series, ds, OutcomeKind.NO_DATA, message=message)
    if not (keep_ok or firing):
        return None
    at, value = summary.newest
    value *= c.scale
    holding = c.clear_value is not None and crosses(value, c.direction, c.clear_value)
    count = crossing_count(summary.values, c) if firing else None
    return Outcome(threshold, series, ds, OutcomeKind.OK, value, at, note, holding, count)


Fail = Callable[[str, str], ConfigError]
"""Makes the located ConfigError for a field of the threshold being read: fail(field, message)."""


@dataclass(frozen=True)
class Field:
    """One threshold field of a source, as config validation, the TOML writer and the editor see it."""

    type: type = str
    required: bool = False
    default: Any = ""
    help: str = ""
    label: str = ""
    """The editor's label (default: the field's name)."""
    check: Callable[[Any], str | None] | None = None
    """Returns why a value is not acceptable, or None."""


class Source(ABC):
    """Base class of every source plugin (entry-point group `rrdalarm.sources`); the one contract.

    Configuration: `fields` are the threshold keys the source owns (in the order they are checked
    and written); `read_fields` validates them and raises ConfigError through `fail`, which names
    the file, line and field. `series_key` is the key of the list of data sources ("ds", or e.g.
    "label"); "ds" is always accepted too. `label` names the source in the editor.

    Checking: `check` evaluates every series of its thresholds and returns one SourceReport. It
    must not raise for unreadable data (see the module docstring); it may raise ConfigError for
    a mistake in settings, and nothing else. OK outcomes are returned only when `want_ok` is
    true or the series is in `firing` (so the engine can resolve it); every other outcome is
    always returned. Outcomes may come in any order (the engine sorts); `progress` may be called
    from the calling thread only. A source instance serves one check at a time.

    Series: `series_prefix` starts every series name of the source ("" for RRD files, named by
    their path); events name their source by it. `rrd_files` says its series are RRD files
    matched by the `glob` field under the RRD root: they can be backtested and graphed.

    Shards: a check split across workers (`check_shard`) gives each a Shard. A `shardable`
    source evaluates only the series that Shard.keeps (and gets only their `firing` keys), still
    expanding each pattern over everything so that "matches nothing" and GONE stay right, and
    reports pattern-level errors from shard 0 only. Any other source is never given a shard: it
    runs whole in shard 0 (which gets all its firing keys, see `shard_of`), and the others are empty.
    """

    name: ClassVar[str]
    label: ClassVar[str] = ""
    fields: ClassVar[Mapping[str, Field]] = {}
    series_key: ClassVar[str] = "ds"
    series_rule: ClassVar[str] = "must be a list of data source names"
    """The message for a bad `series_key` list."""
    series_prefix: ClassVar[str] = ""
    rrd_files: ClassVar[bool] = False
    shardable: ClassVar[bool] = False

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @classmethod
    def read_fields(cls, raw: Mapping[str, Any], fail: Fail, foreign: Mapping[str, str]) -> dict[str, Any]:
        """The source's own values of a threshold table, with defaults; `foreign`: key -> the source owning it."""
        for key, owner in foreign.items():
            if key in raw and key not in cls.fields and key != cls.series_key:
                raise fail(key, f"'{key}' belongs to {owner} thresholds (source = \"{owner}\")")
        return {key: read_field(cls.name, key, spec, raw, fail) for key, spec in cls.fields.items()}

    @classmethod
    def describe(cls, t: Threshold) -> str:
        """What the threshold watches, in one line, as its series are named (e.g. a glob)."""
        shown = ",".join(f"{k}={t.fields.get(k, '')}" for k in cls.fields)
        return f"{cls.series_prefix or cls.name + ':'}{{{shown}}}"

    @classmethod
    def display(cls, t: Threshold) -> str:
        """What the threshold watches, as the thresholds table shows it (default: `describe`)."""
        return cls.describe(t)

    @classmethod
    def backtest_unsupported(cls) -> str | None:
        """Why thresholds of this source cannot be replayed over the past, or None when they can."""
        if cls.rrd_files:
            return None
        return f"Backtests read RRD files only, so a {cls.name} threshold can be previewed but not replayed."

    def validate_notes(self, thresholds: Sequence[Threshold]) -> tuple[str, list[str]]:
        """For `rrdalarm validate`: a note for its summary line and warnings (default: none)."""
        return "", []

    @classmethod
    def shard_of(cls, series: str, count: int) -> int:
        """The shard of `count` that evaluates `series` (and so must be told when it is firing)."""
        return Shard.of(series, count) if cls.shardable else 0

    def check_shard(self, thresholds: Sequence[Threshold], now: int, *, firing: frozenset[SeriesKey],
                    want_ok: bool, shard: Shard) -> SourceReport:
        """`check` of one shard: the source's own part of it, or all of it in shard 0 when it cannot shard."""
        if self.shardable:
            return self.check(thresholds, now, firing=firing, want_ok=want_ok, shard=shard)
        if shard.index == 0:
            return self.check(thresholds, now, firing=firing, want_ok=want_ok)
        return SourceReport()

    @abstractmethod
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
        """Evaluate every series of `thresholds` as of `now` (only those of `shard`, if shardable and given)."""


def read_field(source: str, key: str, spec: Field, raw: Mapping[str, Any], fail: Fail) -> Any:
    """One declared field's value from a threshold table, or its default; ConfigError through `fail`."""
    if key not in raw:
        if spec.required:
            raise fail(key, f"a {source} threshold needs '{key}' ({spec.help})")
        return spec.default
    value = raw[key]
    if spec.type is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, spec.type) or (spec.type is int and isinstance(value, bool)):
        raise fail(key, f"must be {spec.type.__name__}, not {value!r}")
    if isinstance(value, str):
        value = value.strip()
        if spec.required and not value:
            raise fail(key, f"a {source} threshold needs '{key}' ({spec.help})")
    problem = spec.check(value) if spec.check else None
    if problem:
        raise fail(key, problem)
    return value
