"""From configured action specs to outbox rows: which action gets which events.

Validation happens when thresholds are loaded (bad parameters are a ConfigError
naming the threshold); grouping happens when a check records its events, in the
same transaction, so that no event is ever without its deliveries.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from rrdalarm.config import ConfigError, Threshold
from rrdalarm.evaluate import EventKind
from rrdalarm.plugins import ActionPlugin, validate_params
from rrdalarm.store import NewEvent, PlannedDelivery

WHEN = {"fire": EventKind.FIRED, "repeat": EventKind.REPEAT, "resolve": EventKind.RESOLVED}
DEFAULT_WHEN = ("fire", "resolve")


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


def plan_actions(thresholds: Sequence[Threshold], plugins: Mapping[str, type[ActionPlugin]]) -> ActionPlan:
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
            raw = dict(spec.params)
            # A legacy row names its one parameter "parameter"; the plugin says which of its own it is.
            legacy = getattr(plugin, "legacy_param", None)
            if "parameter" in raw and legacy and "parameter" not in plugin.params:
                raw[legacy] = raw.pop("parameter")
            try:
                when = parse_when(raw.pop("on", list(DEFAULT_WHEN)))
                params = validate_params(plugin, raw)
            except ValueError as exc:
                raise ConfigError(where, f"threshold {t.id}: {exc}", line, "action") from None
            plan.by_threshold.setdefault(t.id, []).append(
                PlannedAction(spec.type, params, when, getattr(plugin, "split_param", None))
            )
    return plan


def plan_deliveries(plan: ActionPlan, events: Sequence[NewEvent]) -> list[PlannedDelivery]:
    """One delivery per action and parameters (per item of its split parameter) with all its events."""
    groups: dict[tuple[str, str], tuple[dict[str, Any], list[int]]] = {}
    for index, event in enumerate(events):
        kind = EventKind(event.kind)
        for action in plan.by_threshold.get(event.threshold_id, ()):
            if kind not in action.when:
                continue
            variants: list[dict[str, Any]] = [dict(action.params)]
            if action.split and isinstance(action.params.get(action.split), list):
                variants = [dict(action.params, **{action.split: [item]}) for item in action.params[action.split]]
            for params in variants:
                key = (action.type, json.dumps(params, sort_keys=True, default=str))
                groups.setdefault(key, (params, []))[1].append(index)
    return [
        PlannedDelivery(id=str(uuid.uuid4()), action=name, params=params, events=tuple(indexes))
        for (name, _), (params, indexes) in groups.items()
    ]
