"""One check end to end in-process: real RRD files, real SQLite database, real log action."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import rrdtool
from conftest import T0, Env, check, threshold

from rrdalarm.check.engine import run_check
from rrdalarm.config.thresholds import load_thresholds
from rrdalarm.model.results import CheckResult
from rrdalarm.model.states import Status
from rrdalarm.store import stats
from rrdalarm.store.database import AlarmEvent, CheckRun, SeriesState, Store


def statuses(result: CheckResult) -> dict[tuple[str, str], str]:
    return {(r.file, r.ds): r.status.value for r in result.rows}


def test_above_fires_with_newest_point_of_run(env: Env, store: Store) -> None:
    env.rrd("a.rrd", {"x": [1, 1, 6, 7, 8]})
    env.write_thresholds(threshold(repetitions=3))
    r = check(env, store)
    [row] = r.rows
    assert (row.status.value, row.value, row.time) == ("ALARM FIRED", 8.0, T0)
    assert r.alarms_fired == 1 and r.exit_status == 1


def test_below_fires(env: Env, store: Store) -> None:
    env.rrd("a.rrd", {"x": [9, 9, 2, 1]})
    env.write_thresholds(threshold(type="below", value=3, repetitions=2))
    [row] = check(env, store).rows
    assert (row.status.value, row.value) == ("ALARM FIRED", 1.0)


def test_equality_does_not_fire(env: Env, store: Store) -> None:
    env.rrd("a.rrd", {"x": [5, 5, 5]})
    env.write_thresholds(threshold(value=5) + threshold(2, type="below", value=5))
    r = check(env, store)
    assert [row.status.value for row in r.rows] == ["OK", "OK"]
    assert r.exit_status == 0


@pytest.mark.parametrize(("reps", "fires"), [(0, True), (1, True), (3, False), (2, True)])
def test_repetitions(env: Env, store: Store, reps: int, fires: bool) -> None:
    env.rrd("a.rrd", {"x": [9, 1, 9, 9]})
    env.write_thresholds(threshold(repetitions=reps))
    [row] = check(env, store).rows
    assert (row.status.value == "ALARM FIRED") is fires


def test_unknown_points_inside_a_run_are_skipped(env: Env, store: Store) -> None:
    env.rrd("a.rrd", {"x": [1, 9, None, 9, None, 9, None]})
    env.write_thresholds(threshold(repetitions=3))
    [row] = check(env, store).rows
    assert (row.status.value, row.time) == ("ALARM FIRED", T0 - 60)


def test_all_unknown_is_no_data(env: Env, store: Store) -> None:
    env.rrd("a.rrd", {"x": [9, 9] + [None] * 70})
    env.write_thresholds(threshold(start="now-30min"))
    [row] = check(env, store).rows
    assert row.status.value == "NO DATA"
    assert check(env, store).exit_status == 3


def test_window_edges(env: Env, store: Store) -> None:
    # A point at t covers (t-60, t]: the window (T0-600, T0] holds points T0-540 .. T0.
    vals: list[float | None] = [1.0] * 30
    vals[-10] = 9.0  # T0 - 540, the oldest point inside now-10min
    vals[-11] = 9.0  # T0 - 600, just outside it
    env.rrd("a.rrd", {"x": vals})
    env.write_thresholds(
        threshold(start="now-10min", repetitions=1)
        + threshold(2, start="now-9min")
        + threshold(3, start="now-10min", repetitions=2)
        + threshold(4, start="now-11min", repetitions=2)
    )
    r = check(env, store)
    by_id = {row.threshold: row for row in r.rows}
    assert by_id[1].status.value == "ALARM FIRED" and by_id[1].time == T0 - 540
    assert by_id[2].status.value == "OK"
    assert by_id[3].status.value == "OK"
    assert by_id[4].status.value == "ALARM FIRED" and by_id[4].time == T0 - 540


def test_at_excludes_points_after_the_window(env: Env, store: Store) -> None:
    vals: list[float | None] = [*([1.0] * 20), *([9.0] * 5)]
    env.rrd("a.rrd", {"x": vals})
    env.write_thresholds(threshold(repetitions=2))
    # 5 minutes before the spike starts nothing fires, even though the file has later data.
    assert check(env, store, at=T0 - 300, dry_run=True).rows[0].status.value == "OK"
    assert check(env, store, at=T0 - 240, dry_run=True).rows[0].status.value == "OK"
    fired = check(env, store, at=T0 - 180, dry_run=True).rows[0]
    assert (fired.status.value, fired.time) == ("ALARM FIRED", T0 - 180)


def test_rearm_zero_fires_every_check(env: Env, store: Store) -> None:
    env.rrd("a.rrd", {"x": [9] * 10})
    env.write_thresholds(threshold(rearm=0, actions=[{"type": "log", "file": "a.log", "on": ["fire", "repeat"]}]))
    for at in (T0, T0 + 60, T0 + 120):
        assert check(env, store, at=at).rows[0].status.value == "ALARM FIRED"
    log = (env.data / "log" / "a.log").read_text().splitlines()
    assert len(log) == 3 and all("ALARM FIRED" in line for line in log)


def test_rearm_holds_back_then_repeats(env: Env, store: Store) -> None:
    env.rrd("a.rrd", {"x": [9] * 30})
    env.write_thresholds(threshold(rearm=600, actions=[{"type": "log", "file": "a.log", "on": ["fire", "repeat"]}]))
    seen = [check(env, store, at=T0 + d).rows[0].status.value for d in (0, 60, 599, 600, 660)]
    assert seen == ["ALARM FIRED", "FIRING", "FIRING", "ALARM FIRED", "FIRING"]
    assert len((env.data / "log" / "a.log").read_text().splitlines()) == 2
    kinds = [e.kind for e in reversed(store.events(limit=10))]
    assert kinds == ["fired", "repeat"]


def test_resolved_event_when_breach_ends(env: Env, store: Store) -> None:
    path = env.rrd("a.rrd", {"x": [9] * 5})
    env.write_thresholds(threshold(actions=[{"type": "log", "file": "a.log"}]))
    assert check(env, store).exit_status == 1
    rrdtool.update(str(path), *(f"{T0 + 60 * i}:1" for i in range(1, 70)))
    r = check(env, store, at=T0 + 69 * 60)
    [row] = r.rows
    assert row.status.value == "OK" and row.message.startswith("resolved")
    assert r.exit_status == 0
    events = store.events()
    assert [e.status for e in events] == ["RESOLVED", "ALARM FIRED"]
    assert "RESOLVED" in (env.data / "log" / "a.log").read_text().splitlines()[-1]
    # And stays quiet afterwards.
    assert check(env, store, at=T0 + 69 * 60 + 60).rows[0].status.value == "OK"
    assert len(store.events()) == 2


def test_error_does_not_resolve_a_firing_series(env: Env, store: Store) -> None:
    path = env.rrd("a.rrd", {"x": [9] * 5})
    env.write_thresholds(threshold(rearm=0))
    assert check(env, store).exit_status == 1
    path.write_bytes(b"garbage" * 100)
    r = check(env, store, at=T0 + 60)
    assert [row.status.value for row in r.rows] == ["ERROR"]
    assert r.exit_status == 1  # still FIRING in the database: FIRING wins over unreadable
    assert store.states([1])[(1, "a.rrd", "x")].state.value == "FIRING"


def test_several_data_sources_are_separate_series(env: Env, store: Store) -> None:
    env.rrd("a.rrd", {"in": [9, 9], "out": [1, 1], "err": [None, None]})
    env.write_thresholds(threshold())
    assert statuses(check(env, store)) == {
        ("a.rrd", "in"): "ALARM FIRED", ("a.rrd", "out"): "OK", ("a.rrd", "err"): "NO DATA",
    }


def test_listed_data_sources_only_and_unknown_ds(env: Env, store: Store) -> None:
    env.rrd("a.rrd", {"in": [9, 9], "out": [9, 9]})
    env.write_thresholds(threshold(ds=["out", "nope"]))
    got = statuses(check(env, store))
    assert got == {("a.rrd", "out"): "ALARM FIRED", ("a.rrd", "nope"): "ERROR"}


def test_consolidation_function(env: Env, store: Store) -> None:
    env.rrd("a.rrd", {"x": [1, 2, 3]})
    env.write_thresholds(threshold(cf="MAX", value=2.5))
    assert check(env, store).rows[0].status.value == "ALARM FIRED"


def test_glob_with_many_files_under_one_id(env: Env, store: Store) -> None:
    for i in range(30):
        env.rrd(f"hosts/10/0/{i // 10}/{i}/bytes.rrd", {"sent": [9 if i % 3 == 0 else 1] * 3})
    env.write_thresholds(threshold(glob="hosts/**/bytes.rrd"))
    r = check(env, store)
    assert r.files_checked == 30 and r.series_checked == 30
    fired = sorted(row.file for row in r.rows if row.status.value == "ALARM FIRED")
    assert fired == sorted(f"hosts/10/0/{i // 10}/{i}/bytes.rrd" for i in range(0, 30, 3))
    assert {row.threshold for row in r.rows} == {1}
    # Each file has its own counter: a run in one file never adds to another's.


def test_counters_are_per_file(env: Env, store: Store) -> None:
    env.rrd("d/a.rrd", {"x": [1, 9]})
    env.rrd("d/b.rrd", {"x": [1, 9]})
    env.write_thresholds(threshold(glob="d/*.rrd", repetitions=2))
    assert {row.status.value for row in check(env, store).rows} == {"OK"}


def test_glob_without_match_is_reported(env: Env, store: Store) -> None:
    env.write_thresholds(threshold(glob="nothing/*.rrd"))
    r = check(env, store)
    [row] = r.rows
    assert row.status.value == "ERROR" and "matches no file" in row.message
    assert r.exit_status == 3


@pytest.mark.parametrize("kind", ["zero", "truncated", "corrupt", "dangling"])
def test_broken_files_are_error_rows_and_the_check_goes_on(env: Env, store: Store, kind: str) -> None:
    good = env.rrd("d/good.rrd", {"x": [9, 9]})
    bad = env.root / "d" / "bad.rrd"
    data = good.read_bytes()
    if kind == "zero":
        bad.write_bytes(b"")
    elif kind == "truncated":
        bad.write_bytes(data[: len(data) // 2])
    elif kind == "corrupt":
        bad.write_bytes(b"XYZ" + data[3:])
    else:
        bad.symlink_to(env.root / "d" / "gone.rrd")
    env.write_thresholds(threshold(glob="d/*.rrd"))
    r = check(env, store)
    got = {row.file: row for row in r.rows}
    assert got["d/good.rrd"].status.value == "ALARM FIRED"
    assert got["d/bad.rrd"].status.value == "ERROR"
    assert got["d/bad.rrd"].message.startswith("cannot read RRD")
    assert str(env.root) not in got["d/bad.rrd"].message
    assert r.exit_status == 1


def test_symlink_leaving_the_root_is_skipped_and_reported(env: Env, store: Store, tmp_path: Path) -> None:
    from conftest import make_rrd

    outside = make_rrd(tmp_path / "outside" / "secret.rrd", {"x": [9, 9]})
    (env.root / "d").mkdir()
    (env.root / "d" / "link.rrd").symlink_to(outside)
    (env.root / "dirlink").symlink_to(outside.parent)
    env.write_thresholds(threshold(glob="d/*.rrd") + threshold(2, glob="**/*.rrd"))
    r = check(env, store)
    assert {(row.threshold, row.file, row.status.value) for row in r.rows} == {
        (1, "d/link.rrd", "ERROR"), (2, "d/link.rrd", "ERROR"), (2, "dirlink", "ERROR"),
    } or all("outside the RRD root" in row.message for row in r.rows)
    assert r.files_checked == 0
    assert all("outside the RRD root" in row.message for row in r.rows)


def test_disabled_thresholds_are_skipped(env: Env, store: Store) -> None:
    env.rrd("a.rrd", {"x": [9]})
    env.write_thresholds(threshold(enabled=False))
    assert check(env, store).rows == []


def test_dry_run_records_nothing_and_runs_no_action(env: Env, store: Store) -> None:
    env.rrd("a.rrd", {"x": [9, 9]})
    env.write_thresholds(threshold(actions=[{"type": "log", "file": "a.log"}]))
    r = check(env, store, dry_run=True)
    assert r.alarms_fired == 1
    assert store.count(CheckRun) == 0 and store.count(AlarmEvent) == 0 and store.count(SeriesState) == 0
    assert not (env.data / "log" / "a.log").exists()
    assert not stats.stats_path(env.data, "duration").exists()


def test_rows_written_only_when_something_changed(env: Env, store: Store) -> None:
    for i in range(20):
        env.rrd(f"d/{i}.rrd", {"x": [9 if i == 0 else 1] * 3})
    env.write_thresholds(threshold(glob="d/*.rrd", rearm=3600))
    check(env, store)
    before = (store.count(CheckRun), store.count(SeriesState), store.count(AlarmEvent))
    assert before == (1, 1, 1)
    check(env, store, at=T0 + 60)  # still firing but held back; the rest unchanged
    assert (store.count(CheckRun), store.count(SeriesState), store.count(AlarmEvent)) == (2, 1, 1)


def test_self_statistics_rrds(env: Env, store: Store) -> None:
    env.rrd("a.rrd", {"x": [9, 9]})
    env.write_thresholds(threshold(rearm=0))
    check(env, store, at=T0)
    check(env, store, at=T0 + 60)
    check(env, store, at=T0 + 60)  # same second: skipped, not an error
    duration = stats.stats_path(env.data, "duration")
    alarms = stats.stats_path(env.data, "alarms")
    assert rrdtool.last(str(duration)) == T0 + 60
    (_, _, _), names, rows = rrdtool.fetch(str(alarms), "AVERAGE", "-s", str(T0), "-e", str(T0 + 60))
    assert names == ("alarms",)
    assert [r[0] for r in rows if r[0] is not None] == [1.0]


def test_legacy_unavailable_action_is_reported_not_fatal(env: Env, store: Store) -> None:
    env.rrd("a.rrd", {"x": [9, 9]})
    env.write_thresholds("1\ta.rrd\tabove\t5\t0\tnow-1h\tnow\tsendsms\t+4912345\t60\n")
    r = check(env, store)
    assert r.rows[0].status.value == "ALARM FIRED"
    assert r.rows[0].action == "sendsms (unavailable)"
    assert any("'sendsms' is not installed" in w for w in r.warnings)


def test_workers_in_processes_give_the_same_result(env: Env, store: Store) -> None:
    from dataclasses import replace

    from rrdalarm.sources import rrd as rrd_source

    for i in range(50):
        env.rrd(f"h/{i}.rrd", {"a": [float(i)] * 3, "b": [None, 1.0, None]})
    env.write_thresholds(threshold(glob="h/*.rrd", value=40) + threshold(2, glob="h/*.rrd", type="below", value=3))
    settings = env.settings()
    assert settings.thresholds is not None
    ths = load_thresholds(settings.thresholds)
    serial = run_check(settings, ths, store, at=T0, dry_run=True)
    old = rrd_source.MIN_FILES_PER_WORKER
    rrd_source.MIN_FILES_PER_WORKER = 5
    try:
        parallel = run_check(replace(settings, workers=2), ths, store, at=T0, dry_run=True)
    finally:
        rrd_source.MIN_FILES_PER_WORKER = old
    assert parallel.rows == serial.rows
    assert (parallel.files_checked, parallel.series_checked) == (50, 200)
    # above 40: a of files 41..49; below 3: a of files 0..2 and b (1.0) of every file.
    assert sum(1 for r in serial.rows if r.status.value == "ALARM FIRED") == 9 + 3 + 50


def test_a_window_that_cannot_be_resolved_now_is_an_error_row(env: Env, store: Store) -> None:
    # Loads fine (the start is before the end for some "now"), but at T0 the start is still ahead.
    env.rrd("a.rrd", {"v": [10.0] * 5})
    env.write_thresholds(threshold(1, start=str(T0 + 86400), end="now") + threshold(2))
    result = check(env, store)
    errors = [r for r in result.rows if r.status is Status.ERROR]
    assert [(r.threshold, r.file) for r in errors] == [(1, "a.rrd")] and "window" in errors[0].message
    assert [r.status for r in result.rows if r.threshold == 2] == [Status.ALARM_FIRED]


def log_lines(env: Env, name: str) -> list[str]:
    path = env.data / "log" / name
    return path.read_text().splitlines() if path.exists() else []


def resolve_a(env: Env, path: Path) -> int:
    """Feed a.rrd quiet points until the breach has left the window; returns the time to check at."""
    rrdtool.update(str(path), *(f"{T0 + 60 * i}:1" for i in range(1, 70)))
    return T0 + 69 * 60


def test_an_action_added_while_firing_hears_of_the_recovery_only_once_told(env: Env, store: Store) -> None:
    path = env.rrd("a.rrd", {"x": [9] * 5})
    # An action that wants recoveries only was there when the series fired: it hears of the recovery.
    there = [{"type": "log", "file": "old.log"}, {"type": "log", "file": "rec.log", "on": ["resolve"]}]
    env.write_thresholds(threshold(actions=there))
    assert check(env, store).exit_status == 1
    env.write_thresholds(threshold(actions=[
        *there,
        {"type": "log", "file": "new.log"},
        {"type": "log", "file": "rep.log", "on": ["repeat", "resolve"]},
    ]))
    # rearm = 0: this check repeats; only rep.log wants repeats, so only it is told of the firing now.
    assert [r.status.value for r in check(env, store, at=T0 + 60).rows] == ["ALARM FIRED"]
    assert check(env, store, at=resolve_a(env, path)).exit_status == 0
    assert [line.split()[1] for line in log_lines(env, "old.log")] == ["ALARM", "RESOLVED"]
    assert [line.split()[1] for line in log_lines(env, "rec.log")] == ["RESOLVED"]
    assert log_lines(env, "new.log") == []
    assert [line.split()[1] for line in log_lines(env, "rep.log")] == ["ALARM", "RESOLVED"]


def test_a_threshold_without_actions_then_given_one_sends_no_lone_recovery(env: Env, store: Store) -> None:
    path = env.rrd("a.rrd", {"x": [9] * 5})
    env.write_thresholds(threshold())
    assert check(env, store).exit_status == 1
    env.write_thresholds(threshold(actions=[{"type": "log", "file": "late.log"}]))
    r = check(env, store, at=resolve_a(env, path))
    assert r.exit_status == 0 and [e.status for e in store.events(limit=1)] == ["RESOLVED"]
    assert log_lines(env, "late.log") == []


def assert_closed_once(env: Env, store: Store, key: tuple[int, str, str], message: str) -> None:
    """The series was closed by this check's one RESOLVED event, its log action told, and stays closed."""
    [closed] = store.events(limit=1)
    assert (closed.status, closed.threshold_id, closed.series, closed.ds, closed.message) == ("RESOLVED", *key, message)
    assert store.series_state(*key) is None
    assert [line.split()[1] for line in log_lines(env, "t.log")] == ["ALARM", "RESOLVED"]
    assert check(env, store, at=T0 + 120).exit_status == 0
    assert len(store.events()) == 2


@pytest.mark.parametrize("how", ["narrowed", "deleted"])
def test_a_file_no_longer_matched_is_closed(env: Env, store: Store, how: str) -> None:
    env.rrd("a.rrd", {"x": [1] * 5})
    b = env.rrd("b.rrd", {"x": [9] * 5})
    env.write_thresholds(threshold(glob="*.rrd", actions=[{"type": "log", "file": "t.log"}]))
    assert check(env, store).exit_status == 1
    if how == "narrowed":
        env.write_thresholds(threshold(glob="a.rrd", actions=[{"type": "log", "file": "t.log"}]))
        why = "file no longer matched by the glob"
    else:
        b.unlink()
        why = "file removed"
    r = check(env, store, at=T0 + 60)
    assert r.exit_status == 0 and r.firing == 0
    assert statuses(r) == {("a.rrd", "x"): "OK", ("b.rrd", "x"): "OK"}
    assert why in log_lines(env, "t.log")[-1]
    assert_closed_once(env, store, (1, "b.rrd", "x"), f"closed: {why}")


@pytest.mark.parametrize("how", ["dropped from ds", "gone from the file"])
def test_a_firing_data_source_no_longer_evaluated_is_closed(env: Env, store: Store, how: str) -> None:
    env.rrd("a.rrd", {"rx": [1] * 5, "tx": [9] * 5})
    fields: dict[str, Any] = {"ds": ["rx", "tx"]} if how == "dropped from ds" else {}
    env.write_thresholds(threshold(actions=[{"type": "log", "file": "t.log"}], **fields))
    assert check(env, store).exit_status == 1
    if how == "dropped from ds":
        env.write_thresholds(threshold(actions=[{"type": "log", "file": "t.log"}], ds=["rx"]))
        why = "data source no longer listed by the threshold"
    else:
        (env.root / "a.rrd").unlink()
        env.rrd("a.rrd", {"rx": [1] * 5})
        why = "data source no longer in the file"
    r = check(env, store, at=T0 + 60)
    assert r.exit_status == 0 and r.firing == 0
    assert statuses(r) == {("a.rrd", "rx"): "OK", ("a.rrd", "tx"): "OK"}
    assert_closed_once(env, store, (1, "a.rrd", "tx"), f"closed: {why}")


def test_a_glob_matching_nothing_keeps_firing_states(env: Env, store: Store) -> None:
    # An unmounted RRD root looks like this: it must not close every alarm.
    path = env.rrd("a.rrd", {"x": [9] * 5})
    env.write_thresholds(threshold(glob="*.rrd"))
    assert check(env, store).exit_status == 1
    path.unlink()
    r = check(env, store, at=T0 + 60)
    assert r.exit_status == 1
    assert statuses(r)[("a.rrd", "x")] == "ERROR"
    assert store.states([1])[(1, "a.rrd", "x")].state.value == "FIRING"
    assert len(store.events()) == 1


@pytest.mark.parametrize("how", ["disabled", "deleted"])
def test_a_threshold_disabled_or_deleted_closes_its_firing_series(env: Env, store: Store, how: str) -> None:
    env.rrd("a.rrd", {"x": [9] * 5})
    env.write_thresholds(threshold(actions=[{"type": "log", "file": "t.log"}]))
    assert check(env, store).exit_status == 1
    env.rrd("b.rrd", {"x": [1] * 5})
    other = threshold(2, "b.rrd")
    if how == "disabled":
        env.write_thresholds(threshold(enabled=False, actions=[{"type": "log", "file": "t.log"}]) + other)
    else:
        env.write_thresholds(other)
    r = check(env, store, at=T0 + 60)
    assert r.exit_status == 0
    assert_closed_once(env, store, (1, "a.rrd", "x"), f"closed: threshold {how}")


def test_a_firing_from_before_notifications_were_tracked_resolves_to_every_action(env: Env, store: Store) -> None:
    path = env.rrd("a.rrd", {"x": [9] * 5})
    env.write_thresholds(threshold(actions=[{"type": "log", "file": "t.log"}]))
    assert check(env, store).exit_status == 1
    with store.engine.begin() as conn:  # as migration 0005 leaves a series that fired before it
        conn.exec_driver_sql("update series_state set notified = null")
    env.write_thresholds(threshold(actions=[{"type": "log", "file": "t.log"}, {"type": "log", "file": "u.log"}]))
    assert check(env, store, at=resolve_a(env, path)).exit_status == 0
    assert log_lines(env, "t.log")[-1].split()[1] == "RESOLVED"
    assert [line.split()[1] for line in log_lines(env, "u.log")] == ["RESOLVED"]


def test_a_check_of_another_thresholds_file_deletes_nothing(env: Env, store: Store) -> None:
    from dataclasses import replace

    env.rrd("a.rrd", {"x": [9] * 5})
    env.rrd("b.rrd", {"x": [1] * 5})
    env.write_thresholds(threshold())
    assert check(env, store).exit_status == 1
    alt = env.base / "alt.toml"
    alt.write_text(threshold(9, "b.rrd"))
    settings = replace(env.settings(), thresholds=alt)
    assert run_check(settings, load_thresholds(alt), store, at=T0 + 60).exit_status == 0
    assert store.states([1])[(1, "a.rrd", "x")].state.value == "FIRING"
    env.write_thresholds(threshold(9, "b.rrd"))  # now deleted from the file it came from
    check(env, store, at=T0 + 120)
    assert store.series_state(1, "a.rrd", "x") is None
    assert [e.message for e in store.events(limit=1)] == ["closed: threshold deleted"]


def test_a_file_name_that_is_not_utf8_is_an_error_row_and_the_others_are_checked(env: Env, store: Store) -> None:
    # rrdtool cannot be given such a name (the binding crashed the whole check on it).
    env.rrd("a.rrd", {"x": [9]})
    good = env.rrd("b/good.rrd", {"x": [9]})
    os.link(good, os.path.join(os.fsencode(env.root), b"b", b"bad\xff.rrd"))
    env.write_thresholds(threshold(glob="a.rrd") + threshold(2, glob="b/*.rrd"))
    r = check(env, store)
    got = {(row.threshold, row.file): (row.status.value, row.message) for row in r.rows}
    assert got == {
        (1, "a.rrd"): ("ALARM FIRED", "9 above 5"),
        (2, "b/good.rrd"): ("ALARM FIRED", "9 above 5"),
        (2, "b/bad\\xff.rrd"): ("ERROR", "file name is not UTF-8; skipped (rename it to check it)"),
    }
    assert set(store.states([1, 2])) == {(1, "a.rrd", "x"), (2, "b/good.rrd", "x")}
    assert r.exit_status == 1


def test_a_threshold_whose_rows_cannot_be_recorded_leaves_the_others_recorded(env: Env, store: Store) -> None:
    env.rrd("a.rrd", {"x": [9]})
    env.rrd("b.rrd", {"x": [9]})
    env.write_thresholds(threshold(glob="a.rrd") + threshold(3, glob="b.rrd"))
    settings = env.settings()
    assert settings.thresholds is not None
    loaded = load_thresholds(settings.thresholds)
    # No file can name a threshold so, but whatever the database refuses must stay that threshold's problem.
    unstorable = replace(loaded[0], id=2, name="bad \udcff name")
    r = run_check(settings, [*loaded, unstorable], store, at=T0)
    assert [(row.threshold, row.status.value) for row in r.rows] == [(1, "ALARM FIRED"), (2, "ALARM FIRED"),
                                                                    (3, "ALARM FIRED")]
    assert set(store.states([1, 2, 3])) == {(1, "a.rrd", "x"), (3, "b.rrd", "x")}
    assert sorted(e.threshold_id for e in store.events()) == [1, 3]
    [warning] = r.warnings
    assert warning.startswith("threshold 2: this check's states and events could not be recorded: ")
    warning.encode("utf-8")  # printable
    assert r.exit_status == 1 and r.errors == 1
    [run] = store.runs()
    assert run.errors == 1


def test_a_check_over_years_reads_what_the_archives_hold_and_says_so(env: Env, store: Store) -> None:
    env.rrd("a.rrd", {"x": [1.0] * 10})  # 600 one-minute rows: 10 hours
    env.rrd("b.rrd", {"x": [9.0] * 10})
    env.write_thresholds(threshold(glob="*.rrd", start="now-10y"))
    r = check(env, store)
    got = {row.file: (row.status.value, row.value, row.message) for row in r.rows}
    assert got == {
        "a.rrd": ("OK", 1.0, "window cut to the last 10 hours the file's archives hold"),
        "b.rrd": ("ALARM FIRED", 9.0, "9 above 5"),
    }
    env.write_thresholds(threshold(glob="*.rrd", start="now-1h"))
    assert {row.message for row in check(env, store, T0 + 60).rows} == {"", "9 above 5, firing for 1 min"}


def test_the_thresholds_file_is_resolved_once_per_check_not_per_series(
        env: Env, store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    # Every changed state carries its thresholds file's real path; one realpath per state cost
    # tens of microseconds per firing series in the coordinator of a large cluster check.
    for i in range(30):
        env.rrd(f"h{i}.rrd", {"x": [9, 9, 9]})
    env.write_thresholds(threshold(glob="*.rrd", rearm=0))
    real = os.path.realpath
    resolved: list[str] = []

    def counting(path: Any, *args: Any, **kwargs: Any) -> str:
        if str(path) == str(env.thresholds_path):
            resolved.append(str(path))
        return str(real(path, *args, **kwargs))

    monkeypatch.setattr(os.path, "realpath", counting)
    assert check(env, store).alarms_fired == 30
    fired = len(resolved)
    assert check(env, store, at=T0 + 60).exit_status == 1  # rearm 0: 30 repeats, 30 changed states
    assert fired <= 3 and len(resolved) - fired <= 3, resolved
    states = store.states([1])
    assert len(states) == 30 and {v.origin for v in states.values()} == {real(env.thresholds_path)}
