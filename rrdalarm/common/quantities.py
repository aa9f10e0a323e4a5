"""Numbers as people write and read them: SI suffixes ("80M", "64Ki") and durations ("10min").

Pure functions, no I/O. `parse_quantity` and `parse_duration` raise ValueError with a
one-line reason; `format_quantity` shows a value with an SI prefix and a unit.
"""

from __future__ import annotations

import math
import re

_DECIMAL = {"": 1.0, "k": 1e3, "K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15, "E": 1e18,
            "m": 1e-3, "u": 1e-6, "µ": 1e-6, "n": 1e-9}
_BINARY = {"Ki": 2.0**10, "Mi": 2.0**20, "Gi": 2.0**30, "Ti": 2.0**40, "Pi": 2.0**50, "Ei": 2.0**60}
_QUANTITY = re.compile(r"^\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*([A-Za-zµ]{0,2})\s*$")
SUFFIXES = "k, M, G, T, P, E, m, u, n, Ki, Mi, Gi, Ti, Pi, Ei"


def parse_quantity(raw: object) -> float:
    """A finite number, or text such as "80M", "1.5G", "10k", "64Ki" (1024-based), "-2.5m"."""
    if isinstance(raw, bool) or not isinstance(raw, (int, float, str)):
        raise ValueError(f"must be a number or a number with an SI suffix such as \"80M\", not {raw!r}")
    if isinstance(raw, str):
        m = _QUANTITY.match(raw)
        suffix = m.group(2) if m else ""
        factor = _BINARY.get(suffix) or _DECIMAL.get(suffix)
        if m is None or factor is None:
            raise ValueError(f"{raw!r} is not a number with an SI suffix (one of {SUFFIXES}), as in \"80M\"")
        value = float(m.group(1)) * factor
    else:
        try:
            value = float(raw)
        except OverflowError:  # an int beyond float's range
            value = math.inf
    if not math.isfinite(value):
        raise ValueError(f"must be a finite number, not {raw!r}")
    return value


_PREFIXES = {6: "E", 5: "P", 4: "T", 3: "G", 2: "M", 1: "k", 0: "", -1: "m", -2: "µ", -3: "n"}
# Units that never take a prefix: "75 %", not "75 m%".
_PLAIN_UNITS = frozenset({"%", "°C", "°F", "C", "F"})


def format_quantity(value: float | None, unit: str = "") -> str:
    """`value` to 3 significant digits with an SI prefix and `unit`: 31600000, "B/s" -> "31.6 MB/s".

    Without a unit, numbers under 1000 are shown as they are ("0.5", not "500 m").
    """
    if value is None or math.isnan(value):
        return "-"
    if value == 0:
        return _join("0", unit)  # and not "-0"
    if math.isinf(value) or unit in _PLAIN_UNITS or (not unit and abs(float(f"{value:.3g}")) < 1000):
        return _join(f"{value:.3g}", unit)
    power = max(-3, min(6, math.floor(math.log10(abs(value)) / 3)))
    scaled = value / 1000.0**power
    if abs(float(f"{scaled:.3g}")) >= 1000 and power < 6:  # 999.96k rounds to 1.00M
        power += 1
        scaled = value / 1000.0**power
    return _join(f"{scaled:.3g}", _PREFIXES[power] + unit)


def format_limit(value: float, unit: str = "") -> str:
    """A limit for people: as format_quantity when that shows it exactly ("80 MB/s"), else all its digits.

    A limit is what alarms are compared with: rounding 1234567 to "1.23 M" would hide what was set.
    """
    shown = format_quantity(value, unit)
    number, _, rest = shown.partition(" ")
    prefix = rest[: len(rest) - len(unit)] if unit else rest
    try:
        back = parse_quantity(number + prefix)
    except ValueError:  # "inf"
        back = math.nan
    if back == value or math.isclose(back, value, rel_tol=1e-12):
        return shown
    return _join(f"{value:.12g}", unit)


def _join(number: str, unit: str) -> str:
    return f"{number} {unit}" if unit else number


_UNITS_LONGEST_FIRST = "seconds|second|secs|sec|s|minutes|minute|mins|min|m|hours|hour|h|days|day|d|weeks|week|w"
_DURATION = re.compile(rf"([0-9]+)({_UNITS_LONGEST_FIRST})")  # ASCII digits only: "١٠" is no duration
_SECONDS = {"s": 1, "sec": 1, "secs": 1, "second": 1, "seconds": 1, "m": 60, "min": 60, "mins": 60,
            "minute": 60, "minutes": 60, "h": 3600, "hour": 3600, "hours": 3600, "d": 86400, "day": 86400,
            "days": 86400, "w": 604800, "week": 604800, "weeks": 604800}


def parse_duration(raw: object) -> int:
    """Whole seconds from a number of seconds or text such as "10min", "1h30m", "2d", "90s"."""
    if isinstance(raw, bool) or not isinstance(raw, (int, float, str)):
        raise ValueError(f"must be seconds or a duration such as \"10min\", not {raw!r}")
    if isinstance(raw, (int, float)):
        if not math.isfinite(raw) or raw < 0 or raw != int(raw):
            raise ValueError(f"must be a whole number of seconds, 0 or more, not {raw!r}")
        return int(raw)
    text = raw.strip().lower().replace(" ", "")
    if text.isascii() and text.isdigit():
        return int(text)
    pos, total = 0, 0
    for m in _DURATION.finditer(text):
        if m.start() != pos:
            break
        total += int(m.group(1)) * _SECONDS[m.group(2)]
        pos = m.end()
    if not text or pos != len(text):
        raise ValueError(f"{raw!r} is not a duration: write seconds or e.g. \"90s\", \"10min\", \"1h30m\", \"2d\"")
    return total


def format_duration(seconds: int) -> str:
    """60 -> "1 min", 5400 -> "1 h 30 min", 45 -> "45 s"."""
    if seconds < 60:
        return f"{seconds} s"
    parts = []
    for size, name in ((86400, "d"), (3600, "h"), (60, "min")):
        if seconds >= size:
            parts.append(f"{seconds // size} {name}")
            seconds %= size
    if seconds:
        parts.append(f"{seconds} s")
    return " ".join(parts[:2])
