"""Reading RRD files through rrdcached, so that points still in its cache are seen.

Part of the rrd source: `RRDSource` probes the daemon once per check, and
`fetch` replaces `rrdtool.fetch` for each file. librrd keeps one connection to
the daemon per process and, when it is not connected at the start of a fetch,
reads the file instead without a word; this module never lets it get there:
before a fetch it makes sure the connection is up (`rrdtool.flushcached`
connects or fails), and after any failed fetch it checks again.
"""

from __future__ import annotations

import socket
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import rrdtool

DEFAULT_PORT = 42217
PROBE_TIMEOUT_S = 5.0
# librrd's words when it could not connect, or lost the connection during a request.
_CONNECT_FAILED = "Unable to connect to rrdcached: "
_CONNECTION_LOST = "talking to rrdcached"


class Unreachable(Exception):
    """The daemon could not be reached; the message names it."""

    def __init__(self, address: str, reason: str) -> None:
        super().__init__(f"rrdcached at {address} unreachable: {reason}")


@dataclass(eq=False)
class Daemon:
    """The daemon a check reads through, as each worker process receives it.

    `down` is set by the check's probe, or in a process when the daemon went away
    during the check: the rest of that process's reads then fail at once instead
    of each waiting for a connection.
    """

    address: str
    down: str = ""

    @property
    def is_unix(self) -> bool:
        return self.address.startswith(("unix:", "/"))

    def path(self, root: str, rel: str) -> str:
        """The name to send: absolute on a unix socket (librrd sends its realpath; -b/-B must cover
        it), relative to the RRD root over TCP (librrd refuses absolute names; the daemon's -b must
        be the RRD root)."""
        return f"{root}/{rel}" if self.is_unix else rel


# The address librrd's connection in this process is known to be up for ("" when unknown).
_connected = [""]


def fetch(daemon: Daemon, root: str, rel: str, args: Sequence[str]) -> Any:
    """rrdtool.fetch of one file through the daemon; raises Unreachable, or OperationalError for the file."""
    path = daemon.path(root, rel)
    for attempt in (1, 2):
        _connect(daemon, path)
        try:
            return rrdtool.fetch("--daemon", daemon.address, path, *args)
        except rrdtool.OperationalError as exc:
            _connected[0] = ""  # librrd may have closed it; the next read checks again
            # A connection kept from before a daemon restart fails once; a second try reconnects.
            if attempt == 2 or _CONNECTION_LOST not in str(exc):
                raise
    raise AssertionError("unreachable")  # pragma: no cover


def _connect(daemon: Daemon, path: str) -> None:
    if daemon.down:
        raise Unreachable(daemon.address, daemon.down)
    if _connected[0] == daemon.address:
        return
    try:
        # Connects librrd (or says why not); flushing the file costs nothing extra: the fetch would.
        rrdtool.flushcached("--daemon", daemon.address, path)
    except rrdtool.OperationalError as exc:
        text = str(exc)
        if text.startswith(_CONNECT_FAILED) or _CONNECTION_LOST in text:
            daemon.down = text.removeprefix(_CONNECT_FAILED)
            raise Unreachable(daemon.address, daemon.down) from None
        # The daemon answered about the file (missing, outside -b): connected; the fetch reports it.
    _connected[0] = daemon.address


def command(address: str, line: str, timeout: float = PROBE_TIMEOUT_S) -> list[str]:
    """Send one command to the daemon on a connection of its own; its status line and the lines after."""
    with _open(address, timeout) as sock:
        sock.sendall(line.encode() + b"\n")
        reader = sock.makefile("r", encoding="utf-8", errors="replace")
        status = reader.readline()
        count = int(status.split(" ", 1)[0]) if status[:1].isdigit() else 0
        return [status.rstrip("\n")] + [reader.readline().rstrip("\n") for _ in range(count)]


def probe(address: str, timeout: float = PROBE_TIMEOUT_S) -> str:
    """Why the daemon cannot be reached ("" when it answers PING), within `timeout` seconds."""
    try:
        reply = command(address, "PING", timeout)[0]
    except TimeoutError:
        return f"no answer within {timeout:g} s"
    except OSError as exc:
        return exc.strerror or str(exc)
    except ValueError as exc:
        return str(exc)
    return "" if reply.startswith("0 PONG") else f"unexpected answer {reply!r}"


def _open(address: str, timeout: float) -> socket.socket:
    if address.startswith(("unix:", "/")):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        try:
            sock.connect(address.removeprefix("unix:"))
        except OSError:
            sock.close()
            raise
        return sock
    host, port = _host_port(address)
    return socket.create_connection((host, port), timeout)


def _host_port(address: str) -> tuple[str, int]:
    if address.startswith("["):
        host, _, rest = address[1:].partition("]")
        port = rest.removeprefix(":")
    else:
        host, _, port = address.partition(":")
    if port and not port.isdigit():
        raise ValueError(f"not an rrdcached address: {address!r}")
    return host, int(port or DEFAULT_PORT)
