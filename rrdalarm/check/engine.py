"""One check: expand -> fetch -> evaluate -> state transitions -> events -> actions.

The engine holds no rules of its own beyond wiring: sources produce outcomes,
`evaluate.decide` turns them into states and events, the store records them
in one transaction, and only then do actions run. It returns a CheckResult;
printing and exit statuses belong to the faces (CLI, web).
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from rrdalarm.delivery.dispatch import ActionPlan, Target, plan_actions, plan_deliveries, told_of
from rrdalarm.delivery.outbox import deliver_pending
from rrdalarm.model.definitions import Settings, Threshold
from rrdalarm.model.errors import ConfigError
from rrdalarm.model.records import NewEvent, RunSummary, StateChange, StateView
from rrdalarm.model.results import CheckResult, Row
from rrdalarm.model.states import DeliveryStatus, EventKind, EventStatus, State, Status
from rrdalarm.plugins import Action, available_actions, source_plugins
from rrdalarm.report import messages
from rrdalarm.rules.evaluate import decide, transition
from rrdalarm.sources.base import Outcome, OutcomeKind, ProgressCallback, SeriesKey, Source, SourceReport
from rrdalarm.store import stats
from rrdalarm.store.database import Store

_ERROR_STATUS = {OutcomeKind.ERROR: Status.ERROR, OutcomeKind.NO_DATA: Status.NO_DATA}


@dataclass
class _Transitions:
    rows: list[Row] = field(default_factory=list)
    changes: list[StateChange] = field(default_factory=list)
    events: list[NewEvent] = field(default_factory=list)
    removed: list[SeriesKey] = field(default_factory=list)
    # Targets of closing events whose threshold is no longer configured, by index into `events`.
    fixed: dict[int, list[Target]] = field(default_factory=dict)
    firing: int = 0
    errors: int = 0


def apply_outcomes(
    outcomes: Sequence[Outcome],
    thresholds: Mapping[int, Threshold],
    states: Mapping[SeriesKey, StateView],
    now: int,
    plan: ActionPlan,
) -> _Transitions:
    """Outcomes and stored states in, report rows, state changes and events out (no I/O)."""
    out = _Transitions()
    for o in outcomes:
        t = thresholds[o.threshold]
        prev = states.get(o.key)
        if o.kind in _ERROR_STATUS:
            prev_state = prev.state if prev else State.OK
            out.errors += 1
            if prev_state is State.FIRING:
                out.firing += 1
            out.rows.append(
                Row(t.id, o.series, o.ds, _ERROR_STATUS[o.kind], o.value, o.time, t.type.value, t.value,
                    o.message, plan.label(t), prev_state)
            )
        elif o.kind is OutcomeKind.GONE:
            close_series(out, o.key, t.name, t.type.value, t.value, prev, o.message, plan.label(t))
        else:
            _evaluated(out, o, t, prev, now, plan)
    return out


def close_series(out: _Transitions, key: SeriesKey, name: str, type_: str, limit: float, prev: StateView | None,
                 why: str, label: str) -> bool:
    """A series no longer watched: one RESOLVED event saying why if it was firing, then no state at all.

    True when it recorded that event (the last of `out.events`).
    """
    if prev is None:
        return False
    out.removed.append(key)
    if prev.state is not State.FIRING:
        return False
    message = messages.closed(why)
    out.rows.append(Row(key[0], key[1], key[2], Status.OK, None, None, type_, limit, message, label, None))
    out.events.append(NewEvent(key[0], name, key[1], key[2], EventStatus.RESOLVED, EventKind.RESOLVED.value, type_,
                               limit, None, None, message))
    return True


def _message(event: EventKind | None, status: Status, o: Outcome, t: Threshold, prev: StateView | None,
             now: int) -> str:
    if event is EventKind.FIRED:
        assert o.value is not None  # a breach has its value
        return messages.crossing(o.value, t.type.value, t.value)
    if event is EventKind.REPEAT:
        assert o.value is not None
        since = prev.fired_at if prev and prev.fired_at is not None else now
        return messages.repeat(o.value, t.type.value, t.value, now - since)
    if event is EventKind.RESOLVED:
        assert o.value is not None  # resolved by a known point
        return messages.resolved(o.value, t.type.value, t.value)
    if status is Status.FIRING:
        wait = t.rearm - (now - (prev.last_sent_at or now)) if prev else 0
        return messages.held_back(t.type.value, t.value, wait)
    return o.message  # a row without an event of its own shows the source's note, if any


def _evaluated(out: _Transitions, o: Outcome, t: Threshold, prev: StateView | None, now: int,
               plan: ActionPlan) -> None:
    """One evaluated series: its row, and its state change and event when it has one."""
    prev_state = prev.state if prev else State.OK
    decision = decide(prev_state, o.kind is OutcomeKind.BREACH, prev.last_sent_at if prev else None, now, t.rearm)
    message = _message(decision.event, decision.status, o, t, prev, now)
    if decision.state is State.FIRING:
        out.firing += 1
    out.rows.append(
        Row(t.id, o.series, o.ds, decision.status, o.value, o.time, t.type.value, t.value, message,
            plan.label(t), decision.state)
    )
    if decision.event is None:
        return
    event = NewEvent(t.id, t.name, o.series, o.ds,
                     EventStatus.RESOLVED if decision.event is EventKind.RESOLVED else EventStatus.ALARM_FIRED,
                     decision.event.value, t.type.value, t.value, o.value, o.time, message)
    out.changes.append(transition(o.key, prev, decision.event, now, o.value, o.time, told_of(plan, event),
                                  origin_of(t)))
    out.events.append(event)


def origin_of(t: Threshold) -> str | None:
    """The real path of the thresholds file `t` came from."""
    return os.path.realpath(t.location.path) if t.location else None


def close_unwatched(
    store: Store, elsewhere: Mapping[SeriesKey, StateView], thresholds: Sequence[Threshold], checked: Path | None,
    plan: ActionPlan, plugins: Mapping[str, type[Action]], out: _Transitions,
) -> None:
    """Close the FIRING series of thresholds that are disabled or deleted.

    A threshold is deleted only when missing from the file it came from (`checked` is the
    file this check read): a check of another file (`--config`) leaves it alone. A
    disabled threshold's actions come from its config (into `plan`); a deleted one has
    none left, so its close goes to the targets its firing's deliveries went to.
    """
    configured = {t.id: t for t in thresholds}
    here = os.path.realpath(checked) if checked is not None else None
    for key, view in sorted(elsewhere.items()):
        t = configured.get(key[0])
        if t is None and None not in (view.origin, here) and view.origin != here:
            continue
        if t is not None:
            try:
                plan.by_threshold.update(plan_actions([t], plugins).by_threshold)
            except ConfigError:
                t = None  # its actions no longer validate: fall back on whom its firing reached
        if t is not None:
            close_series(out, key, t.name, t.type.value, t.value, view, "threshold disabled", plan.label(t))
            continue
        last, targets = store.told_of_firing(key, view.fired_at)
        name = last.threshold_name if last else f"threshold {key[0]}"
        why = "threshold disabled" if key[0] in configured else "threshold deleted"
        if close_series(out, key, name, last.type if last else "", last.limit if last else 0.0, view, why, ""):
            out.fixed[len(out.events) - 1] = targets


def _sort_key(row: Row) -> tuple[int, str, str]:
    return (row.threshold, row.file, row.ds)


def run_check(
    settings: Settings,
    thresholds: Sequence[Threshold],
    store: Store,
    *,
    at: int | None = None,
    dry_run: bool = False,
    want_ok: bool = True,
    progress: ProgressCallback | None = None,
    sources: Mapping[str, type[Source]] | None = None,
    deliver: bool = True,
) -> CheckResult:
    """Run one check, then (unless `deliver` is false) send what is due in the outbox.

    `settings.thresholds` names the file `thresholds` were read from. The caller holds the
    check lock; a caller that holds it passes `deliver=False` and calls `deliver_after_check`
    once it has let go, so that a slow receiver never holds up the next check.
    """
    clock_start = time.monotonic()
    now = int(time.time()) if at is None else int(at)
    active = [t for t in thresholds if t.enabled]
    by_id = {t.id: t for t in active}
    plugins = available_actions(settings.scripts_dir)
    plan = plan_actions(active, plugins)
    warnings = list(plan.warnings)
    states = store.states(by_id)
    firing = frozenset(k for k, v in states.items() if v.state is State.FIRING and k[0] in by_id)
    got = _collect(settings, active, firing, now, want_ok, progress, source_plugins() if sources is None else sources)
    files_checked, series_checked = got.files_checked, got.series_checked
    warnings.extend(got.warnings)

    tr = apply_outcomes(got.outcomes, by_id, states, now, plan)
    elsewhere = store.firing_elsewhere(by_id)
    close_unwatched(store, elsewhere, thresholds, settings.thresholds, plan, plugins, tr)
    tr.rows.sort(key=_sort_key)
    duration = time.monotonic() - clock_start
    alarms_fired = sum(1 for r in tr.rows if r.status is Status.ALARM_FIRED)
    result = CheckResult(
        started_at=now, duration_s=duration, files_checked=files_checked, series_checked=series_checked,
        alarms_fired=alarms_fired, rows=tr.rows, firing=tr.firing, errors=tr.errors, dry_run=dry_run,
        warnings=warnings,
    )
    if dry_run:
        return result

    summary = RunSummary(now, duration, files_checked, series_checked, alarms_fired, tr.firing, tr.errors)
    told = {k: v.notified for k, v in (states | elsewhere).items()}
    recorded = store.record_check(summary, tr.changes, tr.events, plan_deliveries(plan, tr.events, told, tr.fixed),
                                  tr.removed)
    for tid, why in recorded.unrecorded.items():
        # Its state is as before this check: the next check decides again (and acts, if still breaching).
        result.errors += 1
        result.warnings.append(f"threshold {tid}: this check's states and events could not be recorded: {why}")
    problem = stats.record_check(settings.data_dir, now, duration, alarms_fired)
    if problem:
        result.warnings.append(problem)
    if deliver:
        deliver_after_check(store, settings, result)
    return result


def _collect(settings: Settings, active: Sequence[Threshold], firing: frozenset[SeriesKey], now: int,
             want_ok: bool, progress: ProgressCallback | None, sources: Mapping[str, type[Source]]) -> SourceReport:
    """Every source's outcomes and counters for the active thresholds."""
    got = SourceReport()
    source_of = {t.id: t.source for t in active}
    for name in sorted(set(source_of.values())):
        report = sources[name](settings).check(
            [t for t in active if t.source == name], now,
            firing=frozenset(k for k in firing if source_of[k[0]] == name), want_ok=want_ok, progress=progress,
        )
        got.outcomes.extend(report.outcomes)
        got.warnings.extend(report.warnings)
        got.files_checked += report.files_checked
        got.series_checked += report.series_checked
    return got


def deliver_after_check(store: Store, settings: Settings, result: CheckResult) -> None:
    """Send what is due in the outbox (this check's deliveries and older ones); failures become warnings."""
    result.deliveries = deliver_pending(store, settings)
    result.warnings.extend(
        f"delivery {r.delivery_id} ({r.action}): {r.error}"
        + (" (will retry)" if r.status is DeliveryStatus.PENDING else " (gave up)")
        for r in result.deliveries if not r.ok
    )
