"""Base class of every action plugin (entry-point group `rrdalarm.actions`).

Contract:
* `params` declares every parameter (type, default, required, secret); the
  config validation and the web form both use it, so an action never sees a
  parameter it did not declare.
* `run(events)` gets all events of one check for this action and these
  parameters, in the order they happened; it returns when they are delivered
  and raises ActionError (one line, no secrets) when they are not. It must not
  run a shell with text from events or parameters.
* `legacy_param` names the parameter that the single "action parameter"
  column of a legacy rrdAlarmConfig.txt maps to.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from rrdalarm.events import Event
from rrdalarm.plugins import ActionContext, ActionError, Param

__all__ = ["Action", "ActionContext", "ActionError", "Event", "Param"]


class Action(ABC):
    name: ClassVar[str]
    params: ClassVar[Mapping[str, Param]] = {}
    legacy_param: ClassVar[str | None] = None

    def __init__(self, params: Mapping[str, Any], context: ActionContext) -> None:
        self.config = dict(params)
        self.context = context

    @abstractmethod
    def run(self, events: Sequence[Event]) -> None:
        """Deliver the events or raise ActionError."""
