"""`rrdalarm serve`: waitress serving the web app, APScheduler running checks, clean stops.

This module wires the web app in (rrdalarm.web); the rest of the core never
imports it.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path
from types import FrameType
from typing import Any

log = logging.getLogger("rrdalarm.serve")

# How long a stop waits for a running check before abandoning it; its results
# are written in one transaction at its end, so an abandoned check loses nothing.
STOP_GRACE_S = 5.0

PAGE_SWITCH_INTERVAL_S = 0.0005


class Stop(SystemExit):
    """Raised in the main thread by SIGTERM / SIGINT.

    A SystemExit, because waitress's loop swallows every other exception raised
    while it handles a socket, and ends cleanly (stopping its worker threads)
    on SystemExit and KeyboardInterrupt only.
    """


_received: list[str] = []


def _raise_stop(signum: int, _frame: FrameType | None) -> None:
    _received.append(signal.Signals(signum).name)
    raise Stop(0)


def connection_guards(service: Any) -> dict[str, Any]:
    """waitress options that keep silent or half-sent connections from filling the server.

    A connection quiet for `request_timeout` seconds is closed (the sweep runs at least that
    often); `connection_limit` is far above what one browser and cron need, and poll() has no
    file-descriptor ceiling as select() does. For the Internet, put a reverse proxy in front (README).
    """
    timeout = float(service.request_timeout)
    return {
        "channel_timeout": timeout,
        "cleanup_interval": max(1.0, min(30.0, timeout / 2)),
        "connection_limit": int(service.connection_limit),
        "asyncore_use_poll": True,
    }


def read_deadline(server: Any, timeout: float) -> None:
    """Close a connection whose request has not fully arrived `timeout` s after its first byte.

    waitress only closes connections that are silent for channel_timeout; a client that sends a
    byte now and then would hold its connection for ever. The sweep runs with waitress's own.
    """
    started: dict[int, tuple[int, float]] = {}
    sweep = server.maintenance

    def maintenance(now: float) -> None:
        sweep(now)
        seen: dict[int, tuple[int, float]] = {}
        for fd, channel in list(server.active_channels.items()):
            pending = getattr(channel, "request", None)
            if pending is None or channel.requests:
                continue
            since = started.get(fd)
            since = since if since is not None and since[0] == id(pending) else (id(pending), now)
            seen[fd] = since
            if now - since[1] > timeout:
                channel.will_close = True
        started.clear()
        started.update(seen)

    server.maintenance = maintenance


def serve_forever(settings_path: Path | None, overrides: dict[str, Any], listen: str | None,
                  with_scheduler: bool, log_level: str) -> int:
    import waitress

    from rrdalarm.model.definitions import ServiceSettings
    from rrdalarm.service.scheduler import make_scheduler
    from rrdalarm.service.service import CheckService

    # rrdalarm.web is installed from web/; imported by name so the core holds no static tie to Flask.
    from rrdalarm.web import create_app

    _configure_logging(log_level)
    # A page request gives up the interpreter at every read and write; with a check working in this
    # process, the default 5 ms wait to get it back adds up to hundreds of ms per page.
    sys.setswitchinterval(PAGE_SWITCH_INTERVAL_S)
    service = CheckService(settings_path, overrides)
    settings = service.settings()
    host, port = ServiceSettings(listen=listen).host_port if listen else settings.service.host_port
    app = create_app(service)
    server = waitress.create_server(app, host=host, port=port, threads=8, ident="rrdalarm",
                                    **connection_guards(settings.service))
    read_deadline(server, settings.service.request_timeout)
    scheduler = make_scheduler(service) if with_scheduler else None
    service.scheduler = scheduler
    signal.signal(signal.SIGTERM, _raise_stop)
    signal.signal(signal.SIGINT, _raise_stop)
    actual_port = server.effective_port
    log.info("serving on http://%s:%s/ (%s)", host, actual_port,
             f"scheduler every {settings.service.check_interval:g} s" if scheduler else "no scheduler: cron checks")
    if settings.service.api_token is None:
        log.warning("no [service] api_token is set: /start and the report need a logged-in user")
    if scheduler is not None:
        scheduler.start()
    try:
        server.run()  # returns when a Stop ends its loop
    except Stop:
        pass
    finally:
        _stop(server, scheduler, service)
    return 0


def _configure_logging(log_level: str) -> None:
    logging.basicConfig(stream=sys.stderr, level=log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("apscheduler", "alembic"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLogger().level))


def _stop(server: Any, scheduler: Any, service: Any) -> None:
    """Close the server and the scheduler, hand the lead over, and give a running check STOP_GRACE_S."""
    log.info("%s: stopping", _received[0] if _received else "server loop ended")
    server.close()
    if scheduler is not None and scheduler.running:
        scheduler.shutdown(wait=False)
    if service.leadership is not None:  # another service takes over at once, not after a lease
        service.leadership.release()
    deadline = time.monotonic() + STOP_GRACE_S
    while service.busy.is_set() and time.monotonic() < deadline:
        time.sleep(0.05)
    abandoned = service.busy.is_set()
    if abandoned:
        log.warning("a check is still running: abandoned (nothing of it was recorded)")
    service.close()
    logging.shutdown()
    if abandoned or threading.active_count() > 1:
        # Worker threads of a check or a delivery would keep the process alive.
        os._exit(0)
