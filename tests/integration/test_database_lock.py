"""The check lock held by the database, and epochs past 2038, on SQLite and on PostgreSQL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import T0, Env, another_installation, make_rrd, threshold

from rrdalarm.check.lock import CheckBusy, check_lock
from rrdalarm.store.database import AlarmEvent, open_store

pytestmark = pytest.mark.usefixtures("any_database")

# After 2038-01-19: a 32-bit column cannot hold it.
LATE = 2_147_483_700


def test_a_check_after_2038_is_recorded(env: Env) -> None:
    end = LATE // 60 * 60
    env.rrd("a.rrd", {"x": [1, 9, 9]}, end=end)
    env.write_thresholds(threshold(rearm=60))
    proc = env.run("check", "--at", str(LATE), "--json")
    assert proc.returncode == 1, proc.stderr
    [row] = json.loads(proc.stdout)["results"]
    assert row["status"] == "ALARM FIRED" and row["time"] == end
    with open_store(env.settings().db_url) as store:
        [event] = store.events()
        assert event.at == LATE and event.time == end
        assert store.states([1])[(1, "a.rrd", "x")].fired_at == LATE
        assert store.newest_run_at() == LATE
        assert store.count(AlarmEvent) == 1


def test_a_check_elsewhere_on_the_same_database_holds_this_one_off(env: Env) -> None:
    env.rrd("a.rrd", {"x": [9]})
    env.write_thresholds(threshold())
    other = another_installation(env, "other")
    settings = other.settings()
    assert settings.data_dir != env.settings().data_dir
    with open_store(settings.db_url) as store, check_lock(settings.data_dir, 0, store):
        busy = env.run("check", "--wait", "0.5", "--quiet", "--at", str(T0))
        assert busy.returncode == 4, busy.stderr
        assert busy.stderr.startswith("rrdalarm: another check is running") and busy.stderr.count("\n") == 1
        with open_store(env.settings().db_url) as mine, pytest.raises(CheckBusy):  # noqa: SIM117
            with check_lock(env.settings().data_dir, 0, mine):
                pass
    assert env.run("check", "--wait", "0", "--quiet", "--at", str(T0)).returncode == 1  # free again once released


def test_the_lock_is_taken_again_after_it_is_released(env: Env) -> None:
    settings = env.settings()
    with open_store(settings.db_url) as store:
        for _ in range(3):
            with check_lock(settings.data_dir, 0, store):
                pass


_HOLD_THEN_DIE = """
import os, signal, sys
from pathlib import Path
from rrdalarm.check.lock import check_lock
from rrdalarm.store.database import open_store

store = open_store(sys.argv[1])
with check_lock(Path(sys.argv[2]), 0, store):
    print("held", flush=True)
    os.kill(os.getpid(), signal.SIGKILL)
"""


def test_a_holder_killed_does_not_keep_the_lock(env: Env) -> None:
    other = another_installation(env, "killed")
    proc = subprocess.run([sys.executable, "-c", _HOLD_THEN_DIE, env.settings().db_url, str(other.data)],
                          capture_output=True, text=True, timeout=60, env={**os.environ})
    assert proc.returncode == -signal.SIGKILL and proc.stdout == "held\n", proc.stderr
    settings = env.settings()
    started = time.monotonic()
    with open_store(settings.db_url) as store, check_lock(settings.data_dir, 5, store):
        pass
    assert time.monotonic() - started < 5


def test_waiting_for_the_lock_gives_up_after_the_wait(env: Env) -> None:
    other = another_installation(env, "slow")
    with open_store(env.settings().db_url) as store, check_lock(other.settings().data_dir, 0, store):
        mine = env.settings()
        with open_store(mine.db_url) as again:
            started = time.monotonic()
            with pytest.raises(CheckBusy, match="another check is running"), check_lock(mine.data_dir, 0.6, again):
                pass
            assert 0.5 <= time.monotonic() - started < 5


def test_make_rrd_at_late_epochs_is_possible(tmp_path: Path) -> None:
    # The fixture itself: rrdtool takes times past 2038 (so the tests above test rrdalarm, not rrdtool).
    make_rrd(tmp_path / "late.rrd", {"x": [1.0]}, end=LATE // 60 * 60)


def test_postgresql_ends_the_session_of_a_lock_holder_whose_machine_vanished(env: Env,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """The check lock's session asks the server for keepalives: a coordinator's machine that vanishes
    mid-check frees the lock within seconds, instead of stalling the other coordinator for hours."""
    from sqlalchemy import text

    from rrdalarm.store import lock

    with open_store(env.settings().db_url) as store:
        if store.engine.dialect.name != "postgresql":
            pytest.skip("a SQLite lease runs out on its own")
        with store.engine.connect() as conn:
            lock.keep_session_alive(conn)
            got = conn.execute(text("SELECT name, setting, source FROM pg_settings "
                                    "WHERE name LIKE 'tcp_keepalives_%' ORDER BY name")).all()
        # Over the tests' unix socket the values read 0; that they were set for the session is what shows.
        wanted = [(f"tcp_keepalives_{n}", "session") for n in ("count", "idle", "interval")]
        assert [(n, s) for n, _, s in got] == wanted
        asked: list[object] = []
        monkeypatch.setattr(lock, "keep_session_alive", lambda conn: asked.append(conn))
        with lock.database_check_lock(store, 0):
            assert len(asked) == 1
