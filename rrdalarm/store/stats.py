"""The check's own statistics: two RRDs in the data dir (duration, alarms fired)."""

from __future__ import annotations

import os
from pathlib import Path

import rrdtool

from rrdalarm.common.fileutil import PRIVATE_FILE, make_private_dirs

STEP = 60
# Our own files are never a watched daemon's: an empty --daemon keeps librrd from taking $RRDCACHED_ADDRESS.
DIRECT = ("--daemon", "")
FILES = {"duration": ("check_duration.rrd", "duration"), "alarms": ("alarms_fired.rrd", "alarms")}
# A day of minutes, a week of 5 minutes, a year of hours.
RRAS = [
    f"RRA:{cf}:0.5:{steps}:{rows}"
    for cf in ("AVERAGE", "MAX")
    for steps, rows in ((1, 1440), (5, 2016), (60, 8784))
]


def stats_dir(data_dir: Path) -> Path:
    return data_dir / "stats"


def stats_path(data_dir: Path, which: str) -> Path:
    return stats_dir(data_dir) / FILES[which][0]


def _ensure(path: Path, ds: str, at: int) -> None:
    if path.exists():
        return
    make_private_dirs(path.parent)
    # Checks may run every minute or every hour: a heartbeat of two hours keeps both known.
    rrdtool.create(*DIRECT, str(path), "--start", str(at - 1), "--step", str(STEP), f"DS:{ds}:GAUGE:7200:0:U",
                   *RRAS)
    os.chmod(path, PRIVATE_FILE)


def record_check(data_dir: Path, at: int, duration_s: float, alarms_fired: int) -> str | None:
    """Add one check to the statistics; returns a warning instead of raising."""
    try:
        for which, value in (("duration", f"{duration_s:.3f}"), ("alarms", str(alarms_fired))):
            path = stats_path(data_dir, which)
            _ensure(path, FILES[which][1], at)
            last = int(rrdtool.last(*DIRECT, str(path)))
            if at <= last:
                continue  # checks replayed with --at, or two in the same second
            rrdtool.update(*DIRECT, str(path), f"{at}:{value}")
    except (rrdtool.OperationalError, OSError) as exc:
        return f"statistics not updated: {exc}"
    return None
