#!/usr/bin/env python3
"""Benchmark of a check split across workers next to two RRD trees, against one machine's check.

    python bench/cluster_bench.py [--files N ...] [--runs R] [--sqlite] [--keep] [--strict]

Steps (see bench/README.md):

1. Corpus: two trees of N files each (default N = 50,000, then 100,000), each its
   own copy of check_bench's corpus, in ``bench/.corpus/cluster-<N>/{a,b}``, reused.
2. Services: a real ``redis-server`` on a loopback port (the broker and result
   backend) and a throwaway PostgreSQL cluster (tests/pg.py; ``--sqlite`` or no
   PostgreSQL: SQLite), both in a temporary folder.
3. Cluster: 4 ``rrdalarm worker`` processes, 2 per tree, and ``rrdalarm check
   --quiet --at END`` as the coordinator, at two levels of firing series chosen
   by glob (the same count at every size: 4,000 and 40,000). Per check: wall time,
   the coordinator's CPU (user + sys) and peak RSS, the bytes into and out of
   Redis (``INFO stats``), the workers' and Redis's CPU, the shards run.
4. One machine: the same thresholds over the same 2 x N files under one root
   (``tree = "local"``), at the largest size.
5. Ratios: the coordinator's CPU per check at the two sizes (same firing series)
   and at the two firing levels (same size); PASS/MISS.

Exit status: 0, also when a target is missed (TARGET MISSED lines); 1 with
--strict when a target is missed; 2 when the corpus, Redis, PostgreSQL or the
workers cannot be set up, or a check does not run.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import os
import pwd
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import check_bench as cb  # the corpus, the memory poll and the rrdalarm command of check_bench
import sqlalchemy

sys.path.insert(0, str(cb.BENCH_DIR.parent / "tests"))
# tests/pg.py and tests/redis_server.py: the tests' throwaway PostgreSQL and redis-server.
from pg import Cluster, bin_dir
from redis_server import RedisServer

DEFAULT_SIZES = (50_000, 100_000)
TREES = ("a", "b")
WORKERS_PER_TREE = 2
SHARDS_PER_TREE = 4
# Long enough that no shard is sent twice on a loaded machine (a redo would double the work measured).
ANSWER_TIMEOUT_S = 300
REDO_AFTER_S = 240
CHECK_TIMEOUT_S = ANSWER_TIMEOUT_S + 120.0
READY_TIMEOUT_S = 90.0
STOP_TIMEOUT_S = 20.0
IDLE_S = 3.0  # how long the broker's idle traffic is measured

FIRE_LIMIT = 1_000.0  # below every rate of the corpus (quiet rates stay above 0.1e6 B/s): all its series fire
QUIET_LIMIT = 1e9  # above every rate of the corpus (spikes reach 60e6 B/s): none fire
# Each tree's files in four groups, by the folders of the corpus's octets (hosts/10/<a>/<b>/<c>/):
# one threshold each, so the groups that fire are chosen by limit and their size is fixed by path.
GROUPS = (
    "hosts/10/0/?/*/bytes.rrd",  # a = 0, b 0..9: 1,000 files
    "hosts/10/0/??/*/bytes.rrd",  # a = 0, b 10..99: 9,000 files
    "hosts/10/0/???/*/bytes.rrd",  # a = 0, b 100..255
    "hosts/10/[1-9]*/*/*/bytes.rrd",  # a >= 1
)
LEVELS = (1, 2)  # how many of the first groups fire: 2,000 and 20,000 series per tree
DS_PER_FILE = 2

TARGET_SIZE_RATIO = 1.2  # the coordinator's CPU and bytes per check at 2N vs N files, same firing series
TARGET_GROWTH = 1.2  # the coordinator's CPU per check at 10x the firing series, same files
TARGET_RSS_MB = 256.0
SHARD_LINE = re.compile(r"tree \S+ shard \d+/\d+: \d+ files in ")


class BenchError(Exception):
    """Something the benchmark needs could not be set up, or a check did not run."""


# ------------------------------------------------------------------- thresholds


def group_of(i: int) -> int:
    """The group (index into GROUPS) of file i of check_bench's corpus."""
    a = i // (cb.HOSTS_PER_FOLDER * 256)
    b = (i // cb.HOSTS_PER_FOLDER) % 256
    if a > 0:
        return 3
    return 0 if b < 10 else 1 if b < 100 else 2


def expected_firing(files: int, level: int) -> int:
    """Series firing over both trees of `files` files each when the first `level` groups fire."""
    return len(TREES) * DS_PER_FILE * sum(1 for i in range(files) if group_of(i) < level)


def expected_errors(files: int) -> int:
    """Rows that say a threshold's glob matched no file: the groups a tree of `files` files does not reach."""
    reached = {group_of(i) for i in range(files)}
    return len(TREES) * (len(GROUPS) - len(reached))


def thresholds_toml(level: int, cluster: bool) -> str:
    """Four thresholds per tree; on one machine the same ones read the tree's folder under one root."""
    out = []
    for k, tree in enumerate(TREES):
        for g, pattern in enumerate(GROUPS):
            limit = FIRE_LIMIT if g < level else QUIET_LIMIT
            out.append(
                "[[threshold]]\n"
                f"id = {k * len(GROUPS) + g + 1}\n"
                f'name = "tree {tree} group {g + 1}"\n'
                f"glob = {cb.toml_str(pattern if cluster else f'{tree}/{pattern}')}\n"
                + (f"tree = {cb.toml_str(tree)}\n" if cluster else "")
                + f'type = "above"\nvalue = {limit!r}\nrepetitions = 2\n'
                'start = "now-1h"\nend = "now"\nrearm = 600\n'
            )
    return "\n".join(out)


# ---------------------------------------------------------------------- services


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_redis(folder: Path) -> RedisServer:
    if shutil.which("redis-server") is None:
        raise BenchError("redis-server is missing: bash scripts/setup.sh redis-server")
    folder.mkdir(parents=True)
    server = RedisServer(folder, free_port())
    try:
        server.start()  # waits at most 10 s for PONG
    except AssertionError as exc:
        raise BenchError(str(exc)) from None
    return server


def start_postgres() -> Cluster | None:
    """A throwaway PostgreSQL cluster on a unix socket (tests/pg.py), or None when it is not installed.

    Its folder is a temporary one of its own: as root the cluster runs as `postgres`, which must reach it.
    """
    try:
        import psycopg  # noqa: F401 - only whether the driver is there
    except ImportError:
        return None
    found = bin_dir()
    if found is None:
        return None
    owner = None
    if os.geteuid() == 0:  # initdb refuses root
        try:
            owner = pwd.getpwnam("postgres").pw_name
        except KeyError:
            return None
    folder = Path(tempfile.mkdtemp(prefix="cluster_bench-pg-"))
    if owner is not None:
        shutil.chown(folder, owner, owner)
    cluster = Cluster(folder, found, owner)
    try:
        cluster.start()
    except (RuntimeError, subprocess.TimeoutExpired) as exc:
        shutil.rmtree(folder, ignore_errors=True)
        raise BenchError(f"PostgreSQL did not start: {exc}") from None
    return cluster


@dataclass
class Databases:
    """A new empty database per configuration: on the PostgreSQL cluster, else an SQLite file."""

    pg: Cluster | None

    def new(self, data: Path) -> str:
        if self.pg is None:
            return f"sqlite:///{data}/rrdalarm.db"
        return self.pg.url(self.pg.create_database())

    @property
    def kind(self) -> str:
        return "PostgreSQL 15 (tests/pg.py, unix socket)" if self.pg else "SQLite (a file per configuration)"


def redis_stats(port: int) -> dict[str, str]:
    """INFO stats and cpu of the server, over a socket of its own (its own bytes are measured: see info_cost)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"INFO everything\r\n")
        data = b""
        while b"\r\n" not in data:
            chunk = s.recv(65536)
            if not chunk:
                raise BenchError("redis-server closed the connection during INFO")
            data += chunk
        head, _, body = data.partition(b"\r\n")
        size = int(head[1:])
        while len(body) < size:
            chunk = s.recv(65536)
            if not chunk:
                raise BenchError("redis-server closed the connection during INFO")
            body += chunk
    lines = body[:size].decode().splitlines()
    return dict(line.split(":", 1) for line in lines if ":" in line and not line.startswith("#"))


@dataclass(frozen=True)
class Traffic:
    """Redis's byte counters: into it (what clients sent) and out of it (what they received)."""

    into: int
    out: int

    @staticmethod
    def now(port: int) -> Traffic:
        s = redis_stats(port)
        return Traffic(int(s["total_net_input_bytes"]), int(s["total_net_output_bytes"]))

    def __sub__(self, other: Traffic) -> Traffic:
        return Traffic(self.into - other.into, self.out - other.out)


def info_cost(port: int) -> Traffic:
    """The bytes one INFO costs (the smallest of a few back-to-back deltas), subtracted from every delta."""
    seen = [Traffic.now(port) for _ in range(4)]
    deltas = [b - a for a, b in itertools.pairwise(seen)]
    return min(deltas, key=lambda t: t.into + t.out)


# ---------------------------------------------------------------------- workers


def cpu_seconds(pids: Sequence[int]) -> float:
    """User + sys CPU of the processes, their live descendants and the children they reaped (/proc)."""
    ticks = 0
    for top in pids:
        for pid in cb._descendants(top):
            try:
                with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
                    stat = fh.read()
            except OSError:
                continue
            fields = stat[stat.rfind(")") + 2 :].split()
            # utime, stime, cutime, cstime: a reaped fetch process's time moves to its parent's cutime.
            ticks += sum(int(x) for x in fields[11:15])
    return ticks / os.sysconf("SC_CLK_TCK")


@dataclass
class Worker:
    """A `rrdalarm worker` process in a session of its own (stopping it stops its fetch processes)."""

    tree: str
    proc: subprocess.Popen[bytes]
    log: Path

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def shards_done(self) -> int:
        return len(SHARD_LINE.findall(self.text()))

    def stop(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=STOP_TIMEOUT_S)


def worker_settings(path: Path, broker: str) -> Path:
    data = path.parent / (path.stem + "-data")
    path.write_text(
        f"data_dir = {cb.toml_str(str(data))}\n"
        "workers = 1\n"  # one fetch process per worker: 4 workers, 2 cores
        f"[cluster]\nbroker = {cb.toml_str(broker)}\nanswer_timeout = {ANSWER_TIMEOUT_S}\n",
        encoding="utf-8")
    return path


@contextlib.contextmanager
def running_workers(work: Path, corpus: Path, broker: str) -> Iterator[list[Worker]]:
    """WORKERS_PER_TREE workers per tree, ready to take shards; stopped (SIGTERM, then SIGKILL) on leaving."""
    started: list[Worker] = []
    work.mkdir(parents=True)
    try:
        for tree in TREES:
            for k in range(WORKERS_PER_TREE):
                name = f"worker-{tree}{k + 1}"
                settings = worker_settings(work / f"{name}.toml", broker)
                log = work / f"{name}.log"
                with log.open("wb") as out:
                    proc = subprocess.Popen(
                        [cb.rrdalarm_command(), "worker", "--tree", tree, "--rrd-root", str(corpus / tree),
                         "--settings", str(settings), "--concurrency", "1"],
                        stdin=subprocess.DEVNULL, stdout=out, stderr=out, cwd=work, start_new_session=True,
                        env={k: v for k, v in os.environ.items() if not k.startswith("RRDALARM_")})
                started.append(Worker(tree, proc, log))
        deadline = time.monotonic() + READY_TIMEOUT_S
        for w in started:
            while " ready." not in w.text():
                if w.proc.poll() is not None or time.monotonic() > deadline:
                    raise BenchError(f"worker of tree {w.tree} not ready (exit {w.proc.poll()}):\n{w.text()[-2000:]}")
                time.sleep(0.1)
        yield started
    finally:
        for w in started:
            w.stop()


# ---------------------------------------------------------------------- checks


@dataclass(frozen=True)
class Config:
    cluster: bool
    files: int  # per tree
    level: int

    @property
    def firing(self) -> int:
        return expected_firing(self.files, self.level)

    @property
    def name(self) -> str:
        where = "cluster" if self.cluster else "one machine"
        return f"{where} {len(TREES)}x{self.files:,} files, {self.firing:,} firing"


@dataclass(frozen=True)
class CheckRun:
    """One check as measured from outside, and as recorded."""

    seconds: float
    cpu_s: float  # the check process (and the fetch processes it waited for: none on the coordinator)
    peak_mb: float
    traffic: Traffic  # into and out of Redis, less the INFO calls
    workers_cpu_s: float
    redis_cpu_s: float
    shards: int
    engine_s: float
    files: int
    firing: int
    errors: int


@dataclass
class Context:
    """What every configuration shares."""

    work: Path
    redis: RedisServer
    databases: Databases
    info: Traffic = field(default_factory=lambda: Traffic(0, 0))
    workers: list[Worker] = field(default_factory=list)
    say: Callable[[str], None] = print


def write_settings(ctx: Context, config: Config, corpus: Path) -> tuple[Path, str]:
    """The check's settings and thresholds in a folder of their own; returns (settings, database URL)."""
    folder = ctx.work / re.sub(r"[^a-z0-9]+", "-", config.name.lower())
    data = folder / "data"
    data.mkdir(parents=True)
    (folder / "thresholds.toml").write_text(thresholds_toml(config.level, config.cluster), encoding="utf-8")
    url = ctx.databases.new(data)
    # The coordinator reads no file itself: its root is an empty folder.
    root = folder / "empty-root" if config.cluster else corpus
    root.mkdir(exist_ok=True)
    text = (f"rrd_root = {cb.toml_str(str(root))}\nthresholds = {cb.toml_str(str(folder / 'thresholds.toml'))}\n"
            f"data_dir = {cb.toml_str(str(data))}\nlog_dir = {cb.toml_str(str(folder / 'log'))}\n"
            f"database_url = {cb.toml_str(url)}\nworkers = 0\nlock_wait = 30\n")
    if config.cluster:
        text += (f"[cluster]\nbroker = {cb.toml_str(ctx.redis.url)}\nshards_per_tree = {SHARDS_PER_TREE}\n"
                 f"answer_timeout = {ANSWER_TIMEOUT_S}\nredo_after = {REDO_AFTER_S}\n")
    settings = folder / "rrdalarm.toml"
    settings.write_text(text, encoding="utf-8")
    return settings, url


def wait_with_timeout(proc: subprocess.Popen[bytes], timeout: float) -> tuple[int, float, float]:
    """(exit status, user + sys CPU s, ru_maxrss MB) from wait4; killed and BenchError past `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            proc.returncode = os.waitstatus_to_exitcode(status)
            return proc.returncode, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024
        if time.monotonic() > deadline:
            proc.kill()
            proc.wait(timeout=STOP_TIMEOUT_S)
            raise BenchError(f"a check ran longer than {timeout:.0f} s: killed")
        time.sleep(0.01)


def last_run(url: str) -> tuple[float, int, int, int]:
    """(in-engine seconds, files, firing, errors) of the newest recorded check."""
    engine = sqlalchemy.create_engine(url)
    try:
        with engine.connect() as con:
            row = con.execute(sqlalchemy.text(
                "SELECT duration_s, files_checked, firing, errors FROM check_runs ORDER BY id DESC LIMIT 1")).one()
    finally:
        engine.dispose()
    return float(row[0]), int(row[1]), int(row[2]), int(row[3])


def run_check(ctx: Context, settings: Path, url: str, what: str) -> CheckRun:
    """One `rrdalarm check --quiet --at END`, measured; BenchError if it does not run."""
    cmd = [cb.rrdalarm_command(), "--settings", str(settings), "check", "--quiet", "--at", str(cb.END)]
    pids = [w.proc.pid for w in ctx.workers]
    assert ctx.redis.proc is not None
    shards0, wcpu0, rcpu0 = sum(w.shards_done() for w in ctx.workers), cpu_seconds(pids), cpu_seconds(
        [ctx.redis.proc.pid])
    traffic0 = Traffic.now(ctx.redis.port)
    with tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err)
        poll = cb.MemoryPoll(proc.pid)
        with poll.running():
            status, cpu, maxrss = wait_with_timeout(proc, CHECK_TIMEOUT_S)
        seconds = time.perf_counter() - started
        err.seek(0)
        stderr = err.read().decode(errors="replace")
    traffic = Traffic.now(ctx.redis.port) - traffic0
    if status not in (0, 1):  # 0: nothing firing, 1: something firing; both mean the check ran
        raise BenchError(f"{what}: rrdalarm check exited with status {status}\n{stderr.strip()}")
    # Reaped worker children are only in cutime once reaped: let the workers finish their shard's clean-up.
    time.sleep(0.2)
    engine_s, files, firing, errors = last_run(url)
    return CheckRun(seconds, cpu, max(maxrss, poll.max_hwm_kb / 1024), traffic - ctx.info,
                    cpu_seconds(pids) - wcpu0, cpu_seconds([ctx.redis.proc.pid]) - rcpu0,
                    sum(w.shards_done() for w in ctx.workers) - shards0, engine_s, files, firing, errors)


@dataclass
class Result:
    config: Config
    cold: CheckRun
    runs: list[CheckRun]

    def median(self, value: Callable[[CheckRun], float]) -> float:
        return statistics.median(value(r) for r in self.runs)


def bench_config(ctx: Context, config: Config, corpus: Path, runs: int) -> Result:
    """A cold check, an untimed warm-up, then `runs` measured checks."""
    settings, url = write_settings(ctx, config, corpus)
    cold = run_check(ctx, settings, url, f"{config.name}: cold run")
    ctx.say(f"{config.name}: cold run {cold.seconds:.2f} s, {cold.firing:,} firing (expected {config.firing:,})")
    run_check(ctx, settings, url, f"{config.name}: warm-up run")
    measured = []
    for k in range(runs):
        r = run_check(ctx, settings, url, f"{config.name}: run {k + 1}")
        ctx.say(f"{config.name}: run {k + 1}/{runs} {r.seconds:.2f} s, coordinator CPU {r.cpu_s:.2f} s, "
                f"peak RSS {r.peak_mb:.0f} MB, broker in {r.traffic.into:,} B / out {r.traffic.out:,} B, "
                f"workers CPU {r.workers_cpu_s:.2f} s, shards {r.shards}, errors {r.errors}")
        measured.append(r)
    return Result(config, cold, measured)


# ---------------------------------------------------------------------- the run


def corpus_for(files: int, say: Callable[[str], None]) -> Path:
    """Both trees of `files` files, each its own copy of check_bench's corpus, side by side under one folder."""
    parent = cb.BENCH_DIR / ".corpus" / f"cluster-{files}"
    for tree in TREES:
        seconds, reused = cb.ensure_corpus(parent / tree, files)
        say(f"corpus {parent / tree}: {files:,} files, {'reused' if reused else 'generated'} in {seconds:.1f} s")
    return parent


def idle_traffic(ctx: Context) -> Traffic:
    """What the idle workers exchange with Redis in IDLE_S seconds (their polling), for reference."""
    before = Traffic.now(ctx.redis.port)
    time.sleep(IDLE_S)
    return Traffic.now(ctx.redis.port) - before - ctx.info


@dataclass
class Outcome:
    results: list[Result] = field(default_factory=list)
    idle: dict[int, Traffic] = field(default_factory=dict)  # per tree size
    load: list[float] = field(default_factory=list)

    def find(self, cluster: bool, files: int, level: int) -> Result | None:
        return next((r for r in self.results if r.config == Config(cluster, files, level)), None)


def bench_all(ctx: Context, sizes: Sequence[int], runs: int, local: bool) -> Outcome:
    out = Outcome(load=[os.getloadavg()[0]])
    for files in sizes:
        corpus = corpus_for(files, ctx.say)
        with running_workers(ctx.work / f"workers-{files}", corpus, ctx.redis.url) as workers:
            ctx.workers = workers
            out.idle[files] = idle_traffic(ctx)
            ctx.say(f"{len(workers)} workers ready over 2x{files:,} files; idle broker traffic "
                    f"{out.idle[files].into / IDLE_S:,.0f} B/s in, {out.idle[files].out / IDLE_S:,.0f} B/s out")
            for level in LEVELS:
                out.results.append(bench_config(ctx, Config(True, files, level), corpus, runs))
            ctx.workers = []
    if local:
        files = max(sizes)
        corpus = corpus_for(files, ctx.say)
        for level in LEVELS:
            out.results.append(bench_config(ctx, Config(False, files, level), corpus, runs))
    out.load.append(os.getloadavg()[0])
    return out


# ---------------------------------------------------------------------- report


def kb(n: float) -> str:
    return f"{n / 1024:,.0f}"


def print_table(out: Outcome, say: Callable[[str], None]) -> None:
    say("")
    say(f"{'configuration':<42} {'wall s':>7} {'engine':>7} {'coord':>6} {'coord':>6} {'broker KB':>15} "
        f"{'workers':>8} {'redis':>6} {'shards':>6} {'files':>8} {'firing':>7}")
    say(f"{'(median of the measured runs)':<42} {'':>7} {'s':>7} {'CPU s':>6} {'RSS MB':>6} {'in / out':>15} "
        f"{'CPU s':>8} {'CPU s':>6} {'':>6} {'':>8} {'':>7}")
    for r in out.results:
        c = r.config
        mark = "" if all(x.firing == c.firing and x.errors == expected_errors(c.files) for x in r.runs) else " !"
        broker = f"{kb(r.median(lambda x: x.traffic.into))} / {kb(r.median(lambda x: x.traffic.out))}"
        say(f"{c.name:<42} {r.median(lambda x: x.seconds):7.2f} {r.median(lambda x: x.engine_s):7.2f} "
            f"{r.median(lambda x: x.cpu_s):6.2f} {max(x.peak_mb for x in r.runs):6.0f} {broker:>15} "
            f"{r.median(lambda x: x.workers_cpu_s):8.2f} {r.median(lambda x: x.redis_cpu_s):6.2f} "
            f"{r.median(lambda x: x.shards):6.0f} {r.median(lambda x: x.files):8,.0f} "
            f"{r.median(lambda x: x.firing):7,.0f}{mark}")
    say("(engine: the check's duration as recorded, without start-up; coord CPU: user + sys of the `rrdalarm check` "
        "process, with its fetch processes on one machine; cold runs are left out)")


def cpu(r: Result) -> float:
    return r.median(lambda x: x.cpu_s)


def traffic(r: Result) -> float:
    return r.median(lambda x: x.traffic.into + x.traffic.out)


def size_checks(out: Outcome, small: int, large: int) -> list[tuple[str, bool, str]]:
    """The coordinator's CPU and bytes per check at 2 x large vs 2 x small files, at each firing level."""
    checks = []
    for level in LEVELS:
        a, b = out.find(True, small, level), out.find(True, large, level)
        if a is None or b is None or a.config.firing != b.config.firing:
            continue  # below 10,000 files per tree the firing groups are not whole: no like for like
        firing = f"{a.config.firing:,} firing"
        per_file = (cpu(b) - cpu(a)) / (len(TREES) * (large - small)) * 1e6
        checks.append((f"coordinator CPU, 2x{large:,} / 2x{small:,} files, {firing} <= {TARGET_SIZE_RATIO}x",
                       cpu(b) / cpu(a) <= TARGET_SIZE_RATIO, f"{cpu(b) / cpu(a):.3f}x ({per_file:+.2f} us per file)"))
        checks.append((f"broker bytes, 2x{large:,} / 2x{small:,} files, {firing} <= {TARGET_SIZE_RATIO}x",
                       traffic(b) / traffic(a) <= TARGET_SIZE_RATIO, f"{traffic(b) / traffic(a):.3f}x"))
    return checks


def growth_checks(out: Outcome, files: int) -> list[tuple[str, bool, str]]:
    """The coordinator's CPU per check at the high firing level vs the low one, same files."""
    low, high = out.find(True, files, LEVELS[0]), out.find(True, files, LEVELS[-1])
    if low is None or high is None:
        return []
    per_series = (cpu(high) - cpu(low)) / (high.config.firing - low.config.firing) * 1e6
    per_byte = (traffic(high) - traffic(low)) / (high.config.firing - low.config.firing)
    return [(f"coordinator CPU, {high.config.firing:,} / {low.config.firing:,} firing, 2x{files:,} files "
             f">= {TARGET_GROWTH}x", cpu(high) / cpu(low) >= TARGET_GROWTH,
             f"{cpu(high) / cpu(low):.2f}x ({per_series:.0f} us, {per_byte:.0f} B over the broker per firing series)")]


def other_checks(out: Outcome) -> list[tuple[str, bool, str]]:
    peak = max((x.peak_mb for r in out.results if r.config.cluster for x in r.runs), default=0.0)
    wrong = [r.config.name for r in out.results
             if any(x.firing != r.config.firing or x.errors != expected_errors(r.config.files)
                    or x.files != len(TREES) * r.config.files
                    for x in [r.cold, *r.runs])]
    redone = [r.config.name for r in out.results if r.config.cluster
              and any(x.shards != len(TREES) * SHARDS_PER_TREE for x in r.runs)]
    return [(f"coordinator peak RSS <= {TARGET_RSS_MB:.0f} MB", peak <= TARGET_RSS_MB, f"{peak:.0f} MB"),
            ("every check: all files, the expected firing series, no error", not wrong, "; ".join(wrong) or "yes"),
            (f"every cluster check ran each of its {len(TREES) * SHARDS_PER_TREE} shards once", not redone,
             "; ".join(redone) or "yes")]


def print_comparison(out: Outcome, files: int, say: Callable[[str], None]) -> None:
    """The cluster against one machine over the same files (the same 2 cores here: no speed-up to expect)."""
    for level in LEVELS:
        c, m = out.find(True, files, level), out.find(False, files, level)
        if c is None or m is None:
            continue
        total = c.median(lambda x: x.cpu_s + x.workers_cpu_s + x.redis_cpu_s)
        wall_c, wall_m = c.median(lambda x: x.seconds), m.median(lambda x: x.seconds)
        say(f"{c.config.firing:,} firing, 2x{files:,} files: cluster {wall_c:.2f} s / one "
            f"machine {wall_m:.2f} s = {wall_c / wall_m:.2f}x "
            f"wall; CPU of every process {total:.2f} s / {cpu(m):.2f} s = {total / cpu(m):.2f}x; coordinator CPU "
            f"{cpu(c):.2f} s = {cpu(c) / cpu(m):.2f}x the single machine's check")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--files", type=int, action="append",
                        help=f"files per tree; repeat for several sizes (default {DEFAULT_SIZES})")
    parser.add_argument("--runs", type=int, default=3, help="measured checks per configuration (median)")
    parser.add_argument("--sqlite", action="store_true", help="SQLite instead of a throwaway PostgreSQL")
    parser.add_argument("--no-local", action="store_true", help="skip the single-machine checks")
    parser.add_argument("--keep", action="store_true", help="keep the work folder (settings, logs, SQLite files)")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args(argv)
    sizes: list[int] = sorted(set(args.files or DEFAULT_SIZES))
    if min(sizes) < 1 or args.runs < 1:
        parser.error("--files and --runs must be at least 1")

    def say(text: str) -> None:
        print(text, flush=True)

    work = Path(tempfile.mkdtemp(prefix="cluster_bench-"))
    try:
        with contextlib.ExitStack() as stack:
            out = run_services(stack, work, sizes, args, say)
    except BenchError as exc:
        say(f"cluster_bench: {exc}")
        return 2
    finally:
        if args.keep:
            say(f"work folder kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return report(out, sizes, args.strict, say)


def run_services(stack: contextlib.ExitStack, work: Path, sizes: Sequence[int], args: argparse.Namespace,
                 say: Callable[[str], None]) -> Outcome:
    """Redis and the database up (stopped by `stack`), then every configuration."""
    redis = start_redis(work / "redis")
    stack.callback(redis.stop)
    pg = None if args.sqlite else start_postgres()
    if pg is not None:
        stack.callback(shutil.rmtree, pg.base, ignore_errors=True)
        stack.callback(pg.stop)
    ctx = Context(work, redis, Databases(pg), say=say)
    ctx.info = info_cost(redis.port)
    say(f"redis-server on 127.0.0.1:{redis.port}; database: {ctx.databases.kind}; "
        f"{os.cpu_count()} cores; load average {os.getloadavg()[0]:.2f}")
    return bench_all(ctx, sizes, args.runs, not args.no_local)


def report(out: Outcome, sizes: Sequence[int], strict: bool, say: Callable[[str], None]) -> int:
    print_table(out, say)
    say(f"load average (1 min), start / end: {out.load[0]:.2f} / {out.load[-1]:.2f} (other processes share the "
        f"{os.cpu_count()} cores)")
    say("")
    print_comparison(out, max(sizes), say)
    checks = []
    if len(sizes) > 1:
        checks += size_checks(out, sizes[0], sizes[-1])
    checks += growth_checks(out, max(sizes)) + other_checks(out)
    say("")
    for label, ok, value in checks:
        say(f"{cb.verdict(ok)}  {label:<66} {value}")
    for label, ok, value in checks:
        if not ok:
            say(f"TARGET MISSED: {label}: {value}")
    return 1 if strict and not all(ok for _, ok, _ in checks) else 0


if __name__ == "__main__":
    sys.exit(main())
