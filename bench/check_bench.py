#!/usr/bin/env python3
"""Benchmark of `rrdalarm check` over a large ntopng-shaped RRD tree.

    python bench/check_bench.py [--files N ...] [--corpus DIR] [--keep] [--runs R] [--strict]

Steps (see bench/README.md), for each corpus size (default 20,000 then 100,000 files):

1. Corpus: N RRD files ``hosts/10/<a>/<b>/<c>/bytes.rrd`` (one host folder per
   file, 100 host folders per /24 folder), each with DERIVE ``sent``/``rcvd``,
   step 60 s, 4 h of data ending at END. Made by copying 16 template files; 2 %
   of the files get a spiky template, so a known number of series fire. It is
   reused when its marker file (written last) matches the parameters.
2. Floors: glob + one ``rrdtool.fetch`` per file in this process, run twice, the
   second (warm page cache) is the floor; the glob is ``hosts/**/*.rrd``
   (recursive). The tight floor does the same through ``hosts/*/*/*/*/bytes.rrd``,
   which lists only the folders on the way and is the faster of the two.
3. and 4. ``rrdalarm check --quiet --at END`` as a subprocess with 1 and with 10
   thresholds: a cold run (no index cache, new database), an untimed warm-up,
   then R measured steady-state runs (median wall time, largest peak RSS).
5. Rows written by one more steady-state run (check_runs, series_state, alarm_events).
6. A table with ratios against both floors and the targets, PASS/MISS.

Peak RSS is that of the biggest single process of the check (the CLI process
or one of its fetch workers): the larger of ``os.wait4``'s ``ru_maxrss`` (Linux
folds the maxrss of descendants the child waited for, i.e. its pool workers,
into the child's rusage) and the VmHWM high-water marks polled from /proc for
the child and its descendants every 100 ms. The peak of the summed RSS of the
process tree (polled VmRSS) is printed too, for information.

Exit status: 0, also when targets are missed (they print "TARGET MISSED");
1 with --strict when a target is missed; 2 when the corpus cannot be made or a
check fails to run.
"""

from __future__ import annotations

import argparse
import contextlib
import glob
import json
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import rrdtool  # type: ignore[import-untyped, unused-ignore]

BENCH_DIR = Path(__file__).resolve().parent
DEFAULT_SIZES = (20_000, 100_000)
STEP = 60
END = 1_700_000_040 // STEP * STEP  # fixed "now" of the corpus and of every check (--at)
DATA_SECONDS = 4 * 3600  # data written into each template
RRA_ROWS = DATA_SECONDS // STEP + 10  # one RRA: AVERAGE, 1 step, a bit more than 4 h
WINDOW = 3600  # the check window: now-1h .. now
HOSTS_PER_FOLDER = 100  # host folders per /24 folder
TEMPLATES = 16
NORMAL_TEMPLATES = 14  # templates 0..13: quiet traffic
SPIKE_EVERY = 50  # file i gets a spiky template when i % SPIKE_EVERY == 0
SPIKE_POINTS = 5  # the last points of a spiky template
# Spiky templates (rates in bytes/s during the spike): 14 spikes "sent", 15 both.
SPIKES: dict[int, dict[str, float]] = {14: {"sent": 30e6}, 15: {"sent": 60e6, "rcvd": 60e6}}
NORMAL_MIN, NORMAL_MAX = 0.1e6, 4.5e6  # quiet rates stay inside (checked while generating)
MARKER = ".check_bench.json"
INCOMPLETE = ".check_bench-incomplete"
CORPUS_VERSION = 1

TARGET_RATIO_1 = 1.0
TARGET_RATIO_10 = 1.5
TARGET_TIGHT_1 = 0.7  # against the tight floor (TIGHT_GLOB), from TIGHT_TARGET_FILES files
TARGET_TIGHT_10 = 0.9
TIGHT_TARGET_FILES = 100_000
TARGET_RSS_MB = 256.0
DB_TABLES = ("check_runs", "series_state", "alarm_events")


# ---------------------------------------------------------------------- corpus


@dataclass(frozen=True)
class Rule:
    """A threshold of the benchmark; limits sit outside the quiet range, so firing is known."""

    id: int
    direction: str
    limit: float
    ds: tuple[str, ...] = ()
    repetitions: int = 2

    def fires(self, template: int) -> list[str]:
        """The data sources of a file of this template that this rule fires on."""
        spikes = SPIKES.get(template, {})
        out = []
        for ds in self.ds or ("sent", "rcvd"):
            value = spikes.get(ds)
            if value is None:
                continue  # quiet: never crosses (limits are checked against the quiet range)
            if (self.direction == "above" and value > self.limit) or (
                self.direction == "below" and value < self.limit
            ):
                out.append(ds)
        return out


RULES_1 = (Rule(1, "above", 10e6),)
RULES_10 = (
    Rule(1, "above", 10e6),
    Rule(2, "above", 45e6, ("sent",)),
    Rule(3, "above", 20e6, ("rcvd",)),
    Rule(4, "below", 1e4),
    Rule(5, "above", 5e6, ("sent",), 3),
    Rule(6, "above", 50e6, ("sent",), 1),
    Rule(7, "below", 1e3, ("rcvd",)),
    Rule(8, "above", 100e6),
    Rule(9, "above", 8e6, (), 3),
    Rule(10, "above", 25e6, ("rcvd",)),
)
for _r in RULES_10:  # a limit inside the quiet range would make firing depend on noise
    assert _r.limit > NORMAL_MAX if _r.direction == "above" else _r.limit < NORMAL_MIN, _r
    assert _r.repetitions <= SPIKE_POINTS - 1, _r


def template_of(i: int) -> int:
    if i % SPIKE_EVERY == 0:
        return 14 if (i // SPIKE_EVERY) % 2 == 0 else 15
    return i % NORMAL_TEMPLATES


def rel_path(i: int) -> str:
    """ntopng's folder per IPv4 octet: 10.<a>.<b>.<c>, 100 hosts per /24."""
    c = i % HOSTS_PER_FOLDER + 1
    b = (i // HOSTS_PER_FOLDER) % 256
    a = i // (HOSTS_PER_FOLDER * 256)
    return f"hosts/10/{a}/{b}/{c}/bytes.rrd"


def template_counts(n: int) -> dict[int, int]:
    counts: dict[int, int] = {}
    for i in range(n):
        t = template_of(i)
        counts[t] = counts.get(t, 0) + 1
    return counts


def expected_firing(rules: Sequence[Rule], n: int) -> int:
    """Series that must be firing after a check over a corpus of n files."""
    return sum(len(r.fires(t)) * k for r in rules for t, k in template_counts(n).items())


def corpus_params(n: int) -> dict[str, Any]:
    return {
        "version": CORPUS_VERSION, "files": n, "end": END, "step": STEP, "data_seconds": DATA_SECONDS,
        "rra_rows": RRA_ROWS, "templates": TEMPLATES, "spike_every": SPIKE_EVERY,
        "spike_points": SPIKE_POINTS, "spikes": {str(k): v for k, v in SPIKES.items()},
        "hosts_per_folder": HOSTS_PER_FOLDER,
    }


def write_template(path: Path, t: int) -> None:
    """One template file: quiet rates (a slow wave plus noise), or a spike at the end."""
    start = END - DATA_SECONDS
    rrdtool.create(
        str(path), "--start", str(start - STEP), "--step", str(STEP),
        "DS:sent:DERIVE:120:0:U", "DS:rcvd:DERIVE:120:0:U", f"RRA:AVERAGE:0.5:1:{RRA_ROWS}",
    )
    points = DATA_SECONDS // STEP
    counters = [10**9 + 7919 * t, 2 * 10**9 + 104729 * t]
    lines = [f"{start}:{counters[0]}:{counters[1]}"]
    for k in range(1, points + 1):
        for j, ds in enumerate(("sent", "rcvd")):
            # Deterministic pseudo-noise: no random module, the corpus is the same everywhere.
            base = 0.3e6 + 0.15e6 * ((t * 7 + j * 3) % 15)
            wave = 1 + 0.3 * (((k + 11 * t + 5 * j) % 60) - 30) / 30
            noise = 1 + 0.1 * (((k * 37 + t * 13 + j * 7) % 21) - 10) / 10
            rate = base * wave * noise
            assert NORMAL_MIN < rate < NORMAL_MAX, rate
            if k > points - SPIKE_POINTS and ds in SPIKES.get(t, {}):
                rate = SPIKES[t][ds]
            counters[j] += round(rate * STEP)
        lines.append(f"{start + k * STEP}:{counters[0]}:{counters[1]}")
    for i in range(0, len(lines), 200):
        rrdtool.update(str(path), *lines[i : i + 200])


def count_files(root: Path) -> int:
    return sum(1 for _ in glob.iglob(str(root) + "/hosts/**/*.rrd", recursive=True))


def ensure_corpus(root: Path, n: int) -> tuple[float, bool]:
    """Make (or reuse) the corpus; returns (seconds spent, reused)."""
    params = corpus_params(n)
    marker = root / MARKER
    if marker.is_file():
        try:
            same = json.loads(marker.read_text(encoding="utf-8")) == params
        except ValueError:
            same = False
        if same:
            started = time.perf_counter()
            have = count_files(root)
            if have == n:
                return time.perf_counter() - started, True
            print(f"corpus {root}: {have} files instead of {n}; regenerating", flush=True)
        else:
            print(f"corpus {root}: made with other parameters; regenerating", flush=True)
    if root.exists():
        entries = {p.name for p in root.iterdir()}
        if entries and not entries & {MARKER, INCOMPLETE}:
            raise SystemExit(f"check_bench: {root} exists and is not a benchmark corpus; choose another --corpus")
        print(f"corpus {root}: removing the old tree", flush=True)
        shutil.rmtree(root)
    started = time.perf_counter()
    root.mkdir(parents=True)
    (root / INCOMPLETE).write_text("being generated by bench/check_bench.py\n", encoding="utf-8")
    with tempfile.TemporaryDirectory(prefix="check_bench-templates-") as tmp:
        templates = [Path(tmp) / f"t{t:02d}.rrd" for t in range(TEMPLATES)]
        for t, path in enumerate(templates):
            write_template(path, t)
        print(f"corpus {root}: {TEMPLATES} templates written; copying {n} files", flush=True)
        made: set[str] = set()
        tick = max(1, n // 10)
        for i in range(n):
            rel = rel_path(i)
            folder = rel.rsplit("/", 1)[0]
            parent = folder.rsplit("/", 1)[0]
            if parent not in made:
                os.makedirs(root / parent, exist_ok=True)
                made.add(parent)
            os.mkdir(root / folder)
            shutil.copyfile(templates[template_of(i)], root / rel)
            if (i + 1) % tick == 0 or i + 1 == n:
                print(f"  {i + 1:>8}/{n} files  {time.perf_counter() - started:6.1f} s", flush=True)
    marker.write_text(json.dumps(params, indent=1) + "\n", encoding="utf-8")
    (root / INCOMPLETE).unlink()
    return time.perf_counter() - started, False


# ----------------------------------------------------------------------- floor


# The files of the corpus, spelt two ways: the recursive glob walks every folder with
# os.scandir and tests each entry; the explicit levels list only the folders on the way.
RECURSIVE_GLOB = "/hosts/**/*.rrd"
TIGHT_GLOB = "/hosts/*/*/*/*/bytes.rrd"


def floor_once(root: Path, pattern: str = RECURSIVE_GLOB) -> tuple[float, int]:
    started = time.perf_counter()
    files = glob.glob(str(root) + pattern, recursive=pattern == RECURSIVE_GLOB)
    for path in files:
        rrdtool.fetch(path, "AVERAGE", "-s", str(END - WINDOW), "-e", str(END))
    return time.perf_counter() - started, len(files)


@dataclass(frozen=True)
class Floors:
    """Both floors of one corpus (warm runs); `tight` is the faster and stricter one."""

    recursive: float
    tight: float
    first: float  # the cold first run of the recursive floor, for information


def measure_floors(root: Path) -> tuple[Floors, int]:
    first, found = floor_once(root)
    recursive, found = floor_once(root)
    floor_once(root, TIGHT_GLOB)  # warm-up: the same files, another path through glob
    tight, found_tight = floor_once(root, TIGHT_GLOB)
    if found_tight != found:
        raise SystemExit(f"check_bench: the tight glob found {found_tight} files, the recursive one {found}")
    return Floors(recursive, tight, first), found


# -------------------------------------------------------------------- checks


def toml_str(value: str) -> str:
    return json.dumps(value)  # a JSON string is a valid TOML basic string


def thresholds_toml(rules: Sequence[Rule]) -> str:
    out = []
    for r in rules:
        ds = f"ds = [{', '.join(toml_str(d) for d in r.ds)}]\n" if r.ds else ""
        out.append(
            "[[threshold]]\n"
            f"id = {r.id}\n"
            f'name = "bench {r.id}: {r.direction} {r.limit:g}"\n'
            'glob = "hosts/**/bytes.rrd"\n'
            f"{ds}"
            f'type = "{r.direction}"\n'
            f"value = {r.limit!r}\n"
            f"repetitions = {r.repetitions}\n"
            'start = "now-1h"\n'
            'end = "now"\n'
            "rearm = 600\n"
        )
    return "\n".join(out)


def write_config(work: Path, name: str, corpus: Path, rules: Sequence[Rule]) -> tuple[Path, Path]:
    """Settings and thresholds files for one configuration; returns (settings, data dir)."""
    folder = work / name
    data = folder / "data"
    folder.mkdir(parents=True)
    thresholds = folder / "thresholds.toml"
    thresholds.write_text(thresholds_toml(rules), encoding="utf-8")
    settings = folder / "rrdalarm.toml"
    settings.write_text(
        f"rrd_root = {toml_str(str(corpus))}\n"
        f"thresholds = {toml_str(str(thresholds))}\n"
        f"data_dir = {toml_str(str(data))}\n"
        f"log_dir = {toml_str(str(folder / 'log'))}\n"
        'database_url = ""\n'
        "workers = 0\n"
        "lock_wait = 30\n",
        encoding="utf-8",
    )
    return settings, data


def _proc_status_kb(pid: int, key: str) -> int:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as fh:
            for line in fh:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


def _descendants(pid: int) -> list[int]:
    """pid and every process below it, from the ppid field of /proc/*/stat."""
    parent_of: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as fh:
                stat = fh.read()
        except OSError:
            continue
        # The command name is in parentheses and may hold spaces: split after the last ')'.
        fields = stat[stat.rfind(")") + 2 :].split()
        if len(fields) > 1:
            parent_of[int(entry)] = int(fields[1])
    tree = [pid]
    frontier = {pid}
    while frontier:
        frontier = {p for p, pp in parent_of.items() if pp in frontier}
        tree.extend(frontier)
    return tree


@dataclass
class MemoryPoll:
    """Polls /proc for the peak VmHWM of any process of the tree and the peak summed VmRSS."""

    pid: int
    interval: float = 0.1  # a scan of /proc costs ~3 ms of CPU; VmHWM keeps the peak between scans
    max_hwm_kb: int = 0
    max_sum_rss_kb: int = 0
    max_processes: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        while True:
            stopping = self._stop.is_set()
            tree = _descendants(self.pid)
            total = 0
            alive = 0
            for p in tree:
                hwm = _proc_status_kb(p, "VmHWM")
                rss = _proc_status_kb(p, "VmRSS")
                if hwm or rss:
                    alive += 1
                self.max_hwm_kb = max(self.max_hwm_kb, hwm)
                total += rss
            self.max_sum_rss_kb = max(self.max_sum_rss_kb, total)
            self.max_processes = max(self.max_processes, alive)
            if stopping:
                return
            self._stop.wait(self.interval)

    @contextlib.contextmanager
    def running(self) -> Iterator[MemoryPoll]:
        thread = threading.Thread(target=self.run, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            thread.join()


@dataclass(frozen=True)
class RunResult:
    seconds: float
    status: int
    maxrss_mb: float  # os.wait4: the child and the descendants it waited for
    hwm_mb: float  # polled VmHWM, any process of the tree
    sum_rss_mb: float  # polled, peak of the summed VmRSS of the tree
    processes: int
    stderr: str

    @property
    def peak_mb(self) -> float:
        return max(self.maxrss_mb, self.hwm_mb)


def rrdalarm_command() -> str:
    here = Path(sys.executable).parent / "rrdalarm"
    if here.exists():
        return str(here)
    found = shutil.which("rrdalarm")
    if found is None:
        raise SystemExit("check_bench: no `rrdalarm` next to the Python running this script, nor on PATH")
    return found


def run_check(settings: Path) -> RunResult:
    cmd = [rrdalarm_command(), "--settings", str(settings), "check", "--quiet", "--at", str(END)]
    with tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err)
        poll = MemoryPoll(proc.pid)
        with poll.running():
            _pid, wait_status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(wait_status)
        err.seek(0)
        stderr = err.read().decode(errors="replace")
    return RunResult(seconds, proc.returncode, usage.ru_maxrss / 1024, poll.max_hwm_kb / 1024,
                     poll.max_sum_rss_kb / 1024, poll.max_processes, stderr)


def db_counts(data: Path) -> dict[str, int]:
    con = sqlite3.connect(f"file:{data / 'rrdalarm.db'}?mode=ro", uri=True)
    try:
        return {t: int(con.execute(f"SELECT count(*) FROM {t}").fetchone()[0]) for t in DB_TABLES}
    finally:
        con.close()


def firing_series(data: Path) -> int:
    con = sqlite3.connect(f"file:{data / 'rrdalarm.db'}?mode=ro", uri=True)
    try:
        return int(con.execute("SELECT count(*) FROM series_state WHERE state = 'FIRING'").fetchone()[0])
    finally:
        con.close()


def last_engine_seconds(data: Path) -> float:
    """The check's own duration (run_check, without interpreter start-up and database open)."""
    con = sqlite3.connect(f"file:{data / 'rrdalarm.db'}?mode=ro", uri=True)
    try:
        row = con.execute("SELECT duration_s FROM check_runs ORDER BY id DESC LIMIT 1").fetchone()
        return float(row[0]) if row else float("nan")
    finally:
        con.close()


class CheckFailed(Exception):
    pass


def checked(result: RunResult, what: str) -> RunResult:
    # 0: nothing firing, 1: something firing; both mean the check ran.
    if result.status not in (0, 1):
        raise CheckFailed(f"{what}: rrdalarm exited with status {result.status}\n{result.stderr.strip()}")
    return result


@dataclass
class ConfigResult:
    name: str
    thresholds: int
    cold: RunResult
    runs: list[RunResult]
    engine_s: list[float]
    rows: dict[str, int]
    firing: int
    expected_firing: int

    @property
    def seconds(self) -> float:
        return statistics.median(r.seconds for r in self.runs)

    @property
    def best(self) -> float:
        return min(r.seconds for r in self.runs)

    @property
    def peak_mb(self) -> float:
        return max(r.peak_mb for r in self.runs)

    @property
    def sum_rss_mb(self) -> float:
        return max(r.sum_rss_mb for r in self.runs)


def bench_config(work: Path, name: str, corpus: Path, rules: Sequence[Rule], n: int, runs: int,
                 say: Callable[[str], None]) -> ConfigResult:
    settings, data = write_config(work, name, corpus, rules)
    cold = checked(run_check(settings), f"{name}: cold run")
    say(f"{name}: cold run (no index cache, new database) {cold.seconds:.2f} s, exit {cold.status}")
    firing = firing_series(data)
    expected = expected_firing(rules, n)
    if firing != expected:
        say(f"{name}: WARNING: {firing} series firing after the cold run, expected {expected}")
    checked(run_check(settings), f"{name}: warm-up run")
    measured = []
    engine_s = []
    for k in range(runs):
        r = checked(run_check(settings), f"{name}: run {k + 1}")
        engine_s.append(last_engine_seconds(data))
        say(f"{name}: run {k + 1}/{runs} {r.seconds:.2f} s, peak RSS {r.peak_mb:.0f} MB "
            f"(wait4 {r.maxrss_mb:.0f}, VmHWM {r.hwm_mb:.0f}), tree {r.sum_rss_mb:.0f} MB in {r.processes} processes")
        measured.append(r)
    before = db_counts(data)
    checked(run_check(settings), f"{name}: rows run")
    after = db_counts(data)
    rows = {t: after[t] - before[t] for t in DB_TABLES}
    return ConfigResult(name, len(rules), cold, measured, engine_s, rows, firing, expected)


# ---------------------------------------------------------------------- report


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


@dataclass
class SizeResult:
    files: int
    floors: Floors
    results: list[ConfigResult]
    load: tuple[float, float]  # 1-min load average at start and end


def bench_size(n: int, corpus_arg: Path | None, runs: int, keep: bool, say: Callable[[str], None]) -> SizeResult:
    """Corpus, both floors and both configurations for one corpus size; CheckFailed if a check does not run."""
    corpus = Path(os.path.abspath(corpus_arg or BENCH_DIR / ".corpus" / str(n)))
    seconds, reused = ensure_corpus(corpus, n)
    say(f"corpus {corpus}: {n} files, {'reused' if reused else 'generated'} in {seconds:.1f} s")
    load_before = os.getloadavg()[0]
    floors, found = measure_floors(corpus)
    say(f"floor: glob {RECURSIVE_GLOB} + fetch of {found} files: {floors.first:.2f} s, then "
        f"{floors.recursive:.2f} s (warm, used); glob {TIGHT_GLOB} + fetch: {floors.tight:.2f} s (warm)")
    if found != n:
        raise CheckFailed(f"the floor found {found} files, expected {n}")
    work = Path(tempfile.mkdtemp(prefix="check_bench-"))
    results: list[ConfigResult] = []
    try:
        for name, rules in (("1 threshold", RULES_1), ("10 thresholds", RULES_10)):
            results.append(bench_config(work, name, corpus, rules, n, runs, say))
    finally:
        if keep:
            say(f"work folder kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return SizeResult(n, floors, results, (load_before, os.getloadavg()[0]))


def size_checks(r: SizeResult) -> list[tuple[str, bool, str]]:
    """(label, met, value) of each target at one size; the tight-floor targets count from TIGHT_TARGET_FILES."""
    one, ten = r.results
    n = f"{r.files:,}"
    out = [
        (f"{n}: 1 threshold <= {TARGET_RATIO_1}x floor", one.seconds / r.floors.recursive <= TARGET_RATIO_1,
         f"{one.seconds / r.floors.recursive:.3f}x"),
        (f"{n}: 10 thresholds <= {TARGET_RATIO_10}x floor", ten.seconds / r.floors.recursive <= TARGET_RATIO_10,
         f"{ten.seconds / r.floors.recursive:.3f}x"),
    ]
    if r.files >= TIGHT_TARGET_FILES:
        out += [
            (f"{n}: 1 threshold <= {TARGET_TIGHT_1}x tight floor", one.seconds / r.floors.tight <= TARGET_TIGHT_1,
             f"{one.seconds / r.floors.tight:.3f}x"),
            (f"{n}: 10 thresholds <= {TARGET_TIGHT_10}x tight floor",
             ten.seconds / r.floors.tight <= TARGET_TIGHT_10, f"{ten.seconds / r.floors.tight:.3f}x"),
        ]
    peak = max(one.peak_mb, ten.peak_mb)
    rows_ok = all(c.rows == {"check_runs": 1, "series_state": 0, "alarm_events": 0} for c in r.results)
    out += [
        (f"{n}: peak RSS <= {TARGET_RSS_MB:.0f} MB", peak <= TARGET_RSS_MB, f"{peak:.0f} MB"),
        (f"{n}: steady-state rows O(1)", rows_ok, "1/0/0" if rows_ok else "see above"),
    ]
    return out


def print_size(r: SizeResult, say: Callable[[str], None]) -> None:
    f = r.floors

    def rows_text(c: ConfigResult) -> str:
        return ", ".join(f"{t} +{v}" for t, v in c.rows.items())

    def ratios(sec: float) -> str:
        return f"{sec / f.recursive:.2f}x floor, {sec / f.tight:.2f}x tight floor"

    say("")
    say(f"{'files (N)':<38} {r.files}")
    say(f"{'load average (1 min), start / end':<38} {r.load[0]:.2f} / {r.load[1]:.2f}"
        "   (other processes share the cores)")
    say(f"{'floor: glob ** + fetch, 1 process':<38} {f.recursive:8.2f} s")
    say(f"{'tight floor: glob */*/*/* + fetch':<38} {f.tight:8.2f} s")
    for c in r.results:
        say(f"{c.name + ': cold run':<38} {c.cold.seconds:8.2f} s   ({ratios(c.cold.seconds)})")
        say(f"{c.name + ': steady state':<38} {c.seconds:8.2f} s   ({ratios(c.seconds)}; "
            f"median of {len(c.runs)}, best {c.best:.2f} s; in-engine {statistics.median(c.engine_s):.2f} s)")
        say(f"{c.name + ': peak RSS':<38} {c.peak_mb:8.0f} MB  (biggest process; "
            f"tree total {c.sum_rss_mb:.0f} MB)")
        say(f"{c.name + ': rows per steady run':<38} {rows_text(c)}")
        say(f"{c.name + ': series firing':<38} {c.firing} (expected {c.expected_firing})")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--files", type=int, action="append",
                        help=f"RRD files in the corpus; repeat for several sizes (default {DEFAULT_SIZES})")
    parser.add_argument("--corpus", type=Path, help="corpus folder (default bench/.corpus/<files>; one size only)")
    parser.add_argument("--keep", action="store_true",
                        help="keep the work folder (settings, thresholds, data dirs with database and index)")
    parser.add_argument("--runs", type=int, default=3, help="measured steady-state runs per configuration")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args(argv)
    sizes: list[int] = args.files or list(DEFAULT_SIZES)
    if min(sizes) < 1 or args.runs < 1:
        parser.error("--files and --runs must be at least 1")
    if args.corpus and len(sizes) > 1:
        parser.error("--corpus takes one --files")

    def say(text: str) -> None:
        print(text, flush=True)

    done: list[SizeResult] = []
    try:
        for n in sizes:
            done.append(bench_size(n, args.corpus, args.runs, args.keep, say))
    except CheckFailed as exc:
        say(f"check_bench: {exc}")
        return 2
    say("")
    say(f"{'cores (os.cpu_count())':<38} {os.cpu_count()}")
    checks = []
    for r in done:
        print_size(r, say)
        checks += size_checks(r)
    say("")
    missed = False
    for label, ok, value in checks:
        say(f"{verdict(ok)}  {label:<44} {value}")
        missed |= not ok
    for label, ok, value in checks:
        if not ok:
            say(f"TARGET MISSED: {label}: {value}")
    return 1 if missed and args.strict else 0


if __name__ == "__main__":
    sys.exit(main())
