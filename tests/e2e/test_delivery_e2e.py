"""Delivery end to end through real receivers: SMTP down then up, a deliverer killed mid-send."""

from __future__ import annotations

import email
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from conftest import T0, Env, free_port, threshold

from rrdalarm.delivery.outbox import deliver_pending, summarize
from rrdalarm.model.results import AttemptResult
from rrdalarm.store.database import open_store


class Inbox:
    def __init__(self) -> None:
        self.messages: list[tuple[list[str], Message]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append((list(envelope.rcpt_tos), email.message_from_bytes(envelope.content)))
        return "250 OK"


def deliver_later(env: Env, seconds: float) -> list[AttemptResult]:
    """`rrdalarm deliver` as it would run `seconds` from now: the outbox read with a clock moved ahead."""
    settings = env.settings()
    later = time.time() + seconds
    with open_store(settings.db_url) as store:
        return deliver_pending(store, settings, clock=lambda: later)


def test_smtp_down_during_check_then_up_every_mail_arrives_once(env: Env) -> None:
    port = free_port()
    with env.settings_path.open("a") as fh:
        fh.write(f'\n[smtp]\nhost = "127.0.0.1"\nport = {port}\nsender = "rrdalarm@test"\n'
                 "\n[delivery]\ntimeout = 2\nbackoff = 1\nmax_backoff = 1\n")
    env.rrd("a.rrd", {"x": [9]})
    env.rrd("b.rrd", {"x": [9]})
    env.write_thresholds(
        threshold(glob="a.rrd", actions=[{"type": "email", "to": ["ops@x.org", "dev@x.org"]}])
        + threshold(2, glob="b.rrd", actions=[{"type": "email", "to": "ops@x.org"}])
    )
    down = env.run("check", "--at", str(T0), "--quiet")
    assert down.returncode == 1
    pending = [json.loads(line) for line in env.run("history", "--deliveries", "--json").stdout.splitlines()]
    assert len(pending) == 2 and {d["status"] for d in pending} == {"pending"}
    assert all(f"127.0.0.1:{port}" in d["attempts"][0]["error"] for d in pending)

    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        # What `rrdalarm deliver` does, 2 s later: past the 1 s backoff.
        assert summarize(deliver_later(env, 2)) == "2 delivered, 0 failed (will retry), 0 dead"
        again = env.run("deliver")
        assert "0 delivered" in again.stdout
    finally:
        controller.stop()
    by_rcpt = {tuple(r): m for r, m in inbox.messages}
    assert sorted(by_rcpt) == [("dev@x.org",), ("ops@x.org",)]
    ops = by_rcpt[("ops@x.org",)]
    # ops gets one message grouping both thresholds' alarms of the check.
    assert "2 alarms fired" in ops["Subject"]
    ids = {d["id"] for d in pending}
    assert {m["X-Rrdalarm-Delivery"] for _, m in inbox.messages} == ids
    assert {m["Message-ID"] for _, m in inbox.messages} == {f"<{i}@rrdalarm>" for i in ids}


class Receiver(BaseHTTPRequestHandler):
    """Records every POST; sleeps while `slow` is set (so a deliverer can be killed mid-send)."""

    seen: list[tuple[str, str]] = []  # noqa: RUF012 - shared by the server's threads
    slow = threading.Event()
    lock = threading.Lock()

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        with self.lock:
            self.seen.append((self.headers["X-Rrdalarm-Delivery"], json.loads(body)["delivery_id"]))
        while self.slow.is_set():
            time.sleep(0.05)
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[str]:
    Receiver.seen = []
    Receiver.slow.clear()
    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    Receiver.slow.clear()
    server.shutdown()


def test_deliverer_killed_mid_send_every_delivery_arrives_with_stable_ids(env: Env, receiver: str) -> None:
    with env.settings_path.open("a") as fh:
        fh.write("\n[delivery]\ntimeout = 2\nbackoff = 1\nmax_backoff = 1\n")
    env.rrd("a.rrd", {"x": [9]})
    hooks = [{"type": "webhook", "url": f"{receiver}/hook/{i}"} for i in range(3)]
    env.write_thresholds(threshold(actions=hooks))
    assert env.run("check", "--at", str(T0), "--quiet").returncode == 1  # delivers at once: 3 requests
    assert len(Receiver.seen) == 3
    first_ids = {d for d, _ in Receiver.seen}

    # A second firing check writes 3 more deliveries; the deliverer is killed while they are in flight.
    with env.thresholds_path.open("a") as fh:
        fh.write(threshold(2, actions=hooks).replace("[[threshold]]", "\n[[threshold]]"))
    Receiver.slow.set()
    envvars = {k: v for k, v in os.environ.items() if not k.startswith("RRDALARM_")}
    envvars["RRDALARM_SETTINGS"] = str(env.settings_path)
    proc = subprocess.Popen([sys.executable, "-m", "rrdalarm", "check", "--at", str(T0 + 60), "--quiet"],
                            env=envvars)
    deadline = time.monotonic() + 60
    while len(Receiver.seen) < 6 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(Receiver.seen) == 6
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    Receiver.slow.clear()

    # Until the lease expires nobody sends them again; afterwards `deliver` does, with the same ids.
    assert "0 delivered" in env.run("deliver").stdout
    # The lease is timeout + 10 s from the claim (an attempt's process may take 5 s to start): 14 s on, it has run out.
    assert summarize(deliver_later(env, 14)) == "3 delivered, 0 failed (will retry), 0 dead"
    rows = [json.loads(line) for line in env.run("history", "--deliveries", "--json").stdout.splitlines()]
    assert len(rows) == 6 and {r["status"] for r in rows} == {"sent"}
    all_ids = {r["id"] for r in rows}
    received = [d for d, _ in Receiver.seen]
    assert set(received) == all_ids
    second_ids = all_ids - first_ids
    # Each of the killed deliveries arrived twice, both times with the same id; the others once.
    assert sorted(received.count(i) for i in second_ids) == [2, 2, 2]
    assert all(received.count(i) == 1 for i in first_ids)
    assert all(header == body for header, body in Receiver.seen)


def test_a_slow_receiver_does_not_hold_the_check_lock(env: Env, receiver: str) -> None:
    with env.settings_path.open("a") as fh:
        fh.write("\n[delivery]\ntimeout = 20\n")
    env.rrd("a.rrd", {"x": [9]})
    env.write_thresholds(threshold(actions=[{"type": "webhook", "url": f"{receiver}/hook"}]))
    Receiver.slow.set()
    envvars = {k: v for k, v in os.environ.items() if not k.startswith("RRDALARM_")}
    envvars["RRDALARM_SETTINGS"] = str(env.settings_path)
    first = subprocess.Popen([sys.executable, "-m", "rrdalarm", "check", "--at", str(T0), "--quiet"], env=envvars)
    try:
        deadline = time.monotonic() + 60
        while not Receiver.seen and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(Receiver.seen) == 1  # the first check is now sending, and the receiver takes its time
        # The next check (cron's, a minute later) gets the lock at once instead of exiting 4.
        second = env.run("check", "--at", str(T0 + 60), "--quiet", "--wait", "0")
        assert second.returncode == 1, second.stderr
    finally:
        Receiver.slow.clear()
        assert first.wait(timeout=30) == 1
