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

from sqlalchemy import CursorResult, insert, select, text, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError, OperationalError, SQLAlchemyError

from rrdalarm.common.errors import StoreError
from rrdalarm.store.database import CheckLockRow, Store, _first_line

# Any constant works, the same in every rrdalarm process; not the migrations' key.
PG_CHECK_KEY = 0x72726463
LEASE_S = 60.0
RENEW_S = LEASE_S / 4
POLL_S = 0.2
CHECK_ROW = "check"
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


SERVER_KEEPALIVE_IDLE_S = 10


def keep_session_alive(conn: Connection, idle_s: int = SERVER_KEEPALIVE_IDLE_S) -> None:
    """Have the server probe this session's client, so that it ends the session (and frees the locks the
    session holds) within seconds of the client's machine vanishing, not after the system's two hours."""
    for name, value in (("idle", idle_s), ("interval", 1), ("count", 3)):
        conn.execute(text(f"SET tcp_keepalives_{name} = {int(value)}"))


@contextmanager
def _advisory(store: Store, wait: float) -> Iterator[None]:
    # Autocommit: the lock belongs to the database connection, and no transaction stays open while it is held.
    with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        keep_session_alive(conn)
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


def holder_name() -> str:
    """Who holds a lease: host and process (a dead process of this host is seen at once), and a nonce."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:12]}"


@contextmanager
def _lease(store: Store, wait: float) -> Iterator[None]:
    me = holder_name()
    _take_lease(store, me, wait)
    stop = threading.Event()
    renewer = threading.Thread(target=_renew, args=(store, me, stop), name="check-lock-lease", daemon=True)
    renewer.start()
    try:
        yield
    finally:
        stop.set()
        renewer.join()
        free_lease(store, CHECK_ROW, me)


def _take_lease(store: Store, me: str, wait: float) -> None:
    deadline = time.monotonic() + wait
    while True:
        won, holder = try_lease(store, CHECK_ROW, me, LEASE_S)
        if won:
            return
        if time.monotonic() >= deadline:
            raise DatabaseLockBusy(f"held by {holder}" + (f"; waited {wait:g} s" if wait > 0 else ""))
        time.sleep(min(POLL_S, max(0.0, deadline - time.monotonic())))


def try_lease(store: Store, name: str, me: str, lease_s: float) -> tuple[bool, str | None]:
    """One try at the lease row `name`: whether `me` holds it now, and who held it before."""
    now = time.time()
    # Read, then one conditional UPDATE in a transaction of its own: SQLite cannot turn a reading
    # transaction into a writing one while another process writes.
    with store.engine.connect() as conn:
        holder = conn.scalar(select(CheckLockRow.holder).where(CheckLockRow.name == name))
    free = (CheckLockRow.holder.is_(None)) | (CheckLockRow.expires_at < now) | (CheckLockRow.holder == me)
    if holder is not None and _dead_here(holder):
        free = free | (CheckLockRow.holder == holder)
    with store.engine.begin() as conn:
        won = conn.execute(update(CheckLockRow).where(CheckLockRow.name == name, free)
                           .values(holder=me, expires_at=now + lease_s))
    return bool(cast(CursorResult[Any], won).rowcount), holder


def renew_lease(store: Store, name: str, me: str, lease_s: float) -> bool:
    """Push `me`'s lease of row `name` to `lease_s` from now; False if `me` no longer holds it."""
    with store.engine.begin() as conn:
        kept = conn.execute(update(CheckLockRow).where(CheckLockRow.name == name, CheckLockRow.holder == me)
                            .values(expires_at=time.time() + lease_s))
    return bool(cast(CursorResult[Any], kept).rowcount)


def free_lease(store: Store, name: str, me: str) -> None:
    with store.engine.begin() as conn:
        conn.execute(update(CheckLockRow).where(CheckLockRow.name == name, CheckLockRow.holder == me)
                     .values(holder=None, expires_at=None))


def ensure_lease_row(store: Store, name: str) -> None:
    """Add the lease row `name` if it is missing (the check's comes with the schema)."""
    with store.engine.connect() as conn:
        if conn.scalar(select(CheckLockRow.name).where(CheckLockRow.name == name)) is not None:
            return
    try:
        with store.engine.begin() as conn:
            conn.execute(insert(CheckLockRow).values(name=name, holder=None, expires_at=None))
    except IntegrityError:
        pass  # another process added it first


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
            renew_lease(store, CHECK_ROW, me, LEASE_S)
        except SQLAlchemyError:
            continue  # a busy database: the next turn tries again, well within the lease
