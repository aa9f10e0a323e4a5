"""The check lock held by the database, so that installations sharing one database never check at once.

PostgreSQL: a session-level advisory lock on a connection of its own, held for the check's
duration; the server lets go of it when that connection ends, however the process ended.
Other databases: the one row of `check_lock` names its holder and a lease. The holder renews the
lease while it holds the row, so a killed process blocks others for one lease at most (and not
at all on its own host, where a dead process id is seen at once).
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, cast

from sqlalchemy import CursorResult, select, text, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from rrdalarm.common.errors import StoreError
from rrdalarm.store.database import CheckLockRow, Store, _first_line

# Any constant works, the same in every rrdalarm process; not the migrations' key.
PG_CHECK_KEY = 0x72726463
LEASE_S = 60.0
RENEW_S = LEASE_S / 4
POLL_S = 0.2
_PG_LOCK_NOT_AVAILABLE = "55P03"


class DatabaseLockBusy(Exception):
    """Another holder kept the database's check lock for longer than the wait."""


@contextmanager
def database_check_lock(store: Store, wait: float) -> Iterator[None]:
    """Hold the database's check lock; DatabaseLockBusy after `wait` seconds, StoreError if it fails."""
    held = _advisory if store.engine.dialect.name == "postgresql" else _lease
    try:
        with held(store, wait):
            yield
    except SQLAlchemyError as exc:
        raise StoreError(f"database {store.safe_url}: check lock: {_first_line(exc)}") from None


@contextmanager
def _advisory(store: Store, wait: float) -> Iterator[None]:
    # Autocommit: the lock belongs to the database connection, and no transaction stays open while it is held.
    with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        _take_advisory(conn, wait)
        try:
            yield
        finally:
            conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": PG_CHECK_KEY})


def _take_advisory(conn: Connection, wait: float) -> None:
    if conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": PG_CHECK_KEY}).scalar():
        return
    if wait <= 0:
        raise DatabaseLockBusy("held by another process on this database")
    # The server waits for us; lock_timeout applies to advisory locks too (0 would mean forever).
    conn.execute(text(f"SET lock_timeout = {max(1, int(wait * 1000))}"))
    try:
        conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": PG_CHECK_KEY})
    except OperationalError as exc:
        if getattr(exc.orig, "sqlstate", None) == _PG_LOCK_NOT_AVAILABLE:
            raise DatabaseLockBusy(f"held by another process on this database; waited {wait:g} s") from None
        raise
    finally:
        conn.execute(text("RESET lock_timeout"))


def _me() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:12]}"


@contextmanager
def _lease(store: Store, wait: float) -> Iterator[None]:
    me = _me()
    _take_lease(store, me, wait)
    stop = threading.Event()
    renewer = threading.Thread(target=_renew, args=(store, me, stop), name="check-lock-lease", daemon=True)
    renewer.start()
    try:
        yield
    finally:
        stop.set()
        renewer.join()
        with store.engine.begin() as conn:
            conn.execute(update(CheckLockRow).where(CheckLockRow.name == "check", CheckLockRow.holder == me)
                         .values(holder=None, expires_at=None))


def _take_lease(store: Store, me: str, wait: float) -> None:
    deadline = time.monotonic() + wait
    while True:
        now = time.time()
        # Read, then one conditional UPDATE in a transaction of its own: SQLite cannot turn a reading
        # transaction into a writing one while another process writes.
        with store.engine.connect() as conn:
            holder = conn.scalar(select(CheckLockRow.holder).where(CheckLockRow.name == "check"))
        free = (CheckLockRow.holder.is_(None)) | (CheckLockRow.expires_at < now)
        if holder is not None and _dead_here(holder):
            free = free | (CheckLockRow.holder == holder)
        with store.engine.begin() as conn:
            won = conn.execute(update(CheckLockRow).where(CheckLockRow.name == "check", free)
                               .values(holder=me, expires_at=now + LEASE_S))
        if cast(CursorResult[Any], won).rowcount:
            return
        if time.monotonic() >= deadline:
            raise DatabaseLockBusy(f"held by {holder}" + (f"; waited {wait:g} s" if wait > 0 else ""))
        time.sleep(min(POLL_S, max(0.0, deadline - time.monotonic())))


def _dead_here(holder: str) -> bool:
    """Whether `holder` names a process of this host that is gone."""
    host, _, rest = holder.partition(":")
    pid = rest.partition(":")[0]
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False  # alive, someone else's
    return False


def _renew(store: Store, me: str, stop: threading.Event) -> None:
    while not stop.wait(RENEW_S):
        try:
            with store.engine.begin() as conn:
                conn.execute(update(CheckLockRow).where(CheckLockRow.name == "check", CheckLockRow.holder == me)
                             .values(expires_at=time.time() + LEASE_S))
        except SQLAlchemyError:
            continue  # a busy database: the next turn tries again, well within the lease
