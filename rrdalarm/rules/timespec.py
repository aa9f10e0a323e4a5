"""AT-style time specifications, resolved against a caller-supplied "now".

Thresholds carry their window as rrdtool time specs (``now-3h``, ``end-1d``,
``1700000000``). rrdalarm resolves them here rather than through librrd,
because librrd always reads the system clock and ``rrdalarm check --at EPOCH``
must evaluate as if "now" were EPOCH.

Supported: the subset of rrdfetch(1) "AT-STYLE TIME SPECIFICATION" that is
exact and clock-free, mirroring ``src/rrd_parsetime.c`` of rrdtool 1.7:

* a reference: ``now``/``n``, ``start``/``s``, ``end``/``e``, or epoch
  seconds (a number above 315360000, as rrdtool requires); with no reference
  the spec is relative to now (``-1h``);
* offsets: a sign followed by one or more number+unit pairs (``-1d12h``);
  several signed groups may follow each other (``-7h+1h30m-15min``);
  ``start``/``end`` need at least one offset, as in rrdtool. A final number
  without a unit means seconds (``-300``);
* units: s, sec, second(s); min, minute(s); h, hr, hour(s); d, day(s);
  w, wk, week(s); mon, month(s); y, yr, year(s); and ``m``, which rrdtool
  reads as months right after y/mon/w/d, as minutes right after h/min/s,
  and otherwise (first pair after a sign) as months if the number is below
  6, else minutes: ``-5m`` is five months, ``-6m`` six minutes;
* case-insensitive; whitespace, ``_`` and ``,`` may separate tokens.

Calendar arithmetic follows rrdtool's ``struct tm`` + mktime(3) model, in
UTC: years, months, weeks and days of all pairs are summed and added to the
broken-down reference at once (no clamping, so an overflowing day rolls into
the next month: Mar 31 - 1 month = "Feb 31" = Mar 3), then hours, minutes
and seconds are added as plain seconds. rrdtool does the same in local time,
so results agree with it whenever its TZ is UTC.

Not supported (TimeSpecError): times of day, dates, day and month names,
``noon``/``midnight``/``teatime``/``yesterday`` and the like, ``epoch``
(librrd 1.7 resolves it from 1899-12-31, not 1970), and units rrdtool does
not know (``mins``, ``hrs``: rrdtool silently reads those as seconds).
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Final, Literal

__all__ = ["TimeSpecError", "resolve_window", "validate"]


class TimeSpecError(ValueError):
    """A time specification that cannot be parsed; str() is one clear line naming the spec and what is wrong."""


_Reference = Literal["now", "start", "end", "epoch"]
_Unit = Literal["s", "min", "h", "d", "w", "mon", "y", "m"]
_Token = tuple[Literal["num", "word", "+", "-"], str]

# rrdtool reads smaller numbers as a time of day or a date (rrd_parsetime.c:
# day() treats a NUMBER as seconds only when it exceeds 10 * 365 days).
_MIN_EPOCH: Final = 10 * 365 * 24 * 60 * 60
# Far beyond any useful value, yet small enough that int() never meets
# Python's digit limit and error messages stay short.
_MAX_DIGITS: Final = 18

_REFERENCES: Final[dict[str, _Reference]] = {
    "now": "now",
    "n": "now",
    "start": "start",
    "s": "start",
    "end": "end",
    "e": "end",
}

_UNITS: Final[dict[str, _Unit]] = {
    "s": "s",
    "sec": "s",
    "second": "s",
    "seconds": "s",
    "min": "min",
    "minute": "min",
    "minutes": "min",
    "h": "h",
    "hr": "h",
    "hour": "h",
    "hours": "h",
    "d": "d",
    "day": "d",
    "days": "d",
    "w": "w",
    "wk": "w",
    "week": "w",
    "weeks": "w",
    "mon": "mon",
    "month": "mon",
    "months": "mon",
    "y": "y",
    "yr": "y",
    "year": "y",
    "years": "y",
    "m": "m",
}

_SECONDS_PER_UNIT: Final[dict[_Unit, int]] = {"s": 1, "min": 60, "h": 3600}
_DAYS_PER_UNIT: Final[dict[_Unit, int]] = {"d": 1, "w": 7}
_MONTHS_PER_UNIT: Final[dict[_Unit, int]] = {"mon": 1, "y": 12}

# Words rrdtool accepts in absolute times; named so that the error can say
# "not supported" rather than "unknown".
_UNSUPPORTED_WORDS: Final = frozenset(
    (
        *("midnight", "noon", "teatime", "am", "pm"),
        *("today", "yesterday", "tomorrow", "epoch"),
        *("jan", "feb", "mar", "apr", "may", "jun"),
        *("jul", "aug", "sep", "oct", "nov", "dec"),
        *("january", "february", "march", "april", "june", "july"),
        *("august", "september", "october", "november", "december"),
        *("sun", "mon", "tue", "wed", "thu", "fri", "sat"),
        *("sunday", "monday", "tuesday", "wednesday"),
        *("thursday", "friday", "saturday"),
    )
)

# ASCII only: str.isdigit() and str.isalpha() accept other scripts' digits
# and letters, which rrdtool's C scanner never would.
_DIGITS: Final = frozenset(string.digits)
_LETTERS: Final = frozenset(string.ascii_letters)
# rrd_parsetime.c's scanner skips these between tokens.
_SEPARATORS: Final = frozenset(" \t\n\r\f\v_,")
_SECONDS_PER_DAY: Final = 86400
_EPOCH_ORDINAL: Final = date(1970, 1, 1).toordinal()


@dataclass(frozen=True, slots=True)
class _Spec:
    """A parsed spec: its reference plus rrdtool's three kinds of offset."""

    text: str
    reference: _Reference
    epoch: int
    months: int
    days: int
    seconds: int


def _error(spec: str, reason: str) -> TimeSpecError:
    # repr() keeps the message on one line whatever the spec contains.
    return TimeSpecError(f"time spec {spec!r}: {reason}")


def _tokenize(spec: str) -> list[_Token]:
    """Split like rrdtool's scanner: digit runs, letter runs and signs."""
    tokens: list[_Token] = []
    i = 0
    while i < len(spec):
        char = spec[i]
        if char in _SEPARATORS:
            i += 1
        elif char == "+" or char == "-":
            tokens.append(("+" if char == "+" else "-", char))
            i += 1
        elif char in _DIGITS or char in _LETTERS:
            kind: Literal["num", "word"] = "num" if char in _DIGITS else "word"
            alphabet = _DIGITS if kind == "num" else _LETTERS
            j = i + 1
            while j < len(spec) and spec[j] in alphabet:
                j += 1
            tokens.append((kind, spec[i:j].lower()))
            i = j
        elif char in ":./":
            raise _error(
                spec,
                f"unexpected {char!r}: times of day and dates (HH:MM, MM/DD/YYYY, DD.MM.YYYY) are not supported",
            )
        else:
            raise _error(spec, f"unexpected character {char!r}")
    return tokens


def _number(spec: str, digits: str) -> int:
    if len(digits) > _MAX_DIGITS:
        raise _error(spec, f"number {digits} is too large")
    return int(digits)


def _resolve_m(previous: _Unit | None, number: int) -> _Unit:
    """Guess months or minutes for 'm' exactly as rrd_parsetime.c does."""
    if previous in ("d", "w", "mon", "y"):
        return "mon"
    if previous in ("s", "min", "h"):
        return "min"
    return "mon" if number < 6 else "min"


def _parse(spec: str) -> _Spec:
    tokens = _tokenize(spec)
    if not tokens:
        raise _error(spec, "empty time specification")
    reference, epoch, pos = _reference(spec, tokens)
    text = tokens[0][1]
    has_offset = pos < len(tokens) and tokens[pos][0] in ("+", "-")
    if pos < len(tokens) and not has_offset:
        raise _error(
            spec,
            f"{text!r} may only be followed by a +/- offset, not {tokens[pos][1]!r}",
        )
    if reference in ("start", "end") and not has_offset:
        raise _error(spec, f"{text!r} must be followed by a +/- offset")
    months, days, seconds = _offsets(spec, tokens, pos)
    return _Spec(spec, reference, epoch, months, days, seconds)


def _reference(spec: str, tokens: list[_Token]) -> tuple[_Reference, int, int]:
    """(reference, epoch, index of the first token after it) of a time specification."""
    kind, text = tokens[0]
    if kind == "+" or kind == "-":
        return "now", 0, 0
    if kind == "num":
        epoch = _number(spec, text)
        if epoch <= _MIN_EPOCH:
            raise _error(
                spec,
                f"{text} is not read as epoch seconds (rrdtool takes numbers "
                f"up to {_MIN_EPOCH} as a date or time of day, "
                "which is not supported)",
            )
        return "epoch", epoch, 1
    if text in _REFERENCES:
        return _REFERENCES[text], 0, 1
    if text in _UNSUPPORTED_WORDS:
        raise _error(
            spec,
            f"{text!r} is not supported; the time reference must be now, start, end or epoch seconds",
        )
    raise _error(spec, f"unknown word {text!r}")


def _offsets(spec: str, tokens: list[_Token], pos: int) -> tuple[int, int, int]:
    """(months, days, seconds) of the +/- offsets from tokens[pos] on."""
    months = days = seconds = 0
    sign = 0
    # rrdtool's context for the ambiguous 'm'; every sign resets it.
    previous: _Unit | None = None
    while pos < len(tokens):
        kind, text = tokens[pos]
        if kind == "+" or kind == "-":
            sign = 1 if kind == "+" else -1
            previous = None
            pos += 1
            if pos == len(tokens) or tokens[pos][0] != "num":
                raise _error(spec, f"expected a number after {kind!r}")
            continue
        if kind != "num":
            raise _error(spec, f"unexpected {text!r} after the offset")
        number = _number(spec, text)
        pos += 1
        if pos == len(tokens):
            # rrdtool's default unit. Accepted only at the very end because
            # elsewhere librrd mis-parses it ("-5+3h" becomes -5s-3h).
            seconds += sign * number
            break
        unit = _unit(spec, tokens[pos], text, number, previous)
        pos += 1
        previous = unit
        if unit in _SECONDS_PER_UNIT:
            seconds += sign * number * _SECONDS_PER_UNIT[unit]
        elif unit in _DAYS_PER_UNIT:
            days += sign * number * _DAYS_PER_UNIT[unit]
        else:
            months += sign * number * _MONTHS_PER_UNIT[unit]
    return months, days, seconds


def _unit(spec: str, token: _Token, number_text: str, number: int, previous: _Unit | None) -> _Unit:
    """The unit a number is followed by ('m' resolved as rrdtool does)."""
    unit_kind, unit_text = token
    if unit_kind != "word":
        raise _error(
            spec,
            f"number {number_text} needs a time unit (only the last number may omit it, meaning seconds)",
        )
    unit = _UNITS.get(unit_text)
    if unit is None:
        raise _error(
            spec,
            f"unknown time unit {unit_text!r} (rrdtool would silently read the number as seconds)",
        )
    return _resolve_m(previous, number) if unit == "m" else unit


def _apply(spec: _Spec, base: int) -> int:
    """Add spec's offsets to base as rrdtool's mktime() normalisation does."""
    if spec.months or spec.days:
        day_number, second_of_day = divmod(base, _SECONDS_PER_DAY)
        try:
            today = date.fromordinal(_EPOCH_ORDINAL + day_number)
            year, month0 = divmod(today.year * 12 + today.month - 1 + spec.months, 12)
            # Counting from the 1st lets an out-of-range day overflow into
            # the following month, as mktime() does with tm_mday.
            first = date(year, month0 + 1, 1)
            target = first + timedelta(days=today.day - 1 + spec.days)
        except (OverflowError, ValueError):
            raise _error(spec.text, "resolves to a date out of range") from None
        days_since_epoch = target.toordinal() - _EPOCH_ORDINAL
        base = days_since_epoch * _SECONDS_PER_DAY + second_of_day
    return base + spec.seconds


def _absolute_base(spec: _Spec, now: int) -> int:
    return spec.epoch if spec.reference == "epoch" else now


def validate(spec: str) -> None:
    """Raise TimeSpecError if spec is not a supported AT-style time."""
    _parse(spec)


def resolve_window(start: str, end: str, now: int) -> tuple[int, int]:
    """Resolve an AT-style start/end pair to epoch seconds, with `now` as the current time."""
    start_spec = _parse(start)
    end_spec = _parse(end)
    # The same checks, in the same order, as rrd_proc_start_end().
    if start_spec.reference == "end" and end_spec.reference == "start":
        raise TimeSpecError(f"start {start!r} and end {end!r} cannot be specified relative to each other")
    if start_spec.reference == "start":
        raise TimeSpecError(f"start {start!r} cannot be specified relative to itself")
    if end_spec.reference == "end":
        raise TimeSpecError(f"end {end!r} cannot be specified relative to itself")

    if start_spec.reference == "end":
        end_time = _apply(end_spec, _absolute_base(end_spec, now))
        start_time = _apply(start_spec, end_time)
    elif end_spec.reference == "start":
        start_time = _apply(start_spec, _absolute_base(start_spec, now))
        end_time = _apply(end_spec, start_time)
    else:
        start_time = _apply(start_spec, _absolute_base(start_spec, now))
        end_time = _apply(end_spec, _absolute_base(end_spec, now))

    if start_time >= end_time:
        raise TimeSpecError(f"start {start!r} ({start_time}) is not before end {end!r} ({end_time})")
    return start_time, end_time


def resolve_time(spec: str, now: int) -> int:
    """One AT-style time (`now+2h`, an epoch) as epoch seconds; `start`/`end` references are refused."""
    parsed = _parse(spec)
    if parsed.reference in ("start", "end"):
        raise TimeSpecError(f"{spec!r} cannot be relative to start or end here")
    return _apply(parsed, _absolute_base(parsed, now))
