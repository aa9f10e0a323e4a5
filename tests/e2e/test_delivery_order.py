"""Delivery hardening (issue #16) through a real HTTP receiver: a deliverer killed mid-send, series order."""

from __future__ import annotations

import functools
import json
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import pytest
from conftest import T0, Env, check, threshold
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from rrdalarm.delivery.outbox import deliver_pending
from rrdalarm.store.database import DeliveryRow, Store


class SlowHook:
    """A webhook receiver that holds each request while `slow` is set, and fails those it is told to."""

    def __init__(self) -> None:
        self.slow = threading.Event()
        self.fail_arrival = 0  # the number (1-based) of the one arrival to answer 503
        self.seen: list[tuple[str, str]] = []  # (header id, body id) of every request that arrived
        self.lock = threading.Lock()

    def __call__(self, request: Request) -> Response:
        body = json.loads(request.get_data())
        with self.lock:
            self.seen.append((request.headers["X-Rrdalarm-Delivery"], body["delivery_id"]))
            arrival = len(self.seen)
        deadline = time.monotonic() + 20
        while self.slow.is_set() and time.monotonic() < deadline:
            time.sleep(0.02)
        if arrival == self.fail_arrival:
            return Response("busy", 503)
        return Response("ok", 200)


@pytest.fixture
def hook() -> Iterator[tuple[SlowHook, str]]:
    # Threaded: a request of a killed deliverer still held must not keep the next one waiting.
    server = HTTPServer(threaded=True)
    server.start()
    handler = SlowHook()
    server.expect_request("/hook", method="POST").respond_with_handler(handler)
    yield handler, server.url_for("/hook")
    handler.slow.clear()
    server.clear()
    server.stop()


def _row(store: Store) -> DeliveryRow:
    [(row, _)] = store.deliveries()
    return row


def _kill_mid_send(env: Env, handler: SlowHook) -> None:
    """Start `rrdalarm deliver`, SIGKILL it once its request is at the receiver, and wait for it to be gone."""
    arrived = len(handler.seen)
    handler.slow.set()
    proc = subprocess.Popen([sys.executable, "-m", "rrdalarm", "deliver", "--quiet"], env=env.process_env(),
                            cwd=env.base)
    try:
        deadline = time.monotonic() + 15
        while len(handler.seen) == arrived and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(handler.seen) == arrived + 1, "the deliverer never reached the receiver"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    handler.slow.clear()


def test_a_deliverer_killed_mid_send_uses_up_no_attempt(env: Env, store: Store, hook: tuple[SlowHook, str]) -> None:
    handler, url = hook
    with env.settings_path.open("a") as fh:
        fh.write("\n[delivery]\ntimeout = 5\nmax_attempts = 2\nbackoff = 1\nmax_backoff = 1\n")
    env.rrd("a.rrd", {"x": [9]})
    env.write_thresholds(threshold(actions=[{"type": "webhook", "url": url}]))
    check(env, store, deliver=False)
    kills = 4  # more than max_attempts
    for _ in range(kills):
        _kill_mid_send(env, handler)
        with store.session() as s:  # as if the lease had run out: the next deliverer may take it
            s.query(DeliveryRow).update({"lease_until": int(time.time()) - 1})
        row = _row(store)
        assert (row.status, row.attempts) == ("pending", 0)
    # One attempt that really fails (the receiver says 503) counts: the first of two.
    handler.fail_arrival = len(handler.seen) + 1
    [failed] = deliver_pending(store, env.settings())
    assert (failed.ok, failed.status) == (False, "pending")
    assert "interrupted" not in (failed.error or "")
    later = time.time() + 5
    [sent] = deliver_pending(store, env.settings(), clock=lambda: later)
    assert (sent.ok, sent.status) == (True, "sent")
    row = _row(store)
    assert (row.status, row.attempts) == ("sent", 2)
    # Every arrival, killed or not, carried the same delivery id in the header and the body.
    assert len(handler.seen) == kills + 2
    assert {h for h, _ in handler.seen} == {b for _, b in handler.seen} == {row.id}


class FlakyHook:
    """Accepts most requests; refuses every third one. Records what it accepted, in order."""

    def __init__(self) -> None:
        self.requests = 0
        self.accepted: list[tuple[str, list[dict[str, object]]]] = []
        self.lock = threading.Lock()

    def __call__(self, request: Request) -> Response:
        body = json.loads(request.get_data())
        with self.lock:
            self.requests += 1
            if self.requests % 3 == 1:
                return Response("flaky", 503)
            if body["delivery_id"] not in {d for d, _ in self.accepted}:
                self.accepted.append((body["delivery_id"], body["events"]))
        return Response("ok", 200)


def test_a_series_events_arrive_oldest_first_through_a_flaky_receiver(
        env: Env, store: Store, httpserver: HTTPServer) -> None:
    receiver = FlakyHook()
    httpserver.expect_request("/hook", method="POST").respond_with_handler(receiver)
    with env.settings_path.open("a") as fh:
        fh.write("\n[delivery]\ntimeout = 5\nbackoff = 1\nmax_backoff = 1\n")
    checks = 16
    # Above, below, above ...: every check changes the state of the series (FIRED, RESOLVED, FIRED ...).
    # A check every 3 minutes; its newest known point (of its own minute or the one before) lies in a block
    # of 3 points around its minute, above and below in turn.
    env.rrd("a.rrd", {"x": [9 if ((i + 1) // 3) % 2 == 0 else 1 for i in range(3 * checks)]},
            end=T0 + (3 * checks - 1) * 60)
    hook = {"type": "webhook", "url": httpserver.url_for("/hook")}
    env.write_thresholds(threshold(start="now-1min", actions=[hook]))
    for i in range(checks):
        check(env, store, at=T0 + i * 180)
    for n in range(1, 40):  # the deliverer of later minutes, until the outbox is empty
        if {d.status for d, _ in store.deliveries(limit=1000)} == {"sent"}:
            break
        later = time.time() + 60 * n
        deliver_pending(store, env.settings(), clock=functools.partial(float, later))
    assert {d.status for d, _ in store.deliveries(limit=1000)} == {"sent"}
    events = [e for _, carried in receiver.accepted for e in carried]
    assert [e["kind"] for e in events] == ["fired", "resolved"] * (checks // 2)
    ids = [int(str(e["id"])) for e in events]
    assert ids == sorted(ids)
