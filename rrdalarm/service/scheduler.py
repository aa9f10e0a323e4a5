"""APScheduler wiring: periodic checks and deliveries, one instance at a time.

Checks across processes are serialised by the check lock (rrdalarm.check.lock), so a
cron `rrdalarm check` and the scheduler never evaluate at the same time; the
scheduler's own job never queues up behind a running check (coalesce,
max_instances=1) and skips a turn when another process holds the lock.
Of the services sharing one database, only the one holding the leader lock runs the
scheduled checks (rrdalarm.service.leadership); every one of them delivers.
"""

from __future__ import annotations

from datetime import UTC, datetime

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

from rrdalarm.service.leadership import Leadership
from rrdalarm.service.service import CheckService
from rrdalarm.store.leader import leader_lock


def make_scheduler(service: CheckService) -> BackgroundScheduler:
    """The scheduler of `service`, which from now on runs its checks only while it leads."""
    settings = service.settings().service
    service.leadership = Leadership(leader_lock(service.store, settings.check_interval), service.metrics.leader)
    scheduler = BackgroundScheduler(timezone="UTC")
    scheduler.add_job(
        service.scheduled_check, IntervalTrigger(seconds=max(1.0, settings.check_interval)), id="check",
        coalesce=True, max_instances=1, misfire_grace_time=max(1, int(settings.check_interval)),
        next_run_time=datetime.now(UTC),  # the first check at once, not one interval from now
    )
    scheduler.add_job(
        service.deliver, IntervalTrigger(seconds=max(1.0, settings.deliver_interval)), id="deliver",
        coalesce=True, max_instances=1, misfire_grace_time=max(1, int(settings.deliver_interval)),
    )
    return scheduler
