"""Base class of every action plugin (entry-point group `rrdalarm.actions`).

Contract:
* `params` declares every parameter (type, default, required, secret); the
  config validation and the web form both use it, so an action never sees a
  parameter it did not declare.
* `run(delivery)` gets one delivery: all events of one check for this action
  and these parameters, in the order they happened, and a `delivery.id` that
  stays the same on every attempt (pass it on so that receivers can drop
  duplicates: delivery is at least once). It returns when the receiver has
  the message and raises ActionError (one line, no secrets) when it has not;
  `ActionError(..., permanent=True)` when retrying cannot help. It must finish
  within `context.timeout` seconds and must not run a shell with text from
  events or parameters.
* A parameter declared `secret=True` may be a string or a reference
  (`{ env = "NAME" }`, `{ file = "/path" }`); read it with `self.secret(key)`
  at run time, never log it.
* `legacy_param` names the parameter that the single "action parameter"
  column of a legacy rrdAlarmConfig.txt maps to.
* `split_param` names a list parameter (e.g. the recipients of `email`):
  deliveries are made one per item, and events of a check going to the same
  item are grouped in one delivery, as the original merged alarms per action
  parameter.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any, ClassVar

from rrdalarm.common.secrets import SecretError, resolve_secret
from rrdalarm.model.events import Delivery, Event
from rrdalarm.plugins import ActionContext, ActionError, Param

__all__ = ["Action", "ActionContext", "ActionError", "Delivery", "Event", "Param"]


class Action(ABC):
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
