"""/silences: the silences and acknowledgements in force, and (for admins) forms to make and end them.

Forms post here with the app-wide CSRF check; the rules are rrdalarm.control's, as for the API.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from flask import Blueprint, Response, flash, redirect, render_template, request, url_for

from rrdalarm.check.lock import CheckBusy
from rrdalarm.common.errors import StoreError
from rrdalarm.common.quantities import format_duration
from rrdalarm.control import acks, silences
from rrdalarm.control.silences import ControlError
from rrdalarm.model.control import MaintenanceWindow, Matchers
from rrdalarm.model.definitions import Threshold
from rrdalarm.model.errors import ConfigError
from rrdalarm.model.states import Severity
from rrdalarm.report.render import fmt_time

from .auth import current_account, require_access, require_admin, service

bp = Blueprint("control", __name__, template_folder="templates")

EXTEND_BY = ("30min", "1h", "2h", "4h", "1d")


def _thresholds() -> list[Threshold]:
    return service().configured().thresholds


def _field(name: str) -> str | None:
    value = request.form.get(name, "").strip()
    return value or None


def _threshold_field() -> int | None:
    value = _field("threshold")
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        raise ControlError(f"threshold must be an id, not {value!r}") from None


def _author() -> str:
    account = current_account()
    return account.name if account is not None else "?"


def _back() -> Response:
    """Back to the page the form was on: Alarms now, or this one."""
    target = url_for("alarms.page") if request.form.get("back") == "alarms" else url_for("control.page")
    return redirect(target, 303)  # type: ignore[return-value]


def _scope() -> tuple[str | None, str | None]:
    """(series, ds) of the form, narrowed by its scope: this series, every DS of its file, or the whole threshold."""
    scope = request.form.get("scope", "series")
    if scope == "threshold":
        return None, None
    return _field("series"), None if scope == "file" else _field("ds")


@dataclass(frozen=True)
class WindowView:
    """A maintenance window as the page shows it: open now until when, or its next start."""

    window: MaintenanceWindow
    open_until: int | None
    next_start: int | None


def _windows(now: int) -> tuple[list[Threshold], list[WindowView]]:
    from rrdalarm.rules.maintenance import local_zone, next_occurrences, occurrence_end

    loaded = service().configured()
    tz = local_zone()
    views = []
    for w in loaded.windows:
        upcoming = next_occurrences(w, now + 1, tz, 1)
        views.append(WindowView(w, occurrence_end(w, now, tz), upcoming[0][0] if upcoming else None))
    return loaded.thresholds, views


def _covers(thresholds: Sequence[Threshold]) -> Callable[[Matchers], str]:
    """What matchers cover now, in words: by the newest check's rows, else the firing series of the states."""
    rows, _ = service().newest_rows()
    store = service().store

    def words(m: Matchers) -> str:
        if rows is None:
            return f"{silences.firing_matched(store, thresholds, m)} firing"
        got = silences.matched_in(rows, thresholds, m)
        return f"{got.series} series ({got.firing} firing)"

    return words


@bp.get("/silences")
@require_access
def page() -> str:
    now = int(time.time())
    show_all = request.args.get("all") == "1"
    store = service().store
    account = current_account()
    try:
        thresholds, windows = _windows(now)
        problem = None
    except ConfigError as exc:
        thresholds, windows, problem = [], [], str(exc)
    return render_template("silences.html", silences=silences.listed(store, now, show_all), phase=silences.phase,
                           acked=acks.acknowledged(store), names={t.id: t.name for t in thresholds},
                           windows=windows, covers=_covers(thresholds), problem=problem, show_all=show_all,
                           now=now, fmt_time=fmt_time, format_duration=format_duration,
                           admin=account is not None and account.role == "admin", extend_by=EXTEND_BY,
                           severities=[s.value for s in Severity], tz=time.strftime("%Z") or time.strftime("%z"))


@bp.post("/silences")
@require_admin
def add() -> Response:
    now = int(time.time())
    try:
        labels = silences.parse_labels(x for x in (request.form.get("labels") or "").split(",") if x.strip())
        series, ds = _scope()
        matchers = Matchers(_threshold_field(), series, ds, labels, _field("severity"))
        times = silences.silence_times(_field("start"), _field("end"), _field("for"), now)
        made = silences.add(service().store, _thresholds(), matchers, times, _field("comment") or "", _author(), now)
    except (ControlError, ConfigError, StoreError) as exc:
        flash(f"Silence not added: {exc}", "error")
        return _back()
    flash(f"{silences.describe(made)} added, until {fmt_time(made.ends_at)}.")
    return _back()


@bp.post("/silences/<int:ident>/expire")
@require_admin
def expire(ident: int) -> Response:
    try:
        gone = silences.expire(service().store, ident, _author(), int(time.time()))
    except ControlError as exc:
        flash(str(exc), "error")
        return _back()
    flash(f"Silence {gone.id} expired.")
    return _back()


@bp.post("/silences/<int:ident>/extend")
@require_admin
def extend(ident: int) -> Response:
    try:
        moved = silences.extend(service().store, ident, _field("for") or "", _author(), int(time.time()))
    except ControlError as exc:
        flash(str(exc), "error")
        return _back()
    flash(f"Silence {moved.id} now ends {fmt_time(moved.ends_at)}.")
    return _back()


@bp.post("/acks")
@require_admin
def ack() -> Response:
    svc = service()
    try:
        threshold = _threshold_field()
        if threshold is None:
            raise ControlError("give the threshold to acknowledge")
        done = acks.acknowledge(svc.store, svc.settings(), _thresholds(), threshold, _field("series"), _field("ds"),
                                _field("comment") or "", _author(), int(time.time()), wait=10.0)
    except (ControlError, ConfigError, StoreError) as exc:
        flash(f"Not acknowledged: {exc}", "error")
        return _back()
    except CheckBusy:
        flash("Not acknowledged: a check is running; try again in a moment.", "error")
        return _back()
    flash(f"Acknowledged {len(done.acknowledged)} series"
          + (f"; {len(done.already)} were acknowledged already." if done.already else "."))
    return _back()
