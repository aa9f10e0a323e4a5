"""Deliveries sent by three processes at once through a real HTTP receiver, on SQLite and PostgreSQL.

Every delivery arrives; an arrival twice carries the same id and events; per action target the
deliveries arrive one at a time, oldest first. On PostgreSQL the claim locks the targets' oldest
pending rows with FOR UPDATE SKIP LOCKED: a claim that read them without the lock, or that took
rows past a target's oldest, would send one delivery from two processes at once or a target's
later delivery beside or before an older one, and the receiver would see it.
"""

from __future__ import annotations

import itertools
import json
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from conftest import T0, Env, check, threshold
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from rrdalarm.store.database import Store

pytestmark = pytest.mark.usefixtures("any_database")

TARGETS = 6
CHECKS = 30
DELIVERERS = 3
HOLD_S = 0.03  # each request is held a little, so that two sends to one target would overlap


@dataclass(frozen=True)
class Arrival:
    target: str
    delivery_id: str
    events: tuple[int, ...]
    start: float
    end: float


class Receiver:
    """Records every request (its target, delivery, events, and when it was held) and answers 200."""

    def __init__(self) -> None:
        self.arrivals: list[Arrival] = []
        self.lock = threading.Lock()

    def __call__(self, request: Request) -> Response:
        start = time.monotonic()
        body = json.loads(request.get_data())
        time.sleep(HOLD_S)
        arrival = Arrival(request.path, body["delivery_id"], tuple(int(e["id"]) for e in body["events"]), start,
                          time.monotonic())
        with self.lock:
            self.arrivals.append(arrival)
        return Response("ok", 200)


@pytest.fixture
def receiver() -> Iterator[tuple[Receiver, HTTPServer]]:
    server = HTTPServer(threaded=True)  # concurrent requests are seen as such
    server.start()
    handler = Receiver()
    for i in range(TARGETS):
        server.expect_request(f"/hook/{i}", method="POST").respond_with_handler(handler)
    yield handler, server
    server.clear()
    server.stop()


# A deliverer on its own node: it sends whatever it can claim, and looks again at once when it got nothing.
_DELIVERER = """
import sys, time
from pathlib import Path
from rrdalarm.config.settings import load_settings
from rrdalarm.delivery.outbox import deliver_pending
from rrdalarm.store.database import open_store

settings = load_settings(Path(sys.argv[1]))
store = open_store(settings.db_url)
print("ready", flush=True)
while True:
    done = deliver_pending(store, settings)
    if done:
        print(f"sent {sum(1 for r in done if r.ok)}", flush=True)
    else:
        time.sleep(0.005)
"""


def queue_deliveries(env: Env, store: Store, urls: list[str]) -> None:
    """CHECKS checks, each changing the series' state (fired, resolved, ...): one delivery per target each."""
    env.rrd("a.rrd", {"x": [9 if ((i + 1) // 3) % 2 == 0 else 1 for i in range(3 * CHECKS)]},
            end=T0 + (3 * CHECKS - 1) * 60)
    env.write_thresholds(threshold(start="now-1min", actions=[{"type": "webhook", "url": u} for u in urls]))
    for i in range(CHECKS):
        check(env, store, at=T0 + i * 180, deliver=False)


def test_three_deliverers_send_each_delivery_once_in_order_per_target(
        env: Env, store: Store, receiver: tuple[Receiver, HTTPServer]) -> None:
    handler, server = receiver
    with env.settings_path.open("a") as fh:
        fh.write("\n[delivery]\ntimeout = 5\nbackoff = 1\nmax_backoff = 1\n")
    queue_deliveries(env, store, [server.url_for(f"/hook/{i}") for i in range(TARGETS)])
    rows = [d for d, _ in store.deliveries(limit=100_000)]
    assert len(rows) == TARGETS * CHECKS
    procs = [subprocess.Popen([sys.executable, "-c", _DELIVERER, str(env.settings_path)], stdout=subprocess.PIPE,
                              text=True, env=env.process_env(), cwd=env.base) for _ in range(DELIVERERS)]
    try:
        for proc in procs:  # all of them up before any sends: they compete from the first delivery
            assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
        started = time.monotonic()
        deadline = started + 60
        while {d.status for d, _ in store.deliveries(limit=100_000)} != {"sent"}:
            assert time.monotonic() < deadline, "the deliverers did not send everything within 60 s"
            assert all(p.poll() is None for p in procs), "a deliverer stopped"
            time.sleep(0.2)
        took = time.monotonic() - started
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGKILL)
    sent_by = [sum(int(line.split()[1]) for line in p.communicate(timeout=30)[0].splitlines()) for p in procs]
    assert_each_once_in_order(store, handler.arrivals)
    assert all(n > 0 for n in sent_by), f"every deliverer sent some: {sent_by}"
    print(f"\n{len(rows)} deliveries to {TARGETS} targets by {DELIVERERS} processes in {took:.1f} s: {sent_by}, "
          f"{len(handler.arrivals) - len(rows)} duplicates")


def assert_each_once_in_order(store: Store, arrivals: list[Arrival]) -> None:
    """Every delivery arrived, each arrival with its delivery's events; per target one at a time, oldest first."""
    rows = [d for d, _ in store.deliveries(limit=100_000)]
    expected = {d.id: tuple(sorted(store.event_ids_of(d))) for d in rows}
    order = {d.id: (d.run_id, d.id) for d in rows}
    assert {a.delivery_id for a in arrivals} == set(expected)
    assert all(tuple(sorted(a.events)) == expected[a.delivery_id] for a in arrivals)
    by_target: dict[str, list[Arrival]] = {}
    for a in sorted(arrivals, key=lambda a: a.start):
        by_target.setdefault(a.target, []).append(a)
    assert len(by_target) == TARGETS
    for target, seen in by_target.items():
        overlaps = [(a.delivery_id, b.delivery_id) for a, b in itertools.pairwise(seen) if b.start < a.end]
        assert not overlaps, f"{target}: sent at the same time: {overlaps[:3]}"
        ranks = [order[a.delivery_id] for a in seen]
        assert ranks == sorted(ranks), f"{target}: out of order"
        assert len({a.delivery_id for a in seen}) == CHECKS
