"""Maintenance windows through the real `rrdalarm` command (subprocesses in Europe/Berlin)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from conftest import T0, Env, threshold

from rrdalarm.store.database import DeliveryRow, Store

# T0 is Tuesday 2023-11-14 23:14 CET: this window is open from 23:10 to 23:20 (T0 - 240 to T0 + 360).
WINDOW = ('\n[[maintenance]]\nname = "backup"\nschedule = "10 23 * * tue"\nduration = "10min"\n'
          'comment = "nightly backup"\nthreshold = 1\n')
LOG = {"type": "log", "file": "a.log", "on": ["fire", "repeat", "resolve"]}


@pytest.fixture(autouse=True)
def _berlin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "Europe/Berlin")  # the server's zone, read by the subprocesses


def log_lines(env: Env) -> list[str]:
    path = env.data / "log" / "a.log"
    return path.read_text().splitlines() if path.exists() else []


def check(env: Env, at: int) -> list[dict[str, Any]]:
    """The rows of a real `rrdalarm check --at AT --json`."""
    p = env.run_process("check", "--at", str(at), "--json")
    assert p.returncode == 1 and p.stderr == "", p.stderr
    rows: list[dict[str, Any]] = json.loads(p.stdout)["results"]
    return rows


def test_inside_the_window_silenced_then_one_notification_after_it(env: Env, store: Store) -> None:
    env.rrd("a.rrd", {"x": [9] * 40})
    env.write_thresholds(threshold(rearm=3600, actions=[LOG]) + WINDOW)
    [row] = check(env, T0)
    assert row["status"] == "ALARM FIRED" and row["silenced"] == ["maintenance:backup"]
    check(env, T0 + 359)  # 23:19:59, still inside
    assert log_lines(env) == [] and store.count(DeliveryRow) == 0
    events = store.events(limit=10)
    assert [(e.kind, e.silenced) for e in events] == [("fired", "maintenance:backup")]
    [row] = check(env, T0 + 360)  # 23:20: the window has ended
    assert row["silenced"] == [] and row["status"] == "ALARM FIRED"
    check(env, T0 + 420)
    check(env, T0 + 480)
    lines = log_lines(env)
    assert len(lines) == 1 and "a.rrd" in lines[0], lines
    assert store.count(DeliveryRow) == 1


def test_other_thresholds_are_not_covered(env: Env) -> None:
    env.rrd("a.rrd", {"x": [9] * 40})
    env.rrd("b.rrd", {"x": [9] * 40})
    env.write_thresholds(threshold(actions=[LOG]) + threshold(2, "b.rrd", actions=[LOG]) + WINDOW)
    rows = check(env, T0)
    assert {r["threshold"]: r["silenced"] for r in rows} == {1: ["maintenance:backup"], 2: []}
    lines = log_lines(env)
    assert len(lines) == 1 and "b.rrd" in lines[0]


def test_a_dry_run_outside_the_window_is_not_silenced(env: Env) -> None:
    env.rrd("a.rrd", {"x": [9] * 40})
    env.write_thresholds(threshold() + WINDOW)
    p = env.run_process("check", "--at", str(T0 - 241), "--json", "--dry-run")
    assert json.loads(p.stdout)["results"][0]["silenced"] == []


def test_validate_lists_each_window_and_its_next_three_occurrences_in_local_time(env: Env) -> None:
    env.write_thresholds(threshold() + WINDOW + '\n[[maintenance]]\nname = "spring"\nschedule = "30 2 * * sun"\n'
                         'duration = "1h"\nseries = "web/*.rrd"\nseverity = "info"\n[maintenance.labels]\n'
                         'team = "web"\n')
    p = env.run_process("validate", "--at", str(T0), check=True)
    assert p.stdout.splitlines()[1:] == [
        "maintenance 'backup' ('10 23 * * tue', 10 min): covers threshold 1",
        "    2023-11-14 23:10 CET – 2023-11-14 23:20 CET  (open now)",
        "    2023-11-21 23:10 CET – 2023-11-21 23:20 CET",
        "    2023-11-28 23:10 CET – 2023-11-28 23:20 CET",
        "maintenance 'spring' ('30 2 * * sun', 1 h): covers series web/*.rrd, severity info, label team=web",
        "    2023-11-19 02:30 CET – 2023-11-19 03:30 CET",
        "    2023-11-26 02:30 CET – 2023-11-26 03:30 CET",
        "    2023-12-03 02:30 CET – 2023-12-03 03:30 CET",
    ]
    assert "2 maintenance windows OK" in p.stdout.splitlines()[0]
    # 2026-03-29 02:30 does not exist in Berlin: it starts at 03:30 CEST, after the jump.
    p = env.run_process("validate", "--at", "1774609200", check=True)
    assert p.stdout.splitlines()[6:8] == [
        "    2026-03-29 03:30 CEST – 2026-03-29 04:30 CEST",
        "    2026-04-05 02:30 CEST – 2026-04-05 03:30 CEST",
    ]


def test_a_numbered_weekday_is_one_clear_line(env: Env) -> None:
    env.write_thresholds(threshold() + WINDOW.replace("tue", "2"))
    p = env.run_process("check", "--quiet")
    assert p.returncode == 2 and p.stdout == ""
    [line] = p.stderr.splitlines()
    assert line.startswith(f"rrdalarm: {env.thresholds_path}:") and "field 'schedule'" in line and "mon" in line


def test_the_service_checks_with_the_files_windows(env: Env) -> None:
    # GET /start and the scheduler run checks through CheckService.run_check, on the real clock:
    # a window starting every minute for an hour is open whatever the zone.
    import time

    from rrdalarm.service.service import CheckService

    env.rrd("a.rrd", {"x": [9] * 10}, end=int(time.time()) // 60 * 60)
    env.write_thresholds(threshold(actions=[LOG]) + '[[maintenance]]\nname = "always"\nschedule = "* * * * *"\n'
                         'duration = "1h"\n')
    service = CheckService(env.settings_path)
    try:
        [row] = service.run_check().rows
    finally:
        service.close()
    assert row.silenced == ("maintenance:always",) and log_lines(env) == []
