"""Settings and thresholds: the model, TOML load/save and validation with locations.

First step of the data flow (config -> engine -> store/actions -> report).
Every error a user can make here is a ConfigError naming file, line and field.
"""

from __future__ import annotations

import math
import os
import re
import tomllib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import tomlkit

from rrdalarm import timespec
from rrdalarm.evaluate import Direction
from rrdalarm.fileutil import atomic_write_text, split_lines
from rrdalarm.secrets import SecretRef, secret_problem
from rrdalarm.sources.rrd_index import GlobError, compile_glob

CONSOLIDATION_FUNCTIONS = ("AVERAGE", "MIN", "MAX", "LAST")
SETTINGS_ENV = "RRDALARM_SETTINGS"
RRDCACHED_ENV = "RRDCACHED_ADDRESS"  # librrd's own variable, honoured the same way
SETTINGS_SEARCH = (Path("rrdalarm.toml"), Path("/etc/rrdalarm/rrdalarm.toml"))
# Any time works here: it only checks that start comes before end for every "now".
_PROBE_NOW = 2_000_000_000


class ConfigError(Exception):
    """A user mistake in a settings or thresholds file, with where it is."""

    def __init__(
        self, path: Path | str | None, message: str, line: int | None = None, field: str | None = None
    ) -> None:
        super().__init__(message)
        self.path = str(path) if path is not None else None
        self.message = message
        self.line = line
        self.field = field

    def __str__(self) -> str:
        where = self.path or ""
        if self.line is not None:
            where += f":{self.line}"
        what = f"field '{self.field}': " if self.field else ""
        return f"{where}: {what}{self.message}" if where else f"{what}{self.message}"


@dataclass(frozen=True)
class ActionSpec:
    """One action of a threshold: the plugin name and its parameters."""

    type: str
    params: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Location:
    """Where a threshold was defined, for messages."""

    path: str
    line: int | None = None

    def __str__(self) -> str:
        return f"{self.path}:{self.line}" if self.line is not None else self.path


@dataclass(frozen=True)
class Threshold:
    """One configured threshold (DESIGN section 2)."""

    id: int
    name: str
    type: Direction
    value: float
    glob: str = ""
    source: str = "rrd"
    ds: tuple[str, ...] = ()
    cf: str = "AVERAGE"
    repetitions: int = 0
    start: str = "now-1h"
    end: str = "now"
    actions: tuple[ActionSpec, ...] = ()
    rearm: int = 0
    enabled: bool = True
    schema: str = ""  # ntopng: timeseries schema, e.g. host:traffic
    query: str = ""  # ntopng: tag:value list, e.g. ifid:0,host:*
    location: Location | None = field(default=None, compare=False)

    @property
    def action_names(self) -> str:
        return ", ".join(a.type for a in self.actions) or "None"


@dataclass(frozen=True)
class SmtpSettings:
    """The mail server of the `email` action."""

    host: str = "localhost"
    port: int = 25
    security: str = "none"  # none, starttls or ssl
    username: str = ""
    password: SecretRef | None = None
    sender: str = "rrdalarm@localhost"


@dataclass(frozen=True)
class DeliverySettings:
    """How the outbox sends: per-attempt timeout and retries with exponential backoff."""

    timeout: float = 10.0
    max_attempts: int = 8
    backoff: float = 30.0
    max_backoff: float = 3600.0


@dataclass(frozen=True)
class NtopngSettings:
    """The ntopng instance of `source = "ntopng"` thresholds (REST API v2)."""

    url: str = ""
    token: SecretRef | None = None  # sent as "Authorization: Token …"
    user: str = ""
    password: SecretRef | None = None  # HTTP basic auth, when there is no token
    timeout: float = 10.0
    concurrency: int = 8
    retries: int = 2
    verify_tls: bool = True


@dataclass(frozen=True)
class ServiceSettings:
    """`rrdalarm serve`: where it listens, how often it checks and delivers, how /start is guarded."""

    listen: str = "127.0.0.1:8080"
    check_interval: float = 60.0
    deliver_interval: float = 30.0
    min_start_interval: float = 60.0
    api_token: SecretRef | None = None
    thresholds_dir: Path | None = None
    """The only folder /start?config=NAME may take a thresholds file from (unset: config= is refused)."""
    request_timeout: float = 30.0
    """Seconds a connection may stay silent (a half-sent request included) before it is closed."""
    connection_limit: int = 1000
    session_idle: float = 43200.0
    """Seconds a logged-in session may stay unused before it ends (12 h)."""

    @property
    def host_port(self) -> tuple[str, int]:
        host, _, port = self.listen.rpartition(":")
        return host.strip("[]") or "127.0.0.1", int(port)


@dataclass(frozen=True)
class Settings:
    """Where things live and how a check runs."""

    path: Path | None = None
    rrd_root: Path | None = None
    thresholds: Path | None = None
    data_dir: Path = field(default_factory=lambda: default_data_dir())
    log_dir: Path | None = None
    database_url: str = ""
    workers: int = 0
    lock_wait: float = 30.0
    scripts_dir: Path | None = None
    smtp: SmtpSettings = field(default_factory=SmtpSettings)
    delivery: DeliverySettings = field(default_factory=DeliverySettings)
    service: ServiceSettings = field(default_factory=ServiceSettings)
    ntopng: NtopngSettings = field(default_factory=NtopngSettings)
    rrdcached: str | None = None  # None: not set, $RRDCACHED_ADDRESS decides; "": read the files

    @property
    def rrdcached_address(self) -> str:
        """The rrdcached that RRD reads go through ("" for none): the setting, else $RRDCACHED_ADDRESS."""
        if self.rrdcached is not None:
            return self.rrdcached
        return os.environ.get(RRDCACHED_ENV, "").strip()

    @property
    def config_dir(self) -> Path:
        """Where /start may find alternative thresholds files: the settings file's folder."""
        return self.path.resolve().parent if self.path else Path.cwd()

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'rrdalarm.db'}"

    @property
    def logs(self) -> Path:
        return self.log_dir or self.data_dir / "log"


def default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "rrdalarm"


# ---------------------------------------------------------------- locating lines

_TABLE_RE = re.compile(r"^\s*\[\[\s*threshold\s*\]\]\s*(#.*)?$")
_SUBTABLE_RE = re.compile(r"^\s*\[\[\s*threshold\s*\.\s*action\s*\]\]\s*(#.*)?$")
_ANY_TABLE_RE = re.compile(r"^\s*\[")
_KEY_RE = re.compile(r"""^\s*(?:"([^"]+)"|'([^']+)'|([A-Za-z0-9_-]+))\s*=""")


def top_level_line(text: str, key: str) -> int | None:
    """Line of a top-level `key = ...`, `[key]` or `[[key]]` (the first one), for messages."""
    header = re.compile(r"^\s*\[{1,2}\s*" + re.escape(key) + r"\s*[\].]")
    in_table = False
    for i, ln in enumerate(split_lines(text)):
        if header.match(ln):
            return i + 1
        if _ANY_TABLE_RE.match(ln):
            in_table = True
            continue
        m = _KEY_RE.match(ln)
        if m and not in_table and (m.group(1) or m.group(2) or m.group(3)) == key:
            return i + 1
    return None


class _Lines:
    """Finds the line of the n-th [[threshold]] table and of keys inside it.

    tomllib gives no positions, so lines are recovered from the text; this is
    only used for messages, never for values.
    """

    def __init__(self, text: str) -> None:
        self.lines = split_lines(text)
        self.tables = [i + 1 for i, ln in enumerate(self.lines) if _TABLE_RE.match(ln)]

    def table(self, index: int) -> int | None:
        return self.tables[index] if index < len(self.tables) else None

    def _key_in(self, start: int | None, key: str, sub_index: int | None) -> int | None:
        """Line of `key` in the table starting at line `start` (or in its sub_index-th action)."""
        if start is None:
            return None
        want = -1 if sub_index is None else sub_index
        sub = -1
        for i in range(start, len(self.lines)):
            ln = self.lines[i]
            if _TABLE_RE.match(ln):
                break
            if _SUBTABLE_RE.match(ln):
                sub += 1
                if sub == want and not key:
                    return i + 1
                continue
            if _ANY_TABLE_RE.match(ln):
                break
            m = _KEY_RE.match(ln)
            if m and key and sub == want and (m.group(1) or m.group(2) or m.group(3)) == key:
                return i + 1
        return None

    def key(self, index: int, key: str) -> int | None:
        return self._key_in(self.table(index), key, None) or self.table(index)

    def action(self, index: int, sub: int, key: str = "") -> int | None:
        return self._key_in(self.table(index), key, sub) or self._key_in(self.table(index), "", sub)


# ---------------------------------------------------------------- validation

Locate = Callable[[str], int | None]


def _int(raw: Any, name: str, fail: Callable[[str, str], ConfigError], minimum: int = 0) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int):
        if isinstance(raw, float) and raw.is_integer():
            raw = int(raw)
        else:
            raise fail(name, f"must be a whole number, not {raw!r}")
    if raw < minimum:
        raise fail(name, f"must be {minimum} or more, not {raw}")
    return int(raw)


# Threshold ids are INTEGER columns: 32 bits in PostgreSQL, the smallest of the supported databases.
MAX_ID = 2**31 - 1


def threshold_from_dict(
    raw: Mapping[str, Any],
    path: str,
    locate: Locate = lambda _key: None,
    locate_action: Callable[[int, str], int | None] = lambda _i, _key: None,
    sources: Sequence[str] = ("rrd",),
) -> Threshold:
    """Validate one threshold table; the single rule set the CLI, loader and web form share."""

    def fail(name: str, message: str) -> ConfigError:
        ident = raw.get("id")
        prefix = f"threshold {ident}: " if isinstance(ident, int) and not isinstance(ident, bool) else ""
        return ConfigError(path, prefix + message, locate(name), name)

    known = {
        "id", "name", "source", "glob", "ds", "cf", "type", "value", "repetitions",
        "start", "end", "rearm", "enabled", "action", "schema", "query", "label",
    }
    for key in raw:
        if key not in known:
            raise fail(key, f"unknown field (known: {', '.join(sorted(known))})")
    if "id" not in raw:
        raise ConfigError(path, "threshold without an 'id'", locate("id"), "id")
    ident = _int(raw["id"], "id", fail)
    if ident > MAX_ID:
        raise fail("id", f"must be at most {MAX_ID} (the largest id every supported database stores), not {ident}")

    source = raw.get("source", "rrd")
    if source not in sources:
        raise fail("source", f"unknown source {source!r} (available: {', '.join(sources)})")

    glob = raw.get("glob", "")
    schema = raw.get("schema", "")
    query = raw.get("query", "")
    if source == "rrd":
        if not isinstance(glob, str) or not glob.strip():
            raise fail("glob", "an RRD threshold needs a non-empty glob relative to the RRD root")
        problem = glob_problem(glob)
        if problem:
            raise fail("glob", problem)
        for key in ("schema", "query", "label"):
            if key in raw:
                raise fail(key, f"'{key}' belongs to ntopng thresholds (source = \"ntopng\")")
    elif source == "ntopng":
        if "glob" in raw:
            raise fail("glob", "an ntopng threshold has schema and query, not a glob")
        if not isinstance(schema, str) or not re.fullmatch(r"[A-Za-z0-9_]+:[A-Za-z0-9_:]+", schema):
            raise fail("schema", f"must be an ntopng timeseries schema such as 'host:traffic', not {schema!r}")
        problem = ntopng_query_problem(query)
        if problem:
            raise fail("query", problem)

    if source == "ntopng" and "label" in raw:
        if "ds" in raw:
            raise fail("label", "give 'label' (ntopng) or 'ds' (RRD), not both")
        ds_raw = raw["label"]
    else:
        ds_raw = raw.get("ds", [])
    if isinstance(ds_raw, str):
        ds_raw = [ds_raw]
    if not isinstance(ds_raw, list) or not all(isinstance(d, str) and d for d in ds_raw):
        what = "label", "must be a list of series labels such as 'bytes_sent'"
        raise fail(*(what if source == "ntopng" else ("ds", "must be a list of data source names")))
    twice = next((d for i, d in enumerate(ds_raw) if d in ds_raw[:i]), None)
    if twice is not None:
        # Both would be the same series, recorded twice in one check.
        raise fail("label" if "label" in raw else "ds", f"{twice!r} is listed twice")

    cf = raw.get("cf", "AVERAGE")
    if not isinstance(cf, str) or cf.upper() not in CONSOLIDATION_FUNCTIONS:
        raise fail("cf", f"must be one of {', '.join(CONSOLIDATION_FUNCTIONS)}, not {cf!r}")

    kind = raw.get("type")
    if not isinstance(kind, str) or kind.lower() not in ("above", "below"):
        raise fail("type", f"must be 'above' or 'below', not {kind!r}")

    value = raw.get("value")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise fail("value", f"must be a finite number, not {value!r}")

    windows = {}
    for name, default in (("start", "now-1h"), ("end", "now")):
        spec = raw.get(name, default)
        if isinstance(spec, int) and not isinstance(spec, bool):
            spec = str(spec)
        if not isinstance(spec, str):
            raise fail(name, f"must be an AT-style time such as 'now-1h', not {spec!r}")
        try:
            timespec.validate(spec)
        except timespec.TimeSpecError as exc:
            raise fail(name, str(exc)) from None
        windows[name] = spec
    try:
        timespec.resolve_window(windows["start"], windows["end"], _PROBE_NOW)
    except timespec.TimeSpecError as exc:
        raise fail("start", str(exc)) from None

    enabled = raw.get("enabled", True)
    if not isinstance(enabled, bool):
        raise fail("enabled", f"must be true or false, not {enabled!r}")

    name = raw.get("name", "")
    if not isinstance(name, str):
        raise fail("name", f"must be text, not {name!r}")
    if "\x00" in name:
        raise fail("name", "contains a NUL character (databases such as PostgreSQL cannot store it)")

    actions_raw = raw.get("action", [])
    if isinstance(actions_raw, Mapping):
        actions_raw = [actions_raw]
    if not isinstance(actions_raw, list):
        raise fail("action", "must be a list of [[threshold.action]] tables")
    actions = []
    for i, spec in enumerate(actions_raw):
        if not isinstance(spec, Mapping) or not isinstance(spec.get("type"), str) or not spec["type"]:
            raise ConfigError(
                path, f"threshold {ident}: action {i + 1} needs a 'type' naming the action",
                locate_action(i, "type"), "action.type",
            )
        params = {k: v for k, v in spec.items() if k != "type"}
        actions.append(ActionSpec(type=spec["type"], params=params))

    return Threshold(
        id=ident,
        name=name.strip() or f"threshold {ident}",
        source=source,
        glob=glob.strip() if isinstance(glob, str) else "",
        ds=tuple(ds_raw),
        cf=cf.upper(),
        type=Direction(kind.lower()),
        value=float(value),
        repetitions=_int(raw.get("repetitions", 0), "repetitions", fail),
        start=windows["start"],
        end=windows["end"],
        actions=tuple(actions),
        rearm=_int(raw.get("rearm", 0), "rearm", fail),
        enabled=enabled,
        schema=schema if source == "ntopng" else "",
        query=query.replace(" ", "") if source == "ntopng" else "",
        location=Location(path, locate("id")),
    )


def ntopng_query_problem(query: object) -> str | None:
    """Why `query` is not an ntopng ts_query (tag:value,... with * allowed as a value), or None."""
    if not isinstance(query, str) or not query.strip():
        return "must be an ntopng ts_query such as 'ifid:0,host:*'"
    tags = [part.strip() for part in query.split(",")]
    names = []
    for tag in tags:
        name, sep, value = tag.partition(":")
        if not sep or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name) or not value:
            return f"{tag!r} is not tag:value (as in 'ifid:0,host:192.168.1.1')"
        if any(c in value for c in " \"'&;") or ("*" in value and value != "*"):
            return f"{tag!r}: a value is literal or exactly '*'"
        names.append(name)
    if "ifid" not in names:
        return "needs an 'ifid' tag (ntopng requires it), e.g. 'ifid:0,host:*'"
    if len(set(names)) != len(names):
        return "a tag appears twice"
    return None


def glob_problem(glob: str) -> str | None:
    """Why a glob may not be used (it must stay inside the RRD root), or None."""
    if "\x00" in glob:
        return "contains a NUL character"
    if glob.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", glob):
        return f"{glob!r} is absolute; globs are relative to the RRD root"
    if any(part == ".." for part in PurePosixPath(glob).parts):
        return f"{glob!r} contains '..'; globs cannot leave the RRD root"
    for part in PurePosixPath(glob).parts:
        if "**" in part and part != "**":
            return f"'**' must be a whole path component in {glob!r} (as in 'hosts/**/bytes.rrd')"
    try:
        compile_glob(glob)  # the matcher's own compilation: what passes here, every check can match
    except GlobError as exc:
        return str(exc)
    return None


def check_unique_ids(thresholds: Iterable[Threshold], path: str) -> None:
    seen: dict[int, Threshold] = {}
    for t in thresholds:
        if t.id in seen:
            first = seen[t.id].location
            line = t.location.line if t.location else None
            raise ConfigError(path, f"duplicate threshold id {t.id} (first defined at {first})", line, "id")
        seen[t.id] = t


def parse_thresholds_toml(text: str, path: str, sources: Sequence[str] = ("rrd",)) -> list[Threshold]:
    """Parse the TOML thresholds file."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        line = _toml_error_line(str(exc))
        raise ConfigError(path, f"not valid TOML: {exc}", line) from None
    extra = [k for k in data if k != "threshold"]
    if extra:
        raise ConfigError(path, f"unknown top-level key {extra[0]!r} (thresholds are [[threshold]] tables)",
                          top_level_line(text, extra[0]), extra[0])
    tables = data.get("threshold", [])
    if not isinstance(tables, list):
        raise ConfigError(path, "'threshold' must be an array of tables: write [[threshold]]", None, "threshold")
    lines = _Lines(text)
    out = []
    for index, table in enumerate(tables):
        out.append(
            threshold_from_dict(
                table,
                path,
                locate=lambda key, i=index: lines.key(i, key),  # type: ignore[misc]
                locate_action=lambda sub, key, i=index: lines.action(i, sub, key),  # type: ignore[misc]
                sources=sources,
            )
        )
    check_unique_ids(out, path)
    return out


def _toml_error_line(message: str) -> int | None:
    m = re.search(r"line (\d+)", message)
    return int(m.group(1)) if m else None


def is_legacy_text(text: str) -> bool:
    """A legacy rrdAlarmConfig.txt has rows of ten tab (or space) separated fields, not TOML."""
    from rrdalarm.legacy import FIELDS, split_fields

    for line in split_lines(text):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if len(split_fields(line)) == len(FIELDS) and not stripped.startswith("["):
            return True
        if stripped.startswith("[") or "=" in stripped.split("#", 1)[0]:
            return False
        return len(stripped.split("\t")) >= 2 or len(stripped.split()) >= 8
    return False


def load_thresholds(path: Path, sources: Sequence[str] | None = None) -> list[Threshold]:
    """Load a thresholds file, TOML or legacy (detected by content); `sources` default: the installed ones."""
    from rrdalarm.legacy import parse_legacy

    if sources is None:
        from rrdalarm.plugins import source_plugins

        sources = sorted(source_plugins())
    text = read_config_text(path)
    if is_legacy_text(text):
        return parse_legacy(text, str(path), sources=sources)
    return parse_thresholds_toml(text, str(path), sources=sources)


def read_config_text(path: Path) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(path, "file not found") from None
    except IsADirectoryError:
        raise ConfigError(path, "is a directory, not a file") from None
    except PermissionError:
        raise ConfigError(path, "permission denied") from None
    except OSError as exc:  # a name too long, a loop of symlinks, an I/O error
        raise ConfigError(path, f"cannot be read: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(path, f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None


# ---------------------------------------------------------------- writing TOML

def threshold_to_table(t: Threshold) -> tomlkit.items.Table:
    """A tomlkit table for one threshold, defaults left out to keep files short."""
    table = tomlkit.table()
    table.add("id", t.id)
    table.add("name", t.name)
    if t.source != "rrd":
        table.add("source", t.source)
    if t.source == "ntopng":
        table.add("schema", t.schema)
        table.add("query", t.query)
        if t.ds:
            table.add("label", list(t.ds))
    else:
        table.add("glob", t.glob)
        if t.ds:
            table.add("ds", list(t.ds))
    if t.cf != "AVERAGE":
        table.add("cf", t.cf)
    table.add("type", t.type.value)
    table.add("value", t.value)
    table.add("repetitions", t.repetitions)
    table.add("start", t.start)
    table.add("end", t.end)
    table.add("rearm", t.rearm)
    if not t.enabled:
        table.add("enabled", False)
    if t.actions:
        actions = tomlkit.aot()
        for a in t.actions:
            at = tomlkit.table()
            at.add("type", a.type)
            for k, v in a.params.items():
                at.add(k, v)
            actions.append(at)
        table.add("action", actions)
    return table


def thresholds_to_toml(thresholds: Sequence[Threshold], header: Sequence[str] = ()) -> str:
    doc = tomlkit.document()
    for line in header:
        doc.add(tomlkit.comment(line))
    if header:
        doc.add(tomlkit.nl())
    aot = tomlkit.aot()
    for t in thresholds:
        aot.append(threshold_to_table(t))
    doc.add("threshold", aot)
    return tomlkit.dumps(doc)


def save_thresholds(path: Path, thresholds: Sequence[Threshold], header: Sequence[str] = ()) -> None:
    atomic_write_text(path, thresholds_to_toml(thresholds, header))


# ---------------------------------------------------------------- settings

_SETTINGS_KEYS = {
    "rrd_root", "thresholds", "data_dir", "log_dir", "database_url", "workers", "lock_wait", "scripts_dir",
    "smtp", "delivery", "service", "ntopng", "rrdcached",
}
# As rrdtool's --daemon takes it: unix:/absolute/path, /absolute/path, host, host:port, [v6 address]:port.
_RRDCACHED_RE = re.compile(r"(?:unix:)?/\S*|(?P<host>[A-Za-z0-9_.-]+|\[[0-9A-Fa-f:.]+\])(?::(?P<port>\d{1,5}))?")


def rrdcached_problem(value: object) -> str | None:
    """Why `value` is not an rrdcached address, or None; "" (no daemon) is fine."""
    m = _RRDCACHED_RE.fullmatch(value) if isinstance(value, str) else None
    if value == "" or (m and 0 < int(m.group("port") or 42217) < 65536):
        return None
    return f"must be an rrdcached address such as unix:/run/rrdcached.sock or host:42217, not {value!r}"
_NTOPNG_KEYS = {"url", "token", "user", "password", "timeout", "concurrency", "retries", "verify_tls"}
_SERVICE_KEYS = {"listen", "check_interval", "deliver_interval", "min_start_interval", "api_token",
                 "thresholds_dir", "request_timeout", "connection_limit", "session_idle"}
_SMTP_KEYS = {"host", "port", "security", "username", "password", "sender"}
_DELIVERY_KEYS = {"timeout", "max_attempts", "backoff", "max_backoff"}


def find_settings_file(explicit: Path | None) -> Path | None:
    """The settings file to use: explicit, $RRDALARM_SETTINGS, ./rrdalarm.toml, /etc/rrdalarm."""
    if explicit is not None:
        return explicit
    env = os.environ.get(SETTINGS_ENV)
    if env:
        return Path(env)
    for candidate in SETTINGS_SEARCH:
        if candidate.is_file():
            return candidate
    return None


def path_length_problem(p: Path) -> str | None:
    """Why `p` cannot name a file on Linux (PATH_MAX 4096 with its NUL, NAME_MAX 255 per component), or None."""
    total, longest = len(os.fsencode(p)), max(len(os.fsencode(part)) for part in p.parts)
    if total > 4095 or longest > 255:
        return f"path is too long for a file name ({total} bytes, longest component {longest}; at most 4095 and 255)"
    return None


def load_settings(path: Path | None) -> Settings:
    """Read a settings file; with None, defaults only."""
    if path is None:
        return Settings()
    text = read_config_text(path)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(path, f"not valid TOML: {exc}", _toml_error_line(str(exc))) from None
    def line_of(key: str) -> int | None:
        return top_level_line(text, key)

    def fail(key: str, message: str) -> ConfigError:
        return ConfigError(path, message, line_of(key), key)

    for key in data:
        if key not in _SETTINGS_KEYS:
            raise fail(key, f"unknown setting (known: {', '.join(sorted(_SETTINGS_KEYS))})")
    base = Path(path).resolve().parent

    def path_value(key: str) -> Path | None:
        raw = data.get(key)
        if raw is None or raw == "":
            return None
        if not isinstance(raw, str):
            raise fail(key, f"must be a path, not {raw!r}")
        if "\x00" in raw:
            raise fail(key, "contains a NUL character, which no file name can hold")
        p = Path(os.path.expanduser(raw))
        p = p if p.is_absolute() else base / p
        problem = path_length_problem(p)
        if problem:
            raise fail(key, problem)
        return p

    database_url = data.get("database_url", "")
    if not isinstance(database_url, str) or "\x00" in database_url or (
        database_url and not re.match(r"[A-Za-z][\w+.-]*://", database_url)
    ):
        raise fail("database_url", "must be an SQLAlchemy URL such as sqlite:////var/lib/rrdalarm/rrdalarm.db")
    workers = data.get("workers", 0)
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 0:
        raise fail("workers", f"must be 0 (one per core) or a positive number, not {workers!r}")
    lock_wait = data.get("lock_wait", 30)
    if isinstance(lock_wait, bool) or not isinstance(lock_wait, (int, float)) or lock_wait < 0:
        raise fail("lock_wait", f"must be a number of seconds, not {lock_wait!r}")
    smtp = _table(data, "smtp", _SMTP_KEYS, fail)
    smtp_security = smtp.get("security", "none")
    if smtp_security not in ("none", "starttls", "ssl"):
        raise fail("security", f"[smtp] security must be none, starttls or ssl, not {smtp_security!r}")
    for key in ("host", "username", "sender"):
        if key in smtp and not isinstance(smtp[key], str):
            raise fail(key, f"[smtp] {key} must be text")
    smtp_port = smtp.get("port", 465 if smtp_security == "ssl" else 25)
    if isinstance(smtp_port, bool) or not isinstance(smtp_port, int) or not 0 < smtp_port < 65536:
        raise fail("port", f"[smtp] port must be a TCP port number, not {smtp_port!r}")
    if "password" in smtp and secret_problem(smtp["password"]):
        raise fail("password", f"[smtp] password {secret_problem(smtp['password'])}")
    delivery = _table(data, "delivery", _DELIVERY_KEYS, fail)
    for key in _DELIVERY_KEYS:
        v = delivery.get(key)
        if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or v <= 0):
            raise fail(key, f"[delivery] {key} must be a positive number, not {v!r}")
    defaults = DeliverySettings()
    service = _table(data, "service", _SERVICE_KEYS, fail)
    listen = service.get("listen", ServiceSettings.listen)
    if not isinstance(listen, str) or not re.fullmatch(r"(\[[0-9a-fA-F:]+\]|[\w.-]*):\d{1,5}", listen):
        raise fail("listen", f"[service] listen must be HOST:PORT such as 127.0.0.1:8080, not {listen!r}")
    for key in ("check_interval", "deliver_interval", "min_start_interval"):
        v = service.get(key)
        if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0):
            raise fail(key, f"[service] {key} must be a number of seconds, not {v!r}")
    if "api_token" in service and secret_problem(service["api_token"]):
        raise fail("api_token", f"[service] api_token {secret_problem(service['api_token'])}")
    token = service.get("api_token")
    if isinstance(token, dict) and "file" in token and not os.path.isabs(token["file"]):
        token = {"file": str(base / token["file"])}
    nt = _table(data, "ntopng", _NTOPNG_KEYS, fail)
    nt_url = nt.get("url", "")
    if not isinstance(nt_url, str) or (nt_url and not re.match(r"^https?://[^\s/]+", nt_url)):
        raise fail("url", f"[ntopng] url must be http(s)://host[:port], not {nt_url!r}")
    for key in ("token", "password"):
        if key in nt and secret_problem(nt[key]):
            raise fail(key, f"[ntopng] {key} {secret_problem(nt[key])}")
    for key, kind, least in (("timeout", (int, float), None), ("concurrency", int, 1), ("retries", int, 0)):
        v = nt.get(key)
        if v is None:
            continue
        if isinstance(v, bool) or not isinstance(v, kind) or (v <= 0 if least is None else v < least):
            what = "a number of seconds above 0" if least is None else f"a whole number of at least {least}"
            raise fail(key, f"[ntopng] {key} must be {what}, not {v!r}")
    if not isinstance(nt.get("verify_tls", True), bool) or not isinstance(nt.get("user", ""), str):
        raise fail("verify_tls", "[ntopng] verify_tls must be true or false and user text")
    nt_defaults = NtopngSettings()
    return Settings(
        rrdcached=_rrdcached_setting(data, fail),
        ntopng=NtopngSettings(
            url=nt_url.rstrip("/"), token=nt.get("token"), user=nt.get("user", ""), password=nt.get("password"),
            timeout=float(nt.get("timeout", nt_defaults.timeout)),
            concurrency=int(nt.get("concurrency", nt_defaults.concurrency)),
            retries=int(nt.get("retries", nt_defaults.retries)), verify_tls=nt.get("verify_tls", True),
        ),
        service=ServiceSettings(
            listen=listen,
            check_interval=float(service.get("check_interval", ServiceSettings.check_interval)),
            deliver_interval=float(service.get("deliver_interval", ServiceSettings.deliver_interval)),
            min_start_interval=float(service.get("min_start_interval", ServiceSettings.min_start_interval)),
            api_token=token,
            **_guard_settings(service, base, fail),
        ),
        path=Path(path),
        scripts_dir=path_value("scripts_dir"),
        smtp=SmtpSettings(
            host=smtp.get("host", "localhost"), port=smtp_port, security=smtp_security,
            username=smtp.get("username", ""), password=smtp.get("password"),
            sender=smtp.get("sender", "rrdalarm@localhost"),
        ),
        delivery=DeliverySettings(
            timeout=float(delivery.get("timeout", defaults.timeout)),
            max_attempts=int(delivery.get("max_attempts", defaults.max_attempts)),
            backoff=float(delivery.get("backoff", defaults.backoff)),
            max_backoff=float(delivery.get("max_backoff", defaults.max_backoff)),
        ),
        rrd_root=path_value("rrd_root"),
        thresholds=path_value("thresholds"),
        data_dir=path_value("data_dir") or default_data_dir(),
        log_dir=path_value("log_dir"),
        database_url=database_url,
        workers=workers,
        lock_wait=float(lock_wait),
    )


def _rrdcached_setting(data: Mapping[str, Any], fail: Callable[[str, str], ConfigError]) -> str | None:
    value = data.get("rrdcached")
    problem = rrdcached_problem(value) if value is not None else None
    if problem:
        raise fail("rrdcached", problem)
    return value


def _guard_settings(service: Mapping[str, Any], base: Path, fail: Callable[[str, str], ConfigError]) -> dict[str, Any]:
    """[service] keys that bound what requests may reach: thresholds_dir, timeouts, limits."""
    out: dict[str, Any] = {}
    for key in ("request_timeout", "session_idle"):
        v = service.get(key)
        if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or v <= 0):
            raise fail(key, f"[service] {key} must be a number of seconds above 0, not {v!r}")
        if v is not None:
            out[key] = float(v)
    limit = service.get("connection_limit")
    if limit is not None:
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise fail("connection_limit", f"[service] connection_limit must be a whole number above 0, not {limit!r}")
        out["connection_limit"] = limit
    folder = service.get("thresholds_dir")
    if folder is not None:
        if not isinstance(folder, str) or not folder:
            raise fail("thresholds_dir", f"[service] thresholds_dir must be a path, not {folder!r}")
        p = Path(os.path.expanduser(folder))
        out["thresholds_dir"] = p if p.is_absolute() else base / p
    return out


def _table(
    data: Mapping[str, Any], name: str, known: set[str], fail: Callable[[str, str], ConfigError]
) -> dict[str, Any]:
    table = data.get(name, {})
    if not isinstance(table, dict):
        raise fail(name, f"must be a [{name}] table")
    for key in table:
        if key not in known:
            raise fail(key, f"unknown key in [{name}] (known: {', '.join(sorted(known))})")
    return table


STARTER_SETTINGS = """\
# rrdalarm settings, written by `rrdalarm init`.
# Relative paths are taken from this file's folder.

# Root of the RRD tree; threshold globs are relative to it and cannot leave it.
rrd_root = {rrd_root}

# The thresholds file: TOML, or a legacy rrdAlarmConfig.txt.
thresholds = {thresholds}

# rrdalarm's own state: database (SQLite unless database_url is set),
# file-index cache, check lock and statistics RRDs.
data_dir = {data_dir}

# Folder of the `log` action's files.
log_dir = {log_dir}

# Any SQLAlchemy URL; empty means SQLite in data_dir.
database_url = ""

# Worker processes fetching RRD files; 0 means one per CPU core.
workers = 0

# Seconds a second `rrdalarm check` waits for a running one.
lock_wait = 30

# Read through rrdcached (unix:/path or host:port) to see points still in its
# cache; unset: $RRDCACHED_ADDRESS decides, "" reads the files directly.
# rrdcached = "unix:/run/rrdcached.sock"

[service]
# `rrdalarm serve`: the web app and the scheduler.
listen = "127.0.0.1:8080"
check_interval = 60       # seconds between scheduled checks
min_start_interval = 60   # GET /start refuses (429) to run again sooner
# The token for /start (Authorization: Bearer …); the file is made by `rrdalarm init`.
api_token = {{ file = {token} }}
"""


def starter_settings(rrd_root: Path, thresholds: Path, data_dir: Path, log_dir: Path) -> str:
    def q(p: Path) -> str:
        return tomlkit.string(str(p)).as_string()

    return STARTER_SETTINGS.format(
        rrd_root=q(rrd_root), thresholds=q(thresholds), data_dir=q(data_dir), log_dir=q(log_dir),
        token=q(data_dir / "api_token"),
    )
