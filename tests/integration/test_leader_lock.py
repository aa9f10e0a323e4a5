"""The leader lock (rrdalarm/store/leader.py) on SQLite and on PostgreSQL: one leader, handed over when it ends."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
from conftest import Env
from pg import Cluster
from sqlalchemy import update

from rrdalarm.store.database import CheckLockRow, Store, open_store
from rrdalarm.store.leader import LEADER_ROW, PG_LEADER_KEY, LeaderLock, leader_lock

pytestmark = pytest.mark.usefixtures("any_database")


@pytest.fixture
def db(env: Env) -> Iterator[Store]:
    with open_store(env.settings().db_url) as store:
        yield store


def test_one_leads_and_the_other_takes_over_once_it_lets_go(db: Store) -> None:
    first, second = leader_lock(db, 1), leader_lock(db, 1)
    try:
        assert first.lead().leading and first.leading
        turn = second.lead()
        assert not turn.leading and not second.leading and "another service holds" in turn.why
        assert first.lead().leading  # kept, not taken twice
        first.release()
        assert not first.leading
        assert second.lead().leading and not first.lead().leading
    finally:
        first.release()
        second.release()


_LEAD_THEN_DIE = """
import os, signal, sys
from rrdalarm.store.database import open_store
from rrdalarm.store.leader import leader_lock

assert leader_lock(open_store(sys.argv[1]), 1).lead().leading
print("leading", flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_a_leader_killed_is_followed_at_the_next_try(env: Env, db: Store) -> None:
    proc = subprocess.run([sys.executable, "-c", _LEAD_THEN_DIE, env.settings().db_url], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == -signal.SIGKILL and proc.stdout == "leading\n", proc.stderr
    other = leader_lock(db, 60)  # a long lease: only the holder's end can free it this soon
    try:
        assert other.lead().leading
    finally:
        other.release()


def _lost(lock: LeaderLock, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while lock.leading and time.monotonic() < deadline:
        time.sleep(0.05)


def test_a_leader_whose_hold_ends_stops_leading(env: Env, db: Store, request: pytest.FixtureRequest) -> None:
    """The lead goes with the connection (PostgreSQL) or the lease row (SQLite): never two leaders."""
    first, second = leader_lock(db, 1), leader_lock(db, 1)
    try:
        assert first.lead().leading
        if db.engine.dialect.name == "postgresql":
            cluster: Cluster = request.getfixturevalue("pg_cluster")
            cluster.admin("SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' "
                          f"AND objid = {PG_LEADER_KEY} AND granted")
            assert second.lead().leading  # the server let go of the lock with the session
            turn = first.lead()
            assert "connection to database" in turn.why and "lost" in turn.why
        else:  # another process took a lease it saw run out
            with db.engine.begin() as conn:
                conn.execute(update(CheckLockRow).where(CheckLockRow.name == LEADER_ROW)
                             .values(holder="elsewhere:1:x", expires_at=time.time() + 60))
            _lost(first, 5)
            turn = first.lead()
            assert "another service took the leader lease" in turn.why
        assert not turn.leading and not first.leading
    finally:
        first.release()
        second.release()
