"""JSON for the editor's autocomplete: paths under the RRD root, live match counts, data sources, ntopng names.

A thin face over rrdalarm.editor.suggest (paths) and the ntopng client (schemas,
hosts); static/suggest.js is the browser side. Every answer is JSON, which the
script inserts as text, never as markup.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request

from rrdalarm.common.secrets import SecretError
from rrdalarm.editor.suggest import LOOKUP_BUDGET_S, MAX_LIMIT, MIN_REFRESH_S, PathSuggester, SuggestError
from rrdalarm.sources.ntopng_client import NtopngClient, NtopngError
from rrdalarm.sources.rrd_index import cache_path_for

from .auth import require_access, service

bp = Blueprint("suggest", __name__)

EXTENSION = "rrdalarm.editor.suggest"
# An autocomplete that waits the check's full timeout and retries is worse than none.
NTOPNG_TIMEOUT_S = 5.0
_ENTITY_RE = re.compile(r"[a-z_]{1,32}")
_lock = threading.Lock()


def _error(message: str, status: int) -> tuple[Response, int]:
    return jsonify({"error": " ".join(message.split())}), status


@bp.after_request
def _headers(resp: Response) -> Response:
    # Answers name files and hosts: never cached by a proxy, never sniffed as HTML.
    resp.headers["Cache-Control"] = "no-store"
    resp.headers["X-Content-Type-Options"] = "nosniff"
    return resp


def suggester() -> PathSuggester:
    """This app's PathSuggester for the configured root; a new one when rrd_root or data_dir changed."""
    settings = service().settings()
    if settings.rrd_root is None:
        raise SuggestError("no RRD root: set rrd_root in the settings")
    root = Path(os.path.realpath(settings.rrd_root))
    if not root.is_dir():
        raise SuggestError("the RRD root (rrd_root) is not a directory")
    key = (root, settings.data_dir)
    with _lock:
        held: tuple[tuple[Path, Path], PathSuggester] | None = current_app.extensions.get(EXTENSION)
        if held is None or held[0] != key:
            interval = float(current_app.config.get("SUGGEST_REFRESH_S", MIN_REFRESH_S))
            held = (key, PathSuggester(root, cache_path_for(settings.data_dir, root), min_interval=interval))
            current_app.extensions[EXTENSION] = held
    return held[1]


def _budget() -> float:
    return float(current_app.config.get("SUGGEST_BUDGET_S", LOOKUP_BUDGET_S))


@bp.get("/api/suggest")
@require_access
def suggest() -> Any:
    """?q=TEXT[&limit=N] -> {"items": [{"value", "kind": "dir"|"file"}], "more": bool}."""
    try:
        limit = int(request.args.get("limit", "50"))
    except ValueError:
        return _error("limit must be a whole number", 400)
    try:
        got = suggester().suggest(request.args.get("q", ""), max(1, min(limit, MAX_LIMIT)), _budget())
    except SuggestError as exc:
        return _error(str(exc), 503)
    return jsonify({"items": [{"value": s.value, "kind": s.kind} for s in got.items], "more": got.more})


@bp.get("/api/matches")
@require_access
def matches() -> Any:
    """?glob=G -> {"count": n, "sample": [first paths], "outside": n, "partial": bool}, or 400 {"error": one line}.

    "partial": the look-up ran out of time and "message" says so; "count" is then a lower bound.
    """
    try:
        paths = suggester()
    except SuggestError as exc:
        return _error(str(exc), 503)
    try:
        got = paths.matches(request.args.get("glob", ""), budget_s=_budget())
    except SuggestError as exc:
        return _error(str(exc), 400)
    answer = {"count": got.count, "sample": got.sample, "outside": got.outside, "partial": got.partial}
    if got.partial:
        answer["message"] = got.message
    return jsonify(answer)


@bp.get("/api/ds")
@require_access
def data_sources() -> Any:
    """?file=REL -> {"ds": [names in the file's order]}, 404 when there is no such file, 400 otherwise.

    ?glob=G -> {"ds": [{"name", "files"}], "files": n, "unreadable": n, "partial": bool}: the union over
    the files the glob matches, the most common first; "partial" (with "message"): the time budget or
    the file limit ran out, so only the first files were read.
    """
    try:
        paths = suggester()
    except SuggestError as exc:
        return _error(str(exc), 503)
    if "glob" in request.args:
        return _data_source_union(paths, request.args["glob"])
    try:
        return jsonify({"ds": paths.data_sources(request.args.get("file", ""))})
    except SuggestError as exc:
        return _error(str(exc), 404 if exc.not_found else 400)


def _data_source_union(paths: PathSuggester, glob: str) -> Any:
    try:
        got = paths.data_source_union(glob, budget_s=_budget())
    except SuggestError as exc:
        return _error(str(exc), 400)
    answer: dict[str, Any] = {"ds": [{"name": n, "files": c} for n, c in got.ds], "files": got.files,
                              "unreadable": got.unreadable, "partial": got.partial}
    if got.partial:
        answer["message"] = got.message
    return jsonify(answer)


# ---------------------------------------------------------------- ntopng


def _ntopng(call: Callable[[NtopngClient], Any]) -> Any:
    """Answer `call(client)` as JSON, or 502 {"error"} when ntopng is not configured or does not answer."""
    nt = service().settings().ntopng
    if not nt.url:
        return _error("ntopng is not configured: set [ntopng] url in the settings", 502)
    quick = replace(nt, timeout=min(nt.timeout, NTOPNG_TIMEOUT_S), retries=0, concurrency=1)
    try:
        with NtopngClient(quick) as client:
            return jsonify(call(client))
    except (NtopngError, SecretError) as exc:
        return _error(str(exc), 502)
    except (ValueError, TypeError, AttributeError, KeyError) as exc:  # an answer of an unexpected shape
        return _error(f"ntopng: unexpected answer ({type(exc).__name__})", 502)


def _ifid() -> int | None:
    try:
        ifid = int(request.args.get("ifid", "0"))
    except ValueError:
        return None
    return ifid if ifid >= 0 else None


@bp.get("/api/ntopng/interfaces")
@require_access
def ntopng_interfaces() -> Any:
    """[{"ifid": n, "name": s}, ...]"""
    return _ntopng(lambda c: [{"ifid": ifid, "name": name} for ifid, name in c.interfaces()])


@bp.get("/api/ntopng/schemas")
@require_access
def ntopng_schemas() -> Any:
    """?entity=host&ifid=0 -> ["host:traffic", ...]"""
    entity, ifid = request.args.get("entity", "host"), _ifid()
    if not _ENTITY_RE.fullmatch(entity):
        return _error("entity must be a word such as host, iface or asn", 400)
    if ifid is None:
        return _error("ifid must be a whole number >= 0", 400)
    return _ntopng(lambda c: c.schemas(entity, ifid))


@bp.get("/api/ntopng/hosts")
@require_access
def ntopng_hosts() -> Any:
    """?ifid=0 -> ["192.168.1.10", "10.0.0.2@3", ...] (local hosts ntopng has in memory)"""
    ifid = _ifid()
    if ifid is None:
        return _error("ifid must be a whole number >= 0", 400)
    return _ntopng(lambda c: c.active_hosts(ifid))
