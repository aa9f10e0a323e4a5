"""The outbox worker: sends pending deliveries with timeouts, retries and backoff.

Deliveries are claimed with a lease (an UPDATE that only one process can win),
so a cron `rrdalarm deliver`, a check and the service never send the same
delivery at the same time. A process killed while sending leaves the lease to
expire; the delivery is then sent again with the same id (at least once).
Each delivery runs in its own daemon thread: a slow or stuck action costs at
most its timeout and never holds up the others or the process's exit.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import CursorResult, select, update

from rrdalarm.config import DEFAULT_SOURCE, Settings
from rrdalarm.events import Delivery, Event
from rrdalarm.model import DeliveryStatus, EventKind
from rrdalarm.plugins import ActionContext, ActionError, ActionPlugin, available_actions, source_of_series
from rrdalarm.secrets import SecretError, redact, resolve_secret
from rrdalarm.store import AlarmEvent, DeliveryAttempt, DeliveryRow, Store


@dataclass(frozen=True)
class AttemptResult:
    delivery_id: str
    action: str
    ok: bool
    error: str | None
    status: DeliveryStatus  # after this attempt: sent, pending (will retry) or dead


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
        message=row.message,
    )


def claim(store: Store, now: int, lease_s: int, limit: int) -> list[Delivery]:
    """Due deliveries that this process now holds the lease of."""
    claimed: list[Delivery] = []
    with store.session() as s:
        due = s.scalars(
            select(DeliveryRow)
            .where(DeliveryRow.status == DeliveryStatus.PENDING, DeliveryRow.next_attempt_at <= now)
            .where((DeliveryRow.lease_until.is_(None)) | (DeliveryRow.lease_until < now))
            .order_by(DeliveryRow.created_at, DeliveryRow.id)
            .limit(limit)
        ).all()
        candidates = [(d.id, d.action, d.params, d.event_ids, d.attempts, d.created_at) for d in due]
    for ident, action, params, event_ids, attempts, created in candidates:
        with store.session() as s:
            result = s.execute(
                update(DeliveryRow)
                .where(DeliveryRow.id == ident, DeliveryRow.status == DeliveryStatus.PENDING)
                .where((DeliveryRow.lease_until.is_(None)) | (DeliveryRow.lease_until < now))
                .values(lease_until=now + lease_s, attempts=DeliveryRow.attempts + 1)
            )
            if not cast(CursorResult[Any], result).rowcount:
                continue  # another process took it
            ids = json.loads(event_ids)
            rows = s.scalars(select(AlarmEvent).where(AlarmEvent.id.in_(ids)).order_by(AlarmEvent.id)).all()
            events = tuple(_event(r) for r in rows)
        claimed.append(Delivery(ident, action, json.loads(params), events, attempts + 1, created))
    return claimed


def secret_values(plugin: type[ActionPlugin] | None, params: Mapping[str, Any], context: ActionContext) -> list[str]:
    """Every secret this delivery could know, to scrub from its error text."""
    refs: list[Any] = [context.smtp.password if context.smtp else None]
    if plugin is not None:
        refs += [params.get(k) for k, spec in plugin.params.items() if spec.secret]
    values = []
    for ref in refs:
        try:
            value = resolve_secret(ref, "secret")
        except SecretError:
            continue
        if value:
            values.append(value)
    return values


def _run_one(plugin: type[ActionPlugin] | None, delivery: Delivery, context: ActionContext,
             out: dict[str, tuple[bool, str | None, bool]]) -> None:
    try:
        if plugin is None:
            raise ActionError(f"action '{delivery.action}' is not installed")
        plugin(delivery.params, context).run(delivery)
        out[delivery.id] = (True, None, False)
        return
    except ActionError as exc:
        error, permanent = (str(exc).splitlines() or ["failed"])[0], exc.permanent
    except Exception as exc:  # noqa: BLE001 - a broken plugin is one failed delivery, not a crash
        error, permanent = f"{exc.__class__.__name__}: {exc}".splitlines()[0], False
    # Actions promise secret-free messages; this is the second line of defence.
    out[delivery.id] = (False, redact(error, secret_values(plugin, delivery.params, context)), permanent)


def deliver_pending(
    store: Store,
    settings: Settings,
    *,
    clock: Callable[[], float] = time.time,
    limit: int = 200,
    plugins: Mapping[str, type[ActionPlugin]] | None = None,
) -> list[AttemptResult]:
    """Send every due delivery once (in parallel); record each attempt. Returns what happened."""
    cfg = settings.delivery
    now = int(clock())
    lease = int(cfg.timeout) + 5
    deliveries = claim(store, now, lease, limit)
    if not deliveries:
        return []
    plugins = available_actions(settings.scripts_dir) if plugins is None else plugins
    context = action_context(settings)
    outcomes: dict[str, tuple[bool, str | None, bool]] = {}
    started: dict[str, float] = {}
    threads = []
    for d in deliveries:
        t = threading.Thread(target=_run_one, args=(plugins.get(d.action), d, context, outcomes), daemon=True,
                             name=f"deliver-{d.id[:8]}")
        started[d.id] = time.monotonic()
        t.start()
        threads.append((d, t))
    deadline = time.monotonic() + cfg.timeout + 2
    results = []
    for d, t in threads:
        t.join(max(0.0, deadline - time.monotonic()))
        ok, error, permanent = outcomes.get(d.id, (False, f"timed out after {cfg.timeout:g} s", False))
        results.append(_record(store, d, ok, error, permanent, time.monotonic() - started[d.id], int(clock()),
                               settings))
    return results


def _record(store: Store, d: Delivery, ok: bool, error: str | None, permanent: bool, duration: float,
            now: int, settings: Settings) -> AttemptResult:
    cfg = settings.delivery
    if ok:
        status = DeliveryStatus.SENT
        values: dict[str, Any] = {"sent_at": now, "lease_until": None, "last_error": None}
    elif permanent or d.attempt >= cfg.max_attempts:
        status, values = DeliveryStatus.DEAD, {"lease_until": None, "last_error": error}
    else:
        retry_at = now + int(backoff_delay(d.attempt, cfg.backoff, cfg.max_backoff))
        status, values = DeliveryStatus.PENDING, {"next_attempt_at": retry_at, "lease_until": None, "last_error": error}
    with store.session() as s:
        s.execute(update(DeliveryRow).where(DeliveryRow.id == d.id).values(status=status.value, **values))
        s.add(DeliveryAttempt(delivery_id=d.id, at=now, duration_s=duration, ok=ok, error=error))
    return AttemptResult(d.id, d.action, ok, error, status)


def summarize(results: Sequence[AttemptResult]) -> str:
    sent = sum(1 for r in results if r.ok)
    retry = sum(1 for r in results if r.status is DeliveryStatus.PENDING)
    dead = sum(1 for r in results if r.status is DeliveryStatus.DEAD)
    return f"{sent} delivered, {retry} failed (will retry), {dead} dead"
