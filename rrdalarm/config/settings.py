"""Settings: the rrdalarm.toml file, found and validated into Settings."""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from rrdalarm.common.quantities import parse_duration
from rrdalarm.common.secrets import secret_problem
from rrdalarm.config.lines import _toml_error_line, read_config_text, table_key_line, top_level_line
from rrdalarm.model.definitions import (
    SETTINGS_ENV,
    SETTINGS_SEARCH,
    ClusterSettings,
    DeliverySettings,
    NtopngSettings,
    ServiceSettings,
    Settings,
    SmtpSettings,
    default_data_dir,
)
from rrdalarm.model.errors import ConfigError

_SETTINGS_KEYS = {
    "rrd_root", "thresholds", "data_dir", "log_dir", "database_url", "workers", "lock_wait", "scripts_dir",
    "smtp", "delivery", "service", "ntopng", "rrdcached", "cluster",
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
                 "thresholds_dir", "request_timeout", "connection_limit", "session_idle", "page_refresh"}
_SMTP_KEYS = {"host", "port", "security", "username", "password", "sender"}
_DELIVERY_KEYS = {"timeout", "max_attempts", "backoff", "max_backoff", "max_per_check", "retry_for"}
_CLUSTER_KEYS = {"broker", "result_backend", "shards_per_tree", "answer_timeout", "redo_after"}
# What kombu and Celery take: redis://, rediss://, amqp://, sentinel://, redis+socket:// …
_BROKER_URL_RE = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://\S*")
MAX_SHARDS = 256


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


Fail = Callable[[str, str], ConfigError]
"""Makes the ConfigError for a key of the settings file: fail(key, message)."""


def load_settings(path: Path | None) -> Settings:
    """Read a settings file; with None, defaults only."""
    if path is None:
        return Settings()
    text = read_config_text(path)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(path, f"not valid TOML: {exc}", _toml_error_line(str(exc))) from None

    def fail(key: str, message: str) -> ConfigError:
        return ConfigError(path, message, top_level_line(text, key), key)

    for key in data:
        if key not in _SETTINGS_KEYS:
            raise fail(key, f"unknown setting (known: {', '.join(sorted(_SETTINGS_KEYS))})")
    base = Path(path).resolve().parent
    top = _top_level(data, fail)
    # Sections in this order, so that a file with several mistakes names the first.
    smtp = _smtp_settings(data, fail)

    def fail_in_delivery(key: str, message: str) -> ConfigError:
        return ConfigError(path, message, table_key_line(text, "delivery", key), key)

    delivery = _delivery_settings(data, fail_in_delivery)
    service = _service_settings(data, base, fail)
    ntopng = _ntopng_settings(data, fail)

    def fail_in_cluster(key: str, message: str) -> ConfigError:
        return ConfigError(path, message, table_key_line(text, "cluster", key), key)

    cluster = _cluster_settings(data, base, fail_in_cluster)
    return Settings(
        cluster=cluster,
        rrdcached=_rrdcached_setting(data, fail),
        ntopng=ntopng,
        service=service,
        path=Path(path),
        scripts_dir=_path_value(data, "scripts_dir", base, fail),
        smtp=smtp,
        delivery=delivery,
        rrd_root=_path_value(data, "rrd_root", base, fail),
        thresholds=_path_value(data, "thresholds", base, fail),
        data_dir=_path_value(data, "data_dir", base, fail) or default_data_dir(),
        log_dir=_path_value(data, "log_dir", base, fail),
        **top,
    )


def _path_value(data: Mapping[str, Any], key: str, base: Path, fail: Fail) -> Path | None:
    """A path setting, relative to the settings file's folder; None when not set."""
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


def _top_level(data: Mapping[str, Any], fail: Fail) -> dict[str, Any]:
    """database_url, workers and lock_wait."""
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
    return {"database_url": database_url, "workers": workers, "lock_wait": float(lock_wait)}


def _smtp_settings(data: Mapping[str, Any], fail: Fail) -> SmtpSettings:
    smtp = _table(data, "smtp", _SMTP_KEYS, fail)
    security = smtp.get("security", "none")
    if security not in ("none", "starttls", "ssl"):
        raise fail("security", f"[smtp] security must be none, starttls or ssl, not {security!r}")
    for key in ("host", "username", "sender"):
        if key in smtp and not isinstance(smtp[key], str):
            raise fail(key, f"[smtp] {key} must be text")
    port = smtp.get("port", 465 if security == "ssl" else 25)
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
        raise fail("port", f"[smtp] port must be a TCP port number, not {port!r}")
    if "password" in smtp and secret_problem(smtp["password"]):
        raise fail("password", f"[smtp] password {secret_problem(smtp['password'])}")
    return SmtpSettings(
        host=smtp.get("host", "localhost"), port=port, security=security,
        username=smtp.get("username", ""), password=smtp.get("password"),
        sender=smtp.get("sender", "rrdalarm@localhost"),
    )


def _delivery_settings(data: Mapping[str, Any], fail: Fail) -> DeliverySettings:
    delivery = _table(data, "delivery", _DELIVERY_KEYS, fail)
    for key in ("timeout", "backoff", "max_backoff"):
        v = delivery.get(key)
        if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or v <= 0):
            raise fail(key, f"[delivery] {key} must be a positive number, not {v!r}")
    for key in ("max_per_check", "max_attempts"):
        v = delivery.get(key)
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
            raise fail(key, f"[delivery] {key} must be a whole number of at least 1, not {v!r}")
    defaults = DeliverySettings()
    return DeliverySettings(
        timeout=float(delivery.get("timeout", defaults.timeout)),
        max_attempts=delivery.get("max_attempts"),
        backoff=float(delivery.get("backoff", defaults.backoff)),
        max_backoff=float(delivery.get("max_backoff", defaults.max_backoff)),
        max_per_check=delivery.get("max_per_check"),
        retry_for=_retry_for(delivery.get("retry_for", defaults.retry_for), fail),
    )


def _retry_for(raw: object, fail: Fail) -> int:
    """How long a failed delivery is retried; a duration of at least a second."""
    try:
        seconds = parse_duration(raw)
    except ValueError as exc:
        raise fail("retry_for", f"[delivery] retry_for {exc}") from None
    if seconds < 1:
        raise fail("retry_for", f"[delivery] retry_for must be at least 1 s (e.g. \"24h\"), not {raw!r}")
    return seconds


def _service_settings(data: Mapping[str, Any], base: Path, fail: Fail) -> ServiceSettings:
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
    return ServiceSettings(
        listen=listen,
        check_interval=float(service.get("check_interval", ServiceSettings.check_interval)),
        deliver_interval=float(service.get("deliver_interval", ServiceSettings.deliver_interval)),
        min_start_interval=float(service.get("min_start_interval", ServiceSettings.min_start_interval)),
        api_token=token,
        **_guard_settings(service, base, fail),
    )


def _ntopng_settings(data: Mapping[str, Any], fail: Fail) -> NtopngSettings:
    nt = _table(data, "ntopng", _NTOPNG_KEYS, fail)
    url = nt.get("url", "")
    if not isinstance(url, str) or (url and not re.match(r"^https?://[^\s/]+", url)):
        raise fail("url", f"[ntopng] url must be http(s)://host[:port], not {url!r}")
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
    defaults = NtopngSettings()
    return NtopngSettings(
        url=url.rstrip("/"), token=nt.get("token"), user=nt.get("user", ""), password=nt.get("password"),
        timeout=float(nt.get("timeout", defaults.timeout)),
        concurrency=int(nt.get("concurrency", defaults.concurrency)),
        retries=int(nt.get("retries", defaults.retries)), verify_tls=nt.get("verify_tls", True),
    )


def _cluster_settings(data: Mapping[str, Any], base: Path, fail: Fail) -> ClusterSettings:
    """[cluster]: the broker (a secret: its password is never shown) and the fan-out's timing."""
    cluster = _table(data, "cluster", _CLUSTER_KEYS, fail)
    urls = {key: _broker_url(cluster.get(key), key, base, fail) for key in ("broker", "result_backend")}
    if urls["result_backend"] is not None and urls["broker"] is None:
        raise fail("result_backend", "[cluster] result_backend needs a broker: set [cluster] broker too")
    shards = cluster.get("shards_per_tree", ClusterSettings.shards_per_tree)
    if isinstance(shards, bool) or not isinstance(shards, int) or not 1 <= shards <= MAX_SHARDS:
        raise fail("shards_per_tree", f"[cluster] shards_per_tree must be a whole number from 1 to {MAX_SHARDS}, "
                                      f"not {shards!r}")
    timing: dict[str, float] = {}
    for key in ("answer_timeout", "redo_after"):
        v = cluster.get(key)
        if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 < v <= 86400):
            raise fail(key, f"[cluster] {key} must be a number of seconds above 0 (at most a day), not {v!r}")
        if v is not None:
            timing[key] = float(v)
    answer = timing.get("answer_timeout", ClusterSettings.answer_timeout)
    if timing.get("redo_after", 0) >= answer:
        raise fail("redo_after", f"[cluster] redo_after must be shorter than answer_timeout ({answer:g} s), "
                                 f"or no shard would ever be sent again, not {timing['redo_after']:g}")
    return ClusterSettings(broker=urls["broker"], result_backend=urls["result_backend"], shards_per_tree=shards,
                           **timing)


def _broker_url(raw: object, key: str, base: Path, fail: Fail) -> Any:
    """A broker URL, inline or as { env = … } / { file = … } (relative files: beside the settings file)."""
    if raw is None:
        return None
    problem = secret_problem(raw)
    if problem:
        raise fail(key, f"[cluster] {key} {problem}")
    if isinstance(raw, str):
        if not _BROKER_URL_RE.fullmatch(raw.strip()):
            # Not shown: what is not a URL may still hold the password.
            raise fail(key, f"[cluster] {key} must be a URL such as redis://127.0.0.1:6379/0 (scheme://host…)")
        return raw.strip()
    assert isinstance(raw, Mapping)
    if "file" in raw and not os.path.isabs(raw["file"]):
        return {"file": str(base / raw["file"])}
    return dict(raw)


def _rrdcached_setting(data: Mapping[str, Any], fail: Fail) -> str | None:
    value = data.get("rrdcached")
    problem = rrdcached_problem(value) if value is not None else None
    if problem:
        raise fail("rrdcached", problem)
    return value


def _guard_settings(service: Mapping[str, Any], base: Path, fail: Fail) -> dict[str, Any]:
    """[service] keys that bound what requests may reach (thresholds_dir, timeouts, limits), and page_refresh."""
    out: dict[str, Any] = {}
    for key in ("request_timeout", "session_idle", "page_refresh"):
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
