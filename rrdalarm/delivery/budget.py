"""The delivery budget: at most `[delivery] max_per_check` deliveries per action target in one check.

Sits after rrdalarm/delivery/dispatch.py `plan_deliveries`, whose deliveries are one per target
with all its events. Without a budget they stay as they are. With one, a target gets one delivery
per event, the most urgent first, up to the budget; the rest of its events go out as one digest:
a delivery that carries them all plus one DIGEST event whose message counts them and names their
thresholds. One broken folder of 10,000 files thus costs each target max_per_check + 1 messages.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from rrdalarm.model.digest import digest_message
from rrdalarm.model.records import NewEvent, PlannedDelivery
from rrdalarm.model.states import EventKind, EventStatus, severity_rank

# News of a problem before a reminder of one, an all-clear last.
_KIND_RANK = {k.value: n for n, k in enumerate((EventKind.FIRED, EventKind.NO_DATA, EventKind.FLAPPING,
                                                  EventKind.STALE, EventKind.REPEAT, EventKind.RESOLVED))}

DIGEST_SERIES = "(digest)"


def urgency(events: Sequence[NewEvent], index: int) -> tuple[int, int, int, str, str, int]:
    """Sort key of the budget: severity, then kind, then threshold, series, DS, then check order."""
    e = events[index]
    return (severity_rank(e.severity), _KIND_RANK.get(e.kind, len(_KIND_RANK)),
            e.threshold_id, e.series, e.ds, index)


def digest_event(events: Sequence[NewEvent]) -> NewEvent:
    """The event that sums up `events` (most urgent first): it takes the first one's threshold and severity."""
    first = events[0]
    return NewEvent(
        threshold_id=first.threshold_id, threshold_name=first.threshold_name, series=DIGEST_SERIES, ds="",
        status=EventStatus.DIGEST.value, kind=EventKind.DIGEST.value, type=first.type, limit=first.limit,
        value=None, time=None, message=digest_message(events), severity=first.severity,
    )


def apply_budget(
    planned: Sequence[PlannedDelivery], events: Sequence[NewEvent], max_per_check: int | None
) -> tuple[list[PlannedDelivery], list[NewEvent]]:
    """Deliveries within the budget, and the digest events to record after `events` (indexes follow on).

    Each planned delivery is one target's; with no budget they are returned unchanged.
    """
    if max_per_check is None:
        return list(planned), []
    out: list[PlannedDelivery] = []
    digests: list[NewEvent] = []
    for d in planned:
        ordered = sorted(d.events, key=lambda i: urgency(events, i))
        out += [PlannedDelivery(str(uuid.uuid4()), d.action, d.params, (i,)) for i in ordered[:max_per_check]]
        rest = ordered[max_per_check:]
        if rest:
            digests.append(digest_event([events[i] for i in rest]))
            out.append(PlannedDelivery(str(uuid.uuid4()), d.action, d.params,
                                       (len(events) + len(digests) - 1, *rest)))
    return out, digests
