"""What an action receives: one event per fired, repeated or resolved alarm."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from rrdalarm.evaluate import EventKind


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

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["kind"] = self.kind.value
        return data
