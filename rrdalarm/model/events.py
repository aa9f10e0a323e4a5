"""What an action receives: one event per fired, repeated or resolved alarm."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from rrdalarm.model.digest import digest_document, statuses_of
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
    duplicates (delivery is at least once). A digest (see `digest`) carries one event
    of kind DIGEST whose message sums up the others.
    """

    id: str
    action: str
    params: Mapping[str, Any]
    events: tuple[Event, ...]
    attempt: int = 1
    created_at: int = 0

    @property
    def digest(self) -> Event | None:
        """The digest event when this delivery sums up the events past `[delivery] max_per_check`, else None."""
        return next((e for e in self.events if e.kind == EventKind.DIGEST), None)

    @property
    def carried(self) -> tuple[Event, ...]:
        """The alarm events: all of them, less the digest event of a digest."""
        return tuple(e for e in self.events if e.kind != EventKind.DIGEST)

    def digest_summary(self) -> dict[str, Any] | None:
        """A digest as data for the webhook and script bodies (count, thresholds ...); None for other deliveries."""
        d = self.digest
        if d is None:
            return None
        return {"event_id": d.id, "severity": d.severity, **digest_document(self.carried, d.message)}

    @property
    def counts(self) -> dict[str, int]:
        """Alarm events by status, e.g. {"ALARM FIRED": 2, "RESOLVED": 1} (a digest's own event is not one)."""
        return statuses_of(self.carried)
