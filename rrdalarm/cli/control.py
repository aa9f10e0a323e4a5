"""`rrdalarm silence` and `rrdalarm ack`: people quieting alarms, over rrdalarm.control."""

from __future__ import annotations

import getpass
import json
import sys
import time
from pathlib import Path

import click

from rrdalarm.cli.main import _epoch, cli, fail, open_store, settings_from, thresholds_of, user_errors
from rrdalarm.model.control import Matchers, Silence
from rrdalarm.model.states import Severity

DB_HELP = "SQLAlchemy database URL (default: SQLite in the data dir)."
AT_HELP = "Act as if now were EPOCH (as check --at does)."


def _now(at: int | None) -> int:
    return int(time.time()) if at is None else at


def _author(given: str | None) -> str:
    """Who the silence or acknowledgement is recorded under: --author, else the account running the command."""
    if given is not None and given.strip():
        return given.strip()
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return "cli"


@cli.group()
def silence() -> None:
    """Silences: matching series are evaluated and recorded, but no action is told, until the silence ends."""


@silence.command("add")
@click.option("--threshold", type=int, help="Only this threshold id.")
@click.option("--series", metavar="GLOB", help="Only series (files, relative to the RRD root) matching GLOB.")
@click.option("--ds", help="Only this data source.")
@click.option("--label", "labels", multiple=True, metavar="K=V", help="Only thresholds with this label (repeatable).")
@click.option("--severity", type=click.Choice([s.value for s in Severity]), help="Only this severity.")
@click.option("--start", metavar="TIME", help="When it starts: epoch, 'now+1h' or '2026-12-24T18:00' (default: now).")
@click.option("--end", metavar="TIME", help="When it ends (or give --for).")
@click.option("--for", "duration", metavar="DURATION", help="How long it lasts, e.g. 2h, 30min.")
@click.option("--comment", required=True, help="Why (shown with every silenced row).")
@click.option("--author", help="Who makes it (default: the user running the command).")
@click.option("--config", type=click.Path(path_type=Path, dir_okay=False), help="Thresholds file.")
@click.option("--db", help=DB_HELP)
@click.option("--no-count", is_flag=True, help="Do not count the series it matches now (that reads every file).")
@click.option("--at", callback=_epoch, metavar="EPOCH", help=AT_HELP)
@click.pass_context
@user_errors
def silence_add(ctx: click.Context, threshold: int | None, series: str | None, ds: str | None,
                labels: tuple[str, ...], severity: str | None, start: str | None, end: str | None,
                duration: str | None, comment: str, author: str | None, config: Path | None, db: str | None,
                no_count: bool, at: int | None) -> None:
    """Add a silence and say how many series it matches now."""
    from rrdalarm.control import silences

    settings = settings_from(ctx, None, db, config)
    thresholds = thresholds_of(settings)
    now = _now(at)
    try:
        matchers = Matchers(threshold, series, ds, silences.parse_labels(labels), severity)
        times = silences.silence_times(start, end, duration, now)
        with open_store(settings.db_url) as store:
            made = silences.add(store, thresholds, matchers, times, comment, _author(author), now)
            matched = None if no_count else silences.matched_now(settings, thresholds, store, matchers, now)
    except silences.ControlError as exc:
        fail(str(exc))
    click.echo(f"{silences.describe(made)} added: {_when(made)}")
    if matched is not None:
        click.echo(f"it matches {matched.series} series now ({matched.firing} firing)")


def _when(s: Silence) -> str:
    from rrdalarm.report.render import fmt_time

    return f"from {fmt_time(s.starts_at)} until {fmt_time(s.ends_at)}"


@silence.command("list")
@click.option("--all", "include_ended", is_flag=True, help="Also silences that have ended or were expired.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON lines.")
@click.option("--db", help=DB_HELP)
@click.option("--at", callback=_epoch, metavar="EPOCH", help=AT_HELP)
@click.pass_context
@user_errors
def silence_list(ctx: click.Context, include_ended: bool, as_json: bool, db: str | None, at: int | None) -> None:
    """List silences in force or to come, newest first."""
    from rrdalarm.control import silences

    now = _now(at)
    with open_store(settings_from(ctx, None, db).db_url) as store:
        found = silences.listed(store, now, include_ended)
    if as_json:
        for s in found:
            click.echo(json.dumps(silences.as_dict(s, now)))
        return
    if not found:
        click.echo("no silences" if include_ended else "no silences in force or to come (--all lists ended ones)")
    for s in found:
        ended = f", expired by {s.expired_by}" if s.expired_by else ""
        click.echo(f"{s.id:<5} {silences.phase(s, now):<8} {_when(s)}  {s.matchers.describe()}  "
                   f"by {s.author}{ended}: {s.comment}")


@silence.command("expire")
@click.argument("ident", metavar="ID", type=int)
@click.option("--author", help="Who ends it (default: the user running the command).")
@click.option("--db", help=DB_HELP)
@click.option("--at", callback=_epoch, metavar="EPOCH", help=AT_HELP)
@click.pass_context
@user_errors
def silence_expire(ctx: click.Context, ident: int, author: str | None, db: str | None, at: int | None) -> None:
    """End silence ID now; series it kept quiet that still fire are told of at the next check."""
    from rrdalarm.control import silences

    now = _now(at)
    with open_store(settings_from(ctx, None, db).db_url) as store:
        try:
            gone = silences.expire(store, ident, _author(author), now)
        except silences.ControlError as exc:
            fail(str(exc))
    click.echo(f"silence {gone.id} expired ({gone.matchers.describe()})")


@silence.command("extend")
@click.argument("ident", metavar="ID", type=int)
@click.option("--for", "duration", metavar="DURATION", required=True, help="How much longer, e.g. 1h, 30min.")
@click.option("--author", help="Who extends it (default: the user running the command).")
@click.option("--db", help=DB_HELP)
@click.option("--at", callback=_epoch, metavar="EPOCH", help=AT_HELP)
@click.pass_context
@user_errors
def silence_extend(ctx: click.Context, ident: int, duration: str, author: str | None, db: str | None,
                   at: int | None) -> None:
    """Let silence ID last DURATION longer (counted from now if it would end sooner)."""
    from rrdalarm.control import silences

    now = _now(at)
    with open_store(settings_from(ctx, None, db).db_url) as store:
        try:
            moved = silences.extend(store, ident, duration, _author(author), now)
        except silences.ControlError as exc:
            fail(str(exc))
    from rrdalarm.report.render import fmt_time

    click.echo(f"silence {moved.id} ({moved.matchers.describe()}) now ends {fmt_time(moved.ends_at)}")


@cli.command()
@click.option("--threshold", type=int, required=True, help="The threshold id.")
@click.option("--series", metavar="GLOB", help="Only series matching GLOB (default: every firing one).")
@click.option("--ds", help="Only this data source.")
@click.option("--comment", required=True, help="What is being done about it.")
@click.option("--author", help="Who acknowledges (default: the user running the command).")
@click.option("--config", type=click.Path(path_type=Path, dir_okay=False), help="Thresholds file.")
@click.option("--db", help=DB_HELP)
@click.option("--wait", type=float, help="Seconds to wait for a running check (default: lock_wait).")
@click.option("--at", callback=_epoch, metavar="EPOCH", help=AT_HELP)
@click.pass_context
@user_errors
def ack(ctx: click.Context, threshold: int, series: str | None, ds: str | None, comment: str, author: str | None,
        config: Path | None, db: str | None, wait: float | None, at: int | None) -> None:
    """Acknowledge FIRING series: no re-arm repeats until they resolve; actions with on = ["ack"] are told."""
    from rrdalarm.control.acks import acknowledge
    from rrdalarm.control.silences import ControlError

    settings = settings_from(ctx, None, db, config)
    thresholds = thresholds_of(settings)
    with open_store(settings.db_url) as store:
        try:
            done = acknowledge(store, settings, thresholds, threshold, series, ds, comment, _author(author),
                               _now(at), wait=settings.lock_wait if wait is None else wait)
        except ControlError as exc:
            fail(str(exc))
    for line in done.lines():
        click.echo(line)
    sys.exit(0 if all(r.ok for r in done.deliveries) else 1)
