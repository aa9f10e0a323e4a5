"""How rows and events word what happened to a series: the one place for that text.

Pure functions of numbers; the engine (events, report rows) and the editor's
preview both call them, so that a preview says what the check will say. Numbers
are shown with SI prefixes and the threshold's unit ("31.6 MB/s above 30 MB/s").
"""

from __future__ import annotations

from rrdalarm.common.quantities import format_duration, format_quantity


def crossing(value: float, direction: str, limit: float, unit: str = "") -> str:
    """A new alarm: `31.6 MB/s above 30 MB/s`."""
    return f"{format_quantity(value, unit)} {direction} {format_quantity(limit, unit)}"


def repeat(value: float, direction: str, limit: float, firing_s: int, unit: str = "") -> str:
    """A re-arm repeat: the crossing and how long the series has been firing."""
    return f"{crossing(value, direction, limit, unit)}, firing for {format_duration(firing_s)}"


def resolved(value: float, direction: str, limit: float, unit: str = "",
             count: tuple[int, int] | None = None) -> str:
    """A series that no longer crosses: how many points of the rule still did, when known."""
    if count is not None and count[1] > 1:
        return f"resolved: {count[0]} of {count[1]} points {direction} {format_quantity(limit, unit)}"
    return f"resolved: {format_quantity(value, unit)} no longer {direction} {format_quantity(limit, unit)}"


def held_back(direction: str, limit: float, rearm_in_s: int, unit: str = "") -> str:
    """Still breaching, held back by re-arm."""
    return f"still {direction} {format_quantity(limit, unit)}; re-arm in {format_duration(max(0, rearm_in_s))}"


def holding(value: float, direction: str, clear_value: float, unit: str = "") -> str:
    """No longer breaching, but not yet past the clear level (hysteresis)."""
    return f"still firing: {format_quantity(value, unit)} {direction} clear level {format_quantity(clear_value, unit)}"


def keep_firing(clear_s: int, keep_s: int) -> str:
    """No longer breaching, kept firing for `keep_firing_for`."""
    return f"still firing: clear for {format_duration(clear_s)} of {format_duration(keep_s)}"


def no_data_alarm() -> str:
    return "no data: no known point in the window"


def no_data_resolved() -> str:
    return "resolved: no known point in the window"


def data_back(value: float | None, unit: str = "") -> str:
    return f"resolved: data back ({format_quantity(value, unit)})"


def stale(count: int, total: int, stale_after_s: int, noun: tuple[str, str] = ("file", "files")) -> str:
    """One threshold's files (or series) whose collector stopped; `noun`: (singular, plural)."""
    return f"stale: {count} of {total} {noun[total != 1]} not updated for {format_duration(stale_after_s)}"


def fresh(stale_after_s: int, singular: str = "file") -> str:
    return f"no longer stale: every {singular} updated within {format_duration(stale_after_s)}"


def flapping(changes: int, window_s: int) -> str:
    noun = "change" if changes == 1 else "changes"
    return f"flapping: {changes} {noun} in {format_duration(window_s)}"


def settled(firing: bool, window_s: int) -> str:
    state = "firing" if firing else "OK"
    return f"settled: {state}, no change for {format_duration(window_s)}"


def closed(why: str) -> str:
    """A series no longer watched."""
    return f"closed: {why}"


def unsilenced(message: str, since: str, until: str) -> str:
    """The one notification of a series still firing when its silence ended."""
    return f"{message} (silenced from {since} until {until})"


def acknowledged(message: str, by: str, comment: str) -> str:
    """A FIRING row whose repeats an acknowledgement holds back."""
    return f"{message}; acknowledged by {by}: {comment}" if comment else f"{message}; acknowledged by {by}"


def ack_event(by: str, comment: str) -> str:
    """The `ack` event told to the actions."""
    return f"acknowledged by {by}: {comment}"
