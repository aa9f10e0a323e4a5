"""The long-running side: checks for the scheduler and for /start, with what the pages show.

No Flask here: the web app asks this object to run a check and reads its last
result; the scheduler calls the same methods. Settings and thresholds are read
again before every check, so edits apply at the next check without a restart.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from rrdalarm.config import ConfigError, Settings, load_settings, load_thresholds
from rrdalarm.delivery import AttemptResult, deliver_pending
from rrdalarm.engine import CheckResult, run_check
from rrdalarm.lock import CheckBusy, check_lock
from rrdalarm.metrics import Metrics
from rrdalarm.store import Store, StoreError, open_store

log = logging.getLogger("rrdalarm.service")


class TooSoon(Exception):
    """/start was called again before the minimum interval; `retry_after` is in seconds."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"a check was started {retry_after} s too early")
        self.retry_after = retry_after


@dataclass
class LastCheck:
    result: CheckResult | None = None
    finished_at: float | None = None
    error: str | None = None


class CheckService:
    """Runs checks and deliveries; one instance per process, shared by the scheduler and the web app."""

    def __init__(self, settings_path: Path | None, overrides: dict[str, Any] | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.settings_path = settings_path
        self.overrides = overrides or {}
        self.clock = clock
        self.metrics = Metrics()
        self.last = LastCheck()
        self._start_lock = threading.Lock()
        self._last_start: float | None = None
        first = self.settings()
        self.store: Store = open_store(first.db_url)
        self.scheduler: Any = None  # an APScheduler scheduler when `serve` runs one
        self.busy = threading.Event()

    def settings(self) -> Settings:
        settings = load_settings(self.settings_path)
        return replace(settings, **self.overrides) if self.overrides else settings

    def thresholds_file(self, settings: Settings, name: str | None) -> Path:
        """The thresholds file to use; a `name` from a request must be a file inside the config dir."""
        if name is None:
            if settings.thresholds is None:
                raise ConfigError(settings.path, "no thresholds file configured", field="thresholds")
            return settings.thresholds
        base = settings.config_dir.resolve()
        candidate = (base / name).resolve()
        if candidate.parent != base and base not in candidate.parents:
            raise ConfigError(None, f"config {name!r} is not a file inside {base}", field="config")
        if not candidate.is_file():
            raise ConfigError(None, f"config {name!r} does not exist in {base}", field="config")
        return candidate

    def run_check(self, *, config: str | None = None, wait: float = 0.0, want_ok: bool = True,
                  from_start: bool = False) -> CheckResult:
        """One check under the cross-process lock; CheckBusy if another runs past `wait` seconds."""
        try:
            settings = self.settings()
            path = self.thresholds_file(settings, config)
            thresholds = load_thresholds(path)
            if from_start:  # after validation: a refused request does not use up the interval
                self._guard_start(settings.service.min_start_interval)
            with check_lock(settings.data_dir, wait):
                self.busy.set()
                try:
                    # The file read is the one checked: a threshold missing from another file is not deleted.
                    result = run_check(replace(settings, thresholds=path), thresholds, self.store, want_ok=want_ok)
                finally:
                    self.busy.clear()
        except CheckBusy:
            self.metrics.check_failures.labels("busy").inc()
            raise
        except (ConfigError, StoreError) as exc:
            self.metrics.check_failures.labels("config" if isinstance(exc, ConfigError) else "database").inc()
            self.last.error = str(exc)
            raise
        self.metrics.observe_check(result)
        self.last = LastCheck(result, self.clock(), None)
        for warning in result.warnings:
            log.warning("%s", warning)
        log.info("check: %d files, %d series, %d alarms fired, %d firing, %d unreadable in %.2f s",
                 result.files_checked, result.series_checked, result.alarms_fired, result.firing, result.errors,
                 result.duration_s)
        return result

    def _guard_start(self, interval: float) -> None:
        with self._start_lock:
            now = self.clock()
            if self._last_start is not None and now - self._last_start < interval:
                raise TooSoon(max(1, int(interval - (now - self._last_start) + 0.999)))
            self._last_start = now

    def scheduled_check(self) -> None:
        """The scheduler's job: skip (do not queue) when a check is already running elsewhere."""
        try:
            self.run_check(wait=0.0, want_ok=True)
        except CheckBusy:
            log.info("check skipped: another check is running")
        except (ConfigError, StoreError) as exc:
            log.error("check failed: %s", exc)

    def deliver(self) -> list[AttemptResult]:
        try:
            results = deliver_pending(self.store, self.settings())
        except (ConfigError, StoreError) as exc:
            log.error("delivery failed: %s", exc)
            return []
        self.metrics.observe_deliveries(results)
        for r in results:
            if not r.ok:
                log.warning("delivery %s (%s): %s", r.delivery_id, r.action, r.error)
        return results

    def scheduler_state(self) -> str:
        """'running', 'stopped', or 'none' when checks come from cron (serve --no-scheduler)."""
        if self.scheduler is None:
            return "none"
        return "running" if self.scheduler.running else "stopped"

    def database_ok(self) -> bool:
        try:
            self.store.count_runs()
        except StoreError:
            return False
        return True

    def close(self) -> None:
        self.store.close()
