"""Each tree as the console shows it (rrdalarm.report.trees): workers alive or not, trouble first."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given
from hypothesis import strategies as st
from test_alarms_now import t

from rrdalarm.model.definitions import Threshold
from rrdalarm.model.records import WorkerSeen
from rrdalarm.report.trees import heartbeat_limit, trees_overview

NOW = 1_000_000.0


def on(ident: int, tree: str) -> Threshold:
    return replace(t(ident, "warning"), tree=tree)


def test_trouble_first_then_by_name_and_only_alive_workers_count_files() -> None:
    thresholds = [on(1, "b"), on(2, "b"), on(3, "a"), on(4, "c"), on(5, "local")]
    limit = heartbeat_limit(10, 30)  # 60 s
    seen = [WorkerSeen("b", "w2", NOW - 5, 700, 1.5, 2.0), WorkerSeen("b", "w1", NOW - limit - 1, 300, 1.0, 1.8),
            WorkerSeen("a", "w3", NOW - limit - 1, 50, 0.5, 0.7), WorkerSeen("old", "w9", NOW - 10, 0, None, None)]
    lines = trees_overview(thresholds, seen, NOW, 10, 30)
    assert [(x.name, x.thresholds, x.alive, x.files, x.problem is not None) for x in lines] == [
        ("a", 1, 0, 0, True), ("c", 1, 0, 0, True), ("b", 2, 1, 700, False), ("old", 0, 1, 0, False)]
    assert "none answered for 60 s" in (lines[0].problem or "")
    assert "no worker seen yet" in (lines[1].problem or "")
    b = lines[2]
    assert [(w.worker, w.alive, w.ago_s) for w in b.workers] == [("w1", False, 61), ("w2", True, 5)]
    assert b.duration_s == 2.0  # the newest heartbeat's tree duration


@given(st.lists(st.tuples(st.sampled_from("abc"), st.sampled_from(["w1", "w2"]), st.floats(0, 500)), max_size=12,
                unique_by=lambda x: (x[0], x[1])),
       st.lists(st.sampled_from(["a", "b", "local"]), max_size=5))
def test_every_tree_once_and_trouble_exactly_when_named_and_no_worker_alive(
        seen: list[tuple[str, str, float]], named: list[str]) -> None:
    workers = [WorkerSeen(tree, w, NOW - ago, 10) for tree, w, ago in seen]
    lines = trees_overview([on(i, n) for i, n in enumerate(named, 1)], workers, NOW, 60, 60)
    names = [x.name for x in lines]
    assert sorted(names) == sorted({n for n in named if n != "local"} | {tree for tree, _, _ in seen})
    for x in lines:
        assert (x.problem is not None) == (x.thresholds > 0 and x.alive == 0)
        assert x.files == 10 * x.alive
    troubled = [x.problem is not None for x in lines]
    assert troubled == sorted(troubled, reverse=True)
