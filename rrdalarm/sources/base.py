"""The source contract: thresholds and a time in, one outcome per series out.

A source expands what a threshold matches, reads the window's points and runs
the pure breach rule (`rrdalarm.rules.evaluate.find_breach`) next to the data, so
that only outcomes cross process boundaries. It never raises for data it
cannot read: an unreadable file or an unreachable server becomes an ERROR
outcome for the series concerned, and the check goes on. It keeps no alarm
state; the engine owns state transitions.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import ClassVar

from rrdalarm.model.definitions import Settings, Threshold

SeriesKey = tuple[int, str, str]
"""(threshold id, series name, data source)."""

ProgressCallback = Callable[[int, int], None]
"""Called with (done, total) as work proceeds."""


class OutcomeKind(StrEnum):
    BREACH = "breach"
    OK = "ok"
    NO_DATA = "no data"
    ERROR = "error"
    GONE = "gone"
    """A FIRING series no longer watched (its file gone or no longer matched): the engine closes it.

    Only for what the source knows is gone, never for what it cannot see right now: an
    unreadable file is an ERROR, and so is a pattern that matches nothing at all (an
    unmounted root, an unreachable listing), which keeps every state as it is.
    """


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one series looked like in this check."""

    threshold: int
    series: str
    ds: str
    kind: OutcomeKind
    value: float | None = None
    time: int | None = None
    message: str = ""

    @property
    def key(self) -> SeriesKey:
        return (self.threshold, self.series, self.ds)


@dataclass
class SourceReport:
    """All outcomes of one source in one check, plus its counters and what the operator should hear of."""

    outcomes: list[Outcome] = field(default_factory=list)
    files_checked: int = 0
    series_checked: int = 0
    warnings: list[str] = field(default_factory=list)


class Source(ABC):
    """Base class of every source plugin (entry-point group `rrdalarm.sources`).

    `check` must not raise for unreadable data (see the module docstring);
    it may raise ConfigError for a mistake in settings. OK outcomes are
    returned only when `want_ok` is true or the series is in `firing` (so the
    engine can resolve it); every other outcome is always returned.
    """

    name: ClassVar[str]

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @abstractmethod
    def check(
        self,
        thresholds: Sequence[Threshold],
        now: int,
        *,
        firing: frozenset[SeriesKey],
        want_ok: bool,
        progress: ProgressCallback | None = None,
    ) -> SourceReport:
        """Evaluate every series of `thresholds` as of `now`."""
