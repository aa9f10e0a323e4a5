"""One check: expand -> fetch -> evaluate -> state transitions -> events -> actions.

The engine holds no rules of its own beyond wiring: sources produce outcomes,
`evaluate.decide` turns them into states and events, the store records them
in one transaction, and only then do actions run. It returns a CheckResult;
printing and exit statuses belong to the faces (CLI, web).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from rrdalarm import stats
from rrdalarm.config import Settings, Threshold
from rrdalarm.delivery import AttemptResult, deliver_pending
from rrdalarm.dispatch import ActionPlan, plan_actions, plan_deliveries
from rrdalarm.evaluate import EventKind, State, Status, decide
from rrdalarm.plugins import available_actions, source_plugins
from rrdalarm.sources.base import Outcome, OutcomeKind, ProgressCallback, SeriesKey, Source
from rrdalarm.store import NewEvent, RunSummary, StateChange, StateView, Store


@dataclass(frozen=True, slots=True)
class Row:
    """One line of the report."""

    threshold: int
    file: str
    ds: str
    status: Status
    value: float | None
    time: int | None
    type: str
    limit: float
    message: str
    action: str
    state: State | None


@dataclass
class CheckResult:
    started_at: int
    duration_s: float
    files_checked: int
    series_checked: int
    alarms_fired: int
    rows: list[Row]
    firing: int
    errors: int
    dry_run: bool = False
    warnings: list[str] = field(default_factory=list)
    deliveries: list[AttemptResult] = field(default_factory=list)

    @property
    def exit_status(self) -> int:
        """0 nothing firing, 1 something firing, 3 nothing firing but something unreadable."""
        if self.firing:
            return 1
        if self.errors:
            return 3
        return 0


_ERROR_STATUS = {OutcomeKind.ERROR: Status.ERROR, OutcomeKind.NO_DATA: Status.NO_DATA}


@dataclass
class _Transitions:
    rows: list[Row] = field(default_factory=list)
    changes: list[StateChange] = field(default_factory=list)
    events: list[NewEvent] = field(default_factory=list)
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
        prev_state = prev.state if prev else State.OK
        label = plan.label(t)
        if o.kind in _ERROR_STATUS:
            out.errors += 1
            if prev_state is State.FIRING:
                out.firing += 1
            out.rows.append(
                Row(t.id, o.series, o.ds, _ERROR_STATUS[o.kind], o.value, o.time, t.type.value, t.value,
                    o.message, label, prev_state)
            )
            continue
        decision = decide(prev_state, o.kind is OutcomeKind.BREACH, prev.last_sent_at if prev else None,
                          now, t.rearm)
        message = ""
        if decision.event is EventKind.FIRED:
            message = f"{o.value:.6g} {t.type.value} {t.value:g}"
        elif decision.event is EventKind.REPEAT:
            since = prev.fired_at if prev and prev.fired_at is not None else now
            message = f"{o.value:.6g} {t.type.value} {t.value:g}, firing for {now - since} s"
        elif decision.event is EventKind.RESOLVED:
            message = f"resolved: {o.value:.6g} no longer {t.type.value} {t.value:g}"
        elif decision.status is Status.FIRING:
            wait = t.rearm - (now - (prev.last_sent_at or now)) if prev else 0
            message = f"still {t.type.value} {t.value:g}; re-arm in {max(0, wait)} s"
        if decision.state is State.FIRING:
            out.firing += 1
        out.rows.append(
            Row(t.id, o.series, o.ds, decision.status, o.value, o.time, t.type.value, t.value, message,
                label, decision.state)
        )
        if decision.event is None:
            continue
        if decision.event is EventKind.RESOLVED:
            assert prev is not None
            change = StateChange(o.key, State.OK, prev.active_at, prev.fired_at, now, prev.last_sent_at,
                                 o.value, o.time)
        elif decision.event is EventKind.FIRED:
            change = StateChange(o.key, State.FIRING, now, now, prev.resolved_at if prev else None, now,
                                 o.value, o.time)
        else:
            assert prev is not None
            change = StateChange(o.key, State.FIRING, prev.active_at, prev.fired_at, prev.resolved_at, now,
                                 o.value, o.time)
        out.changes.append(change)
        out.events.append(
            NewEvent(t.id, t.name, o.series, o.ds,
                     "RESOLVED" if decision.event is EventKind.RESOLVED else Status.ALARM_FIRED.value,
                     decision.event.value, t.type.value, t.value, o.value, o.time, message)
        )
    return out


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

    The caller holds the check lock.
    """
    clock_start = time.monotonic()
    now = int(time.time()) if at is None else int(at)
    active = [t for t in thresholds if t.enabled]
    by_id = {t.id: t for t in active}
    plan = plan_actions(active, available_actions(settings.scripts_dir))
    warnings = list(plan.warnings)
    states = store.states(by_id)
    firing = frozenset(k for k, v in states.items() if v.state is State.FIRING and k[0] in by_id)
    sources = source_plugins() if sources is None else sources

    outcomes: list[Outcome] = []
    files_checked = series_checked = 0
    for name in sorted({t.source for t in active}):
        mine = [t for t in active if t.source == name]
        report = sources[name](settings).check(
            mine, now, firing=frozenset(k for k in firing if by_id[k[0]].source == name),
            want_ok=want_ok, progress=progress,
        )
        outcomes.extend(report.outcomes)
        warnings.extend(report.warnings)
        files_checked += report.files_checked
        series_checked += report.series_checked

    tr = apply_outcomes(outcomes, by_id, states, now, plan)
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
    store.record_check(summary, tr.changes, tr.events, plan_deliveries(plan, tr.events))
    problem = stats.record_check(settings.data_dir, now, duration, alarms_fired)
    if problem:
        result.warnings.append(problem)
    if deliver:
        result.deliveries = deliver_pending(store, settings)
        result.warnings.extend(
            f"delivery {r.delivery_id} ({r.action}): {r.error}" + (" (will retry)" if r.status == "pending" else
                                                                    " (gave up)")
            for r in result.deliveries if not r.ok
        )
    return result
