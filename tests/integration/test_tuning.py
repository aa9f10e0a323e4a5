"""The tuning fields of DESIGN 2b, each over real RRD files and real checks stepped on the check's clock."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import rrdtool
from conftest import T0, Env, make_rrd, threshold
from pytest_httpserver import HTTPServer

from rrdalarm.report.render import fmt_time

MIN = 60
LOG = [{"type": "log", "file": "x.log", "on": ["fire", "repeat", "resolve"]}]


def check_at(env: Env, at: int) -> tuple[int, list[dict[str, Any]]]:
    """(exit status, rows) of `rrdalarm check --json --at AT`."""
    p = env.run("check", "--json", "--at", str(at))
    assert p.stdout, p.stderr
    return p.returncode, json.loads(p.stdout)["results"]


def row_of(env: Env, at: int) -> tuple[int, tuple[str, str]]:
    """(exit status, (status, message)) of a check whose report has one row."""
    code, rows = check_at(env, at)
    [row] = rows
    return code, (row["status"], row["message"])


def events(env: Env) -> list[tuple[str, str, str]]:
    """(kind, status, message) of every stored event, repeats included, oldest first."""
    p = env.run("history", "--json", "--repeats", check=True)
    got = sorted((json.loads(line) for line in p.stdout.splitlines() if line.strip()), key=lambda e: e["id"])
    return [(e["kind"], e["status"], e["message"]) for e in got]


def minutes(*values: float | None) -> dict[str, Sequence[float | None]]:
    return {"x": list(values)}


# ---------------------------------------------------------------- severity, labels, description, runbook


def test_severity_labels_description_and_runbook_reach_rows_and_the_webhook(env: Env, httpserver: HTTPServer) -> None:
    httpserver.expect_request("/hook", method="POST").respond_with_data("ok")
    env.rrd("a.rrd", minutes(1, 1, 9))
    env.write_thresholds(
        threshold(severity="critical", unit="%", description="disk nearly full", runbook="https://wiki.example/disk",
                  actions=[{"type": "webhook", "url": httpserver.url_for("/hook")}])
        .replace('unit = "%"', 'unit = "%"\nlabels = { team = "storage", site = "par1" }'))
    code, rows = check_at(env, T0)
    assert code == 1
    assert [(r["status"], r["severity"], r["unit"], r["message"]) for r in rows] == [
        ("ALARM FIRED", "critical", "%", "9 % above 5 %")]
    [(request, _)] = httpserver.log
    [event] = json.loads(request.get_data())["events"]
    assert {k: event[k] for k in ("kind", "severity", "labels", "description", "runbook", "unit", "message")} == {
        "kind": "fired", "severity": "critical", "labels": {"team": "storage", "site": "par1"},
        "description": "disk nearly full", "runbook": "https://wiki.example/disk", "unit": "%",
        "message": "9 % above 5 %"}


def test_the_default_severity_is_warning_and_rows_carry_no_unit(env: Env) -> None:
    env.rrd("a.rrd", minutes(1, 1, 9))
    env.write_thresholds(threshold())
    _, [row] = check_at(env, T0)
    assert (row["severity"], row["unit"], row["message"]) == ("warning", "", "9 above 5")


# ---------------------------------------------------------------- unit, SI limits, scale


def test_unit_si_limit_and_scale_turn_bytes_into_readable_bits(env: Env) -> None:
    # 3.95 MB/s of octets is 31.6 Mbit/s: over an "30M" limit only once scaled by 8.
    env.rrd("a.rrd", minutes(*[1e6] * 10, 3.95e6, 3.95e6, 2e6, None), end=T0 + 2 * MIN)
    env.write_thresholds(threshold(value="30M", unit="B/s", scale=8, start="now-2min", actions=LOG)
                         + threshold(2, value="30M", unit="B/s", start="now-2min"))
    code, rows = check_at(env, T0)
    assert code == 1
    assert [(r["threshold"], r["status"], r["value"], r["limit"], r["message"]) for r in rows] == [
        (1, "ALARM FIRED", 31.6e6, 30e6, "31.6 MB/s above 30 MB/s"),
        (2, "OK", 3.95e6, 30e6, "")]
    assert row_of_threshold(env, T0 + 2 * MIN, 1) == ("OK", "resolved: 16 MB/s no longer above 30 MB/s")
    assert events(env) == [("fired", "ALARM FIRED", "31.6 MB/s above 30 MB/s"),
                           ("resolved", "RESOLVED", "resolved: 16 MB/s no longer above 30 MB/s")]


def row_of_threshold(env: Env, at: int, ident: int) -> tuple[str, str]:
    _, rows = check_at(env, at)
    [row] = [r for r in rows if r["threshold"] == ident]
    return row["status"], row["message"]


# ---------------------------------------------------------------- within (M of N)


def test_within_breaches_on_m_of_the_newest_n_points(env: Env) -> None:
    env.rrd("a.rrd", minutes(1, 1, 9, 1, 9, None, 1, 9))
    env.write_thresholds(threshold(1, repetitions=3, within=5) + threshold(2, repetitions=3, within=4)
                         + threshold(3, repetitions=3))
    code, rows = check_at(env, T0)
    assert code == 1
    # Known points, newest first: 9 1 9 1 9 1 1: three of the newest five cross, two of the newest four.
    assert [(r["threshold"], r["status"], r["value"], r["time"]) for r in rows] == [
        (1, "ALARM FIRED", 9.0, T0), (2, "OK", 9.0, T0), (3, "OK", 9.0, T0)]


def test_within_resolves_saying_how_many_points_still_cross(env: Env) -> None:
    env.rrd("a.rrd", minutes(1, 9, 9, 1, 9, 1, 1), end=T0 + 2 * MIN)
    env.write_thresholds(threshold(repetitions=2, within=3))
    assert row_of(env, T0) == (1, ("ALARM FIRED", "9 above 5"))
    assert row_of(env, T0 + 2 * MIN) == (0, ("OK", "resolved: 1 of 3 points above 5"))


# ---------------------------------------------------------------- clear_value (hysteresis)


def test_clear_value_keeps_a_firing_series_until_it_drops_below_the_clear_level(env: Env) -> None:
    env.rrd("a.rrd", minutes(50, 85, 75, 72, 65), end=T0 + 3 * MIN)
    env.write_thresholds(threshold(value=80, clear_value=70, start="now-1min", actions=LOG))
    assert row_of(env, T0) == (1, ("ALARM FIRED", "85 above 80"))
    assert row_of(env, T0 + MIN) == (1, ("FIRING", "still firing: 75 above clear level 70"))
    assert row_of(env, T0 + 2 * MIN) == (1, ("FIRING", "still firing: 72 above clear level 70"))
    assert row_of(env, T0 + 3 * MIN) == (0, ("OK", "resolved: 65 no longer above 80"))
    assert events(env) == [("fired", "ALARM FIRED", "85 above 80"),
                           ("resolved", "RESOLVED", "resolved: 65 no longer above 80")]


def test_a_clear_value_above_the_limit_is_a_one_line_error(env: Env) -> None:
    env.rrd("a.rrd", minutes(1))
    env.write_thresholds(threshold(value=80, clear_value=90))
    p = env.run("check", "--at", str(T0))
    assert p.returncode == 2, p
    assert "clear_value" in p.stderr and "at or below" in p.stderr and len(p.stderr.strip().splitlines()) == 1


# ---------------------------------------------------------------- keep_firing_for


def test_keep_firing_for_resolves_only_after_that_long_without_a_breach(env: Env) -> None:
    env.rrd("a.rrd", minutes(1, 9, 1, 1, 1, 9, 1, 1, 1, 1), end=T0 + 8 * MIN)
    env.write_thresholds(threshold(start="now-1min", keep_firing_for="3min", actions=LOG))
    seen = [row_of(env, T0 + k * MIN) for k in range(9)]
    assert seen == [
        (1, ("ALARM FIRED", "9 above 5")),
        (1, ("FIRING", "still firing: clear for 0 s of 3 min")),
        (1, ("FIRING", "still firing: clear for 1 min of 3 min")),
        (1, ("FIRING", "still firing: clear for 2 min of 3 min")),
        # A breach within the time kept: still the same firing, actions told again (rearm 0).
        (1, ("ALARM FIRED", "9 above 5, firing for 4 min")),
        (1, ("FIRING", "still firing: clear for 0 s of 3 min")),
        (1, ("FIRING", "still firing: clear for 1 min of 3 min")),
        (1, ("FIRING", "still firing: clear for 2 min of 3 min")),
        (0, ("OK", "resolved: 1 no longer above 5")),
    ]
    assert [k for k, _, _ in events(env)] == ["fired", "repeat", "resolved"]


# ---------------------------------------------------------------- no_data


def add_points(path: Path, *points: tuple[int, float]) -> None:
    rrdtool.update(str(path), *(f"{t}:{v!r}" for t, v in points))


LATER = T0 + 2 * 3600  # the one-hour window then holds no point of the file


def test_no_data_keep_leaves_a_firing_series_firing(env: Env) -> None:
    env.rrd("a.rrd", minutes(1, 9))
    env.write_thresholds(threshold(no_data="keep", actions=LOG))
    assert row_of(env, T0)[0] == 1
    assert row_of(env, LATER) == (1, ("NO DATA", "no known point in the window"))
    assert [k for k, _, _ in events(env)] == ["fired"]


def test_no_data_ok_resolves_a_firing_series(env: Env) -> None:
    env.rrd("a.rrd", minutes(1, 9))
    env.write_thresholds(threshold(no_data="ok", actions=LOG))
    assert row_of(env, T0)[0] == 1
    assert row_of(env, LATER) == (0, ("OK", "resolved: no known point in the window"))
    assert row_of(env, LATER + MIN) == (0, ("OK", "no known point in the window"))
    assert events(env) == [("fired", "ALARM FIRED", "9 above 5"),
                           ("resolved", "RESOLVED", "resolved: no known point in the window")]


def test_no_data_alarm_fires_and_data_coming_back_resolves_it(env: Env) -> None:
    path = env.rrd("a.rrd", minutes(1, 1))
    # The no_data event reaches the actions that list it in `on`.
    env.write_thresholds(threshold(no_data="alarm", actions=[{"type": "log", "file": "x.log",
                                                              "on": ["fire", "resolve", "no_data"]}]))
    assert row_of(env, T0) == (0, ("OK", ""))
    assert row_of(env, LATER) == (1, ("NO DATA", "no data: no known point in the window"))
    assert row_of(env, LATER + MIN) == (1, ("NO DATA", "no data: no known point in the window"))
    add_points(path, (LATER + MIN, 2.0), (LATER + 2 * MIN, 2.0))
    assert row_of(env, LATER + 2 * MIN) == (0, ("OK", "resolved: data back (2)"))
    assert events(env) == [("no_data", "NO DATA", "no data: no known point in the window"),
                           ("resolved", "RESOLVED", "resolved: data back (2)")]
    log = (env.data / "log" / "x.log").read_text()
    assert "no data: no known point in the window" in log and "resolved: data back (2)" in log


def test_a_no_data_alarm_reaches_default_actions_and_its_recovery_only_those_told(env: Env) -> None:
    path = env.rrd("a.rrd", minutes(1, 1))
    env.write_thresholds(threshold(no_data="alarm", actions=[
        {"type": "log", "file": "default.log"},  # on: fire, resolve, no_data
        {"type": "log", "file": "fire_only.log", "on": ["fire", "resolve"]},
    ]))
    assert row_of(env, LATER)[1][0] == "NO DATA"
    add_points(path, (LATER + MIN, 2.0), (LATER + 2 * MIN, 2.0))
    assert row_of(env, LATER + 2 * MIN) == (0, ("OK", "resolved: data back (2)"))
    told = (env.data / "log" / "default.log").read_text()
    assert "no data: no known point in the window" in told and "resolved: data back (2)" in told
    assert not (env.data / "log" / "fire_only.log").exists()  # never told of the firing, so not of its end


def test_no_data_alarm_with_a_breach_coming_back_is_a_firing_of_its_own(env: Env) -> None:
    path = env.rrd("a.rrd", minutes(1, 1))
    env.write_thresholds(threshold(no_data="alarm", actions=LOG))
    assert row_of(env, LATER)[1][0] == "NO DATA"
    add_points(path, (LATER - MIN, 9.0), (LATER, 9.0))
    assert row_of(env, LATER) == (1, ("ALARM FIRED", "9 above 5"))
    assert [k for k, _, _ in events(env)] == ["no_data", "fired"]


# ---------------------------------------------------------------- stale_after


def test_stale_files_give_one_event_per_threshold_then_one_when_fresh_again(env: Env) -> None:
    paths = [env.rrd(f"h{i}.rrd", minutes(*[1.0] * 30), end=T0 - 20 * MIN) for i in range(3)]
    env.write_thresholds(threshold(glob="*.rrd", stale_after="15min", actions=LOG))
    code, rows = check_at(env, T0)
    assert code == 3
    stale_since = f"not updated since {fmt_time(T0 - 20 * MIN)}"
    assert [(r["file"], r["status"], r["message"]) for r in rows] == [
        ("*.rrd", "STALE", "stale: 3 of 3 files not updated for 15 min"),
        *((f"h{i}.rrd", "STALE", stale_since) for i in range(3))]
    code, rows = check_at(env, T0 + MIN)
    assert code == 3 and [r["status"] for r in rows] == ["STALE"] * 3
    for path in paths:
        add_points(path, (T0 + MIN, 1.0), (T0 + 2 * MIN, 1.0))
    code, rows = check_at(env, T0 + 2 * MIN)
    assert code == 0
    assert [(r["file"], r["status"], r["message"]) for r in rows] == [
        ("*.rrd", "OK", "no longer stale: every file updated within 15 min"),
        *((f"h{i}.rrd", "OK", "") for i in range(3))]
    assert events(env) == [("stale", "STALE", "stale: 3 of 3 files not updated for 15 min"),
                           ("stale", "RESOLVED", "no longer stale: every file updated within 15 min")]


def test_a_stale_firing_series_keeps_its_state(env: Env) -> None:
    env.rrd("a.rrd", minutes(1, 9), end=T0 - 20 * MIN)
    env.write_thresholds(threshold(stale_after="15min", start="now-2h"))
    assert row_of(env, T0 - 20 * MIN)[1][0] == "ALARM FIRED"
    code, rows = check_at(env, T0)
    assert code == 1  # still FIRING: exit 1 wins over STALE's 3
    assert [r["status"] for r in rows] == ["STALE", "STALE"]


def collectd_rrd(path: Path, end: int, points: int) -> Path:
    """A collectd-style file: DS "value", a 10 s step and a 20 s heartbeat, updated every 10 s up to `end`."""
    return make_rrd(path, {"value": [0.5] * points}, end=end, step=10, rows=1200)


def test_a_collectd_tree_whose_collector_stops_gives_one_stale_event_and_one_recovery(env: Env) -> None:
    stop = T0 - 20 * MIN
    files = [env.root / f"{host}/{plugin}" for host in ("web1", "web2")
             for plugin in ("cpu-0/cpu-idle.rrd", "load/load.rrd", "interface-eth0/if_octets.rrd")]
    for path in files:
        collectd_rrd(path, stop, 360)  # the hour before the collector stopped
    env.write_thresholds(threshold(glob="*/*/*.rrd", value=1e9, start="now-10min", stale_after="5min"))
    for at in range(stop + 10 * 10, T0 + 1, 5 * MIN):  # checks every 5 minutes while it is stopped
        code, rows = check_at(env, at)
    assert code == 3 and [r["status"] for r in rows] == ["STALE"] * 6
    for path in files:  # the collector is back: 10 s updates again
        rrdtool.update(str(path), *(f"{t}:0.5" for t in range(T0 + 10, T0 + 61, 10)))
    for at in (T0 + MIN, T0 + 2 * MIN):
        code, rows = check_at(env, at)
        assert code == 0 and [r["status"] for r in rows] == ["OK"] * (7 if at == T0 + MIN else 6)
    assert events(env) == [("stale", "STALE", "stale: 6 of 6 files not updated for 5 min"),
                           ("stale", "RESOLVED", "no longer stale: every file updated within 5 min")]


# ---------------------------------------------------------------- flap_changes, flap_window


def test_a_flapping_series_gives_one_event_then_quiet_then_one_when_it_settles(env: Env) -> None:
    flips = [9.0, 1.0] * 4  # a state change every minute for 8 minutes
    env.rrd("a.rrd", minutes(1, *flips, *[9.0] * 12), end=T0 + 11 * MIN)
    env.write_thresholds(threshold(start="now-1min", flap_changes=2, flap_window="5min", actions=LOG))
    seen = [row_of(env, T0 - 8 * MIN + k * MIN) for k in range(20)]
    statuses = [s for _, (s, _) in seen]
    assert statuses[:3] == ["ALARM FIRED", "OK", "FLAPPING"]
    assert seen[2] == (1, ("FLAPPING", "flapping: 3 changes in 5 min"))
    # Flapping while it flips, and for 5 minutes (the window) after its last change.
    assert statuses[3:13] == ["FLAPPING"] * 10
    assert seen[12] == (1, ("FLAPPING", "flapping: 1 change in 5 min"))  # the changes still in the window
    assert seen[13] == (1, ("ALARM FIRED", "settled: firing, no change for 5 min"))
    assert events(env)[:4] == [("fired", "ALARM FIRED", "9 above 5"), ("resolved", "RESOLVED",
                                                                      "resolved: 1 no longer above 5"),
                               ("flapping", "FLAPPING", "flapping: 3 changes in 5 min"),
                               ("fired", "ALARM FIRED", "settled: firing, no change for 5 min")]
    assert all(k == "repeat" for k, _, _ in events(env)[4:])


def test_the_text_and_html_reports_show_stale_and_flapping_rows(env: Env) -> None:
    env.rrd("old.rrd", minutes(*[1.0] * 30), end=T0 - 20 * MIN)
    env.rrd("a.rrd", minutes(1, 9, 1, 9))
    env.write_thresholds(threshold(glob="old.rrd", stale_after="15min")
                         + threshold(2, start="now-1min", flap_changes=2, flap_window="5min"))
    for k in range(3):
        env.run("check", "--json", "--at", str(T0 - (2 - k) * MIN))
    p = env.run("check", "--at", str(T0 + 30))
    assert p.returncode == 1, p.stderr
    lines = p.stdout.splitlines()
    assert any("FLAPPING" in line and "flapping: 3 changes in 5 min" in line for line in lines)
    assert any("old.rrd" in line and "STALE" in line and "not updated since" in line for line in lines)
    p = env.run("check", "--at", str(T0 + 40), "--html", str(env.base / "report.html"))
    assert p.returncode == 1, p.stderr
    html = (env.base / "report.html").read_text()
    assert "FLAPPING" in html and "STALE" in html


def test_quiet_checks_end_staleness_once(env: Env) -> None:
    # cron runs `check --quiet`: no OK rows are made, yet a file fresh again must end the staleness once.
    paths = [env.rrd(f"h{i}.rrd", minutes(*[1.0] * 30), end=T0 - 20 * MIN) for i in range(2)]
    env.write_thresholds(threshold(glob="*.rrd", stale_after="15min"))
    assert env.run("check", "--quiet", "--at", str(T0)).returncode == 3
    for path in paths:
        add_points(path, (T0 + MIN, 1.0), (T0 + 2 * MIN, 1.0))
    assert [env.run("check", "--quiet", "--at", str(T0 + k * MIN)).returncode for k in (2, 3, 4)] == [0, 0, 0]
    assert events(env) == [("stale", "STALE", "stale: 2 of 2 files not updated for 15 min"),
                           ("stale", "RESOLVED", "no longer stale: every file updated within 15 min")]


def test_quiet_checks_see_a_flapping_series_settle_ok(env: Env) -> None:
    env.rrd("a.rrd", minutes(1, 9, 1, 9, *[1.0] * 12), end=T0 + 14 * MIN)
    env.write_thresholds(threshold(start="now-1min", flap_changes=2, flap_window="5min", actions=LOG))
    for k in range(12):
        env.run("check", "--quiet", "--at", str(T0 + k * MIN))
    # Changes at T0+1, +2, +3 and +4 min; no change for 5 minutes from T0+9 min.
    assert events(env) == [("fired", "ALARM FIRED", "9 above 5"),
                           ("resolved", "RESOLVED", "resolved: 1 no longer above 5"),
                           ("flapping", "FLAPPING", "flapping: 3 changes in 5 min"),
                           ("resolved", "RESOLVED", "settled: OK, no change for 5 min")]
