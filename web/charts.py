"""/api/points: one series' points and its firings, silences and acknowledgements, for the series chart.

A thin face over rrdalarm.report.points; static/series-chart.js is the browser side. Every
answer is JSON, errors included ({"error": one line}).
"""

from __future__ import annotations

import time
from typing import Any

from flask import Blueprint, Response, jsonify, request

from rrdalarm.common.errors import StoreError
from rrdalarm.config.thresholds import load_thresholds
from rrdalarm.model.definitions import Threshold
from rrdalarm.model.errors import ConfigError
from rrdalarm.report.points import PointsError, chart, window

from .auth import require_access, service
from .filters import FilterError, parse_time
from .history import series_key

bp = Blueprint("charts", __name__)


def _error(message: str, status: int) -> tuple[Response, int]:
    return jsonify({"error": " ".join(message.split())}), status


@bp.after_request
def _headers(resp: Response) -> Response:
    # Answers carry recent values of the operator's data: never kept by a proxy.
    resp.headers["Cache-Control"] = "no-store"
    return resp


def _threshold(tid: int) -> Threshold:
    svc = service()
    try:
        found = load_thresholds(svc.thresholds_file(svc.settings(), None))
    except ConfigError as exc:
        raise PointsError(f"the thresholds file cannot be read: {str(exc).splitlines()[0]}", 503) from None
    threshold = next((t for t in found if t.id == tid), None)
    if threshold is None:
        raise PointsError(f"no threshold {tid} in the thresholds file", 404)
    return threshold


@bp.get("/api/points")
@require_access
def points() -> Any:
    """?threshold=ID&series=FILE&ds=DS&(range=1h|6h|1d|7d|30d | start=EPOCH&end=EPOCH) -> the points as JSON."""
    now = int(time.time())
    args = request.args
    try:
        key = series_key(args)
        start, end = window((args.get("range") or "").strip() or None, parse_time(args.get("start"), now, "start"),
                            parse_time(args.get("end"), now, "end"), now)
        threshold = _threshold(key.threshold)
        settings = service().settings()
        return jsonify(chart(settings, service().store, threshold, key.series, key.ds, start, end))
    except FilterError as exc:
        return _error(str(exc), 400)
    except PointsError as exc:
        return _error(str(exc), exc.status)
    except StoreError as exc:
        return _error(str(exc), 500)
