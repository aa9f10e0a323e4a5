"""Acknowledgements: someone has seen FIRING series, so their re-arm repeats stop until they resolve.

One acknowledgement marks each matching FIRING series not yet acknowledged, records one `ack`
event per series, and queues it for the actions whose `on` asks for `ack` and that were told
of the firing. It takes the check lock, so that no check is writing those states meanwhile.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rrdalarm.check.lock import check_lock
from rrdalarm.control.silences import ControlError, check_comment
from rrdalarm.delivery.dispatch import ActionPlan, carried, plan_actions, plan_deliveries
from rrdalarm.delivery.outbox import deliver_pending
from rrdalarm.model.control import Acknowledgement, Matchers
from rrdalarm.model.definitions import Settings, Threshold
from rrdalarm.model.records import NewEvent
from rrdalarm.model.results import AttemptResult
from rrdalarm.model.states import EventKind, EventStatus
from rrdalarm.plugins import available_actions
from rrdalarm.report import messages
from rrdalarm.rules.quieting import matches
from rrdalarm.store.control import FiringSeries, firing_series, record_acks
from rrdalarm.store.database import Store

SeriesKey = tuple[int, str, str]


@dataclass
class AckOutcome:
    """What an acknowledgement did: the series it marked, those acknowledged before, the deliveries sent."""

    acknowledged: list[SeriesKey]
    already: list[tuple[SeriesKey, Acknowledgement]]
    deliveries: list[AttemptResult]

    def lines(self) -> list[str]:
        out = [f"acknowledged: threshold {k[0]} {_name(k)}" for k in self.acknowledged]
        out += [f"already acknowledged by {a.by}: threshold {k[0]} {_name(k)}" for k, a in self.already]
        out += [f"delivery {r.delivery_id} ({r.action}): {r.error}" for r in self.deliveries if not r.ok]
        return out


def _name(key: SeriesKey) -> str:
    return f"{key[1]}:{key[2]}" if key[2] else key[1]


def _selected(store: Store, threshold: int, series: str | None, ds: str | None) -> list[FiringSeries]:
    wanted = Matchers(threshold, series, ds)
    return [f for f in firing_series(store, threshold) if matches(wanted, f.threshold, f.series, f.ds, {}, "")]


def ack_events(t: Threshold | None, threshold: int, chosen: Sequence[FiringSeries],
               ack: Acknowledgement) -> list[NewEvent]:
    """One `ack` event per series; a threshold gone from the file is named by its id."""
    name = t.name if t else f"threshold {threshold}"
    kind, limit = (t.type.value, t.value) if t else ("", 0.0)
    extra = carried(t) if t else ("warning", "", None)
    message = messages.ack_event(ack.by, ack.comment)
    return [NewEvent(f.threshold, name, f.series, f.ds, EventStatus.ACKNOWLEDGED.value, EventKind.ACK.value,
                     kind, limit, None, None, message, *extra) for f in chosen]


def acknowledge(store: Store, settings: Settings, thresholds: Sequence[Threshold], threshold: int,
                series: str | None, ds: str | None, comment: str, by: str, now: int, *,
                wait: float = 30.0) -> AckOutcome:
    """Acknowledge the matching FIRING series of `threshold`; ControlError when none fires."""
    text = check_comment(comment)
    t = next((x for x in thresholds if x.id == threshold), None)
    ack = Acknowledgement(by, now, text)
    with check_lock(settings.data_dir, wait, store):
        chosen = _selected(store, threshold, series, ds)
        if not chosen:
            what = Matchers(threshold, series, ds).describe()
            raise ControlError(f"no FIRING series matches {what}: nothing to acknowledge")
        fresh = [f for f in chosen if f.ack is None]
        already = [((f.threshold, f.series, f.ds), f.ack) for f in chosen if f.ack is not None]
        events = ack_events(t, threshold, fresh, ack)
        plan = plan_actions([t], available_actions(settings.scripts_dir)) if t and t.enabled else ActionPlan()
        told = {(f.threshold, f.series, f.ds): f.notified for f in fresh}
        deliveries = plan_deliveries(plan, events, told)
        audit = f"acknowledged {len(fresh)} series ({Matchers(threshold, series, ds).describe()}): {text}"
        done = record_acks(store, [(f.threshold, f.series, f.ds) for f in fresh], ack, events, deliveries,
                           {threshold: (t.name if t else "", audit)})
    sent = deliver_pending(store, settings, only=[d.id for d in deliveries]) if deliveries and done else []
    return AckOutcome(done, already, sent)


def acknowledged(store: Store) -> list[dict[str, object]]:
    """Every acknowledged FIRING series, as the API and `ack list` show them."""
    return [{"threshold": f.threshold, "series": f.series, "ds": f.ds, "fired_at": f.fired_at, **f.ack.as_dict()}
            for f in firing_series(store) if f.ack is not None]
