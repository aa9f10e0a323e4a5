"""The starter settings file that `rrdalarm init` writes."""

from __future__ import annotations

from pathlib import Path

import tomlkit

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
