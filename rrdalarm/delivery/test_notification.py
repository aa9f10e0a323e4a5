"""Test notifications: one clearly marked event sent at once through a threshold's real actions.

Shared by `rrdalarm action test` and the editor's "Send test" button. The event is recorded
in a run of its own (so the deliveries page shows it), never as a firing; its deliveries are
sent right away and a failed one is dead at once, never retried by the outbox later.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rrdalarm.delivery.dispatch import PlannedAction, carried, plan_actions, variants
from rrdalarm.delivery.outbox import deliver_pending
from rrdalarm.model.definitions import Settings, Threshold
from rrdalarm.model.records import NewEvent, PlannedDelivery, RunSummary
from rrdalarm.model.states import EventKind, EventStatus
from rrdalarm.plugins import Action, available_actions
from rrdalarm.store.database import Store


class TestNotificationError(ValueError):
    """A test that cannot be sent as asked (unknown threshold, no actions, no such action)."""


@dataclass(frozen=True)
class TestResult:
    """What became of one target: action number (1-based, in file order), what it is, and how it went."""

    number: int
    label: str
    ok: bool
    error: str | None = None

    def line(self) -> str:
        return f"action {self.number} ({self.label}): " + ("sent" if self.ok else f"failed: {self.error}")


def notification_message(t: Threshold) -> str:
    return f"TEST notification from rrdalarm: threshold {t.id} '{t.name}' (not an alarm)"


def find_threshold(thresholds: Sequence[Threshold], threshold_id: int) -> Threshold:
    for t in thresholds:
        if t.id == threshold_id:
            return t
    raise TestNotificationError(f"no threshold with id {threshold_id}")


def _chosen(t: Threshold, number: int | None) -> list[int]:
    """The 1-based numbers of the actions to test."""
    count = len(t.actions)
    if not count:
        raise TestNotificationError(f"threshold {t.id} has no actions to test")
    if number is None:
        return list(range(1, count + 1))
    if not 1 <= number <= count:
        raise TestNotificationError(
            f"threshold {t.id} has {count} action{'' if count == 1 else 's'}: --action must be 1 to {count}, "
            f"not {number}")
    return [number]


def _label(action: PlannedAction, params: Mapping[str, Any], plugin: type[Action]) -> str:
    """'email to ops@example.org': the split item, when the plugin does not hide it (a URL may hold a token)."""
    spec = plugin.params.get(action.split) if action.split else None
    items = params.get(action.split) if action.split else None
    if spec is None or spec.secret or spec.target or not isinstance(items, list):
        return action.type
    return f"{action.type} to {', '.join(str(i) for i in items)}"


def send_test(
    store: Store,
    settings: Settings,
    thresholds: Sequence[Threshold],
    threshold_id: int,
    number: int | None = None,
    *,
    plugins: Mapping[str, type[Action]] | None = None,
    clock: Callable[[], float] = time.time,
) -> list[TestResult]:
    """Send a test event to the threshold's actions (or only action `number`); one result per target.

    Raises TestNotificationError for what the caller asked wrong, ConfigError for a bad action.
    """
    t = find_threshold(thresholds, threshold_id)
    numbers = _chosen(t, number)
    plugins = available_actions(settings.scripts_dir) if plugins is None else plugins
    planned = iter(plan_actions([t], plugins).by_threshold.get(t.id, []))
    results: list[TestResult] = []
    queued: list[tuple[int, str, PlannedDelivery]] = []
    for n, spec in enumerate(t.actions, start=1):
        plugin = plugins.get(spec.type)
        action = next(planned) if plugin is not None else None  # the plan keeps installed actions, in order
        if n not in numbers:
            continue
        if plugin is None or action is None:
            results.append(TestResult(n, spec.type, False, f"action '{spec.type}' is not installed"))
            continue
        for params in variants(action):
            queued.append((n, _label(action, params, plugin),
                           PlannedDelivery(str(uuid.uuid4()), action.type, params, (0,))))
    if queued:
        results += _deliver(store, settings, t, queued, plugins, clock)
    return sorted(results, key=lambda r: r.number)


def _deliver(store: Store, settings: Settings, t: Threshold, queued: list[tuple[int, str, PlannedDelivery]],
             plugins: Mapping[str, type[Action]], clock: Callable[[], float]) -> list[TestResult]:
    now = int(clock())
    severity, unit, details = carried(t)
    event = NewEvent(t.id, t.name, t.glob or t.query or "(test)", "", EventStatus.TEST.value, EventKind.TEST.value,
                     t.type.value, t.value, None, None, notification_message(t), severity, unit, details)
    store.record_check(RunSummary(now, 0.0, 0, 0, 0, 0, 0), [], [event], [d for _, _, d in queued])
    ids = [d.id for _, _, d in queued]
    done = {r.delivery_id: r for r in deliver_pending(store, settings, clock=clock, plugins=plugins,
                                                       only=ids, once=True)}
    results = []
    for n, label, d in queued:
        r = done.get(d.id)
        if r is None:  # a `deliver` or check of another process took it first: it sends it
            results.append(TestResult(n, label, False, f"taken by another process (see delivery {d.id})"))
        else:
            results.append(TestResult(n, label, r.ok, r.error))
    return results
