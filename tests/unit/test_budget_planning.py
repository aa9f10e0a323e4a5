"""The delivery budget as a pure function: per target at most max_per_check deliveries plus one digest."""

from __future__ import annotations

from collections import Counter

from hypothesis import given
from hypothesis import strategies as st

from rrdalarm.delivery.budget import apply_budget
from rrdalarm.model.digest import digest_message
from rrdalarm.model.records import NewEvent, PlannedDelivery

KINDS = {"fired": "ALARM FIRED", "repeat": "ALARM FIRED", "resolved": "RESOLVED", "no_data": "NO DATA"}


def ev(tid: int, series: str, kind: str = "fired", severity: str = "warning") -> NewEvent:
    return NewEvent(tid, f"t{tid}", series, "x", KINDS[kind], kind, "above", 1.0, 2.0, 0, "m", severity)


events_st = st.lists(
    st.builds(ev, st.integers(1, 4), st.sampled_from(["a.rrd", "b.rrd", "c/d.rrd"]), st.sampled_from(list(KINDS)),
              st.sampled_from(["critical", "warning", "info"])),
    max_size=40,
)


@given(events=events_st, budget=st.none() | st.integers(1, 8), targets=st.integers(1, 3), data=st.data())
def test_within_budget_and_no_event_lost(events: list[NewEvent], budget: int | None, targets: int,
                                         data: st.DataObject) -> None:
    planned = [
        PlannedDelivery(f"p{t}", "log", {"file": f"{t}.log"},
                        tuple(data.draw(st.lists(st.sampled_from(range(len(events))), unique=True)) if events else ()))
        for t in range(targets)
    ]
    planned = [p for p in planned if p.events]
    out, digests = apply_budget(planned, events, budget)
    if budget is None:
        assert (out, digests) == (planned, [])
        return
    everything = [*events, *digests]
    for p in planned:
        mine = [d for d in out if d.params == p.params]
        singles = [d for d in mine if len(d.events) == 1 and d.events[0] < len(events)]
        digest = [d for d in mine if d not in singles]
        assert len(singles) <= budget and len(digest) <= 1
        assert len(singles) == min(budget, len(p.events)) and bool(digest) == (len(p.events) > budget)
        carried = Counter(i for d in mine for i in d.events if i < len(events))
        assert carried == Counter(p.events)  # each of its events exactly once, alone or in the digest
        if digest:
            [head, *rest] = digest[0].events
            assert everything[head].kind == "digest" and everything[head].message.startswith(f"{len(rest)} more")
    assert len({d.id for d in out}) == len(out)


def test_most_severe_first_then_news_before_repeats_and_recoveries() -> None:
    events = [ev(1, "a.rrd", "resolved"), ev(2, "b.rrd", "repeat"), ev(3, "c.rrd", "fired", "info"),
              ev(4, "d.rrd", "resolved", "critical"), ev(1, "e.rrd", "fired")]
    out, [digest] = apply_budget([PlannedDelivery("p", "email", {"to": ["a@x.org"]}, (0, 1, 2, 3, 4))], events, 3)
    assert [d.events for d in out[:3]] == [(3,), (4,), (1,)]
    assert out[3].events == (5, 0, 2)
    assert digest.message == "2 more alarms from thresholds 1 (t1), 3 (t3): 1 RESOLVED, 1 ALARM FIRED"
    assert (digest.status, digest.series, digest.threshold_id, digest.severity) == ("DIGEST", "(digest)", 1, "warning")


def test_the_message_names_at_most_ten_thresholds() -> None:
    text = digest_message([ev(t, "a.rrd") for t in range(1, 13)])
    assert text.startswith("12 more alarms from thresholds 1 (t1), 2 (t2)") and "10 (t10) and 2 more:" in text
