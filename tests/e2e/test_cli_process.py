"""`rrdalarm check` as cron and scripts run it: the installed command in real subprocesses."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys

from conftest import T0, Env, threshold


def _count(env: Env, table: str) -> int:
    with sqlite3.connect(env.data / "rrdalarm.db") as db:
        return int(db.execute(f"select count(*) from {table}").fetchone()[0])


def test_exit_0_when_nothing_fires(env: Env) -> None:
    env.rrd("a.rrd", {"x": [1, 1]})
    env.write_thresholds(threshold())
    p = env.run_process("check", "--at", str(T0))
    assert p.returncode == 0, p.stderr
    assert "0 alarms fired" in p.stdout
    assert "a.rrd" in p.stdout and "OK" in p.stdout


def test_exit_1_when_firing_and_text_table(env: Env) -> None:
    env.rrd("interfaces/eth0/bytes.rrd", {"rcvd": [1, 9, 9]})
    env.write_thresholds(threshold(glob="interfaces/*/bytes.rrd", repetitions=2))
    p = env.run_process("check", "--at", str(T0))
    assert p.returncode == 1, p.stderr
    header = next(line for line in p.stdout.splitlines() if line.startswith("ID"))
    assert header.split() == ["ID", "File", "DS", "Value", "Type", "Threshold", "Time", "Action", "Status", "Severity",
                              "Message"]
    assert "ALARM FIRED" in p.stdout and "1 alarms fired" in p.stdout


def test_exit_2_bad_config_one_line(env: Env) -> None:
    env.write_thresholds(threshold() + "\n[[threshold]]\nid = 2\nglob = 'x'\ntype = 'sideways'\nvalue = 1\n")
    p = env.run_process("check", "--quiet")
    assert p.returncode == 2
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "thresholds.toml:" in lines[0] and "'type'" in lines[0] and "sideways" in lines[0]
    assert "Traceback" not in p.stderr


def test_quiet_prints_nothing(env: Env) -> None:
    env.rrd("a.rrd", {"x": [9]})
    env.write_thresholds(threshold(actions=[{"type": "sendmail"}]))
    p = env.run_process("check", "--at", str(T0), "--quiet")
    assert (p.returncode, p.stdout, p.stderr) == (1, "", "")


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
    for i in range(2000):
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
    assert b"checking" in seen and b"/2000" in seen
    # The same check with stderr not a terminal shows no bar.
    piped = subprocess.run(cmd, env=envvars, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=300)
    assert piped.returncode == 0
    assert b"checking" not in piped.stderr
