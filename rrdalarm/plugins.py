"""Plugin discovery (entry points) and the contract the engine relies on.

Actions are registered under `rrdalarm.actions`, sources under
`rrdalarm.sources`. The core only knows the protocol below; the base class
that plugins subclass lives in `rrdalarm.actions.base`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, ClassVar, Protocol

from rrdalarm.events import Event
from rrdalarm.sources.base import Source


class ActionError(Exception):
    """An action could not do its job; the message is one line, without secrets."""


@dataclass(frozen=True)
class Param:
    """One parameter of an action, as config validation and forms see it."""

    type: type = str
    required: bool = False
    default: Any = None
    help: str = ""
    secret: bool = False
    check: Callable[[Any], str | None] | None = None
    """Returns why a value is not acceptable, or None."""


@dataclass(frozen=True)
class ActionContext:
    """What an action may know of the installation."""

    log_dir: Path
    data_dir: Path
    extra: Mapping[str, Any] = field(default_factory=dict)


class ActionPlugin(Protocol):
    name: ClassVar[str]
    params: ClassVar[Mapping[str, Param]]
    legacy_param: ClassVar[str | None]

    def __init__(self, params: Mapping[str, Any], context: ActionContext) -> None: ...

    def run(self, events: Sequence[Event]) -> None: ...


def validate_params(plugin: type[ActionPlugin], params: Mapping[str, Any]) -> dict[str, Any]:
    """Parameters with defaults filled in; ValueError names the bad parameter."""
    out: dict[str, Any] = {}
    for key in params:
        if key not in plugin.params:
            known = ", ".join(sorted(plugin.params)) or "none"
            raise ValueError(f"action '{plugin.name}' has no parameter '{key}' (known: {known})")
    for key, spec in plugin.params.items():
        if key not in params:
            if spec.required:
                raise ValueError(f"action '{plugin.name}' needs parameter '{key}' ({spec.help})")
            out[key] = spec.default
            continue
        value = params[key]
        if spec.type is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, spec.type) or (spec.type is int and isinstance(value, bool)):
            raise ValueError(
                f"action '{plugin.name}' parameter '{key}' must be {spec.type.__name__}, not {value!r}"
            )
        problem = spec.check(value) if spec.check else None
        if problem:
            raise ValueError(f"action '{plugin.name}' parameter '{key}': {problem}")
        out[key] = value
    return out


@cache
def action_plugins() -> dict[str, type[ActionPlugin]]:
    """Installed actions by name."""
    found: dict[str, type[ActionPlugin]] = {}
    for ep in entry_points(group="rrdalarm.actions"):
        try:
            found[ep.name] = ep.load()
        except Exception:  # noqa: BLE001 - a broken third-party plugin must not stop checks
            continue
    return found


@cache
def source_plugins() -> dict[str, type[Source]]:
    """Installed sources by name."""
    found: dict[str, type[Source]] = {}
    for ep in entry_points(group="rrdalarm.sources"):
        try:
            found[ep.name] = ep.load()
        except Exception:  # noqa: BLE001
            continue
    return found
