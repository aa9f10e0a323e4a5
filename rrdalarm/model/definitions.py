"""The configuration model: thresholds with their actions, and the settings with their sections."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rrdalarm.common.secrets import SecretRef
from rrdalarm.model.control import MaintenanceWindow
from rrdalarm.model.states import Direction, NoData, Severity

CONSOLIDATION_FUNCTIONS = ("AVERAGE", "MIN", "MAX", "LAST")
SETTINGS_ENV = "RRDALARM_SETTINGS"
RRDCACHED_ENV = "RRDCACHED_ADDRESS"  # librrd's own variable, honoured the same way
SETTINGS_SEARCH = (Path("rrdalarm.toml"), Path("/etc/rrdalarm/rrdalarm.toml"))
DEFAULT_SOURCE = "rrd"
"""The source of a threshold that names none (left out when written)."""
LOCAL_TREE = "local"
"""The tree of a threshold that names none: checked by this machine (left out when written)."""
_NAMED_FIELDS = ("glob", "schema", "query")


@dataclass(frozen=True)
class ActionSpec:
    """One action of a threshold: the plugin name and its parameters."""

    type: str
    params: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Tuning:
    """How a threshold's alarms behave beyond section 2's rule (docs/semantics.md §2b); defaults keep it.

    `typed` holds what the file said for each field given (e.g. "80M", "10min"), so that writing
    the threshold back keeps it as typed.
    """

    severity: Severity = Severity.WARNING
    labels: Mapping[str, str] = field(default_factory=dict, hash=False)
    description: str = ""
    runbook: str = ""
    unit: str = ""
    scale: float = 1.0
    within: int = 0
    clear_value: float | None = None
    keep_firing_for: int = 0
    no_data: NoData = NoData.KEEP
    stale_after: int = 0
    """Seconds; 0: never stale."""
    flap_changes: int = 0
    """0: flapping is not detected."""
    flap_window: int = 0
    typed: Mapping[str, Any] = field(default_factory=dict, hash=False, compare=False)


@dataclass(frozen=True)
class Location:
    """Where a threshold was defined, for messages."""

    path: str
    line: int | None = None

    def __str__(self) -> str:
        return f"{self.path}:{self.line}" if self.line is not None else self.path


@dataclass(frozen=True)
class Threshold:
    """One configured threshold (docs/semantics.md §1)."""

    id: int
    name: str
    type: Direction
    value: float
    glob: str = ""
    source: str = DEFAULT_SOURCE
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
    fields: Mapping[str, Any] = field(default_factory=dict, hash=False)
    tuning: Tuning = field(default_factory=Tuning)
    """The values of its source's own fields (`Source.fields`); glob, schema and query mirror theirs."""
    tree: str = LOCAL_TREE
    """Where its data is read: "local", or the name of a tree whose workers check it (`rrdalarm worker`)."""

    def __post_init__(self) -> None:
        # glob, schema and query stay attributes for the code that names them; `fields` is the whole.
        merged = dict(self.fields)
        merged.update({k: getattr(self, k) for k in _NAMED_FIELDS if getattr(self, k)})
        object.__setattr__(self, "fields", merged)
        for key in _NAMED_FIELDS:
            value = merged.get(key, "")
            object.__setattr__(self, key, value if isinstance(value, str) else "")

    @property
    def action_names(self) -> str:
        return ", ".join(a.type for a in self.actions) or "None"


@dataclass(frozen=True)
class ThresholdsFile:
    """What a thresholds file holds: its thresholds and its maintenance windows (a legacy file has none)."""

    thresholds: list[Threshold]
    windows: tuple[MaintenanceWindow, ...] = ()


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
    """How the outbox sends: per-attempt timeout and retries with exponential backoff.

    A failed delivery is retried until `retry_for` seconds after it was queued (or requeued), and
    also no more than `max_attempts` times when that is set: whichever comes first ends it (dead).
    """

    timeout: float = 10.0
    max_attempts: int | None = None
    backoff: float = 30.0
    max_backoff: float = 3600.0
    retry_for: int = 24 * 3600
    max_per_check: int | None = None
    """Deliveries per action target in one check before the rest go out as one digest; None: no budget."""


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
    page_refresh: float = 30.0
    """Seconds between two refreshes of the Alarms now page in a browser."""

    @property
    def host_port(self) -> tuple[str, int]:
        host, _, port = self.listen.rpartition(":")
        return host.strip("[]") or "127.0.0.1", int(port)


@dataclass(frozen=True)
class ClusterSettings:
    """[cluster]: the broker that carries check shards to the workers of each tree, and how long to wait."""

    broker: SecretRef | None = None
    result_backend: SecretRef | None = None
    """None: the broker's URL."""
    shards_per_tree: int = 4
    answer_timeout: float = 60.0
    """Seconds a check waits for a tree's shards; past it, their series are ERROR rows, their states kept."""
    redo_after: float | None = None
    """Seconds after which an unanswered shard is sent once more; None: half of answer_timeout."""

    @property
    def redo_delay(self) -> float:
        return self.redo_after if self.redo_after is not None else self.answer_timeout / 2


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
    cluster: ClusterSettings = field(default_factory=ClusterSettings)

    @property
    def rrdcached_address(self) -> str:
        """The rrdcached that RRD reads go through ("" for none): the setting, else $RRDCACHED_ADDRESS."""
        if self.rrdcached is not None:
            return self.rrdcached
        return os.environ.get(RRDCACHED_ENV, "").strip()

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
