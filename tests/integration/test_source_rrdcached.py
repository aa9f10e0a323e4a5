"""Reads through a real rrdcached: cached points are seen, an unreachable daemon is an ERROR, never the file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import rrdtool
from conftest import T0, Env, Rrdcached, check, threshold

from rrdalarm.model.states import Direction, Status
from rrdalarm.sources.base import OutcomeKind
from rrdalarm.store import stats
from rrdalarm.store.database import Store

# On disk: quiet points up to T0-10min. In the daemon only: 9.0 from T0-9min to T0.
WINDOW: dict[str, Any] = {"start": "now-5min", "end": "now"}


def cached_file(env: Env, daemon: Rrdcached, rel: str = "a.rrd") -> Path:
    path = env.rrd(rel, {"x": [1.0] * 10}, end=T0 - 600)
    daemon.update(path, *(f"{T0 - 540 + 60 * i}:9" for i in range(10)))
    return path


def set_rrdcached(env: Env, value: str) -> None:
    with env.settings_path.open("a") as fh:
        fh.write(f'rrdcached = "{value}"\n')


def only_row(env: Env, store: Store) -> tuple[str, float | None, str]:
    [row] = check(env, store).rows
    return row.status.value, row.value, row.message


def test_cached_points_are_seen_only_through_the_daemon(env: Env, store: Store, rrdcached: Rrdcached) -> None:
    cached_file(env, rrdcached)
    env.write_thresholds(threshold(**WINDOW))
    # Read from the file, the window holds only points still in the daemon: nothing known.
    assert only_row(env, store)[:2] == ("NO DATA", None)
    set_rrdcached(env, rrdcached.unix)
    assert only_row(env, store)[:2] == ("ALARM FIRED", 9.0)


def test_tcp_address_from_the_environment_and_an_explicit_off(
    env: Env, store: Store, rrdcached: Rrdcached, monkeypatch: pytest.MonkeyPatch
) -> None:
    cached_file(env, rrdcached, "hosts/h1/bytes.rrd")
    env.write_thresholds(threshold(glob="hosts/*/bytes.rrd", **WINDOW))
    monkeypatch.setenv("RRDCACHED_ADDRESS", rrdcached.tcp)
    original = env.settings_path.read_text()
    set_rrdcached(env, "")  # the setting wins over the environment: read the files
    assert only_row(env, store)[:2] == ("NO DATA", None)
    env.settings_path.write_text(original)
    # Over TCP paths go relative to the RRD root, which is the daemon's -b.
    result = check(env, store)
    assert [(r.status.value, r.value) for r in result.rows] == [("ALARM FIRED", 9.0)]
    # The check's own statistics RRDs (in the data dir, outside the daemon's -b) are written directly.
    assert result.warnings == []
    assert rrdtool.last("--daemon", "", str(stats.stats_path(env.data, "alarms"))) == T0


@pytest.mark.parametrize("how", ["setting", "environment"])
def test_an_unreachable_daemon_is_an_error_naming_it_and_keeps_firing(
    env: Env, store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    env.rrd("a.rrd", {"x": [9.0] * 10})
    env.write_thresholds(threshold())
    assert only_row(env, store)[0] == "ALARM FIRED"
    address = f"unix:{tmp_path / 'nobody.sock'}"
    if how == "setting":
        set_rrdcached(env, address)
    else:
        monkeypatch.setenv("RRDCACHED_ADDRESS", address)
    result = check(env, store, at=T0 + 60)
    [row] = result.rows
    # librrd alone would read the file and say ALARM FIRED here.
    assert row.status is Status.ERROR
    assert row.message == f"rrdcached at {address} unreachable: No such file or directory"
    assert result.exit_status == 1
    assert store.states([1])[(1, "a.rrd", "x")].state.value == "FIRING"


def test_workers_read_through_the_daemon(
    env: Env, store: Store, rrdcached: Rrdcached, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dataclasses import replace

    from rrdalarm.check.engine import run_check
    from rrdalarm.config.thresholds import load_thresholds
    from rrdalarm.sources import rrd as rrd_source

    for i in range(12):
        cached_file(env, rrdcached, f"h/{i}.rrd")
    env.write_thresholds(threshold(glob="h/*.rrd", **WINDOW))
    set_rrdcached(env, rrdcached.unix)
    monkeypatch.setattr(rrd_source, "MIN_FILES_PER_WORKER", 4)
    settings = replace(env.settings(), workers=2)
    assert settings.thresholds is not None
    result = run_check(settings, load_thresholds(settings.thresholds), store, at=T0)
    assert [r.status for r in result.rows] == [Status.ALARM_FIRED] * 12


@pytest.mark.parametrize("over", ["unix", "tcp"])
def test_a_daemon_that_goes_away_is_never_a_silent_read_of_the_file(
    env: Env, rrdcached: Rrdcached, over: str
) -> None:
    from rrdalarm.rules.evaluate import Criterion
    from rrdalarm.sources.rrd import Job, Rule, check_files
    from rrdalarm.sources.rrdcached import Daemon

    cached_file(env, rrdcached)
    address = rrdcached.unix if over == "unix" else rrdcached.tcp
    rule = Rule(1, (), "AVERAGE", T0 - 300, T0 + 60, Criterion(Direction.ABOVE, 5.0))
    task: list[tuple[str, tuple[int, ...], tuple[tuple[int, str], ...]]] = [("a.rrd", (0,), ())]

    def read() -> tuple[OutcomeKind, float | None, str]:
        # A new Job per check, as the source makes; the check's own probe is left out on purpose.
        outcomes, _files, _series = check_files(Job(str(env.root), (rule,), True, Daemon(address)), task)
        [o] = outcomes
        return o.kind, o.value, o.message

    assert read() == (OutcomeKind.BREACH, 9.0, "")
    rrdcached.stop()  # librrd's connection in this process is now dead
    reason = "No such file or directory" if over == "unix" else "Connection refused"
    down = f"rrdcached at {address} unreachable: {reason}"
    assert read() == (OutcomeKind.ERROR, None, down)
    rrdcached.start()
    rrdcached.update(env.root / "a.rrd", f"{T0 + 60}:20")
    assert read() == (OutcomeKind.BREACH, 20.0, "")
    # Restarted between two checks: the connection kept from before is dead, the read reconnects.
    rrdcached.stop()
    rrdcached.start()
    assert read() == (OutcomeKind.BREACH, 20.0, "")
