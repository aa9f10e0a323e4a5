"""/metrics (Prometheus), /healthz, and the page of the check's own statistics."""

from __future__ import annotations

import contextlib
import time

from flask import Blueprint, Response, jsonify, render_template, send_file
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from rrdalarm.common.errors import StoreError
from rrdalarm.plugins import plugin_errors
from rrdalarm.report.graphs import PERIODS, GraphError, stats_graph

from .auth import require_access, service

bp = Blueprint("status", __name__, template_folder="templates")


@bp.get("/metrics")
def metrics() -> Response:
    svc = service()
    # A database that does not answer leaves the gauge as it was; /healthz says so.
    with contextlib.suppress(StoreError):
        svc.metrics.last_success.set(svc.last_success() or 0)
    return Response(generate_latest(svc.metrics.registry), 200, {"Content-Type": CONTENT_TYPE_LATEST})


@bp.get("/healthz")
def healthz() -> tuple[Response, int]:
    """200 while checks complete and succeed; 503 otherwise. Unauthenticated, so it names no file or message."""
    h = service().health()
    body = {"status": "ok" if h.healthy else "failing", "database": h.database, "scheduler": h.scheduler,
            "role": h.role, "last_check_age_s": h.last_check_age_s, "last_error": h.problem,
            # Names only: why they failed is in the log and in `rrdalarm validate`.
            "plugins_not_loaded": sorted(plugin_errors())}
    return jsonify(body), 200 if h.healthy else 503


@bp.get("/stats")
@require_access
def stats_page() -> str:
    return render_template("stats.html", periods=list(PERIODS))


@bp.get("/stats/<which>/<period>.png")
@require_access
def stats_png(which: str, period: str) -> Response:
    try:
        png = stats_graph(service().settings(), which, period, time.time())
    except GraphError as exc:
        return Response(str(exc) + "\n", 404, {"Content-Type": "text/plain"})
    return send_file(png, mimetype="image/png", max_age=60)
