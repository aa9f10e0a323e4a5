"""A throwaway redis-server for the cluster's tests, started by the tests themselves.

A test module uses it with `pytest_plugins = ["redis_server"]` (conftest loads it for all), then asks for:

    redis_server   a real redis-server on a free loopback port, in a temporary folder, with no
                   persistence (--save '' --appendonly no); stopped at the end of the test. Missing
                   binary: skipped, or a one-line failure when CI is set (scripts/test.sh installs it).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

MISSING = "redis-server is missing: run scripts/test.sh, which installs Debian's redis-server"


@dataclass
class RedisServer:
    """A running redis-server: its folder, its port, and the process (which the test may stop and start)."""

    folder: Path
    port: int
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        log = (self.folder / "log").open("ab")
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.folder), "--daemonize", "no"],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        log.close()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError("redis-server exited:\n" + (self.folder / "log").read_text())
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                time.sleep(0.05)
        raise AssertionError("redis-server did not answer PING:\n" + (self.folder / "log").read_text())

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=20)
        self.proc = None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    if shutil.which("redis-server") is None:
        if os.environ.get("CI"):
            pytest.fail(MISSING, pytrace=False)
        pytest.skip("redis-server is missing (Debian package redis-server; scripts/test.sh installs it)")
    folder = Path(tempfile.mkdtemp(prefix="rrdalarm-redis-"))
    server = RedisServer(folder, _free_port())
    server.start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)
