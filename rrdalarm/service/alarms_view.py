"""Alarms now's groups as the pages show them: made once per change, by one thread at a time.

With thousands of firing series, grouping them is most of a request, and after a check every
client would otherwise make the same groups at once. The service makes them right after each
check; a page then narrows them to its filters and cuts each group to what people read.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

from rrdalarm.model.definitions import Threshold
from rrdalarm.model.records import StoredState
from rrdalarm.model.results import Row
from rrdalarm.report.alarms_now import AlarmsNow, Wanted, alarms_now, count, shown
from rrdalarm.rules.quieting import Cover, Quieting

# Listed per threshold; the count bar and each group's title count them all.
SERIES_PER_GROUP = 50


def narrowed(full: AlarmsNow, wanted: Wanted) -> AlarmsNow:
    """`full` with only the series `wanted` keeps, counted again; groups left empty go."""
    if wanted == Wanted():
        return full
    groups = [replace(g, items=[i for i in g.items if wanted.keeps(g, i)]) for g in full.groups]
    kept = [g for g in groups if g.items]
    return AlarmsNow(kept, count(kept))


@dataclass
class _Made:
    """The groups made, with what they were made from (compared by identity where that is what changes)."""

    states: tuple[StoredState, ...]
    rows: Sequence[Row] | None
    thresholds: Mapping[int, Threshold]
    covers: Sequence[Cover]
    full: AlarmsNow
    pages: dict[Wanted, AlarmsNow] = field(default_factory=dict)

    def made_from(self, states: tuple[StoredState, ...], rows: Sequence[Row] | None,
                  thresholds: Mapping[int, Threshold], covers: Sequence[Cover]) -> bool:
        return (self.states is states and self.rows is rows and self.covers == covers
                and self.thresholds == thresholds)


class AlarmsViews:
    """The last groups made, and the pages cut from them per filter; safe to share between threads."""

    def __init__(self, per_group: int = SERIES_PER_GROUP) -> None:
        self.per_group = per_group
        self._lock = threading.Lock()
        self._made: _Made | None = None

    def view(self, states: tuple[StoredState, ...], rows: Sequence[Row] | None,
             thresholds: Mapping[int, Threshold], wanted: Wanted, quieting: Quieting) -> AlarmsNow:
        """The page for `wanted`: the same groups come back until states, rows, thresholds or quieting change."""
        made = self._made
        if made is None or not made.made_from(states, rows, thresholds, quieting.covers):
            with self._lock:  # the others wait for the one making them instead of making them too
                made = self._made
                if made is None or not made.made_from(states, rows, thresholds, quieting.covers):
                    full = alarms_now(states, rows, thresholds, None, quieting)
                    made = _Made(states, rows, thresholds, quieting.covers, full)
                    self._made = made
        page = made.pages.get(wanted)
        if page is None:
            page = shown(narrowed(made.full, wanted), self.per_group)
            if len(made.pages) < 64:  # filters are typed by people: a few per check
                made.pages[wanted] = page
        return page
