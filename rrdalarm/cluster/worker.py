"""The worker side: `rrdalarm worker` consumes its tree's queue and checks each shard next to the data.

Each shard is checked with the worker's own settings (its RRD root, its rrdcached, its ntopng):
the thresholds come from the coordinator, what they read is this machine's.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any

from rrdalarm.cluster.app import TASK, ensure_reachable, make_app, node_name, queue_name, shown
from rrdalarm.cluster.wire import ShardAnswer, ShardRequest, WireError, decode_request, encode_answer, read_thresholds
from rrdalarm.model.definitions import Settings
from rrdalarm.model.errors import ConfigError
from rrdalarm.sources.base import SourceReport

log = logging.getLogger(__name__)


def check_request(settings: Settings, req: ShardRequest) -> SourceReport:
    """Every source's part of the shard, for the enabled thresholds sent."""
    from rrdalarm.plugins import source_plugins

    thresholds = [t for t in read_thresholds(req.thresholds, req.tree) if t.enabled]
    plugins = source_plugins()
    report = SourceReport()
    for name in sorted({t.source for t in thresholds}):
        mine = [t for t in thresholds if t.source == name]
        ids = {t.id for t in mine}
        report.add(plugins[name](settings).check_shard(
            mine, req.now, firing=frozenset(k for k in req.firing if k[0] in ids), want_ok=req.want_ok,
            shard=req.shard))
    return report


def run_shard(settings: Settings, payload: Mapping[str, Any], worker: str) -> dict[str, Any]:
    """The task: a request in, an answer out; a mistake in either settings is the answer's `error`, never a raise."""
    started = time.monotonic()
    try:
        req = decode_request(payload)
    except WireError as exc:
        return encode_answer(ShardAnswer(str(payload.get("check", "")), str(payload.get("tree", "")), -1, worker,
                                         0.0, error=str(exc)))
    log.info("tree %s shard %d/%d: started", req.tree, req.shard.index + 1, req.shard.count)
    error = ""
    try:
        report = check_request(settings, req)
    except ConfigError as exc:
        report, error = SourceReport(), str(exc)
    took = time.monotonic() - started
    log.info("tree %s shard %d/%d: %d files in %.2f s", req.tree, req.shard.index + 1, req.shard.count,
             report.files_checked, took)
    return encode_answer(ShardAnswer(req.check, req.tree, req.shard.index, worker, took, report, error))


def serve(settings: Settings, tree: str, concurrency: int, loglevel: str) -> int:
    """Run a Celery worker in this process on the queue of `tree` until SIGTERM or Ctrl-C; its exit status.

    BrokerError when the broker cannot be reached at the start (later, the worker reconnects).
    """
    app = make_app(settings)
    node = node_name(tree)

    @app.task(name=TASK, bind=True)  # type: ignore[untyped-decorator]
    def check_shard(task: Any, payload: dict[str, Any]) -> dict[str, Any]:
        return run_shard(settings, payload, str(task.request.hostname or node))

    ensure_reachable(app, "broker")
    if loglevel.upper() != "DEBUG":
        # Celery logs every task twice (received; succeeded with its answer): our one line per shard says it.
        for chatty in ("celery.worker.strategy", "celery.app.trace"):
            logging.getLogger(chatty).setLevel(logging.WARNING)
    log.warning("worker %s: tree %s (queue %s) on %s, RRD root %s, %d at a time", node, tree, queue_name(tree),
                shown(app.conf.broker_url), settings.rrd_root, concurrency)
    # Threads, not Celery's prefork: each shard starts its own fetch processes (rrd_pool), which a
    # daemonic pool process may not.
    worker = app.Worker(hostname=node, queues=[queue_name(tree)], pool="threads", concurrency=concurrency,
                        loglevel=loglevel.upper(), quiet=True, without_gossip=True, without_mingle=True,
                        without_heartbeat=True)
    worker.start()
    return int(worker.exitcode or 0)
