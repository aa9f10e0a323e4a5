"""The words every stage shares: alarm states, report statuses, event kinds and statuses, delivery statuses.

Kept apart from the stages so that config, sources, the engine, the store, the
actions and the faces can all import them without importing each other.
"""

from __future__ import annotations

from enum import StrEnum


class State(StrEnum):
    """Per-series alarm state kept between checks."""

    OK = "OK"
    FIRING = "FIRING"


class Status(StrEnum):
    """What a report row says about a series in one check."""

    OK = "OK"
    ALARM_FIRED = "ALARM FIRED"
    FIRING = "FIRING"
    ERROR = "ERROR"
    NO_DATA = "NO DATA"
    STALE = "STALE"
    FLAPPING = "FLAPPING"


class EventKind(StrEnum):
    """Why an event was recorded (and which actions may want it)."""

    FIRED = "fired"
    REPEAT = "repeat"
    RESOLVED = "resolved"
    NO_DATA = "no_data"
    STALE = "stale"
    FLAPPING = "flapping"
    TEST = "test"
    """A test notification (`rrdalarm action test`): no alarm, never a firing."""
    ACK = "ack"
    """Someone acknowledged a FIRING series (`rrdalarm ack`)."""
    DIGEST = "digest"
    """The events of one check past a target's `[delivery] max_per_check`, summed up."""


class EventStatus(StrEnum):
    """The status an alarm event is recorded and delivered with."""

    ALARM_FIRED = "ALARM FIRED"
    RESOLVED = "RESOLVED"
    NO_DATA = "NO DATA"
    STALE = "STALE"
    FLAPPING = "FLAPPING"
    TEST = "TEST"
    ACKNOWLEDGED = "ACKNOWLEDGED"
    DIGEST = "DIGEST"


class DeliveryStatus(StrEnum):
    """Where a delivery of the outbox stands: waiting (or retrying), sent, or given up."""

    PENDING = "pending"
    SENT = "sent"
    DEAD = "dead"


class Severity(StrEnum):
    """How bad a threshold's alarm is: carried by rows, events and deliveries."""

    CRITICAL = "critical"
    WARNING = "warning"
    INFO = "info"


def severity_rank(value: str) -> int:
    """0 for critical, 1 for warning, 2 for info, 3 for anything else: sorts the worst first."""
    order = [s.value for s in Severity]
    return order.index(value) if value in order else len(order)


class NoData(StrEnum):
    """What a series with no known point in its window does to its state."""

    KEEP = "keep"
    OK = "ok"
    ALARM = "alarm"


class Direction(StrEnum):
    """Which way a point must cross the limit."""

    ABOVE = "above"
    BELOW = "below"
