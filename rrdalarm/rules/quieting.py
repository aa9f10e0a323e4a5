"""Which series a silence or an open maintenance window covers (pure: no I/O, no clock)."""

from __future__ import annotations

import re
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache

from rrdalarm.model.control import Matchers, Quiet

_NOTHING = re.compile(r"(?!)")


def series_glob_problem(pattern: str) -> str | None:
    """Why a silence's or window's series glob cannot be matched (a reversed range, say), or None."""
    try:
        _translate(pattern)
    except re.error as exc:
        return f"{pattern!r} is not a glob the matcher can read ({exc.msg})"
    return None


@lru_cache(maxsize=256)
def _glob(pattern: str) -> re.Pattern[str]:
    """The pattern's matcher; one it cannot read (stored before it was refused) matches nothing, so a
    check never stops on it."""
    try:
        return _translate(pattern)
    except re.error:
        return _NOTHING


def _translate(pattern: str) -> re.Pattern[str]:
    """A series glob read as thresholds' globs are: `*` and `?` stay in one folder, `**/` spans folders."""
    out: list[str] = []
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] in "*?":
            out.append("[^/]*" if pattern[i] == "*" else "[^/]")
            i += 1
        elif pattern[i] == "[" and (end := pattern.find("]", i + 2)) != -1:
            body = pattern[i + 1:end].replace("\\", "\\\\")
            out.append("[" + ("^" + body[1:] if body.startswith("!") else body) + "]")
            i = end + 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    # Case-sensitive on every platform, like the files' own names.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # "[[" read as a literal bracket, as it is today
        return re.compile("".join(out))


def glob_escape(name: str) -> str:
    """A series name as a glob that matches only itself."""
    return "".join(f"[{c}]" if c in "*?[" else c for c in name)


def matches(m: Matchers, threshold: int, series: str, ds: str, labels: Mapping[str, str], severity: str) -> bool:
    """True when every matcher given agrees with the series."""
    if m.threshold is not None and m.threshold != threshold:
        return False
    if m.severity is not None and m.severity != severity:
        return False
    if m.ds is not None and m.ds != ds:
        return False
    if any(labels.get(k) != v for k, v in m.labels.items()):
        return False
    return m.series is None or bool(_glob(m.series).fullmatch(series))


@dataclass(frozen=True)
class Cover:
    """One silence or open window: its ref (silence id, or maintenance:NAME), matchers and end."""

    ref: str
    matchers: Matchers
    until: int


@dataclass(frozen=True)
class Quieting:
    """Everything that quiets series at one check."""

    covers: Sequence[Cover] = field(default_factory=tuple)

    def __bool__(self) -> bool:
        return bool(self.covers)

    def of(self, threshold: int, series: str, ds: str, labels: Mapping[str, str], severity: str) -> Quiet | None:
        """What quiets this series now, or None."""
        hit = [c for c in self.covers if matches(c.matchers, threshold, series, ds, labels, severity)]
        if not hit:
            return None
        return Quiet(tuple(c.ref for c in hit), max(c.until for c in hit))
