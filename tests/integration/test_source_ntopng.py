"""The ntopng source end to end: a fake ntopng over real HTTP, TOML thresholds through the real loader, SQLite.

The fake (tests/fake_ntopng.py) answers as ntopng 5.6, 6.0 and 6.2 do; see
docs/ntopng-rest.md for where each behaviour comes from.
"""

from __future__ import annotations

import json
import time
from collections import deque
from collections.abc import Sequence
from typing import Any

import pytest
import requests
from conftest import Env, free_port
from fake_ntopng import RECORDED, TS, FakeNtopng
from pytest_httpserver import HTTPServer

from rrdalarm.check.engine import run_check
from rrdalarm.config.thresholds import load_thresholds
from rrdalarm.model.definitions import NtopngSettings
from rrdalarm.model.errors import ConfigError
from rrdalarm.model.results import CheckResult
from rrdalarm.model.states import State
from rrdalarm.rules.evaluate import window_slice
from rrdalarm.sources.ntopng import NtopngSource, expand, parse_query, series_name
from rrdalarm.sources.ntopng_client import NtopngClient, NtopngError, parse_ts_answer
from rrdalarm.sources.rrd import RRDSource
from rrdalarm.store.database import Store

T0 = 1_700_000_100  # a multiple of ntopng's 300 s host step
STEP = 300
HOST = "192.168.1.10"
QUERY = f"ifid:0,host:{HOST}"
SERIES = f"ntopng:host:traffic{{{QUERY}}}"
SOURCES = {"rrd": RRDSource, "ntopng": NtopngSource}
VERSIONS = ["6.2", "6.0", "5.6"]


@pytest.fixture
def fake(server: HTTPServer) -> FakeNtopng:
    return FakeNtopng(server, now=lambda: T0)


def configure(env: Env, url: str, **ntopng: Any) -> None:
    """Add an [ntopng] table to the test installation's settings."""
    table = {"token": "T", "retries": 1, "timeout": 2} | ntopng
    lines = [f'url = "{url}"'] + [f"{k} = {toml_value(v)}" for k, v in table.items() if v is not None]
    text = env.settings_path.read_text().split("\n[ntopng]")[0]
    env.settings_path.write_text(text + "\n[ntopng]\n" + "\n".join(lines) + "\n")


def toml_value(v: Any) -> str:
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{k} = {json.dumps(x)}" for k, x in v.items()) + " }"
    return json.dumps(v)


def threshold(ident: int = 1, query: str = QUERY, schema: str = "host:traffic", **fields: Any) -> str:
    body = {"type": "above", "value": 5, "start": "now-1h", "end": "now"} | fields
    lines = [f"id = {ident}", 'source = "ntopng"', f'schema = "{schema}"', f'query = "{query}"']
    lines += [f"{k} = {json.dumps(v)}" for k, v in body.items()]
    return "[[threshold]]\n" + "\n".join(lines) + "\n"


def check(env: Env, store: Store, at: int = T0, **kw: Any) -> CheckResult:
    settings = env.settings()
    assert settings.thresholds is not None
    thresholds = load_thresholds(settings.thresholds, sources=("rrd", "ntopng"))
    return run_check(settings, thresholds, store, at=at, sources=SOURCES, deliver=False, **kw)


def rows(result: CheckResult) -> dict[tuple[str, str], tuple[str, float | None, int | None]]:
    return {(r.file, r.ds): (r.status.value, r.value, r.time) for r in result.rows}


def traffic(fake: FakeNtopng, sent: Sequence[float | None], rcvd: Sequence[float | None] | None = None,
            host: str = HOST, ifid: int = 0, end: int = T0) -> None:
    fake.add_series("host:traffic", f"ifid:{ifid},host:{host}",
                    {"bytes_sent": sent, "bytes_rcvd": rcvd if rcvd is not None else [1.0] * len(sent)}, end=end)


# ---------------------------------------------------------------- evaluation on ntopng data


@pytest.mark.parametrize("version", VERSIONS)
def test_above_fires_with_newest_point_of_run(env: Env, store: Store, server: HTTPServer, version: str) -> None:
    fake = FakeNtopng(server, version=version, now=lambda: T0)
    traffic(fake, [1, 1, 1, 6, 7, 8])
    configure(env, fake.url)
    env.write_thresholds(threshold(repetitions=3, label=["bytes_sent"]))
    r = check(env, store)
    [row] = r.rows
    assert (row.file, row.ds) == ("ntopng:host:traffic{ifid:0,host:192.168.1.10}", "bytes_sent")
    assert (row.status.value, row.value, row.time) == ("ALARM FIRED", 8.0, T0)
    assert r.exit_status == 1 and r.files_checked == 1 and r.series_checked == 1


@pytest.mark.parametrize("version", VERSIONS)
def test_window_is_start_exclusive_end_inclusive_whatever_the_version(
    env: Env, store: Store, server: HTTPServer, version: str
) -> None:
    # 6.2 returns a point at epoch_begin itself, 6.0 and 5.x start one step later: the window hides the difference.
    fake = FakeNtopng(server, version=version, now=lambda: T0)
    traffic(fake, [1, 9, 9, 1, 1, 1, 1, 2])  # 9 at T0-1800 and T0-1500
    configure(env, fake.url)
    env.write_thresholds(
        threshold(1, start="now-25min", label=["bytes_sent"])  # (T0-1500, T0]: no 9 inside
        + threshold(2, start="now-30min", label=["bytes_sent"])  # holds T0-1500 only
        + threshold(3, start="now-30min", repetitions=2, label=["bytes_sent"])
        + threshold(4, start="now-35min", repetitions=2, label=["bytes_sent"])
    )
    by_id = {row.threshold: row for row in check(env, store).rows}
    assert by_id[1].status.value == "OK" and (by_id[1].value, by_id[1].time) == (2.0, T0)
    assert (by_id[2].status.value, by_id[2].time) == ("ALARM FIRED", T0 - 1500)
    assert by_id[3].status.value == "OK"
    assert (by_id[4].status.value, by_id[4].time) == ("ALARM FIRED", T0 - 1500)


@pytest.mark.parametrize("version", VERSIONS)
def test_at_excludes_points_after_the_window(env: Env, store: Store, server: HTTPServer, version: str) -> None:
    fake = FakeNtopng(server, version=version, now=lambda: T0)
    traffic(fake, [1] * 10 + [9, 9])  # the spike is at T0-300 and T0
    configure(env, fake.url)
    env.write_thresholds(threshold(label=["bytes_sent"]))
    assert check(env, store, at=T0 - STEP * 2, dry_run=True).rows[0].status.value == "OK"
    fired = check(env, store, at=T0 - STEP, dry_run=True).rows[0]
    assert (fired.status.value, fired.time) == ("ALARM FIRED", T0 - STEP)


@pytest.mark.parametrize(("kind", "reps", "fires"), [("below", 0, True), ("below", 2, True), ("below", 3, False),
                                                     ("above", 1, False)])
def test_below_and_repetitions(env: Env, store: Store, fake: FakeNtopng, kind: str, reps: int, fires: bool) -> None:
    traffic(fake, [5, 5, 1, 5, 1, 1])
    configure(env, fake.url)
    env.write_thresholds(threshold(type=kind, value=3 if kind == "below" else 6, repetitions=reps,
                                   label=["bytes_sent"]))
    [row] = check(env, store).rows
    assert (row.status.value == "ALARM FIRED") is fires


def test_unknown_points_are_skipped_and_all_labels_are_series(env: Env, store: Store, fake: FakeNtopng) -> None:
    traffic(fake, [9, 9, None, 9, None, 9, None], rcvd=[1, 1, 1, 1, 1, 1, 1])
    configure(env, fake.url)
    env.write_thresholds(threshold(repetitions=3))  # no label: every series of the answer
    got = rows(check(env, store))
    assert got[(SERIES, "bytes_sent")] == ("ALARM FIRED", 9.0, T0 - STEP)
    assert got[(SERIES, "bytes_rcvd")] == ("OK", 1.0, T0)


def test_nothing_known_is_no_data_and_unknown_host_is_no_data(env: Env, store: Store, fake: FakeNtopng) -> None:
    fake.add_series("host:traffic", "ifid:0,host:10.0.0.1", {"bytes_sent": [None, 1.0], "bytes_rcvd": [1.0, 1.0]},
                    end=T0)
    configure(env, fake.url)
    env.write_thresholds(threshold(1, query="ifid:0,host:10.0.0.1", label=["bytes_sent"])
                         + threshold(2, query="ifid:0,host:10.9.9.9"))
    r = check(env, store)
    got = {(row.threshold, row.ds): (row.status.value, row.message) for row in r.rows}
    # 6.x nulls a series with fewer than 2 known points.
    assert got[(1, "bytes_sent")] == ("NO DATA", "no known point in the window")
    assert got[(2, "")][0] == "NO DATA" and "no host:traffic data" in got[(2, "")][1]
    assert r.exit_status == 3


def test_not_found_answers_are_clear_rows(env: Env, store: Store, fake: FakeNtopng) -> None:
    fake.add_host(0, HOST)
    fake.add_host(0, "192.168.1.12")  # before its first 5-minute dump: ntopng has no RRD yet
    fake.add_host(0, "192.168.1.13")
    traffic(fake, [1, 9])
    traffic(fake, [9], host="192.168.1.13")  # one point: 6.2 answers all null
    configure(env, fake.url)
    env.write_thresholds(threshold(1, query="ifid:0,host:*", label=["bytes_sent"])
                         + threshold(2, schema="host:score"))  # in the catalog, no data in light mode
    r = check(env, store)
    got = {(row.threshold, row.file, row.ds): (row.status.value, row.message) for row in r.rows}
    assert got[(1, SERIES, "bytes_sent")][0] == "ALARM FIRED"
    assert got[(1, "ntopng:host:traffic{ifid:0,host:192.168.1.12}", "bytes_sent")] == (
        "NO DATA", "ntopng has no host:traffic data for this query (unknown schema, tags or host, "
                   "or nothing stored yet)")
    assert got[(1, "ntopng:host:traffic{ifid:0,host:192.168.1.13}", "bytes_sent")] == (
        "NO DATA", "no known point in the window")
    status, message = got[(2, f"ntopng:host:score{{{QUERY}}}", "")]
    assert status == "NO DATA" and "no host:score data" in message
    assert len(got) == 4 and r.exit_status == 1


def test_recorded_answers_of_a_real_62_parse() -> None:
    def rsp(name: str) -> Any:
        text = (RECORDED / name).read_text()
        return json.loads(text.split("\n\n", 1)[1] if name.endswith(".txt") else text)["rsp"]

    for name in ("12-ts-unknown-schema.txt", "13-ts-host-unknown.txt"):
        assert not parse_ts_answer(rsp(name)).found
    one = parse_ts_answer(rsp("40-ts-host-traffic-1point.json"))
    assert one.found and one.step == 300 and one.labels == {"bytes_sent": [None] * 7, "bytes_rcvd": [None] * 7}
    counter = parse_ts_answer(rsp("41-ts-host-traffic-127.0.0.3.json"))
    assert (counter.first, counter.labels["bytes_rcvd"][-1]) == (1796158500 + 300, 399856.46)
    gauge = parse_ts_answer(rsp("44-ts-host-score-gauge.json"))
    assert gauge.labels["score_as_cli"][-2:] == [14679.0, 14559.0]


def test_threshold_sharing_a_query_fetches_it_once(env: Env, store: Store, fake: FakeNtopng) -> None:
    traffic(fake, [1, 9])
    configure(env, fake.url)
    env.write_thresholds(threshold(1, label=["bytes_sent"]) + threshold(2, type="below", value=2,
                                                                           label=["bytes_rcvd"]))
    r = check(env, store)
    assert [row.status.value for row in r.rows] == ["ALARM FIRED", "ALARM FIRED"]
    assert sum(1 for _m, path, _p in fake.log if path == TS) == 1
    assert r.files_checked == 1


def test_ok_rows_only_when_wanted(env: Env, store: Store, fake: FakeNtopng) -> None:
    traffic(fake, [1, 9], rcvd=[1, 1])
    configure(env, fake.url)
    env.write_thresholds(threshold())
    r = check(env, store, want_ok=False)
    assert rows(r) == {(SERIES, "bytes_sent"): ("ALARM FIRED", 9.0, T0)}
    assert r.series_checked == 2


def test_a_malformed_answer_is_an_error_row(env: Env, store: Store, server: HTTPServer) -> None:
    server.expect_request(TS).respond_with_json(
        {"rc": 0, "rc_str": "OK", "rsp": {"metadata": {"epoch_begin": "soon", "epoch_step": 0}, "series": []}})
    configure(env, server.url_for("/").rstrip("/"))
    env.write_thresholds(threshold(label=["bytes_sent"]))
    [row] = check(env, store).rows
    assert row.status.value == "ERROR" and "malformed answer" in row.message


def test_the_request_carries_only_names_ntopng_knows(env: Env, store: Store, fake: FakeNtopng) -> None:
    traffic(fake, [1, 9])
    configure(env, fake.url)
    env.write_thresholds(threshold(start="now-2h", label=["bytes_sent"]))
    check(env, store)
    [(method, _path, params)] = [e for e in fake.log if e[1] == TS]
    assert method == "POST"
    assert params == {"ts_schema": "host:traffic", "ts_query": QUERY, "epoch_begin": T0 - 7200, "epoch_end": T0,
                      "limit": 7202}


# ---------------------------------------------------------------- 5.6: all-zero series are dropped


def test_all_zero_series_dropped_by_56_counts_as_zeros(env: Env, store: Store, server: HTTPServer) -> None:
    fake = FakeNtopng(server, version="5.6", now=lambda: T0)
    traffic(fake, [0, 0, 0, 0], rcvd=[3, 4, 5, 6])
    configure(env, fake.url)
    env.write_thresholds(threshold(type="below", value=1, label=["bytes_sent"]))
    [row] = check(env, store).rows
    assert (row.status.value, row.value, row.time) == ("ALARM FIRED", 0.0, T0)
    # The fake really left it out, as 5.6 does.
    answer = requests.post(fake.url + TS, headers={"Authorization": "Token T"}, timeout=5, json={
        "ts_schema": "host:traffic", "ts_query": QUERY, "epoch_begin": T0 - 3600, "epoch_end": T0}).json()
    assert [s["label"] for s in answer["rsp"]["series"]] == ["bytes_rcvd"]


def test_missing_label_in_a_6x_answer_is_an_error_not_zeros(env: Env, store: Store, fake: FakeNtopng) -> None:
    traffic(fake, [1, 1])
    configure(env, fake.url)
    env.write_thresholds(threshold(type="below", value=5, label=["bytes_snt"]))
    [row] = check(env, store).rows
    assert row.status.value == "ERROR"
    assert row.message == "no series 'bytes_snt' in ntopng's host:traffic answer (it has: bytes_sent, bytes_rcvd)"


# ---------------------------------------------------------------- wildcards


def test_host_and_ifid_wildcards_expand(env: Env, store: Store, fake: FakeNtopng) -> None:
    fake.interfaces = {0: "eth0", 1: "eth1"}
    fake.add_host(0, HOST)
    fake.add_host(0, "192.168.1.11", vlan=10)
    fake.add_host(0, "8.8.8.8", local=False)  # remote: ntopng keeps no timeseries for it
    fake.add_host(1, "10.0.0.1")
    traffic(fake, [1, 9])
    traffic(fake, [1, 1], host="192.168.1.11@10")
    traffic(fake, [9, 9], host="10.0.0.1", ifid=1)
    configure(env, fake.url)
    env.write_thresholds(threshold(1, query="ifid:0,host:*", label=["bytes_sent"])
                         + threshold(2, query="ifid:*,host:*", label=["bytes_sent"])
                         + threshold(3, query="ifid:*", schema="iface:traffic"))
    fake.add_series("iface:traffic", "ifid:0", {"bytes": [1, 2]}, end=T0, step=60)
    fake.add_series("iface:traffic", "ifid:1", {"bytes": [1, 7]}, end=T0, step=60)
    r = check(env, store)
    got = {(row.threshold, row.file): row.status.value for row in r.rows}
    assert got == {
        (1, SERIES): "ALARM FIRED",
        (1, "ntopng:host:traffic{ifid:0,host:192.168.1.11@10}"): "OK",
        (2, SERIES): "ALARM FIRED",
        (2, "ntopng:host:traffic{ifid:0,host:192.168.1.11@10}"): "OK",
        (2, "ntopng:host:traffic{ifid:1,host:10.0.0.1}"): "ALARM FIRED",
        (3, "ntopng:iface:traffic{ifid:0}"): "OK",
        (3, "ntopng:iface:traffic{ifid:1}"): "ALARM FIRED",
    }
    listings = [path for _m, path, _p in fake.log if path != TS]
    assert sorted(listings) == sorted([  # each listing once per check, shared by thresholds
        "/lua/rest/v2/get/ntopng/interfaces.lua", "/lua/rest/v2/get/host/active.lua",
        "/lua/rest/v2/get/host/active.lua"])
    assert r.files_checked == len(fake.log) == 3 + 5


def test_wildcard_on_another_tag_is_an_error(env: Env, store: Store, fake: FakeNtopng) -> None:
    configure(env, fake.url)
    env.write_thresholds(threshold(query="ifid:0,host:1.2.3.4,protocol:*", schema="host:ndpi"))
    [row] = check(env, store).rows
    assert (row.status.value, row.file) == ("ERROR", "ntopng:host:ndpi{ifid:0,host:1.2.3.4,protocol:*}")
    assert "wildcard only for ifid and host" in row.message
    assert fake.log == []


def test_no_active_host_is_reported(env: Env, store: Store, fake: FakeNtopng) -> None:
    configure(env, fake.url)
    env.write_thresholds(threshold(query="ifid:0,host:*"))
    [row] = check(env, store).rows
    assert (row.status.value, row.file, row.ds) == ("ERROR", "ntopng:host:traffic{ifid:0,host:*}", "")
    assert "matches no series" in row.message


def test_firing_host_that_went_idle_still_resolves(env: Env, store: Store, fake: FakeNtopng) -> None:
    fake.add_host(0, HOST)
    traffic(fake, [1, 9])
    configure(env, fake.url)
    env.write_thresholds(threshold(query="ifid:0,host:*", label=["bytes_sent"]))
    assert rows(check(env, store))[(SERIES, "bytes_sent")][0] == "ALARM FIRED"
    fake.hosts[0] = []  # idle: no longer in memory, its RRD still answers
    traffic(fake, [1, 1, 1], end=T0 + STEP)
    r = check(env, store, at=T0 + STEP, want_ok=False)  # a FIRING series gets its OK row all the same
    assert rows(r)[(SERIES, "bytes_sent")][0] == "OK"
    assert [e.kind for e in store.events(limit=5)] == ["resolved", "fired"]


def test_a_series_the_query_no_longer_matches_is_closed(env: Env, store: Store, fake: FakeNtopng) -> None:
    traffic(fake, [1, 9])
    traffic(fake, [1, 1], host="192.168.1.11")
    configure(env, fake.url)
    env.write_thresholds(threshold(label=["bytes_sent"]))
    assert check(env, store).exit_status == 1
    env.write_thresholds(threshold(query="ifid:0,host:192.168.1.11", label=["bytes_sent"]))
    r = check(env, store, at=T0 + STEP)
    assert r.exit_status == 0
    assert rows(r)[(SERIES, "bytes_sent")][0] == "OK"
    [closed] = store.events(limit=1)
    assert (closed.kind, closed.series, closed.message) == (
        "resolved", SERIES, "closed: series no longer matched by the threshold's schema and query")
    assert store.series_state(1, SERIES, "bytes_sent") is None


# ---------------------------------------------------------------- auth and errors


def test_basic_auth(env: Env, store: Store, fake: FakeNtopng) -> None:
    fake.users = {"viewer": "pa55word"}
    traffic(fake, [1, 9])
    configure(env, fake.url, token=None, user="viewer", password="pa55word")
    env.write_thresholds(threshold(label=["bytes_sent"]))
    assert check(env, store).rows[0].status.value == "ALARM FIRED"


@pytest.mark.parametrize("auth", [{"token": "wr0ng-t0ken"}, {"token": None, "user": "viewer", "password": "n0t-it"},
                                  {"token": None}])
def test_wrong_credentials_are_an_error_with_exit_3(env: Env, store: Store, fake: FakeNtopng,
                                                    auth: dict[str, Any]) -> None:
    fake.users = {"viewer": "pa55word"}
    traffic(fake, [1, 9])
    configure(env, fake.url, **auth)
    env.write_thresholds(threshold(label=["bytes_sent"]))
    r = check(env, store)
    [row] = r.rows
    assert row.status.value == "ERROR" and r.exit_status == 3
    assert row.message == "ntopng /lua/rest/v2/get/timeseries/ts.lua: authentication failed " \
                          "(redirected to the login page)"
    assert len(fake.log) == 0  # refused before any script ran, and never retried
    assert sum(1 for _req, resp in fake.server.log if resp.status_code == 302) == 1


def test_rc_error_carries_ntopngs_words(env: Env, store: Store, fake: FakeNtopng) -> None:
    fake.rc_error = "INVALID_ARGUMENTS"
    configure(env, fake.url)
    env.write_thresholds(threshold(label=["bytes_sent"]))
    [row] = check(env, store).rows
    assert row.status.value == "ERROR"
    assert row.message == "ntopng /lua/rest/v2/get/timeseries/ts.lua: rc -5 INVALID_ARGUMENTS " \
                          "(Invalid arguments), HTTP 400"


def test_ntopng_starting_is_an_error_row(env: Env, store: Store, fake: FakeNtopng) -> None:
    fake.starting = True  # its first seconds: 403 and an HTML page
    configure(env, fake.url)
    env.write_thresholds(threshold(label=["bytes_sent"]))
    r = check(env, store)
    [row] = r.rows
    assert row.status.value == "ERROR" and "HTTP 403 (ntopng is starting or stopping)" in row.message
    assert r.exit_status == 3


def test_ntopng_down_is_an_error(env: Env, store: Store) -> None:
    configure(env, f"http://127.0.0.1:{free_port()}")
    env.write_thresholds(threshold(label=["bytes_sent"]) + threshold(2, query="ifid:0,host:*"))
    r = check(env, store)
    assert {(row.threshold, row.status.value) for row in r.rows} == {(1, "ERROR"), (2, "ERROR")}
    assert all("cannot reach ntopng (connection refused" in row.message for row in r.rows)
    assert r.exit_status == 3


def test_firing_series_stays_firing_while_ntopng_is_down(env: Env, store: Store, fake: FakeNtopng) -> None:
    fake.add_host(0, HOST)
    traffic(fake, [1, 9])
    configure(env, fake.url)
    env.write_thresholds(threshold(1, label=["bytes_sent"]) + threshold(2, query="ifid:0,host:*"))
    first = check(env, store)
    assert {(row.threshold, row.ds) for row in first.rows if row.status.value == "ALARM FIRED"} == {
        (1, "bytes_sent"), (2, "bytes_sent")}
    fake.server.stop()
    r = check(env, store, at=T0 + 60)
    errors = {(row.threshold, row.file, row.ds) for row in r.rows if row.status.value == "ERROR"}
    assert errors == {(1, SERIES, "bytes_sent"), (2, SERIES, "bytes_sent")}
    assert r.exit_status == 1  # FIRING wins over unreadable
    states = store.states([1, 2])
    assert states[(1, SERIES, "bytes_sent")].state is State.FIRING
    assert states[(2, SERIES, "bytes_sent")].state is State.FIRING
    assert not store.events(status="RESOLVED")


def test_a_500_then_200_is_retried(env: Env, store: Store, fake: FakeNtopng) -> None:
    fake.fail_next = deque([500])
    traffic(fake, [1, 9])
    configure(env, fake.url, retries=2)
    env.write_thresholds(threshold(label=["bytes_sent"]))
    r = check(env, store)
    assert [row.status.value for row in r.rows] == ["ALARM FIRED"]
    assert len(fake.server.log) == 2


def test_a_slow_ntopng_is_bounded_by_timeout_and_retries(env: Env, store: Store, fake: FakeNtopng) -> None:
    fake.delay = 3
    traffic(fake, [1, 9])
    configure(env, fake.url, timeout=1, retries=1)
    env.write_thresholds(threshold(label=["bytes_sent"]))
    started = time.monotonic()
    [row] = check(env, store).rows
    elapsed = time.monotonic() - started
    assert row.status.value == "ERROR"
    assert row.message == "ntopng /lua/rest/v2/get/timeseries/ts.lua: no answer within 1 s (2 attempts)"
    assert elapsed < 2.9  # 2 x 1 s + 0.2 s backoff, not the server's 3 s


def test_concurrency_is_bounded(env: Env, store: Store, fake: FakeNtopng) -> None:
    hosts = [f"10.0.0.{i}" for i in range(1, 25)]
    for h in hosts:
        fake.add_host(0, h)
        traffic(fake, [1, 9 if h.endswith(".7") else 1], host=h)
    fake.delay = 0.03
    configure(env, fake.url, concurrency=3)
    env.write_thresholds(threshold(query="ifid:0,host:*", label=["bytes_sent"]))
    r = check(env, store)
    assert [row.file for row in r.rows if row.status.value == "ALARM FIRED"] == [
        "ntopng:host:traffic{ifid:0,host:10.0.0.7}"]
    assert r.series_checked == 24 and r.files_checked == 25
    assert 2 <= fake.max_in_flight <= 3


def test_secrets_never_appear_in_messages(env: Env, store: Store, fake: FakeNtopng) -> None:
    secrets = ["t0ken-SECRET-1", "pa55-SECRET-2"]
    configure(env, fake.url, token=secrets[0])
    env.write_thresholds(threshold(label=["bytes_sent"]) + threshold(2, query="ifid:*,host:*"))
    texts = [row.message for row in check(env, store).rows]
    configure(env, fake.url, token=None, user="admin", password=secrets[1])
    texts += [row.message for row in check(env, store).rows]
    fake.tokens.add(secrets[0])
    fake.rc_error = "NOT_GRANTED"
    configure(env, fake.url, token=secrets[0])
    texts += [row.message for row in check(env, store).rows]
    configure(env, f"http://127.0.0.1:{free_port()}", token=secrets[0])
    texts += [row.message for row in check(env, store).rows]
    assert len(texts) == 8 and all(texts)
    assert not [t for t in texts for s in secrets if s in t or "SECRET" in t]


def test_token_from_an_unset_environment_variable_is_an_error(env: Env, store: Store, fake: FakeNtopng,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NTOPNG_TOKEN_FOR_TEST", raising=False)
    configure(env, fake.url, token={"env": "NTOPNG_TOKEN_FOR_TEST"})
    env.write_thresholds(threshold(label=["bytes_sent"]))
    [row] = check(env, store).rows
    assert row.status.value == "ERROR" and "NTOPNG_TOKEN_FOR_TEST is not set" in row.message


def test_no_url_is_a_config_error(env: Env, store: Store) -> None:
    env.write_thresholds(threshold())
    with pytest.raises(ConfigError, match=r"\[ntopng\] url"):
        check(env, store)


# ---------------------------------------------------------------- the client on its own


def client_for(fake: FakeNtopng, **kw: Any) -> NtopngClient:
    fields: dict[str, Any] = {"url": fake.url, "token": "T", "retries": 0, "timeout": 2.0} | kw
    return NtopngClient(NtopngSettings(**fields))


def test_client_listings(fake: FakeNtopng) -> None:
    fake.interfaces = {0: "eth0", 3: "tun0"}
    for i in range(12):  # more than ntopng's default page of 10
        fake.add_host(3, f"10.1.0.{i}", vlan=7 if i == 0 else 0)
    fake.add_series("host:traffic", "ifid:0,host:1.2.3.4", {"bytes_sent": [1], "bytes_rcvd": [1]}, end=T0)
    with client_for(fake) as client:
        assert client.interfaces() == [(0, "eth0"), (3, "tun0")]
        hosts = client.active_hosts(3)
        assert len(hosts) == 12 and hosts[0] == "10.1.0.0@7" and "10.1.0.11" in hosts
        host = client.schemas("host")  # the whole catalog, with data or not
        assert host[:2] == ["host:traffic", "host:score"] and len(host) == 23
        fake.add_series("iface:ndpi", "ifid:0,protocol:HTTP", {"bytes": [1, 2]}, end=T0)
        iface = client.schemas("iface")  # 6.2 fails without epochs here
        assert iface[:2] == ["iface:traffic_rxtx", "iface:traffic_ip"] and len(iface) == 32
        assert not any(name.startswith("top:") for name in host + iface)  # lists of top-N, not schemas
        assert expand(client, parse_query("ifid:*,host:*")) == [
            (("ifid", "3"), ("host", h)) for h in hosts]
        with pytest.raises(NtopngError, match=r"rc -2 INVALID_INTERFACE .*HTTP 400"):
            client.active_hosts(9)


def test_client_script_errors_are_302_to_the_error_page(fake: FakeNtopng) -> None:
    with client_for(fake) as client:
        with pytest.raises(NtopngError, match=r"script failed .*Unknown key 'no_such_param'"):
            client._call("POST", TS, json_body={"ts_schema": "host:traffic", "ts_query": QUERY,
                                                "no_such_param": 1})
        with pytest.raises(NtopngError, match=r"script failed .*field 'ifid'"):
            client.timeseries("host:traffic", {"host": HOST}, T0 - 3600, T0, 100)
    assert fake.log and not fake.server.handler_errors


def test_client_schemas_need_56(server: HTTPServer) -> None:
    old = FakeNtopng(server, version="5.4")
    with client_for(old) as client, pytest.raises(NtopngError, match=r"needs ntopng 5.6 or later"):
        client.schemas("host")


def test_parse_both_answer_shapes() -> None:
    six = {"metadata": {"epoch_begin": 1717000200, "epoch_end": 1717003800, "epoch_step": 300, "num_point": 12,
                        "schema": "host:traffic", "query": {"ifid": "0", "host": "192.168.1.1"}},
           "series": [{"id": "bytes_sent", "data": [1520, 1611, None, 1498], "statistics": {"total": 1}},
                      {"id": "bytes_rcvd", "data": [], "statistics": {}}]}
    a = parse_ts_answer(six)
    assert (a.first, a.step, a.shape) == (1717000500, 300, "6")
    assert a.labels == {"bytes_sent": [1520.0, 1611.0, None, 1498.0], "bytes_rcvd": []}
    five = {"start": 1717000200, "step": 60, "count": 3, "series": [{"label": "bytes", "data": [1, 2, 3]}],
            "statistics": {}}
    b = parse_ts_answer(five)
    assert (b.first, b.step, b.shape, b.labels) == (1717000260, 60, "5", {"bytes": [1.0, 2.0, 3.0]})
    empty: Any
    for empty in ({"metadata": []}, [], {}):
        assert not parse_ts_answer(empty).found
    dropped = parse_ts_answer({"start": 1717000200, "step": 300, "count": 3, "series": []})
    assert dropped.found and dropped.may_drop_zero_series and dropped.labels == {}


def test_query_and_window_helpers() -> None:
    tags = parse_query("ifid:0,host:fe80::1")
    assert tags == (("ifid", "0"), ("host", "fe80::1"))
    assert series_name("host:traffic", tags) == "ntopng:host:traffic{ifid:0,host:fe80::1}"
    assert window_slice(first=1000, step=100, start=1000, end=1300) == (1, 4)  # 1100, 1200, 1300
    assert window_slice(first=1100, step=100, start=1000, end=1250) == (0, 2)


def test_a_host_whose_series_stopped_is_stale_once_then_fresh(env: Env, store: Store, fake: FakeNtopng) -> None:
    # The newest point decides for ntopng: the host's series ended 40 min before the check.
    traffic(fake, [1.0] * 6, end=T0 - 8 * STEP)
    configure(env, fake.url)
    env.write_thresholds(threshold(label=["bytes_sent"], start="now-2h", stale_after="30min"))
    r = check(env, store)
    assert [(row.ds, row.status.value) for row in r.rows] == [("", "STALE"), ("bytes_sent", "STALE")]
    assert r.exit_status == 3
    assert [row.message for row in r.rows if not row.ds] == ["stale: 1 of 1 series not updated for 30 min"]
    assert [(row.status.value, row.ds) for row in check(env, store, at=T0 + STEP).rows] == [("STALE", "bytes_sent")]
    traffic(fake, [1.0] * 6, end=T0 + 2 * STEP)  # the collector came back
    back = check(env, store, at=T0 + 2 * STEP)
    assert [(row.ds, row.status.value) for row in back.rows] == [("", "OK"), ("bytes_sent", "OK")]
    events = [(e.kind, e.message) for e in store.events(limit=10)][::-1]
    assert events == [("stale", "stale: 1 of 1 series not updated for 30 min"),
                      ("stale", "no longer stale: every series updated within 30 min")]
