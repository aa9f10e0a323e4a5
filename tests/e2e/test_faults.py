"""Faults (issue #16): each a clear error, the right exit status, and nothing lost.

A database locked past the busy timeout, PostgreSQL stopped in the middle of a check, a full disk under the
HTML report, the index cache and the thresholds file. Real processes, a real tmpfs (`small_disk`), a real
cluster (tests/pg.py). The database on a full disk, RRD files truncated while read and a deliverer killed
mid-send are in test_store_unavailable, test_rrd_pool and test_delivery_order.
"""

from __future__ import annotations

import email
import functools
import json
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from conftest import T0, Env, free_port, stderr_lines, threshold
from pg import Cluster
from test_delivery_e2e import deliver_later
from test_store_unavailable import _fill, tmpfs

from rrdalarm.delivery.outbox import deliver_pending, summarize
from rrdalarm.editor.thresholds_edit import EditError, commit, version_of
from rrdalarm.plugins import action_plugins
from rrdalarm.store.database import open_store

EXIT_STORE = 5
EXIT_REPORT = 73


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    with tmpfs(tmp_path / "small") as where:
        yield where


def _rows(url: str, table: str) -> int:
    from sqlalchemy import text

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


@pytest.mark.parametrize("timeout", ["soon", "-1", "inf"])
def test_a_busy_timeout_that_is_no_number_of_seconds_is_a_usage_error(env: Env, timeout: str) -> None:
    _firing(env)
    bad = env.run("check", "--db", f"sqlite:///{env.data}/alarms.db?timeout={timeout}", "--at", str(T0), "--quiet")
    _one_line(bad, 2, "timeout must be a number of seconds", repr(timeout))


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


class _Hook(BaseHTTPRequestHandler):
    """Records the delivery id and event kinds of every POST, in arrival order."""

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        server: Any = self.server
        server.seen.append((self.headers["X-Rrdalarm-Delivery"], [e["kind"] for e in body["events"]]))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


class _Inbox:
    def __init__(self) -> None:
        self.ids: list[str] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.ids.append(str(email.message_from_bytes(envelope.content)["X-Rrdalarm-Delivery"]))
        return "250 OK"


def _drained(env: Env) -> None:
    """`rrdalarm deliver` of the minutes to come (its clock moved on) until nothing is pending; none may die."""
    settings = env.settings()
    with open_store(settings.db_url) as store:
        for n in range(1, 40):
            later = time.time() + 60 * n
            results = deliver_pending(store, settings, clock=functools.partial(float, later))
            assert all(r.status != "dead" for r in results), [r.error for r in results]
            if {d.status for d, _ in store.deliveries(limit=1000)} == {"sent"}:
                return
    raise AssertionError("deliveries still pending")


def test_receivers_down_for_many_checks_then_every_delivery_arrives_in_order(env: Env) -> None:
    smtp_port, hook_port, checks = free_port(), free_port(), 8
    with env.settings_path.open("a") as fh:
        fh.write(f'\n[smtp]\nhost = "127.0.0.1"\nport = {smtp_port}\nsender = "rrdalarm@test"\n'
                 "\n[delivery]\ntimeout = 2\nbackoff = 1\nmax_backoff = 1\n")
    # Every check changes the state of the one series: FIRED, RESOLVED, FIRED, …
    env.rrd("a.rrd", {"x": [9 if ((i + 1) // 3) % 2 == 0 else 1 for i in range(3 * checks)]},
            end=T0 + (3 * checks - 1) * 60)
    env.write_thresholds(threshold(start="now-1min", actions=[
        {"type": "webhook", "url": f"http://127.0.0.1:{hook_port}/hook"}, {"type": "email", "to": "ops@x.org"}]))
    for j in range(checks):
        assert env.run("check", "--at", str(T0 + 180 * j), "--quiet").returncode in (0, 1)
        assert summarize(deliver_later(env, 5 * j)).endswith("0 dead")  # the receivers still down
    with open_store(env.settings().db_url) as store:
        rows = sorted((d for d, _ in store.deliveries(limit=1000)), key=lambda d: (d.created_at, d.id))
    assert len(rows) == 2 * checks and {d.status for d in rows} == {"pending"}
    hook = ThreadingHTTPServer(("127.0.0.1", hook_port), _Hook)
    hook.seen = []  # type: ignore[attr-defined]
    threading.Thread(target=hook.serve_forever, daemon=True).start()
    inbox = _Inbox()
    smtp = Controller(inbox, hostname="127.0.0.1", port=smtp_port)
    smtp.start()
    try:
        _drained(env)
    finally:
        smtp.stop()
        hook.shutdown()
        hook.server_close()
    seen: list[tuple[str, list[str]]] = hook.seen  # type: ignore[attr-defined]
    # In the order the checks wrote them, once each: never a RESOLVED before its FIRED.
    assert [kinds for _, kinds in seen] == [["fired"], ["resolved"]] * (checks // 2)
    webhook_ids = [d.id for d in rows if d.action == "webhook"]
    assert [ident for ident, _ in seen] == webhook_ids
    assert inbox.ids == [d.id for d in rows if d.action == "email"]
