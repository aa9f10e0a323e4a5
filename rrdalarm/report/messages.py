"""How rows and events word what happened to a series: the one place for that text.

Pure functions of numbers; the engine (events, report rows) and the editor's
preview both call them, so that a preview says what the check will say.
"""

from __future__ import annotations


def crossing(value: float, direction: str, limit: float) -> str:
    """A new alarm: `31.6e6 above 3e7`."""
    return f"{value:.6g} {direction} {limit:g}"


def repeat(value: float, direction: str, limit: float, firing_s: int) -> str:
    """A re-arm repeat: the crossing and how long the series has been firing."""
    return f"{crossing(value, direction, limit)}, firing for {firing_s} s"


def resolved(value: float, direction: str, limit: float) -> str:
    """A series that no longer crosses."""
    return f"resolved: {value:.6g} no longer {direction} {limit:g}"


def held_back(direction: str, limit: float, rearm_in_s: int) -> str:
    """Still breaching, held back by re-arm."""
    return f"still {direction} {limit:g}; re-arm in {max(0, rearm_in_s)} s"


def closed(why: str) -> str:
    """A series no longer watched."""
    return f"closed: {why}"
