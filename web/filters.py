"""Query-string filters of the pages: parsing that names the bad parameter in one line (no request, no clock)."""

from __future__ import annotations

import re
import time
from collections.abc import Iterable
from datetime import datetime

from rrdalarm.config.thresholds import MAX_ID

MAX_PAGE = 1_000_000
_EPOCH = re.compile(r"\d{1,11}(\.\d+)?")
# What people type in the from/to inputs (ISO, 24 hours; a "T" or a space; seconds optional).
_LOCAL_FORMATS = ("%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d")
_EARLIEST = "315360001"  # the smallest epoch rrdtool's time specs accept as a reference


class FilterError(ValueError):
    """A query parameter that cannot be used; str() is one line for the page."""


def parse_time(text: str | None, now: int, name: str) -> int | None:
    """A local date-time (as datetime-local sends it), epoch seconds or now-1d style; None when empty."""
    text = (text or "").strip()
    if not text:
        return None
    if _EPOCH.fullmatch(text):
        return int(float(text))
    for fmt in _LOCAL_FORMATS:
        try:
            # A naive datetime's timestamp() reads it in the server's local time, as the page says.
            return int(datetime.strptime(text, fmt).timestamp())
        except (ValueError, OverflowError, OSError):
            continue
    if text.lower().startswith(("now", "-")):
        from rrdalarm.rules.timespec import TimeSpecError, resolve_window

        try:
            return resolve_window(_EARLIEST, text, now)[1]
        except TimeSpecError:
            pass
    raise FilterError(f"{name}: {text!r} is not a date and time (YYYY-MM-DDTHH:MM), epoch seconds or now-1d")


def parse_int(text: str | None, name: str, minimum: int = 0, maximum: int = MAX_ID) -> int | None:
    """A whole number in [minimum, maximum]; None when empty."""
    text = (text or "").strip()
    if not text:
        return None
    if not re.fullmatch(r"[+-]?\d{1,19}", text) or not minimum <= int(text) <= maximum:
        raise FilterError(f"{name}: {text!r} is not a whole number from {minimum} to {maximum}")
    return int(text)


def parse_page(text: str | None) -> int:
    return parse_int(text, "page", 1, MAX_PAGE) or 1


def parse_choice(text: str | None, choices: Iterable[str], name: str) -> str | None:
    """One of `choices` (matched without regard to case, returned as spelled there); None when empty."""
    text = (text or "").strip()
    if not text:
        return None
    options = list(choices)
    for option in options:
        if option.lower() == text.lower():
            return option
    raise FilterError(f"{name}: {text!r} is not one of {', '.join(options)}")


def local_input(epoch: int | None) -> str:
    """An epoch as the from/to inputs show it: ISO, 24 hours, in the server's local time."""
    return "" if epoch is None else time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(epoch))


def parse_text(text: str | None, name: str) -> str | None:
    """Search text: stripped, at most 200 characters; None when empty."""
    text = (text or "").strip()
    if not text:
        return None
    if len(text) > 200 or "\x00" in text:
        raise FilterError(f"{name}: at most 200 characters of text")
    return text
