"""Which of the services sharing a database runs the scheduled checks: the one holding the leader lock.

The others serve pages, answer /start and Check now, deliver, and try to take the lead at every check
interval, so one of them takes over within an interval of the leader's end. The log says when this
process takes or loses the lead; /healthz, /metrics and the page header say where it stands.
"""

from __future__ import annotations

import logging

from prometheus_client import Gauge

from rrdalarm.store.leader import LeaderLock

log = logging.getLogger("rrdalarm.leader")


class Leadership:
    """The leader lock of one service, with what it says when its standing changes."""

    def __init__(self, lock: LeaderLock, gauge: Gauge) -> None:
        self._lock = lock
        self._gauge = gauge
        self._led: bool | None = None  # as last logged; None before the first try

    @property
    def role(self) -> str:
        return "leader" if self._lock.leading else "standby"

    def lead(self) -> bool:
        """At a scheduled check's turn: whether this process runs it (keeping or taking the lead)."""
        turn = self._lock.lead()
        if turn.leading and self._led is not True:
            log.info("leader: this service now runs the scheduled checks (%s)", turn.why)
        elif not turn.leading and self._led is True:
            log.warning("leader: lead lost (%s); standby: checks run elsewhere until this service takes over",
                        turn.why)
        elif not turn.leading and self._led is None:
            log.info("standby: %s; this service takes over the scheduled checks if that one stops", turn.why)
        self._led = turn.leading
        self._gauge.set(1 if turn.leading else 0)
        return turn.leading

    def release(self) -> None:
        """At a clean stop: another service takes over at its next interval instead of after a lease."""
        was = self._lock.leading
        self._lock.release()
        self._gauge.set(0)
        if was:
            log.info("leader: lead released")
