"""What the importers of other tools' limits (munin, collectd) share: building thresholds, id order, globs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from rrdalarm.config.thresholds import check_unique_ids, threshold_from_dict
from rrdalarm.model.definitions import Threshold
from rrdalarm.model.errors import ConfigError


@dataclass
class Imported:
    """The thresholds read from another tool's file, and one line per rule it could not carry over."""

    thresholds: list[Threshold] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


Rule = tuple[dict[str, Any], Mapping[str, int]]
"""A threshold table without its id, and the line each field came from ("" for the others)."""


def build_thresholds(rules: Sequence[Rule], path: str, start_id: int = 1,
                     sources: Sequence[str] = ("rrd",)) -> list[Threshold]:
    """Number `rules` from `start_id` on and validate each with the loader's own rules, so that a bad
    value is reported at the line it came from."""
    out = []
    for offset, (raw, lines) in enumerate(rules):
        table = {"id": start_id + offset, **raw}
        out.append(threshold_from_dict(table, path, locate=lambda key, at=lines: at.get(key, at[""]),  # type: ignore[misc]
                                       sources=sources))
    check_unique_ids(out, path)
    return out


def glob_literal(text: str) -> str:
    """`text` as a glob that matches only itself: *, ? and [ each become a one-character class."""
    return "".join(f"[{c}]" if c in "*?[" else c for c in text)


def number(text: str, path: str, line: int, what: str) -> int | float:
    """A limit as the other tool wrote it: a whole number stays whole, so the TOML reads as typed."""
    try:
        value = float(text)
    except ValueError:
        raise ConfigError(path, f"must be a number, not {text!r}", line, what) from None
    if value != value or value in (float("inf"), float("-inf")):
        raise ConfigError(path, f"must be a finite number, not {text!r}", line, what)
    return int(value) if value.is_integer() and "e" not in text.lower() and "." not in text else value


def labels(parts: Mapping[str, str | None]) -> dict[str, str]:
    """The parts of a series' name that are known, as labels carried to the actions."""
    return {k: v for k, v in parts.items() if v}
