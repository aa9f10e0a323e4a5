"""`syslog`: one syslog line per event, through logging.handlers.SysLogHandler.

`address` is a unix socket path (default `/dev/log` when it exists) or
`host:port` for UDP (default `localhost:514`; `[::1]:514` for IPv6); both are
datagram sockets, as syslogd, rsyslog and journald listen on. Lines
are `<PRI>tag[pid]: delivery=<id> <the log action's line>`; priority is
warning for ALARM FIRED (and repeats), notice for RESOLVED. A digest (the events
past `[delivery] max_per_check`) is one line: its DIGEST event. A socket that
cannot be opened or written is a retryable ActionError. UDP gives no receipt:
a datagram that nobody reads is lost without an error, as with any syslog.
"""

from __future__ import annotations

import logging
import os
import re
import socket
from collections.abc import Callable, Mapping
from logging.handlers import SysLogHandler
from pathlib import Path
from typing import ClassVar

from rrdalarm.model.states import EventKind
from rrdalarm.plugins import ActionError, Param

from .base import Action, Delivery, Event
from .log import format_line

DEV_LOG = "/dev/log"
_TAG = re.compile(r"[A-Za-z0-9_.\-/]{1,32}")  # RFC 3164 TAG: at most 32 alphanumerics (plus a few safe marks)
_MAX_TEXT = 2000  # RFC 5426 receivers must take 2048-byte messages; longer ones may be cut or dropped


def default_address() -> str:
    return DEV_LOG if Path(DEV_LOG).exists() else "localhost:514"


def parse_address(value: str) -> str | tuple[str, int]:
    """A unix socket path, or (host, port) for UDP; ValueError says what is wrong."""
    if value.startswith("/"):
        return value
    host, sep, port = value.rpartition(":")
    if not sep or (host.count(":") and not host.startswith("[")):  # "host" alone, or a bare IPv6 address
        host, port = value, "514"
    host = host.strip("[]")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{value!r} is not a socket path or host:port")
    return host, int(port)


def address_problem(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        return "must be a socket path or host:port"
    try:
        parse_address(value)
    except ValueError as exc:
        return str(exc)
    return None


def facility_problem(value: object) -> str | None:
    if value is None or value in SysLogHandler.facility_names:
        return None
    return f"{value!r} is not a syslog facility ({', '.join(sorted(SysLogHandler.facility_names))})"


def tag_problem(value: object) -> str | None:
    if value is None or (isinstance(value, str) and _TAG.fullmatch(value)):
        return None
    return "must be 1 to 32 letters, digits, '_', '-', '.' or '/'"


class _StrictSysLogHandler(SysLogHandler):
    """Raises instead of printing a traceback (a failed send must become an ActionError), and never
    blocks longer than `timeout` on a receiver whose queue is full."""

    priority_map: ClassVar[dict[str, str]] = {**SysLogHandler.priority_map, "NOTICE": "notice"}

    def __init__(self, address: str | tuple[str, int], facility: int, timeout: float) -> None:
        self.timeout = timeout  # read by createSocket, which the base constructor calls
        super().__init__(address, facility, socket.SOCK_DGRAM)

    def _connect_unixsocket(self, address: str) -> None:
        # The base class tries a stream socket too and ignores a socket nobody listens on (as openlog()
        # does), then drops every message; here that is an error the outbox can retry.
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(address)
        except OSError:
            sock.close()
            raise
        self.socket = sock

    def createSocket(self) -> None:
        if isinstance(self.address, str):
            self.unixsocket = True
            self._connect_unixsocket(self.address)
        else:
            super().createSocket()
            if self.socket is not None:
                self.socket.settimeout(self.timeout)

    def handleError(self, record: logging.LogRecord) -> None:
        raise  # called from emit's except block: re-raises the send error


# A firing event's syslog priority follows its threshold's severity; a resolved one is a notice.
_PRIORITIES = {"critical": (logging.CRITICAL, "CRITICAL"), "warning": (logging.WARNING, "WARNING"),
               "info": (logging.INFO, "INFO")}


def _priority(e: Event) -> tuple[int, str]:
    if e.kind == EventKind.RESOLVED:
        return logging.INFO, "NOTICE"
    return _PRIORITIES.get(e.severity, _PRIORITIES["warning"])


def event_text(delivery: Delivery, e: Event) -> str:
    text = f"delivery={delivery.id} {format_line(e)}"
    text = " ".join(text.splitlines())  # one event, one syslog line
    return text if len(text) <= _MAX_TEXT else text[: _MAX_TEXT - 1] + "…"


class SyslogAction(Action):
    """Sends one syslog message per event."""

    name = "syslog"
    params: ClassVar[Mapping[str, Param]] = {
        "address": Param(str, default=None, help="socket path or host:port (UDP); default /dev/log or localhost:514",
                         check=address_problem),
        "facility": Param(str, default="daemon", help="syslog facility, e.g. daemon, local0", check=facility_problem),
        "tag": Param(str, default="rrdalarm", help="program name shown in the log", check=tag_problem),
    }

    def _setting(self, key: str, default: str, problem: Callable[[object], str | None]) -> str:
        value = self.config.get(key)
        value = default if value is None else value
        why = problem(value)
        if why:
            raise ActionError(f"syslog: parameter '{key}' {why}", permanent=True)
        return str(value)

    def run(self, delivery: Delivery) -> None:
        raw = self._setting("address", default_address(), address_problem)
        facility = self._setting("facility", "daemon", facility_problem)
        tag = self._setting("tag", "rrdalarm", tag_problem)
        address = parse_address(raw)
        try:
            handler = _StrictSysLogHandler(address, SysLogHandler.facility_names[facility], self.context.timeout)
        except OSError as exc:
            raise ActionError(f"syslog: cannot open {raw}: {exc.strerror or exc}") from None
        handler.append_nul = False  # rsyslog shows a trailing NUL as "#000"; no receiver needs it
        handler.ident = f"{tag}[{os.getpid()}]: "
        handler.setFormatter(logging.Formatter("%(message)s"))
        try:
            # A digest is its one summing-up line: it exists to keep a flood of events out of the log.
            for e in [delivery.digest] if delivery.digest else delivery.events:
                level, name = _priority(e)
                record = logging.LogRecord(tag, level, __file__, 0, event_text(delivery, e), None, None)
                record.levelname = name
                handler.emit(record)
        except OSError as exc:
            raise ActionError(f"syslog: cannot send to {raw}: {exc.strerror or exc.__class__.__name__}") from None
        finally:
            handler.close()
