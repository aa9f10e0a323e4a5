"""HTTP client for ntopng's REST API v2; the ntopng source (`sources/ntopng.py`) uses it.

Only the I/O lives here: authentication, timeouts, retries, the JSON envelope and
the two answer shapes of ts.lua. The client evaluates nothing and keeps no alarm
state. The rules come from ntopng's source; docs/ntopng-rest.md quotes them:

* wrong or missing credentials are not an error code. ntopng answers
  `302 Found` to `/lua/login.lua`, so redirects are never followed;
* a Lua error (an unknown parameter, a missing `ifid`, a missing script) is a
  `302` to `/lua/http_status_code.lua?message=..&error_message=..`;
* every other answer is `{rc, rc_str, rc_str_hr, rsp}`, and `rc != 0` is an error.

One client may be shared by many threads: the session only reads its settings
after construction, the connection pool holds `concurrency` connections, and
counters are updated under a lock.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from rrdalarm.common.secrets import redact, resolve_secret
from rrdalarm.model.definitions import NtopngSettings

if TYPE_CHECKING:  # requests is imported when a client is made: commands that never ask ntopng skip it
    from http.cookiejar import CookiePolicy

    import requests

TS_PATH = "/lua/rest/v2/get/timeseries/ts.lua"
INTERFACES_PATH = "/lua/rest/v2/get/ntopng/interfaces.lua"
ACTIVE_HOSTS_PATH = "/lua/rest/v2/get/host/active.lua"
SCHEMAS_PATH = "/lua/rest/v2/get/timeseries/type/consts.lua"

# Hosts are paged explicitly because `all=true` only works from 5.6 on (in 5.0 it
# rewrote the paging fields after the fetch). The pages are large, so a normal
# install needs a single request.
HOSTS_PER_PAGE = 5000
MAX_HOST_PAGES = 200

SCHEMAS_WINDOW_S = 3600

_REDIRECTS = (301, 302, 303, 307, 308)
_MAX_REASON = 300


class NtopngError(Exception):
    """ntopng could not answer a request; str() is one line with the URL path and what went wrong.

    The message never contains a secret. `retryable` is true for failures that
    may go away on their own (timeouts, refused connections, 5xx answers).
    """

    def __init__(self, path: str, reason: str, *, status: int | None = None, retryable: bool = False,
                 unreachable: bool = False) -> None:
        reason = " ".join(reason.split())
        if len(reason) > _MAX_REASON:
            reason = reason[: _MAX_REASON - 1] + "…"
        super().__init__(f"ntopng {path}: {reason}")
        self.path = path
        self.reason = reason
        self.status = status
        self.retryable = retryable
        self.unreachable = unreachable


@dataclass(frozen=True)
class TsAnswer:
    """The points of one ts.lua answer.

    `labels[name][i]` is the point at `first + i * step`; None is unknown.
    `shape` says which answer it came from: "6" (6.x: `metadata`, `series[].id`,
    null for unknown points), "5" (5.x: `start`/`step`, `series[].label`), or ""
    when ntopng found nothing (unknown schema, tags or host; no file on disk).
    5.6 drops every series whose points sum to zero, so a 5.x answer may lack
    some labels, or all of them, while 6.x answers list every metric of the
    schema.

    How `first` is found: ts.lua reports the `start` that rrd_fetch returned,
    as `metadata.epoch_begin` (6.x) or `start` (5.x), and the series hold
    rrd_fetch's rows from the first one. rrdtool timestamps a row at the end
    of its interval, so the first row is at `start + step` (as in
    `rrdtool fetch`). So `first = epoch_begin + epoch_step` (6.x) and
    `first = start + step` (5.x). 6.2 and later fetch `epoch_begin - step ..
    epoch_end - step`, so for an aligned request values[0] sits at
    `epoch_begin` itself. 6.0 and 5.x fetch the raw range, so values[0] sits
    one step after it. 5.x also drops the last row.
    """

    first: int
    step: int
    labels: dict[str, list[float | None]] = field(default_factory=dict)
    shape: str = ""

    @property
    def found(self) -> bool:
        """True when ntopng knew the series (even if 5.6 dropped every label as all-zero)."""
        return self.shape != ""

    @property
    def may_drop_zero_series(self) -> bool:
        """True when a missing label may mean "all zero" (5.x), not "no such metric" (6.x)."""
        return self.shape == "5"


def _no_cookies() -> CookiePolicy:
    """Refuse every cookie: ntopng's 302 answers set session cookies that must not leak between threads."""
    from http.cookiejar import CookiePolicy  # with requests, when a client is made: not for every command

    class NoCookies(CookiePolicy):
        netscape = True
        rfc2965 = hide_cookie2 = False

        def set_ok(self, cookie: Any, request: Any) -> bool:
            return False

        def return_ok(self, cookie: Any, request: Any) -> bool:
            return False

        def domain_return_ok(self, domain: str, request: Any) -> bool:
            return False

        def path_return_ok(self, path: str, request: Any) -> bool:
            return False

    return NoCookies()


def _number(value: Any) -> float | None:
    """A point's value: numbers as float, null/NaN/anything else as unknown."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value) if not math.isnan(value) else None
    if isinstance(value, str):
        try:
            got = float(value)
        except ValueError:
            return None
        return got if not math.isnan(got) else None
    return None


def _lua_list(value: Any) -> list[Any]:
    """A Lua array as dkjson writes it: a JSON list, `{}` when empty, an object with "1".."n" when sparse."""
    if isinstance(value, list):
        return value
    if isinstance(value, dict):
        keyed = []
        for k, v in value.items():
            try:
                keyed.append((int(k), v))
            except (TypeError, ValueError):
                continue
        if not keyed:
            return []
        # Holes (nil in Lua) become unknown points so that indexes keep their times.
        out: list[Any] = [None] * max(k for k, _ in keyed)
        for k, v in keyed:
            if k >= 1:
                out[k - 1] = v
        return out
    return []


def _epoch(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return None
    try:
        return int(float(value))
    except ValueError:
        return None


def parse_ts_answer(rsp: Any, path: str = TS_PATH) -> TsAnswer:
    """A TsAnswer from ts.lua's `rsp`, either shape; NtopngError for a malformed answer."""
    if not isinstance(rsp, dict) or not rsp:
        return TsAnswer(0, 0)  # 5.x "not found": rsp = []
    meta = rsp.get("metadata")
    if isinstance(meta, dict) and meta:
        begin, step, key, shape = _epoch(meta.get("epoch_begin")), _epoch(meta.get("epoch_step")), "id", "6"
    elif "start" in rsp or "step" in rsp:
        begin, step, key, shape = _epoch(rsp.get("start")), _epoch(rsp.get("step")), "label", "5"
    else:
        return TsAnswer(0, 0)  # 6.x "not found": rsp = {"metadata": []}, no series
    if begin is None or step is None or step <= 0:
        raise NtopngError(path, f"malformed answer: start {begin!r}, step {step!r}")
    labels: dict[str, list[float | None]] = {}
    for serie in _lua_list(rsp.get("series")):
        if not isinstance(serie, dict):
            continue
        # Accept both spellings whatever the shape: a 5.x proxy or a 6.x backport may mix them.
        name = serie.get(key) or serie.get("id") or serie.get("label")
        if not isinstance(name, str) or not name:
            continue
        labels[name] = [_number(v) for v in _lua_list(serie.get("data"))]
    return TsAnswer(begin + step, step, labels, shape)


def ts_query(tags: Mapping[str, str] | Iterable[tuple[str, str]]) -> str:
    """`tag:value,tag:value` as ntopng's tsQueryToTags reads it."""
    items = tags.items() if isinstance(tags, Mapping) else tags
    return ",".join(f"{k}:{v}" for k, v in items)


def _connection_reason(exc: requests.ConnectionError) -> str:
    """A short, secret-free reason for a failed connection (requests' text holds the whole URL)."""
    text = str(exc)
    for needle, reason in (
        ("Connection refused", "connection refused"),
        ("Name or service not known", "host name not found"),
        ("nodename nor servname", "host name not found"),
        ("Temporary failure in name resolution", "host name not found"),
        ("No route to host", "no route to host"),
        ("Network is unreachable", "network unreachable"),
        ("Connection reset", "connection reset"),
        ("RemoteDisconnected", "connection closed without an answer"),
        ("Connection aborted", "connection closed without an answer"),
    ):
        if needle in text:
            return reason
    return "connection failed"


class NtopngClient:
    """The REST API v2 calls rrdalarm needs, with auth, timeouts and retries."""

    def __init__(self, settings: NtopngSettings, *, backoff: float = 0.2) -> None:
        """Raises SecretError when the token or password reference cannot be read."""
        self.base = settings.url.rstrip("/")
        self.timeout = settings.timeout
        self.retries = settings.retries
        self.backoff = backoff
        token = resolve_secret(settings.token, "[ntopng] token")
        password = resolve_secret(settings.password, "[ntopng] password")
        self._secrets = [token, password]
        import requests
        from requests.adapters import HTTPAdapter

        self.session = requests.Session()
        size = max(1, settings.concurrency)
        adapter = HTTPAdapter(pool_connections=1, pool_maxsize=size, max_retries=0)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.session.verify = settings.verify_tls
        self.session.cookies.set_policy(_no_cookies())
        self.session.headers["Accept"] = "application/json"
        if token:
            self.session.headers["Authorization"] = f"Token {token}"
        elif settings.user:
            self.session.auth = (settings.user, password or "")
        self._lock = threading.Lock()
        self.calls = 0  # API calls asked for (one per ts.lua, listing page, ...)
        self.http_requests = 0  # HTTP requests sent, retries included
        self._unreachable: NtopngError | None = None

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> NtopngClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------ API calls

    def timeseries(self, schema: str, tags: Mapping[str, str], begin: int, end: int, limit: int) -> TsAnswer:
        """Points of one schema and concrete query between `begin` and `end` (see TsAnswer for times).

        `limit` is ntopng's `max_num_points`: above it ntopng averages groups of
        points, so pass at least (end - begin) / step + 2 to keep the native step.
        """
        # Only names ntopng's http_lint knows: an unknown one fails the script.
        # Integers only: the validators run tostring() and a "1.7e9" would be dropped silently.
        body = {"ts_schema": schema, "ts_query": ts_query(tags), "epoch_begin": int(begin),
                "epoch_end": int(end), "limit": int(limit)}
        return parse_ts_answer(self._call("POST", TS_PATH, json_body=body))

    def interfaces(self) -> list[tuple[int, str]]:
        """(ifid, ifname) of every interface."""
        rsp = self._call("GET", INTERFACES_PATH)
        if not isinstance(rsp, list):
            raise self._error(INTERFACES_PATH, "malformed answer: rsp is not a list of interfaces")
        out = []
        for item in rsp:
            ifid = _epoch(item.get("ifid")) if isinstance(item, dict) else None
            if ifid is None:
                continue
            out.append((ifid, str(item.get("ifname") or item.get("name") or ifid)))
        return out

    def active_hosts(self, ifid: int) -> list[str]:
        """Local hosts now in ntopng's memory on `ifid`, as ts_query host values (`ip` or `ip@vlan`)."""
        hosts: list[str] = []
        seen: set[str] = set()
        for page in range(1, MAX_HOST_PAGES + 1):
            rsp = self._call("GET", ACTIVE_HOSTS_PATH, params={
                "ifid": ifid, "mode": "local", "currentPage": page, "perPage": HOSTS_PER_PAGE})
            data = rsp.get("data") if isinstance(rsp, dict) else None
            if data is None and isinstance(rsp, dict) and not rsp:
                data = []
            if not isinstance(data, list):
                raise self._error(ACTIVE_HOSTS_PATH, "malformed answer: rsp.data is not a list of hosts")
            added = 0
            for rec in data:
                key = _host_key(rec)
                if key and key not in seen:
                    seen.add(key)
                    hosts.append(key)
                    added += 1
            # A short page is the last. A page with nothing new means the server ignores paging.
            if len(data) < HOSTS_PER_PAGE or added == 0:
                break
        return hosts

    def schemas(self, entity: str, ifid: int = 0) -> list[str]:
        """Timeseries schemas ntopng offers for an entity (host, iface, ...); needs ntopng 5.6 or later.

        This is ntopng's catalog: a schema may be listed and still have no data.
        """
        # The window only picks the top: entries (dropped below), but 6.2 fails on
        # query=iface without it (rrd.lua:827: attempt to compare nil with number).
        end = int(time.time())
        params = {"query": entity, "ifid": ifid, "epoch_begin": end - SCHEMAS_WINDOW_S, "epoch_end": end}
        try:
            rsp = self._call("GET", SCHEMAS_PATH, params=params)
        except NtopngError as exc:
            if exc.status == 404:
                raise self._error(SCHEMAS_PATH, f"{exc.reason}; the schema catalog needs ntopng 5.6 or later",
                                  status=404) from None
            raise
        if not isinstance(rsp, list):
            rsp = _lua_list(rsp)
        out: list[str] = []
        for item in rsp:
            name = item.get("schema") if isinstance(item, dict) else None
            # top: entries are lists of top-N series, not plain schemas (docs/ntopng-rest.md §1.4).
            if isinstance(name, str) and name and not name.startswith("top:") and name not in out:
                out.append(name)
        return out

    # ------------------------------------------------------------ plumbing

    def _error(self, path: str, reason: str, **kw: Any) -> NtopngError:
        return NtopngError(path, redact(reason, self._secrets), **kw)

    def _call(self, method: str, path: str, *, params: Mapping[str, Any] | None = None,
              json_body: Mapping[str, Any] | None = None) -> Any:
        """One API call with retries; returns `rsp` of a `rc == 0` answer or raises NtopngError."""
        with self._lock:
            self.calls += 1
            down = self._unreachable
        if down is not None:
            # Refused once after every retry in this check: do not wait the backoff again for each series.
            raise self._error(path, down.reason, unreachable=True)
        last: NtopngError | None = None
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(self.backoff * 2 ** (attempt - 1))
            try:
                return self._once(method, path, params, json_body)
            except NtopngError as exc:
                if not exc.retryable:
                    raise
                last = exc
        assert last is not None
        if last.unreachable:
            with self._lock:
                self._unreachable = last
        tries = self.retries + 1
        raise self._error(path, f"{last.reason} ({tries} attempt{'s' if tries > 1 else ''})",
                          status=last.status, unreachable=last.unreachable)

    def _once(self, method: str, path: str, params: Mapping[str, Any] | None,
              json_body: Mapping[str, Any] | None) -> Any:
        import requests

        with self._lock:
            self.http_requests += 1
        try:
            resp = self.session.request(method, self.base + path, params=params, json=json_body,
                                        timeout=self.timeout, allow_redirects=False)
        except requests.exceptions.SSLError as exc:
            hint = " (set [ntopng] verify_tls = false for a self-signed certificate)" \
                if "CERTIFICATE_VERIFY_FAILED" in str(exc) else ""
            raise self._error(path, f"TLS handshake failed{hint}") from None
        except requests.exceptions.ConnectTimeout:
            raise self._error(path, f"no connection within {self.timeout:g} s", retryable=True) from None
        except requests.Timeout:
            raise self._error(path, f"no answer within {self.timeout:g} s", retryable=True) from None
        except requests.ConnectionError as exc:
            reason = _connection_reason(exc)
            raise self._error(path, f"cannot reach ntopng ({reason})", retryable=True,
                              unreachable=reason == "connection refused") from None
        except requests.RequestException as exc:
            raise self._error(path, f"request failed ({type(exc).__name__})") from None
        try:
            return self._envelope(path, resp)
        finally:
            resp.close()

    def _envelope(self, path: str, resp: requests.Response) -> Any:
        status = resp.status_code
        if status in _REDIRECTS:
            raise self._redirect_error(path, status, resp.headers.get("Location", ""))
        try:
            doc = resp.json()
        except ValueError:
            doc = None
        if not isinstance(doc, dict) or "rc" not in doc:
            if status >= 500:
                raise self._error(path, f"HTTP {status}", status=status, retryable=True)
            if status == 403:
                raise self._error(path, "HTTP 403 (ntopng is starting or stopping)", status=status)
            if status != 200:
                raise self._error(path, f"HTTP {status}", status=status)
            raise self._error(path, "HTTP 200 but not an ntopng REST answer (no JSON rc)", status=status)
        rc = doc.get("rc")
        if rc != 0:
            what = str(doc.get("rc_str") or "error")
            human = doc.get("rc_str_hr")
            detail = f" ({human})" if isinstance(human, str) and human and human != what else ""
            raise self._error(path, f"rc {rc} {what}{detail}, HTTP {status}", status=status,
                              retryable=status >= 500)
        if status >= 500:
            raise self._error(path, f"HTTP {status}", status=status, retryable=True)
        return doc.get("rsp")

    def _redirect_error(self, path: str, status: int, location: str) -> NtopngError:
        where = urlsplit(location)
        if where.path.endswith("/lua/login.lua"):
            return self._error(path, "authentication failed (redirected to the login page)", status=status)
        if where.path.endswith("/lua/change_password.lua"):
            return self._error(path, "the ntopng user must change its default password first "
                                     "(redirected to change_password.lua)", status=status)
        if where.path.endswith("/lua/http_status_code.lua"):
            query = parse_qs(where.query)
            message = (query.get("message") or [""])[0]
            detail = (query.get("error_message") or [""])[0]
            if message == "not_found":
                return self._error(path, "no such script on this ntopng (redirected to the error page: not_found)",
                                   status=404)
            text = f"{message}: {detail}" if detail else message or "unknown error"
            return self._error(path, f"script failed (redirected to the error page: {text})", status=status)
        return self._error(path, f"unexpected redirect (HTTP {status}) to {where.path or '?'}", status=status)


def _host_key(rec: Any) -> str | None:
    """ts_query host value of one active.lua record: `ip`, or `ip@vlan` when vlan > 0."""
    if not isinstance(rec, dict):
        return None
    ip = rec.get("ip")
    if not isinstance(ip, str) or not ip:
        key = rec.get("key")
        return key if isinstance(key, str) and key else None
    vlan = _epoch(rec.get("vlan")) or 0
    return f"{ip}@{vlan}" if vlan > 0 else ip
