"""One check at a time, across processes (cron runs, the scheduler, /start)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from rrdalarm.common.fileutil import make_private_dirs


class CheckBusy(Exception):
    """Another check held the lock for longer than we were willing to wait."""


@contextmanager
def check_lock(data_dir: Path, wait: float) -> Iterator[None]:
    """Hold the data dir's check lock; raise CheckBusy after `wait` seconds."""
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
