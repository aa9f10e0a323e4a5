"""From configured action specs to outbox rows: which action gets which events.

Validation happens when thresholds are loaded (bad parameters are a ConfigError
naming the threshold); grouping happens when a check records its events, in the
same transaction, so that no event is ever without its deliveries.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from rrdalarm.model.definitions import ActionSpec, Threshold
from rrdalarm.model.errors import ConfigError
from rrdalarm.model.records import NewEvent, PlannedDelivery
from rrdalarm.model.states import EventKind
from rrdalarm.plugins import Action, own_params, validate_params
from rrdalarm.sources.base import SeriesKey

WHEN = {"fire": EventKind.FIRED, "repeat": EventKind.REPEAT, "resolve": EventKind.RESOLVED,
        "no_data": EventKind.NO_DATA, "stale": EventKind.STALE, "flapping": EventKind.FLAPPING,
        "ack": EventKind.ACK}
# A no_data = "alarm" firing is a firing: actions hear of it unless their `on` says otherwise.
DEFAULT_WHEN = ("fire", "resolve", "no_data")


@dataclass(frozen=True)
class PlannedAction:
    type: str
    params: Mapping[str, Any]
    when: frozenset[EventKind]
    split: str | None


@dataclass
class ActionPlan:
    """Validated actions of all thresholds; unknown types are kept as warnings."""

    by_threshold: dict[int, list[PlannedAction]] = field(default_factory=dict)
    unavailable: dict[int, list[str]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def wants(self, threshold_id: int, kind: EventKind) -> bool:
        """True when an action of the threshold is told of events of this kind."""
        return any(kind in a.when for a in self.by_threshold.get(threshold_id, ()))

    def label(self, threshold: Threshold) -> str:
        missing = set(self.unavailable.get(threshold.id, ()))
        names = [a.type + (" (unavailable)" if a.type in missing else "") for a in threshold.actions]
        return ", ".join(names) or "None"


def parse_when(value: Any) -> frozenset[EventKind]:
    """The `on` list of an action spec; ValueError says what is allowed."""
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value or any(v not in WHEN for v in value):
        raise ValueError(f"'on' must be a list of {', '.join(WHEN)}, not {value!r}")
    return frozenset(WHEN[v] for v in value)


def plan_actions(thresholds: Sequence[Threshold], plugins: Mapping[str, type[Action]]) -> ActionPlan:
    """Validate every action's parameters; raise ConfigError naming the threshold and field."""
    plan = ActionPlan()
    for t in thresholds:
        for spec in t.actions:
            plugin = plugins.get(spec.type)
            where = t.location.path if t.location else None
            line = t.location.line if t.location else None
            if plugin is None:
                plan.unavailable.setdefault(t.id, []).append(spec.type)
                plan.warnings.append(
                    f"{t.location or 'thresholds'}: threshold {t.id}: action '{spec.type}' is not "
                    f"installed (available: {', '.join(sorted(plugins)) or 'none'}); it will not run"
                )
                continue
            try:
                planned = plan_action(spec, plugin)
            except ValueError as exc:
                raise ConfigError(where, f"threshold {t.id}: {exc}", line, "action") from None
            plan.by_threshold.setdefault(t.id, []).append(planned)
    return plan


def plan_action(spec: ActionSpec, plugin: type[Action]) -> PlannedAction:
    """One action of a threshold with its parameters validated by its plugin; ValueError says what is wrong."""
    raw = own_params(plugin, spec.params)
    when = parse_when(raw.pop("on", list(DEFAULT_WHEN)))
    return PlannedAction(spec.type, validate_params(plugin, raw), when, plugin.split_param)


def carried(t: Threshold) -> tuple[str, str, str | None]:
    """(severity, unit, details) an event carries to the actions."""
    tu = t.tuning
    details = {k: v for k, v in (("labels", dict(tu.labels)), ("description", tu.description),
                                 ("runbook", tu.runbook)) if v}
    return tu.severity.value, tu.unit, json.dumps(details, sort_keys=True) if details else None


def action_identity(action: str, params: Mapping[str, Any]) -> str:
    """A stable name for one action target (type and parameters) that shows no parameter in clear."""
    blob = json.dumps([action, params], sort_keys=True, default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:24]


def variants(action: PlannedAction) -> list[dict[str, Any]]:
    """The action's targets: one per item of its split parameter, else the action itself."""
    if action.split and isinstance(action.params.get(action.split), list):
        return [dict(action.params, **{action.split: [item]}) for item in action.params[action.split]]
    return [dict(action.params)]


def told_of(plan: ActionPlan, event: NewEvent) -> frozenset[str]:
    """Identities of the targets this fire or repeat event counts as telling of the firing.

    At a firing every action of the threshold is there, including one that wants recoveries
    only; a repeat or a no-data alarm tells only the actions that hear those (so only they
    hear of its recovery).
    """
    kind = EventKind(event.kind)
    if kind not in (EventKind.FIRED, EventKind.REPEAT, EventKind.NO_DATA):
        return frozenset()
    return frozenset(
        action_identity(action.type, params)
        for action in plan.by_threshold.get(event.threshold_id, ())
        if kind is EventKind.FIRED or kind in action.when
        for params in variants(action)
    )


Target = tuple[str, Mapping[str, Any]]
"""(action type, parameters of one delivery)."""


def _targets(plan: ActionPlan, event: NewEvent, told: Mapping[SeriesKey, frozenset[str] | None]) -> list[Target]:
    kind = EventKind(event.kind)
    # A recovery or an acknowledgement goes only to the targets told of the firing (all of them when
    # that was not tracked).
    follows = kind in (EventKind.RESOLVED, EventKind.ACK)
    allowed = told.get((event.threshold_id, event.series, event.ds)) if follows else None
    return [
        (action.type, params)
        for action in plan.by_threshold.get(event.threshold_id, ())
        if kind in action.when
        for params in variants(action)
        if allowed is None or action_identity(action.type, params) in allowed
    ]


def plan_deliveries(
    plan: ActionPlan,
    events: Sequence[NewEvent],
    told: Mapping[SeriesKey, frozenset[str] | None] | None = None,
    fixed: Mapping[int, Sequence[Target]] | None = None,
) -> list[PlannedDelivery]:
    """One delivery per action and parameters (per item of its split parameter) with all its events.

    `told` holds, per series, the targets told of its firing; `fixed` gives the targets of
    events whose threshold is gone from the plan (by index into `events`). Silenced events go nowhere.
    """
    groups: dict[tuple[str, str], tuple[dict[str, Any], list[int]]] = {}
    for index, event in enumerate(events):
        if event.silenced is not None:
            continue  # a silence or maintenance window keeps it from every action
        targets = fixed[index] if fixed and index in fixed else _targets(plan, event, told or {})
        for name, params in targets:
            key = (name, json.dumps(params, sort_keys=True, default=str))
            groups.setdefault(key, (dict(params), []))[1].append(index)
    return [
        PlannedDelivery(id=str(uuid.uuid4()), action=name, params=params, events=tuple(indexes))
        for (name, _), (params, indexes) in groups.items()
    ]
