"""The long-running side: checks for the scheduler and for /start, with what the pages show.

No Flask here: the web app asks this object to run a check and reads its last
result; the scheduler calls the same methods. Settings and thresholds are read
again before every check, so edits apply at the next check without a restart.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from rrdalarm.check.engine import deliver_after_check, quieting_at, run_check
from rrdalarm.check.lock import CheckBusy, check_lock
from rrdalarm.common.errors import StoreError
from rrdalarm.config.settings import load_settings
from rrdalarm.config.thresholds import load_thresholds_file
from rrdalarm.delivery.outbox import deliver_pending
from rrdalarm.model.definitions import Settings, Threshold, ThresholdsFile
from rrdalarm.model.errors import ConfigError
from rrdalarm.model.results import AttemptResult, CheckResult, Row
from rrdalarm.model.states import Status
from rrdalarm.report.alarms_now import AlarmsNow, Wanted
from rrdalarm.service.alarms_view import AlarmsViews
from rrdalarm.service.leadership import Leadership
from rrdalarm.service.metrics import Metrics
from rrdalarm.store.database import Store, open_store

log = logging.getLogger("rrdalarm.service")


# What a thresholds file a request may name looks like: a plain file name, TOML or a legacy text file.
_REQUEST_FILE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,200}\.(toml|txt)")


def request_thresholds_file(settings: Settings, name: str) -> Path:
    """`name` (from /start?config=) as a file of the declared thresholds_dir; ConfigError otherwise.

    Only there, and never in the data dir: opening and closing the SQLite database (or its WAL)
    from this process would drop the POSIX locks the service holds on it.
    """
    folder = settings.service.thresholds_dir
    if folder is None:
        raise ConfigError(settings.path, "config= is refused: no [service] thresholds_dir is set", field="config")
    if not _REQUEST_FILE.fullmatch(name):
        raise ConfigError(None, "config must be a file name ending in .toml or .txt (letters, digits, '.', '_', '-')",
                          field="config")
    base = folder.resolve()
    data = settings.data_dir.resolve()
    candidate = (base / name).resolve()
    if candidate.parent != base or candidate == data or data in candidate.parents:
        raise ConfigError(None, f"config {name!r} is not a file in the thresholds_dir", field="config")
    if not candidate.is_file():
        raise ConfigError(None, f"config {name!r} does not exist in the thresholds_dir", field="config")
    return candidate


def health_problem(database: bool, scheduler: str, failed: bool, age: float | None, up_for: float,
                   limit: float) -> str | None:
    """Why the service is unhealthy (a generic phrase for an unauthenticated page), or None."""
    if not database:
        return "the database does not answer"
    if scheduler == "stopped":
        return "the scheduler has stopped"
    if failed:
        return "the last check failed"
    if age is None:
        return "no check has completed" if up_for > limit else None
    return "no check has completed recently" if age > limit else None


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
    failed_at: float | None = None
    # The rows that are not OK, picked once per check: "Alarms now" reads them on every request, and a
    # check that kept its OK rows (Check now, /start) may hold a million of them.
    troubled: tuple[Row, ...] = ()
    complete: bool = False  # the result's rows include the OK ones


def not_ok(result: CheckResult) -> tuple[Row, ...]:
    return tuple(r for r in result.rows if r.status is not Status.OK)


@dataclass(frozen=True)
class AlarmsPage:
    """Alarms now, when checks last ran, the thresholds (for the filters), and why the file cannot be read."""

    view: AlarmsNow
    checked_at: int | None
    thresholds: Mapping[int, Threshold]
    problem: str | None


# Checks may be this many intervals late (or, after a start, not done yet) before the service is unhealthy.
HEALTH_INTERVALS = 3


@dataclass(frozen=True)
class Health:
    """What /healthz says; `problem` is a generic phrase (never a path or a message of a check)."""

    healthy: bool
    database: bool
    scheduler: str
    last_check_age_s: float | None
    problem: str | None
    role: str | None = None  # "leader" or "standby" among services on one database; None: no scheduler


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
        self.started_at = clock()
        first = self.settings()
        self.store: Store = open_store(first.db_url)
        self.scheduler: Any = None  # an APScheduler scheduler when `serve` runs one
        self.leadership: Leadership | None = None  # with the scheduler: whether this process runs its checks
        self.busy = threading.Event()
        self.views = AlarmsViews()

    def settings(self) -> Settings:
        settings = load_settings(self.settings_path)
        return replace(settings, **self.overrides) if self.overrides else settings

    def thresholds_file(self, settings: Settings, name: str | None) -> Path:
        """The thresholds file to use; a `name` from a request must be a thresholds file in [service] thresholds_dir."""
        if name is None:
            if settings.thresholds is None:
                raise ConfigError(settings.path, "no thresholds file configured", field="thresholds")
            return settings.thresholds
        return request_thresholds_file(settings, name)

    def configured(self) -> ThresholdsFile:
        """The configured thresholds file as it is now (thresholds and maintenance windows); ConfigError if bad."""
        return load_thresholds_file(self.thresholds_file(self.settings(), None))

    def run_check(self, *, config: str | None = None, wait: float = 0.0, want_ok: bool = True,
                  from_start: bool = False) -> CheckResult:
        """One check under the cross-process lock; CheckBusy if another runs past `wait` seconds."""
        try:
            settings = self.settings()
            path = self.thresholds_file(settings, config)
            loaded = load_thresholds_file(path)
            if from_start:  # after validation: a refused request does not use up the interval
                self._guard_start(settings.service.min_start_interval)
            with check_lock(settings.data_dir, wait, self.store):
                self.busy.set()
                try:
                    # The file read is the one checked: a threshold missing from another file is not deleted.
                    result = run_check(replace(settings, thresholds=path), loaded.thresholds, self.store,
                                       want_ok=want_ok, deliver=False, windows=loaded.windows)
                    # Before the deliveries (which may wait on receivers): the pages show this check at once.
                    self.last = LastCheck(result, self.clock(), None, troubled=not_ok(result), complete=want_ok)
                finally:
                    self.busy.clear()
            self._prepare_views()
            deliver_after_check(self.store, settings, result)
        except CheckBusy:
            self.metrics.check_failures.labels("busy").inc()
            raise
        except (ConfigError, StoreError) as exc:
            self.metrics.check_failures.labels("config" if isinstance(exc, ConfigError) else "database").inc()
            self.last.error = str(exc)
            self.last.failed_at = self.clock()
            raise
        self.metrics.observe_check(result)
        for warning in result.warnings:
            log.warning("%s", warning)
        log.info("check: %d files, %d series, %d alarms fired, %d firing, %d unreadable in %.2f s",
                 result.files_checked, result.series_checked, result.alarms_fired, result.firing, result.errors,
                 result.duration_s)
        return result

    def newest_rows(self, every: bool = False) -> tuple[Sequence[Row] | None, int | None]:
        """The not-OK rows (`every`: all rows) of this process's last check when it is the newest recorded,
        and when checks last ran. The scheduler's checks keep no OK rows: with `every`, None for those."""
        newest = self.store.newest_run_at()
        held = self.last  # one read: a check ending meanwhile replaces it whole
        last = held.result
        if last is not None and (newest is None or last.started_at >= newest):
            if not every:
                return held.troubled, last.started_at
            return (last.rows if held.complete else None), last.started_at
        return None, None if newest is None else int(newest)

    def alarms_now(self, wanted: Wanted, now: int) -> AlarmsPage:
        """Alarms now narrowed to `wanted`, with what the page says around it."""
        try:
            loaded, problem = self.configured(), None
        except ConfigError as exc:
            loaded, problem = ThresholdsFile([]), str(exc)
        thresholds = {t.id: t for t in loaded.thresholds}
        rows, checked_at = self.newest_rows()
        view = self.views.view(self.store.troubled_states(), rows, thresholds, wanted,
                               quieting_at(self.store, loaded.windows, now))
        return AlarmsPage(view, checked_at, thresholds, problem)

    def _prepare_views(self) -> None:
        """Make Alarms now's groups for the check just done, so that no page request waits for them."""
        try:
            self.alarms_now(Wanted(), int(self.clock()))
        except StoreError as exc:
            log.warning("Alarms now not prepared: %s", exc)

    def _guard_start(self, interval: float) -> None:
        with self._start_lock:
            now = self.clock()
            if self._last_start is not None and now - self._last_start < interval:
                raise TooSoon(max(1, int(interval - (now - self._last_start) + 0.999)))
            self._last_start = now

    def scheduled_check(self) -> None:
        """The scheduler's job: skip (do not queue) when a check is already running elsewhere.

        It keeps only the rows that are not OK, as `check --quiet` does: the workers then send back
        a few rows instead of one per series, which in this process would hold the interpreter (and
        so every page) for most of the check over a large tree. Check now and /start keep them all.
        Of the services sharing a database, only the leader runs it (rrdalarm.service.leadership).
        """
        if self.leadership is not None and not self.leadership.lead():
            return
        try:
            self.run_check(wait=0.0, want_ok=False)
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

    def role(self) -> str | None:
        """'leader' (runs the scheduled checks), 'standby' (another service does), None: no scheduler."""
        if self.scheduler is None or self.leadership is None:
            return None
        return self.leadership.role

    def last_success(self) -> float | None:
        """When the newest check that completed ran: this process's, or (cron checks) the database's newest run."""
        newest = self.store.newest_run_at()
        times = [t for t in (self.last.finished_at, newest) if t is not None]
        return max(times) if times else None

    def health(self) -> Health:
        """Healthy while the database answers, checks complete and the last one did not fail."""
        now = self.clock()
        scheduler = self.scheduler_state()
        try:
            last = self.last_success()
            database = True
        except StoreError:
            last, database = None, False
        age = None if last is None else round(now - last, 1)
        failed = self.last.failed_at is not None and (last is None or self.last.failed_at >= last)
        limit = HEALTH_INTERVALS * self.settings().service.check_interval
        # A standby reads the leader's checks from the database, as a service fed by cron does.
        problem = health_problem(database, scheduler, failed, age, now - self.started_at, limit)
        return Health(problem is None, database, scheduler, age, problem, self.role())

    def close(self) -> None:
        self.store.close()
