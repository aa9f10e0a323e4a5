"""The alarm-tuning fields of a threshold (docs/semantics.md §2b), each declared once.

The loader reads them through `read_tuning`, the writer writes back what was typed,
and the editor builds its inputs from `TUNING_FIELDS` (label, help, choices).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from functools import partial
from typing import Any

from rrdalarm.common.quantities import format_quantity, parse_duration, parse_quantity
from rrdalarm.config.problems import Problems
from rrdalarm.model.definitions import Tuning
from rrdalarm.model.errors import ConfigError
from rrdalarm.model.states import Direction, NoData, Severity

Fail = Callable[[str, str], ConfigError]


def _choice(kind: type[Severity] | type[NoData]) -> Callable[[Any], Any]:
    names = ", ".join(repr(str(k)) for k in kind)

    def read(raw: Any) -> Any:
        if not isinstance(raw, str) or raw.lower() not in {str(k) for k in kind}:
            raise ValueError(f"must be one of {names}, not {raw!r}")
        return kind(raw.lower())

    return read


def _text(raw: Any) -> str:
    if not isinstance(raw, str):
        raise ValueError(f"must be text, not {raw!r}")
    if "\x00" in raw:
        raise ValueError("contains a NUL character")
    return raw.strip()


def _url(raw: Any) -> str:
    text = _text(raw)
    if text and not text.startswith(("http://", "https://")):
        raise ValueError(f"must be an http:// or https:// URL, not {text!r}")
    return text


def _labels(raw: Any) -> dict[str, str]:
    if not isinstance(raw, Mapping):
        raise ValueError("must be a table of text values, e.g. labels = { team = \"net\" }")
    for k, v in raw.items():
        if not isinstance(v, str) or "\x00" in v or "\x00" in k:
            raise ValueError(f"label {k!r} must be text, not {v!r}")
    return dict(raw)


def _scale(raw: Any) -> float:
    value = parse_quantity(raw)
    if value <= 0:
        raise ValueError(f"must be above 0, not {raw!r}")
    return value


def _count(raw: Any) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int) or raw < 0:
        raise ValueError(f"must be a whole number, 0 or more, not {raw!r}")
    return raw


@dataclass(frozen=True)
class TuningField:
    """One tuning field: how it is read, and how the editor shows it."""

    read: Callable[[Any], Any]
    label: str
    help: str
    choices: tuple[str, ...] = ()
    kind: str = "number"
    """How the editor turns its input into the file's value: "number" (a number when the text is one,
    else the text, as "80M" or "10min"), "text" (always text), "choice" (one of `choices`), "labels"
    (key=value lines to a table)."""


TUNING_FIELDS: dict[str, TuningField] = {
    "severity": TuningField(_choice(Severity), "Severity", "critical, warning (default) or info",
                            tuple(str(s) for s in Severity), kind="choice"),
    "labels": TuningField(_labels, "Labels", "free labels carried to actions, one key=value a line, e.g. team=net",
                          kind="labels"),
    "description": TuningField(_text, "Description", "what the alarm means, carried to actions", kind="text"),
    "runbook": TuningField(_url, "Runbook", "URL of what to do when it fires", kind="text"),
    "unit": TuningField(_text, "Unit", "display unit, e.g. B/s, bit/s, %", kind="text"),
    "scale": TuningField(_scale, "Scale", "multiplies every fetched value before comparison (8: bytes to bits)"),
    "within": TuningField(_count, "Within (M of N)",
                          "breach when 'repetitions' of the newest N known points cross (0: consecutive)"),
    "clear_value": TuningField(parse_quantity, "Clear level",
                               "a firing series resolves only once its newest point no longer crosses this"),
    "keep_firing_for": TuningField(parse_duration, "Keep firing for",
                                   "a firing series resolves only after this long without a breach, e.g. 10min"),
    "no_data": TuningField(_choice(NoData), "No data",
                           "keep (state unchanged), ok (a firing series resolves) or alarm (fires)",
                           tuple(str(n) for n in NoData), kind="choice"),
    "stale_after": TuningField(parse_duration, "Stale after",
                               "a file not updated for this long is STALE, e.g. 15min (empty: never)"),
    "flap_changes": TuningField(_count, "Flap changes",
                                "more state changes than this within the flap window make it FLAPPING"),
    "flap_window": TuningField(parse_duration, "Flap window", "e.g. 10min"),
}


_MISTAKE = object()


def read_tuning(raw: Mapping[str, Any], fail: Fail, direction: Direction, limit: float,
                repetitions: int, problems: Problems | None = None) -> Tuning:
    """The tuning fields of a threshold table, each checked, then checked against each other."""
    p = problems or Problems()
    values: dict[str, Any] = {}
    typed: dict[str, Any] = {}
    for name, spec in TUNING_FIELDS.items():
        if name not in raw:
            continue
        value = p.step(_MISTAKE, partial(_read, spec, name, raw[name], fail))
        if value is not _MISTAKE:  # else `problems` kept the mistake, and the default stands in
            values[name] = value
            typed[name] = raw[name]
    tuning = replace(Tuning(), **values, typed=typed)
    # Each comparison runs only once the fields it compares were read, or it would restate their mistake.
    checks: tuple[tuple[tuple[str, ...], Callable[[], None]], ...] = (
        (("type", "value", "clear_value"), lambda: _clear_level(tuning, fail, direction, limit)),
        (("repetitions", "within"), lambda: _within(tuning, fail, repetitions)),
        (("flap_changes", "flap_window"), lambda: _flapping(tuning, fail)),
    )
    for needs, check in checks:
        if p.ok(*needs):
            p.step(None, check)
    return tuning


def _read(spec: TuningField, name: str, raw: Any, fail: Fail) -> Any:
    try:
        return spec.read(raw)
    except ValueError as exc:
        raise fail(name, str(exc)) from None


def _clear_level(t: Tuning, fail: Fail, direction: Direction, limit: float) -> None:
    if t.clear_value is not None:
        wrong = t.clear_value > limit if direction is Direction.ABOVE else t.clear_value < limit
        if wrong:
            side = "at or below" if direction is Direction.ABOVE else "at or above"
            article = "an" if direction is Direction.ABOVE else "a"
            raise fail("clear_value", f"must be {side} the limit of {article} '{direction.value}' threshold "
                                      f"({format_quantity(limit)}), not {format_quantity(t.clear_value)}")


def _within(t: Tuning, fail: Fail, repetitions: int) -> None:
    if t.within and t.within < max(1, repetitions):
        raise fail("within", f"must be at least 'repetitions' ({max(1, repetitions)}) or 0, not {t.within}")


def _flapping(t: Tuning, fail: Fail) -> None:
    if bool(t.flap_changes) != bool(t.flap_window):
        missing = "flap_window" if t.flap_changes else "flap_changes"
        raise fail(missing, "flap detection needs both flap_changes and flap_window")
