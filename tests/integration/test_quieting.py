"""Silences in checks: silenced series are evaluated and recorded, but no delivery is queued."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import rrdtool
from conftest import T0, Env, check, threshold

from rrdalarm.store.database import DeliveryRow, SilenceRow, Store

# Every test on SQLite, then on PostgreSQL.
pytestmark = pytest.mark.usefixtures("any_database")

LOG = {"type": "log", "file": "a.log", "on": ["fire", "repeat", "resolve"]}


def add_silence(store: Store, starts_at: int, ends_at: int, **matchers: Any) -> int:
    labels = matchers.pop("labels", None)
    with store.session() as s:
        row = SilenceRow(starts_at=starts_at, ends_at=ends_at, comment="maintenance", author="alice",
                         created_at=starts_at, labels=json.dumps(labels) if labels else None,
                         **{"threshold_id": matchers.pop("threshold", None), **matchers})
        s.add(row)
        s.flush()
        return row.id


def log_lines(env: Env) -> list[str]:
    path = env.data / "log" / "a.log"
    return path.read_text().splitlines() if path.exists() else []


def breaching(env: Env, rel: str = "a.rrd", points: int = 40) -> Path:
    return env.rrd(rel, {"x": [9] * points})


def test_silence_over_a_firing_series_for_ten_checks_then_one_notification(env: Env, store: Store) -> None:
    breaching(env)
    env.write_thresholds(threshold(rearm=0, actions=[LOG]))
    check(env, store)
    assert len(log_lines(env)) == 1
    deliveries = store.count(DeliveryRow)
    sid = add_silence(store, T0 + 1, T0 + 630, threshold=1)
    for k in range(1, 11):
        r = check(env, store, at=T0 + 60 * k)
        [row] = r.rows
        assert row.silenced == (str(sid),) and row.state is not None and row.state.value == "FIRING"
    assert store.count(DeliveryRow) == deliveries
    assert len(log_lines(env)) == 1
    silenced = [e for e in store.events(limit=50) if e.silenced]
    assert len(silenced) == 10 and {e.silenced for e in silenced} == {str(sid)}  # recorded, marked
    r = check(env, store, at=T0 + 660)
    assert [row.status.value for row in r.rows] == ["ALARM FIRED"] and r.rows[0].silenced == ()
    lines = log_lines(env)
    assert len(lines) == 2 and "silenced from" in lines[1]
    assert store.count(DeliveryRow) == deliveries + 1


def test_one_notification_only_when_the_silence_ends(env: Env, store: Store) -> None:
    breaching(env)
    env.write_thresholds(threshold(rearm=3600, actions=[LOG]))
    check(env, store)
    add_silence(store, T0, T0 + 300)
    check(env, store, at=T0 + 120)
    for at in (T0 + 360, T0 + 420, T0 + 480):
        check(env, store, at=at)
    lines = log_lines(env)
    assert len(lines) == 2 and "silenced from" in lines[1]


def test_firing_while_silenced_is_told_when_the_silence_ends_and_its_recovery_too(env: Env, store: Store) -> None:
    path = env.rrd("a.rrd", {"x": [1] * 40})
    env.write_thresholds(threshold(rearm=3600, actions=[LOG]))
    check(env, store)
    add_silence(store, T0, T0 + 400, series="a.*")
    rrdtool.update(str(path), *(f"{T0 + 60 * i}:9" for i in range(1, 4)))
    r = check(env, store, at=T0 + 180)
    assert r.rows[0].status.value == "ALARM FIRED" and r.rows[0].silenced
    assert log_lines(env) == []
    rrdtool.update(str(path), *(f"{T0 + 60 * i}:9" for i in range(4, 8)))
    check(env, store, at=T0 + 420)
    assert len(log_lines(env)) == 1 and "silenced from" in log_lines(env)[0]
    rrdtool.update(str(path), *(f"{T0 + 60 * i}:1" for i in range(8, 80)))
    check(env, store, at=T0 + 79 * 60)
    assert len(log_lines(env)) == 2 and "RESOLVED" in log_lines(env)[1]


def test_a_series_that_fires_and_resolves_inside_a_silence_tells_nobody(env: Env, store: Store) -> None:
    path = env.rrd("a.rrd", {"x": [1] * 40})
    env.write_thresholds(threshold(actions=[LOG]))
    add_silence(store, T0, T0 + 7200)
    rrdtool.update(str(path), *(f"{T0 + 60 * i}:9" for i in range(1, 4)))
    check(env, store, at=T0 + 180)
    rrdtool.update(str(path), *(f"{T0 + 60 * i}:1" for i in range(4, 70)))
    check(env, store, at=T0 + 69 * 60)
    check(env, store, at=T0 + 7300)
    assert log_lines(env) == []
    assert [e.kind for e in store.events()] == ["resolved", "fired"]
    assert store.count(DeliveryRow) == 0


def test_matchers_pick_the_series(env: Env, store: Store) -> None:
    breaching(env, "web/a.rrd")
    breaching(env, "db/b.rrd")
    env.write_thresholds(threshold(glob="*/*.rrd", severity="critical", actions=[LOG])
                         + '[threshold.labels]\nteam = "web"\n')
    add_silence(store, T0 - 10, T0 + 10, series="web/*")
    add_silence(store, T0 - 10, T0 + 10, labels={"team": "db"})
    add_silence(store, T0 - 10, T0 + 10, severity="warning")
    add_silence(store, T0 - 10, T0 + 10, threshold=2)
    add_silence(store, T0 - 10, T0 + 10, ds="y")
    add_silence(store, T0 + 10, T0 + 20)  # not yet
    r = check(env, store)
    quiet = {row.file: row.silenced for row in r.rows}
    assert quiet == {"db/b.rrd": (), "web/a.rrd": ("1",)}
    lines = log_lines(env)
    assert len(lines) == 1 and "db/b.rrd" in lines[0]


def test_check_json_rows_carry_the_silence_ids(env: Env, store: Store) -> None:
    breaching(env)
    env.write_thresholds(threshold())
    sid = add_silence(store, T0 - 60, T0 + 60)
    proc = env.run("check", "--json", "--at", str(T0))
    [row] = json.loads(proc.stdout)["results"]
    assert row["silenced"] == [sid] and row["acknowledged"] is None
