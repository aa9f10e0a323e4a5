"""The original RRDAlarm's rrdAlarmConfig.txt: ten tab-separated fields per line."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rrdalarm.common.fileutil import split_lines
from rrdalarm.config.thresholds import check_unique_ids, threshold_from_dict
from rrdalarm.model.definitions import ActionSpec, Threshold
from rrdalarm.model.errors import ConfigError

FIELDS = (
    "id", "glob", "type", "value", "repetitions", "start", "end", "action", "parameter", "rearm",
)

# Original action scripts and the plugin (and parameter) that does their job now.
LEGACY_ACTIONS: dict[str, tuple[str, str]] = {
    "savelog": ("log", "file"),
    "sendmail": ("email", "to"),
}


def split_fields(line: str) -> list[str]:
    """Each tab separates two fields, as the original's `line.rstrip().split('\\t')`; a line without tabs
    is split on runs of spaces.

    An empty field between two tabs is a field (the parameter of action None, say).
    """
    if "\t" not in line:
        return line.split()
    return [part.strip() for part in line.rstrip().split("\t")]


def legacy_action(name: str, parameter: str) -> tuple[ActionSpec, ...]:
    if name.lower() in ("none", "") :
        return ()
    plugin, param_name = LEGACY_ACTIONS.get(name.lower(), (name, "parameter"))
    params: dict[str, Any] = {}
    if parameter and parameter.lower() != "none":
        params[param_name] = parameter
    # The original acted on every firing check once "time before next" had passed, and never on recovery.
    params["on"] = ["fire", "repeat"]
    return (ActionSpec(type=plugin, params=params),)


def parse_legacy(text: str, path: str, sources: Sequence[str] = ("rrd",)) -> list[Threshold]:
    """Parse legacy rows into thresholds, with the same validation as TOML."""
    out: list[Threshold] = []
    for number, line in enumerate(split_lines(text), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        parts = split_fields(line)
        if len(parts) != len(FIELDS):
            raise ConfigError(
                path,
                f"expected {len(FIELDS)} tab-separated fields "
                f"({', '.join(FIELDS)}), found {len(parts)}",
                number,
            )
        row = dict(zip(FIELDS, parts, strict=True))
        raw: dict[str, Any] = {
            "id": _number(row["id"], "id", path, number, int),
            "glob": row["glob"],
            "type": row["type"],
            "value": _number(row["value"], "value", path, number, float),
            "repetitions": _number(row["repetitions"], "repetitions", path, number, int),
            "start": row["start"],
            "end": row["end"],
            "rearm": _number(row["rearm"], "rearm", path, number, int),
        }
        t = threshold_from_dict(raw, path, locate=lambda _k, n=number: n, sources=sources)  # type: ignore[misc]
        name = f"{t.glob} {t.type.value} {row['value']}"
        out.append(
            Threshold(
                id=t.id, name=name, type=t.type, value=t.value, glob=t.glob, source=t.source,
                repetitions=t.repetitions, start=t.start, end=t.end,
                actions=legacy_action(row["action"], row["parameter"]), rearm=t.rearm,
                location=t.location,
            )
        )
    check_unique_ids(out, path)
    return out


def _number(text: str, name: str, path: str, line: int, kind: type[int] | type[float]) -> int | float:
    try:
        if kind is int and "." in text and float(text).is_integer():
            return int(float(text))  # "60.0" seconds is a whole number too
        return kind(text)
    except ValueError:
        what = "a whole number" if kind is int else "a number"
        raise ConfigError(path, f"must be {what}, not {text!r}", line, name) from None
