"""Graphs drawn on demand: confined to the root, cached, safe to draw from many threads."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from conftest import T0, Env


def test_parallel_first_draws_do_not_crash_the_process(env: Env) -> None:
    # rrd_graph is not thread-safe: overlapping first draws in a new process used to kill it (SIGSEGV).
    env.rrd("a.rrd", {"v": [float(i) for i in range(60)]})
    script = textwrap.dedent(f"""
        import threading
        from rrdalarm.config import load_settings
        from rrdalarm.graphs import series_graph
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
