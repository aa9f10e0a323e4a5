"""/metrics (Prometheus), /healthz, and the page of the check's own statistics."""

from __future__ import annotations

import time

from flask import Blueprint, Response, jsonify, render_template, send_file
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from rrdalarm.graphs import PERIODS, GraphError, stats_graph

from .auth import require_access, service

bp = Blueprint("status", __name__, template_folder="templates")


@bp.get("/metrics")
def metrics() -> Response:
    return Response(generate_latest(service().metrics.registry), 200, {"Content-Type": CONTENT_TYPE_LATEST})


@bp.get("/healthz")
def healthz() -> tuple[Response, int]:
    """200 when the database answers and (with a scheduler) checks keep coming; 503 otherwise."""
    svc = service()
    settings = svc.settings()
    now = time.time()
    last = svc.last.finished_at
    age = None if last is None else round(now - last, 1)
    scheduler = svc.scheduler_state()
    db = svc.database_ok()
    # A scheduler that has missed three turns is not alive, whatever its thread says.
    stale = scheduler == "running" and age is not None and age > 3 * settings.service.check_interval + 60
    healthy = db and scheduler != "stopped" and not stale
    body = {"status": "ok" if healthy else "failing", "database": db, "scheduler": scheduler,
            "last_check_age_s": age, "last_error": svc.last.error}
    return jsonify(body), 200 if healthy else 503


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
