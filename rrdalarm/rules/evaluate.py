"""Pure evaluation: points and a threshold's rule in, breach and state decisions out.

Sits between the sources (which produce points) and the engine (which stores
states and runs actions). Nothing here does I/O or reads a clock: the check's
time is always an argument.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from rrdalarm.model.records import StateChange, StateView
from rrdalarm.model.states import Direction, EventKind, State, Status

Value = float | None
"""A point's value; None (or NaN) is unknown."""


@dataclass(frozen=True)
class Breach:
    """The newest run of crossing points long enough to breach."""

    value: float
    time: int
    run: int


def window_slice(first: int, step: int, start: int, end: int) -> tuple[int, int]:
    """Indexes [lo, hi) of the points at `first + i * step` with start < time <= end (hi may exceed the data)."""
    lo = max(0, (start - first) // step + 1)
    hi = max(lo, (end - first) // step + 1)
    return lo, hi


def crosses(value: float, direction: Direction, limit: float) -> bool:
    """Strict comparison: a point equal to the limit never crosses."""
    if direction is Direction.ABOVE:
        return value > limit
    return value < limit


def needed_run(repetitions: int) -> int:
    """Consecutive crossing points needed: 0 and 1 both mean one, as in the original."""
    return max(1, repetitions)


def is_unknown(value: Value) -> bool:
    return value is None or math.isnan(value)


@dataclass(frozen=True, slots=True)
class Criterion:
    """A threshold's rule over one series' points (section 2, with §2b's `within`, `scale`, `clear_value`)."""

    direction: Direction
    limit: float
    repetitions: int = 0
    within: int = 0
    scale: float = 1.0
    clear_value: float | None = None


def find_breach(
    values: Sequence[Value], first: int, step: int, direction: Direction, limit: float, repetitions: int,
    within: int = 0, scale: float = 1.0,
) -> Breach | None:
    """Walk newest to oldest; unknown points are skipped, a non-crossing point ends a run.

    `values` are in time order; values[i] is the point at `first + i * step`.
    """
    if within > 0 or scale != 1.0:
        return _find_breach_tuned(values, first, step, direction, limit, repetitions, within, scale)
    need = needed_run(repetitions)
    above = direction is Direction.ABOVE
    run = 0
    newest = 0
    for i in range(len(values) - 1, -1, -1):
        v = values[i]
        if v is None or v != v:  # unknown: neither counts nor resets
            continue
        if (v > limit) if above else (v < limit):
            if run == 0:
                newest = i
            run += 1
            if run >= need:
                return Breach(value=float(values[newest]), time=first + newest * step, run=run)  # type: ignore[arg-type]
        else:
            run = 0
    return None


def _find_breach_tuned(values: Sequence[Value], first: int, step: int, direction: Direction, limit: float,
                       repetitions: int, within: int, scale: float) -> Breach | None:
    """find_breach over scaled values; with `within` > 0, at least `repetitions` of the newest `within`
    known points must cross (M of N), the alarm's point being the newest crossing one."""
    need = needed_run(repetitions)
    run = 0
    seen = 0
    newest = -1
    for i in range(len(values) - 1, -1, -1):
        v = values[i]
        if v is None or v != v:
            continue
        seen += 1
        if crosses(v * scale, direction, limit):
            newest = i if newest < 0 else newest
            run += 1
            if run >= need:
                return Breach(value=float(values[newest]) * scale, time=first + newest * step,  # type: ignore[arg-type]
                              run=run)
        elif within <= 0:
            run, newest = 0, -1
        if within > 0 and seen >= within:
            return None
    return None


def crossing_count(values: Sequence[Value], c: Criterion) -> tuple[int, int]:
    """(crossing points, points considered) as the breach rule counts them, for messages.

    With `within`: the crossing points among the newest `within` known points. Without: the
    run of crossing points ending at the newest known point, out of `max(1, repetitions)`.
    """
    count = seen = 0
    for i in range(len(values) - 1, -1, -1):
        v = values[i]
        if v is None or v != v:
            continue
        seen += 1
        if crosses(v * c.scale, c.direction, c.limit):
            count += 1
        elif c.within <= 0:
            break
        if c.within > 0 and seen >= c.within:
            break
    return count, (min(c.within, seen) if c.within > 0 else needed_run(c.repetitions))


def newest_known(values: Sequence[Value], first: int, step: int) -> tuple[int, float] | None:
    """(time, value) of the newest known point, or None when every point is unknown."""
    for i in range(len(values) - 1, -1, -1):
        v = values[i]
        if not is_unknown(v):
            return first + i * step, float(v)  # type: ignore[arg-type]
    return None


@dataclass(frozen=True, slots=True)
class Summary:
    """One series' points with what every threshold over them needs first.

    Computed once per series and window, so that several thresholds over the
    same data cost a comparison each unless the limit is actually crossed.
    """

    values: Sequence[Value]
    first: int
    step: int
    low: float | None
    high: float | None
    newest: tuple[int, float] | None


def summarize(values: Sequence[Value], first: int, step: int) -> Summary:
    if values and None not in values:
        # The usual window, every point known: C-level scans only, no list of the known points.
        # A NaN makes the sum NaN (so does inf - inf): those take the general path below.
        total = sum(values)  # type: ignore[arg-type]
        if total == total:
            newest = (first + (len(values) - 1) * step, float(values[-1]))  # type: ignore[arg-type]
            return Summary(values, first, step, min(values), max(values), newest)  # type: ignore[type-var]
    known = [v for v in values if v is not None and v == v]
    if not known:
        return Summary(values, first, step, None, None, None)
    return Summary(values, first, step, min(known), max(known), newest_known(values, first, step))


def breach_of(summary: Summary, c: Criterion) -> Breach | None:
    """find_breach, skipped when no known point crosses the limit at all."""
    if summary.high is None or summary.low is None:
        return None
    # scale > 0: the scaled extremes are the extremes of the scaled points.
    if summary.high * c.scale <= c.limit if c.direction is Direction.ABOVE else summary.low * c.scale >= c.limit:
        return None
    return find_breach(summary.values, summary.first, summary.step, c.direction, c.limit, c.repetitions,
                       c.within, c.scale)


@dataclass(frozen=True)
class Decision:
    """What one check does to one series: its new state, row status and event."""

    state: State
    status: Status
    event: EventKind | None


def rearm_elapsed(last_sent_at: int | None, now: int, rearm: int) -> bool:
    """True when a still-firing alarm may act again (rearm 0: on every check)."""
    if rearm <= 0 or last_sent_at is None:
        return True
    return now - last_sent_at >= rearm


def decide(
    previous: State, breaching: bool, last_sent_at: int | None, now: int, rearm: int
) -> Decision:
    """State transition for a series that was read successfully in this check."""
    if breaching:
        if previous is State.OK:
            return Decision(State.FIRING, Status.ALARM_FIRED, EventKind.FIRED)
        if rearm_elapsed(last_sent_at, now, rearm):
            return Decision(State.FIRING, Status.ALARM_FIRED, EventKind.REPEAT)
        return Decision(State.FIRING, Status.FIRING, None)
    if previous is State.FIRING:
        return Decision(State.OK, Status.OK, EventKind.RESOLVED)
    return Decision(State.OK, Status.OK, None)


def transition(key: tuple[int, str, str], prev: StateView | None, event: EventKind, now: int,
               value: float | None, time: int | None, told: frozenset[str], origin: str | None) -> StateChange:
    """The stored state after `event` (from `decide`), with its timestamps, on the check's clock `now`.

    FIRED starts a firing (active, fired and sent now); REPEAT keeps it and records the
    send, adding whom it told; RESOLVED ends it and forgets whom the firing told.
    """
    if event is EventKind.FIRED:
        return StateChange(key, State.FIRING, now, now, prev.resolved_at if prev else None, now, value, time,
                           told, origin)
    if prev is None:
        raise ValueError(f"{event.value} of a series with no stored state")
    if event is EventKind.RESOLVED:
        return StateChange(key, State.OK, prev.active_at, prev.fired_at, now, prev.last_sent_at, value, time,
                           frozenset(), origin)
    # A firing from before notifications were tracked (None) stays untracked.
    notified = None if prev.notified is None else prev.notified | told
    return StateChange(key, State.FIRING, prev.active_at, prev.fired_at, prev.resolved_at, now, value, time,
                       notified, origin)
