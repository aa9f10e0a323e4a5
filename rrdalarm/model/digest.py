"""The words of a digest: what the events past a target's `[delivery] max_per_check` are summed up as.

Shared by the planning (rrdalarm/delivery/budget.py writes the digest event's message) and the
actions (email and webhook show the same counts and thresholds), so both say the same thing.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Protocol

from rrdalarm.model.states import severity_rank

# A message stays one readable line however many thresholds a broken folder touches.
_MAX_NAMED = 10


class Summed(Protocol):
    """What a digest needs of an event (NewEvent at planning, Event at sending)."""

    @property
    def threshold_id(self) -> int: ...
    @property
    def threshold_name(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def severity(self) -> str: ...


def thresholds_of(events: Iterable[Summed]) -> list[tuple[int, str, int]]:
    """(threshold id, name, number of events), the most severe threshold first, then by id."""
    found: dict[int, tuple[str, int, int]] = {}
    for e in events:
        name, n, rank = found.get(e.threshold_id, (e.threshold_name, 0, severity_rank(e.severity)))
        found[e.threshold_id] = (name, n + 1, min(rank, severity_rank(e.severity)))
    ordered = sorted(found.items(), key=lambda item: (item[1][2], item[0]))
    return [(tid, name, n) for tid, (name, n, _) in ordered]


def statuses_of(events: Iterable[Summed]) -> dict[str, int]:
    """Events by status, e.g. {"ALARM FIRED": 990, "RESOLVED": 5}."""
    out: dict[str, int] = {}
    for e in events:
        out[e.status] = out.get(e.status, 0) + 1
    return out


def digest_message(events: Sequence[Summed]) -> str:
    """'995 more alarms from thresholds 1 (web bytes), 2 (disk): 990 ALARM FIRED, 5 RESOLVED'."""
    named = thresholds_of(events)
    shown = ", ".join(f"{tid} ({name})" if name else str(tid) for tid, name, _ in named[:_MAX_NAMED])
    if len(named) > _MAX_NAMED:
        shown += f" and {len(named) - _MAX_NAMED} more"
    statuses = ", ".join(f"{n} {status}" for status, n in statuses_of(events).items())
    count = len(events)
    return (f"{count} more {'alarm' if count == 1 else 'alarms'} from "
            f"{'threshold' if len(named) == 1 else 'thresholds'} {shown}: {statuses}")


def digest_document(events: Sequence[Any], message: str) -> dict[str, Any]:
    """The digest as data: count, message, statuses, and per threshold its id, name and count."""
    return {
        "count": len(events),
        "message": message,
        "statuses": statuses_of(events),
        "thresholds": [{"id": tid, "name": name, "count": n} for tid, name, n in thresholds_of(events)],
    }
