"""/start (cron and scripts), the report of the last check, and graphs of fired series."""

from __future__ import annotations

import time
from collections.abc import Mapping
from urllib.parse import urlencode

from flask import Blueprint, Response, get_flashed_messages, jsonify, render_template, request, send_file, url_for

from rrdalarm.check.lock import CheckBusy
from rrdalarm.common.errors import StoreError
from rrdalarm.config.thresholds import load_thresholds
from rrdalarm.model.errors import ConfigError
from rrdalarm.model.results import CheckResult, Row
from rrdalarm.model.states import Severity, Status
from rrdalarm.report import render as report
from rrdalarm.report.graphs import BadGraphRequest, GraphError, series_graph
from rrdalarm.rules.timespec import TimeSpecError, resolve_window
from rrdalarm.service.service import TooSoon

from .auth import require_access, require_token, service
from .errors import wants_html
from .filters import FilterError, parse_choice, parse_int, parse_text

bp = Blueprint("report", __name__)


def _text(body: str, status: int, headers: dict[str, str] | None = None) -> Response:
    return Response(body + "\n", status, {"Content-Type": "text/plain; charset=utf-8", **(headers or {})})


def graph_link(row: Row, at: int) -> str:
    return url_for("report.graph") + "?" + urlencode(
        {"threshold": row.threshold, "file": row.file, "ds": row.ds, "at": at}
    )


def nav() -> dict[str, str]:
    """The links every page shows, label -> URL."""
    return {
        "Alarms": url_for("alarms.page"),
        "Report": url_for("report.last_report"),
        "Thresholds": url_for("thresholds.table"),
        "Events": url_for("history.events"),
        "Deliveries": url_for("history.deliveries"),
        "Silences": url_for("control.page"),
        "Audit": url_for("history.audit"),
        "Statistics": url_for("status.stats_page"),
        # Trees only where checks go to other machines: on one machine there is nothing to show.
        **({"Trees": url_for("trees.page")} if service().settings().cluster.broker is not None else {}),
    }


@bp.get("/start")
@require_token
def start() -> Response:
    """Run a check now (cron: the API token only; a browser posts, with CSRF, to the same address)."""
    return _start()


@bp.post("/start")
@require_access
def start_post() -> Response:
    return _start()


def _start() -> Response:
    """noHTML=true: empty 200 (for cron); format=json: the check --json document; else the HTML report."""
    svc = service()
    quiet = request.args.get("noHTML", "").lower() == "true"
    as_json = request.args.get("format") == "json"
    try:
        result = svc.run_check(config=request.args.get("config"), wait=svc.settings().lock_wait,
                               want_ok=not quiet, from_start=True)
    except TooSoon as exc:
        return _text(f"too soon: try again in {exc.retry_after} s", 429, {"Retry-After": str(exc.retry_after)})
    except CheckBusy as exc:
        return _text(str(exc), 503, {"Retry-After": "30"})
    except (ConfigError, StoreError) as exc:
        return _text(str(exc), 400 if isinstance(exc, ConfigError) else 500)
    if quiet:
        return Response("", 200, {"Content-Type": "text/plain"})
    if as_json:
        return jsonify(report.to_dict(result))
    return _report_page(result)


@bp.get("/report")
@require_access
def last_report() -> Response:
    last = service().last
    if last.result is None:
        message = f"No check has run yet in this process.{' Last error: ' + last.error if last.error else ''}"
        if wants_html():
            return Response(render_template("report_page.html", body=None, message=message), 200,
                            {"Content-Type": "text/html; charset=utf-8"})
        return _text(message, 200)
    # "Check now" lands here: its flashed summary is shown above the report.
    notices: list[tuple[str, str]] = get_flashed_messages(with_categories=True)  # type: ignore[assignment]
    try:
        wanted = row_filter(request.args)
    except FilterError as exc:
        wanted = None
        notices.append(("error", f"Filter not applied: {exc}"))
    return _report_page(last.result, notices, wanted)


def row_filter(args: Mapping[str, str]) -> report.RowFilter:
    """The report's filters from the query string; FilterError names a bad one."""
    return report.RowFilter(parse_text(args.get("q"), "file or host"), parse_int(args.get("threshold"), "threshold"),
                            parse_choice(args.get("severity"), [s.value for s in Severity], "severity"),
                            parse_choice(args.get("status"), [s.value for s in Status], "status"))


def _report_page(result: CheckResult, notices: list[tuple[str, str]] | None = None,
                 wanted: report.RowFilter | None = None) -> Response:
    """The core's report inside the site's page (header, stylesheet); `check --html` makes the standalone one."""
    body = report.report_body(result, graph_link, notices or (), wanted)
    return Response(render_template("report_page.html", body=body), 200, {"Content-Type": "text/html; charset=utf-8"})


@bp.get("/graph")
@require_access
def graph() -> Response:
    """PNG of one series over its threshold's window at the check's time, with the threshold as a rule."""
    svc = service()
    settings = svc.settings()
    try:
        tid = int(request.args["threshold"])
        rel, ds = request.args["file"], request.args["ds"]
        at = int(request.args.get("at") or time.time())
    except (KeyError, ValueError):
        return _text("graph needs threshold, file, ds (and optionally at)", 400)
    try:
        path = svc.thresholds_file(settings, None)
        threshold = next((t for t in load_thresholds(path) if t.id == tid), None)
        if threshold is None:
            return _text(f"no threshold {tid}", 404)
        start, end = resolve_window(threshold.start, threshold.end, at)
        png = series_graph(settings, rel, ds, threshold.cf, start, end, threshold.value, time.time(),
                           title=f"#{tid} {threshold.name}: {rel} {ds}")
    except BadGraphRequest as exc:
        return _text(str(exc), 400)
    except (GraphError, TimeSpecError, ConfigError) as exc:
        return _text(str(exc), 404)
    return send_file(png, mimetype="image/png", max_age=60)
