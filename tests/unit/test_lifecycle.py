"""The alarm lifecycle (DESIGN §2b) against naive references written here, and section 2 as its default."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from rrdalarm.model.states import Direction, EventKind, NoData, State, Status
from rrdalarm.rules.evaluate import Criterion, crossing_count, decide, find_breach
from rrdalarm.rules.lifecycle import Memory, Policy, Seen, step

NaN = math.nan
points = st.lists(st.one_of(st.none(), st.just(NaN), st.integers(-5, 5).map(float)), max_size=30)
directions = st.sampled_from(list(Direction))


def naive_crosses(v: float, direction: Direction, limit: float) -> bool:
    return v > limit if direction is Direction.ABOVE else v < limit


def naive_m_of_n(values: list[float | None], direction: Direction, limit: float, m: int, n: int,
                 scale: float) -> tuple[float, int] | None:
    """(value, index) of the newest crossing point when >= max(1, m) of the newest n known points cross."""
    known = [(i, v) for i, v in enumerate(values) if v is not None and not math.isnan(v)]
    newest = known[::-1][:n]
    hits = [(i, v) for i, v in newest if naive_crosses(v * scale, direction, limit)]
    if len(hits) >= max(1, m):
        return hits[0][1] * scale, hits[0][0]
    return None


@settings(max_examples=400)
@given(values=points, direction=directions, limit=st.integers(-3, 3).map(float), m=st.integers(0, 5),
       extra=st.integers(0, 5), scale=st.sampled_from([1.0, 8.0, 0.5]))
def test_within_is_m_of_the_newest_n_known_points(values: list[float | None], direction: Direction, limit: float,
                                                  m: int, extra: int, scale: float) -> None:
    n = max(1, m) + extra
    got = find_breach(values, 1000, 60, direction, limit, m, within=n, scale=scale)
    want = naive_m_of_n(values, direction, limit, m, n, scale)
    assert (None if got is None else (got.value, got.time)) == (
        None if want is None else (want[0], 1000 + want[1] * 60))


@settings(max_examples=300)
@given(values=points, direction=directions, limit=st.integers(-3, 3).map(float), reps=st.integers(0, 5))
def test_within_0_and_scale_1_are_section_2(values: list[float | None], direction: Direction, limit: float,
                                            reps: int) -> None:
    plain = find_breach(values, 1000, 60, direction, limit, reps)
    tuned = find_breach(values, 1000, 60, direction, limit, reps, within=0, scale=1.0)
    assert plain == tuned
    # The scaled rule is the plain rule over the scaled points.
    doubled = [None if v is None else v * 2 for v in values]
    scaled = find_breach(values, 1000, 60, direction, limit, reps, scale=2.0)
    ref = find_breach(doubled, 1000, 60, direction, limit, reps)
    assert (scaled is None) == (ref is None)
    if scaled and ref:
        assert (scaled.value, scaled.time) == (ref.value, ref.time)


@given(values=points, direction=directions, limit=st.integers(-3, 3).map(float), reps=st.integers(0, 5),
       within=st.integers(0, 6))
def test_crossing_count_says_what_the_rule_counted(values: list[float | None], direction: Direction,
                                                   limit: float, reps: int, within: int) -> None:
    c = Criterion(direction, limit, reps, within)
    count, of = crossing_count(values, c)
    known = [v for v in values if v is not None and not math.isnan(v)][::-1]
    if within:
        assert count == sum(naive_crosses(v, direction, limit) for v in known[:within])
        assert of == min(within, len(known))
    else:
        run = 0
        for v in known:
            if not naive_crosses(v, direction, limit):
                break
            run += 1
        assert (count, of) == (run, max(1, reps))


states = st.sampled_from(list(State))
times = st.integers(1_000_000, 2_000_000)
maybe_time = st.none() | times


@settings(max_examples=500)
@given(state=states, breach=st.booleans(), sent=maybe_time, now=times, rearm=st.integers(0, 5000))
def test_the_default_policy_is_section_2(state: State, breach: bool, sent: int | None, now: int,
                                         rearm: int) -> None:
    done = step(Memory(state, sent), Seen(breach), now, Policy(rearm))
    want = decide(state, breach, sent, now, rearm)
    assert (done.memory.state, done.status, done.event) == (want.state, want.status, want.event)


@given(state=states, sent=maybe_time, now=times)
def test_no_data_keep_changes_nothing(state: State, sent: int | None, now: int) -> None:
    before = Memory(state, sent)
    done = step(before, Seen(no_data=True), now, Policy())
    assert (done.memory, done.status, done.event) == (before, Status.NO_DATA, None)


@given(state=states, now=times)
def test_no_data_ok_resolves_a_firing_series(state: State, now: int) -> None:
    done = step(Memory(state, 1), Seen(no_data=True), now, Policy(no_data=NoData.OK))
    assert done.memory.state is State.OK and done.status is Status.OK
    assert done.event is (EventKind.RESOLVED if state is State.FIRING else None)


def test_no_data_alarm_fires_once_and_data_back_resolves() -> None:
    policy = Policy(no_data=NoData.ALARM)
    first = step(None, Seen(no_data=True), 100, policy)
    assert (first.memory.state, first.status, first.event) == (State.FIRING, Status.NO_DATA, EventKind.NO_DATA)
    again = step(first.memory, Seen(no_data=True), 160, policy)
    assert (again.memory.state, again.status, again.event) == (State.FIRING, Status.NO_DATA, None)
    back = step(again.memory, Seen(), 220, policy)
    assert (back.memory.state, back.event, back.why) == (State.OK, EventKind.RESOLVED, "data back")
    breaching = step(again.memory, Seen(breach=True), 220, policy)
    assert (breaching.memory.state, breaching.event, breaching.memory.reason) == (State.FIRING, EventKind.FIRED, None)


def naive_keep_firing(clear_at: list[bool], keep: int, interval: int) -> list[State]:
    """A series that fires at t=0; clear_at[k] says the check at k*interval saw no breach."""
    out, since, state = [], None, State.FIRING
    for k, clear in enumerate(clear_at):
        t = k * interval
        if state is State.OK:
            state, since = (State.FIRING, None) if not clear else (State.OK, None)
        elif not clear:
            since = None
        else:
            since = t if since is None else since
            if t - since >= keep:
                state = State.OK
        out.append(state)
    return out


@settings(max_examples=300)
@given(clear_at=st.lists(st.booleans(), min_size=1, max_size=40), keep=st.integers(0, 600),
       interval=st.sampled_from([30, 60, 90]))
def test_keep_firing_for_against_a_naive_timeline(clear_at: list[bool], keep: int, interval: int) -> None:
    memory = Memory(State.FIRING, 0)
    got = []
    for k, clear in enumerate(clear_at):
        done = step(memory, Seen(breach=not clear), k * interval, Policy(rearm=3600, keep_firing_for=keep))
        memory = done.memory
        got.append(memory.state)
    assert got == naive_keep_firing(clear_at, keep, interval)


@given(state=states, breach=st.booleans(), sent=maybe_time, now=times, rearm=st.integers(0, 5000))
def test_keep_firing_for_0_and_no_holding_are_section_2(state: State, breach: bool, sent: int | None, now: int,
                                                         rearm: int) -> None:
    done = step(Memory(state, sent), Seen(breach, holding=False), now, Policy(rearm, keep_firing_for=0))
    want = decide(state, breach, sent, now, rearm)
    assert (done.memory.state, done.event) == (want.state, want.event)


@given(sent=maybe_time, now=times)
def test_holding_above_the_clear_level_keeps_it_firing(sent: int | None, now: int) -> None:
    done = step(Memory(State.FIRING, sent), Seen(breach=False, holding=True), now, Policy())
    assert (done.memory.state, done.status, done.event, done.why) == (State.FIRING, Status.FIRING, None,
                                                                    "clear level")


@settings(max_examples=400)
@given(breaches=st.lists(st.booleans(), min_size=1, max_size=60), changes=st.integers(1, 4),
       window=st.sampled_from([120, 300, 600]))
def test_no_event_while_flapping_but_its_start_and_its_settling(breaches: list[bool], changes: int,
                                                                window: int) -> None:
    policy = Policy(rearm=3600, flap_changes=changes, flap_window=window)
    memory: Memory | None = None
    flapping = False
    history: list[int] = []
    last_change: int | None = None
    for k, breach in enumerate(breaches):
        now = k * 60
        before = memory.state if memory else State.OK
        done = step(memory, Seen(breach), now, policy)
        memory = done.memory
        if memory.state is not before:
            history.append(now)
            last_change = now
        recent = [t for t in history if now - t < window]
        if not flapping and len(recent) > changes:
            assert done.event is EventKind.FLAPPING and done.status is Status.FLAPPING
            flapping = True
        elif flapping:
            settled = last_change is not None and now - last_change >= window
            if settled:
                want = EventKind.FIRED if memory.state is State.FIRING else EventKind.RESOLVED
                assert done.event is want and done.why == "settled"
                flapping = False
                history = []
            else:
                assert done.event is None and done.status is Status.FLAPPING
        else:
            assert done.event is not EventKind.FLAPPING
        # The state always follows the data, flapping or not.
        assert memory.state is (State.FIRING if breach else State.OK)


def test_flap_detection_off_by_default() -> None:
    memory = None
    for k in range(20):
        done = step(memory, Seen(k % 2 == 0), k * 60, Policy())
        memory = done.memory
        assert done.status is not Status.FLAPPING and memory.changes == ()
