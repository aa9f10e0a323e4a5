"""What the threshold table shows beside each threshold: series firing now and the last firing."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import func, select

from rrdalarm.model.states import State, Status
from rrdalarm.store.database import AlarmEvent, SeriesState, Store


@dataclass(frozen=True)
class Live:
    firing: int = 0
    last_fired: int | None = None


def live_states(store: Store, threshold_ids: Iterable[int]) -> dict[int, Live]:
    """Per threshold id: how many series are FIRING and when an alarm last fired (two grouped queries)."""
    ids = list(threshold_ids)
    with store.session() as s:
        firing = dict(s.execute(
            select(SeriesState.threshold_id, func.count())
            .where(SeriesState.threshold_id.in_(ids), SeriesState.state == State.FIRING.value)
            .group_by(SeriesState.threshold_id)
        ).all())
        fired = dict(s.execute(
            select(AlarmEvent.threshold_id, func.max(AlarmEvent.at))
            .where(AlarmEvent.threshold_id.in_(ids), AlarmEvent.status == Status.ALARM_FIRED.value)
            .group_by(AlarmEvent.threshold_id)
        ).all())
    return {i: Live(int(firing.get(i, 0)), fired.get(i)) for i in ids}
