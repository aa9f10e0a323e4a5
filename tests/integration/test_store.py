"""The database: migrations, WAL, transactions, one-line errors."""

from __future__ import annotations

import os
import signal
import sqlite3
import stat
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from conftest import T0, Env, check, threshold

from rrdalarm.common.errors import StoreError
from rrdalarm.model.records import NewEvent, PlannedDelivery, RunSummary, StateChange
from rrdalarm.model.states import State
from rrdalarm.store.database import AlarmEvent, Store, open_store
from rrdalarm.store.migrate import HEAD, current_revision, head_revision, upgrade


def test_head_constant_matches_the_scripts() -> None:
    assert head_revision() == HEAD


def test_open_creates_migrates_and_is_idempotent(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/sub/dir/x.db"
    store = open_store(url)
    assert current_revision(store.engine) == HEAD
    upgrade(store.engine)  # second time: nothing to do
    store.close()
    with sqlite3.connect(tmp_path / "sub" / "dir" / "x.db") as db:
        tables = {r[0] for r in db.execute("select name from sqlite_master where type='table'")}
        assert {"check_runs", "series_state", "alarm_events", "alembic_version"} <= tables
        assert db.execute("pragma journal_mode").fetchone()[0] == "wal"


def test_concurrent_opens_of_a_new_database(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/race.db"
    errors: list[BaseException] = []

    def open_it() -> None:
        try:
            open_store(url).close()
        except BaseException as exc:  # noqa: BLE001 - collected for the assertion
            errors.append(exc)

    threads = [threading.Thread(target=open_it) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def test_record_check_is_one_transaction(any_database: str) -> None:
    store = open_store(any_database)
    summary = RunSummary(100, 0.5, 1, 1, 1, 1, 0)
    change = StateChange((1, "a.rrd", "x"), State.FIRING, 100, 100, None, 100, 9.0, 60)
    event = NewEvent(1, "t", "a.rrd", "x", "ALARM FIRED", "fired", "above", 5.0, 9.0, 60, "m")
    done = store.record_check(summary, [change], [event])
    assert done.run_id == 1 and len(done.event_ids) == 1 and done.unrecorded == {}
    # A database that fails as a whole (here: a table gone) fails the whole write, the run included.
    with store.engine.begin() as conn:
        conn.exec_driver_sql("alter table alarm_events rename to elsewhere")
    with pytest.raises(StoreError):
        store.record_check(RunSummary(200, 0.5, 1, 1, 1, 1, 0), [change], [event])
    with store.engine.begin() as conn:
        conn.exec_driver_sql("alter table elsewhere rename to alarm_events")
    assert store.count(AlarmEvent) == 1
    assert len(store.runs()) == 1
    assert store.states([1])[(1, "a.rrd", "x")].state is State.FIRING
    store.close()


def test_rows_one_threshold_cannot_store_leave_the_others_recorded(any_database: str) -> None:
    store = open_store(any_database)

    def fired(tid: int, series: str, name: Any = "t") -> tuple[StateChange, NewEvent]:
        return (StateChange((tid, series, "x"), State.FIRING, 100, 100, None, 100, 9.0, 60),
                NewEvent(tid, name, series, "x", "ALARM FIRED", "fired", "above", 5.0, 9.0, 60, "m"))

    good, bad_name, bad_series, good2 = fired(1, "a.rrd"), fired(2, "b.rrd", None), fired(3, "c\udcff.rrd"), \
        fired(4, "d.rrd")
    rows = [good, bad_name, bad_series, good2]
    deliveries = [PlannedDelivery("all", "log", {}, (0, 1, 2, 3)), PlannedDelivery("two", "log", {"x": 1}, (1,))]
    done = store.record_check(RunSummary(100, 0.5, 4, 4, 4, 4, 0), [c for c, _ in rows], [e for _, e in rows],
                              deliveries)
    assert sorted(done.unrecorded) == [2, 3]
    assert all("\n" not in why and why.encode() for why in done.unrecorded.values())
    assert set(store.states([1, 2, 3, 4])) == {(1, "a.rrd", "x"), (4, "d.rrd", "x")}
    assert [(e.threshold_id, e.id) for e in store.events()] == list(zip([4, 1], reversed(done.event_ids), strict=True))
    [(delivery, _)] = store.deliveries()
    assert delivery.id == "all" and store.event_ids_of(delivery) == done.event_ids
    [run] = store.runs()
    assert run.errors == 2
    store.close()


def test_bad_urls_are_one_line_errors(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="not a valid SQLAlchemy URL"):
        open_store("not a url")
    with pytest.raises(StoreError) as info:
        open_store("nosuchdriver://x/y")
    assert "\n" not in str(info.value)
    (tmp_path / "ro").mkdir()
    (tmp_path / "ro" / "x.db").mkdir()  # a folder where the database file should be
    with pytest.raises(StoreError) as info:
        open_store(f"sqlite:///{tmp_path}/ro/x.db")
    assert "\n" not in str(info.value)


def test_password_is_hidden_in_errors() -> None:
    with pytest.raises(StoreError) as info:
        open_store("postgresql+psycopg2://user:s3cret@127.0.0.1:1/db")
    assert "s3cret" not in str(info.value)


# A child that runs the first migration and SIGKILLs itself right after the Nth DDL statement.
_KILL_AFTER_DDL = """
import os, signal, sys
from sqlalchemy import event
from rrdalarm.store.database import Store

store = Store(sys.argv[1])
seen = 0

def after(conn, cursor, statement, params, context, executemany):
    global seen
    if statement.lstrip().upper().startswith(("CREATE", "ALTER", "DROP")):
        seen += 1
        if seen == int(sys.argv[2]):
            os.kill(os.getpid(), signal.SIGKILL)

event.listen(store.engine, "after_cursor_execute", after)
store.migrate()
print("finished")
"""


@pytest.mark.parametrize("after", [1, 2, 9, 17, 20, 21])
def test_a_migration_killed_midway_leaves_a_database_that_opens(tmp_path: Path, after: int) -> None:
    url = f"sqlite:///{tmp_path}/k.db"
    proc = subprocess.run([sys.executable, "-c", _KILL_AFTER_DDL, url, str(after)], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    store = open_store(url)
    assert current_revision(store.engine) == HEAD
    store.close()
    with sqlite3.connect(tmp_path / "k.db") as db:
        tables = {r[0] for r in db.execute("select name from sqlite_master where type='table'")}
        assert {"check_runs", "series_state", "alarm_events", "deliveries", "users", "audit_log"} <= tables
        assert db.execute("pragma journal_mode").fetchone()[0] == "wal"


def test_database_files_and_folders_are_private(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        store = open_store(f"sqlite:///{tmp_path}/new/dir/p.db")
        store.record_check(RunSummary(100, 0.5, 1, 1, 0, 0, 0), [], [])
        # Both WAL files exist while a connection is open.
        with store.engine.connect() as conn:
            conn.exec_driver_sql("select count(*) from check_runs").all()
            modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in (tmp_path / "new" / "dir").iterdir()}
        store.close()
    finally:
        os.umask(old)
    assert {"p.db", "p.db-wal", "p.db-shm"} <= set(modes)
    assert all(m == 0o600 for m in modes.values()), modes
    assert stat.S_IMODE((tmp_path / "new").stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "new" / "dir").stat().st_mode) == 0o700


def test_upgrading_keeps_firing_states_with_untracked_notifications(tmp_path: Path) -> None:
    from alembic import command

    from rrdalarm.store.migrate import alembic_config

    url = f"sqlite:///{tmp_path}/old.db"
    store = Store(url)
    command.upgrade(alembic_config(store.engine), "0004")
    with store.engine.begin() as conn:
        conn.exec_driver_sql("insert into series_state (threshold_id, series, ds, state, fired_at)"
                             " values (1, 'a.rrd', 'x', 'FIRING', 5)")
    store.migrate()
    assert current_revision(store.engine) == HEAD
    view = store.states([1])[(1, "a.rrd", "x")]
    assert view.state is State.FIRING and view.fired_at == 5
    assert view.notified is None  # its recovery goes to every action, as before the upgrade
    store.close()


def test_upgrading_to_64_bit_epochs_keeps_the_rows(any_database: str) -> None:
    from alembic import command

    from rrdalarm.store.migrate import alembic_config

    store = Store(any_database)
    command.upgrade(alembic_config(store.engine), "0008")
    with store.engine.begin() as conn:
        conn.exec_driver_sql("insert into series_state (threshold_id, series, ds, state, fired_at)"
                             " values (1, 'a.rrd', 'x', 'FIRING', 2147483647)")
    store.migrate()
    assert current_revision(store.engine) == HEAD
    assert store.states([1])[(1, "a.rrd", "x")].fired_at == 2**31 - 1
    late = 2**31 + 100
    change = StateChange((1, "a.rrd", "x"), State.FIRING, late, late, None, late, 9.0, late)
    event = NewEvent(1, "t", "a.rrd", "x", "ALARM FIRED", "fired", "above", 5.0, 9.0, late, "m")
    assert store.record_check(RunSummary(late, 0.5, 1, 1, 1, 1, 0), [change], [event]).unrecorded == {}
    assert store.states([1])[(1, "a.rrd", "x")].last_sent_at == late
    assert [e.time for e in store.events()] == [late]
    store.close()


def test_an_unreachable_postgresql_is_one_line_without_the_password(pg_url: str) -> None:
    from sqlalchemy.engine import make_url

    url = make_url(pg_url)
    gone = url.set(query={"host": "/nonexistent", "port": "5432"}, password="s3cret")
    with pytest.raises(StoreError) as info:
        open_store(gone.render_as_string(hide_password=False))
    message = str(info.value)
    assert "\n" not in message and "s3cret" not in message
    assert '"/nonexistent/.s.PGSQL.5432"' in message


def test_troubled_states_are_read_again_after_every_run(env: Env, store: Store) -> None:
    from rrdalarm.control.acks import acknowledge

    env.rrd("a.rrd", {"x": [9] * 40})
    env.write_thresholds(threshold(rearm=0))
    assert store.troubled_states() == ()
    check(env, store)
    [firing] = kept = store.troubled_states()
    assert firing.view.ack is None and store.troubled_states() is kept  # kept: no run since
    acknowledge(store, env.settings(), [], 1, None, None, "on it", "alice", T0 + 5)
    [acked] = store.troubled_states()  # an acknowledgement records a run of its own
    assert acked.view.ack is not None and acked.view.ack.by == "alice"
    env.rrd("a.rrd", {"x": [1] * 40}, end=T0 + 60)
    check(env, store, at=T0 + 60)
    assert store.troubled_states() == ()
