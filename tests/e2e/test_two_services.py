"""Two `rrdalarm serve` processes on one PostgreSQL database: every alarm recorded and delivered once.

Each service has its own data dir (so its own lock file); only the database can keep their checks
apart: the leader lock lets one of them run the scheduled checks (tests/e2e/test_leader.py), the check
lock keeps /start and Check now from overlapping them. `RRDALARM_TWO_SERVE_SECONDS` and
`RRDALARM_TWO_SERVE_FILES` make a longer, bigger run (bench/two_services.sh).
"""

from __future__ import annotations

import itertools
import json
import os
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from conftest import Env, another_installation, make_rrd, threshold
from pytest_httpserver import HTTPServer
from test_service import Server, start_server

from rrdalarm.model.states import EventKind
from rrdalarm.store.database import AlarmEvent, DeliveryRow, Store, open_store

SECONDS = float(os.environ.get("RRDALARM_TWO_SERVE_SECONDS", "20"))
FILES = int(os.environ.get("RRDALARM_TWO_SERVE_FILES", "500"))
REARM = 3


@dataclass
class Figures:
    checks: int
    events: int
    fired: int
    repeats: int
    deliveries: int
    received: int


def firing_tree(env: Env, files: int) -> None:
    """`files` files whose newest points cross 5, ending now (the services read them on the wall clock)."""
    now = int(time.time()) // 60 * 60
    for i in range(files):
        make_rrd(env.root / f"hosts/h{i:04d}/bytes.rrd", {"rcvd": [1.0, 9.0, 9.0], "sent": [1.0, 1.0, 9.0]},
                 end=now, rows=10)


@pytest.fixture
def services(env: Env, pg_url: str, httpserver: HTTPServer) -> Iterator[tuple[Server, Server]]:
    httpserver.expect_request("/hook", method="POST").respond_with_data("ok")
    firing_tree(env, FILES)
    env.write_thresholds(threshold(glob="hosts/*/bytes.rrd", rearm=REARM,
                                   actions=[{"type": "webhook", "url": httpserver.url_for("/hook"),
                                             "on": ["fire", "repeat", "resolve"]}]))
    with env.settings_path.open("a") as fh:
        fh.write(f'database_url = "{pg_url}"\n[delivery]\ntimeout = 5\nbackoff = 1\nmax_backoff = 1\n')
    other = another_installation(env, "second")
    servers = [start_server(e, interval=1, service_lines="deliver_interval = 1\n") for e in (env, other)]
    yield servers[0], servers[1]
    for srv in servers:
        if srv.proc.poll() is None:
            srv.proc.terminate()
            srv.proc.wait(timeout=30)


def assert_once_per_firing(events: list[AlarmEvent]) -> None:
    """Per series: one FIRED, then repeats no sooner than rearm after each other."""
    by_series: dict[tuple[int, str, str], list[AlarmEvent]] = defaultdict(list)
    for e in sorted(events, key=lambda e: e.id):
        by_series[(e.threshold_id, e.series, e.ds)].append(e)
    for key, mine in by_series.items():
        kinds = Counter(e.kind for e in mine)
        assert kinds[EventKind.FIRED.value] == 1, (key, kinds)
        assert mine[0].kind == EventKind.FIRED.value, key
        gaps = [b.at - a.at for a, b in itertools.pairwise(mine)]
        assert all(gap >= REARM for gap in gaps), (key, gaps)


def assert_delivered_once(store: Store, received: list[dict[str, object]]) -> int:
    """Each event in one delivery; each delivery received, duplicates under the same id and events."""
    rows = [d for d, _ in store.deliveries(limit=1_000_000)]
    carried = Counter(i for d in rows for i in store.event_ids_of(d))
    assert all(n == 1 for n in carried.values()), [i for i, n in carried.items() if n > 1][:10]
    assert set(carried) == {e.id for e in store.events(limit=1_000_000)}
    by_id: dict[str, set[tuple[int, ...]]] = defaultdict(set)
    for doc in received:
        by_id[str(doc["delivery_id"])].add(tuple(sorted(int(e["id"]) for e in doc["events"])))  # type: ignore[attr-defined]
    assert set(by_id) == {d.id for d in rows if d.status == "sent"}
    expected = {d.id: tuple(sorted(store.event_ids_of(d))) for d in rows}
    assert all(seen == {expected[i]} for i, seen in by_id.items())
    assert {d.status for d in rows} <= {"sent", "pending"}
    return len(rows)


def test_two_services_on_one_database_record_and_deliver_each_alarm_once(
        services: tuple[Server, Server], pg_url: str, httpserver: HTTPServer) -> None:
    deadline = time.monotonic() + SECONDS
    while time.monotonic() < deadline:
        assert all(s.proc.poll() is None for s in services), "a service stopped"
        time.sleep(0.5)
    for srv in services:  # stop checking; let the last deliveries go out
        srv.proc.terminate()
        srv.proc.wait(timeout=30)
    logs = [(s.env.base / "serve.log").read_text(encoding="utf-8") for s in services]
    failed = [line for log in logs for line in log.splitlines() if "check failed" in line]
    assert not [line for line in failed if "uq_series_state_key" in line], failed[:5]
    assert failed == []
    with open_store(pg_url) as store:
        _finish_deliveries(store, services[0].env)
        events = store.events(limit=1_000_000)
        assert_once_per_firing(events)
        received = [json.loads(req.get_data()) for req, _ in httpserver.log]
        count = assert_delivered_once(store, received)
        kinds = Counter(e.kind for e in events)
        figures = Figures(len(store.runs(limit=1_000_000)), len(events), kinds[EventKind.FIRED.value],
                          kinds[EventKind.REPEAT.value], count, len(received))
    started = [log.count("check: ") for log in logs]
    print(f"\ntwo services, {SECONDS:g} s, {FILES} files: {figures}, checks per service {started}")
    assert figures.fired == FILES * 2  # two data sources each
    assert sorted(n > 0 for n in started) == [False, True], "the leader alone ran the scheduled checks"
    assert figures.repeats > 0


def _finish_deliveries(store: Store, env: Env) -> None:
    """Send what the stopped services left pending (as `rrdalarm deliver` from cron would)."""
    for _ in range(3):
        if not [d for d, _ in store.deliveries(limit=1_000_000) if d.status == "pending"]:
            return
        env.run("deliver", "--quiet")
        time.sleep(1)
    assert all(isinstance(d, DeliveryRow) for d, _ in store.deliveries(limit=10))
