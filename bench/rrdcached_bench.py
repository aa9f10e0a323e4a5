#!/usr/bin/env python3
"""Benchmark of `rrdalarm check` reading through rrdcached, against reading the files.

    python bench/rrdcached_bench.py [--files N] [--runs R] [--write-interval S]

Steps (see bench/README.md):

1. check_bench's corpus of N files (default 10,000), copied to a work folder
   (the copy is written to; the shared corpus is not).
2. A real rrdcached over the copy (-b copy -B, -w S, default 3600, so that
   nothing is written unless a read asks for it), and one update per file
   through it (a collector's round), timed.
3. Floors in this process: glob + one `rrdtool.fetch` per file from the files,
   and the same through the daemon (with one round pending: every read
   flushes; then with nothing pending).
4. `rrdalarm check --quiet` with one threshold (as check_bench), R runs each:
   reading the files (`rrdcached = ""`); through the daemon with nothing
   pending; through the daemon after a new round of updates before each run.
   The daemon's STATS before and after each run give the files it wrote
   (UpdatesWritten) and the points (DataSetsWritten): what reading through it
   cost in lost write batching.
5. A table with times, ratios against the file floor, and files written per check.

Exit status: 0; 2 when the corpus cannot be made, rrdcached is missing or a check fails.
"""

from __future__ import annotations

import argparse
import glob
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import rrdtool  # type: ignore[import-untyped, unused-ignore]

sys.path.insert(0, str(Path(__file__).resolve().parent))
import check_bench as cb  # the corpus and the helpers of check_bench

from rrdalarm.sources.rrdcached import command

DEFAULT_FILES = 10_000
QUIET_RATE = 1e6  # bytes/s of the points pushed to quiet files (spiky files keep their spike)
STATS_KEYS = ("UpdatesWritten", "DataSetsWritten", "FlushesReceived", "UpdatesReceived")


def cpu_seconds(pid: int) -> float:
    """User + system CPU of one process so far (/proc/<pid>/stat utime, stime)."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def stats(address: str) -> dict[str, int]:
    lines = command(address, "STATS")[1:]
    out: dict[str, int] = {}
    for line in lines:
        key, _, value = line.partition(": ")
        if value.strip().isdigit():
            out[key] = int(value)
    return out


@dataclass
class Daemon:
    folder: Path
    base: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"unix:{self.folder / 'sock'}"

    def start(self, write_interval: int) -> None:
        (self.folder / "journal").mkdir(exist_ok=True)
        log = (self.folder / "rrdcached.log").open("ab")
        self.proc = subprocess.Popen(
            ["rrdcached", "-g", "-l", self.address, "-b", str(self.base), "-B", "-w", str(write_interval),
             "-f", str(2 * write_interval), "-p", str(self.folder / "pid"), "-j", str(self.folder / "journal")],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log,
        )
        log.close()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if command(self.address, "PING")[0].startswith("0 PONG"):
                    return
            except OSError:
                time.sleep(0.05)
        raise SystemExit("rrdcached_bench: rrdcached did not start:\n" + (self.folder / "rrdcached.log").read_text())

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=60)


class Collector:
    """Pushes one point per file through the daemon, as collectd or ntopng would every step."""

    def __init__(self, root: Path, n: int, address: str) -> None:
        self.address = address
        self.files = [(str(root / cb.rel_path(i)), cb.SPIKES.get(cb.template_of(i), {})) for i in range(n)]
        self.counters = []
        for path, _spikes in self.files:
            ds = rrdtool.lastupdate(path)["ds"]
            self.counters.append([int(ds["sent"]), int(ds["rcvd"])])
        self.when = cb.END

    def round(self) -> float:
        """One update per file at the next step; returns the seconds it took."""
        self.when += cb.STEP
        started = time.perf_counter()
        for (path, spikes), counters in zip(self.files, self.counters, strict=True):
            for j, ds in enumerate(("sent", "rcvd")):
                counters[j] += round(spikes.get(ds, QUIET_RATE) * cb.STEP)
            rrdtool.update(path, "--daemon", self.address, f"{self.when}:{counters[0]}:{counters[1]}")
        return time.perf_counter() - started


def fetch_loop(root: Path, end: int, daemon: str) -> float:
    started = time.perf_counter()
    for path in glob.glob(str(root) + "/hosts/**/*.rrd", recursive=True):
        rrdtool.fetch("--daemon", daemon, path, "AVERAGE", "-s", str(end - cb.WINDOW), "-e", str(end))
    return time.perf_counter() - started


@dataclass
class Run:
    seconds: float
    engine_s: float  # the check proper, as rrdalarm records it (no interpreter start-up)
    daemon_cpu_s: float  # CPU the daemon spent during the check (answering reads, writing files)
    written: dict[str, int]


def run_check(settings: Path, at: int, address: str, daemon_pid: int) -> Run:
    cpu = cpu_seconds(daemon_pid)
    before = stats(address)
    started = time.perf_counter()
    proc = subprocess.run([cb.rrdalarm_command(), "--settings", str(settings), "check", "--quiet", "--at", str(at)],
                          stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    seconds = time.perf_counter() - started
    if proc.returncode not in (0, 1):
        raise SystemExit(f"rrdalarm_bench: check exited {proc.returncode}: {proc.stderr.strip()}")
    after = stats(address)
    written = {k: after.get(k, 0) - before.get(k, 0) for k in STATS_KEYS}
    cpu = cpu_seconds(daemon_pid) - cpu
    return Run(seconds, cb.last_engine_seconds(settings.parent / "data"), cpu, written)


def configure(work: Path, name: str, root: Path, rrdcached: str) -> Path:
    settings, _data = cb.write_config(work, name, root, cb.RULES_1)
    with settings.open("a", encoding="utf-8") as fh:
        fh.write(f"rrdcached = {cb.toml_str(rrdcached)}\n")
    return settings


def measure(label: str, runs: int, step: Callable[[], Run], say: Callable[[str], None]) -> list[Run]:
    step()  # warm-up: index cache, database, page cache
    out = []
    for k in range(runs):
        r = step()
        w = r.written
        say(f"{label}: run {k + 1}/{runs} {r.seconds:.2f} s (in-engine {r.engine_s:.2f} s), daemon CPU "
            f"{r.daemon_cpu_s:.2f} s, wrote "
            f"{w['UpdatesWritten']} files ({w['DataSetsWritten']} points), {w['FlushesReceived']} FLUSH commands")
        out.append(r)
    return out


def median(runs: Sequence[Run], key: str = "seconds") -> float:
    return statistics.median(getattr(r, key) if hasattr(r, key) else r.written[key] for r in runs)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--files", type=int, default=DEFAULT_FILES, help="RRD files (default %(default)s)")
    parser.add_argument("--runs", type=int, default=3, help="measured runs per configuration")
    parser.add_argument("--write-interval", type=int, default=3600, help="rrdcached -w (default %(default)s s)")
    args = parser.parse_args(argv)
    n: int = args.files
    if shutil.which("rrdcached") is None:
        print("rrdcached_bench: rrdcached is not installed (Debian package rrdcached)")
        return 2

    def say(text: str) -> None:
        print(text, flush=True)

    corpus = cb.BENCH_DIR / ".corpus" / str(n)
    seconds, reused = cb.ensure_corpus(corpus, n)
    say(f"corpus {corpus}: {n} files, {'reused' if reused else 'generated'} in {seconds:.1f} s")
    work = Path(tempfile.mkdtemp(prefix="rrdc-bench-"))
    root = work / "rrd"
    daemon = Daemon(work, root)
    try:
        shutil.copytree(corpus, root)
        daemon.start(args.write_interval)
        collector = Collector(root, n, daemon.address)
        push_s = collector.round()
        say(f"collector: one update per file through rrdcached: {push_s:.2f} s")
        load_before = os.getloadavg()[0]
        fetch_loop(root, collector.when, "")
        floor_s = fetch_loop(root, collector.when, "")
        before = stats(daemon.address)
        floor_flush_s = fetch_loop(root, collector.when, daemon.address)
        flushed = stats(daemon.address)["UpdatesWritten"] - before["UpdatesWritten"]
        floor_daemon_s = fetch_loop(root, collector.when, daemon.address)
        say(f"floor: files {floor_s:.2f} s; through rrdcached {floor_flush_s:.2f} s with a point pending in "
            f"every file ({flushed} files written), {floor_daemon_s:.2f} s with nothing pending")

        files_cfg = configure(work, "files", root, "")
        daemon_cfg = configure(work, "daemon", root, daemon.address)
        assert daemon.proc is not None
        pid = daemon.proc.pid
        plain = measure("files", args.runs, lambda: run_check(files_cfg, collector.when, daemon.address, pid), say)
        idle = measure("rrdcached, nothing pending", args.runs,
                       lambda: run_check(daemon_cfg, collector.when, daemon.address, pid), say)
        pushes: list[float] = []

        def busy() -> Run:
            pushes.append(collector.round())
            return run_check(daemon_cfg, collector.when, daemon.address, pid)

        pending = measure("rrdcached, a new point per file", args.runs, busy, say)
    finally:
        daemon.stop()
        shutil.rmtree(work, ignore_errors=True)

    say("")
    say(f"{'cores (os.cpu_count())':<44} {os.cpu_count()}")
    say(f"{'load average (1 min), start / end':<44} {load_before:.2f} / {os.getloadavg()[0]:.2f}")
    say(f"{'files (N), rrdcached -w':<44} {n}, {args.write_interval} s")
    say(f"{'floor: glob + fetch of the files':<44} {floor_s:8.2f} s")
    say(f"{'floor through rrdcached, all pending':<44} {floor_flush_s:8.2f} s   ({floor_flush_s / floor_s:.2f}x floor)")
    say(f"{'floor through rrdcached, none pending':<44} {floor_daemon_s:8.2f} s   "
        f"({floor_daemon_s / floor_s:.2f}x floor)")
    for label, runs in (("check, files", plain), ("check, rrdcached, none pending", idle),
                        ("check, rrdcached, a point per file", pending)):
        engine = median(runs, "engine_s")
        say(f"{label:<44} {median(runs):8.2f} s   in-engine {engine:.2f} s ({engine / floor_s:.2f}x floor; "
            f"median of {len(runs)}); daemon CPU {median(runs, 'daemon_cpu_s'):.2f} s; "
            f"files written per check {median(runs, 'UpdatesWritten'):.0f}")
    say(f"{'collector round (N updates via rrdcached)':<44} {statistics.median(pushes):8.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
