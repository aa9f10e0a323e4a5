"""The leader lock: of the services sharing one database, the one holding it runs the scheduled checks.

PostgreSQL: a session-level advisory lock (not the check lock's key) on a connection of its own, kept
open for as long as the process leads; the server lets go of it when that session ends, however the
process ended. Other databases: the row `leader` of `check_lock`, a short lease that a thread renews
(as the check lock's lease, rrdalarm/store/lock.py). When in doubt the process does not lead: a lost
connection or a lease not renewed in time ends the lead; two leaders are never both sure of it.
"""

from __future__ import annotations

import contextlib
import threading
import time
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import create_engine, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool

from rrdalarm.store.database import Store, _first_line
from rrdalarm.store.lock import (
    ensure_lease_row,
    free_lease,
    holder_name,
    keep_session_alive,
    renew_lease,
    try_lease,
)

# Any constant works, the same in every rrdalarm process; neither the check lock's nor the migrations' key.
PG_LEADER_KEY = 0x72726c64
LEADER_ROW = "leader"
MIN_LEASE_S = 5.0


@dataclass(frozen=True)
class Turn:
    """Where this process stands after a try: leading or not, and why (a line for the log)."""

    leading: bool
    why: str


class LeaderLock(Protocol):
    """Taken with `lead()` at every check interval; `leading` is read by the pages at any time."""

    @property
    def leading(self) -> bool: ...

    def lead(self) -> Turn:
        """Keep the lead (it is checked first) or try to take it; never raises."""

    def release(self) -> None:
        """Let go at a clean stop, so that another service takes over at its next interval."""


def leader_lock(store: Store, interval: float) -> LeaderLock:
    """The leader lock of `store`'s database for a service that checks every `interval` seconds."""
    if store.engine.dialect.name == "postgresql":
        return AdvisoryLeader(store, timeout_s=min(10.0, max(2.0, interval)))
    return LeaseLeader(store, lease_s=max(MIN_LEASE_S, 3 * interval))


class AdvisoryLeader:
    """PostgreSQL: pg_try_advisory_lock on a connection of its own, checked before every scheduled check."""

    def __init__(self, store: Store, timeout_s: float) -> None:
        self._safe_url = store.safe_url
        seconds = max(1, int(timeout_s))
        # No pool: a connection holding the lock is never handed to other work. libpq's timeouts bound the
        # wait for a server that vanished (a lost network answers nothing, not an error).
        self._engine = create_engine(store.engine.url, poolclass=NullPool, connect_args={
            "connect_timeout": seconds, "keepalives": 1, "keepalives_idle": seconds,
            "keepalives_interval": 1, "keepalives_count": 3, "tcp_user_timeout": seconds * 1000})
        self._seconds = seconds
        self._conn: Connection | None = None
        self._lock = threading.Lock()

    @property
    def leading(self) -> bool:
        return self._conn is not None

    def lead(self) -> Turn:
        with self._lock:
            if self._conn is not None:
                try:
                    self._conn.execute(text("SELECT 1"))
                    return Turn(True, "holds the leader lock")
                except SQLAlchemyError as exc:
                    self._drop()
                    lost = f"connection to database {self._safe_url} lost: {_first_line(exc)}"
                    return Turn(False, lost)
            return self._take()

    def _take(self) -> Turn:
        try:
            conn = self._engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        except SQLAlchemyError as exc:
            return Turn(False, f"database {self._safe_url}: {_first_line(exc)}")
        try:
            # The server, too, ends a session whose client host vanished, and so frees the lock for another.
            keep_session_alive(conn, self._seconds)
            if conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": PG_LEADER_KEY}).scalar():
                self._conn = conn
                return Turn(True, "holds the leader lock")
        except SQLAlchemyError as exc:
            conn.close()
            return Turn(False, f"database {self._safe_url}: {_first_line(exc)}")
        conn.close()
        return Turn(False, "another service holds the leader lock")

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.invalidate()  # never reused: the server ends the session, and with it the lock
            conn.close()

    def release(self) -> None:
        with self._lock:
            if self._conn is not None:
                # Should it fail, the session ends below all the same, and the lock with it.
                with contextlib.suppress(SQLAlchemyError):
                    self._conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": PG_LEADER_KEY})
                self._drop()
        self._engine.dispose()


class LeaseLeader:
    """A lease row renewed by a thread; the process leads while its last renewal's lease runs."""

    def __init__(self, store: Store, lease_s: float) -> None:
        self._store = store
        self._me = holder_name()
        self._lease_s = lease_s
        self._valid_until = 0.0  # on the wall clock, as the row's expires_at that other processes read
        self._lost: str | None = None
        self._stop = threading.Event()
        self._renewer: threading.Thread | None = None
        self._lock = threading.Lock()

    @property
    def leading(self) -> bool:
        return time.time() < self._valid_until

    def lead(self) -> Turn:
        with self._lock:
            if self.leading:
                return Turn(True, "holds the leader lease")
            lost = self._lost or ("the leader lease ran out before it was renewed" if self._valid_until else None)
            self._lost, self._valid_until = None, 0.0
            turn = self._take()
            if not turn.leading and lost is not None:
                return Turn(False, f"{lost}; {turn.why}")
            return turn

    def _take(self) -> Turn:
        started = time.time()
        try:
            ensure_lease_row(self._store, LEADER_ROW)
            won, holder = try_lease(self._store, LEADER_ROW, self._me, self._lease_s)
        except SQLAlchemyError as exc:
            return Turn(False, f"database {self._store.safe_url}: {_first_line(exc)}")
        if not won:
            return Turn(False, f"another service holds the leader lease ({holder})")
        self._valid_until = started + self._lease_s
        if self._renewer is None or not self._renewer.is_alive():
            self._stop.clear()
            self._renewer = threading.Thread(target=self._renew, name="leader-lease", daemon=True)
            self._renewer.start()
        return Turn(True, "holds the leader lease")

    def _renew(self) -> None:
        # Often: a renewal held up by a busy database still lands well within the lease.
        while not self._stop.wait(self._lease_s / 6):
            started = time.time()
            try:
                kept = renew_lease(self._store, LEADER_ROW, self._me, self._lease_s)
            except SQLAlchemyError:
                continue  # the lease runs out unless the next turn succeeds: then the process no longer leads
            if not kept:
                self._lost = "another service took the leader lease"
                self._valid_until = 0.0
                return
            if not self._stop.is_set():  # a renewal that ends after a release does not lead again
                self._valid_until = started + self._lease_s

    def release(self) -> None:
        self._stop.set()
        if self._renewer is not None:
            self._renewer.join(timeout=2.0)  # one held up by a busy database is left behind: a stop stays quick
        with self._lock:
            self._valid_until = 0.0
            with contextlib.suppress(SQLAlchemyError):  # should it fail, the lease runs out instead
                free_lease(self._store, LEADER_ROW, self._me)
