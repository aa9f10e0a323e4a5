"""What the threshold table shows beside each threshold: series firing now and the last firing."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from rrdalarm.store.database import Store


@dataclass(frozen=True)
class Live:
    firing: int = 0
    last_fired: int | None = None


def live_states(store: Store, threshold_ids: Iterable[int]) -> dict[int, Live]:
    """Per threshold id: how many series are FIRING and when an alarm last fired."""
    ids = list(threshold_ids)
    firing, fired = store.threshold_activity(ids)
    return {i: Live(int(firing.get(i, 0)), fired.get(i)) for i in ids}
