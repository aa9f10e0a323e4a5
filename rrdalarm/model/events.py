"""What an action receives: one event per fired, repeated or resolved alarm."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from rrdalarm.model.states import EventKind


@dataclass(frozen=True)
class Event:
    """An alarm event as every action sees it.

    `id` is stable for the event (the database row), so receivers can drop
    duplicates; `at` is the check's time; `time`/`value` are the newest point
    of the breaching run (or the newest known point for a recovery).
    """

    id: int
    at: int
    threshold_id: int
    threshold_name: str
    source: str
    series: str
    ds: str
    status: str
    kind: EventKind
    type: str
    limit: float
    value: float | None
    time: int | None
    message: str
    severity: str = "warning"
    unit: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)
    description: str = ""
    runbook: str = ""

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["kind"] = self.kind.value
        data["labels"] = dict(self.labels)
        return data


@dataclass(frozen=True)
class Delivery:
    """One message to send: an action, its parameters and the events it carries.

    `id` is the same on every attempt of this delivery: receivers use it to drop
    duplicates (delivery is at least once).
    """

    id: str
    action: str
    params: Mapping[str, Any]
    events: tuple[Event, ...]
    attempt: int = 1
    created_at: int = 0

    @property
    def counts(self) -> dict[str, int]:
        """Events by status, e.g. {"ALARM FIRED": 2, "RESOLVED": 1}."""
        out: dict[str, int] = {}
        for e in self.events:
            out[e.status] = out.get(e.status, 0) + 1
        return out
