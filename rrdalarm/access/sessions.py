"""Server-side records of the web pages' sessions, so that a session can end before its cookie does.

The signed cookie says who a session is for; a session is alive only while its
record exists here (one empty file per session, named by a hash of its id, in
`<data_dir>/sessions`, beside the key that signs the cookies). Logout removes
the record, idle sessions expire, and a session also carries a stamp of what it
was opened with (the user's password hash, or the API token) so that changing
the password, deleting the user or rotating the token ends it, from any process.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import time
from pathlib import Path

from rrdalarm.common.fileutil import make_private_dirs

# A record is touched at most this often, so that busy pages do not write on every request.
TOUCH_EVERY_S = 60.0


def stamp(value: str) -> str:
    """A short fingerprint of a credential (never the credential itself) to tie a session to it."""
    return hashlib.sha256(b"rrdalarm-session\0" + value.encode("utf-8")).hexdigest()[:32]


class SessionRecords:
    """Alive sessions as files; safe to share between threads and processes (create, stat, unlink)."""

    def __init__(self, data_dir: Path, idle_s: float) -> None:
        self.folder = data_dir / "sessions"
        self.idle_s = idle_s

    def _path(self, sid: str) -> Path:
        return self.folder / hashlib.sha256(sid.encode("utf-8")).hexdigest()

    def open(self) -> str:
        """A new session id, recorded as alive."""
        make_private_dirs(self.folder)
        self.sweep()
        sid = secrets.token_urlsafe(32)
        os.close(os.open(self._path(sid), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        return sid

    def alive(self, sid: object, now: float | None = None) -> bool:
        """Whether `sid` is an open session that was used within the idle time; keeps it alive."""
        if not isinstance(sid, str) or not sid:
            return False
        now = time.time() if now is None else now
        path = self._path(sid)
        try:
            used = path.stat().st_mtime
        except OSError:
            return False
        if now - used > self.idle_s:
            self.end(sid)
            return False
        if now - used > TOUCH_EVERY_S:
            with contextlib.suppress(OSError):
                os.utime(path, (now, now))
        return True

    def end(self, sid: object) -> None:
        if isinstance(sid, str) and sid:
            with contextlib.suppress(OSError):
                self._path(sid).unlink()

    def sweep(self, now: float | None = None) -> None:
        """Remove the records of sessions that have been idle too long."""
        now = time.time() if now is None else now
        with contextlib.suppress(OSError):
            for entry in os.scandir(self.folder):
                with contextlib.suppress(OSError):
                    if now - entry.stat().st_mtime > self.idle_s:
                        os.unlink(entry.path)
