#!/usr/bin/env python3
"""Repeated ``**`` in a glob: the check's expansion, the editor's match count and a whole check.

    python bench/globstar_bench.py [--hosts N] [--repeats 1,12,40] [--timeout S]

A tree of real RRD files (hard links to one template) shaped like ntopng's:
``hosts/192/168/<a>/<b>/bytes.rrd`` and ``hosts/192/168/<a>/<b>/ndpi/<5 protocols>.rrd``,
6 files per host, plus munin-like state files (``datafile``, ``*.storable``).
For each k in --repeats, the glob ``hosts/`` + ``**/`` * k + ``ndpi/*.rrd``:

* index: ``FileIndex.match`` on a refreshed index (what every check does);
* matches: ``PathSuggester.matches`` (what /api/matches answers);
* check: ``rrdalarm check --quiet`` in a subprocess, with that one threshold;
* floor: ``glob.glob`` of the same glob with its ``**`` collapsed (recursive).

Each timing is the best of 3 (the check: one run), or ">S" when it did not end
within --timeout seconds. Run it with the code to measure first on PYTHONPATH
to compare two versions. Exit status 0.
"""

from __future__ import annotations

import argparse
import functools
import glob
import multiprocessing
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import rrdtool  # type: ignore[import-untyped, unused-ignore]

END = 1_700_000_040
PROTOCOLS = ["HTTP", "DNS", "TLS", "QUIC", "SSH"]


def make_tree(root: Path, hosts: int) -> int:
    template = root.parent / "template.rrd"
    rrdtool.create(str(template), "--start", str(END - 7200), "--step", "60", "DS:v:GAUGE:120:U:U",
                   "RRA:AVERAGE:0.5:1:200")
    rrdtool.update(str(template), *(f"{t}:1" for t in range(END - 3600, END + 1, 60)))
    count = 0
    for i in range(hosts):
        host = root / "hosts" / "192" / "168" / str(i // 50) / str(i % 50)
        (host / "ndpi").mkdir(parents=True)
        for rel in ["bytes.rrd", *(f"ndpi/{p}.rrd" for p in PROTOCOLS)]:
            os.link(template, host / rel)
            count += 1
    (root / "datafile").write_text("munin state\n")
    (root / "hosts" / "limits.storable").write_text("munin state\n")
    return count


def _timed(fn: Callable[[], object], timeout: float) -> str:
    """Best of 3 runs of fn in a child process, or '>timeout' when one run does not finish."""
    best = None
    for _ in range(3):
        proc = multiprocessing.get_context("fork").Process(target=fn)
        started = time.perf_counter()
        proc.start()
        proc.join(timeout)
        took = time.perf_counter() - started
        if proc.is_alive():
            proc.kill()
            proc.join()
            return f">{timeout:g} s"
        best = took if best is None else min(best, took)
    return f"{best:.3f} s"


def run_check(base: Path, root: Path, pattern: str, timeout: float) -> str:
    settings = base / "settings.toml"
    (base / "thresholds.toml").write_text(
        f'[[threshold]]\nid = 1\nglob = "{pattern}"\ntype = "above"\nvalue = 10\n', encoding="utf-8")
    data = base / f"data-{time.monotonic_ns()}"
    settings.write_text(f'rrd_root = "{root}"\nthresholds = "thresholds.toml"\ndata_dir = "{data}"\n'
                        f'log_dir = "{data}/log"\nworkers = 1\n', encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("RRDALARM_")} | {"RRDALARM_SETTINGS": str(settings)}
    started = time.perf_counter()
    try:
        proc = subprocess.run([sys.executable, "-m", "rrdalarm", "check", "--quiet", "--at", str(END)], env=env,
                              cwd=base, timeout=timeout, capture_output=True, text=True)
    except subprocess.TimeoutExpired:
        return f">{timeout:g} s"
    return f"{time.perf_counter() - started:.3f} s (exit {proc.returncode})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hosts", type=int, default=500, help="host folders (6 files each)")
    parser.add_argument("--repeats", default="1,12,40")
    parser.add_argument("--timeout", type=float, default=120.0)
    args = parser.parse_args()

    from rrdalarm.editor.suggest import PathSuggester
    from rrdalarm.sources.rrd_index import FileIndex

    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        root = base / "rrd"
        files = make_tree(root, args.hosts)
        code = sys.modules["rrdalarm"].__file__
        print(f"tree: {files} RRD files under {args.hosts} hosts ({args.hosts * 2} folders); code: {code}")
        index = FileIndex(root)
        index.refresh()
        suggester = PathSuggester(root, None, background=False)
        suggester.folders()
        for k in (int(x) for x in args.repeats.split(",")):
            pattern = "hosts/" + "**/" * k + "ndpi/*.rrd"
            print(f"k = {k:>2}: {pattern[:40]}{'...' if len(pattern) > 40 else ''}")
            print(f"  index   {_timed(functools.partial(index.match, pattern), args.timeout)}")
            # Without a budget cut (as before there was one), so that both versions count everything.
            big: dict[str, Any] = {"budget_s": 1e9} if "budget_s" in PathSuggester.matches.__code__.co_varnames else {}
            print(f"  matches {_timed(functools.partial(suggester.matches, pattern, **big), args.timeout)}")
            print(f"  check   {run_check(base, root, pattern, args.timeout)}")
            floor = _timed(lambda: glob.glob(str(root / "hosts/**/ndpi/*.rrd"), recursive=True), args.timeout)
            print(f"  floor   {floor}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
