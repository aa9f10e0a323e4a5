"""The RRD source's fetch workers: pool sizes of real trees, workers that die or cannot start."""

from __future__ import annotations

import json
import os
import shutil
import signal
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import T0, Env, check, make_rrd, threshold

from rrdalarm.model.states import Status
from rrdalarm.store.database import Store, open_store

# The console script, as operators run it: its own folder, not the working directory, heads sys.path.
RRDALARM = Path(sys.executable).with_name("rrdalarm")
DIED = "worker died while reading this file"


@pytest.fixture
def store(env: Env) -> Iterator[Store]:
    s = open_store(env.settings().db_url)
    yield s
    s.close()


def set_workers(env: Env, workers: int) -> None:
    text = env.settings_path.read_text(encoding="utf-8").replace("workers = 1\n", f"workers = {workers}\n")
    env.settings_path.write_text(text, encoding="utf-8")


def tree(env: Env, n: int, **kw: object) -> set[str]:
    """n files h/<i>.rrd (copies of real RRDs), file i at i % 10; returns those above 5."""
    templates = [make_rrd(env.base / "templates" / f"{v}.rrd", {"x": [float(v)] * 5}, **kw)  # type: ignore[arg-type]
                 for v in range(10)]
    (env.root / "h").mkdir()
    for i in range(n):
        shutil.copyfile(templates[i % 10], env.root / "h" / f"{i}.rrd")
    return {f"h/{i}.rrd" for i in range(n) if i % 10 > 5}


def run(env: Env, *args: str, cwd: Path | None = None, command: list[str] | None = None,
        timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """`rrdalarm ARGS` through the console script (or `command`), from `cwd`."""
    envvars = {k: v for k, v in os.environ.items() if not k.startswith("RRDALARM_")}
    envvars["RRDALARM_SETTINGS"] = str(env.settings_path)
    return subprocess.run([*(command or [str(RRDALARM)]), *args], capture_output=True, text=True, env=envvars,
                          timeout=timeout, cwd=cwd or env.base)


def statuses(proc: subprocess.CompletedProcess[str]) -> dict[str, tuple[str, str]]:
    return {r["file"]: (r["status"], r["message"]) for r in json.loads(proc.stdout)["results"]}


def assert_rows(proc: subprocess.CompletedProcess[str], n: int, fired: set[str]) -> None:
    assert proc.returncode == 1, proc.stderr[-3000:]
    got = statuses(proc)
    assert len(got) == n
    assert {f for f, (s, _) in got.items() if s == "ALARM FIRED"} == fired
    assert {s for f, (s, _) in got.items() if f not in fired} == {"OK"}


@pytest.mark.parametrize("n", [201, 399, 400, 1000])
def test_pool_sizes_of_real_trees(env: Env, store: Store, n: int) -> None:
    # workers = 0: one per core, as shipped; os.cpu_count() is 2 or more on the machines that run this.
    set_workers(env, 0)
    fired = tree(env, n)
    env.write_thresholds(threshold(glob="h/*.rrd"))
    for at in (T0, T0 + 60):  # the first walk has no index cache, the second starts the workers early
        result = check(env, store, at=at)
        assert (result.files_checked, result.series_checked, result.errors) == (n, n, 0)
        assert {r.file for r in result.rows if r.status in (Status.ALARM_FIRED, Status.FIRING)} == fired
        assert len(result.rows) == n


@pytest.mark.slow
@pytest.mark.parametrize("package", ["", "from junk import nothing\n"], ids=["empty-folder", "junk-package"])
def test_a_rrdalarm_folder_in_the_working_directory(env: Env, package: str) -> None:
    # /etc holds /etc/rrdalarm, /opt the checkout: the workers must not import that instead of this package.
    cwd = env.base / "etc"
    (cwd / "rrdalarm").mkdir(parents=True)
    if package:
        (cwd / "rrdalarm" / "__init__.py").write_text(package, encoding="utf-8")
    set_workers(env, 2)
    fired = tree(env, 400)
    env.write_thresholds(threshold(glob="h/*.rrd"))
    proc = run(env, "check", "--json", "--at", str(T0), cwd=cwd, timeout=60)
    assert_rows(proc, 400, fired)
    assert "Traceback" not in proc.stderr


@pytest.mark.slow
def test_workers_that_cannot_start_fall_back_to_this_process(env: Env) -> None:
    # A main script that cannot be imported again in a worker: each worker dies before it takes a task.
    # Its second thread (serve has several) makes the workers come from the fork server, which imports it.
    script = env.base / "broken-main"
    script.write_text(
        "import sys, threading\n"
        "if __name__ != '__main__':\n"
        "    raise ImportError(\"cannot import name '__version__' from 'rrdalarm'\")\n"
        "threading.Thread(target=threading.Event().wait, daemon=True).start()\n"
        "from rrdalarm.cli.main import main\n"
        "sys.exit(main())\n",
        encoding="utf-8",
    )
    set_workers(env, 2)
    fired = tree(env, 400)
    env.write_thresholds(threshold(glob="h/*.rrd"))
    proc = run(env, "check", "--json", "--at", str(T0), command=[sys.executable, str(script)], timeout=60)
    assert_rows(proc, 400, fired)
    assert "warning: fetch workers could not start" in proc.stderr
    assert proc.stderr.count("Traceback") <= 2  # one per worker at most, never a loop


def crashing_rrd(path: Path) -> Path:
    """A real RRD whose first RRA claims 2**61 more rows than it has.

    The file size librrd expects wraps around to the true size, so the file opens, and the
    fetch then reads far outside it: the process that fetches dies of SIGSEGV.
    """
    make_rrd(path, {"x": [1.0] * 5})
    data = bytearray(path.read_bytes())
    offset = 128 + 120 + 24  # stat_head, one ds_def, then rra_def[0].row_cnt after cf_nam[20] (padded)
    (rows,) = struct.unpack_from("<Q", data, offset)
    assert rows == 600
    struct.pack_into("<Q", data, offset, rows + 2**61)
    path.write_bytes(data)
    return path


@pytest.mark.slow
@pytest.mark.parametrize(("n", "workers"), [(10, 1), (400, 2)])
def test_a_file_that_kills_its_worker_is_an_error_row(env: Env, n: int, workers: int) -> None:
    set_workers(env, workers)
    fired = tree(env, n)
    crashing_rrd(env.root / "h" / "crash.rrd")
    env.write_thresholds(threshold(glob="h/*.rrd"))
    proc = run(env, "check", "--json", "--at", str(T0), timeout=60)
    assert proc.returncode == 1, proc.stderr[-3000:]
    got = statuses(proc)
    status, message = got.pop("h/crash.rrd")
    assert status == "ERROR" and message.startswith(DIED) and "SIGSEGV" in message
    assert len(got) == n and {f for f, (s, _) in got.items() if s == "ALARM FIRED"} == fired
    # The lock was released: the next check runs without waiting.
    assert run(env, "check", "--quiet", "--wait", "0", "--at", str(T0 + 60), timeout=60).returncode == 1


def descendants(pid: int) -> dict[int, int]:
    """Every process below `pid`, mapped to its parent."""
    parents = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            parents[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])
    below: dict[int, int] = {}
    frontier = {pid}
    while frontier:
        frontier = {p for p, pp in parents.items() if pp in frontier}
        below |= {p: parents[p] for p in frontier}
    return below


def reads_under(pid: int, root: Path) -> bool:
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return False
    for fd in fds:
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
            if target.startswith(str(root)) and target.endswith(".rrd"):
                return True
        except OSError:
            continue
    return False


def kill_a_worker_while_it_reads(proc: subprocess.Popen[str], root: Path) -> int | None:
    """SIGKILL the first process below the check (a fetch worker) seen with an RRD file open."""
    deadline = time.monotonic() + 60
    while proc.poll() is None and time.monotonic() < deadline:
        # Looked up again each turn: the fetch workers come after the forkserver and its resource tracker,
        # at a moment that depends on how long the check took to start.
        for pid in descendants(proc.pid):
            if reads_under(pid, root):
                os.kill(pid, signal.SIGKILL)
                return pid
    return None


@pytest.mark.slow
def test_a_worker_killed_mid_check(env: Env) -> None:
    set_workers(env, 2)
    fired = tree(env, 800, rows=10000)  # long windows: each fetch holds its file open for a while
    env.write_thresholds(threshold(glob="h/*.rrd", start="now-8d"))
    envvars = {k: v for k, v in os.environ.items() if not k.startswith("RRDALARM_")}
    envvars["RRDALARM_SETTINGS"] = str(env.settings_path)
    with subprocess.Popen([str(RRDALARM), "check", "--json", "--at", str(T0)], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, env=envvars, cwd=env.base) as proc:
        killed = kill_a_worker_while_it_reads(proc, env.root)
        try:
            out, err = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    assert killed is not None
    assert_rows(subprocess.CompletedProcess([], proc.returncode, out, err), 800, fired)
    assert run(env, "check", "--quiet", "--wait", "0", "--at", str(T0 + 60), timeout=60).returncode == 1


@pytest.mark.slow
def test_a_file_truncated_while_it_is_read_never_kills_the_check(env: Env) -> None:
    # librrd maps the file; one cut shorter under a fetch raises SIGBUS in the process that reads it.
    big = env.rrd("big.rrd", {"a": [1.0] * 3000, "b": [2.0] * 3000}, rows=200_000)
    env.rrd("small.rrd", {"a": [9.0] * 5})
    size = big.stat().st_size
    env.write_thresholds("".join(threshold(k + 1, glob="big.rrd", start=f"now-{140 + k}d") for k in range(10))
                         + threshold(11, glob="small.rrd"))
    stop = threading.Event()

    def churn() -> None:
        while not stop.is_set():
            os.truncate(big, 4096)  # the header stays, the data goes, then comes back as zeros
            os.truncate(big, size)
            time.sleep(0.01)

    cutter = threading.Thread(target=churn)
    cutter.start()
    try:
        runs = [env.run_process("check", "--json", "--at", str(T0), timeout=120) for _ in range(4)]
    finally:
        stop.set()
        cutter.join()
    assert [p.returncode for p in runs] == [1] * len(runs), runs[-1].stderr[-3000:]
    for p in runs:
        rows = json.loads(p.stdout)["results"]
        assert {(r["file"], r["status"]) for r in rows if r["threshold"] == 11} == {("small.rrd", "ALARM FIRED")}
        assert {r["status"] for r in rows} <= {"OK", "ALARM FIRED", "FIRING", "ERROR"}


@pytest.mark.slow
def test_a_check_killed_leaves_no_worker_behind(env: Env, pg_url: str) -> None:
    # A worker forked from the check (PostgreSQL's lock runs no lease thread, so the check forks) holds copies
    # of what the check had open, its end of the pipes and the lock connection among them: left running, it
    # would hold the check lock after the check died.
    set_workers(env, 2)
    with env.settings_path.open("a") as fh:
        fh.write(f"database_url = {json.dumps(pg_url)}\n")
    tree(env, 400, rows=10000)
    env.write_thresholds(threshold(glob="h/*.rrd", start="now-8d"))
    envvars = {k: v for k, v in os.environ.items() if not k.startswith("RRDALARM_")}
    envvars["RRDALARM_SETTINGS"] = str(env.settings_path)
    with subprocess.Popen([str(RRDALARM), "check", "--quiet", "--at", str(T0)], env=envvars, cwd=env.base) as proc:
        deadline = time.monotonic() + 60
        workers: set[int] = set()
        while not workers and proc.poll() is None and time.monotonic() < deadline:
            workers = {pid for pid in descendants(proc.pid) if reads_under(pid, env.root)}
        proc.kill()
    assert workers, "no fetch worker was seen"
    deadline = time.monotonic() + 10
    while (alive := {pid for pid in workers if os.path.exists(f"/proc/{pid}")
                     and "Z" not in Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]}) \
            and time.monotonic() < deadline:
        time.sleep(0.05)
    for pid in alive:
        os.kill(pid, signal.SIGKILL)
    assert not alive, f"fetch workers {sorted(alive)} outlived their check"


@pytest.mark.slow
def test_a_file_renamed_over_while_it_is_read_is_read_whole(env: Env) -> None:
    # Writers that replace a file (a new one renamed over it) are the safe kind: a fetch sees the old file
    # or the new one, never a mix, and never an error row.
    big = env.rrd("big.rrd", {"a": [9.0] * 3000}, rows=100_000)
    spare = big.with_name("big.rrd.new")
    env.rrd("small.rrd", {"a": [9.0] * 5})
    env.write_thresholds("".join(threshold(k + 1, glob="big.rrd", start=f"now-{60 + k}d") for k in range(6))
                         + threshold(11, glob="small.rrd"))
    stop = threading.Event()

    def churn() -> None:
        while not stop.is_set():
            shutil.copyfile(big, spare)
            os.replace(spare, big)

    cutter = threading.Thread(target=churn)
    cutter.start()
    try:
        runs = [env.run_process("check", "--json", "--at", str(T0), timeout=120) for _ in range(3)]
    finally:
        stop.set()
        cutter.join()
    for p in runs:
        assert p.returncode == 1, p.stderr[-3000:]
        rows = json.loads(p.stdout)["results"]
        assert {(r["file"], r["status"]) for r in rows} == {("big.rrd", "ALARM FIRED"), ("small.rrd", "ALARM FIRED")}


def niceness(_job: None, _items: list[int]) -> int:
    return os.nice(0)


def test_workers_give_the_pages_and_the_collectors_the_cpu_first() -> None:
    from rrdalarm.sources.rrd_pool import WORKER_NICENESS, WorkerPool

    ours = os.nice(0)
    with WorkerPool(niceness, None, 2) as pool:
        got = list(pool.run([[1], [2], [3]]))
    assert got == [min(19, ours + WORKER_NICENESS)] * 3 and os.nice(0) == ours
