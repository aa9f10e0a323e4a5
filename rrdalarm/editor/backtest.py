"""Replay a threshold over one series' past points: what the engine would have done check by check.

Pure, like `evaluate`: points, the threshold's rule and the check times come in
as arguments; nothing here does I/O or reads a clock. Each replayed check takes
the points of its window (`start < time <= end`, as the RRD source keeps them),
asks `evaluate.find_breach` whether they breach and `evaluate.decide` what the
per-series state machine does with that, so the rules stay the engine's own.
The replay starts in state OK, with nothing sent yet.

Per check the work is O(1) index arithmetic plus, only when the window holds
enough crossing points to possibly breach, one `find_breach` walk that starts
at the newest crossing point of the window.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import accumulate
from typing import NamedTuple, cast

from rrdalarm.model.definitions import Tuning
from rrdalarm.model.states import Direction, EventKind, State, Status
from rrdalarm.rules import timespec
from rrdalarm.rules.evaluate import Breach, Criterion, Value, crosses, find_breach, is_unknown, needed_run, window_slice
from rrdalarm.rules.lifecycle import Memory, Policy, Seen
from rrdalarm.rules.lifecycle import step as lifecycle_step

__all__ = [
    "BacktestResult",
    "Check",
    "Evaluation",
    "backtest_series",
    "evaluation_times",
    "replay",
    "resolve_checks",
    "tally",
    "window_indexes",
]


class Check(NamedTuple):
    """One check that would have run: its time and the window it resolved to then."""

    time: int
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class Evaluation:
    """What one replayed check did to the series.

    `status` is OK, ALARM FIRED, FIRING (held back by re-arm) or NO DATA;
    `state` is the series' state after the check; `event` is the event the
    engine would have recorded, if any.
    """

    time: int
    status: Status
    state: State
    event: EventKind | None
    breach: Breach | None = None


@dataclass(frozen=True)
class BacktestResult:
    """The replay of one series, summed up.

    `fires` holds the check times of every OK -> FIRING transition; `repeats`
    counts re-arm repeats (FIRING and still breaching, actions run again);
    `no_data` counts checks that saw no known point (they change nothing).
    """

    fires: tuple[int, ...]
    repeats: int
    resolves: int
    firing_at_end: bool
    evaluations: int
    no_data: int


def evaluation_times(now: int, period: int, interval: int) -> list[int]:
    """Check times every `interval` seconds in (now - period, now], oldest first; the last is `now`."""
    if period <= 0 or interval <= 0:
        raise ValueError(f"period and interval must be positive, not {period} and {interval}")
    count = -(-period // interval)
    return [now - k * interval for k in range(count - 1, -1, -1)]


def resolve_checks(start: str, end: str, times: Iterable[int]) -> list[Check]:
    """Each check time with the window `start`/`end` resolves to at that time (TimeSpecError if it cannot)."""
    return [Check(t, *timespec.resolve_window(start, end, t)) for t in times]


def window_indexes(first: int, step: int, count: int, start: int, end: int) -> tuple[int, int]:
    """Indexes [lo, hi) of the points at `first + i * step` (i < count) with start < time <= end.

    The same points the RRD source keeps: rrdtool.fetch aligns the start down to
    the step and labels rows at `start + step`, and rows after `end` are dropped.
    """
    lo, hi = window_slice(first, step, start, end)
    return min(count, lo), min(count, hi)


def _prefix_counts(flags: Iterable[bool]) -> list[int]:
    """counts[i] = how many of the first i flags are true."""
    return [0, *accumulate(int(f) for f in flags)]


def _newest_before(flags: Sequence[bool]) -> list[int]:
    """newest[i] = the largest j < i with flags[j] true, or -1."""
    out = [-1] * (len(flags) + 1)
    last = -1
    for i, flag in enumerate(flags):
        if flag:
            last = i
        out[i + 1] = last
    return out


def replay(
    values: Sequence[Value],
    first: int,
    step: int,
    checks: Iterable[Check],
    direction: Direction,
    limit: float,
    repetitions: int,
    rearm: int,
    tuning: Tuning | None = None,
) -> Iterator[Evaluation]:
    """Run the per-series lifecycle over `checks` (oldest first); values[i] is the point at first + i*step.

    The same `lifecycle.step` as the check, over the same breach rule. One difference: a
    replay cannot read a file's past last update, so STALE (`stale_after`) is judged from the
    points alone: no known point within `stale_after` before the check.
    """
    if step <= 0:
        raise ValueError(f"step must be positive, not {step}")
    tu = tuning or Tuning()
    c = Criterion(direction, limit, repetitions, tu.within, tu.scale, tu.clear_value)
    policy = Policy(rearm, tu.keep_firing_for, tu.no_data, tu.flap_changes, tu.flap_window)
    n = len(values)
    known_flags = [not is_unknown(v) for v in values]
    cross_flags = [k and crosses(cast(float, v) * c.scale, direction, limit)
                   for k, v in zip(known_flags, values, strict=True)]
    known = _prefix_counts(known_flags)
    crossing = _prefix_counts(cross_flags)
    newest_crossing = _newest_before(cross_flags)
    newest_point = _newest_before(known_flags)
    need = needed_run(repetitions)
    memory: Memory | None = None
    for check in checks:
        if tu.stale_after:
            s_lo, s_hi = window_indexes(first, step, n, check.time - tu.stale_after, check.time)
            if known[s_hi] == known[s_lo]:
                yield Evaluation(check.time, Status.STALE, memory.state if memory else State.OK, None)
                continue
        lo, hi = window_indexes(first, step, n, check.start, check.end)
        breach = None
        if known[hi] == known[lo]:
            seen = Seen(no_data=True)
        else:
            # Fewer crossing points than the rule needs cannot breach; without `within`, points
            # newer than the newest crossing one cannot be part of a run, so the walk starts there.
            if crossing[hi] - crossing[lo] >= need:
                top = hi if c.within else newest_crossing[hi] + 1
                breach = find_breach(values[lo:top], first + lo * step, step, direction, limit, repetitions,
                                     c.within, c.scale)
            newest = cast(float, values[newest_point[hi]])
            holding = c.clear_value is not None and crosses(newest * c.scale, direction, c.clear_value)
            seen = Seen(breach is not None, holding and breach is None)
        done = lifecycle_step(memory, seen, check.time, policy)
        memory = done.memory
        yield Evaluation(check.time, done.status, memory.state, done.event, breach)


def tally(evaluations: Iterable[Evaluation]) -> BacktestResult:
    """Sum up a replay."""
    fires: list[int] = []
    repeats = resolves = count = no_data = 0
    state = State.OK
    for e in evaluations:
        count += 1
        if e.event is EventKind.FIRED:
            fires.append(e.time)
        elif e.event is EventKind.REPEAT:
            repeats += 1
        elif e.event is EventKind.RESOLVED:
            resolves += 1
        no_data += e.status is Status.NO_DATA
        state = e.state
    return BacktestResult(tuple(fires), repeats, resolves, state is State.FIRING, count, no_data)


def backtest_series(
    values: Sequence[Value],
    first: int,
    step: int,
    *,
    start: str,
    end: str,
    direction: Direction,
    limit: float,
    repetitions: int,
    rearm: int,
    times: Iterable[int],
) -> BacktestResult:
    """Replay one series at `times` with the window `start`/`end` (AT-style, resolved at each time)."""
    checks = resolve_checks(start, end, times)
    return tally(replay(values, first, step, checks, direction, limit, repetitions, rearm))
