"""/: "Alarms now", the series that are not OK, grouped by threshold, the most severe first.

A thin face over rrdalarm.report.alarms_now; acknowledging and silencing post to the Silences
page's forms (rrdalarm.control). With ?fragment=1 it answers only the part that refreshes itself.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from flask import Blueprint, render_template, request, url_for

from rrdalarm.check.engine import quieting_at
from rrdalarm.common.quantities import format_duration
from rrdalarm.model.definitions import Threshold, ThresholdsFile
from rrdalarm.model.errors import ConfigError
from rrdalarm.model.records import StoredState
from rrdalarm.model.results import Row
from rrdalarm.report.alarms_now import STATUS_ORDER, AlarmsNow, Wanted, alarms_now, shown
from rrdalarm.report.render import fmt_limit, fmt_time, fmt_value
from rrdalarm.rules.quieting import Cover, Quieting, glob_escape

from .auth import current_account, require_access, service
from .filters import FilterError, parse_choice, parse_int, parse_text
from .history import SEVERITIES

bp = Blueprint("alarms", __name__, template_folder="templates")

SERIES_PER_GROUP = 50  # listed per threshold; the count bar and the group's title count them all
SILENCE_FOR = ("30min", "1h", "2h", "4h", "8h", "1d", "7d")


def configured() -> tuple[ThresholdsFile, str | None]:
    """The thresholds file (thresholds and windows), or an empty one and why it cannot be read."""
    try:
        return service().configured(), None
    except ConfigError as exc:
        return ThresholdsFile([]), str(exc)


def newest_rows(every: bool = False) -> tuple[Sequence[Row] | None, int | None]:
    """The not-OK rows (`every`: all rows) of this process's last check when it is the newest recorded,
    and when checks last ran. The scheduler's checks keep no OK rows: with `every`, None for those."""
    svc = service()
    newest = svc.store.newest_run_at()
    held = svc.last  # one read: a check ending meanwhile replaces it whole
    last = held.result
    if last is not None and (newest is None or last.started_at >= newest):
        if not every:
            return held.troubled, last.started_at
        return (last.rows if held.complete else None), last.started_at
    return None, None if newest is None else int(newest)


def _since(epoch: int | None, now: int) -> str:
    if epoch is None:
        return ""
    return f"since {fmt_time(epoch)} ({format_duration(max(0, now - epoch))})"


def wanted(args: Mapping[str, str]) -> Wanted:
    """The page's filters from its query string; FilterError names a bad one."""
    return Wanted(parse_text(args.get("q"), "file or host"), parse_int(args.get("threshold"), "threshold"),
                  parse_choice(args.get("severity"), SEVERITIES, "severity"),
                  parse_choice(args.get("status"), STATUS_ORDER, "status"))


@dataclass(frozen=True)
class _Made:
    """The last view made, with what it was made from (compared by identity where that is what changes)."""

    states: tuple[StoredState, ...]
    rows: Sequence[Row] | None
    thresholds: Mapping[int, Threshold]
    wanted: Wanted
    covers: Sequence[Cover]
    view: AlarmsNow


_made: _Made | None = None


def _view_of(states: tuple[StoredState, ...], rows: Sequence[Row] | None, thresholds: Mapping[int, Threshold],
             narrowed: Wanted, quieting: Quieting) -> AlarmsNow:
    """The page's groups, made again only when the states, the check's rows, the thresholds, the filters
    or what quiets series changed: with thousands of firing series, making them is most of a request."""
    global _made
    kept = _made
    if (kept is not None and kept.states is states and kept.rows is rows and kept.wanted == narrowed
            and kept.covers == quieting.covers and kept.thresholds == thresholds):
        return kept.view
    view = shown(alarms_now(states, rows, thresholds, narrowed, quieting), SERIES_PER_GROUP)
    _made = _Made(states, rows, thresholds, narrowed, quieting.covers, view)
    return view


@bp.get("/")
@require_access
def page() -> tuple[str, int]:
    now = int(time.time())
    loaded, problem = configured()
    thresholds = {t.id: t for t in loaded.thresholds}
    store = service().store
    rows, checked_at = newest_rows()
    try:
        narrowed, status = wanted(request.args), 200
    except FilterError as exc:
        narrowed, status, problem = Wanted(), 400, str(exc)
    view = _view_of(store.troubled_states(), rows, thresholds, narrowed, quieting_at(store, loaded.windows, now))
    account = current_account()
    template = "alarms_fragment.html" if request.args.get("fragment") == "1" else "alarms.html"
    filters = {k: v for k, v in request.args.items() if k in ("q", "threshold", "severity", "status") and v}
    return render_template(
        template, view=view, problem=problem, checked_at=checked_at, now=now,
        refresh=max(1, round(service().settings().service.page_refresh)),
        filters=filters, thresholds=thresholds, severities=SEVERITIES, statuses=STATUS_ORDER,
        admin=account is not None and account.role == "admin", silence_for=SILENCE_FOR,
        fmt_time=fmt_time, fmt_value=fmt_value, fmt_limit=fmt_limit, since=_since, glob_escape=glob_escape,
        series_link=lambda tid, s, ds: url_for("history.series", threshold=tid, series=s, ds=ds)), status
