"""Plugin discovery (entry points) and the action contract.

Actions are registered under `rrdalarm.actions` and subclass `Action` below
(plugins import it from `rrdalarm.actions.base`); sources are registered under
`rrdalarm.sources` and subclass `rrdalarm.sources.base.Source`.
"""

from __future__ import annotations

import logging
import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar, cast

from rrdalarm.common.secrets import SecretError, resolve_secret, secret_problem
from rrdalarm.model.events import Delivery
from rrdalarm.sources.base import Source

if TYPE_CHECKING:
    from importlib.metadata import EntryPoint

    from rrdalarm.model.definitions import SmtpSettings


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


def secret_keys(plugins: Iterable[type[Action]]) -> tuple[frozenset[str], frozenset[str]]:
    """Names of the parameters declared secret, and of those declared target, over these plugins."""
    secret = {n for p in plugins for n, spec in p.params.items() if spec.secret}
    target = {n for p in plugins for n, spec in p.params.items() if spec.target}
    return frozenset(secret), frozenset(target)


def own_params(plugin: type[Action], params: Mapping[str, Any]) -> dict[str, Any]:
    """An action's parameters under the plugin's own names.

    A legacy row names its one parameter "parameter"; the plugin's `legacy_param` says
    which of its own it is.
    """
    out = dict(params)
    legacy = plugin.legacy_param
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


class Action(ABC):
    """Base class of every action plugin: subclass it and register it under `rrdalarm.actions`.

    Import it as `rrdalarm.actions.base.Action` (with ActionError, ActionContext, Param,
    Delivery and Event). The contract, all of it:

    Declaring. `name` is the action's type in thresholds. `params` declares every
    parameter: config validation and the web form use it, so `self.config` holds these
    keys as validated when the delivery was made (defaults filled in, types and
    `Param.check` passed). A `secret=True` parameter may be a reference
    (`{ env = "NAME" }`, `{ file = "/path" }`): read it with `self.secret(key)` when
    sending, never log it. `legacy_param` is the parameter that the one "action
    parameter" column of a legacy rrdAlarmConfig.txt maps to. `split_param` names a list
    parameter (the recipients of `email`): the outbox makes one delivery per item, each
    with that parameter a one-item list, so one refusing receiver is retried on its own.
    Importing the module must stay cheap (`rrdalarm validate` imports every action):
    import a heavy library inside `run`, where its import counts toward the attempt.

    Sending. An instance is made for each attempt, `cls(params, context)`, and `run` called
    once. `delivery.events` are the events of one check for this action and these
    parameters, in the order they happened; each Event says which threshold (`threshold_id`,
    `threshold_name`), series (`source` "rrd" or "ntopng", `series` the file relative to the
    RRD root or the ntopng series, `ds`), what happened (`kind` fired/repeat/resolved,
    `status` "ALARM FIRED" or "RESOLVED", `message` one line for people), the rule (`type`
    and `limit`), the newest point (`value`, `time`, None when unknown) and the check's time
    (`at`). With `[delivery] max_per_check`, a digest carries the events past the budget plus one
    event of kind `digest` (status "DIGEST") whose message sums them up: `delivery.digest` is that
    event (None otherwise), `delivery.carried` the others, `delivery.digest_summary()` the counts and
    thresholds as data; a plugin that knows none of this still sends them all.
    `delivery.attempt` counts from 1. `context` tells `log_dir`, `data_dir`,
    `scripts_dir` (drop-in scripts, or None), `timeout` (seconds) and `smtp` (the `[smtp]`
    settings, or None).

    Idempotency. Delivery is at least once: a failed or timed-out attempt, or a process
    killed while sending, means the same delivery is sent again with the same
    `delivery.id`, and `Event.id` is stable too. Pass them on so receivers can drop
    duplicates.

    Threads and order. `run` is called in the process that delivers (`rrdalarm check`,
    `rrdalarm deliver` or the service), in a thread of its own: deliveries of one round,
    of this action and others, run concurrently, with no order among them. Several
    processes may deliver at once; a lease keeps each delivery to one attempt at a time
    as long as attempts keep to the timeout. Instances are not shared; anything kept on
    the class or the module must be thread-safe.

    Errors. Return when the receiver has the message. Otherwise raise ActionError with one
    line naming what failed and no secret; `permanent=True` when retrying cannot help (a bad
    parameter, a receiver that refuses): the delivery is then dead at once. Any other
    ActionError, or any other exception (recorded as "ClassName: message"), is retried with
    backoff until `[delivery] retry_for` (or max_attempts). `run` must finish within `context.timeout`
    seconds: after that the attempt counts as failed ("timed out") and the thread is left
    behind. The error line is shown by `rrdalarm deliver`, in the check's warnings, the
    service log, `rrdalarm history --deliveries` and the web deliveries page, with known
    secret values masked as a second line of defence. Never run a shell with text from
    events or parameters.
    """

    name: ClassVar[str]
    params: ClassVar[Mapping[str, Param]] = {}
    legacy_param: ClassVar[str | None] = None
    split_param: ClassVar[str | None] = None

    def __init__(self, params: Mapping[str, Any], context: ActionContext) -> None:
        self.config = dict(params)
        self.context = context

    def secret(self, key: str) -> str | None:
        """The value of a secret parameter, read now; ActionError if it cannot be read."""
        try:
            return resolve_secret(self.config.get(key), f"{self.name} parameter '{key}'")
        except SecretError as exc:
            raise ActionError(str(exc)) from None

    @abstractmethod
    def run(self, delivery: Delivery) -> None:
        """Deliver `delivery.events` or raise ActionError."""


def validate_params(plugin: type[Action], params: Mapping[str, Any]) -> dict[str, Any]:
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
_BASE: dict[str, tuple[type, str]] = {
    "rrdalarm.actions": (Action, "rrdalarm.actions.base.Action"),
    "rrdalarm.sources": (Source, "rrdalarm.sources.base.Source"),
}


class _Group:
    """The entry points of one group, each imported the first time it is asked for."""

    def __init__(self, group: str, points: Iterable[EntryPoint]) -> None:
        self.group = group
        self.points = {ep.name: ep for ep in points}
        self.loaded: dict[str, Any] = {}
        self.broken: dict[str, str] = {}

    def get(self, name: str) -> Any:
        """The plugin class, or None when it is not installed or does not load."""
        if name in self.loaded or name in self.broken or name not in self.points:
            return self.loaded.get(name)
        ep = self.points[name]
        base, base_name = _BASE[self.group]
        try:
            obj = ep.load()
        except Exception as exc:  # noqa: BLE001 - a broken third-party plugin must not stop checks
            self._broke(name, f"{ep.value}: {exc.__class__.__name__}: {exc}".splitlines()[0])
            return None
        if not (isinstance(obj, type) and issubclass(obj, base)):
            self._broke(name, f"{ep.value} is not a subclass of {base_name}")
            return None
        self.loaded[name] = obj
        return obj

    def load_all(self) -> None:
        for name in self.points:
            self.get(name)

    def _broke(self, name: str, why: str) -> None:
        self.broken[name] = why
        log.warning("%s plugin %r failed to load: %s", _KIND[self.group], name, why)


@cache
def _group(group: str) -> _Group:
    return _Group(group, _all_entry_points()[group])


@cache
def _all_entry_points() -> dict[str, tuple[EntryPoint, ...]]:
    # Imported here: `--help` and friends never pay for it. One scan of the installed
    # distributions serves both groups.
    from importlib.metadata import entry_points

    found = entry_points()
    return {group: tuple(found.select(group=group)) for group in _KIND}


P = TypeVar("P")


class Plugins(Mapping[str, type[P]]):
    """Installed plugins by name, imported when first looked up: a check imports only what it uses.

    Iterating (or asking the length) imports them all; those that fail are left out and
    reported by `plugin_errors`. Names in `fallback` (drop-in scripts) come first and
    serve where no installed plugin of that name loads.
    """

    def __init__(self, group: _Group, fallback: Mapping[str, type[P]] | None = None) -> None:
        self._group = group
        self._fallback = dict(fallback or {})

    def __getitem__(self, name: str) -> type[P]:
        found = self._group.get(name) or self._fallback.get(name)
        if found is None:
            raise KeyError(name)
        return cast("type[P]", found)

    def __iter__(self) -> Iterator[str]:
        self._group.load_all()
        return iter([*self._fallback, *(n for n in self._group.loaded if n not in self._fallback)])

    def __len__(self) -> int:
        return sum(1 for _ in self)


def action_plugins() -> Plugins[Action]:
    """Installed actions by name (those that fail to load are in `plugin_errors`)."""
    return Plugins(_group("rrdalarm.actions"))


def source_plugins() -> Plugins[Source]:
    """Installed sources by name (those that fail to load are in `plugin_errors`)."""
    return Plugins(_group("rrdalarm.sources"))


def source_of_series(series: str) -> str:
    """The name of the source whose series names start like `series` (the longest prefix wins)."""
    return next((name for prefix, name in _series_prefixes() if series.startswith(prefix)), "")


@cache
def _series_prefixes() -> tuple[tuple[str, str], ...]:
    """(prefix, source name), longest prefix first: asked once per event a delivery carries."""
    plugins = sorted(source_plugins().values(), key=lambda p: -len(p.series_prefix))
    return tuple((p.series_prefix, p.name) for p in plugins)


def plugin_errors() -> dict[str, str]:
    """'<kind> <name>' -> why it did not load, for every plugin entry point that failed."""
    for g in _KIND:
        _group(g).load_all()
    return {f"{_KIND[g]} {name}": why for g in _KIND for name, why in _group(g).broken.items()}


def clear_plugin_cache() -> None:
    """Forget what was loaded (tests that install plugins on the fly)."""
    _group.cache_clear()
    _all_entry_points.cache_clear()
    _series_prefixes.cache_clear()


def drop_in_actions(scripts_dir: Path | None) -> dict[str, type[Action]]:
    """Each executable in the drop-in folder, as an action named after the file.

    They run through the `script` action (no shell, the events as JSON on stdin).
    """
    if scripts_dir is None or not scripts_dir.is_dir():
        return {}
    base = action_plugins().get("script")
    if base is None:
        return {}
    found: dict[str, type[Action]] = {}
    for entry in sorted(scripts_dir.iterdir()):
        if entry.is_file() and os.access(entry, os.X_OK) and not entry.name.startswith("."):
            found[entry.name] = drop_in(base, entry.name)
    return found


def drop_in(base: type[Action], script: str) -> type[Action]:
    """The action of one drop-in script: a subclass of the `script` action with the script fixed."""
    params = {k: v for k, v in base.params.items() if k != "script"}
    return type(f"DropIn_{script}", (base,), {"name": script, "params": params, "fixed_script": script})


def available_actions(scripts_dir: Path | None) -> Plugins[Action]:
    """Installed actions, then drop-in scripts whose names no installed action takes."""
    return Plugins(_group("rrdalarm.actions"), drop_in_actions(scripts_dir))
