"""The outbox worker: sends pending deliveries with timeouts, retries and backoff.

Deliveries are claimed with a lease (on PostgreSQL rows locked with FOR UPDATE
SKIP LOCKED, elsewhere an UPDATE that only one process can win), so a cron
`rrdalarm deliver`, a check and every service on the database, on any node,
never send the same delivery at the same time. A process killed while sending
leaves the lease to expire; the delivery is then sent again with the same id
(at least once), and the interrupted attempt is not counted: only a recorded
outcome is. Each action target gets its deliveries one at a time, oldest first
(see deliver_pending).
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
from rrdalarm.model.definitions import DEFAULT_SOURCE, DeliverySettings, Settings
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


def claim(store: Store, now: int, lease_s: int, limit: int, only: Collection[str] | None = None,
          skip: Collection[str] = ()) -> list[tuple[Delivery, int]]:
    """Due deliveries (of the ids in `only`, when given) that this process now holds the lease of, each with
    the time its retry horizon counts from."""
    return [(Delivery(c.id, c.action, json.loads(c.params), tuple(_event(e) for e in c.events), c.attempt,
                      c.created_at), c.queued_at)
            for c in store.claim_deliveries(now, lease_s, limit, only, skip)]


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
    """Send every due delivery (of the ids in `only`, when given) once; record each attempt.

    Targets are served in parallel, each target's deliveries one after another in the order they were
    written (Store.claim_deliveries), in rounds: a round sends the oldest due delivery of each target.
    A delivery is tried at most once per call, so a failed one holds its target's later ones until its
    retry. With `once`, a failed attempt is the last (dead): a test notification is never retried.
    """
    results: list[AttemptResult] = []
    tried: set[str] = set()
    while len(results) < limit:
        done = _deliver_round(store, settings, clock, limit - len(results), plugins, only, tried, once)
        if not done:
            break
        results += done
        tried.update(r.delivery_id for r in done)
    return results


def _deliver_round(store: Store, settings: Settings, clock: Callable[[], float], limit: int,
                   plugins: Mapping[str, type[Action]] | None, only: Collection[str] | None,
                   tried: Collection[str], once: bool) -> list[AttemptResult]:
    cfg = settings.delivery
    # The lease outlasts the attempt's start and deadline: no other process takes a delivery still being sent.
    claimed = claim(store, int(clock()), int(cfg.timeout + START_LIMIT_S) + 5, limit, only, tried)
    if not claimed:
        return []
    plugins = available_actions(settings.scripts_dir) if plugins is None else plugins
    jobs = [(portable(plugins.get(d.action), d.action), d) for d, _ in claimed]
    finished = run_attempts(jobs, action_context(settings), cfg.timeout + _GRACE_S)
    return [_record(store, d, queued_at, f, int(clock()), cfg, once)
            for (d, queued_at), f in zip(claimed, finished, strict=True)]


def next_attempt(cfg: DeliverySettings, attempt: int, queued_at: int, now: int) -> int | None:
    """When to try again after failed attempt number `attempt`; None: never (the delivery is dead).

    Backoff doubles up to max_backoff until `retry_for` after the delivery was queued; the horizon itself
    gets one last attempt. `max_attempts`, when set, ends it sooner if it comes first.
    """
    horizon = queued_at + cfg.retry_for
    if now >= horizon or (cfg.max_attempts is not None and attempt >= cfg.max_attempts):
        return None
    return min(horizon, now + int(backoff_delay(attempt, cfg.backoff, cfg.max_backoff)))


def _record(store: Store, d: Delivery, queued_at: int, f: Finished, now: int, cfg: DeliverySettings,
            once: bool) -> AttemptResult:
    ok, error, permanent = f.outcome
    retry_at = None if ok or once or permanent else next_attempt(cfg, d.attempt, queued_at, now)
    if ok:
        status = DeliveryStatus.SENT
    elif retry_at is None:
        status = DeliveryStatus.DEAD
    else:
        status = DeliveryStatus.PENDING
    store.record_attempt(d.id, Attempt(now, f.duration_s, ok, error, status, retry_at))
    return AttemptResult(d.id, d.action, ok, error, status)


def summarize(results: Sequence[AttemptResult]) -> str:
    sent = sum(1 for r in results if r.ok)
    retry = sum(1 for r in results if r.status is DeliveryStatus.PENDING)
    dead = sum(1 for r in results if r.status is DeliveryStatus.DEAD)
    return f"{sent} delivered, {retry} failed (will retry), {dead} dead"
