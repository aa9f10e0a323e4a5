"""What a check hands the store and gets back: plain records, no database in sight.

The engine and the action planning build these; only rrdalarm.store.database turns them
into rows. Kept apart so that importing them does not import SQLAlchemy.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from rrdalarm.model.control import Acknowledgement
from rrdalarm.model.states import State


@dataclass(frozen=True)
class PlannedDelivery:
    """A delivery to write with a check: its action, parameters and events (indexes into the check's events)."""

    id: str
    action: str
    params: Mapping[str, Any]
    events: tuple[int, ...]


@dataclass(frozen=True)
class StateView:
    """A series' stored state as the engine needs it."""

    state: State
    active_at: int | None
    fired_at: int | None
    resolved_at: int | None
    last_sent_at: int | None
    notified: frozenset[str] | None = frozenset()
    """Identities of the actions told of this firing; None when it fired before they were tracked."""
    origin: str | None = None
    clear_since: int | None = None
    """FIRING, not breaching since then (keep_firing_for)."""
    changes: tuple[int, ...] = ()
    """Times of its recent state changes (flap detection)."""
    flapping_since: int | None = None
    stale_since: int | None = None
    reason: str | None = None
    """Why it fires when not by a breach: "no_data" (no_data = "alarm")."""
    silenced_since: int | None = None
    silenced_until: int | None = None
    ack: Acknowledgement | None = None


@dataclass(frozen=True)
class StoredState:
    """A series' stored state with the last value it recorded (the Alarms now page)."""

    key: tuple[int, str, str]
    view: StateView
    value: float | None
    time: int | None


@dataclass(frozen=True)
class StateChange:
    key: tuple[int, str, str]
    state: State
    active_at: int | None
    fired_at: int | None
    resolved_at: int | None
    last_sent_at: int | None
    last_value: float | None
    last_time: int | None
    notified: frozenset[str] | None = frozenset()
    origin: str | None = None
    clear_since: int | None = None
    changes: tuple[int, ...] = ()
    flapping_since: int | None = None
    stale_since: int | None = None
    reason: str | None = None
    silenced_since: int | None = None
    silenced_until: int | None = None
    ack: Acknowledgement | None = None


@dataclass(frozen=True)
class NewEvent:
    threshold_id: int
    threshold_name: str
    series: str
    ds: str
    status: str
    kind: str
    type: str
    limit: float
    value: float | None
    time: int | None
    message: str
    severity: str = "warning"
    unit: str = ""
    details: str | None = None
    """JSON of the threshold's labels, description and runbook, for the actions (None: none given)."""
    silenced: str | None = None
    """Refs of what kept it from the actions, comma-separated (None: it goes to them)."""


@dataclass(frozen=True)
class Recorded:
    """What a check's write kept: the run, its events' ids, and the thresholds left out (id -> why)."""

    run_id: int
    event_ids: list[int]
    unrecorded: dict[int, str]


@dataclass(frozen=True)
class RunSummary:
    started_at: int
    duration_s: float
    files_checked: int
    series_checked: int
    alarms_fired: int
    firing: int
    errors: int


@dataclass(frozen=True)
class WorkerSeen:
    """A worker of a tree as a check saw it: its answer (or its reply to a ping), for the console.

    `files` and `shard_duration_s` are what it did in that check (0 and None when it only
    answered the ping); `tree_duration_s` is how long the tree's whole part of the check took.
    """

    tree: str
    worker: str
    seen_at: float
    files: int = 0
    shard_duration_s: float | None = None
    tree_duration_s: float | None = None
