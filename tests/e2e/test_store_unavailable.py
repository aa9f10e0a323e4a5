"""A check that ran but could not be recorded: exit 5, one line, nothing half-written.

Real subprocesses of the installed command; the full disk is a real 2 MB tmpfs (needs root and mount).
"""

from __future__ import annotations

import contextlib
import errno
import importlib.util
import os
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import T0, Env, free_port, stderr_lines, threshold

EXIT_STORE = 5


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 2 MB tmpfs, unmounted after the test; skipped where mounting is not allowed."""
    with tmpfs(tmp_path / "small") as where:
        yield where


@contextlib.contextmanager
def tmpfs(where: Path) -> Iterator[Path]:
    """A 2 MB tmpfs mounted on `where` (made here), unmounted at the end; skips the test where mounting fails."""
    where.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m,mode=0700", "tmpfs", str(where)],
                             capture_output=True, text=True, check=False)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {mounted.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def _fill(folder: Path) -> Path:
    """Write a file until the disk is full, to the last byte; returns it (remove it to free the space)."""
    filler = folder / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for size in (1 << 16, 4096, 1):
            with contextlib.suppress(OSError):
                while True:
                    os.write(fd, b"\0" * size)
    finally:
        os.close(fd)
    with pytest.raises(OSError, match="No space left") as full, (folder / "probe").open("wb", buffering=0) as fh:
        fh.write(b"\0" * 4096)
    assert full.value.errno == errno.ENOSPC
    (folder / "probe").unlink()
    return filler


def _one_line(p: subprocess.CompletedProcess[str], *fragments: str) -> str:
    assert p.returncode == EXIT_STORE, (p.returncode, p.stdout, p.stderr)
    lines = stderr_lines(p)
    assert len(lines) == 1 and "Traceback" not in p.stderr, p.stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    return lines[0]


def _rows(db: Path, table: str) -> int:
    with sqlite3.connect(db) as conn:
        return int(conn.execute(f"select count(*) from {table}").fetchone()[0])


def test_a_full_disk_is_exit_5_and_the_next_check_loses_nothing(env: Env, small_disk: Path) -> None:
    env.rrd("a.rrd", {"x": [9] * 3})
    env.rrd("b.rrd", {"x": [9] * 3})
    log = [{"type": "log", "file": "a.log"}]
    env.write_thresholds(threshold(actions=log))
    db = small_disk / "alarms.db"
    url = f"sqlite:///{db}"
    assert env.run_process("check", "--db", url, "--at", str(T0), "--quiet").returncode == 1
    before = (_rows(db, "check_runs"), _rows(db, "alarm_events"), _rows(db, "deliveries"))
    assert before == (1, 1, 1)
    env.write_thresholds(threshold(actions=log) + threshold(2, glob="b.rrd", actions=log))  # a new firing to record
    filler = _fill(small_disk)
    full = env.run_process("check", "--db", url, "--at", str(T0 + 60), "--quiet")
    line = _one_line(full, str(db), "could not be recorded")
    assert "database or disk is full" in line or "disk full" in line
    filler.unlink()
    assert (_rows(db, "check_runs"), _rows(db, "alarm_events"), _rows(db, "deliveries")) == before
    again = env.run_process("check", "--db", url, "--at", str(T0 + 60), "--quiet")
    assert again.returncode == 1, again.stderr
    assert (_rows(db, "check_runs"), _rows(db, "alarm_events"), _rows(db, "deliveries")) == (2, 2, 2)
    with sqlite3.connect(db) as conn:
        assert conn.execute("pragma integrity_check").fetchone()[0] == "ok"


def test_a_database_that_cannot_be_reached_is_exit_5(env: Env) -> None:
    env.rrd("a.rrd", {"x": [9] * 3})
    env.write_thresholds(threshold())
    nowhere = "sqlite:////proc/rrdalarm-nowhere/alarms.db"
    _one_line(env.run_process("check", "--db", nowhere, "--at", str(T0), "--quiet"), "/proc/rrdalarm-nowhere")
    _one_line(env.run_process("history", "--db", nowhere), "/proc/rrdalarm-nowhere")
    # A URL that is not one is a configuration mistake, as before.
    bad = env.run_process("check", "--db", "no url at all", "--at", str(T0), "--quiet")
    assert bad.returncode == 2 and len(stderr_lines(bad)) == 1, bad.stderr


def test_a_postgresql_server_that_does_not_answer_is_exit_5(env: Env) -> None:
    driver = next((d for d in ("psycopg", "psycopg2") if importlib.util.find_spec(d)), None)
    if driver is None:
        pytest.skip("no PostgreSQL driver (psycopg) is installed")
    env.rrd("a.rrd", {"x": [9] * 3})
    env.write_thresholds(threshold())
    url = f"postgresql+{driver}://rrdalarm@127.0.0.1:{free_port()}/rrdalarm"
    line = _one_line(env.run_process("check", "--db", url, "--at", str(T0), "--quiet"), "127.0.0.1")
    assert "could not connect" in line.lower() or "connection refused" in line.lower()
