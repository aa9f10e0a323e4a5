"""Where action plugins import their base class and what it uses.

`Action` is defined in rrdalarm.plugins, so that the core names it without
importing the built-in actions; its docstring is the whole contract: `help(Action)`.
"""

from __future__ import annotations

from rrdalarm.model.events import Delivery, Event
from rrdalarm.plugins import Action, ActionContext, ActionError, Param

__all__ = ["Action", "ActionContext", "ActionError", "Delivery", "Event", "Param"]
