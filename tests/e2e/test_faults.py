"""Faults (issue #16): each a clear error, the right exit status, and nothing lost.

A database locked past the busy timeout, PostgreSQL stopped in the middle of a check, a full disk under the
HTML report, the index cache and the thresholds file. Real processes, a real tmpfs (`small_disk`), a real
cluster (tests/pg.py). The database on a full disk, RRD files truncated while read and a deliverer killed
mid-send are in test_store_unavailable, test_rrd_pool and test_delivery_order.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import T0, Env, stderr_lines, threshold
from pg import Cluster
from test_store_unavailable import _fill, small_disk  # noqa: F401 - small_disk is a fixture

from rrdalarm.editor.thresholds_edit import EditError, commit, version_of
from rrdalarm.plugins import action_plugins

EXIT_STORE = 5
EXIT_REPORT = 73


def _rows(url: str, table: str) -> int:
    from sqlalchemy import text

    from rrdalarm.store.database import open_store

    with open_store(url) as store, store.session() as s:
        return int(s.execute(text(f"select count(*) from {table}")).scalar_one())


def _one_line(p: subprocess.CompletedProcess[str], status: int, *fragments: str) -> str:
    lines = stderr_lines(p)
    assert p.returncode == status and len(lines) == 1 and "Traceback" not in p.stderr, (p.returncode, p.stderr)
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    return lines[0]


def _firing(env: Env) -> None:
    env.rrd("a.rrd", {"x": [9] * 3})
    env.write_thresholds(threshold(actions=[{"type": "log", "file": "a.log"}]))


def test_a_database_locked_past_the_busy_timeout_is_exit_5_and_the_next_check_records(env: Env) -> None:
    _firing(env)
    db = env.data / "alarms.db"
    # The URL's timeout (seconds) is SQLite's busy timeout: how long a check waits for another writer.
    url = f"sqlite:///{db}?timeout=1"
    assert env.run_process("check", "--db", url, "--at", str(T0), "--quiet").returncode == 1
    holder = sqlite3.connect(db, isolation_level=None)
    try:
        holder.execute("begin immediate")  # another writer that keeps its transaction open
        began = time.monotonic()
        locked = env.run_process("check", "--db", url, "--at", str(T0 + 60), "--quiet", timeout=20)
        assert time.monotonic() - began < 15
        _one_line(locked, EXIT_STORE, "could not be recorded", "locked")
    finally:
        holder.execute("rollback")
        holder.close()
    assert _rows(url, "check_runs") == 1
    assert env.run_process("check", "--db", url, "--at", str(T0 + 60), "--quiet").returncode == 1
    assert (_rows(url, "check_runs"), _rows(url, "alarm_events"), _rows(url, "deliveries")) == (2, 1, 1)


def _restart(cluster: Cluster) -> None:
    options = (f"-k {cluster.base} -p 5432 -c listen_addresses='' -c fsync=off -c synchronous_commit=off "
               "-c full_page_writes=off -c max_connections=200")
    cluster.run("pg_ctl", "-D", str(cluster.data), "-l", str(cluster.base / "log"), "-o", options, "-w", "start")


def _table_locked(cluster: Cluster, database: str, release: threading.Event) -> None:
    """Hold check_runs locked, so that a check stops in the middle of recording, until `release` or the
    server goes away."""
    import psycopg

    try:
        with psycopg.connect(host=str(cluster.base), port=5432, user="rrdalarm", dbname=database) as conn:
            conn.execute("lock table check_runs in exclusive mode")
            release.wait(30)
    except psycopg.OperationalError:
        pass  # the server was stopped under it, as planned


def _waiting_on_lock(cluster: Cluster, database: str) -> bool:
    import psycopg

    with psycopg.connect(host=str(cluster.base), port=5432, user="rrdalarm", dbname=database) as conn:
        row = conn.execute("select count(*) from pg_stat_activity where wait_event_type = 'Lock'").fetchone()
        return bool(row and row[0])


def test_postgresql_stopped_mid_check_is_exit_5_then_the_next_check_loses_nothing(
        env: Env, pg_cluster: Cluster, pg_url: str) -> None:
    _firing(env)
    assert env.run_process("check", "--db", pg_url, "--at", str(T0), "--quiet").returncode == 1
    env.rrd("b.rrd", {"x": [9] * 3})
    env.write_thresholds(threshold(glob="*.rrd", actions=[{"type": "log", "file": "a.log"}]))
    database = pg_url.split("@/")[1].split("?")[0]
    release = threading.Event()
    locker = threading.Thread(target=_table_locked, args=(pg_cluster, database, release))
    locker.start()
    proc = subprocess.Popen([sys.executable, "-m", "rrdalarm", "check", "--db", pg_url, "--at", str(T0 + 60),
                             "--quiet"], env=env.process_env(), cwd=env.base, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 20
        while not _waiting_on_lock(pg_cluster, database):
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.05)
        pg_cluster.stop()  # the check is in the middle of its recording transaction
        out, err = proc.communicate(timeout=30)
    finally:
        release.set()
        if not (pg_cluster.data / "postmaster.pid").exists():
            _restart(pg_cluster)
        locker.join(timeout=30)
    _one_line(subprocess.CompletedProcess(proc.args, proc.returncode, out, err), EXIT_STORE, "could not be recorded")
    assert (_rows(pg_url, "check_runs"), _rows(pg_url, "alarm_events")) == (1, 1)
    assert env.run_process("check", "--db", pg_url, "--at", str(T0 + 60), "--quiet").returncode == 1
    # b.rrd fired once; a.rrd, firing since the first check, did not fire again.
    assert (_rows(pg_url, "check_runs"), _rows(pg_url, "alarm_events"), _rows(pg_url, "deliveries")) == (2, 2, 2)


def test_the_html_report_on_a_full_disk_is_one_line_and_the_old_report_stays(env: Env, small_disk: Path) -> None:
    _firing(env)
    report = small_disk / "report.html"
    assert env.run_process("check", "--html", str(report), "--at", str(T0)).returncode == 1
    before = report.read_bytes()
    filler = _fill(small_disk)
    full = env.run_process("check", "--html", str(report), "--at", str(T0 + 60))
    _one_line(full, EXIT_REPORT, str(report), "No space left", "the check was recorded")
    assert report.read_bytes() == before
    assert sorted(p.name for p in small_disk.iterdir()) == ["filler", "report.html"]  # no temp file left
    filler.unlink()
    assert _rows(env.settings().db_url, "check_runs") == 2


def test_a_full_disk_under_the_index_cache_only_warns(env: Env, small_disk: Path) -> None:
    _firing(env)
    data = small_disk / "data"
    text = env.settings_path.read_text(encoding="utf-8").replace(f'data_dir = "{env.data}"', f'data_dir = "{data}"')
    env.settings_path.write_text(text, encoding="utf-8")
    url = f"sqlite:///{env.base / 'alarms.db'}"
    assert env.run_process("check", "--db", url, "--at", str(T0), "--quiet").returncode == 1
    env.rrd("sub/b.rrd", {"x": [9] * 3})  # a new folder: the index changes and is saved again
    env.write_thresholds(threshold(glob="**/*.rrd", actions=[{"type": "log", "file": "a.log"}]))
    filler = _fill(small_disk)
    full = env.run_process("check", "--db", url, "--at", str(T0 + 60))
    assert full.returncode == 1, full.stderr
    assert "sub/b.rrd" in full.stdout
    warnings = stderr_lines(full)
    assert warnings and all(w.startswith("rrdalarm: warning:") for w in warnings), full.stderr
    assert any("index" in w and "No space left" in w for w in warnings), warnings
    filler.unlink()
    assert (_rows(url, "check_runs"), _rows(url, "alarm_events")) == (2, 2)


def test_the_editor_saving_on_a_full_disk_is_a_clear_error_and_the_old_file_stays(small_disk: Path) -> None:
    path = small_disk / "thresholds.toml"
    old = threshold()
    path.write_text(old, encoding="utf-8")
    filler = _fill(small_disk)
    new = old + threshold(2, glob="b.rrd", name="x" * 5000)
    with pytest.raises(EditError, match=r"cannot write .*thresholds\.toml.*No space left"):
        commit(path, version_of(old), new, action_plugins())
    assert path.read_text(encoding="utf-8") == old
    assert sorted(p.name for p in small_disk.iterdir() if not p.name.endswith(".lock")) == ["filler",
                                                                                            "thresholds.toml"]
    filler.unlink()
    commit(path, version_of(old), new, action_plugins())
    assert path.read_text(encoding="utf-8") == new
