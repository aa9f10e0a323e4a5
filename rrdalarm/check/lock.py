"""One check at a time, across processes (cron runs, the scheduler, /start) and installations.

Two locks: the data dir's lock file (cheap, local) and the database's (rrdalarm/store/lock.py),
which also keeps apart services and cron runs with their own data dirs on one database.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from rrdalarm.common.fileutil import make_private_dirs

if TYPE_CHECKING:
    from rrdalarm.store.database import Store


class CheckBusy(Exception):
    """Another check held the lock for longer than we were willing to wait."""


@contextmanager
def check_lock(data_dir: Path, wait: float, store: Store) -> Iterator[None]:
    """Hold the data dir's and the database's check locks; raise CheckBusy after `wait` seconds in all."""
    # Here: commands that never check (validate, user, …) do not pay for SQLAlchemy.
    from rrdalarm.store.lock import DatabaseLockBusy, database_check_lock

    started = time.monotonic()
    with _file_lock(data_dir, wait):
        left = max(0.0, wait - (time.monotonic() - started))
        try:
            with database_check_lock(store, left):
                yield
        except DatabaseLockBusy as exc:
            raise CheckBusy(f"another check is running (database {store.safe_url}: lock {exc})") from None


@contextmanager
def _file_lock(data_dir: Path, wait: float) -> Iterator[None]:
    from filelock import FileLock, Timeout  # here: commands that never check do not pay for it

    make_private_dirs(data_dir)
    path = data_dir / "check.lock"
    lock = FileLock(str(path), mode=0o600)
    try:
        lock.acquire(timeout=wait)
    except Timeout:
        raise CheckBusy(
            f"another check is running (lock {path} held); waited {wait:g} s"
        ) from None
    try:
        yield
    finally:
        lock.release()
