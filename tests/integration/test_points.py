"""/api/points: the series chart's points equal rrdtool.fetch for every archive; confinement, auth, errors;
firing periods, events, silences and acknowledgements as the store holds them (real engine, real RRDs)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import rrdtool
from conftest import T0, Env, WebApp, check, threshold
from flask import Flask
from flask.testing import FlaskClient

from rrdalarm.config.thresholds import load_thresholds
from rrdalarm.control.acks import acknowledge
from rrdalarm.model.control import Matchers
from rrdalarm.report.points import RANGES, PointsError, firing_periods, window
from rrdalarm.store.control import add_silence
from rrdalarm.store.database import Store

TOKEN = "tok-points-0123456789"
BEARER = {"Authorization": f"Bearer {TOKEN}"}
PASSWORD = "correct horse battery"
DAYS = 32
# Archives of three resolutions: a day at 1 min, a week at 5 min, a month at 1 h.
RRAS = ("RRA:AVERAGE:0.5:1:1440", "RRA:AVERAGE:0.5:5:2016", "RRA:AVERAGE:0.5:60:744",
        "RRA:MAX:0.5:1:1440", "RRA:MAX:0.5:5:2016", "RRA:MAX:0.5:60:744")


def month_rrd(path: Path) -> Path:
    """A GAUGE `x` updated every minute for DAYS days up to T0, in one update call."""
    path.parent.mkdir(parents=True, exist_ok=True)
    first = T0 - DAYS * 86400
    rrdtool.create(str(path), "--start", str(first - 60), "--step", "60", "DS:x:GAUGE:120:U:U",
                   "DS:y:GAUGE:120:U:U", *RRAS)
    # Every 97th minute is left unknown, so null points are compared too.
    rrdtool.update(str(path), *(f"{t}:{'U' if i % 97 == 5 else (i % 1440) * 0.25}:{i % 7}"
                                for i, t in enumerate(range(first, T0 + 1, 60))))
    return path


RRD_THRESHOLDS = (
    threshold(1, "hosts/*.rrd", name="traffic", unit="B/s")
    + threshold(2, "hosts/month.rrd", cf="MAX", scale=8, unit="bit/s", clear_value=4)
    + threshold(3, "ev.rrd", start="now-2min", actions=[{"type": "log", "file": "a.log", "on": ["ack"]}])
)
NTOPNG_THRESHOLD = ('[[threshold]]\nid = 4\nsource = "ntopng"\nschema = "host:traffic"\nquery = "ifid:0,host:*"\n'
                    'type = "above"\nvalue = 1\n')


@pytest.fixture
def app(env: Env, make_app: WebApp) -> Flask:
    env.settings_path.write_text(env.settings_path.read_text() + f'\n[service]\napi_token = "{TOKEN}"\n')
    month_rrd(env.root / "hosts" / "month.rrd")
    env.write_thresholds(RRD_THRESHOLDS + NTOPNG_THRESHOLD)
    made: Flask = make_app(env, users=(("alice", PASSWORD, "viewer"),))
    return made


def get(client: FlaskClient, query: str, status: int = 200, headers: dict[str, str] | None = None) -> Any:
    r = client.get(f"/api/points?{query}", headers=BEARER if headers is None else headers)
    assert r.status_code == status, r.get_data(as_text=True)
    assert r.mimetype == "application/json" and r.headers["Cache-Control"] == "no-store"
    return r.get_json()


def fetched(path: Path, cf: str, start: int, end: int, ds: int = 0, scale: float = 1.0) -> tuple[int, list[Any]]:
    """What rrdtool.fetch gives for the window, as (step, [[t, v|None], ...]) with t the end of each interval."""
    (first, _end, step), _names, rows = rrdtool.fetch(str(path), cf, "-s", str(start), "-e", str(end))
    return step, [[first + (i + 1) * step, None if row[ds] is None else row[ds] * scale]
                  for i, row in enumerate(rows)]


@pytest.mark.parametrize("name", list(RANGES))
def test_points_equal_rrdtool_fetch_for_each_range(app: Flask, env: Env, name: str) -> None:
    path = env.root / "hosts" / "month.rrd"
    body = get(app.test_client(), f"threshold=1&series=hosts/month.rrd&ds=x&range={name}&end={T0}")
    step, points = fetched(path, "AVERAGE", T0 - RANGES[name], T0)
    assert body["step"] == step and body["points"] == points and body["window"] == [T0 - RANGES[name], T0]
    assert body["cf"] == "AVERAGE" and body["unit"] == "B/s" and body["limit"] == 5 and body["type"] == "above"
    assert body["clear"] is None and body["firing"] == [] and body["events"] == []
    assert any(v is None for _, v in points) and any(v for _, v in points)
    # rrdtool picks the archive by the window: 1 min up to a day, 5 min for a week, 1 h for a month.
    assert step == {"1h": 60, "6h": 60, "1d": 60, "7d": 300, "30d": 3600}[name]


def test_points_of_each_archive_with_scale_and_the_thresholds_cf(app: Flask, env: Env) -> None:
    path = env.root / "hosts" / "month.rrd"
    c = app.test_client()
    steps = set()
    for span in (1800, 86400, 3 * 86400, 20 * 86400):
        body = get(c, f"threshold=2&series=hosts/month.rrd&ds=y&start={T0 - span}&end={T0}")
        step, points = fetched(path, "MAX", T0 - span, T0, ds=1, scale=8)
        assert (body["step"], body["points"], body["cf"], body["clear"]) == (step, points, "MAX", 4)
        steps.add(step)
    assert steps == {60, 300, 3600}


def test_confinement_never_reads_outside_the_root(app: Flask, env: Env, tmp_path: Path) -> None:
    outside = month_rrd(tmp_path / "outside" / "secret.rrd")
    os.symlink(outside, env.root / "hosts" / "link.rrd")
    os.symlink(tmp_path / "outside", env.root / "out")
    c = app.test_client()
    for series in ("../outside/secret.rrd", str(outside), "hosts/link.rrd", "out/secret.rrd",
                   "hosts/../../outside/secret.rrd", "hosts/*.rrd", "hosts/month.rrd\0x"):
        r = c.get("/api/points", query_string={"threshold": "1", "series": series, "ds": "x", "range": "1h"},
                  headers=BEARER)
        assert r.status_code in (400, 404), (series, r.status_code)
        body = r.get_json()
        assert set(body) == {"error"} and "\n" not in body["error"]
        # What lies behind a link is never named (an absolute path typed is only said back).
        assert series == str(outside) or str(tmp_path / "outside") not in body["error"]


def test_authentication_is_required(app: Flask) -> None:
    query = "threshold=1&series=hosts/month.rrd&ds=x&range=1h"
    assert app.test_client().get(f"/api/points?{query}").status_code == 401
    assert app.test_client().get(f"/api/points?{query}", headers={"Authorization": "Bearer wrong"}).status_code == 401
    c = app.test_client()
    page = c.get("/login").get_data(as_text=True)
    token = page.split('name="csrf_token"', 1)[1].split('value="', 1)[1].split('"', 1)[0]
    assert c.post("/login", data={"name": "alice", "password": PASSWORD, "csrf_token": token}).status_code == 302
    assert get(c, query, headers={})["step"] == 60  # a logged-in viewer reads charts


@pytest.mark.parametrize(("query", "status", "says"), [
    ("threshold=9&series=hosts/month.rrd&ds=x&range=1h", 404, "no threshold 9"),
    ("threshold=1&series=hosts/none.rrd&ds=x&range=1h", 404, "no such RRD file under the root"),
    ("threshold=1&series=hosts/month.rrd&ds=z&range=1h", 404, "has no data source 'z' (it has: x, y)"),
    ("threshold=4&series=ntopng:host:traffic{ifid:0}&ds=bytes&range=1h", 404, "charts exist for RRD files only"),
    ("threshold=1&series=hosts/month.rrd&ds=x&range=2h", 400, "range must be one of 1h, 6h, 1d, 7d, 30d"),
    ("threshold=1&series=hosts/month.rrd&ds=x", 400, "give range"),
    ("threshold=1&series=hosts/month.rrd&ds=x&start=10&end=5", 400, "start must be before end"),
    ("threshold=1&series=hosts/month.rrd&ds=x&start=yesterday", 400, "start: 'yesterday' is not a date"),
    ("threshold=1&series=hosts/month.rrd&ds=x&start=1000000000&end=1700000000", 400, "longer than 400 days"),
    ("threshold=x&series=hosts/month.rrd&ds=x&range=1h", 400, "threshold: 'x' is not a whole number"),
    ("series=hosts/month.rrd&range=1h", 400, "needs threshold, series and ds"),
])
def test_errors_are_one_clear_json_line(app: Flask, query: str, status: int, says: str) -> None:
    body = get(app.test_client(), query, status)
    assert set(body) == {"error"} and says in body["error"] and "\n" not in body["error"]


def test_window_and_firing_periods_are_pure() -> None:
    assert window("1d", None, None, T0) == (T0 - 86400, T0)
    assert window(None, T0 - 60, None, T0) == (T0 - 60, T0)
    with pytest.raises(PointsError, match="range must be"):
        window("1y", None, None, T0)


# What happened to a series, as the engine recorded it.

MIN = 60
BASE = T0 - 59 * MIN  # ev.rrd's first point: minute k is at BASE + k*60


def at(minute: int) -> int:
    return BASE + minute * MIN


@pytest.fixture
def history(app: Flask, env: Env, store: Store) -> Store:
    """ev.rrd above 5 in minutes 10-20 and 40-59; checks fire at 15, resolve at 25, fire again at 45.

    Repeats are not stored: no action of threshold 3 hears them.
    """
    env.rrd("ev.rrd", {"x": [9.0 if 10 <= k <= 20 or k >= 40 else 1.0 for k in range(60)]})
    env.write_thresholds(RRD_THRESHOLDS)  # no ntopng address here: the checks read RRD files only
    for minute in (5, 15, 16, 25, 45, 50):
        check(env, store, at=at(minute))
    settings = env.settings()
    assert settings.thresholds is not None
    acknowledge(store, settings, load_thresholds(settings.thresholds), 3, "ev.rrd", "x", "on it", "alice",
                at(52), wait=1)
    add_silence(store, Matchers(threshold=3, series="ev*.rrd"), at(30), at(40), "swap", "alice", at(29))
    add_silence(store, Matchers(threshold=1), at(30), at(40), "other threshold", "alice", at(29))
    add_silence(store, Matchers(series="ev.rrd"), T0 + 3600, T0 + 7200, "later", "alice", at(29))
    return store


def test_firing_events_silences_and_acks_match_the_store(app: Flask, env: Env, history: Store) -> None:
    body = get(app.test_client(), f"threshold=3&series=ev.rrd&ds=x&start={at(0)}&end={T0}")
    assert body["firing"] == [[at(15), at(25)], [at(45), None]]
    stored = list(reversed(history.find_events(threshold=3, series="ev.rrd", ds="x")))
    assert body["events"] == [{"at": e.at, "kind": e.kind, "status": e.status, "message": e.message}
                              for e in stored]
    assert [e["kind"] for e in body["events"]] == ["fired", "resolved", "fired", "ack"]
    assert body["acks"] == [{"at": at(52), "message": stored[-1].message}] and "on it" in stored[-1].message
    assert [(s["start"], s["end"], s["comment"], s["author"]) for s in body["silences"]] == [
        (at(30), at(40), "swap", "alice")]
    assert body["points"] == fetched(env.root / "ev.rrd", "AVERAGE", at(0), T0)[1] and [T0, 9.0] in body["points"]


def test_firing_periods_are_cut_by_the_window_not_lost(app: Flask, history: Store) -> None:
    c = app.test_client()
    inside = get(c, f"threshold=3&series=ev.rrd&ds=x&start={at(18)}&end={at(22)}")
    # A firing that began before the window and ended after it still shades the whole window.
    assert inside["firing"] == [[at(15), at(25)]] and inside["events"] == []
    later = get(c, f"threshold=3&series=ev.rrd&ds=x&start={at(30)}&end={at(47)}")
    assert later["firing"] == [[at(45), None]] and [e["kind"] for e in later["events"]] == ["fired"]
    assert later["silences"][0]["comment"] == "swap" and later["acks"] == []


def test_firing_periods_from_events() -> None:
    class E:
        def __init__(self, at: int, kind: str) -> None:
            self.at, self.kind = at, kind

    events: list[Any] = [E(1, "repeat"), E(2, "resolved"), E(3, "no_data"), E(4, "fired"), E(5, "resolved"),
                         E(6, "ack"), E(7, "fired")]
    assert firing_periods(events, 0) == [(0, 2), (3, 5), (7, None)]
    assert firing_periods(events, None) == [(3, 5), (7, None)]


def test_points_are_read_through_rrdcached_when_configured(env: Env, make_app: WebApp, rrdcached: Any) -> None:
    path = env.rrd("cached.rrd", {"x": [1.0] * 10})
    rrdcached.update(path, f"{T0 + 60}:7")  # only in the daemon's cache, not yet in the file
    text = env.settings_path.read_text().replace("workers = 1\n", f'workers = 1\nrrdcached = "{rrdcached.unix}"\n')
    env.settings_path.write_text(text + f'\n[service]\napi_token = "{TOKEN}"\n')
    env.write_thresholds(threshold(1, "*.rrd"))
    body = get(make_app(env).test_client(), f"threshold=1&series=cached.rrd&ds=x&start={T0 - 300}&end={T0 + 60}")
    assert [T0 + 60, 7.0] in body["points"]
    rrdcached.stop(graceful=False)
    down = get(make_app(env).test_client(), "threshold=1&series=cached.rrd&ds=x&range=1h", 502)
    assert "rrdcached at" in down["error"] and "unreachable" in down["error"]
