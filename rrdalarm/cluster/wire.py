"""What crosses the broker, as JSON-able plain data: a shard to check, and its answer.

The thresholds travel as the TOML the thresholds file would hold, without their actions (action
parameters can hold secrets, and a worker runs none), and the worker reads them with the same
reader as any thresholds file. Answers carry compact outcomes: the non-OK ones, and the OK ones
of series now firing (all of them only when the coordinator wants OK rows).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from rrdalarm.config.thresholds import parse_thresholds_toml
from rrdalarm.config.writing import thresholds_to_toml
from rrdalarm.model.definitions import Threshold
from rrdalarm.sources.base import Outcome, OutcomeKind, SeriesKey, Shard, SourceReport

VERSION = 1


class WireError(ValueError):
    """A message that is not one this version reads."""


@dataclass(frozen=True)
class ShardRequest:
    """One shard of one tree in one check."""

    check: str
    tree: str
    thresholds: str
    """TOML of the tree's thresholds, without actions."""
    now: int
    shard: Shard
    want_ok: bool
    firing: frozenset[SeriesKey] = frozenset()
    """The firing, stale or flapping series of this shard: the worker reports on them even when OK."""


@dataclass(frozen=True)
class ShardAnswer:
    """A worker's answer for one shard; `error` is set (and the report empty) when it could not check it."""

    check: str
    tree: str
    shard: int
    worker: str
    duration_s: float
    report: SourceReport = field(default_factory=SourceReport)
    error: str = ""


def thresholds_text(thresholds: Sequence[Threshold]) -> str:
    """The thresholds as TOML, actions left out."""
    return thresholds_to_toml([replace(t, actions=()) for t in thresholds])


def read_thresholds(text: str, tree: str) -> list[Threshold]:
    """The thresholds of a request, read as a thresholds file is (ConfigError names the tree)."""
    from rrdalarm.plugins import source_plugins

    return parse_thresholds_toml(text, f"thresholds sent for tree {tree}", sorted(source_plugins()))


def encode_request(r: ShardRequest) -> dict[str, Any]:
    return {"v": VERSION, "check": r.check, "tree": r.tree, "thresholds": r.thresholds, "now": r.now,
            "shard": [r.shard.index, r.shard.count], "want_ok": r.want_ok,
            "firing": [list(k) for k in sorted(r.firing)]}


def decode_request(data: Mapping[str, Any]) -> ShardRequest:
    _version(data)
    try:
        index, count = data["shard"]
        return ShardRequest(str(data["check"]), str(data["tree"]), str(data["thresholds"]), int(data["now"]),
                            Shard(int(index), int(count)), bool(data["want_ok"]),
                            frozenset((int(t), str(s), str(d)) for t, s, d in data["firing"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise WireError(f"not a shard request: {exc}") from None


def encode_answer(a: ShardAnswer) -> dict[str, Any]:
    r = a.report
    return {"v": VERSION, "check": a.check, "tree": a.tree, "shard": a.shard, "worker": a.worker,
            "duration_s": a.duration_s, "error": a.error, "files_checked": r.files_checked,
            "series_checked": r.series_checked, "warnings": list(r.warnings),
            "watched": [[tid, n] for tid, n in sorted(r.watched.items())],
            "outcomes": [_outcome_row(o) for o in r.outcomes]}


def decode_answer(data: Mapping[str, Any]) -> ShardAnswer:
    _version(data)
    try:
        report = SourceReport(
            outcomes=[_outcome(row) for row in data["outcomes"]], files_checked=int(data["files_checked"]),
            series_checked=int(data["series_checked"]), warnings=[str(w) for w in data["warnings"]],
            watched={int(tid): int(n) for tid, n in data["watched"]})
        return ShardAnswer(str(data["check"]), str(data["tree"]), int(data["shard"]), str(data["worker"]),
                           float(data["duration_s"]), report, str(data["error"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise WireError(f"not a shard answer: {exc}") from None


def _version(data: Mapping[str, Any]) -> None:
    if not isinstance(data, Mapping) or data.get("v") != VERSION:
        got = data.get("v") if isinstance(data, Mapping) else type(data).__name__
        raise WireError(f"message of version {got!r}, this node speaks version {VERSION}: upgrade every node")


def _outcome_row(o: Outcome) -> list[Any]:
    return [o.threshold, o.series, o.ds, o.kind.value, o.value, o.time, o.message, o.holding,
            list(o.count) if o.count is not None else None]


def _outcome(row: Sequence[Any]) -> Outcome:
    tid, series, ds, kind, value, at, message, holding, count = row
    return Outcome(int(tid), str(series), str(ds), OutcomeKind(kind), None if value is None else float(value),
                   None if at is None else int(at), str(message), bool(holding),
                   None if count is None else (int(count[0]), int(count[1])))
