"""The `syslog` action against real sockets: a UDP receiver on 127.0.0.1 and a unix datagram socket."""

from __future__ import annotations

import os
import re
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import free_port, make_event, tuned_event

from rrdalarm.actions.syslog import SyslogAction, default_address, parse_address
from rrdalarm.model.events import Delivery
from rrdalarm.model.states import EventKind
from rrdalarm.plugins import ActionContext, ActionError, action_plugins, validate_params

DAEMON, LOCAL0 = 3, 16
CRIT, WARNING, NOTICE, INFO = 2, 4, 5, 6


event = make_event


def delivery() -> Delivery:
    return Delivery(id="d-9", action="syslog", params={}, events=(
        event(1, message="two\nlines"),
        event(2, status="RESOLVED", kind=EventKind.RESOLVED, value=1.0),
    ))


def ctx(tmp_path: Path, timeout: float = 5.0) -> ActionContext:
    return ActionContext(log_dir=tmp_path, data_dir=tmp_path, timeout=timeout)


def receive(sock: socket.socket, n: int) -> list[str]:
    sock.settimeout(5)
    return [sock.recv(65536).decode("utf-8") for _ in range(n)]


@pytest.fixture
def udp() -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    yield sock
    sock.close()


@pytest.fixture
def unix_path(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "log.sock"
    if len(str(path)) < 100:  # sun_path holds 108 bytes
        yield path
        return
    with tempfile.TemporaryDirectory(prefix="rrdsl") as short:
        yield Path(short) / "log.sock"


def test_registered_through_its_entry_point() -> None:
    assert action_plugins()["syslog"] is SyslogAction


def test_one_udp_datagram_per_event_with_priorities(tmp_path: Path, udp: socket.socket) -> None:
    port = udp.getsockname()[1]
    params = validate_params(SyslogAction, {"address": f"127.0.0.1:{port}"})
    SyslogAction(params, ctx(tmp_path)).run(delivery())
    fired, resolved = receive(udp, 2)
    tag = f"rrdalarm[{os.getpid()}]: "
    assert fired.startswith(f"<{DAEMON * 8 + WARNING}>{tag}delivery=d-9 ")
    assert resolved.startswith(f"<{DAEMON * 8 + NOTICE}>{tag}delivery=d-9 ")
    assert ("ALARM FIRED severity=warning threshold=3 series=hosts/1/bytes.rrd:sent value=9.5 above 5 event=1 two lines"
            in fired)
    assert "RESOLVED" in resolved and "event=2" in resolved
    assert "\n" not in fired and not fired.endswith("\0")


def test_facility_and_tag(tmp_path: Path, udp: socket.socket) -> None:
    port = udp.getsockname()[1]
    params = validate_params(SyslogAction, {"address": f"127.0.0.1:{port}", "facility": "local0", "tag": "alarms"})
    SyslogAction(params, ctx(tmp_path)).run(delivery())
    fired, resolved = receive(udp, 2)
    assert re.match(rf"<{LOCAL0 * 8 + WARNING}>alarms\[\d+\]: delivery=d-9 ", fired)
    assert resolved.startswith(f"<{LOCAL0 * 8 + NOTICE}>alarms[")


def test_unix_datagram_socket(tmp_path: Path, unix_path: Path) -> None:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(unix_path))
    try:
        SyslogAction({"address": str(unix_path)}, ctx(tmp_path)).run(delivery())
        fired, resolved = receive(sock, 2)
    finally:
        sock.close()
    assert fired.startswith(f"<{DAEMON * 8 + WARNING}>rrdalarm[") and "delivery=d-9" in fired
    assert resolved.startswith(f"<{DAEMON * 8 + NOTICE}>rrdalarm[")


def test_unix_socket_nobody_listens_on_is_retryable(tmp_path: Path, unix_path: Path) -> None:
    with pytest.raises(ActionError, match="cannot open") as err:
        SyslogAction({"address": str(unix_path)}, ctx(tmp_path)).run(delivery())
    assert not err.value.permanent
    # A socket file left behind by a syslogd that died: connection refused, also retryable.
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(unix_path))
    sock.close()
    with pytest.raises(ActionError, match="cannot open") as err:
        SyslogAction({"address": str(unix_path)}, ctx(tmp_path)).run(delivery())
    assert not err.value.permanent


def test_unknown_host_is_retryable(tmp_path: Path) -> None:
    with pytest.raises(ActionError, match="cannot") as err:
        SyslogAction({"address": "no-such-host.invalid:514"}, ctx(tmp_path)).run(delivery())
    assert not err.value.permanent


def test_udp_without_a_receiver_does_not_fail(tmp_path: Path) -> None:
    # UDP has no receipt: as with any syslog sender, a datagram nobody reads is simply lost.
    SyslogAction({"address": f"127.0.0.1:{free_port()}"}, ctx(tmp_path)).run(delivery())


def test_default_address() -> None:
    expected = "/dev/log" if Path("/dev/log").exists() else "localhost:514"
    assert default_address() == expected
    assert validate_params(SyslogAction, {}) == {"address": None, "facility": "daemon", "tag": "rrdalarm"}


def test_parse_address() -> None:
    assert parse_address("/dev/log") == "/dev/log"
    assert parse_address("logs.example.org:1514") == ("logs.example.org", 1514)
    assert parse_address("logs.example.org") == ("logs.example.org", 514)
    assert parse_address("[::1]:514") == ("::1", 514)
    assert parse_address("::1") == ("::1", 514)


@pytest.mark.parametrize(("params", "match"), [
    ({"facility": "kernelish"}, "not a syslog facility"),
    ({"tag": "two words"}, "letters, digits"),
    ({"tag": "x" * 33}, "letters, digits"),
    ({"address": "host:notaport"}, "socket path or host:port"),
    ({"address": "host:70000"}, "socket path or host:port"),
])
def test_bad_parameters_are_config_errors(params: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        validate_params(SyslogAction, params)


def test_severity_sets_the_priority_and_values_are_readable(tmp_path: Path, udp: socket.socket) -> None:
    port = udp.getsockname()[1]
    params = validate_params(SyslogAction, {"address": f"127.0.0.1:{port}"})
    events = (tuned_event(1), tuned_event(2, severity="info"), tuned_event(3, severity="warning"))
    SyslogAction(params, ctx(tmp_path)).run(Delivery(id="d-9", action="syslog", params={}, events=events))
    critical, info, warning = receive(udp, 3)
    assert critical.startswith(f"<{DAEMON * 8 + CRIT}>") and info.startswith(f"<{DAEMON * 8 + INFO}>")
    assert warning.startswith(f"<{DAEMON * 8 + WARNING}>")
    assert "ALARM FIRED severity=critical threshold=3" in critical
    assert "value=31.6MB/s above 30MB/s event=1" in critical
