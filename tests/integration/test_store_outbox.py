"""The store's queries for the outbox, the threshold table and users; migration 0006 (events of a delivery)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from alembic import command

from rrdalarm.model.records import NewEvent, PlannedDelivery, RunSummary, StateChange
from rrdalarm.model.states import DeliveryStatus, State
from rrdalarm.store.database import Attempt, Store, open_store
from rrdalarm.store.migrate import HEAD, alembic_config, current_revision


def old_database(tmp_path: Path) -> Store:
    """A database at 0005 holding two runs' events and deliveries with their event ids as JSON lists."""
    store = Store(f"sqlite:///{tmp_path}/old.db")
    command.upgrade(alembic_config(store.engine), "0005")
    with store.engine.begin() as conn:
        for run in (1, 2):
            conn.exec_driver_sql("insert into check_runs values (?, ?, 0.1, 1, 1, 1, 1, 0)", (run, 100 * run))
        for ident, run in ((1, 1), (2, 1), (3, 2)):
            conn.exec_driver_sql(
                "insert into alarm_events (id, run_id, at, threshold_id, threshold_name, series, ds, status, kind,"
                " type, \"limit\", value, time, message) values (?, ?, ?, 1, 't', 'a.rrd', 'x', 'ALARM FIRED',"
                " 'fired', 'above', 1.0, 2.0, 60, 'm')", (ident, run, 100 * run))
        for name, run, ids in (("d1", 1, "[2, 1]"), ("d2", 2, "[3]"), ("d3", 2, "not json"), ("d4", 1, "[1, 99]")):
            conn.exec_driver_sql(
                "insert into deliveries (id, run_id, created_at, action, params, event_ids, status, attempts,"
                " next_attempt_at) values (?, ?, ?, 'log', '{}', ?, 'pending', 0, 0)", (name, run, 100 * run, ids))
        conn.exec_driver_sql("insert into delivery_attempts (delivery_id, at, duration_s, ok, error)"
                             " values ('d1', 150, 0.5, 0, 'boom')")
    return store


def test_upgrade_moves_each_deliverys_json_event_ids_into_the_table_in_order(tmp_path: Path) -> None:
    store = old_database(tmp_path)
    store.migrate()
    assert current_revision(store.engine) == HEAD
    got = {d.id: store.event_ids_of(d) for d, _ in store.deliveries()}
    # An unreadable list counted as none before and still does; an id of no event is dropped.
    assert got == {"d1": [2, 1], "d2": [3], "d3": [], "d4": [1]}
    assert [(d.id, [a.error for a in attempts]) for d, attempts in store.deliveries_with_events([1])] == [
        ("d1", ["boom"]), ("d4", [])]
    assert [d.id for d, _ in store.deliveries_with_events([3])] == ["d2"]
    store.close()
    with sqlite3.connect(tmp_path / "old.db") as db:
        columns = {r[1] for r in db.execute("pragma table_info(deliveries)")}
        assert "event_ids" not in columns
        assert db.execute("pragma foreign_key_check").fetchall() == []
        links = db.execute("select delivery_id, position, event_id from delivery_events order by 1, 2").fetchall()
    assert links == [("d1", 0, 2), ("d1", 1, 1), ("d2", 0, 3), ("d4", 0, 1)]


def test_downgrade_writes_the_json_lists_back(tmp_path: Path) -> None:
    store = old_database(tmp_path)
    store.migrate()
    command.downgrade(alembic_config(store.engine), "0005")
    store.close()
    with sqlite3.connect(tmp_path / "old.db") as db:
        rows = dict(db.execute("select id, event_ids from deliveries").fetchall())
        tables = {r[0] for r in db.execute("select name from sqlite_master where type='table'")}
        assert db.execute("select count(*) from delivery_attempts").fetchone() == (1,)
    assert rows == {"d1": "[2, 1]", "d2": "[3]", "d3": "[]", "d4": "[1]"}
    assert "delivery_events" not in tables


def record(store: Store, at: int, deliveries: int = 1) -> list[int]:
    events = [NewEvent(1, "t", "a.rrd", "x", "ALARM FIRED", "fired", "above", 1.0, 2.0, at, "m"),
              NewEvent(2, "u", "b.rrd", "y", "RESOLVED", "resolved", "above", 1.0, 0.5, at, "m")]
    planned = [PlannedDelivery(f"d{at}-{n}", "log", {"n": n}, (1, 0)) for n in range(deliveries)]
    change = StateChange((1, "a.rrd", "x"), State.FIRING, at, at, None, at, 2.0, at)
    return store.record_check(RunSummary(at, 0.1, 1, 2, 1, 1, 0), [change], events, planned).event_ids


def test_claim_takes_each_due_delivery_once_with_its_events_and_its_outcome_counts(any_database: str) -> None:
    store = open_store(any_database)
    ids = record(store, 100, deliveries=2)
    first = store.claim_deliveries(now=200, lease_s=10, limit=10)
    assert [(c.id, c.attempt, c.params, [e.id for e in c.events]) for c in first] == [
        ("d100-0", 1, '{"n": 0}', sorted(ids)), ("d100-1", 1, '{"n": 1}', sorted(ids))]
    assert store.claim_deliveries(now=205, lease_s=10, limit=10) == []  # leased
    store.record_attempt("d100-0", Attempt(206, 0.2, False, "boom", DeliveryStatus.PENDING, retry_at=300))
    store.record_attempt("d100-1", Attempt(206, 0.1, True, None, DeliveryStatus.SENT))
    assert store.claim_deliveries(now=299, lease_s=10, limit=10) == []  # not due yet
    [again] = store.claim_deliveries(now=300, lease_s=10, limit=10)
    assert (again.id, again.attempt) == ("d100-0", 2)
    rows = {d.id: (d.status, d.attempts, d.sent_at, d.last_error, d.lease_until, d.event_ids, len(a))
            for d, a in store.deliveries()}
    # Attempts count recorded outcomes: the claim of the second made none yet.
    assert rows == {"d100-0": ("pending", 1, None, "boom", 310, [ids[1], ids[0]], 1),
                    "d100-1": ("sent", 1, 206, None, None, [ids[1], ids[0]], 1)}
    store.close()


def test_threshold_activity_counts_firing_series_and_the_last_firing(any_database: str) -> None:
    store = open_store(any_database)
    record(store, 100)
    record(store, 160)
    assert store.threshold_activity([1, 2, 3]) == ({1: 1}, {1: 160})
    assert store.threshold_activity([]) == ({}, {})
    store.close()


def test_user_rows(any_database: str) -> None:
    store = open_store(any_database)
    made = store.add_user("ann", "h1", "admin", 5)
    assert made is not None and store.add_user("ann", "h2", "viewer", 6) is None
    assert store.set_password_hash("ann", "h3", replacing="h0") is False
    assert store.set_password_hash("ann", "h3", replacing="h1") is True
    assert store.set_password_hash("bob", "h4") is False
    user = store.user(made.id)
    assert user is not None and (user.name, user.password_hash, user.role) == ("ann", "h3", "admin")
    assert store.user_named("bob") is None and [u.name for u in store.users()] == ["ann"]
    assert store.delete_user("ann") is True and store.delete_user("ann") is False
    assert store.users() == []
    store.close()
