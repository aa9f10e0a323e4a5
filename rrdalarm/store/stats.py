"""The check's own statistics: two RRDs in the data dir (duration, alarms fired)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import rrdtool

from rrdalarm.common.fileutil import PRIVATE_FILE, make_private_dirs
from rrdalarm.common.rrdtime import last_update

STEP = 60
# A file whose last update lies further than this past the clock was fed a replayed future check.
AHEAD_LIMIT = 86400
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


def _date(epoch: int) -> str:
    return f"{epoch}, {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(epoch))}"


def _set_aside_if_ahead(path: Path, clock: float) -> str | None:
    """Keep a file last updated far past the clock as NAME.future, so that a new one starts; what was done."""
    if not path.exists():
        return None
    last = last_update(*DIRECT, str(path))
    if last <= clock + AHEAD_LIMIT:
        return None
    os.replace(path, path.with_name(path.name + ".future"))
    return (f"statistics file {path} was last updated at {_date(last)}, later than the clock: "
            f"kept as {path.name}.future and started again")


def record_check(data_dir: Path, at: int, duration_s: float, alarms_fired: int,
                 clock: float | None = None) -> str | None:
    """Add one check to the statistics; returns a warning instead of raising.

    A time an RRD was updated at cannot be taken back: rrdtool refuses every later update dated
    before it. So the statistics follow the clock (`clock`, default now): a check dated after it
    (a replay with --at) is left out with a warning, one dated at or before the file's last update
    (a replay into the past, two checks in one second) is left out quietly, and a file that an
    earlier version updated more than AHEAD_LIMIT past the clock is set aside and started again.
    """
    clock = time.time() if clock is None else clock
    if at > clock:
        return f"statistics not updated: the check's time ({_date(at)}) is later than the clock"
    notes: list[str] = []
    try:
        for which, value in (("duration", f"{duration_s:.3f}"), ("alarms", str(alarms_fired))):
            path = stats_path(data_dir, which)
            note = _set_aside_if_ahead(path, clock)
            notes += [note] if note else []
            _ensure(path, FILES[which][1], at)
            if at <= last_update(*DIRECT, str(path)):
                continue  # checks replayed with --at, or two in the same second
            rrdtool.update(*DIRECT, str(path), f"{at}:{value}")
    except (rrdtool.OperationalError, OSError) as exc:
        notes.append(f"statistics not updated: {exc}")
    return "; ".join(notes) or None
