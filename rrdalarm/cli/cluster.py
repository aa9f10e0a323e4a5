"""`rrdalarm worker` (a collector's worker for one tree) and `rrdalarm trees` (the trees' workers as last seen)."""

from __future__ import annotations

import json
import logging
import sys
import time
from dataclasses import replace
from pathlib import Path

import click

from rrdalarm.cli.main import EXIT_USAGE, RRDCACHED_HELP, _rrdcached, cli, fail, open_store, settings_from, user_errors
from rrdalarm.config.settings import load_settings
from rrdalarm.config.thresholds import tree_problem
from rrdalarm.model.definitions import LOCAL_TREE, Settings
from rrdalarm.model.errors import ConfigError

EXIT_UNAVAILABLE = 69  # sysexits' EX_UNAVAILABLE: the broker could not be reached
NEEDS_CELERY = "the cluster needs Celery: pip install 'rrdalarm[cluster]'"


def _tree(_ctx: click.Context, _param: click.Parameter, value: str) -> str:
    problem = tree_problem(value) or ("is checked by the coordinator itself: name another tree"
                                      if value == LOCAL_TREE else None)
    if problem:
        raise click.BadParameter(problem)
    return value


@cli.command()
@click.option("--tree", required=True, callback=_tree, help="The tree this worker serves (thresholds' `tree`).")
@click.option("--rrd-root", type=click.Path(path_type=Path, file_okay=False, exists=True), required=True,
              help="Root of this machine's RRD tree.")
@click.option("--concurrency", type=click.IntRange(min=1, max=64), default=1, show_default=True,
              help="Shards checked at once (each with its own fetch processes: `workers` in the settings).")
@click.option("--settings", "settings_file", type=click.Path(path_type=Path, dir_okay=False, exists=True),
              help="This worker's settings file ([cluster] broker, rrdcached, workers, data_dir).")
@click.option("--rrdcached", callback=_rrdcached, metavar="ADDRESS", help=RRDCACHED_HELP)
@click.option("--log-level", type=click.Choice(["debug", "info", "warning", "error"]), default="info",
              show_default=True)
@click.pass_context
@user_errors
def worker(ctx: click.Context, tree: str, rrd_root: Path, concurrency: int, settings_file: Path | None,
           rrdcached: str | None, log_level: str) -> None:
    """Check the shards of TREE's thresholds next to its RRD files, until SIGTERM or Ctrl-C.

    Consumes only the tree's queue on the [cluster] broker. Exit status: 2 bad usage or
    configuration, 69 the broker could not be reached at the start.
    """
    settings: Settings = load_settings(settings_file) if settings_file is not None else ctx.obj["settings"]
    settings = replace(settings, rrd_root=rrd_root.resolve())
    if rrdcached is not None:
        settings = replace(settings, rrdcached=rrdcached)
    if settings.cluster.broker is None:
        raise ConfigError(settings.path, "a worker needs the broker: set [cluster] broker in the settings",
                          field="broker")
    try:
        from rrdalarm.cluster.app import BadBrokerURL, BrokerError
        from rrdalarm.cluster.worker import serve
    except ImportError:
        fail(NEEDS_CELERY)
    logging.basicConfig(stream=sys.stderr, level=log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        code = serve(settings, tree, concurrency, log_level)
    except BrokerError as exc:
        fail(str(exc), EXIT_USAGE if isinstance(exc, BadBrokerURL) else EXIT_UNAVAILABLE)
    sys.exit(code)


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f} s"


@cli.command()
@click.option("--db", help="SQLAlchemy database URL (default: SQLite in the data dir).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON lines.")
@click.pass_context
@user_errors
def trees(ctx: click.Context, db: str | None, as_json: bool) -> None:
    """The trees' workers as the checks last saw them, one line each: heartbeat, files, durations."""
    from rrdalarm.report.render import fmt_time
    from rrdalarm.store.workers import tree_workers

    settings = settings_from(ctx, None, db)
    with open_store(settings.db_url) as store:
        seen = tree_workers(store)
    now = time.time()
    for w in seen:
        if as_json:
            click.echo(json.dumps({"tree": w.tree, "worker": w.worker, "seen_at": int(w.seen_at), "files": w.files,
                                   "shard_duration_s": w.shard_duration_s, "tree_duration_s": w.tree_duration_s}))
            continue
        ago = max(0, int(now - w.seen_at))
        click.echo(f"{w.tree:<16} {w.worker:<40} seen {fmt_time(int(w.seen_at))} ({ago} s ago)  "
                   f"{w.files} files  shard {_seconds(w.shard_duration_s)}  tree {_seconds(w.tree_duration_s)}")
    if not seen and not as_json:
        click.echo("no worker seen yet (thresholds name their tree with tree = \"NAME\"; see rrdalarm worker)")
