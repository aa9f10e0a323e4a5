"""/api/silences and /api/acks: people quieting alarms over HTTP, for the pages and for scripts.

Anyone who may read the reports may list them; making or ending them needs an admin (whose
browser session sends its CSRF token) or the API token as a Bearer header (recorded as "token").
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from flask import Blueprint, Response, jsonify, request
from werkzeug.datastructures import MultiDict

from rrdalarm.check.lock import CheckBusy
from rrdalarm.common.errors import StoreError
from rrdalarm.control import acks, silences
from rrdalarm.control.silences import ControlError, NoSuchSilence, SilenceEnded
from rrdalarm.model.control import Matchers
from rrdalarm.model.definitions import Threshold
from rrdalarm.model.errors import ConfigError

from .auth import require_access, require_control, service

bp = Blueprint("control_api", __name__, url_prefix="/api")

# An acknowledgement waits this long for a running check before answering 503.
ACK_WAIT_S = 10.0


def _error(message: str, status: int, headers: Mapping[str, str] | None = None) -> Response:
    response = jsonify({"error": message})
    response.status_code = status
    response.headers.update(dict(headers or {}))
    return response


def _payload() -> dict[str, Any]:
    """The request's fields: a JSON object, or a form."""
    if request.is_json:
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            raise ControlError("the body must be a JSON object")
        return body
    return {k: v for k, v in request.form.items() if k != "csrf_token"} | (
        {"labels": request.form.getlist("label")} if "label" in request.form else {})


def _thresholds() -> list[Threshold]:
    return service().configured().thresholds


def _status_of(exc: ControlError) -> int:
    """404 for an unknown silence, 409 for one that has ended, 400 for anything else asked wrong."""
    return 404 if isinstance(exc, NoSuchSilence) else 409 if isinstance(exc, SilenceEnded) else 400


def _text(body: Mapping[str, Any], key: str) -> str | None:
    value = body.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, (str, int)) or isinstance(value, bool):
        raise ControlError(f"{key} must be text")
    return str(value)


def _int(body: Mapping[str, Any], key: str) -> int | None:
    value = _text(body, key)
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        raise ControlError(f"{key} must be a whole number, not {value!r}") from None


def _labels(raw: Any) -> dict[str, str]:
    if raw is None or raw == "":
        return {}
    if isinstance(raw, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in raw.items()):
        return dict(raw)
    if isinstance(raw, str):
        raw = [raw]
    if isinstance(raw, list) and all(isinstance(i, str) for i in raw):
        return silences.parse_labels(raw)
    raise ControlError("labels must be an object of text values, or a list of KEY=VALUE")


def _matchers(body: Mapping[str, Any]) -> Matchers:
    if "labels" in body and isinstance(body, MultiDict):
        body = {**body.to_dict(), "labels": body.getlist("labels")}
    return Matchers(_int(body, "threshold"), _text(body, "series"), _text(body, "ds"), _labels(body.get("labels")),
                    _text(body, "severity"))


@bp.get("/silences")
@require_access
def list_silences() -> Response:
    now = int(time.time())
    found = silences.listed(service().store, now, request.args.get("all") in ("1", "true", "yes"))
    return jsonify({"silences": [silences.as_dict(s, now) for s in found]})


@bp.get("/silences/preview")
@require_access
def preview_silence() -> Response:
    """How many series a silence with these matchers would cover now, by the newest check's rows if this
    process has them all (Check now, /start), else only the firing ones by the stored states."""
    try:
        matchers = _matchers(request.args)
        thresholds = _thresholds()
    except (ControlError, ConfigError) as exc:
        return _error(str(exc), 400)
    rows, _ = service().newest_rows(every=True)
    if rows is None:
        return jsonify({"series": None, "firing": silences.firing_matched(service().store, thresholds, matchers)})
    got = silences.matched_in(rows, thresholds, matchers)
    return jsonify({"series": got.series, "firing": got.firing})


@bp.post("/silences")
@require_control
def add_silence(author: str) -> Response:
    now = int(time.time())
    try:
        body = _payload()
        thresholds = _thresholds()
        matchers = _matchers(body)
        times = silences.silence_times(_text(body, "start"), _text(body, "end"), _text(body, "for"), now)
        store = service().store
        made = silences.add(store, thresholds, matchers, times, _text(body, "comment") or "", author, now)
        firing = silences.firing_matched(store, thresholds, matchers)
    except (ControlError, ConfigError) as exc:
        return _error(str(exc), 400)
    except StoreError as exc:
        return _error(str(exc), 503)
    response = jsonify({"silence": silences.as_dict(made, now), "firing_matched": firing})
    response.status_code = 201
    return response


@bp.post("/silences/<int:ident>/expire")
@require_control
def expire_silence(ident: int, author: str) -> Response:
    now = int(time.time())
    try:
        gone = silences.expire(service().store, ident, author, now)
    except ControlError as exc:
        return _error(str(exc), _status_of(exc))
    return jsonify({"silence": silences.as_dict(gone, now)})


@bp.post("/silences/<int:ident>/extend")
@require_control
def extend_silence(ident: int, author: str) -> Response:
    now = int(time.time())
    try:
        duration = _text(_payload(), "for")
        if duration is None:
            raise ControlError("give 'for': how much longer, e.g. \"1h\"")
        moved = silences.extend(service().store, ident, duration, author, now)
    except ControlError as exc:
        return _error(str(exc), _status_of(exc))
    return jsonify({"silence": silences.as_dict(moved, now)})


@bp.get("/acks")
@require_access
def list_acks() -> Response:
    return jsonify({"acknowledged": acks.acknowledged(service().store)})


@bp.post("/acks")
@require_control
def add_ack(author: str) -> Response:
    svc = service()
    try:
        body = _payload()
        threshold = _int(body, "threshold")
        if threshold is None:
            raise ControlError("threshold is required")
        done = acks.acknowledge(svc.store, svc.settings(), _thresholds(), threshold, _text(body, "series"),
                                _text(body, "ds"), _text(body, "comment") or "", author, int(time.time()),
                                wait=ACK_WAIT_S)
    except (ControlError, ConfigError) as exc:
        return _error(str(exc), 400)
    except CheckBusy as exc:
        return _error(str(exc), 503, {"Retry-After": "10"})
    return jsonify({
        "acknowledged": [{"threshold": k[0], "series": k[1], "ds": k[2]} for k in done.acknowledged],
        "already": [{"threshold": k[0], "series": k[1], "ds": k[2], **a.as_dict()} for k, a in done.already],
        "deliveries": [{"id": r.delivery_id, "action": r.action, "ok": r.ok, "error": r.error}
                       for r in done.deliveries],
    })
