"""`rrdalarm serve` under slow and numerous clients: it keeps answering, and recovers once they go.

test_service.py has silent half-open connections; these add clients that keep trickling header
bytes (so waitress's idle timeout never closes them) beyond the connection limit and the worker
threads, and a burst of connections far beyond the limit. Every wait is bounded.
"""

from __future__ import annotations

import selectors
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator

import pytest
import requests
from conftest import Env, threshold
from test_service import Server, start_server

pytestmark = pytest.mark.e2e

# request_timeout 2 s: waitress's sweep runs every second, so a trickling client is closed
# within about 3 s of its first byte, and one left waiting in the listen backlog gets in after that.
GUARDS = "request_timeout = 2\nconnection_limit = 20\n"
SLOW_CLIENTS = 40  # twice the connection limit, five times waitress's 8 threads
ANSWER_WITHIN_S = 10.0  # request_timeout + sweep + accepting the backlog, with room for a loaded machine


@pytest.fixture
def guarded(env: Env) -> Iterator[Server]:
    env.write_thresholds(threshold(glob="*.rrd"))
    srv = start_server(env, "--no-scheduler", interval=60, service_lines=GUARDS)
    yield srv
    srv.proc.send_signal(signal.SIGTERM)
    try:
        srv.proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        srv.proc.kill()
        srv.proc.wait(timeout=10)


def address(srv: Server) -> tuple[str, int]:
    host, port = srv.url.removeprefix("http://").split(":")
    return host, int(port)


def healthz_within(srv: Server, seconds: float) -> float:
    """Seconds a fresh client waited for /healthz; fails past `seconds`."""
    started = time.monotonic()
    answer = requests.get(srv.url + "/healthz", timeout=seconds)
    assert answer.status_code in (200, 503)  # 503: no check has run; the page answered all the same
    return time.monotonic() - started


class Slowloris:
    """Clients that each send one header byte a second and never finish their request."""

    def __init__(self, where: tuple[str, int], count: int) -> None:
        self.where = where
        self.count = count
        self.stop = threading.Event()
        self.opened = 0
        self.closed_by_server = 0
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Slowloris:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop.set()
        self._thread.join(30)

    def _open(self) -> socket.socket | None:
        try:
            s = socket.create_connection(self.where, timeout=5)
            s.sendall(b"GET /healthz HTTP/1.1\r\n")
            s.setblocking(False)
            self.opened += 1
            return s
        except OSError:
            return None

    def _trickle(self, s: socket.socket) -> bool:
        """One more byte; False once the server has closed the connection."""
        try:
            if s.recv(1024) == b"":
                return False
        except BlockingIOError:
            pass
        except OSError:
            return False
        try:
            s.send(b"X")
        except OSError:
            return False
        return True

    def _run(self) -> None:
        live = [s for s in (self._open() for _ in range(self.count)) if s is not None]
        deadline = time.monotonic() + 60
        while not self.stop.is_set() and time.monotonic() < deadline:
            keep = []
            for s in live:
                if self._trickle(s):
                    keep.append(s)
                else:
                    s.close()
                    self.closed_by_server += 1
            # Those closed come back, as an attacker would: the pressure stays on while the test measures.
            live = keep + [s for s in (self._open() for _ in range(self.count - len(keep))) if s is not None]
            self.stop.wait(1.0)
        for s in live:
            s.close()


def test_trickling_clients_beyond_the_limit_do_not_lock_a_normal_client_out(guarded: Server) -> None:
    assert healthz_within(guarded, 5) < 5
    with Slowloris(address(guarded), SLOW_CLIENTS) as attack:
        time.sleep(3)  # every slot taken, the rest waiting in the listen backlog
        waits = [healthz_within(guarded, ANSWER_WITHIN_S) for _ in range(3)]
        assert attack.opened >= SLOW_CLIENTS
    assert attack.closed_by_server > 0  # the read deadline, not the idle timeout, closed them
    assert max(waits) < ANSWER_WITHIN_S
    # Once they are gone the service answers at once again, every time.
    after = [healthz_within(guarded, 5) for _ in range(10)]
    assert max(after) < 2, after
    assert guarded.get("/thresholds").status_code == 200


def burst(where: tuple[str, int], count: int, within: float) -> tuple[int, int]:
    """`count` connections at once, each sending a whole request; (answered, refused or dropped) within `within`."""
    sel = selectors.DefaultSelector()
    refused = 0
    for _ in range(count):
        try:
            s = socket.create_connection(where, timeout=5)
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            s.setblocking(False)
            sel.register(s, selectors.EVENT_READ, bytearray())
        except OSError:
            refused += 1
    answered = 0
    deadline = time.monotonic() + within
    while sel.get_map() and time.monotonic() < deadline:
        for key, _ in sel.select(timeout=0.5):
            conn = key.fileobj
            assert isinstance(conn, socket.socket)
            try:
                chunk = conn.recv(65536)
            except OSError:
                chunk = b""
                refused += 1
            else:
                key.data.extend(chunk)
                if not chunk:
                    answered += key.data.startswith(b"HTTP/1.1 ")
                    refused += not key.data.startswith(b"HTTP/1.1 ")
            if not chunk:
                sel.unregister(conn)
                conn.close()
    left = list(sel.get_map().values())
    for key in left:
        key.fileobj.close()  # type: ignore[union-attr]
    sel.close()
    assert not left, f"{len(left)} connections neither answered nor closed within {within} s"
    return answered, refused


def test_a_burst_far_beyond_the_connection_limit_is_served_or_refused_then_the_service_recovers(
        guarded: Server) -> None:
    answered, refused = burst(address(guarded), 500, within=45)
    assert answered + refused == 500
    assert answered > 0  # queued in the backlog and served as slots freed, not dropped wholesale
    after = [healthz_within(guarded, 5) for _ in range(10)]
    assert max(after) < 2, after
