"""Alarms now's groups made once per change and narrowed per page (rrdalarm.service.alarms_view)."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from test_alarms_now import STATUSES, row, t

from rrdalarm.model.control import Matchers
from rrdalarm.model.records import StateView, StoredState
from rrdalarm.model.states import State, Status
from rrdalarm.report import alarms_now as report
from rrdalarm.report.alarms_now import STATUS_ORDER, Wanted, alarms_now, shown
from rrdalarm.rules.quieting import Cover, Quieting
from rrdalarm.service import alarms_view
from rrdalarm.service.alarms_view import AlarmsViews, narrowed

THRESHOLDS = {i: t(i, ["critical", "warning", "info", "warning"][i - 1]) for i in range(1, 5)}

wanted_st = st.builds(Wanted, st.none() | st.sampled_from(["a", "b/", "C"]), st.none() | st.integers(1, 5),
                      st.none() | st.sampled_from(["critical", "warning", "info"]),
                      st.none() | st.sampled_from(STATUS_ORDER))
rows_st = st.lists(st.tuples(st.integers(1, 4), st.text("abcAB/", min_size=1, max_size=4),
                             st.sampled_from(STATUSES)), max_size=40, unique_by=lambda x: (x[0], x[1]))


@given(rows_st, wanted_st)
def test_narrowing_the_whole_view_equals_making_it_narrowed(spec: list[tuple[int, str, Status]],
                                                           wanted: Wanted) -> None:
    rows = [row(tid, series, status) for tid, series, status in spec]
    assert narrowed(alarms_now([], rows, THRESHOLDS), wanted) == alarms_now([], rows, THRESHOLDS, wanted)


def counting(monkeypatch: pytest.MonkeyPatch, pause: float = 0.0) -> list[int]:
    made: list[int] = []

    def slow(*args: Any) -> report.AlarmsNow:
        made.append(1)
        time.sleep(pause)
        return report.alarms_now(*args)

    monkeypatch.setattr(alarms_view, "alarms_now", slow)
    return made


def test_the_groups_are_made_once_until_what_they_are_made_from_changes(monkeypatch: pytest.MonkeyPatch) -> None:
    made = counting(monkeypatch)
    views = AlarmsViews(per_group=2)
    rows = (row(1, "a", Status.FIRING), row(1, "b", Status.FIRING), row(1, "c", Status.ERROR),
            row(2, "z", Status.FIRING))
    states: tuple[Any, ...] = ()
    first = views.view(states, rows, THRESHOLDS, Wanted(), Quieting(()))
    assert views.view(states, rows, THRESHOLDS, Wanted(), Quieting(())) is first
    assert [(g.threshold, [i.series for i in g.items], g.more) for g in first.groups] == [
        (1, ["a", "b"], 1), (2, ["z"], 0)]  # 1 is critical
    only_2 = views.view(states, rows, THRESHOLDS, Wanted(threshold=2), Quieting(()))
    assert [g.threshold for g in only_2.groups] == [2] and made == [1]
    silenced = Quieting((Cover("silence 1", Matchers(threshold=1), 10**10),))
    quiet = views.view(states, rows, THRESHOLDS, Wanted(), silenced)
    assert quiet.counts.silenced == 3 and made == [1, 1]
    views.view(states, list(rows), THRESHOLDS, Wanted(), silenced)  # a new check: new rows
    ok = StoredState((9, "q", "x"), StateView(State.OK, None, None, 5, None), None, None)
    views.view((*states, ok), rows, THRESHOLDS, Wanted(), silenced)  # new states (an acknowledgement)
    assert made == [1, 1, 1, 1]


def test_threads_asking_at_once_wait_for_one_making(monkeypatch: pytest.MonkeyPatch) -> None:
    made = counting(monkeypatch, pause=0.2)
    views = AlarmsViews()
    rows = (row(1, "a", Status.FIRING),)
    got: list[object] = []
    threads = [threading.Thread(target=lambda: got.append(views.view((), rows, THRESHOLDS, Wanted(), Quieting(()))))
               for _ in range(6)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert made == [1] and len(got) == 6 and all(g is got[0] for g in got)


def test_a_page_is_cut_to_per_group_series(monkeypatch: pytest.MonkeyPatch) -> None:
    rows = tuple(row(1, f"f{i:02d}", Status.FIRING) for i in range(7))
    view = AlarmsViews(per_group=3).view((), rows, THRESHOLDS, Wanted(), Quieting(()))
    assert view == shown(alarms_now([], rows, THRESHOLDS), 3)
