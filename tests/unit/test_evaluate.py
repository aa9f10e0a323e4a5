"""The run rule and state transitions, against a deliberately naive reference."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rrdalarm.model.records import StateView
from rrdalarm.model.states import Direction, EventKind, State, Status
from rrdalarm.rules.evaluate import crosses, decide, find_breach, needed_run, newest_known, rearm_elapsed, transition

NaN = float("nan")


def naive_breach(
    values: list[float | None], first: int, step: int, direction: str, limit: float, reps: int
) -> tuple[float, int] | None:
    """Reference: collect runs oldest to newest, ignoring unknowns, then take the newest long one."""
    need = reps if reps > 1 else 1
    known = [(first + i * step, v) for i, v in enumerate(values) if v is not None and not math.isnan(v)]
    runs: list[list[tuple[int, float]]] = []
    current: list[tuple[int, float]] = []
    for t, v in known:
        hit = v > limit if direction == "above" else v < limit
        if hit:
            current.append((t, v))
        else:
            if current:
                runs.append(current)
            current = []
    if current:
        runs.append(current)
    # The walk goes from the newest point back and stops at the first run reaching `need`:
    # in a long run, that is when `need` points of it (counted from its newest end) are seen.
    for run in reversed(runs):
        if len(run) >= need:
            t, v = run[-1]
            return v, t
    return None


values_st = st.lists(
    st.one_of(
        st.none(),
        st.just(NaN),
        st.integers(min_value=-5, max_value=5).map(float),
        st.floats(min_value=-1e9, max_value=1e9, allow_nan=False),
    ),
    max_size=40,
)


@settings(max_examples=800, deadline=None)
@given(
    values=values_st,
    direction=st.sampled_from(["above", "below"]),
    limit=st.integers(min_value=-3, max_value=3).map(float),
    reps=st.integers(min_value=0, max_value=6),
    first=st.integers(min_value=0, max_value=2_000_000_000),
    step=st.sampled_from([1, 60, 300]),
)
def test_find_breach_matches_naive_reference(
    values: list[float | None], direction: str, limit: float, reps: int, first: int, step: int
) -> None:
    got = find_breach(values, first, step, Direction(direction), limit, reps)
    want = naive_breach(values, first, step, direction, limit, reps)
    if want is None:
        assert got is None
    else:
        assert got is not None
        assert (got.value, got.time) == want
        assert got.run == needed_run(reps)


@pytest.mark.parametrize(
    ("direction", "value", "limit", "expected"),
    [
        ("above", 10.0, 10.0, False),
        ("above", 10.000001, 10.0, True),
        ("below", 10.0, 10.0, False),
        ("below", 9.999, 10.0, True),
        ("above", -1.0, 0.0, False),
        ("below", -1.0, 0.0, True),
    ],
)
def test_crossing_is_strict(direction: str, value: float, limit: float, expected: bool) -> None:
    assert crosses(value, Direction(direction), limit) is expected


@pytest.mark.parametrize(("reps", "need"), [(0, 1), (1, 1), (2, 2), (3, 3)])
def test_repetitions_zero_and_one_mean_one(reps: int, need: int) -> None:
    assert needed_run(reps) == need


def test_equality_never_breaches() -> None:
    assert find_breach([5.0, 5.0, 5.0], 0, 60, Direction.ABOVE, 5.0, 0) is None
    assert find_breach([5.0, 5.0, 5.0], 0, 60, Direction.BELOW, 5.0, 0) is None


def test_unknown_points_neither_count_nor_reset() -> None:
    vals: list[float | None] = [9.0, None, 9.0, NaN, 9.0]
    b = find_breach(vals, 100, 60, Direction.ABOVE, 5.0, 3)
    assert b is not None
    assert (b.value, b.time, b.run) == (9.0, 100 + 4 * 60, 3)


def test_non_crossing_point_ends_the_run() -> None:
    assert find_breach([9.0, 9.0, 1.0, 9.0], 0, 60, Direction.ABOVE, 5.0, 3) is None


def test_older_run_still_breaches_and_reports_its_newest_point() -> None:
    b = find_breach([9.0, 8.0, 7.0, 1.0, 9.0], 0, 60, Direction.ABOVE, 5.0, 3)
    assert b is not None
    assert (b.value, b.time) == (7.0, 120)


def test_breach_value_is_newest_point_of_the_run() -> None:
    b = find_breach([1.0, 6.0, 7.0, 8.0], 1000, 60, Direction.ABOVE, 5.0, 2)
    assert b is not None
    assert (b.value, b.time) == (8.0, 1180)


def test_empty_and_all_unknown() -> None:
    assert find_breach([], 0, 60, Direction.ABOVE, 0.0, 0) is None
    assert find_breach([None, NaN], 0, 60, Direction.BELOW, 0.0, 0) is None
    assert newest_known([None, NaN], 0, 60) is None
    assert newest_known([], 0, 60) is None


def test_newest_known_skips_trailing_unknowns() -> None:
    assert newest_known([1.0, 2.0, None, NaN], 100, 10) == (110, 2.0)


# ---------------------------------------------------------------- transitions


def test_ok_to_firing_fires() -> None:
    d = decide(State.OK, True, None, 1000, 600)
    assert (d.state, d.status, d.event) == (State.FIRING, Status.ALARM_FIRED, EventKind.FIRED)


def test_firing_held_back_by_rearm() -> None:
    d = decide(State.FIRING, True, 1000, 1599, 600)
    assert (d.state, d.status, d.event) == (State.FIRING, Status.FIRING, None)


def test_firing_repeats_once_rearm_has_passed() -> None:
    d = decide(State.FIRING, True, 1000, 1600, 600)
    assert (d.state, d.status, d.event) == (State.FIRING, Status.ALARM_FIRED, EventKind.REPEAT)


def test_rearm_zero_repeats_on_every_check() -> None:
    d = decide(State.FIRING, True, 1000, 1000, 0)
    assert d.event is EventKind.REPEAT


def test_firing_to_ok_resolves() -> None:
    d = decide(State.FIRING, False, 1000, 2000, 600)
    assert (d.state, d.status, d.event) == (State.OK, Status.OK, EventKind.RESOLVED)


def test_ok_stays_ok_quietly() -> None:
    d = decide(State.OK, False, None, 2000, 600)
    assert (d.state, d.status, d.event) == (State.OK, Status.OK, None)


@given(
    last=st.integers(min_value=0, max_value=10**9),
    delta=st.integers(min_value=-(10**6), max_value=10**6),
    rearm=st.integers(min_value=0, max_value=10**5),
)
def test_rearm_elapsed_property(last: int, delta: int, rearm: int) -> None:
    now = last + delta
    expected = rearm == 0 or delta >= rearm
    assert rearm_elapsed(last, now, rearm) is expected
    assert rearm_elapsed(None, now, rearm) is True


@given(
    previous=st.sampled_from(list(State)),
    breaching=st.booleans(),
    last=st.one_of(st.none(), st.integers(min_value=0, max_value=10**6)),
    now=st.integers(min_value=0, max_value=2 * 10**6),
    rearm=st.integers(min_value=0, max_value=10**4),
)
def test_decide_invariants(previous: State, breaching: bool, last: int | None, now: int, rearm: int) -> None:
    d = decide(previous, breaching, last, now, rearm)
    assert d.state is (State.FIRING if breaching else State.OK)
    # ALARM FIRED exactly when an event that fires is recorded.
    assert (d.status is Status.ALARM_FIRED) == (d.event in (EventKind.FIRED, EventKind.REPEAT))
    assert (d.event is EventKind.RESOLVED) == (previous is State.FIRING and not breaching)
    assert (d.event is EventKind.FIRED) == (previous is State.OK and breaching)


@settings(max_examples=500, deadline=None)
@given(
    values=values_st,
    direction=st.sampled_from(["above", "below"]),
    limit=st.integers(min_value=-3, max_value=3).map(float),
    reps=st.integers(min_value=0, max_value=6),
)
def test_summary_shortcut_agrees_with_the_full_walk(
    values: list[float | None], direction: str, limit: float, reps: int
) -> None:
    from rrdalarm.rules.evaluate import Criterion, breach_of, summarize

    summary = summarize(values, 1000, 60)
    assert breach_of(summary, Criterion(Direction(direction), limit, reps)) == find_breach(
        values, 1000, 60, Direction(direction), limit, reps
    )
    assert summary.newest == newest_known(values, 1000, 60)
    known = [v for v in values if v is not None and not math.isnan(v)]
    assert (summary.low, summary.high) == ((min(known), max(known)) if known else (None, None))



@settings(max_examples=300, deadline=None)
@given(values=st.lists(st.one_of(st.floats(allow_nan=False), st.just(NaN)), max_size=40))
def test_summary_of_windows_without_unknown_points_matches_the_known_points(values: list[float | None]) -> None:
    # Every point there, as in most windows: infinities (and inf - inf in a sum) and NaN included.
    from rrdalarm.rules.evaluate import summarize

    summary = summarize(values, 1000, 60)
    known = [v for v in values if v is not None and not math.isnan(v)]
    assert (summary.low, summary.high) == ((min(known), max(known)) if known else (None, None))
    assert summary.newest == newest_known(values, 1000, 60)
    assert summary.values is values

# ---------------------------------------------------------------- transition (state and timestamps)

_times = st.integers(0, 2_000_000_000)
_told = st.frozensets(st.sampled_from(["a", "b", "c"]))


@st.composite
def _views(draw: st.DrawFn, state: State) -> StateView:
    active = draw(_times)
    return StateView(state, active, active, draw(st.none() | _times), draw(st.none() | _times),
                     draw(st.none() | _told), draw(st.none() | st.text(max_size=5)))


@given(prev=st.none() | _views(State.OK), now=_times, told=_told, value=st.floats(allow_nan=False))
def test_a_firing_starts_now_and_remembers_whom_it_told(prev: StateView | None, now: int, told: frozenset[str],
                                                        value: float) -> None:
    c = transition((1, "a.rrd", "x"), prev, EventKind.FIRED, now, value, now - 60, told, "/t.toml")
    assert (c.state, c.active_at, c.fired_at, c.last_sent_at) == (State.FIRING, now, now, now)
    assert c.resolved_at == (prev.resolved_at if prev else None)
    assert (c.notified, c.origin, c.last_value, c.last_time) == (told, "/t.toml", value, now - 60)


@given(prev=_views(State.FIRING), now=_times, told=_told)
def test_a_repeat_keeps_the_firing_records_the_send_and_adds_whom_it_told(prev: StateView, now: int,
                                                                           told: frozenset[str]) -> None:
    c = transition((1, "a.rrd", "x"), prev, EventKind.REPEAT, now, 9.0, now, told, None)
    assert (c.state, c.active_at, c.fired_at, c.resolved_at) == (State.FIRING, prev.active_at, prev.fired_at,
                                                                 prev.resolved_at)
    assert c.last_sent_at == now
    assert c.notified == (None if prev.notified is None else prev.notified | told)


@given(prev=_views(State.FIRING), now=_times, told=_told)
def test_a_resolve_ends_the_firing_now_and_forgets_whom_it_told(prev: StateView, now: int,
                                                                 told: frozenset[str]) -> None:
    c = transition((1, "a.rrd", "x"), prev, EventKind.RESOLVED, now, 1.0, now, told, None)
    assert (c.state, c.active_at, c.fired_at, c.resolved_at, c.last_sent_at) == (
        State.OK, prev.active_at, prev.fired_at, now, prev.last_sent_at)
    assert c.notified == frozenset()


@pytest.mark.parametrize("event", [EventKind.REPEAT, EventKind.RESOLVED])
def test_only_a_firing_can_start_without_a_stored_state(event: EventKind) -> None:
    with pytest.raises(ValueError, match="no stored state"):
        transition((1, "a.rrd", "x"), None, event, 100, 1.0, 100, frozenset(), None)
