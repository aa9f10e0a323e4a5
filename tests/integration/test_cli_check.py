"""`rrdalarm check` and `rrdalarm history` as cron and scripts use them, run in-process.

tests/e2e/test_cli_process.py runs the installed command in real subprocesses.
"""

from __future__ import annotations

import json
import sqlite3
import stat
import time

import pytest
from conftest import T0, Env, Rrdcached, threshold
from filelock import FileLock

RESULT_KEYS = {"threshold", "file", "ds", "status", "value", "time", "type", "limit", "message",
               "severity", "unit", "silenced", "acknowledged"}  # added by DESIGN 2b


def test_exit_3_when_only_unreadable(env: Env) -> None:
    env.rrd("a.rrd", {"x": [1, 1]})
    (env.root / "b.rrd").write_bytes(b"")
    env.write_thresholds(threshold(glob="*.rrd"))
    p = env.run("check", "--at", str(T0), "--json")
    assert p.returncode == 3
    doc = json.loads(p.stdout)
    assert {r["file"]: r["status"] for r in doc["results"]} == {"a.rrd": "OK", "b.rrd": "ERROR"}


def test_firing_wins_over_unreadable(env: Env) -> None:
    env.rrd("a.rrd", {"x": [9, 9]})
    (env.root / "b.rrd").write_bytes(b"junk")
    env.write_thresholds(threshold(glob="*.rrd"))
    assert env.run("check", "--at", str(T0), "--quiet").returncode == 1


def test_a_reversed_range_is_a_bad_config_not_a_crash(env: Env) -> None:
    env.rrd("a.rrd", {"x": [1, 1]})
    env.write_thresholds(threshold(glob="[z-a].rrd"))
    p = env.run("check", "--quiet")
    assert p.returncode == 2, p.stderr
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and "thresholds.toml:3:" in lines[0] and "z-a" in lines[0]
    assert "internal error" not in p.stderr and "Traceback" not in p.stderr


def test_munin_state_files_beside_the_rrds_are_not_error_rows(env: Env) -> None:
    # munin keeps these in its RRD folder; "**" used to fetch them: 4 ERROR rows, exit 3.
    env.rrd("example.com/host-load-load-g.rrd", {"42": [1, 1]})
    env.rrd("example.com/host-cpu-user-d.rrd", {"42": [2, 2]})
    for rel in ("datafile", "x.storable", "munin-update.stats", "example.com/limits.storable"):
        (env.root / rel).write_text("munin state\n")
    env.write_thresholds(threshold(glob="**"))
    p = env.run("check", "--at", str(T0), "--json")
    assert p.returncode == 0, p.stdout + p.stderr
    doc = json.loads(p.stdout)
    assert {r["file"]: r["status"] for r in doc["results"]} == {
        "example.com/host-load-load-g.rrd": "OK", "example.com/host-cpu-user-d.rrd": "OK"}
    assert doc["files_checked"] == 2


def test_a_glob_left_with_only_other_files_says_they_were_skipped(env: Env) -> None:
    (env.root / "datafile").write_text("munin state\n")
    env.write_thresholds(threshold(glob="*"))
    p = env.run("check", "--at", str(T0), "--json")
    assert p.returncode == 3
    [row] = json.loads(p.stdout)["results"]
    assert row["status"] == "ERROR" and "matches no RRD file" in row["message"]
    assert "1 other file skipped" in row["message"] and "*.rrd" in row["message"]


def test_json_schema(env: Env) -> None:
    env.rrd("a.rrd", {"in": [9, 9], "out": [1, 1]})
    env.write_thresholds(threshold())
    p = env.run("check", "--at", str(T0), "--json")
    assert p.returncode == 1
    doc = json.loads(p.stdout)
    assert set(doc) == {"started_at", "duration_s", "files_checked", "series_checked", "alarms_fired", "results"}
    assert doc["started_at"] == T0
    assert isinstance(doc["duration_s"], float) and doc["duration_s"] >= 0
    assert (doc["files_checked"], doc["series_checked"], doc["alarms_fired"]) == (1, 2, 1)
    for r in doc["results"]:
        assert set(r) == RESULT_KEYS
        assert r["file"] == "a.rrd" and r["threshold"] == 1 and r["type"] == "above" and r["limit"] == 5.0
    fired = next(r for r in doc["results"] if r["ds"] == "in")
    assert (fired["status"], fired["value"], fired["time"]) == ("ALARM FIRED", 9.0, T0)
    assert (fired["severity"], fired["unit"]) == ("warning", "")


def test_html_report_file(env: Env) -> None:
    env.rrd("<img src=x onerror=alert(1)>.rrd", {"x": [9]})
    env.write_thresholds(threshold(glob="*.rrd"))
    out = env.base / "report.html"
    p = env.run("check", "--at", str(T0), "--html", str(out))
    assert p.returncode == 1
    page = out.read_text()
    assert "ALARM FIRED" in page and "&lt;img src=x onerror=alert(1)&gt;.rrd" in page
    assert "<img" not in page
    # One self-contained file: the styles are inlined, nothing is linked or fetched.
    assert "<link" not in page and "<style>" in page and "--bg:" in page
    for col in ("ID", "File", "DS", "Value", "Type", "Threshold", "Time", "Action", "Status"):
        assert f"<th>{col}</th>" in page


def test_dry_run_and_at(env: Env) -> None:
    env.rrd("a.rrd", {"x": [1] * 10 + [9] * 3})
    env.write_thresholds(threshold(repetitions=3))
    assert env.run("check", "--at", str(T0 - 60), "--dry-run", "--quiet").returncode == 0
    assert env.run("check", "--at", str(T0), "--dry-run", "--quiet").returncode == 1
    assert not (env.data / "rrdalarm.db").exists() or _count(env, "alarm_events") == 0


def _count(env: Env, table: str) -> int:
    with sqlite3.connect(env.data / "rrdalarm.db") as db:
        return int(db.execute(f"select count(*) from {table}").fetchone()[0])


def test_missing_database_is_created_and_db_option(env: Env) -> None:
    env.rrd("a.rrd", {"x": [9]})
    env.write_thresholds(threshold())
    other = env.base / "new" / "dir" / "alarms.db"
    p = env.run("check", "--at", str(T0), "--quiet", "--db", f"sqlite:///{other}")
    assert p.returncode == 1, p.stderr
    with sqlite3.connect(other) as db:
        assert db.execute("select count(*) from alarm_events").fetchone()[0] == 1
        assert db.execute("pragma journal_mode").fetchone()[0] == "wal"


def test_rrd_root_and_config_options_override_settings(env: Env) -> None:
    other = env.base / "other"
    from conftest import make_rrd

    make_rrd(other / "z.rrd", {"x": [9]})
    cfg = env.base / "alt.toml"
    cfg.write_text(threshold(7, glob="z.rrd"))
    p = env.run("check", "--at", str(T0), "--json", "--config", str(cfg), "--rrd-root", str(other))
    assert p.returncode == 1, p.stderr
    assert json.loads(p.stdout)["results"][0]["threshold"] == 7


def test_history_filters(env: Env) -> None:
    env.rrd("a.rrd", {"x": [9] * 3})
    env.rrd("b.rrd", {"x": [1] * 3})
    env.write_thresholds(threshold(glob="a.rrd") + threshold(2, glob="b.rrd", type="below", value=5))
    env.run("check", "--at", str(T0), "--quiet")
    p = env.run("history", "--json")
    events = [json.loads(line) for line in p.stdout.splitlines()]
    assert sorted(e["threshold"] for e in events) == [1, 2]
    only = env.run("history", "--threshold", "2", "--json").stdout.splitlines()
    assert [json.loads(line)["file"] for line in only] == ["b.rrd"]
    assert env.run("history", "--status", "resolved").stdout.strip() == "no events"
    assert "ALARM FIRED" in env.run("history", "--status", "fired").stdout
    # --since is relative to the real clock; T0 lies years back.
    assert env.run("history", "--since", "now-1d").stdout.strip() == "no events"
    assert len(env.run("history", "--since", str(T0)).stdout.splitlines()) == 2
    bad = env.run("history", "--since", "teatime")
    assert bad.returncode == 2 and "Traceback" not in bad.stderr


def test_check_waits_for_lock_then_gives_up(env: Env) -> None:
    env.rrd("a.rrd", {"x": [1]})
    env.write_thresholds(threshold())
    env.data.mkdir(parents=True, exist_ok=True)
    with FileLock(str(env.data / "check.lock")):
        started = time.monotonic()
        p = env.run("check", "--quiet", "--wait", "1")
        waited = time.monotonic() - started
    assert p.returncode == 4
    assert "another check is running" in p.stderr and len(p.stderr.strip().splitlines()) == 1
    assert waited >= 1.0


@pytest.mark.parametrize("arg", ["--at", "--wait"])
def test_bad_option_values_exit_2(env: Env, arg: str) -> None:
    env.write_thresholds(threshold())
    p = env.run("check", arg, "soon")
    assert p.returncode == 2 and "Traceback" not in p.stderr


def test_rrdcached_option(env: Env, rrdcached: Rrdcached) -> None:
    path = env.rrd("a.rrd", {"x": [1.0] * 5}, end=T0 - 600)
    rrdcached.update(path, f"{T0 - 60}:9", f"{T0}:9")
    env.write_thresholds(threshold(start="now-5min"))
    bad = env.run("check", "--rrdcached", "unix:relative.sock")
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "--rrdcached" in bad.stderr
    p = env.run("check", "--json", "--at", str(T0), "--rrdcached", rrdcached.unix)
    assert p.returncode == 1, p.stderr
    assert [r["status"] for r in json.loads(p.stdout)["results"]] == ["ALARM FIRED"]


def test_original_example_row_runs(env: Env) -> None:
    env.rrd("interfaces/eth0/inBytes.rrd", {"bytes": [0, 0, 3]})
    env.rrd("interfaces/eth0/outBytes.rrd", {"bytes": [0, 0, 0]})
    legacy = env.base / "rrdAlarmConfig.txt"
    legacy.write_text("1\tinterfaces/eth0/*Bytes.rrd\tabove\t0.0\t0\tnow-3h\tnow\tsavelog\tAslog.txt\t60\n")
    p = env.run("check", "--config", str(legacy), "--at", str(T0), "--json")
    assert p.returncode == 1, p.stderr
    doc = json.loads(p.stdout)
    assert {(r["file"], r["status"]) for r in doc["results"]} == {
        ("interfaces/eth0/inBytes.rrd", "ALARM FIRED"), ("interfaces/eth0/outBytes.rrd", "OK"),
    }
    log = (env.data / "log" / "Aslog.txt").read_text()
    assert "interfaces/eth0/inBytes.rrd" in log and "ALARM FIRED" in log


def test_what_a_check_creates_is_private(env: Env) -> None:
    env.rrd("a.rrd", {"x": [9, 9]})
    env.write_thresholds(threshold(glob="*.rrd", actions=[{"type": "log", "file": "alarms.log"}]))
    p = env.run("check", "--at", str(T0))
    assert p.returncode == 1, p.stderr
    made = [env.data, *env.data.rglob("*")]
    assert {"rrdalarm.db", "stats", "index", "log", "alarms.log"} <= {m.name for m in made}
    wrong = {
        str(m.relative_to(env.data)): oct(stat.S_IMODE(m.stat().st_mode))
        for m in made
        # The log action's file is 0640 by its own choice (a log group may read it).
        if m.name != "alarms.log" and stat.S_IMODE(m.stat().st_mode) != (0o700 if m.is_dir() else 0o600)
    }
    assert wrong == {}
