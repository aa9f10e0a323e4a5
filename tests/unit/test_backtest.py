"""The pure backtest: hand-built replays, then hypothesis against a naive reference written here."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rrdalarm.editor.backtest import (
    BacktestResult,
    Check,
    Evaluation,
    backtest_series,
    evaluation_times,
    replay,
    resolve_checks,
    tally,
    window_indexes,
)
from rrdalarm.model.states import Direction, EventKind, State, Status
from rrdalarm.rules.evaluate import window_slice
from rrdalarm.rules.timespec import TimeSpecError, resolve_window

NOW = 1_700_000_040
STEP = 60
NAN = float("nan")


def series_ending_now(values: Sequence[float | None], step: int = STEP) -> tuple[list[float | None], int, int]:
    """values, first, step with the last point at NOW."""
    return list(values), NOW - (len(values) - 1) * step, step


def run(
    values: Sequence[float | None],
    *,
    start: str = "now-5min",
    end: str = "now",
    direction: Direction = Direction.ABOVE,
    limit: float = 5.0,
    repetitions: int = 0,
    rearm: int = 0,
    times: Sequence[int] | None = None,
) -> BacktestResult:
    vals, first, step = series_ending_now(values)
    checks = times if times is not None else range(first, NOW + 1, STEP)
    return backtest_series(vals, first, step, start=start, end=end, direction=direction, limit=limit,
                           repetitions=repetitions, rearm=rearm, times=checks)


# ---------------------------------------------------------------- evaluation_times


@pytest.mark.parametrize("period", range(1, 30))
@pytest.mark.parametrize("interval", [1, 2, 3, 7, 10, 29, 30, 31, 100])
def test_evaluation_times_cover_the_period_ending_now(period: int, interval: int) -> None:
    times = evaluation_times(NOW, period, interval)
    assert times[-1] == NOW
    assert times == sorted(times)
    assert all(b - a == interval for a, b in pairwise(times))
    assert all(t > NOW - period for t in times)
    assert times[0] - interval <= NOW - period  # none missing at the old end
    assert len(times) == math.ceil(period / interval)


def test_a_day_every_minute_is_1440_checks() -> None:
    times = evaluation_times(NOW, 86400, 60)
    assert len(times) == 1440 and times[0] == NOW - 86400 + 60


@pytest.mark.parametrize(("period", "interval"), [(0, 60), (60, 0), (-1, 60), (60, -5)])
def test_evaluation_times_refuse_nonsense(period: int, interval: int) -> None:
    with pytest.raises(ValueError, match="positive"):
        evaluation_times(NOW, period, interval)


# ---------------------------------------------------------------- window selection


def test_window_indexes_keep_start_exclusive_end_inclusive() -> None:
    # Points at 0, 60, ..., 540 (offset by NOW): (NOW+60, NOW+180] holds the points at 120 and 180.
    assert window_indexes(NOW, 60, 10, NOW + 60, NOW + 180) == (2, 4)
    assert window_indexes(NOW, 60, 10, NOW + 59, NOW + 179) == (1, 3)
    assert window_indexes(NOW, 60, 10, NOW - 1000, NOW + 10_000) == (0, 10)
    assert window_indexes(NOW, 60, 10, NOW + 10_000, NOW + 20_000) == (10, 10)
    assert window_indexes(NOW, 60, 10, NOW - 2000, NOW - 1000) == (0, 0)
    assert window_indexes(NOW, 60, 0, NOW - 2000, NOW + 1000) == (0, 0)


@given(
    first=st.integers(-1000, 1000), step=st.integers(1, 50), count=st.integers(0, 30),
    start=st.integers(-2000, 2000), length=st.integers(1, 2000),
)
def test_window_indexes_match_brute_force_and_window_slice(
    first: int, step: int, count: int, start: int, length: int
) -> None:
    end = start + length
    lo, hi = window_indexes(first, step, count, start, end)
    inside = [i for i in range(count) if start < first + i * step <= end]
    assert list(range(lo, hi)) == inside
    nlo, nhi = window_slice(first, step, start, end)
    assert list(range(lo, hi)) == list(range(min(nlo, count), min(nhi, count)))


# ---------------------------------------------------------------- hand-built replays


def test_a_single_spike_fires_once_and_resolves_when_it_leaves_the_window() -> None:
    values: list[float | None] = [1.0] * 30
    values[20] = 9.0  # at NOW - 9 min; now-5min windows hold it for checks NOW-9min .. NOW-5min
    r = run(values)
    assert r.fires == (NOW - 9 * 60,)
    assert (r.repeats, r.resolves, r.firing_at_end) == (4, 1, False)
    assert r.evaluations == 30 and r.no_data == 0


@pytest.mark.parametrize(("rearm", "repeats"), [(0, 4), (60, 4), (61, 2), (120, 2), (121, 1), (240, 1),
                                                (241, 0), (10**6, 0)])
def test_rearm_spaces_repeats(rearm: int, repeats: int) -> None:
    values: list[float | None] = [1.0] * 30
    values[20] = 9.0  # breaching for 5 checks: one fire, then 4 checks that may repeat
    r = run(values, rearm=rearm)
    assert (len(r.fires), r.repeats, r.resolves) == (1, repeats, 1)


def test_repetitions_need_consecutive_crossing_points() -> None:
    # Runs of 2, then 3: with repetitions=3 only the second run breaches.
    values: list[float | None] = [1, 1, 1, 1, 1, 9, 9, 1, 1, 1, 1, 1, 1, 1, 9, 9, 9, 1, 1, 1, 1, 1, 1, 1, 1]
    assert run(values, repetitions=3).fires == (NOW - 8 * 60,)  # the check that first sees the third 9
    assert len(run(values, repetitions=2).fires) == 2
    assert run(values, repetitions=4).fires == ()
    assert len(run(values, repetitions=0).fires) == len(run(values, repetitions=1).fires) == 2


def test_unknown_points_neither_count_nor_reset_a_run() -> None:
    assert run([1, 9, None, 9, NAN, 9], repetitions=3, start="now-6min").fires == (NOW,)
    assert run([1, 9, 1, 9, NAN, 9], repetitions=3, start="now-6min").fires == ()


def test_below_and_equality() -> None:
    assert run([9, 9, 2, 9], direction=Direction.BELOW, limit=3).fires == (NOW - 60,)
    assert run([5, 5, 5, 5]).fires == ()
    assert run([5, 5, 5, 5], direction=Direction.BELOW).fires == ()


def test_no_data_never_changes_the_state() -> None:
    # Firing, then a gap longer than the window (NO DATA checks), then the spike is still not over.
    values: list[float | None] = [1, 9, *([None] * 10), 9, 9, 1, 1, 1, 1, 1, 1]
    evals = list(replay(*series_ending_now(values), resolve_checks("now-3min", "now", range(
        NOW - 19 * 60, NOW + 1, 60)), Direction.ABOVE, 5.0, 0, 10**6))
    statuses = [e.status for e in evals]
    assert Status.NO_DATA in statuses
    assert [e.event for e in evals if e.event is not None] == [EventKind.FIRED, EventKind.RESOLVED]
    gap = [e for e in evals if e.status is Status.NO_DATA]
    assert all(e.state is State.FIRING and e.event is None for e in gap)
    assert tally(evals).no_data == len(gap)


def test_all_unknown_is_only_no_data() -> None:
    r = run([None, NAN, None])
    assert r == BacktestResult((), 0, 0, False, 3, 3)
    assert run([]).evaluations == 0


def test_firing_at_end_and_breach_details() -> None:
    vals, first, step = series_ending_now([1, 6, 7, 8])
    evals = list(replay(vals, first, step, resolve_checks("now-1h", "now", [NOW]), Direction.ABOVE, 5, 3, 0))
    assert evals == [Evaluation(NOW, Status.ALARM_FIRED, State.FIRING, EventKind.FIRED, evals[0].breach)]
    breach = evals[0].breach
    assert breach is not None and (breach.value, breach.time, breach.run) == (8.0, NOW, 3)
    assert tally(evals).firing_at_end


def test_held_back_by_rearm_is_status_firing() -> None:
    vals, first, step = series_ending_now([9.0] * 10)
    evals = list(replay(vals, first, step, resolve_checks("now-2min", "now", range(NOW - 120, NOW + 1, 60)),
                        Direction.ABOVE, 5, 0, 100))
    assert [(e.status, e.event) for e in evals] == [
        (Status.ALARM_FIRED, EventKind.FIRED), (Status.FIRING, None), (Status.ALARM_FIRED, EventKind.REPEAT)]


def test_window_not_ending_now() -> None:
    # now-10min .. now-5min: a spike at NOW is seen only by checks five minutes later.
    values: list[float | None] = [1.0] * 40
    values[19] = 9.0  # at NOW; the points go on to NOW + 20min
    later = [NOW + k * 60 for k in range(12)]
    r = backtest_series(values, NOW - 19 * 60, 60, start="now-10min", end="now-5min", direction=Direction.ABOVE,
                        limit=5, repetitions=0, rearm=0, times=later)
    assert r.fires == (NOW + 300,)
    assert r.resolves == 1  # at NOW + 600 the spike is at the window's (exclusive) start
    # Without points after NOW the later checks see nothing: NO DATA keeps it FIRING.
    r = backtest_series(values[:20], NOW - 19 * 60, 60, start="now-10min", end="now-5min",
                        direction=Direction.ABOVE, limit=5, repetitions=0, rearm=0, times=later)
    assert (r.resolves, r.firing_at_end, r.no_data) == (0, True, 2)


def test_bad_window_raises_timespec_error() -> None:
    with pytest.raises(TimeSpecError):
        resolve_checks("1700000000", "now", [1_600_000_000])


def test_nonpositive_step_is_refused() -> None:
    with pytest.raises(ValueError, match="step"):
        list(replay([1.0], NOW, 0, [Check(NOW, NOW - 60, NOW)], Direction.ABOVE, 0, 0, 0))


# ---------------------------------------------------------------- against a naive reference


@dataclass
class Ref:
    trace: list[tuple[int, str, str | None, float | None, int | None]]  # time, status, event, value, at
    fires: list[int]
    repeats: int
    resolves: int
    firing: bool
    no_data: int


def reference(values: Sequence[float | None], first: int, step: int, start: str, end: str, above: bool,
              limit: float, repetitions: int, rearm: int, times: Sequence[int]) -> Ref:
    """docs/semantics.md §2-3 read literally: straightforward loops, nothing from rrdalarm.rules.evaluate."""
    state, last_sent = "OK", 0
    out = Ref([], [], 0, 0, False, 0)
    for t in times:
        ws, we = resolve_window(start, end, t)
        known = [(first + i * step, v) for i, v in enumerate(values)
                 if ws < first + i * step <= we and v is not None and not math.isnan(v)]
        if not known:
            out.no_data += 1
            out.trace.append((t, "NO DATA", None, None, None))
            continue
        run_length, breach = 0, None
        newest: tuple[int, float] | None = None
        for when, v in reversed(known):
            if (v > limit) if above else (v < limit):
                if run_length == 0:
                    newest = (when, v)
                run_length += 1
                if run_length >= max(1, repetitions):
                    breach = newest
                    break
            else:
                run_length = 0
        value, at = (breach[1], breach[0]) if breach else (None, None)
        if breach is not None and state == "OK":
            state, last_sent = "FIRING", t
            out.fires.append(t)
            out.trace.append((t, "ALARM FIRED", "fired", value, at))
        elif breach is not None and (rearm == 0 or t - last_sent >= rearm):
            last_sent = t
            out.repeats += 1
            out.trace.append((t, "ALARM FIRED", "repeat", value, at))
        elif breach is not None:
            out.trace.append((t, "FIRING", None, value, at))
        elif state == "FIRING":
            state = "OK"
            out.resolves += 1
            out.trace.append((t, "OK", "resolved", None, None))
        else:
            out.trace.append((t, "OK", None, None, None))
    out.firing = state == "FIRING"
    return out


point = st.one_of(st.none(), st.just(NAN), st.sampled_from([0.0, 1.0, 2.0, 3.0, 4.0, 5.0]),
                  st.floats(-10, 10, allow_nan=False))
windows = st.one_of(
    st.tuples(st.integers(1, 20).map(lambda n: f"now-{n}min"), st.just("now")),
    st.tuples(st.integers(1, 1200).map(lambda n: f"now-{n}"), st.integers(0, 600).map(lambda n: f"now-{n}")),
    st.tuples(st.integers(1, 1200).map(lambda n: f"end-{n}s"), st.integers(0, 300).map(lambda n: f"now-{n}s")),
    st.tuples(st.integers(60, 1200).map(lambda n: f"now-{n}s"), st.integers(1, 600).map(lambda n: f"start+{n}s")),
)


@settings(max_examples=400, deadline=None)
@given(
    values=st.lists(point, max_size=40),
    step=st.sampled_from([1, 7, 60, 300]),
    offset=st.integers(-3000, 3000),
    window=windows,
    above=st.booleans(),
    limit=st.sampled_from([0.0, 2.0, 2.5, 3.0, 5.0, -1.0]),
    repetitions=st.integers(0, 5),
    rearm=st.sampled_from([0, 1, 59, 60, 61, 120, 300, 3600]),
    period=st.integers(1, 4000),
    interval=st.sampled_from([1, 13, 30, 60, 61, 300]),
)
def test_replay_matches_the_reference(
    values: list[float | None], step: int, offset: int, window: tuple[str, str], above: bool, limit: float,
    repetitions: int, rearm: int, period: int, interval: int,
) -> None:
    first = NOW - (len(values) - 1) * step + offset
    start, end = window
    try:
        resolve_window(start, end, NOW)
    except TimeSpecError:
        return  # start not before end: not a valid threshold
    times = evaluation_times(NOW, period, interval)[-300:]
    direction = Direction.ABOVE if above else Direction.BELOW
    checks = resolve_checks(start, end, times)
    evals = list(replay(values, first, step, checks, direction, limit, repetitions, rearm))
    ref = reference(values, first, step, start, end, above, limit, repetitions, rearm, times)
    got_trace = [
        (e.time, e.status.value, e.event.value if e.event else None,
         e.breach.value if e.breach else None, e.breach.time if e.breach else None)
        for e in evals
    ]
    assert got_trace == ref.trace
    result = backtest_series(values, first, step, start=start, end=end, direction=direction, limit=limit,
                             repetitions=repetitions, rearm=rearm, times=times)
    assert result == tally(evals)
    assert (list(result.fires), result.repeats, result.resolves, result.firing_at_end, result.no_data) == (
        ref.fires, ref.repeats, ref.resolves, ref.firing, ref.no_data)
    assert result.evaluations == len(times)
