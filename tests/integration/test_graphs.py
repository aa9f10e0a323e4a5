"""Graphs drawn on demand: confined to the root, cached (bounded), safe to draw from many threads."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import rrdtool
from conftest import T0, Env

from rrdalarm.report import graphs


def test_parallel_first_draws_do_not_crash_the_process(env: Env) -> None:
    # rrd_graph is not thread-safe: overlapping first draws in a new process used to kill it (SIGSEGV).
    env.rrd("a.rrd", {"v": [float(i) for i in range(60)]})
    script = textwrap.dedent(f"""
        import threading
        from rrdalarm.config.settings import load_settings
        from rrdalarm.report.graphs import series_graph
        settings = load_settings(__import__("pathlib").Path({str(env.settings_path)!r}))
        outs = []
        def draw(i):
            outs.append(series_graph(settings, "a.rrd", "v", "AVERAGE", {T0 - 3600}, {T0}, float(i), {T0},
                                     title=f"limit {{i}}"))
        threads = [threading.Thread(target=draw, args=(i,)) for i in range(8)]
        for t in threads: t.start()
        for t in threads: t.join()
        assert len(outs) == 8 and all(p.read_bytes().startswith(b"\\x89PNG") for p in outs)
    """)
    for _ in range(3):  # each run is a new process: the crash only happened on a process's first draws
        proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, proc.stderr


def _axis(env: Env, limit: float | None) -> tuple[float, float]:
    """(bottom, top) of the y axis rrdtool picks for the series graph's own arguments."""
    path = env.root / "load.rrd"
    args = graphs.series_args(str(env.base / "axis.png"), path, "load.rrd", "load", "AVERAGE", T0 - 3600, T0,
                              limit, "")
    info = rrdtool.graphv(*args)
    return float(info["value_min"]), float(info["value_max"])


@pytest.mark.parametrize(("limit", "low", "high"), [(3.0, 3.0, 10.0), (25.0, 4.0, 25.0), (-2.0, -2.0, 10.0),
                                                    (7.0, 4.0, 10.0)])
def test_the_threshold_line_is_always_inside_the_plot(env: Env, limit: float, low: float, high: float) -> None:
    # A munin load limit of 3 on an autoscaled axis of 4-10 used to be off the graph.
    env.rrd("load.rrd", {"load": [4.0 + (i % 7) for i in range(61)]})
    bottom, top = _axis(env, limit)
    assert bottom <= low and top >= high
    assert bottom <= limit <= top
    assert _axis(env, None)[0] > 3.0  # without a limit the axis fits the data alone


def test_the_graph_cache_is_bounded_and_expires(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    env.rrd("a.rrd", {"v": [float(i) for i in range(60)]})
    settings = env.settings()
    cache = settings.data_dir / "graphs"
    monkeypatch.setattr(graphs, "CACHE_MAX_FILES", 5)

    def pngs() -> list[Path]:
        return sorted(cache.glob("*.png"))

    drawn = [graphs.series_graph(settings, "a.rrd", "v", "AVERAGE", T0 - 3600, T0, float(i), T0)
             for i in range(12)]
    assert len(pngs()) == 5
    assert set(pngs()) == set(drawn[-5:])  # the newest are kept
    assert all(p.read_bytes().startswith(b"\x89PNG") for p in drawn[-5:])
    (cache / "left.99.tmp").write_bytes(b"half a graph")  # a draw that died
    # Past the cache time nothing cached is used again: the next draw removes it all.
    later = T0 + 10 * graphs.CACHE_SECONDS
    for p in [*pngs(), cache / "left.99.tmp"]:
        os.utime(p, (T0, T0))
    fresh = graphs.series_graph(settings, "a.rrd", "v", "AVERAGE", T0 - 3600, T0, 99.0, later)
    assert pngs() == [fresh] and not list(cache.glob("*.tmp"))
