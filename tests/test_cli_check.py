"""`rrdalarm check` and `rrdalarm history` as cron and scripts use them (real subprocesses)."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import subprocess
import sys
import time

import pytest
from conftest import T0, Env, Rrdcached
from filelock import FileLock
from test_engine import threshold

RESULT_KEYS = {"threshold", "file", "ds", "status", "value", "time", "type", "limit", "message"}


def test_exit_0_when_nothing_fires(env: Env) -> None:
    env.rrd("a.rrd", {"x": [1, 1]})
    env.write_thresholds(threshold())
    p = env.run("check", "--at", str(T0))
    assert p.returncode == 0, p.stderr
    assert "0 alarms fired" in p.stdout
    assert "a.rrd" in p.stdout and "OK" in p.stdout


def test_exit_1_when_firing_and_text_table(env: Env) -> None:
    env.rrd("interfaces/eth0/bytes.rrd", {"rcvd": [1, 9, 9]})
    env.write_thresholds(threshold(glob="interfaces/*/bytes.rrd", repetitions=2))
    p = env.run("check", "--at", str(T0))
    assert p.returncode == 1, p.stderr
    header = next(line for line in p.stdout.splitlines() if line.startswith("ID"))
    assert header.split() == ["ID", "File", "DS", "Value", "Type", "Threshold", "Time", "Action", "Status", "Message"]
    assert "ALARM FIRED" in p.stdout and "1 alarms fired" in p.stdout


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


def test_exit_2_bad_config_one_line(env: Env) -> None:
    env.write_thresholds(threshold() + "\n[[threshold]]\nid = 2\nglob = 'x'\ntype = 'sideways'\nvalue = 1\n")
    p = env.run("check", "--quiet")
    assert p.returncode == 2
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "thresholds.toml:" in lines[0] and "'type'" in lines[0] and "sideways" in lines[0]
    assert "Traceback" not in p.stderr


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


def test_quiet_prints_nothing(env: Env) -> None:
    env.rrd("a.rrd", {"x": [9]})
    env.write_thresholds(threshold(actions=[{"type": "sendmail"}]))
    p = env.run("check", "--at", str(T0), "--quiet")
    assert (p.returncode, p.stdout, p.stderr) == (1, "", "")


def test_html_report_file(env: Env) -> None:
    env.rrd("<img src=x onerror=alert(1)>.rrd", {"x": [9]})
    env.write_thresholds(threshold(glob="*.rrd"))
    out = env.base / "report.html"
    p = env.run("check", "--at", str(T0), "--html", str(out))
    assert p.returncode == 1
    page = out.read_text()
    assert "ALARM FIRED" in page and "&lt;img src=x onerror=alert(1)&gt;.rrd" in page
    assert "<img" not in page
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


def test_two_concurrent_checks_fire_once(env: Env) -> None:
    for i in range(300):
        env.rrd(f"h/{i // 50}/{i}.rrd", {"x": [9 if i % 10 == 0 else 1] * 5}, rows=20)
    env.write_thresholds(threshold(glob="h/**/*.rrd", rearm=3600, actions=[{"type": "log", "file": "a.log"}]))
    envvars = {k: v for k, v in os.environ.items() if not k.startswith("RRDALARM_")}
    envvars["RRDALARM_SETTINGS"] = str(env.settings_path)
    cmd = [sys.executable, "-m", "rrdalarm", "check", "--quiet", "--at", str(T0), "--wait", "60"]
    procs = [subprocess.Popen(cmd, env=envvars, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    codes = [p.wait(timeout=120) for p in procs]
    assert codes == [1, 1], [p.stderr.read() for p in procs if p.stderr]
    assert _count(env, "check_runs") == 2
    assert _count(env, "alarm_events") == 30
    assert len((env.data / "log" / "a.log").read_text().splitlines()) == 30


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


def test_unreadable_file_is_an_error_row(env: Env) -> None:
    """A file the check may not read (mode 000) is an ERROR row, exit 3, and the rest is checked."""
    env.rrd("d/good.rrd", {"x": [1, 1]})
    secret = env.rrd("d/secret.rrd", {"x": [9, 9]})
    secret.chmod(0o000)
    env.write_thresholds(threshold(glob="d/*.rrd"))
    prefix: list[str] = []
    if os.geteuid() == 0:
        # root reads anything; without these two capabilities it obeys file modes like everyone.
        prefix = ["setpriv", "--bounding-set=-dac_override,-dac_read_search"]
    envvars = {k: v for k, v in os.environ.items() if not k.startswith("RRDALARM_")}
    envvars["RRDALARM_SETTINGS"] = str(env.settings_path)
    p = subprocess.run(
        [*prefix, sys.executable, "-m", "rrdalarm", "check", "--at", str(T0), "--json"],
        capture_output=True, text=True, env=envvars, timeout=60,
    )
    assert p.returncode == 3, p.stderr
    rows = {r["file"]: r for r in json.loads(p.stdout)["results"]}
    assert rows["d/good.rrd"]["status"] == "OK"
    assert rows["d/secret.rrd"]["status"] == "ERROR"
    assert "Permission denied" in rows["d/secret.rrd"]["message"]


def test_progress_bar_on_a_terminal_only(env: Env) -> None:
    import pty
    import shutil

    # Enough files for several progress callbacks; the bar's delay is set to 0 so that timing does not matter.
    template = env.rrd("t/template.rrd", {"x": [1.0] * 300}, rows=300)
    for i in range(10000):
        dest = env.root / "h" / str(i // 500) / f"{i}.rrd"
        if i % 500 == 0:
            dest.parent.mkdir(parents=True)
        shutil.copyfile(template, dest)
    env.write_thresholds(threshold(glob="h/**/*.rrd", start="now-5h"))
    envvars = {k: v for k, v in os.environ.items() if not k.startswith("RRDALARM_")}
    envvars |= {"RRDALARM_SETTINGS": str(env.settings_path), "COLUMNS": "100", "TERM": "xterm"}
    run = "import sys, rrdalarm.cli.main as c; c.PROGRESS_AFTER = 0.0; sys.argv[0] = 'rrdalarm'; c.main()"
    cmd = [sys.executable, "-c", run, "check", "--at", str(T0), "--workers", "1"]
    leader, follower = pty.openpty()
    proc = subprocess.Popen(cmd, env=envvars, stdout=subprocess.DEVNULL, stderr=follower)
    os.close(follower)
    seen = b""
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:
            break
        if not chunk:
            break
        seen += chunk
    assert proc.wait(timeout=300) == 0
    os.close(leader)
    assert b"checking" in seen and b"/10000" in seen
    # The same check with stderr not a terminal shows no bar.
    piped = subprocess.run(cmd, env=envvars, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=300)
    assert piped.returncode == 0
    assert b"checking" not in piped.stderr


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
