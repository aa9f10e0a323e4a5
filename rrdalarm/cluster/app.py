"""The Celery app of a cluster, made from the settings' [cluster] table: the same on the coordinator and workers.

Only JSON crosses the broker (a pickle from the broker could run code). Tasks are acknowledged
after they ran, and a message held by a worker that died comes back to the tree's queue once the
broker's visibility timeout (tied to answer_timeout) has passed, for another worker of the tree.
"""

from __future__ import annotations

import math
import os
import socket
from typing import Any
from urllib.parse import urlsplit

from celery import Celery
from celery.backends.redis import RedisBackend

from rrdalarm.common.secrets import hide_password, redact
from rrdalarm.config.cluster import broker_urls
from rrdalarm.model.definitions import Settings

TASK = "rrdalarm.check_shard"
QUEUE_PREFIX = "rrdalarm.tree."
NODE_PREFIX = "rrdalarm."
CONNECT_TIMEOUT_S = 5.0


class BrokerError(Exception):
    """The broker could not be reached or used; the message is one line without the password."""


class BadBrokerURL(BrokerError):
    """A broker URL no transport takes: a mistake in the settings."""


def queue_name(tree: str) -> str:
    """The queue the workers of `tree` (and only they) consume."""
    return QUEUE_PREFIX + tree


def node_name(tree: str) -> str:
    """This worker's Celery node name: it says the tree, and the pid keeps two workers of a host apart."""
    return f"{NODE_PREFIX}{tree}.{os.getpid()}@{socket.gethostname()}"


def tree_of(node: str) -> str | None:
    """The tree of a worker's node name (see node_name), or None for a node that is not an rrdalarm worker."""
    name = node.split("@", 1)[0]
    if not name.startswith(NODE_PREFIX) or "." not in name[len(NODE_PREFIX):]:
        return None
    return name[len(NODE_PREFIX):].rsplit(".", 1)[0]


class PollingRedisBackend(RedisBackend):  # type: ignore[misc]
    """Redis results without the listener Celery subscribes for each task sent.

    A check polls its answers (AsyncResult.ready); the listener only adds a connection that, when
    Redis restarts, logs a CRITICAL "must be restarted" at every check though nothing needs one.
    """

    def on_task_call(self, producer: Any, task_id: str) -> None:
        """No subscription: answers are read by polling."""

    def forget(self, task_id: str) -> None:
        self._forget(task_id)  # nothing subscribed to cancel


def backend_url(url: str) -> str:
    """The result backend as Celery is told of it: a Redis one through PollingRedisBackend."""
    scheme = urlsplit(url).scheme
    if scheme in ("redis", "rediss"):
        return f"{__name__}:PollingRedisBackend+{url}"
    return url


def shown(url: str) -> str:
    """A broker URL as messages may show it."""
    return hide_password(url)


def make_app(settings: Settings) -> Celery:
    """The cluster's Celery app; the same configuration on every node, so that they agree."""
    broker, backend = broker_urls(settings)
    timeout = settings.cluster.answer_timeout
    app = Celery("rrdalarm", broker=broker, backend=backend_url(backend), set_as_current=False)
    app.conf.update(_configuration(timeout))
    return app


def _configuration(answer_timeout: float) -> dict[str, Any]:
    # A shard's message held longer than a check waits for it is useless there: back to the queue by then.
    visibility = max(1, math.ceil(answer_timeout))
    connect = {"socket_connect_timeout": CONNECT_TIMEOUT_S}
    return {
        "task_serializer": "json", "result_serializer": "json", "accept_content": ["json"],
        "result_accept_content": ["json"], "event_serializer": "json",
        "task_acks_late": True, "task_reject_on_worker_lost": True, "worker_prefetch_multiplier": 1,
        "broker_transport_options": {"visibility_timeout": visibility, **connect},
        # The result backend's own reconnection would otherwise try for 20 s before a check hears of it.
        "result_backend_transport_options": {"visibility_timeout": visibility, **connect, "retry_policy": {
            "max_retries": 2, "interval_start": 0, "interval_step": 0.5, "interval_max": 0.5}},
        "redis_socket_connect_timeout": CONNECT_TIMEOUT_S, "broker_connection_timeout": CONNECT_TIMEOUT_S,
        # Answers are read once, then forgotten; those no one read go soon.
        "result_expires": max(60, math.ceil(2 * answer_timeout)),
        # A check that cannot publish says so within seconds rather than retrying for long.
        "task_publish_retry_policy": {"max_retries": 2, "interval_start": 0, "interval_step": 0.5,
                                      "interval_max": 1},
        "broker_connection_retry_on_startup": True, "broker_connection_max_retries": None,
        "worker_hijack_root_logger": False, "worker_redirect_stdouts": False,
        "worker_send_task_events": False, "task_send_sent_event": False, "task_track_started": False,
        "task_create_missing_queues": True,
    }


def ensure_reachable(app: Celery, what: str) -> None:
    """Connect to the broker once; BrokerError names it (password hidden) and why not."""
    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, interval_start=0, interval_step=0.5, interval_max=0.5,
                                   timeout=CONNECT_TIMEOUT_S)
    except (KeyError, ImportError, ValueError) as exc:
        # kombu's words for a scheme it has no transport for, or a URL it cannot parse.
        raise BadBrokerURL(f"{what} {shown(app.conf.broker_url)}: not a broker URL kombu can use "
                           f"({_reason(exc, app.conf.broker_url)})") from None
    except Exception as exc:  # noqa: BLE001 - every transport has its own errors; all mean "not reachable"
        url = app.conf.broker_url
        raise BrokerError(f"{what} {shown(url)} unreachable: {_reason(exc, url)}") from None


def _reason(exc: BaseException, url: str) -> str:
    """The first line of what went wrong, without the URL's password should a library have quoted it."""
    text = str(exc).splitlines()[0] if str(exc).strip() else exc.__class__.__name__
    return redact(text, [password_of(url)])


def password_of(url: str) -> str | None:
    try:
        return urlsplit(url).password
    except ValueError:
        return None
