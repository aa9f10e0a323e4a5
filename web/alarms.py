"""/: "Alarms now", the series that are not OK, grouped by threshold, the most severe first.

A thin face over CheckService.alarms_now (rrdalarm.service.alarms_view); acknowledging and silencing
post to the Silences page's forms (rrdalarm.control). With ?fragment=1 it answers only the part that
refreshes itself.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from urllib.parse import urlencode

from flask import Blueprint, render_template, request, url_for
from flask_wtf.csrf import generate_csrf as csrf_token
from markupsafe import Markup

from rrdalarm.common.quantities import format_duration
from rrdalarm.report.alarms_now import STATUS_ORDER, AlarmsNow, Wanted
from rrdalarm.report.render import fmt_limit, fmt_time, fmt_value
from rrdalarm.rules.quieting import glob_escape
from rrdalarm.service.service import AlarmsPage

from .auth import current_account, require_access, service
from .filters import FilterError, parse_choice, parse_int, parse_text
from .history import SEVERITIES

bp = Blueprint("alarms", __name__, template_folder="templates")

SILENCE_FOR = ("30min", "1h", "2h", "4h", "8h", "1d", "7d")


def _since(epoch: int | None, now: int) -> str:
    if epoch is None:
        return ""
    return f"since {fmt_time(epoch)} ({format_duration(max(0, now - epoch))})"


def wanted(args: Mapping[str, str]) -> Wanted:
    """The page's filters from its query string; FilterError names a bad one."""
    return Wanted(parse_text(args.get("q"), "file or host"), parse_int(args.get("threshold"), "threshold"),
                  parse_choice(args.get("severity"), SEVERITIES, "severity"),
                  parse_choice(args.get("status"), STATUS_ORDER, "status"))


# The list is rendered again at most this often per role, filters and check: the ages in it
# ("since 12:01 (3 min 20 s)") are that many seconds late at worst, and thousands of rows stay cheap.
AGE_STEP_S = 5
_KEPT_LISTS = 32


@dataclass(frozen=True)
class _Rendered:
    view: AlarmsNow
    html: Markup


_rendered: dict[tuple[object, ...], _Rendered] = {}
_render_lock = threading.Lock()


def _list_html(shown: AlarmsPage, bad: str | None, filters: Mapping[str, str], admin: bool, now: int) -> Markup:
    """The refreshing part of the page, rendered once per AGE_STEP_S for everyone who sees the same."""
    key = (admin, csrf_token() if admin else "", tuple(sorted(filters.items())), shown.checked_at, shown.problem,
           bad, now // AGE_STEP_S)
    kept = _rendered.get(key)
    if kept is not None and kept.view is shown.view:
        return kept.html
    with _render_lock:  # the others wait for the one rendering it instead of rendering it too
        kept = _rendered.get(key)
        if kept is not None and kept.view is shown.view:
            return kept.html
        html = Markup(render_template(
            "alarms_fragment.html", view=shown.view, problem=shown.problem, bad_filter=bad,
            checked_at=shown.checked_at, now=now, filters=filters, admin=admin, silence_for=SILENCE_FOR,
            fmt_time=fmt_time, fmt_value=fmt_value, fmt_limit=fmt_limit, since=_since, glob_escape=glob_escape,
            series_link=_series_links()))
        if len(_rendered) >= _KEPT_LISTS:
            _rendered.clear()
        _rendered[key] = _Rendered(shown.view, html)
    return html


def _series_links() -> Callable[[int, str, str], str]:
    """The series page's address of each row: url_for once, then the query string per row."""
    base = url_for("history.series")

    def link(tid: int, series: str, ds: str) -> str:
        return f"{base}?{urlencode({'threshold': tid, 'series': series, 'ds': ds})}"

    return link


@bp.get("/")
@require_access
def page() -> tuple[str, int]:
    now = int(time.time())
    try:
        narrowed, status, bad = wanted(request.args), 200, None
    except FilterError as exc:
        narrowed, status, bad = Wanted(), 400, str(exc)
    shown = service().alarms_now(narrowed, now)
    account = current_account()
    admin = account is not None and account.role == "admin"
    filters = {k: v for k, v in request.args.items() if k in ("q", "threshold", "severity", "status") and v}
    listed = _list_html(shown, bad, filters, admin, now)
    if request.args.get("fragment") == "1":
        return listed, status
    return render_template(
        "alarms.html", listed=listed, refresh=max(1, round(service().settings().service.page_refresh)),
        filters=filters, thresholds=shown.thresholds, severities=SEVERITIES, statuses=STATUS_ORDER), status
