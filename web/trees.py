"""/trees: each tree's workers, their last heartbeat, files and the last check's duration (and /api/trees)."""

from __future__ import annotations

import time
from dataclasses import asdict

from flask import Blueprint, Response, jsonify, render_template

from rrdalarm.model.errors import ConfigError
from rrdalarm.report.render import fmt_time
from rrdalarm.report.trees import TreeLine, heartbeat_limit, trees_overview
from rrdalarm.store.workers import tree_workers

from .auth import require_access, service

bp = Blueprint("trees", __name__, template_folder="templates")


def _overview() -> tuple[list[TreeLine], str | None, float]:
    svc = service()
    settings = svc.settings()
    try:
        thresholds, problem = svc.configured().thresholds, None
    except ConfigError as exc:
        thresholds, problem = [], str(exc)
    interval, timeout = settings.service.check_interval, settings.cluster.answer_timeout
    lines = trees_overview(thresholds, tree_workers(svc.store), time.time(), interval, timeout)
    return lines, problem, heartbeat_limit(interval, timeout)


@bp.get("/trees")
@require_access
def page() -> str:
    lines, problem, limit = _overview()
    return render_template("trees.html", trees=lines, problem=problem, limit=int(limit), fmt_time=fmt_time,
                           clustered=service().settings().cluster.broker is not None)


@bp.get("/api/trees")
@require_access
def api() -> Response:
    lines, problem, _ = _overview()
    return jsonify({"trees": [{**asdict(line), "alive": line.alive} for line in lines], "problem": problem})
