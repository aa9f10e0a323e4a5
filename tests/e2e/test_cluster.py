"""Checks on workers next to each RRD tree: real redis-server, real `rrdalarm worker` and `rrdalarm check` processes.

Two trees (a, b) each with a worker and a local tree checked by the coordinator: the cluster's
check equals the single machine's check of the same files; a tree with no worker gives ERROR rows
within answer_timeout and keeps its firing states; a worker killed mid-shard has its shard done by
another worker of the tree.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import rrdtool
from conftest import STEP, T0, Rrdcached, free_port, make_rrd
from redis_server import RedisServer

from rrdalarm.model.states import State
from rrdalarm.store.database import open_store

T1 = T0 + 2 * STEP
FILES = 8  # per tree: the odd ones fire at T0


@dataclass
class Worker:
    """A `rrdalarm worker` process in a session of its own (so that SIGKILL takes its fetch processes too)."""

    proc: subprocess.Popen[bytes]
    log: Path

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_for(self, fragment: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while fragment not in self.text():
            if self.proc.poll() is not None:
                raise AssertionError(f"worker exited ({self.proc.returncode}):\n{self.text()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"no {fragment!r} from the worker within {timeout} s:\n{self.text()}")
            time.sleep(0.05)

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=20)


@pytest.fixture
def workers() -> Iterator[list[Worker]]:
    started: list[Worker] = []
    yield started
    for w in started:
        w.kill()


def start_worker(started: list[Worker], base: Path, tree: str, root: Path, settings: Path, name: str) -> Worker:
    log = base / f"{name}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "rrdalarm", "worker", "--tree", tree, "--rrd-root", str(root), "--settings",
             str(settings)], stdin=subprocess.DEVNULL, stdout=out, stderr=out, cwd=base, start_new_session=True,
            env={k: v for k, v in os.environ.items() if not k.startswith("RRDALARM_")})
    worker = Worker(proc, log)
    started.append(worker)
    return worker


def write_settings(path: Path, *, root: Path | None, data: Path, broker: str, **cluster: Any) -> Path:
    lines = [f'rrd_root = "{root}"' if root else "", 'thresholds = "thresholds.toml"', f'data_dir = "{data}"',
             "workers = 1", "lock_wait = 5", "[cluster]", f'broker = "{broker}"']
    lines += [f"{k} = {v}" for k, v in cluster.items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def thresholds(trees: dict[str, str]) -> str:
    """One threshold per folder (glob "<folder>/*.rrd", above 5 at the newest point), on the tree given
    ("local": none named)."""
    out = ""
    for ident, (folder, tree) in enumerate(sorted(trees.items()), start=1):
        out += f'[[threshold]]\nid = {ident}\nglob = "{folder}/*.rrd"\ntype = "above"\nvalue = 5\nstart = "now-1min"\n'
        out += f'tree = "{tree}"\n' if tree != "local" else ""
    return out


def rrd_files(root: Path, folder: str, count: int = FILES) -> list[Path]:
    """`count` files under root/folder: h<i>.rrd at 1, 2, then 9 (odd i, fires) or 1 at T0."""
    return [make_rrd(root / folder / f"h{i}.rrd", {"x": [1, 2, 9 if i % 2 else 1]}) for i in range(count)]


def flip(paths: Sequence[Path]) -> None:
    """Two more points up to T1: the firing ones go down to 1, the others up to 9 (resolve, fire)."""
    for i, p in enumerate(paths):
        v = 1 if i % 2 else 9
        rrdtool.update(str(p), f"{T0 + STEP}:{v}", f"{T1}:{v}")


def run(cwd: Path, settings: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RRDALARM_")}
    env["RRDALARM_SETTINGS"] = str(settings)
    return subprocess.run([sys.executable, "-m", "rrdalarm", *args], capture_output=True, text=True, env=env,
                          cwd=cwd, timeout=timeout)


def report(proc: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    got: dict[str, Any] = json.loads(proc.stdout)
    del got["started_at"], got["duration_s"]
    return got


def history(cwd: Path, settings: Path) -> list[tuple[Any, ...]]:
    p = run(cwd, settings, "history", "--json", "--limit", "1000")
    assert p.returncode == 0, p.stderr
    events = [json.loads(line) for line in p.stdout.splitlines()]
    return sorted((e["threshold"], e["file"], e["ds"], e["status"], e["value"], e["message"]) for e in events)


def test_two_trees_and_the_local_one_check_as_one_machine_would(
        tmp_path: Path, redis_server: RedisServer, workers: list[Worker]) -> None:
    trees = {"a": "a", "b": "b", "l": "local"}
    roots = {"a": tmp_path / "root-a", "b": tmp_path / "root-b", "l": tmp_path / "root-l"}
    single = tmp_path / "single"  # the same files under one root, for the single-machine check
    files: list[Path] = []
    for folder, root in roots.items():
        files += rrd_files(root, folder)
        shutil.copytree(root / folder, single / folder)
        files += sorted((single / folder).glob("*.rrd"))
    cluster_dir, single_dir = tmp_path / "coordinator", tmp_path / "machine"
    for d in (cluster_dir, single_dir):
        d.mkdir()
    (cluster_dir / "thresholds.toml").write_text(thresholds(trees))
    (single_dir / "thresholds.toml").write_text(thresholds(dict.fromkeys(trees, "local")))
    coordinator = write_settings(cluster_dir / "rrdalarm.toml", root=roots["l"], data=cluster_dir / "data",
                                 broker=redis_server.url, answer_timeout=20, redo_after=10)
    machine = single_dir / "rrdalarm.toml"
    machine.write_text(f'rrd_root = "{single}"\nthresholds = "thresholds.toml"\ndata_dir = "{single_dir / "data"}"\n'
                       "workers = 1\n")
    for tree in ("a", "b"):
        settings = write_settings(tmp_path / f"worker-{tree}.toml", root=None, data=tmp_path / f"data-{tree}",
                                  broker=redis_server.url, answer_timeout=20)
        start_worker(workers, tmp_path, tree, roots[tree], settings, f"worker-{tree}")
    for w in workers:
        w.wait_for(" ready.")

    # The first check: every odd file fires, in each tree; the same report as one machine's.
    first = run(cluster_dir, coordinator, "check", "--json", "--at", str(T0))
    alone = run(single_dir, machine, "check", "--json", "--at", str(T0))
    assert first.returncode == alone.returncode == 1, first.stderr + alone.stderr
    assert report(first) == report(alone)
    assert report(first)["alarms_fired"] == 3 * FILES // 2
    assert report(first)["files_checked"] == 3 * FILES

    # The second, quiet as the scheduler's: firing series resolve and others fire, through the workers too.
    flip(files)
    quiet = run(cluster_dir, coordinator, "check", "--quiet", "--at", str(T1))
    assert quiet.returncode == run(single_dir, machine, "check", "--quiet", "--at", str(T1)).returncode == 1
    events = history(cluster_dir, coordinator)
    assert events == history(single_dir, machine)
    assert sum(1 for e in events if e[3] == "RESOLVED") == sum(1 for e in events if e[3] == "ALARM FIRED") // 2
    assert sum(1 for e in events if e[3] == "ALARM FIRED") == 2 * 3 * FILES // 2  # each alarm fired once

    lines = run(cluster_dir, coordinator, "trees").stdout.splitlines()
    assert sorted(line.split()[0] for line in lines) == ["a", "b"], lines
    assert all(f"{FILES} files" in line for line in lines), lines

    # Tree a's worker is gone: its rows say so within answer_timeout, its firing states are kept; b goes on.
    workers[0].kill()
    short = write_settings(cluster_dir / "short.toml", root=roots["l"], data=cluster_dir / "data",
                           broker=redis_server.url, answer_timeout=3)
    started = time.monotonic()
    down = run(cluster_dir, short, "check", "--json", "--at", str(T1))
    assert time.monotonic() - started < 3 + 10
    assert down.returncode == 1, down.stderr
    rows = json.loads(down.stdout)["results"]
    message = "tree a: no worker answered within 3 s"
    a_rows = [r for r in rows if r["threshold"] == 1]
    assert {r["message"] for r in a_rows} == {message} and {r["status"] for r in a_rows} == {"ERROR"}
    firing_a = {k for k, v in _states(cluster_dir / "data").items() if k[0] == 1 and v is State.FIRING}
    assert len(firing_a) == FILES // 2
    assert {(1, r["file"], r["ds"]) for r in a_rows} == firing_a | {(1, "a/*.rrd", "")}
    assert {k for k, v in _states(cluster_dir / "data").items() if k[0] == 1 and v is State.FIRING} == firing_a
    b_rows = [r for r in rows if r["threshold"] == 2]
    assert len(b_rows) == FILES and {r["status"] for r in b_rows} == {"OK", "ALARM FIRED"}  # rearm = 0: repeats
    assert history(cluster_dir, coordinator) == events  # nothing fired or resolved twice, nothing lost


def _states(data: Path) -> dict[tuple[int, str, str], State]:
    store = open_store(f"sqlite:///{data / 'rrdalarm.db'}")
    try:
        return {k: v.state for k, v in store.states([1, 2, 3]).items()}
    finally:
        store.close()


@pytest.fixture
def stalled_rrdcached(tmp_path: Path) -> Iterator[Rrdcached]:
    """A real rrdcached, stopped (SIGSTOP): it takes connections and answers nothing, as a hung daemon does."""
    if shutil.which("rrdcached") is None:
        pytest.skip("rrdcached is not installed (Debian package rrdcached)")
    folder = Path(tempfile.mkdtemp(prefix="rrdc-", dir="/tmp"))  # a unix socket path fits in 108 bytes
    (folder / "journal").mkdir()
    daemon = Rrdcached(tmp_path, folder, f"127.0.0.1:{free_port()}")
    daemon.start()
    assert daemon.proc is not None
    os.kill(daemon.proc.pid, signal.SIGSTOP)
    try:
        yield daemon
    finally:
        os.kill(daemon.proc.pid, signal.SIGCONT)
        daemon.stop(graceful=False)
        shutil.rmtree(folder, ignore_errors=True)


def test_a_worker_killed_mid_shard_has_its_shard_done_by_another_of_the_tree(
        tmp_path: Path, redis_server: RedisServer, workers: list[Worker], stalled_rrdcached: Rrdcached) -> None:
    root = tmp_path / "root-b"
    rrd_files(root, "b")
    (tmp_path / "thresholds.toml").write_text(thresholds({"b": "b"}))
    coordinator = write_settings(tmp_path / "rrdalarm.toml", root=None, data=tmp_path / "data",
                                 broker=redis_server.url, answer_timeout=25, redo_after=6, shards_per_tree=2)
    # The first worker reads through a daemon that never answers: its shard waits there (5 s) until killed.
    stuck = write_settings(tmp_path / "stuck.toml", root=None, data=tmp_path / "data-1", broker=redis_server.url,
                           answer_timeout=25)
    stuck.write_text(f'rrdcached = "{stalled_rrdcached.unix}"\n' + stuck.read_text())
    first = start_worker(workers, tmp_path, "b", root, stuck, "worker-1")
    first.wait_for(" ready.")
    env = {k: v for k, v in os.environ.items() if not k.startswith("RRDALARM_")} | {
        "RRDALARM_SETTINGS": str(coordinator)}
    check = subprocess.Popen([sys.executable, "-m", "rrdalarm", "check", "--json", "--at", str(T0)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path)
    try:
        first.wait_for(": started")
        first.kill()
        killed = first.text().split("tree b shard ", 1)[1].split("/", 1)[0]
        second = start_worker(workers, tmp_path, "b", root, write_settings(
            tmp_path / "worker-2.toml", root=None, data=tmp_path / "data-2", broker=redis_server.url,
            answer_timeout=25), "worker-2")
        out, err = check.communicate(timeout=60)
    finally:
        check.kill()
    assert check.returncode == 1, err
    got = json.loads(out)
    assert got["alarms_fired"] == FILES // 2 and got["files_checked"] == FILES, got
    assert {r["status"] for r in got["results"]} == {"OK", "ALARM FIRED"}, got["results"]
    assert got["duration_s"] < 25
    # The shard the first worker held when it died was checked by the second one.
    assert re.search(rf"tree b shard {killed}/2: \d+ files in", second.text()), second.text()
    assert " files in " not in first.text()
