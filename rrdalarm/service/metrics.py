"""Prometheus metrics of the running service (prometheus-client, a registry of our own)."""

from __future__ import annotations

from collections.abc import Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge

from rrdalarm.model.results import AttemptResult, CheckResult
from rrdalarm.model.states import DeliveryStatus, Status


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.checks = Counter("rrdalarm_checks", "Checks run by this process", registry=r)
        self.check_failures = Counter("rrdalarm_check_failures", "Checks that could not run", ["reason"], registry=r)
        self.duration = Gauge("rrdalarm_check_duration_seconds", "Duration of the last check", registry=r)
        self.last_check = Gauge("rrdalarm_last_check_timestamp_seconds", "When the last check ran", registry=r)
        self.last_success = Gauge(
            "rrdalarm_last_success_timestamp_seconds",
            "When the newest completed check ran, in this process or (cron) in the database; 0: none yet", registry=r,
        )
        self.leader = Gauge(
            "rrdalarm_leader",
            "1 while this service runs the scheduled checks, 0 while another on its database does (standby)",
            registry=r,
        )
        self.files = Gauge("rrdalarm_files_checked", "Files read by the last check", registry=r)
        self.series = Gauge("rrdalarm_series", "Series of the last check by state", ["state"], registry=r)
        self.alarms = Counter("rrdalarm_alarms_fired", "ALARM FIRED rows of the checks run", registry=r)
        self.deliveries = Counter(
            "rrdalarm_deliveries", "Delivery attempts by result (sent, retry, dead)", ["action", "result"], registry=r
        )
        for state in ("firing", "ok", "unreadable", "stale", "flapping"):
            self.series.labels(state)

    def observe_check(self, result: CheckResult) -> None:
        self.checks.inc()
        self.duration.set(result.duration_s)
        self.last_check.set(result.started_at)
        self.files.set(result.files_checked)
        self.alarms.inc(result.alarms_fired)
        stale = sum(1 for row in result.rows if row.status is Status.STALE and row.ds)  # not the threshold's note
        self.series.labels("firing").set(result.firing)
        self.series.labels("unreadable").set(result.errors - stale)
        self.series.labels("stale").set(stale)
        self.series.labels("flapping").set(sum(1 for row in result.rows if row.status is Status.FLAPPING))
        self.series.labels("ok").set(max(0, result.series_checked - result.firing - result.errors))
        self.observe_deliveries(result.deliveries)

    def observe_deliveries(self, results: Sequence[AttemptResult]) -> None:
        for r in results:
            dead = r.status is DeliveryStatus.DEAD
            result = DeliveryStatus.SENT.value if r.ok else (DeliveryStatus.DEAD.value if dead else "retry")
            self.deliveries.labels(r.action, result).inc()
