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


class EventKind(StrEnum):
    """Why an event was recorded (and which actions may want it)."""

    FIRED = "fired"
    REPEAT = "repeat"
    RESOLVED = "resolved"


class EventStatus(StrEnum):
    """The status an alarm event is recorded and delivered with."""

    ALARM_FIRED = "ALARM FIRED"
    RESOLVED = "RESOLVED"


class DeliveryStatus(StrEnum):
    """Where a delivery of the outbox stands: waiting (or retrying), sent, or given up."""

    PENDING = "pending"
    SENT = "sent"
    DEAD = "dead"


class Direction(StrEnum):
    """Which way a point must cross the limit."""

    ABOVE = "above"
    BELOW = "below"
