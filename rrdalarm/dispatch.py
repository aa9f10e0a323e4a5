"""Turning configured action specs into plugin instances and handing them events."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from rrdalarm.config import ConfigError, Settings, Threshold
from rrdalarm.events import Event
from rrdalarm.plugins import ActionContext, ActionError, ActionPlugin, action_plugins, validate_params


def _freeze(params: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((k, repr(v)) for k, v in params.items()))


@dataclass
class ActionPlan:
    """Validated actions of all thresholds; unknown types are kept as warnings."""

    by_threshold: dict[int, list[tuple[str, dict[str, Any]]]] = field(default_factory=dict)
    unavailable: dict[int, list[str]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def label(self, threshold: Threshold) -> str:
        missing = set(self.unavailable.get(threshold.id, ()))
        names = [a.type + (" (unavailable)" if a.type in missing else "") for a in threshold.actions]
        return ", ".join(names) or "None"


def plan_actions(
    thresholds: Sequence[Threshold], plugins: Mapping[str, type[ActionPlugin]] | None = None
) -> ActionPlan:
    """Validate every action's parameters; raise ConfigError naming the threshold and field."""
    plugins = action_plugins() if plugins is None else plugins
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
                params = validate_params(plugin, spec.params)
            except ValueError as exc:
                raise ConfigError(where, f"threshold {t.id}: {exc}", line, "action") from None
            plan.by_threshold.setdefault(t.id, []).append((spec.type, params))
    return plan


def run_actions(
    plan: ActionPlan,
    events: Sequence[Event],
    settings: Settings,
    plugins: Mapping[str, type[ActionPlugin]] | None = None,
) -> list[str]:
    """Run each (action, parameters) once with all of its events; returns error lines."""
    plugins = action_plugins() if plugins is None else plugins
    groups: dict[tuple[str, tuple[tuple[str, str], ...]], tuple[dict[str, Any], list[Event]]] = {}
    for event in events:
        for name, params in plan.by_threshold.get(event.threshold_id, ()):
            key = (name, _freeze(params))
            groups.setdefault(key, (params, []))[1].append(event)
    context = ActionContext(log_dir=settings.logs, data_dir=settings.data_dir)
    errors = []
    for (name, _), (params, grouped) in groups.items():
        try:
            plugins[name](params, context).run(grouped)
        except ActionError as exc:
            errors.append(f"action {name}: {exc}")
        except Exception as exc:  # noqa: BLE001 - one broken action must not stop the others
            errors.append(f"action {name} failed: {exc.__class__.__name__}: {exc}")
    return errors
