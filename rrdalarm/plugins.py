"""Plugin discovery (entry points) and the contract the engine relies on.

Actions are registered under `rrdalarm.actions`, sources under
`rrdalarm.sources`. The core only knows the protocol below; the base class
that plugins subclass lives in `rrdalarm.actions.base`.
"""

from __future__ import annotations

import importlib
import logging
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from importlib.metadata import entry_points
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from rrdalarm.events import Delivery
from rrdalarm.secrets import secret_problem
from rrdalarm.sources.base import Source

if TYPE_CHECKING:
    from rrdalarm.config import SmtpSettings


class ActionError(Exception):
    """An action could not do its job; the message is one line, without secrets.

    `permanent` says that trying again cannot help (a receiver that refuses the
    request, a script that does not exist): the delivery is marked dead at once.
    """

    def __init__(self, message: str, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


@dataclass(frozen=True)
class Param:
    """One parameter of an action, as config validation and forms see it."""

    type: type = str
    required: bool = False
    default: Any = None
    help: str = ""
    secret: bool = False
    """The whole value is a credential (a key, an Apprise URL, a table of headers): never shown."""
    check: Callable[[Any], str | None] | None = None
    """Returns why a value is not acceptable, or None."""
    target: bool = False
    """The receiver's address (a URL). Its user info and query values are shown as ***, and when it
    changes, the secrets kept for the old address are not sent on to the new one."""


def secret_keys(plugins: Iterable[type[ActionPlugin]]) -> tuple[frozenset[str], frozenset[str]]:
    """Names of the parameters declared secret, and of those declared target, over these plugins."""
    secret = {n for p in plugins for n, spec in p.params.items() if spec.secret}
    target = {n for p in plugins for n, spec in p.params.items() if spec.target}
    return frozenset(secret), frozenset(target)


def own_params(plugin: type[ActionPlugin], params: Mapping[str, Any]) -> dict[str, Any]:
    """An action's parameters under the plugin's own names.

    A legacy row names its one parameter "parameter"; the plugin's `legacy_param` says
    which of its own it is.
    """
    out = dict(params)
    legacy = getattr(plugin, "legacy_param", None)
    if "parameter" in out and legacy and "parameter" not in plugin.params:
        out[legacy] = out.pop("parameter")
    return out


@dataclass(frozen=True)
class ActionContext:
    """What an action may know of the installation."""

    log_dir: Path
    data_dir: Path
    scripts_dir: Path | None = None
    timeout: float = 10.0
    smtp: SmtpSettings | None = None


class ActionPlugin(Protocol):
    name: ClassVar[str]
    params: ClassVar[Mapping[str, Param]]
    legacy_param: ClassVar[str | None]
    split_param: ClassVar[str | None]

    def __init__(self, params: Mapping[str, Any], context: ActionContext) -> None: ...

    def run(self, delivery: Delivery) -> None: ...


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
        if spec.secret and spec.type is str and not isinstance(value, str):
            problem = secret_problem(value)
            if problem:
                raise ValueError(f"action '{plugin.name}' parameter '{key}' {problem}")
            out[key] = dict(value)
            continue
        if spec.type is list and isinstance(value, str):
            value = [value]
        if spec.type is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, spec.type) or (spec.type is int and isinstance(value, bool)):
            shown = "a secret value" if spec.secret or spec.target else repr(value)
            raise ValueError(f"action '{plugin.name}' parameter '{key}' must be {spec.type.__name__}, not {shown}")
        problem = spec.check(value) if spec.check else None
        if problem:
            raise ValueError(f"action '{plugin.name}' parameter '{key}': {problem}")
        out[key] = value
    return out


log = logging.getLogger("rrdalarm.plugins")

_KIND = {"rrdalarm.actions": "action", "rrdalarm.sources": "source"}


def _base_of(group: str) -> type:
    if group == "rrdalarm.sources":
        return Source
    # The actions' base class imports this module, and lives in the installed rrdalarm.actions package.
    base = importlib.import_module("rrdalarm.actions.base").Action
    assert isinstance(base, type)
    return base


@cache
def _load(group: str) -> tuple[dict[str, Any], dict[str, str]]:
    """The plugins of an entry-point group that load and subclass its base, and why the others did not."""
    found: dict[str, Any] = {}
    broken: dict[str, str] = {}
    base = _base_of(group)
    for ep in entry_points(group=group):
        try:
            obj = ep.load()
        except Exception as exc:  # noqa: BLE001 - a broken third-party plugin must not stop checks
            broken[ep.name] = f"{ep.value}: {exc.__class__.__name__}: {exc}".splitlines()[0]
            continue
        if not (isinstance(obj, type) and issubclass(obj, base)):
            broken[ep.name] = f"{ep.value} is not a subclass of {base.__module__}.{base.__qualname__}"
            continue
        found[ep.name] = obj
    for name, why in broken.items():
        log.warning("%s plugin %r failed to load: %s", _KIND[group], name, why)
    return found, broken


def action_plugins() -> dict[str, type[ActionPlugin]]:
    """Installed actions by name (those that fail to load are in `plugin_errors`)."""
    return dict(_load("rrdalarm.actions")[0])


def source_plugins() -> dict[str, type[Source]]:
    """Installed sources by name (those that fail to load are in `plugin_errors`)."""
    return dict(_load("rrdalarm.sources")[0])


def source_of_series(series: str) -> str:
    """The name of the source whose series names start like `series` (the longest prefix wins)."""
    plugins = sorted(source_plugins().values(), key=lambda p: -len(p.series_prefix))
    return next((p.name for p in plugins if series.startswith(p.series_prefix)), "")


def plugin_errors() -> dict[str, str]:
    """'<kind> <name>' -> why it did not load, for every plugin entry point that failed."""
    return {f"{_KIND[g]} {name}": why for g in _KIND for name, why in _load(g)[1].items()}


def clear_plugin_cache() -> None:
    """Forget what was loaded (tests that install plugins on the fly)."""
    _load.cache_clear()


def drop_in_actions(scripts_dir: Path | None) -> dict[str, type[ActionPlugin]]:
    """Each executable in the drop-in folder, as an action named after the file.

    They run through the `script` action (no shell, the events as JSON on stdin).
    """
    base = action_plugins().get("script")
    if scripts_dir is None or base is None or not scripts_dir.is_dir():
        return {}
    found: dict[str, type[ActionPlugin]] = {}
    for entry in sorted(scripts_dir.iterdir()):
        if entry.is_file() and os.access(entry, os.X_OK) and not entry.name.startswith("."):
            params = {k: v for k, v in base.params.items() if k != "script"}
            found[entry.name] = type(  # a subclass per script, with the script fixed
                f"DropIn_{entry.name}", (base,), {"name": entry.name, "params": params, "fixed_script": entry.name}
            )
    return found


def available_actions(scripts_dir: Path | None) -> dict[str, type[ActionPlugin]]:
    """Installed actions, then drop-in scripts whose names no installed action takes."""
    return drop_in_actions(scripts_dir) | action_plugins()
