"""PNG graphs made with rrdtool.graph, on demand and cached in the data dir."""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Callable
from pathlib import Path

import rrdtool

from rrdalarm.common.fileutil import make_private_dirs
from rrdalarm.config.settings import path_length_problem
from rrdalarm.model.definitions import CONSOLIDATION_FUNCTIONS, Settings
from rrdalarm.model.errors import ConfigError
from rrdalarm.sources.rrd_index import glob_problem
from rrdalarm.store import stats

# A cached graph is reused for this long: long enough for a page of links, short enough to stay current.
CACHE_SECONDS = 60
# Every distinct limit or time draws a new file: keep at most this many (~30 kB each).
CACHE_MAX_FILES = 500
CACHE_MAX_BYTES = 32 * 1024 * 1024
_DRAW_LOCK = threading.Lock()
_DS_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")


class GraphError(Exception):
    """The graph cannot be drawn; one line, no absolute paths."""


class BadGraphRequest(GraphError):
    """The request names something that cannot be a file at all (a 400, where a missing file is a 404)."""


def _escape(text: str) -> str:
    # rrdtool graph arguments treat ':' as a separator; a file name may contain one.
    return text.replace("\\", "\\\\").replace(":", "\\:")


def confined_file(settings: Settings, rel: str) -> Path:
    """The RRD file `rel` under the root; anything that would leave the root is refused."""
    if settings.rrd_root is None:
        raise ConfigError(settings.path, "no RRD root", field="rrd_root")
    problem = "it holds a NUL" if "\0" in rel else rel and path_length_problem(Path(rel))
    if problem:
        raise BadGraphRequest(f"not a file name: {problem}")
    problem = glob_problem(rel)
    if problem or any(ch in rel for ch in "*?["):
        raise GraphError(f"not a file under the RRD root: {rel!r}")
    root = Path(os.path.realpath(settings.rrd_root))
    try:
        path = Path(os.path.realpath(root / rel))
        found = root in path.parents and path.is_file()
    except (OSError, ValueError):  # a name the file system refuses is a file that is not there
        found = False
    if not found:
        raise GraphError(f"no such RRD file under the root: {rel!r}")
    return path


def _fresh(out: Path, now: float) -> bool:
    try:
        return now - out.stat().st_mtime < CACHE_SECONDS
    except FileNotFoundError:
        return False


def _cached(cache_dir: Path, key: str, now: float, draw: Callable[[str], None]) -> Path:
    make_private_dirs(cache_dir)
    out = cache_dir / (hashlib.sha256(key.encode()).hexdigest()[:32] + ".png")
    if _fresh(out, now):
        return out
    # rrd_graph is not thread-safe (the first draws of a process can crash it when they overlap),
    # and the web server draws from several threads: one graph at a time per process.
    with _DRAW_LOCK:
        if not _fresh(out, now):  # drawn by the request that held the lock before us
            tmp = out.with_suffix(f".{os.getpid()}.tmp")
            try:
                draw(str(tmp))
            except rrdtool.OperationalError as exc:
                tmp.unlink(missing_ok=True)
                raise GraphError(str(exc).replace(str(cache_dir), "")) from None
            os.replace(tmp, out)
            _prune(cache_dir, now, out)
    return out


def _prune(cache_dir: Path, now: float, keep: Path) -> None:
    """Bound the cache: files past CACHE_SECONDS are never served again; beyond the caps, the oldest go.

    Runs under the draw lock, after each draw, so the folder never holds much more than the caps.
    """
    entries: list[tuple[int, int, Path]] = []
    for path in cache_dir.iterdir():
        try:
            st = path.stat()
        except FileNotFoundError:
            continue
        # Leftovers of a draw that died (.tmp) go once they are as old as a stale graph.
        if path != keep and path.suffix in (".png", ".tmp") and now - st.st_mtime >= CACHE_SECONDS:
            path.unlink(missing_ok=True)
        elif path.suffix == ".png":
            entries.append((st.st_mtime_ns, st.st_size, path))
    entries.sort(reverse=True)  # newest first
    total = 0
    for count, (_, size, path) in enumerate(entries, 1):
        total += size
        if path != keep and (count > CACHE_MAX_FILES or total > CACHE_MAX_BYTES):
            path.unlink(missing_ok=True)


def series_args(target: str, path: Path, rel: str, ds: str, cf: str, start: int, end: int, limit: float | None,
                title: str) -> list[str]:
    """rrdtool graph arguments for one data source, with a red rule at the threshold."""
    args = [
        target, "--imgformat", "PNG", "--start", str(start), "--end", str(end), "--width", "640",
        "--height", "200", "--title", (title or f"{rel} {ds}")[:120], "--slope-mode",
        f"DEF:v={_escape(str(path))}:{ds}:{cf}", f"LINE2:v#1f77b4:{_escape(ds)}",
    ]
    if limit is not None:
        # Autoscaling fits the data only; these bounds widen the axis to the limit (never narrow it,
        # since rrdtool still grows past them without --rigid), so the rule is always in the plot.
        args += ["--lower-limit", repr(limit), "--upper-limit", repr(limit)]
        args.append(f"HRULE:{limit!r}#d62728:threshold {limit:g}")
    return args


def series_graph(settings: Settings, rel: str, ds: str, cf: str, start: int, end: int, limit: float | None,
                 now: float, title: str = "") -> Path:
    """A graph of one data source over [start, end] with a red rule at the threshold."""
    if cf not in CONSOLIDATION_FUNCTIONS:
        raise GraphError(f"unknown consolidation function {cf!r}")
    if not ds or not set(ds) <= _DS_CHARS:
        raise GraphError(f"not a data source name: {ds!r}")
    if end <= start:
        raise GraphError("the window is empty")
    path = confined_file(settings, rel)

    def draw(target: str) -> None:
        rrdtool.graph(*series_args(target, path, rel, ds, cf, start, end, limit, title))

    key = f"{path}|{ds}|{cf}|{start}|{end}|{limit}|{title}|{path.stat().st_mtime_ns}"
    return _cached(settings.data_dir / "graphs", key, now, draw)


PERIODS = {"day": 86400, "week": 7 * 86400}


def stats_graph(settings: Settings, which: str, period: str, now: float) -> Path:
    """The check's own statistics (duration or alarms fired) over the last day or week."""
    if which not in stats.FILES or period not in PERIODS:
        raise GraphError("unknown statistics graph")
    path = stats.stats_path(settings.data_dir, which)
    if not path.exists():
        raise GraphError("no statistics yet: no check has run")
    ds = stats.FILES[which][1]
    label = {"duration": "check duration (s)", "alarms": "alarms fired"}[which]

    def draw(target: str) -> None:
        rrdtool.graph(
            target, "--imgformat", "PNG", "--start", f"end-{PERIODS[period]}", "--end", str(int(now)),
            "--width", "640", "--height", "160", "--title", f"{label}, last {period}", "--lower-limit", "0",
            f"DEF:v={_escape(str(path))}:{ds}:AVERAGE", f"DEF:m={_escape(str(path))}:{ds}:MAX",
            "AREA:v#9ecae1:average", "LINE1:m#08519c:max",
        )

    return _cached(settings.data_dir / "graphs", f"stats|{which}|{period}|{int(now) // 60}", now, draw)
