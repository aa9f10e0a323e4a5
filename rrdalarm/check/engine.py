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
from dataclasses import dataclass, field, replace
from pathlib import Path

from rrdalarm.common.errors import StoreError
from rrdalarm.config.thresholds import check_trees
from rrdalarm.delivery.budget import apply_budget
from rrdalarm.delivery.dispatch import ActionPlan, Target, carried, plan_actions, plan_deliveries, told_of
from rrdalarm.delivery.outbox import deliver_pending
from rrdalarm.model.control import Acknowledgement, MaintenanceWindow, Quiet
from rrdalarm.model.definitions import LOCAL_TREE, Settings, Threshold
from rrdalarm.model.errors import ConfigError
from rrdalarm.model.records import NewEvent, RunSummary, StateChange, StateView, WorkerSeen
from rrdalarm.model.results import CheckResult, Row
from rrdalarm.model.states import DeliveryStatus, EventKind, EventStatus, State, Status
from rrdalarm.plugins import Action, available_actions, source_plugins
from rrdalarm.report import messages
from rrdalarm.report.render import fmt_time
from rrdalarm.rules.evaluate import transition
from rrdalarm.rules.lifecycle import Memory, Policy, Seen, Step, step
from rrdalarm.rules.quieting import Cover, Quieting
from rrdalarm.sources.base import Outcome, OutcomeKind, ProgressCallback, SeriesKey, Source, SourceReport
from rrdalarm.store import stats
from rrdalarm.store.control import active_silences
from rrdalarm.store.database import Store


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
    stale: dict[int, int] = field(default_factory=dict)
    """STALE series per threshold in this check."""
    repeats: int = 0
    origins: dict[int, str | None] = field(default_factory=dict)

    def origin(self, t: Threshold) -> str | None:
        """origin_of(t), resolved once per threshold and check: every changed state carries it, and a
        realpath per state (two per firing series) was a quarter of the coordinator's cost per firing series."""
        if t.id not in self.origins:
            self.origins[t.id] = origin_of(t)
        return self.origins[t.id]


def apply_outcomes(
    outcomes: Sequence[Outcome],
    thresholds: Mapping[int, Threshold],
    states: Mapping[SeriesKey, StateView],
    now: int,
    plan: ActionPlan,
    quieting: Quieting | None = None,
) -> _Transitions:
    """Outcomes and stored states in, report rows, state changes and events out (no I/O)."""
    out = _Transitions()
    quieting = quieting or Quieting()
    for o in outcomes:
        t = thresholds[o.threshold]
        prev = states.get(o.key)
        quiet = quiet_of(quieting, t, o.series, o.ds)
        if o.kind is OutcomeKind.ERROR:
            _unchanged(out, o, t, prev, plan, Status.ERROR, o.message, quiet)
        elif o.kind is OutcomeKind.STALE:
            _stale(out, o, t, prev, now, plan, quiet)
        elif o.kind is OutcomeKind.GONE:
            close_series(out, o.key, t.name, t.type.value, t.value, prev, o.message, plan.label(t),
                         _refs(quiet))
        else:
            _evaluated(out, o, t, prev, now, plan, quiet)
    return out


def quiet_of(quieting: Quieting, t: Threshold, series: str, ds: str) -> Quiet | None:
    """What silences or maintenance windows quiet this series of `t` now."""
    if not quieting:
        return None
    return quieting.of(t.id, series, ds, t.tuning.labels, t.tuning.severity.value)


def _refs(quiet: Quiet | None) -> str | None:
    """How an event records what silenced it."""
    return ",".join(quiet.refs) if quiet else None


def _unchanged(out: _Transitions, o: Outcome, t: Threshold, prev: StateView | None, plan: ActionPlan,
               status: Status, message: str, quiet: Quiet | None) -> None:
    """A row that changes nothing of the series' state (it stays FIRING if it was)."""
    prev_state = prev.state if prev else State.OK
    out.errors += 1
    if prev_state is State.FIRING:
        out.firing += 1
    out.rows.append(_row(t, o, status, o.value, message, plan, prev_state, quiet, prev.ack if prev else None))


def _stale(out: _Transitions, o: Outcome, t: Threshold, prev: StateView | None, now: int,
           plan: ActionPlan, quiet: Quiet | None) -> None:
    """Not evaluated; state kept; the threshold's `stale` event is made once per check (stale_events)."""
    since = f"{o.message} {fmt_time(o.time)}" if o.time is not None else "never updated"
    _unchanged(out, o, t, prev, plan, Status.STALE, since, quiet)
    if prev is None or prev.stale_since is None:
        out.changes.append(_change_of(o.key, prev or _NO_STATE, out.origin(t), stale_since=now))
    out.stale.setdefault(t.id, 0)
    out.stale[t.id] += 1


_NO_STATE = StateView(State.OK, None, None, None, None)
"""A series with no stored state yet, as the state it starts from."""


def _row(t: Threshold, o: Outcome, status: Status, value: float | None, message: str, plan: ActionPlan,
         state: State | None, quiet: Quiet | None = None, ack: Acknowledgement | None = None) -> Row:
    return Row(t.id, o.series, o.ds, status, value, o.time, t.type.value, t.value, message, plan.label(t), state,
               t.tuning.severity.value, t.tuning.unit, quiet.refs if quiet else (), ack)


def close_series(out: _Transitions, key: SeriesKey, name: str, type_: str, limit: float, prev: StateView | None,
                 why: str, label: str, silenced: str | None = None) -> bool:
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
                               limit, None, None, message, silenced=silenced))
    return True


def _message(done: Step, o: Outcome, t: Threshold, prev: StateView | None, now: int) -> str:
    unit, kind = t.tuning.unit, t.type.value
    event = done.event
    if done.why == "flapping":
        return messages.flapping(len(done.memory.changes), t.tuning.flap_window)
    if done.why == "settled":
        return messages.settled(done.memory.state is State.FIRING, t.tuning.flap_window)
    if event is EventKind.NO_DATA or done.status is Status.NO_DATA:
        return messages.no_data_alarm() if done.memory.reason else o.message
    if done.why == "no data" and event is EventKind.RESOLVED:
        return messages.no_data_resolved()
    if done.why == "data back":
        return messages.data_back(o.value, unit)
    if event is EventKind.FIRED:
        assert o.value is not None  # a breach has its value
        return messages.crossing(o.value, kind, t.value, unit)
    if event is EventKind.REPEAT:
        assert o.value is not None
        since = prev.fired_at if prev and prev.fired_at is not None else now
        return messages.repeat(o.value, kind, t.value, now - since, unit)
    if event is EventKind.RESOLVED:
        assert o.value is not None  # resolved by a known point
        return messages.resolved(o.value, kind, t.value, unit, o.count)
    return _held_message(done, o, t, prev, now)


def _held_message(done: Step, o: Outcome, t: Threshold, prev: StateView | None, now: int) -> str:
    unit, kind = t.tuning.unit, t.type.value
    if done.why == "clear level" and o.value is not None and t.tuning.clear_value is not None:
        return messages.holding(o.value, kind, t.tuning.clear_value, unit)
    if done.why == "keep firing" and done.memory.clear_since is not None:
        return messages.keep_firing(now - done.memory.clear_since, t.tuning.keep_firing_for)
    if done.status is Status.FIRING:
        wait = t.rearm - (now - (prev.last_sent_at or now)) if prev else 0
        return messages.held_back(kind, t.value, wait, unit)
    return o.message  # a row without an event of its own shows the source's note, if any


def policy_of(t: Threshold) -> Policy:
    tu = t.tuning
    return Policy(t.rearm, tu.keep_firing_for, tu.no_data, tu.flap_changes, tu.flap_window)


def memory_of(prev: StateView | None) -> Memory | None:
    if prev is None:
        return None
    return Memory(prev.state, prev.last_sent_at, prev.clear_since, prev.changes, prev.flapping_since, prev.reason)


def _evaluated(out: _Transitions, o: Outcome, t: Threshold, prev: StateView | None, now: int,
               plan: ActionPlan, quiet: Quiet | None) -> None:
    """One evaluated series: its row, and its state change and event when it has one."""
    seen = Seen(breach=o.kind is OutcomeKind.BREACH, holding=o.holding, no_data=o.kind is OutcomeKind.NO_DATA)
    done = _held_by_ack(step(memory_of(prev), seen, now, policy_of(t)), prev)
    message = _message(done, o, t, prev, now)
    done, message = _unsilenced(done, message, o, t, prev, quiet, now)
    ack = ack_after(prev, done)
    if ack is not None and done.event is None:
        message = messages.acknowledged(_still(o, t, message), ack.by, ack.comment)
    if done.memory.state is State.FIRING:
        out.firing += 1
    if done.status is Status.NO_DATA and not done.memory.reason:
        out.errors += 1
    out.rows.append(_row(t, o, done.status, o.value, message, plan, done.memory.state, quiet, ack))
    event = done.event
    reminder = done.why == _UNSILENCED
    out.repeats += event is EventKind.REPEAT and not reminder
    if event is EventKind.REPEAT and not reminder and not plan.wants(t.id, EventKind.REPEAT):
        event = None  # a repeat no action hears of is not stored: the history keeps first firings
    new = _new_event(t, o, EventKind.FIRED if reminder else event, message, _refs(quiet)) if event else None
    told = told_of(plan, new) if new is not None and new.silenced is None else frozenset()
    origin = out.origin(t)
    change = _state_after(o.key, prev, done, event, now, o, told, origin)
    change = _with_control(change, o.key, prev, done.memory.state, quiet, ack, now, origin)
    if change is not None:
        out.changes.append(change)
    if new is not None:
        out.events.append(new)


_UNSILENCED = "unsilenced"
"""`Step.why` of the one notification of a series still firing when its silence ended."""


def _held_by_ack(done: Step, prev: StateView | None) -> Step:
    """An acknowledged firing makes no re-arm repeats: the row stays FIRING and nothing counts as sent."""
    if prev is None or prev.ack is None or done.event is not EventKind.REPEAT:
        return done
    return replace(done, event=None, status=Status.FIRING, why="acknowledged",
                   memory=replace(done.memory, last_sent_at=prev.last_sent_at))


def _unsilenced(done: Step, message: str, o: Outcome, t: Threshold, prev: StateView | None, quiet: Quiet | None,
                now: int) -> tuple[Step, str]:
    """A series still firing when the silence over it ended is told of once, as a send (re-arm starts over)."""
    if quiet is not None or prev is None or prev.silenced_since is None:
        return done, message
    if done.memory.state is not State.FIRING or done.event not in (None, EventKind.REPEAT):
        return done, message
    until = min(prev.silenced_until or now, now)
    text = messages.unsilenced(_still(o, t, message), fmt_time(prev.silenced_since), fmt_time(until))
    return replace(done, event=EventKind.REPEAT, status=Status.ALARM_FIRED, why=_UNSILENCED,
                   memory=replace(done.memory, last_sent_at=now)), text


def _still(o: Outcome, t: Threshold, message: str) -> str:
    """A firing series' crossing as a new alarm would word it (its own message when it has no value)."""
    if o.value is None or o.kind is not OutcomeKind.BREACH:
        return message
    return messages.crossing(o.value, t.type.value, t.value, t.tuning.unit)


def ack_after(prev: StateView | None, done: Step) -> Acknowledgement | None:
    """An acknowledgement lasts as long as the firing it acknowledged."""
    if prev is None or prev.ack is None or done.memory.state is not State.FIRING:
        return None
    return None if done.event in (EventKind.FIRED, EventKind.NO_DATA) else prev.ack


def _with_control(change: StateChange | None, key: SeriesKey, prev: StateView | None, state: State,
                  quiet: Quiet | None, ack: Acknowledgement | None, now: int,
                  origin: str | None) -> StateChange | None:
    """The state with its silence and acknowledgement marks; a firing remembers since when it is silenced."""
    silenced = quiet is not None and state is State.FIRING
    since = ((prev.silenced_since if prev else None) or now) if silenced else None
    until = quiet.until if silenced and quiet is not None else None
    if change is None:
        if prev is None or (prev.silenced_since, prev.silenced_until, prev.ack) == (since, until, ack):
            return None
        change = _change_of(key, prev, origin)
    return replace(change, silenced_since=since, silenced_until=until, ack=ack)


_EVENT_STATUS = {EventKind.RESOLVED: EventStatus.RESOLVED, EventKind.NO_DATA: EventStatus.NO_DATA,
                 EventKind.FLAPPING: EventStatus.FLAPPING, EventKind.STALE: EventStatus.STALE}


def _new_event(t: Threshold, o: Outcome, event: EventKind, message: str, silenced: str | None) -> NewEvent:
    return NewEvent(t.id, t.name, o.series, o.ds, _EVENT_STATUS.get(event, EventStatus.ALARM_FIRED), event.value,
                    t.type.value, t.value, o.value, o.time, message, *carried(t), silenced=silenced)


def _state_after(key: SeriesKey, prev: StateView | None, done: Step, event: EventKind | None, now: int,
                 o: Outcome, told: frozenset[str], origin: str | None) -> StateChange | None:
    """The state to store, or None when nothing of it changed."""
    m = done.memory
    if event in (EventKind.FIRED, EventKind.NO_DATA, EventKind.REPEAT, EventKind.RESOLVED):
        base = transition(key, prev, EventKind.FIRED if event is EventKind.NO_DATA else event, now, o.value,
                          o.time, told, origin)
    elif prev is None:
        return None if m == Memory() else _change_of(key, _NO_STATE, origin, memory=m)
    elif memory_of(prev) == m and prev.stale_since is None:
        return None
    else:
        base = _change_of(key, prev, origin, memory=m, value=o.value, time=o.time)
    return replace(base, state=m.state, last_sent_at=m.last_sent_at, clear_since=m.clear_since, changes=m.changes,
                   flapping_since=m.flapping_since, stale_since=None, reason=m.reason)


def _change_of(key: SeriesKey, prev: StateView, origin: str | None, *, memory: Memory | None = None,
               value: float | None = None, time: int | None = None, stale_since: int | None = None) -> StateChange:
    """The stored state as it was, with a new memory or a new stale mark."""
    m = memory or memory_of(prev) or Memory()
    return StateChange(key, m.state, prev.active_at, prev.fired_at, prev.resolved_at, m.last_sent_at, value, time,
                       prev.notified, origin, m.clear_since, m.changes, m.flapping_since,
                       stale_since if stale_since is not None else prev.stale_since, m.reason,
                       prev.silenced_since, prev.silenced_until, prev.ack)


def stale_events(out: _Transitions, active: Sequence[Threshold], states: Mapping[SeriesKey, StateView],
                 watched: Mapping[int, int], sources: Mapping[str, type[Source]], plan: ActionPlan,
                 quieting: Quieting | None = None) -> None:
    """One `stale` event per threshold when its files start going stale, one when none is left."""
    was = {k[0] for k, v in states.items() if v.stale_since is not None}
    for t in active:
        if not t.tuning.stale_after:
            continue
        count = out.stale.get(t.id, 0)
        if bool(count) == (t.id in was):
            continue
        source = sources[t.source]
        series = source.describe(t)
        total = max(count, watched.get(t.id, count))
        noun = ("file", "files") if source.rrd_files else ("series", "series")
        message = (messages.stale(count, total, t.tuning.stale_after, noun) if count
                   else messages.fresh(t.tuning.stale_after, noun[0]))
        status = EventStatus.STALE if count else EventStatus.RESOLVED
        quiet = quiet_of(quieting or Quieting(), t, series, "")
        out.events.append(NewEvent(t.id, t.name, series, "", status, EventKind.STALE.value, t.type.value, t.value,
                                   None, None, message, *carried(t), silenced=_refs(quiet)))
        out.rows.append(Row(t.id, series, "", Status.STALE if count else Status.OK, None, None, t.type.value,
                            t.value, message, plan.label(t), None, t.tuning.severity.value, t.tuning.unit,
                            quiet.refs if quiet else ()))


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


def must_report(states: Mapping[SeriesKey, StateView], active: Mapping[int, Threshold]) -> frozenset[SeriesKey]:
    """Series the sources must report on even when OK rows are not wanted (--quiet): firing ones, and
    ones marked stale or flapping, whose end is an event of its own."""
    return frozenset(k for k, v in states.items() if k[0] in active and (
        v.state is State.FIRING or v.stale_since is not None or v.flapping_since is not None))


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
    windows: Sequence[MaintenanceWindow] = (),
) -> CheckResult:
    """Run one check, then (unless `deliver` is false) send what is due in the outbox.

    `settings.thresholds` names the file `thresholds` were read from. The caller holds the
    check lock; a caller that holds it passes `deliver=False` and calls `deliver_after_check`
    once it has let go, so that a slow receiver never holds up the next check. `windows` are the
    maintenance windows of that file.
    """
    clock_start = time.monotonic()
    now = int(time.time()) if at is None else int(at)
    behind = None if dry_run else clock_behind(store, now, replay=at is not None)
    active = [t for t in thresholds if t.enabled]
    check_trees(active, settings)
    by_id = {t.id: t for t in active}
    plugins = available_actions(settings.scripts_dir)
    plan = plan_actions(active, plugins)
    warnings = list(plan.warnings) + ([behind] if behind else [])
    states = store.states(by_id)
    firing = must_report(states, by_id)
    srcs = source_plugins() if sources is None else sources
    got, seen = _collect(settings, active, firing, now, want_ok, progress, srcs)
    files_checked, series_checked = got.files_checked, got.series_checked
    warnings.extend(got.warnings)

    quieting = quieting_at(store, windows, now)
    tr = apply_outcomes(got.outcomes, by_id, states, now, plan, quieting)
    stale_events(tr, active, states, got.watched, srcs, plan, quieting)
    elsewhere = store.firing_elsewhere(by_id)
    close_unwatched(store, elsewhere, thresholds, settings.thresholds, plan, plugins, tr)
    tr.rows.sort(key=_sort_key)
    duration = time.monotonic() - clock_start
    alarms_fired = sum(1 for r in tr.rows if r.status is Status.ALARM_FIRED)
    result = CheckResult(
        started_at=now, duration_s=duration, files_checked=files_checked, series_checked=series_checked,
        alarms_fired=alarms_fired, rows=tr.rows, firing=tr.firing, errors=tr.errors, dry_run=dry_run,
        warnings=warnings, repeats=tr.repeats,
    )
    if dry_run:
        return result

    _record(store, settings, result, tr, plan, {k: v.notified for k, v in (states | elsewhere).items()})
    if seen:
        _record_workers(store, seen, result)
    if deliver:
        deliver_after_check(store, settings, result)
    return result


def _when(epoch: int) -> str:
    return f"{epoch}, {fmt_time(epoch)}"


def clock_behind(store: Store, now: int, *, replay: bool) -> str | None:
    """A recorded check dated before the newest recorded one: refused for `--at`, else a warning.

    Recorded history only moves forward when an operator picks the date: a replay (`--at`) before
    the newest check would record resolutions before their firings, so it is a ConfigError (a
    dry run may look at any time). A clock that is behind (stepped back, or a check was replayed
    ahead of it) is trusted all the same, so that alarms keep coming: the check is recorded at
    the clock's time, with this warning naming both times.
    """
    newest = store.newest_run_at()
    if newest is None or now >= newest:
        return None
    if replay:
        raise ConfigError(None, f"--at {_when(now)} is earlier than the newest recorded check ({_when(int(newest))}): "
                                "recorded history only moves forward; add --dry-run to look at an earlier time")
    return (f"the clock ({_when(now)}) is behind the newest recorded check ({_when(int(newest))}): this check is "
            "recorded at the clock's time anyway; check the system clock")


def quieting_at(store: Store, windows: Sequence[MaintenanceWindow], now: int) -> Quieting:
    """The silences active at `now` (the check's clock) and the maintenance windows open then."""
    covers = [Cover(s.ref, s.matchers, s.ends_at) for s in active_silences(store, now)]
    if windows:
        from rrdalarm.rules.maintenance import local_zone, open_covers

        covers += open_covers(windows, now, local_zone())
    return Quieting(tuple(covers))


def _record(store: Store, settings: Settings, result: CheckResult, tr: _Transitions, plan: ActionPlan,
            told: Mapping[SeriesKey, frozenset[str] | None]) -> None:
    """Write the check's run, states, events and deliveries, and its statistics; problems become warnings."""
    summary = RunSummary(result.started_at, result.duration_s, result.files_checked, result.series_checked,
                         result.alarms_fired, tr.firing, tr.errors)
    deliveries, digests = apply_budget(plan_deliveries(plan, tr.events, told, tr.fixed), tr.events,
                                       settings.delivery.max_per_check)
    recorded = store.record_check(summary, tr.changes, [*tr.events, *digests], deliveries, tr.removed)
    for tid, why in recorded.unrecorded.items():
        # Its state is as before this check: the next check decides again (and acts, if still breaching).
        result.errors += 1
        result.warnings.append(f"threshold {tid}: this check's states and events could not be recorded: {why}")
    problem = stats.record_check(settings.data_dir, result.started_at, result.duration_s, result.alarms_fired)
    if problem:
        result.warnings.append(problem)


def _collect(settings: Settings, active: Sequence[Threshold], firing: frozenset[SeriesKey], now: int,
             want_ok: bool, progress: ProgressCallback | None,
             sources: Mapping[str, type[Source]]) -> tuple[SourceReport, list[WorkerSeen]]:
    """Every source's outcomes and counters for the active thresholds, and the trees' workers seen.

    Thresholds of this machine's tree are checked here; those of other trees on their workers
    (rrdalarm.cluster, imported only then), their outcomes merged as one more source's.
    """
    got = SourceReport()
    local = [t for t in active if t.tree == LOCAL_TREE]
    source_of = {t.id: t.source for t in local}
    for name in sorted(set(source_of.values())):
        got.add(sources[name](settings).check(
            [t for t in local if t.source == name], now,
            firing=frozenset(k for k in firing if source_of.get(k[0]) == name), want_ok=want_ok, progress=progress,
        ))
    remote = [t for t in active if t.tree != LOCAL_TREE]
    if not remote:
        return got, []
    try:
        from rrdalarm.cluster.fanout import collect_trees
    except ImportError:
        raise ConfigError(settings.path, "thresholds of other trees need Celery: pip install 'rrdalarm[cluster]'",
                          field="tree") from None

    ids = {t.id for t in remote}
    trees = collect_trees(settings, remote, frozenset(k for k in firing if k[0] in ids), now, want_ok, sources)
    got.add(trees.report)
    return got, trees.seen


def _record_workers(store: Store, seen: Sequence[WorkerSeen], result: CheckResult) -> None:
    """The trees' workers for the console; a failure to write them costs the check nothing but a warning."""
    from rrdalarm.store.workers import record_workers

    try:
        record_workers(store, seen)
    except StoreError as exc:
        result.warnings.append(f"the trees' workers could not be recorded: {exc}")


def deliver_after_check(store: Store, settings: Settings, result: CheckResult) -> None:
    """Send what is due in the outbox (this check's deliveries and older ones); failures become warnings."""
    result.deliveries = deliver_pending(store, settings)
    result.warnings.extend(
        f"delivery {r.delivery_id} ({r.action}): {r.error}"
        + (" (will retry)" if r.status is DeliveryStatus.PENDING else " (gave up)")
        for r in result.deliveries if not r.ok
    )
