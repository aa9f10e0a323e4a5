"""`rrdalarm silence` and `rrdalarm ack` through the real command: quiet, told once, audited."""

from __future__ import annotations

import getpass
import json
from pathlib import Path
from typing import Any

import pytest
import rrdtool
from conftest import T0, Env, assert_one_clear_line, threshold

from rrdalarm.store.database import AuditEntry, DeliveryRow, Store, open_store

# Every test on SQLite, then on PostgreSQL.
pytestmark = pytest.mark.usefixtures("any_database")

LOG = {"type": "log", "file": "a.log", "on": ["fire", "repeat", "resolve", "ack"]}


def log_lines(env: Env) -> list[str]:
    path = env.data / "log" / "a.log"
    return path.read_text().splitlines() if path.exists() else []


def run_check(env: Env, at: int) -> dict[str, object]:
    proc = env.run("check", "--json", "--at", str(at))
    assert proc.returncode in (0, 1), proc.stderr
    got: dict[str, object] = json.loads(proc.stdout)
    return got


def rows(report: dict[str, object]) -> list[dict[str, object]]:
    got = report["results"]
    assert isinstance(got, list)
    return got


def db(env: Env) -> Store:
    return open_store(env.settings().db_url)


def two_firing(env: Env, **fields: Any) -> None:
    env.rrd("web/a.rrd", {"x": [9] * 40})
    env.rrd("web/b.rrd", {"x": [9] * 40})
    env.write_thresholds(threshold(glob="web/*.rrd", actions=[LOG], **fields))


def test_silence_add_list_expire_and_the_notification_after_it(env: Env) -> None:
    two_firing(env, rearm=0)
    run_check(env, T0)
    assert len(log_lines(env)) == 2
    added = env.run("silence", "add", "--threshold", "1", "--series", "web/a*", "--start", str(T0 + 1),
                    "--end", str(T0 + 600), "--comment", "swapping a disk", "--author", "alice", "--at", str(T0 + 1),
                    check=True)
    assert "silence 1 (threshold 1, series web/a*) for 9 min 59 s added" in added.stdout
    assert "it matches 1 series now (1 firing)" in added.stdout
    longer = env.run("silence", "extend", "1", "--for", "10min", "--at", str(T0 + 2), check=True)
    assert longer.stdout.startswith("silence 1 (threshold 1, series web/a*) now ends ")
    assert_one_clear_line(env.run("silence", "extend", "9", "--for", "1h"), "no silence 9")
    listed = env.run("silence", "list", "--json", "--at", str(T0 + 2), check=True)
    [entry] = [json.loads(line) for line in listed.stdout.splitlines()]
    assert entry["state"] == "active" and entry["author"] == "alice" and entry["series"] == "web/a*"
    for k in range(1, 6):
        [a, b] = rows(run_check(env, T0 + 60 * k))
        assert a["silenced"] == [1] and b["silenced"] == []
    # Only b's repeats reached the log: a was evaluated and recorded, told nobody.
    assert [line for line in log_lines(env)[2:] if "web/a.rrd" in line] == []
    assert len([line for line in log_lines(env)[2:] if "web/b.rrd" in line]) == 5
    expired = env.run("silence", "expire", "1", "--author", "bob", "--at", str(T0 + 330), check=True)
    assert expired.stdout.strip() == "silence 1 expired (threshold 1, series web/a*)"
    [a, _] = rows(run_check(env, T0 + 360))
    assert a["status"] == "ALARM FIRED" and a["silenced"] == []
    told = [line for line in log_lines(env) if "web/a.rrd" in line]
    assert len(told) == 2 and "silenced from" in told[1]
    ended_extend = env.run("silence", "extend", "1", "--for", "1h", "--at", str(T0 + 400))
    assert_one_clear_line(ended_extend, "silence 1 has ended already")
    again = env.run("silence", "expire", "1", "--at", str(T0 + 400))
    assert_one_clear_line(again, "silence 1 has ended already")
    assert env.run("silence", "list", "--at", str(T0 + 400), check=True).stdout.startswith("no silences in force")
    ended = env.run("silence", "list", "--all", "--at", str(T0 + 400), check=True).stdout
    assert "expired" in ended and "expired by bob" in ended
    with db(env) as store:
        audit = [(a.user, a.change) for a in store.audit()]
    assert audit == [("bob", "expire"), (getpass.getuser(), "extend"), ("alice", "silence")]


def test_silence_add_refuses_what_cannot_be(env: Env) -> None:
    env.write_thresholds(threshold())
    base = ("silence", "add", "--comment", "x", "--at", str(T0))
    assert_one_clear_line(env.run(*base, "--for", "1h", "--end", "now+2h"), "either an end or a duration")
    assert_one_clear_line(env.run(*base), "either an end or a duration")
    assert_one_clear_line(env.run(*base, "--threshold", "7", "--for", "1h"), "no threshold with id 7")
    assert_one_clear_line(env.run(*base, "--end", str(T0 - 10)), "would end before it starts")
    assert_one_clear_line(env.run(*base, "--start", str(T0 - 100), "--end", str(T0 - 10)), "would end in the past")
    assert_one_clear_line(env.run(*base, "--end", "tomorrow-ish"), "end 'tomorrow-ish' is not a time")
    assert_one_clear_line(env.run(*base, "--for", "ages"), "is not a duration")
    assert_one_clear_line(env.run(*base, "--for", "1h", "--label", "nolabel"), "KEY=VALUE")
    assert_one_clear_line(env.run("silence", "add", "--for", "1h", "--comment", " ", "--at", str(T0)),
                          "a comment is required")
    assert_one_clear_line(env.run("silence", "expire", "42"), "no silence 42")
    with db(env) as store:
        assert store.count(AuditEntry) == 0


def test_silence_by_label_and_iso_times(env: Env) -> None:
    env.rrd("a.rrd", {"x": [9] * 40})
    env.write_thresholds(threshold(labels="__LABELS__").replace('labels = "__LABELS__"', 'labels = {team = "db"}'))
    start = "2023-11-14T22:15:00+00:00"  # T0 + 60
    env.run("silence", "add", "--label", "team=db", "--start", start, "--for", "10min", "--comment", "db night",
            "--no-count", "--at", str(T0), check=True)
    assert rows(run_check(env, T0))[0]["silenced"] == []
    assert rows(run_check(env, T0 + 60))[0]["silenced"] == [1]
    assert rows(run_check(env, T0 + 660))[0]["silenced"] == []


def test_an_acknowledgement_stops_repeats_tells_ack_actions_and_ends_at_resolve(env: Env) -> None:
    path = env.rrd("a.rrd", {"x": [9] * 40})
    env.write_thresholds(threshold(rearm=0, start="now-10min", actions=[LOG]))
    run_check(env, T0)
    run_check(env, T0 + 60)
    assert len(log_lines(env)) == 2  # the firing, one repeat
    acked = env.run("ack", "--threshold", "1", "--comment", "on it", "--author", "carol", "--at", str(T0 + 90),
                    check=True)
    assert acked.stdout.strip() == "acknowledged: threshold 1 a.rrd:x"
    lines = log_lines(env)
    assert len(lines) == 3 and "ACKNOWLEDGED" in lines[2] and "acknowledged by carol: on it" in lines[2]
    for k in range(2, 6):
        [row] = rows(run_check(env, T0 + 60 * k))
        assert row["status"] == "FIRING"
        assert row["acknowledged"] == {"by": "carol", "at": T0 + 90, "comment": "on it"}
    assert len(log_lines(env)) == 3  # no repeat while acknowledged
    twice = env.run("ack", "--threshold", "1", "--comment", "again", "--at", str(T0 + 330), check=True)
    assert twice.stdout.startswith("already acknowledged by carol")
    # It resolves: the acknowledgement ends with the firing, and a new firing repeats again.
    rrdtool.update(str(path), *(f"{T0 + 60 * i}:1" for i in range(1, 13)))
    [row] = rows(run_check(env, T0 + 720))
    assert row["status"] == "OK" and row["acknowledged"] is None
    rrdtool.update(str(path), *(f"{T0 + 60 * i}:9" for i in range(13, 15)))
    assert rows(run_check(env, T0 + 840))[0]["status"] == "ALARM FIRED"
    [row] = rows(run_check(env, T0 + 900))
    assert row["status"] == "ALARM FIRED" and row["acknowledged"] is None
    env.run("ack", "--threshold", "1", "--comment", "again", "--author", "dan", "--at", str(T0 + 950), check=True)
    history = env.run("history", "--json", "--status", "ACKNOWLEDGED", check=True).stdout.splitlines()
    assert [json.loads(h)["message"] for h in history] == ["acknowledged by dan: again", "acknowledged by carol: on it"]
    with db(env) as store:
        assert [(e.user, e.change, e.threshold_id) for e in store.audit()] == [("dan", "ack", 1), ("carol", "ack", 1)]
        # An acknowledgement is no check: the service's health and /start's interval never count it.
        assert store.newest_run_at() == T0 + 900


def test_ack_of_a_glob_and_one_ds_and_of_nothing(env: Env) -> None:
    two_firing(env, rearm=0)
    env.rrd("web/c.rrd", {"x": [9] * 40, "y": [9] * 40})
    run_check(env, T0)
    got = env.run("ack", "--threshold", "1", "--series", "web/c.rrd", "--ds", "y", "--comment", "c", "--at",
                  str(T0 + 10), check=True)
    assert got.stdout.strip() == "acknowledged: threshold 1 web/c.rrd:y"
    got = env.run("ack", "--threshold", "1", "--series", "web/[ab].rrd", "--comment", "ab", "--at", str(T0 + 20),
                  check=True)
    assert got.stdout.splitlines() == ["acknowledged: threshold 1 web/a.rrd:x", "acknowledged: threshold 1 web/b.rrd:x"]
    assert_one_clear_line(env.run("ack", "--threshold", "2", "--comment", "x"), "no FIRING series matches threshold 2")
    assert_one_clear_line(env.run("ack", "--threshold", "1", "--comment", ""), "a comment is required")
    acked = [r for r in rows(run_check(env, T0 + 60)) if r["acknowledged"]]
    assert sorted((r["file"], r["ds"]) for r in acked) == [("web/a.rrd", "x"), ("web/b.rrd", "x"), ("web/c.rrd", "y")]


def test_ack_actions_hear_only_of_firings_they_were_told_of(env: Env, tmp_path: Path) -> None:
    env.rrd("a.rrd", {"x": [9] * 40})
    quiet = {"type": "log", "file": "b.log", "on": ["resolve", "ack"]}
    deaf = {"type": "log", "file": "c.log", "on": ["fire"]}
    env.write_thresholds(threshold(actions=[LOG, quiet, deaf]))
    run_check(env, T0)
    with db(env) as store:
        before = store.count(DeliveryRow)
    env.run("ack", "--threshold", "1", "--comment", "seen", "--at", str(T0 + 5), check=True)
    with db(env) as store:
        assert store.count(DeliveryRow) == before + 2  # a.log and b.log (told at the firing); not c.log
    assert "ACKNOWLEDGED" in (env.data / "log" / "b.log").read_text()
    assert "ACKNOWLEDGED" not in (env.data / "log" / "c.log").read_text()
