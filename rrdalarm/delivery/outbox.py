"""The outbox worker: sends pending deliveries with timeouts, retries and backoff.

Deliveries are claimed with a lease (an UPDATE that only one process can win),
so a cron `rrdalarm deliver`, a check and the service never send the same
delivery at the same time. A process killed while sending leaves the lease to
expire; the delivery is then sent again with the same id (at least once).
Each attempt runs in its own child process (rrdalarm/delivery/attempts.py), killed at
its deadline: a slow or stuck action costs at most its timeout, never holds up
the others, and can send nothing once its attempt is recorded as timed out.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any

from rrdalarm.delivery.attempts import START_LIMIT_S, Finished, portable, run_attempts
from rrdalarm.model.definitions import DEFAULT_SOURCE, Settings
from rrdalarm.model.events import Delivery, Event
from rrdalarm.model.results import AttemptResult
from rrdalarm.model.states import DeliveryStatus, EventKind
from rrdalarm.plugins import Action, ActionContext, available_actions, source_of_series
from rrdalarm.store.database import AlarmEvent, Attempt, Store

# Past the action's own timeout, so that its clearer error (say, a connect timeout) comes first.
_GRACE_S = 2.0


def backoff_delay(attempts: int, base: float, cap: float) -> float:
    """Seconds before the next attempt after `attempts` failed ones: base, 2*base, 4*base ... capped."""
    return float(min(cap, base * (2 ** max(0, attempts - 1))))


def action_context(settings: Settings) -> ActionContext:
    return ActionContext(
        log_dir=settings.logs, data_dir=settings.data_dir, scripts_dir=settings.scripts_dir,
        timeout=settings.delivery.timeout, smtp=settings.smtp,
    )


def _event(row: AlarmEvent) -> Event:
    # A source's series names start with its own prefix (Source.series_prefix).
    source = source_of_series(row.series) or DEFAULT_SOURCE
    return Event(
        id=row.id, at=row.at, threshold_id=row.threshold_id, threshold_name=row.threshold_name,
        source=source, series=row.series, ds=row.ds, status=row.status,
        kind=EventKind(row.kind), type=row.type, limit=row.limit, value=row.value, time=row.time,
        message=row.message, severity=row.severity, unit=row.unit, **_details(row.details),
    )


def _details(text: str | None) -> dict[str, Any]:
    """The labels, description and runbook an event was recorded with."""
    try:
        got = json.loads(text) if text else {}
    except ValueError:
        return {}
    if not isinstance(got, dict):
        return {}
    labels = got.get("labels")
    return {"labels": labels if isinstance(labels, dict) else {},
            "description": str(got.get("description", "")), "runbook": str(got.get("runbook", ""))}


def claim(store: Store, now: int, lease_s: int, limit: int, only: Collection[str] | None = None) -> list[Delivery]:
    """Due deliveries (of the ids in `only`, when given) that this process now holds the lease of."""
    return [Delivery(c.id, c.action, json.loads(c.params), tuple(_event(e) for e in c.events), c.attempt,
                     c.created_at) for c in store.claim_deliveries(now, lease_s, limit, only)]


def deliver_pending(
    store: Store,
    settings: Settings,
    *,
    clock: Callable[[], float] = time.time,
    limit: int = 200,
    plugins: Mapping[str, type[Action]] | None = None,
    only: Collection[str] | None = None,
    once: bool = False,
) -> list[AttemptResult]:
    """Send every due delivery (of the ids in `only`, when given) once, in parallel; record each attempt.

    With `once`, a failed attempt is the last (dead): a test notification is never retried.
    """
    cfg = settings.delivery
    now = int(clock())
    # The lease outlasts the attempt's start and deadline: no other process takes a delivery still being sent.
    deliveries = claim(store, now, int(cfg.timeout + START_LIMIT_S) + 5, limit, only)
    if not deliveries:
        return []
    plugins = available_actions(settings.scripts_dir) if plugins is None else plugins
    jobs = [(portable(plugins.get(d.action), d.action), d) for d in deliveries]
    finished = run_attempts(jobs, action_context(settings), cfg.timeout + _GRACE_S)
    return [_record(store, d, f, int(clock()), settings, once) for d, f in zip(deliveries, finished, strict=True)]


def _record(store: Store, d: Delivery, f: Finished, now: int, settings: Settings, once: bool) -> AttemptResult:
    cfg = settings.delivery
    ok, error, permanent = f.outcome
    retry_at = None
    if ok:
        status = DeliveryStatus.SENT
    elif once or permanent or d.attempt >= cfg.max_attempts:
        status = DeliveryStatus.DEAD
    else:
        status = DeliveryStatus.PENDING
        retry_at = now + int(backoff_delay(d.attempt, cfg.backoff, cfg.max_backoff))
    store.record_attempt(d.id, Attempt(now, f.duration_s, ok, error, status, retry_at))
    return AttemptResult(d.id, d.action, ok, error, status)


def summarize(results: Sequence[AttemptResult]) -> str:
    sent = sum(1 for r in results if r.ok)
    retry = sum(1 for r in results if r.status is DeliveryStatus.PENDING)
    dead = sum(1 for r in results if r.status is DeliveryStatus.DEAD)
    return f"{sent} delivered, {retry} failed (will retry), {dead} dead"
