"""A fake ntopng for the tests: a pytest-httpserver HTTPServer that answers like ntopng's REST API v2.

Every behaviour here is taken from ntopng's source, as docs/ntopng-rest.md
quotes it. Nothing is invented for the client's convenience:

* auth: `Authorization: Token <t>` or HTTP basic. A wrong or missing credential
  gets `302 Found` to `/lua/login.lua?referer=..` with an expiring session cookie.
  It is never a JSON error.
* lint: a POST JSON body is merged into the GET parameters (body keys win). An
  unknown parameter name, a missing `ifid` in ts_query, a bad JSON body or a
  missing script gets `302` to `/lua/http_status_code.lua?message=..&error_message=..`.
  A value that fails its validator (e.g. a float epoch) is silently dropped.
* ts.lua rebuilds rrdtool's fetch: stored points sit at multiples of the step.
  rrd_fetch aligns start down and end up, and rows are timestamped at the end
  of their interval (`start + step` first). 6.2 fetches `begin - step .. end - step`,
  6.0 fetches the raw range, 5.6 fetches the raw range, drops the last row,
  turns NaN into 0 and drops all-zero series. epoch_end is clamped to the last
  update when it lies within 2 steps after it. ntopng averages groups of points
  above `limit` (default 60). 6.x nulls a series with fewer than 2 known points.
  Not found: 6.x `{"metadata": []}`, 5.x `[]`, both rc 0.
* interfaces.lua, host/active.lua (ifid required: rc -2 INVALID_INTERFACE,
  HTTP 400; paging with currentPage/perPage, default 10; `all=true` from 5.6;
  `key` is `127__0__0__4`, `sort` is `[[]]`, no totalRows),
  timeseries/type/consts.lua (5.6 and later; older versions have no such script).
  consts.lua answers the catalog recorded from a real 6.2 (tests/ntopng-6.2/):
  every schema of the entity, with data or not, plus a `top:` entry (with a
  `query` key) for each stored series of a schema with a third tag. `query=iface`
  without epoch_begin/epoch_end fails as 6.2 does (rrd.lua:827), and no `query` is
  a 400 whose body is not JSON (a second HTTP answer glued after the rc -5 one).

Where this fake and a recording in tests/ntopng-6.2/ differ, the recording is right.

Test knobs: `delay` (a slow ntopng), `fail_next` (HTTP statuses to answer
first, e.g. [500]), `rc_error` (answer every REST call with that rc),
`starting` (the 403 "We're almost ready..." page of its first seconds), and
`max_in_flight` / `log` (what the client did).
"""

from __future__ import annotations

import base64
import json
import math
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

TS = "/lua/rest/v2/get/timeseries/ts.lua"
INTERFACES = "/lua/rest/v2/get/ntopng/interfaces.lua"
ACTIVE = "/lua/rest/v2/get/host/active.lua"
CONSTS = "/lua/rest/v2/get/timeseries/type/consts.lua"

# A slice of http_lint's table of known parameter names: any other name fails the script.
KNOWN_PARAMS = frozenset({
    "ts_schema", "ts_query", "epoch_begin", "epoch_end", "ts_compare", "extended", "ts_aggregation", "no_fill",
    "tskey", "limit", "initial_point", "ifid", "mode", "all", "currentPage", "perPage", "sortColumn",
    "sortOrder", "version", "vlan", "network", "query", "host", "zoom",
})
NUMERIC_PARAMS = frozenset({"epoch_begin", "epoch_end", "limit", "ifid", "currentPage", "perPage"})
RECORDED = Path(__file__).with_name("ntopng-6.2")
CATALOG_FILES = {"host": "30-consts-host.json", "iface": "31-consts-iface-with-epochs.json"}
# The base tags of each entity: a schema with one more (protocol, l4proto) gets a top: entry.
ENTITY_TAGS = {"host": ("ifid", "host"), "iface": ("ifid",)}
STARTING_PAGE = (
    '<html><head><meta http-equiv="refresh" content="3"></head><body><center><H3>We\'re almost ready...</H3>'
    "<center><p>ntopng is unable to serve requests at this time (possibly starting up or shutting down). "
    "Please hold on.\n</body></html>"
)
RC = {  # rest_utils.lua: rc, rc_str, rc_str_hr, HTTP status
    "OK": (0, "Success", 200),
    "NOT_FOUND": (-1, "Not found", 404),
    "INVALID_INTERFACE": (-2, "Invalid interface", 400),
    "NOT_GRANTED": (-3, "Not granted", 401),
    "INVALID_ARGUMENTS": (-5, "Invalid arguments", 400),
    "INTERNAL_ERROR": (-6, "Internal error", 500),
}


@dataclass
class Stored:
    """The RRD behind one schema and tags: metric order, step, points by time, last update."""

    step: int
    points: dict[str, dict[int, float | None]]
    last_update: int
    gauge: bool = False


@dataclass
class Host:
    ip: str
    vlan: int = 0
    local: bool = True


def lua_tostring(value: Any) -> str:
    """What http_lint sees after `tostring(v)` of a dkjson-decoded body value (Lua 5.3+)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        text = f"{value:.14g}"
        return text + ".0" if re.fullmatch(r"-?\d+", text) else text
    return str(value)


def fetch_rows(stored: Stored, label: str, start: int, end: int) -> tuple[int, int, list[float]]:
    """rrd_fetch_r as ntop.rrd_fetch_columns returns it: (start, end, rows), row i at start + (i+1)*step."""
    step = stored.step
    fstart = start // step * step
    fend = (end // step + 1) * step
    pts = stored.points[label]
    rows = []
    for i in range((fend - fstart) // step):
        v = pts.get(fstart + (i + 1) * step)
        rows.append(math.nan if v is None else float(v))
    return fstart, fend, rows


def sample(rows: list[float], dp: int) -> list[float]:
    """ntopng's sampleSeries: groups of dp points averaged over their known values; an all-NaN group stays NaN."""
    out = []
    for i in range(0, len(rows), dp):
        known = [v for v in rows[i : i + dp] if v == v]
        out.append(sum(known) / len(known) if known else math.nan)
    return out


def catalog(entity: str) -> list[dict[str, Any]]:
    """consts.lua's plain entries for `entity` as a real 6.2 answered them (none for an entity not recorded)."""
    name = CATALOG_FILES.get(entity)
    if name is None:
        return []
    rsp = json.loads((RECORDED / name).read_text())["rsp"]
    return [e for e in rsp if not str(e.get("schema", "")).startswith("top:")]


def jsonable(values: Sequence[float]) -> list[float | None]:
    """dkjson writes NaN as null."""
    return [None if v != v else v for v in values]


@dataclass
class FakeNtopng:
    """Configure `server` to answer as ntopng `version` ("6.2", "6.0" or "5.6") does."""

    server: HTTPServer
    version: str = "6.2"
    tokens: set[str] = field(default_factory=lambda: {"T"})
    users: dict[str, str] = field(default_factory=dict)
    now: Callable[[], int] = field(default=lambda: int(time.time()))
    delay: float = 0.0
    fail_next: deque[int] = field(default_factory=deque)
    rc_error: str | None = None
    starting: bool = False
    interfaces: dict[int, str] = field(default_factory=lambda: {0: "eth0"})
    hosts: dict[int, list[Host]] = field(default_factory=dict)
    series: dict[tuple[str, tuple[str, ...]], Stored] = field(default_factory=dict)
    schema_tags: dict[str, tuple[str, ...]] = field(default_factory=dict)
    log: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    in_flight: int = 0
    max_in_flight: int = 0

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._v = tuple(int(x) for x in self.version.split("."))
        self.server.expect_request(re.compile(r".*")).respond_with_handler(self._handle)

    # ------------------------------------------------------------ configuration

    @property
    def url(self) -> str:
        return f"http://{self.server.host}:{self.server.port}"

    def add_host(self, ifid: int, ip: str, vlan: int = 0, local: bool = True) -> None:
        self.hosts.setdefault(ifid, []).append(Host(ip, vlan, local))

    def add_series(self, schema: str, query: str, values: Mapping[str, Sequence[float | None]], *, end: int,
                   step: int = 300, gauge: bool = False) -> None:
        """Metric `label` has values[i] at `end - (len-1-i)*step`; `end` is the last update. Dict order = DS order."""
        assert end % step == 0, "ntopng writes at multiples of the step"
        tags = dict(part.split(":", 1) for part in query.split(","))
        self.schema_tags.setdefault(schema, tuple(tags))
        points = {}
        for label, vals in values.items():
            first = end - (len(vals) - 1) * step
            points[label] = {first + i * step: v for i, v in enumerate(vals)}
        key = (schema, tuple(tags[k] for k in self.schema_tags[schema]))
        self.series[key] = Stored(step, points, end, gauge)

    # ------------------------------------------------------------ HTTP

    def _handle(self, request: Request) -> Response:
        with self._lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.delay:
                time.sleep(self.delay)
            return self._answer(request)
        finally:
            with self._lock:
                self.in_flight -= 1

    def _answer(self, request: Request) -> Response:
        with self._lock:
            status = self.fail_next.popleft() if self.fail_next else None
        if status is not None:
            return Response("<html><body>Internal Server Error</body></html>", status, content_type="text/html")
        if self.starting:
            return Response(STARTING_PAGE, 403, content_type="text/html")
        if not self._authorized(request):
            return self._redirect_login(request)
        params: dict[str, Any] = dict(request.args.items())
        if request.method == "POST" and (request.mimetype or "") == "application/json":
            try:
                body = json.loads(request.get_data() or b"null")
                params.update(body.items())  # parsePOSTpayload: body keys override query-string keys
            except (ValueError, AttributeError):
                return self._error_page(request, "internal_error", "bad argument #1 to 'for iterator' (table expected)")
        self.log.append((request.method, request.path, dict(params)))
        for key in params:
            if key not in KNOWN_PARAMS:
                return self._error_page(request, "internal_error", "/usr/share/ntopng/scripts/lua/modules/"
                                        f"http_lint.lua:2844: [LINT] Validation error: Unknown key '{key}' [1]: "
                                        "missing validation perhaps?")
        # A value that fails its validator is removed without a word (http_lint.validationError).
        clean = {k: lua_tostring(v) for k, v in params.items()}
        for key in NUMERIC_PARAMS & clean.keys():
            if not re.fullmatch(r"-?\d+", clean[key]):
                del clean[key]
        if "ts_schema" in clean and not re.fullmatch(r"[\w:.\-]+", clean["ts_schema"]):
            del clean["ts_schema"]
        if self.rc_error and request.path in (TS, INTERFACES, ACTIVE, CONSTS):
            return self._rc(self.rc_error, None)
        if request.path == TS:
            return self._ts(request, clean)
        if request.path == INTERFACES:
            entries = [{"ifid": i, "ifname": n} | ({"name": n} if self._v >= (5, 6) else {})
                       for i, n in sorted(self.interfaces.items())]
            return self._rc("OK", entries)
        if request.path == ACTIVE:
            return self._active(clean)
        if request.path == CONSTS and self._v >= (5, 6):
            return self._consts(request, clean)
        return self._error_page(request, "not_found", None)

    def _authorized(self, request: Request) -> bool:
        auth_type, _, value = (request.headers.get("Authorization") or "").partition(" ")
        if auth_type == "Token":
            return value.split(" ")[0] in self.tokens
        if auth_type == "Basic":
            try:
                user, _, password = base64.b64decode(value).decode().partition(":")
            except ValueError:
                return False
            return user in self.users and self.users[user] == password
        return False

    def _referer(self, request: Request) -> str:
        query = request.query_string.decode()
        return f"{request.host}{request.path}" + (f"?{query}" if query else "")

    def _redirect_login(self, request: Request) -> Response:
        return Response("", 302, headers={
            "Location": f"/lua/login.lua?referer={quote(self._referer(request), safe='')}",
            "Set-Cookie": "session=; path=/; expires=Thu, 01-Jan-1970 00:00:01 GMT; max-age=0; HttpOnly; SameSite=lax",
        })

    def _error_page(self, request: Request, message: str, error: str | None) -> Response:
        location = f"/lua/http_status_code.lua?message={message}&referer={quote(self._referer(request), safe='')}"
        location += f"&error_message={quote(error or '', safe='')}"
        return Response(error or "", 302, headers={"Location": location, "Set-Cookie": "session=; path=/; HttpOnly"})

    def _rc(self, name: str, rsp: Any) -> Response:
        rc, human, status = RC.get(name, (-5, name, 400))
        body = {"rc": rc, "rc_str": name, "rc_str_hr": human, "rsp": {} if rsp is None else rsp}
        return Response(json.dumps(body), status, content_type="application/json")

    # ------------------------------------------------------------ endpoints

    def _ts(self, request: Request, p: dict[str, str]) -> Response:
        tags = {}
        for part in (p.get("ts_query") or "").split(","):
            name, sep, value = part.partition(":")  # tsQueryToTags: split on the first ':'
            if sep:
                tags[name] = value
        if "ifid" not in tags:
            return self._error_page(request, "internal_error", "/usr/share/ntopng/scripts/lua/modules/timeseries/"
                                    "ts_data.lua:136: attempt to concatenate a nil value (field 'ifid')")
        now = self.now()
        begin = int(p.get("epoch_begin", now - 3600))
        end = int(p.get("epoch_end", now))
        limit = int(p.get("limit", 60))
        schema = p.get("ts_schema", "")
        names = self.schema_tags.get(schema)
        stored = None
        if names is not None and all(n in tags for n in names):  # verifyTags: extra tags are ignored
            stored = self.series.get((schema, tuple(tags[n] for n in names)))
        v6 = self._v >= (6,)
        if stored is None:
            return self._rc("OK", {"metadata": []} if v6 else [])
        step = stored.step
        if end > stored.last_update and end - stored.last_update <= 2 * step:
            end = stored.last_update
        if self._v >= (6, 2):
            fetch_begin, fetch_end = begin - step, end - step
        else:
            fetch_begin, fetch_end = begin, end
        columns = {}
        fstart = fend = 0
        counted = False  # 6.0/6.2 count points only for a series that kept them: num_point 0 when all were nulled
        for label in stored.points:
            fstart, fend, rows = fetch_rows(stored, label, fetch_begin, fetch_end)
            if not v6:
                rows = rows[:-1]  # "Remove the last value: RRD seems to give an additional point"
                rows = [0.0 if v != v else max(0.0, v) for v in rows]  # fill_value 0, min_value 0
            else:
                rows = [max(0.0, v) if v == v else v for v in rows]
                if sum(1 for v in rows if v == v) < 2:  # min_num_points
                    rows = [math.nan] * len(rows)
                else:
                    counted = True
            columns[label] = rows
        count = len(next(iter(columns.values()), []))
        out_step = step
        if count > limit:
            dp = math.ceil(count / limit)
            columns = {k: sample(v, dp) for k, v in columns.items()}
            out_step, count = step * dp, math.ceil(count / dp)
        if v6:
            series = [{"id": k, "data": jsonable(v), "statistics": _stats(v, out_step, stored.gauge)}
                      for k, v in columns.items()]
            rsp: Any = {"metadata": {"epoch_begin": fstart, "epoch_end": fend, "epoch_step": out_step,
                                     "num_point": count if counted else 0, "schema": schema, "query": tags},
                        "series": series}
        else:
            kept = [(k, v) for k, v in columns.items() if sum(v) > 0]  # 5.6: all-zero series are dropped
            rsp = {"start": fstart, "step": out_step, "count": count, "schema": schema, "query": p.get("ts_query"),
                   "max_points": limit, "end": end, "statistics": {},
                   "series": [{"label": k, "data": jsonable(v), "tags": tags} for k, v in kept]}
        return self._rc("OK", rsp)

    def _active(self, p: dict[str, str]) -> Response:
        if "ifid" not in p or int(p["ifid"]) not in self.interfaces:
            return self._rc("INVALID_INTERFACE", None)
        hosts = self.hosts.get(int(p["ifid"]), [])
        if p.get("mode") == "local":
            hosts = [h for h in hosts if h.local]
        per_page = int(p.get("perPage", 10))
        page = int(p.get("currentPage", 1))
        if p.get("all") == "true" and self._v >= (5, 6):
            per_page, page = -1, 0
        chosen = hosts if per_page < 0 else hosts[(page - 1) * per_page : page * per_page]
        data = [{"key": h.ip.replace(".", "__") + (f"@{h.vlan}" if h.vlan else ""), "ip": h.ip, "vlan": h.vlan,
                 "name": h.ip, "is_localhost": h.local, "bytes": {"total": 0, "sent": 0, "recvd": 0},
                 "thpt": {"pps": 0, "bps": 0}} for h in chosen]
        return self._rc("OK", {"perPage": per_page, "currentPage": page, "data": data, "sort": [[]]})

    def _consts(self, request: Request, p: dict[str, str]) -> Response:
        entity = p.get("query", "")
        if not entity:
            # invalid_args is sent but the script goes on and answers again: the body is not JSON.
            glued = json.dumps({"rc": -5, "rsp": [], "rc_str": "INVALID_ARGUMENTS", "rc_str_hr": "Invalid arguments"})
            glued += "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n"
            return Response(glued, 400, content_type="application/json")
        has_epochs = "epoch_begin" in p and "epoch_end" in p
        if entity == "iface" and not has_epochs:
            return self._error_page(request, "internal_error", "/usr/share/ntopng/scripts/lua/modules/timeseries/"
                                    "drivers/rrd.lua:827: attempt to compare nil with number")
        return self._rc("OK", catalog(entity) + self._top_entries(entity, p))

    def _top_entries(self, entity: str, p: dict[str, str]) -> list[dict[str, Any]]:
        """consts.lua's top: entries: one per stored series with an extra tag, updated within the window."""
        base = ENTITY_TAGS.get(entity)
        if base is None or "epoch_begin" not in p:
            return []
        out = []
        for (schema, values), stored in self.series.items():
            names = self.schema_tags[schema]
            if schema.split(":", 1)[0] != entity or len(names) != len(base) + 1 or names[: len(base)] != base:
                continue
            tags = dict(zip(names, values, strict=True))
            if tags["ifid"] != p.get("ifid", "0") or (entity == "host" and tags["host"] != p.get("host")):
                continue
            if stored.last_update < int(p["epoch_begin"]):
                continue
            extra = names[-1]
            out.append({"schema": f"top:{schema}", "query": f"{extra}:{tags[extra]}", "label": tags[extra],
                        "priority": 2, "measure_unit": "bps", "scale": "Traffic", "group": "Traffic Protocols",
                        "timeseries": {m: {"label": m} for m in stored.points}})
        return out


def _stats(values: Sequence[float], step: int, gauge: bool) -> dict[str, float | None]:
    """ts_common's statistics: nulls when nothing is known; `total` (sum * step) only for counters."""
    known = [v for v in values if v == v]
    if not known:
        out: dict[str, float | None] = {"average": None, "min_val": None, "max_val": None, "95th_percentile": None,
                                        "min_val_idx": 1, "max_val_idx": 1}
    else:
        ranked = sorted(known)
        out = {"average": sum(known) / len(known), "min_val": min(known), "max_val": max(known),
               "95th_percentile": ranked[int(0.95 * (len(ranked) - 1))],
               "min_val_idx": values.index(min(known)), "max_val_idx": values.index(max(known))}
    if not gauge:
        out["total"] = sum(known) * step if known else None
    return out


class QuickServer(HTTPServer):
    """Stops in a few milliseconds instead of half a second (serve_forever's default poll interval)."""

    def thread_target(self) -> None:
        assert self.server is not None
        self.server.serve_forever(poll_interval=0.01)


@pytest.fixture
def server() -> Iterator[HTTPServer]:
    # Threaded, so that concurrent requests really overlap (and can be counted).
    s = QuickServer(host="127.0.0.1", port=0, threaded=True)
    s.start()
    yield s
    s.clear()
    if s.is_running():
        s.stop()
