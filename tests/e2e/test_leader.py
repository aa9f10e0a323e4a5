"""Two `rrdalarm serve` processes on one database: only the leader runs scheduled checks, and when it is
killed (SIGKILL) the other takes over within a check interval; every alarm still fires once.

On PostgreSQL the lead is an advisory lock that the server frees with the killed process's session; on
SQLite a lease row, which the other process sees is held by a dead process of its host.
"""

from __future__ import annotations

import json
import signal
import time
from collections import Counter, defaultdict
from collections.abc import Iterator

import pytest
import requests
from conftest import Env, another_installation, make_rrd, threshold
from pytest_httpserver import HTTPServer
from test_service import TOKEN, Server, start_server
from test_two_services import REARM, assert_once_per_firing, firing_tree

from rrdalarm.model.states import EventKind
from rrdalarm.store.database import CheckRun, Store, open_store

pytestmark = pytest.mark.usefixtures("any_database")

FILES = 20
INTERVAL = 1
SLACK_S = 2.5  # process start-up of nothing, but a loaded 2-core machine: a check and a poll


@pytest.fixture
def pair(env: Env, httpserver: HTTPServer) -> Iterator[list[Server]]:
    httpserver.expect_request("/hook", method="POST").respond_with_data("ok")
    firing_tree(env, FILES)
    env.write_thresholds(threshold(glob="hosts/*/bytes.rrd", rearm=REARM,
                                   actions=[{"type": "webhook", "url": httpserver.url_for("/hook"),
                                             "on": ["fire", "repeat", "resolve"]}]))
    with env.settings_path.open("a") as fh:  # a short lease: a killed sender's delivery goes again soon
        fh.write("\n[delivery]\ntimeout = 1\nbackoff = 1\nmax_backoff = 1\n")
    other = another_installation(env, "second")
    servers = [start_server(e, interval=INTERVAL, service_lines="deliver_interval = 1\n") for e in (env, other)]
    yield servers
    for srv in servers:
        if srv.proc.poll() is None:
            srv.proc.terminate()
            srv.proc.wait(timeout=30)


def role(srv: Server) -> str:
    return str(srv.get("/healthz", token=None).json()["role"])


def wait_until(predicate: object, seconds: float, what: str) -> float:
    """Seconds until `predicate()` held; fails after `seconds`."""
    started = time.monotonic()
    while not predicate():  # type: ignore[operator]
        assert time.monotonic() - started < seconds, f"{what}: not within {seconds:g} s"
        time.sleep(0.05)
    return time.monotonic() - started


def log_of(srv: Server) -> str:
    return (srv.env.base / "serve.log").read_text(encoding="utf-8")


def runs(store: Store) -> int:
    return store.count(CheckRun)


def test_only_the_leader_checks_and_the_other_takes_over_when_it_is_killed(
        pair: list[Server], env: Env, httpserver: HTTPServer) -> None:
    with open_store(env.settings().db_url) as store:
        wait_until(lambda: runs(store) >= 3, 20, "three scheduled checks")
        roles = {role(s): s for s in pair}
        assert set(roles) == {"leader", "standby"}, roles
        leader, standby = roles["leader"], roles["standby"]
        time.sleep(2 * INTERVAL)
        _show_standing(leader, standby)
        leader.proc.send_signal(signal.SIGKILL)
        leader.proc.wait(timeout=10)
        killed_at, before = time.monotonic(), runs(store)
        checked = log_of(leader).count("check: ")
        assert checked > 3 and before - checked in (0, 1), (checked, before)  # killed after a record, before its line
        assert "check: " not in log_of(standby)  # scheduled checks ran on the leader only
        wait_until(lambda: runs(store) > before, INTERVAL + SLACK_S + 5, "a check after the leader was killed")
        took = time.monotonic() - killed_at
        assert took <= INTERVAL + SLACK_S, f"took over after {took:.1f} s"
        assert role(standby) == "leader" and "leader: this service now runs the scheduled checks" in log_of(standby)
        # A file that starts firing now is fired by the new leader, once; the others keep their state.
        make_rrd(env.root / "hosts/new/bytes.rrd", {"rcvd": [9.0, 9.0, 9.0], "sent": [9.0, 9.0, 9.0]},
                 end=int(time.time()) // 60 * 60, rows=10)
        time.sleep(REARM + 1)
        standby.proc.terminate()
        standby.proc.wait(timeout=30)
        events = store.events(limit=1_000_000)
        assert_once_per_firing(events)
        kinds = Counter(e.kind for e in events)
        assert kinds[EventKind.FIRED.value] == (FILES + 1) * 2 and kinds[EventKind.REPEAT.value] > 0
        assert {e.ds for e in events if e.series == "hosts/new/bytes.rrd"} == {"rcvd", "sent"}
        received = [json.loads(req.get_data()) for req, _ in httpserver.log]
        assert_sent_once_or_again_with_its_id(store, received)
    print(f"\ntakeover after SIGKILL: {took:.2f} s (check interval {INTERVAL} s), {checked} checks on the leader")


def _show_standing(leader: Server, standby: Server) -> None:
    """Each says where it stands: /healthz (the standby healthy on the leader's checks), /metrics, the page."""
    health = standby.get("/healthz", token=None)
    assert health.status_code == 200 and health.json()["scheduler"] == "running", health.text
    assert health.json()["last_check_age_s"] is not None
    assert "rrdalarm_leader 1.0" in leader.get("/metrics").text
    assert "rrdalarm_leader 0.0" in standby.get("/metrics").text
    page = requests.get(standby.url + "/", params={"token": TOKEN}, timeout=30)
    assert page.status_code == 200 and 'id="scheduler-role"' in page.text
    assert 'id="scheduler-role"' not in requests.get(leader.url + "/", params={"token": TOKEN}, timeout=30).text
    assert "standby: another service holds the leader" in log_of(standby)


def assert_sent_once_or_again_with_its_id(store: Store, received: list[dict[str, object]]) -> None:
    """Each event in one delivery; every sent delivery received, each arrival with its delivery's id and
    events. One the killed leader was sending may still be pending (its lease not yet run out)."""
    rows = [d for d, _ in store.deliveries(limit=1_000_000)]
    carried = Counter(i for d in rows for i in store.event_ids_of(d))
    assert all(n == 1 for n in carried.values())
    assert set(carried) == {e.id for e in store.events(limit=1_000_000)}
    expected = {d.id: tuple(sorted(store.event_ids_of(d))) for d in rows}
    by_id: dict[str, set[tuple[int, ...]]] = defaultdict(set)
    for doc in received:
        by_id[str(doc["delivery_id"])].add(tuple(sorted(int(e["id"]) for e in doc["events"])))  # type: ignore[attr-defined]
    assert all(seen == {expected[i]} for i, seen in by_id.items())
    assert {d.id for d in rows if d.status == "sent"} <= set(by_id)
    assert {d.status for d in rows} <= {"sent", "pending"}
