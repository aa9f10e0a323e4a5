"""The alarm lifecycle of one series (docs/semantics.md §2b): pure, on the check's clock.

`step` takes what a check saw of a series, its stored memory and the threshold's
policy, and says its new state, the row's status, the event (if any) and the
memory to keep. With a default `Policy` it is `evaluate.decide` (section 2).
"""

from __future__ import annotations

from dataclasses import dataclass

from rrdalarm.model.states import EventKind, NoData, State, Status
from rrdalarm.rules.evaluate import rearm_elapsed

NO_DATA_REASON = "no_data"
"""`Memory.reason` of a series firing because it has no data (`no_data = "alarm"`)."""


@dataclass(frozen=True)
class Policy:
    """The threshold's fields that shape the lifecycle; the defaults are section 2."""

    rearm: int = 0
    keep_firing_for: int = 0
    no_data: NoData = NoData.KEEP
    flap_changes: int = 0
    flap_window: int = 0


@dataclass(frozen=True)
class Seen:
    """What one check saw of a series: a breach, a clear point still past the clear level, or no data."""

    breach: bool = False
    holding: bool = False
    no_data: bool = False


@dataclass(frozen=True)
class Memory:
    """What the lifecycle keeps of a series between checks."""

    state: State = State.OK
    last_sent_at: int | None = None
    clear_since: int | None = None
    changes: tuple[int, ...] = ()
    flapping_since: int | None = None
    reason: str | None = None


@dataclass(frozen=True)
class Step:
    """The outcome of one check for one series. `why` names the rule that held it (for messages)."""

    memory: Memory
    status: Status
    event: EventKind | None
    why: str = ""


def step(prev: Memory | None, seen: Seen, now: int, policy: Policy) -> Step:
    """One series, one check: section 2, then no-data, hysteresis, keep-firing and flapping."""
    before = prev or Memory()
    base = _base(before, seen, now, policy)
    if policy.flap_changes <= 0 or policy.flap_window <= 0:
        return base
    return _flapping(before, base, now, policy)


def _base(prev: Memory, seen: Seen, now: int, policy: Policy) -> Step:
    if seen.no_data:
        return _no_data(prev, now, policy)
    if prev.state is State.FIRING and prev.reason == NO_DATA_REASON:
        # Data is back: a breach is a firing of its own; anything else ends the no-data alarm.
        if seen.breach:
            return Step(_fired(prev, now), Status.ALARM_FIRED, EventKind.FIRED)
        return Step(_resolved(prev), Status.OK, EventKind.RESOLVED, "data back")
    if seen.breach:
        if prev.state is State.OK:
            return Step(_fired(prev, now), Status.ALARM_FIRED, EventKind.FIRED)
        held = Memory(State.FIRING, prev.last_sent_at, None, prev.changes, prev.flapping_since)
        if rearm_elapsed(prev.last_sent_at, now, policy.rearm):
            return Step(_replace_sent(held, now), Status.ALARM_FIRED, EventKind.REPEAT)
        return Step(held, Status.FIRING, None, "rearm")
    if prev.state is State.OK:
        return Step(prev, Status.OK, None)
    if seen.holding:
        kept = Memory(State.FIRING, prev.last_sent_at, None, prev.changes, prev.flapping_since)
        return Step(kept, Status.FIRING, None, "clear level")
    since = prev.clear_since if prev.clear_since is not None else now
    if now - since < policy.keep_firing_for:
        kept = Memory(State.FIRING, prev.last_sent_at, since, prev.changes, prev.flapping_since)
        return Step(kept, Status.FIRING, None, "keep firing")
    return Step(_resolved(prev), Status.OK, EventKind.RESOLVED)


def _no_data(prev: Memory, now: int, policy: Policy) -> Step:
    if policy.no_data is NoData.OK:
        if prev.state is State.FIRING:
            return Step(_resolved(prev), Status.OK, EventKind.RESOLVED, "no data")
        return Step(prev, Status.OK, None, "no data")
    if policy.no_data is NoData.ALARM and prev.state is State.OK:
        fired = _fired(prev, now)
        return Step(Memory(fired.state, fired.last_sent_at, None, fired.changes, fired.flapping_since,
                           NO_DATA_REASON), Status.NO_DATA, EventKind.NO_DATA)
    return Step(prev, Status.NO_DATA, None)


def _fired(prev: Memory, now: int) -> Memory:
    return Memory(State.FIRING, now, None, prev.changes, prev.flapping_since)


def _resolved(prev: Memory) -> Memory:
    return Memory(State.OK, prev.last_sent_at, None, prev.changes, prev.flapping_since)


def _replace_sent(m: Memory, now: int) -> Memory:
    return Memory(m.state, now, m.clear_since, m.changes, m.flapping_since, m.reason)


def _flapping(prev: Memory, base: Step, now: int, policy: Policy) -> Step:
    """More than `flap_changes` state changes within `flap_window`: one FLAPPING event, then quiet.

    While flapping the state still follows the data, but no fire or resolve event is made;
    once no change happened for `flap_window`, one event says the state it settled in.
    """
    m = base.memory
    changes = tuple(t for t in prev.changes if now - t < policy.flap_window)
    if m.state is not prev.state:
        changes += (now,)
    flapping = prev.flapping_since
    if flapping is None:
        if len(changes) > policy.flap_changes:
            quiet = Memory(m.state, prev.last_sent_at, m.clear_since, changes, now, m.reason)
            return Step(quiet, Status.FLAPPING, EventKind.FLAPPING, "flapping")
        return Step(_with(m, changes, None), base.status, base.event, base.why)
    if changes:
        # Still unsettled: the state changes are counted and kept, no event is made (nor sent).
        quiet = Memory(m.state, prev.last_sent_at, m.clear_since, changes, flapping, m.reason)
        return Step(quiet, Status.FLAPPING, None, "flapping")
    if m.state is State.FIRING:
        settled = Memory(m.state, now, None, (), None, m.reason)
        return Step(settled, Status.ALARM_FIRED, EventKind.FIRED, "settled")
    return Step(_with(m, (), None), Status.OK, EventKind.RESOLVED, "settled")


def _with(m: Memory, changes: tuple[int, ...], flapping_since: int | None) -> Memory:
    return Memory(m.state, m.last_sent_at, m.clear_since, changes, flapping_since, m.reason)
