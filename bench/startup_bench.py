#!/usr/bin/env python3
"""Fixed cost of a command: `rrdalarm --help`, `validate` and a check of one small file, against the interpreter.

    python bench/startup_bench.py [--runs R]

Run it with the Python of the virtualenv where rrdalarm is installed. The floor,
measured in the same run, is `python -c pass` (the interpreter with its site
packages); each command's median wall time over R runs is printed with its
ratio to the floor and its time above it. The fixed cost of a check is the
median wall time of `rrdalarm check --quiet` over one small RRD file (start-up,
imports, settings and thresholds, the database and its states, the fetch
workers, the index, the run's record) minus the work itself, measured in this
process: listing the folder and one `rrdtool.fetch` of that file.
Targets: `rrdalarm --help` under 0.3 s, the fixed cost of a check under 0.5 s.
"""

from __future__ import annotations

import argparse
import glob
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import rrdtool  # type: ignore[import-untyped, unused-ignore]

TARGET_HELP_S = 0.3
TARGET_CHECK_FIXED_S = 0.5
STEP = 60
END = 1_700_000_040


def median_seconds(cmd: list[str], runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       check=False)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def one_file_tree(root: Path) -> Path:
    """One host's bytes.rrd with 4 h of points ending at END, below `root`."""
    path = root / "hosts" / "10.0.0.1" / "bytes.rrd"
    path.parent.mkdir(parents=True)
    start = END - 4 * 3600
    rrdtool.create(str(path), "--start", str(start - STEP), "--step", str(STEP),
                   "DS:sent:GAUGE:120:0:U", "DS:rcvd:GAUGE:120:0:U", "RRA:AVERAGE:0.5:1:300")
    rrdtool.update(str(path), *(f"{t}:{1000 + t % 7}:{2000 + t % 11}" for t in range(start, END + 1, STEP)))
    return path


def work_seconds(root: Path, runs: int) -> float:
    """What the check of that file has to do at the least: find it and fetch its window (median)."""
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        for path in glob.glob(str(root) + "/hosts/*/bytes.rrd"):
            rrdtool.fetch(path, "AVERAGE", "-s", str(END - 3600), "-e", str(END))
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    rrdalarm = str(Path(sys.executable).parent / "rrdalarm")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "rrd"
        root.mkdir()
        one_file_tree(root)
        (Path(tmp) / "thresholds.toml").write_text(
            '[[threshold]]\nid = 1\nname = "one file"\nglob = "hosts/*/bytes.rrd"\ntype = "above"\n'
            'value = 1e9\nstart = "now-1h"\nend = "now"\n')
        settings = Path(tmp) / "rrdalarm.toml"
        settings.write_text(f'rrd_root = "{root}"\nthresholds = "thresholds.toml"\ndata_dir = "{tmp}/data"\n'
                            f'log_dir = "{tmp}/log"\ndatabase_url = ""\n')
        check = [rrdalarm, "--settings", str(settings), "check", "--quiet", "--at", str(END)]
        done = subprocess.run(check, capture_output=True, text=True, check=False)  # cold: creates the database
        if done.returncode != 0:
            print(f"startup_bench: the check of one file exited {done.returncode}:\n{done.stderr.strip()}")
            return 2
        floor = median_seconds([sys.executable, "-c", "pass"], args.runs)
        rows = [("rrdalarm --help", [rrdalarm, "--help"]),
                ("rrdalarm validate", [rrdalarm, "--settings", str(settings), "validate"]),
                ("rrdalarm check (1 small file)", check)]
        print(f"floor: python -c pass                 {floor:.3f} s")
        got = {}
        for name, cmd in rows:
            s = got[name] = median_seconds(cmd, args.runs)
            print(f"{name:<36}  {s:.3f} s   ({s / floor:.2f}x floor, +{s - floor:.3f} s; median of {args.runs})")
        work = work_seconds(root, args.runs)
        fixed = got["rrdalarm check (1 small file)"] - work
        print(f"{'check: the work (glob + 1 fetch)':<36}  {work:.4f} s   (in this process)")
        print(f"{'check: fixed cost (wall - work)':<36}  {fixed:.3f} s")
    help_s = got["rrdalarm --help"]
    print(f"{'PASS' if help_s < TARGET_HELP_S else 'MISS'}  rrdalarm --help < {TARGET_HELP_S} s   {help_s:.3f} s")
    print(f"{'PASS' if fixed < TARGET_CHECK_FIXED_S else 'MISS'}  fixed cost of a check < {TARGET_CHECK_FIXED_S} s"
          f"   {fixed:.3f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
