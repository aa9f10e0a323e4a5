#!/usr/bin/env python3
"""Fixed cost of a command: `rrdalarm --help` and `rrdalarm validate` against the interpreter's own start.

    python bench/startup_bench.py [--runs R]

Run it with the Python of the virtualenv where rrdalarm is installed. The floor,
measured in the same run, is `python -c pass` (the interpreter with its site
packages); each command's median wall time over R runs is printed with its
ratio to the floor and its time above it. Target: `rrdalarm --help` under 0.3 s.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_HELP_S = 0.3


def median_seconds(cmd: list[str], runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       check=False)
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
        (Path(tmp) / "thresholds.toml").write_text("")
        settings = Path(tmp) / "rrdalarm.toml"
        settings.write_text(f'rrd_root = "{root}"\nthresholds = "thresholds.toml"\ndata_dir = "{tmp}/data"\n')
        floor = median_seconds([sys.executable, "-c", "pass"], args.runs)
        rows = [("rrdalarm --help", [rrdalarm, "--help"]),
                ("rrdalarm validate", [rrdalarm, "--settings", str(settings), "validate"])]
        print(f"floor: python -c pass                 {floor:.3f} s")
        help_s = 0.0
        for name, cmd in rows:
            s = median_seconds(cmd, args.runs)
            help_s = s if name.endswith("--help") else help_s
            print(f"{name:<36}  {s:.3f} s   ({s / floor:.2f}x floor, +{s - floor:.3f} s; median of {args.runs})")
    verdict = "PASS" if help_s < TARGET_HELP_S else "MISS"
    print(f"{verdict}  rrdalarm --help < {TARGET_HELP_S} s   {help_s:.3f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
