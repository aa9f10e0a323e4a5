"""What "Alarms now" shows: only what is not OK, by threshold, critical first (rrdalarm.report.alarms_now)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from rrdalarm.model.control import Acknowledgement, Matchers
from rrdalarm.model.definitions import Threshold, Tuning
from rrdalarm.model.records import StateView, StoredState
from rrdalarm.model.results import Row
from rrdalarm.model.states import Direction, Severity, State, Status
from rrdalarm.report.alarms_now import alarms_now, shown
from rrdalarm.rules.quieting import glob_escape, matches

STATUSES = list(Status)


def t(ident: int, severity: str) -> Threshold:
    return Threshold(id=ident, name=f"t{ident}", source="rrd", ds=(), cf="AVERAGE", type=Direction.ABOVE, value=5.0,
                     repetitions=0, start="now-1h", end="now", actions=(), rearm=0, enabled=True, fields={},
                     tuning=Tuning(severity=Severity(severity)))


def row(tid: int, series: str, status: Status, silenced: tuple[str, ...] = ()) -> Row:
    return Row(tid, series, "x", status, 9.0, 100, "above", 5.0, "", "log", None, silenced=silenced)


def test_groups_critical_first_and_items_by_status() -> None:
    rows = [row(1, "b", Status.ERROR), row(1, "a", Status.OK), row(1, "c", Status.ALARM_FIRED),
            row(2, "z", Status.FIRING), row(3, "q", Status.STALE, ("7",))]
    view = alarms_now([], rows, {1: t(1, "warning"), 2: t(2, "critical"), 3: t(3, "info")})
    assert [(g.threshold, [(i.series, i.status) for i in g.items]) for g in view.groups] == [
        (2, [("z", "FIRING")]), (1, [("c", "FIRING"), ("b", "ERROR")]), (3, [("q", "STALE")])]
    assert (view.counts.critical, view.counts.warning, view.counts.info, view.counts.silenced) == (1, 2, 0, 1)


def test_stored_states_when_there_are_no_rows() -> None:
    ack = Acknowledgement("alice", 50, "on it")
    stored = [
        StoredState((1, "a", "x"), StateView(State.FIRING, 10, 10, None, 10, ack=ack), 9.0, 10),
        StoredState((1, "b", "x"), StateView(State.OK, None, None, 5, None, stale_since=40), None, None),
        StoredState((2, "c", "x"), StateView(State.FIRING, 20, 20, None, 20, reason="no_data",
                                             silenced_since=30), None, None),
    ]
    view = alarms_now(stored, None, {1: t(1, "warning")})
    assert [(g.threshold, g.name, [(i.series, i.status, i.since) for i in g.items]) for g in view.groups] == [
        (1, "t1", [("a", "FIRING", 10), ("b", "STALE", 40)]), (2, "threshold 2", [("c", "NO DATA", 20)])]
    assert view.groups[0].items[0].ack == ack and view.groups[1].items[0].silenced
    assert (view.counts.warning, view.counts.silenced, view.counts.acknowledged) == (2, 1, 1)


@given(st.lists(st.tuples(st.integers(1, 4), st.text("abc/", min_size=1, max_size=4), st.sampled_from(STATUSES),
                          st.booleans()), max_size=30, unique_by=lambda x: (x[0], x[1])))
def test_every_series_not_ok_is_shown_once_and_counted_once(spec: list[tuple[int, str, Status, bool]]) -> None:
    rows = [row(tid, series, status, ("1",) if quiet else ()) for tid, series, status, quiet in spec]
    thresholds = {i: t(i, ["critical", "warning", "info", "warning"][i - 1]) for i in range(1, 5)}
    view = alarms_now([], rows, thresholds)
    shown = [(g.threshold, i.series) for g in view.groups for i in g.items]
    assert sorted(shown) == sorted((tid, s) for tid, s, status, _ in spec if status is not Status.OK)
    c = view.counts
    assert c.critical + c.warning + c.info + c.silenced == len(shown)
    ranks = [["critical", "warning", "info"].index(g.severity) for g in view.groups]
    assert ranks == sorted(ranks)


@given(st.text(min_size=1, max_size=30).filter(lambda s: "\x00" not in s), st.text(min_size=1, max_size=30))
def test_an_escaped_series_name_matches_itself_only(name: str, other: str) -> None:
    m = Matchers(series=glob_escape(name))
    assert matches(m, 1, name, "x", {}, "warning")
    assert matches(m, 1, other, "x", {}, "warning") == (other == name)


def test_shown_keeps_the_most_urgent_series_of_each_group_and_the_counts_of_all() -> None:
    rows = [row(1, f"f{i:02d}", Status.FIRING) for i in range(7)]
    rows += [row(1, "e", Status.ERROR), row(2, "z", Status.FIRING)]
    view = shown(alarms_now([], rows, {1: t(1, "warning"), 2: t(2, "critical")}), 3)
    assert [(g.threshold, [i.series for i in g.items], g.more) for g in view.groups] == [
        (2, ["z"], 0), (1, ["f00", "f01", "f02"], 5)]
    assert (view.counts.critical, view.counts.warning) == (1, 8)
