"""The `rrdalarm` command: thin click wrappers over config, engine, store and report."""

from __future__ import annotations

import functools
import gc
import json
import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime, tzinfo
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click

from rrdalarm import __version__
from rrdalarm.check.lock import CheckBusy, check_lock
from rrdalarm.common.errors import BadDatabaseURL, RequeueError, StoreError
from rrdalarm.config.lines import read_config_text
from rrdalarm.config.settings import find_settings_file, load_settings, rrdcached_problem
from rrdalarm.config.thresholds import check_trees, is_legacy_text, load_thresholds_file
from rrdalarm.model.control import MaintenanceWindow
from rrdalarm.model.definitions import LOCAL_TREE, Settings, Threshold, ThresholdsFile
from rrdalarm.model.errors import ConfigError
from rrdalarm.model.states import EventStatus
from rrdalarm.plugins import source_plugins
from rrdalarm.rules import timespec
from rrdalarm.sources.base import ProgressCallback

if TYPE_CHECKING:
    from rrdalarm.config.import_limits import Imported
    from rrdalarm.model.results import CheckResult
    from rrdalarm.store.database import Store

EXIT_USAGE = 2
EXIT_BUSY = 4
# The database could not be reached or written (down, locked, disk full): not the configuration's fault.
EXIT_STORE = 5
EXIT_REPORT = 73  # sysexits' EX_CANTCREAT: an output file that cannot be written
EXIT_INTERNAL = 70

F = TypeVar("F", bound=Callable[..., Any])


def fail(message: str, code: int = EXIT_USAGE) -> NoReturn:
    click.echo(f"rrdalarm: {message}", err=True)
    sys.exit(code)


def user_errors(func: F) -> F:
    """Turn every error a user can cause into one line on stderr and an exit status."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except ConfigError as exc:
            fail(str(exc))
        except StoreError as exc:
            fail(str(exc), EXIT_USAGE if isinstance(exc, BadDatabaseURL) else EXIT_STORE)
        except CheckBusy as exc:
            fail(str(exc), EXIT_BUSY)
        except KeyboardInterrupt:
            fail("interrupted", 130)
        except (click.exceptions.Exit, click.ClickException, SystemExit):
            raise
        except Exception as exc:
            if os.environ.get("RRDALARM_DEBUG"):
                raise
            fail(f"internal error: {exc.__class__.__name__}: {exc} (set RRDALARM_DEBUG=1 for details)",
                 EXIT_INTERNAL)

    return wrapper  # type: ignore[return-value]


def settings_from(ctx: click.Context, rrd_root: Path | None = None, db: str | None = None,
                  config: Path | None = None) -> Settings:
    settings: Settings = ctx.obj["settings"]
    changes: dict[str, Any] = {}
    if rrd_root is not None:
        changes["rrd_root"] = rrd_root
    if db is not None:
        changes["database_url"] = db
    if config is not None:
        changes["thresholds"] = config
    return replace(settings, **changes) if changes else settings


def thresholds_of(settings: Settings) -> list[Threshold]:
    return thresholds_file_of(settings).thresholds


def thresholds_file_of(settings: Settings) -> ThresholdsFile:
    """The thresholds and maintenance windows of the settings' thresholds file."""
    if settings.thresholds is None:
        raise ConfigError(settings.path, "no thresholds file: pass --config or set 'thresholds' in settings",
                          field="thresholds")
    return load_thresholds_file(settings.thresholds)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="rrdalarm")
@click.option("--settings", "settings_path", type=click.Path(path_type=Path, dir_okay=False),
              help="Settings file (default: $RRDALARM_SETTINGS, ./rrdalarm.toml, /etc/rrdalarm/rrdalarm.toml).")
@click.pass_context
def cli(ctx: click.Context, settings_path: Path | None) -> None:
    """Threshold alarms over RRD files."""
    ctx.ensure_object(dict)
    path = find_settings_file(settings_path)
    ctx.obj["settings_path"] = path
    try:
        ctx.obj["settings"] = load_settings(path)
    except ConfigError as exc:
        fail(str(exc))


# Seconds a check runs before its progress bar shows: quick checks stay quiet.
PROGRESS_AFTER = 1.0


@contextmanager
def progress_bar(enabled: bool) -> Iterator[ProgressCallback | None]:
    """A progress bar on stderr, shown only if the check is still running after PROGRESS_AFTER seconds."""
    if not enabled:
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    started = time.monotonic()
    bar: Progress | None = None
    task = None

    def update(done: int, total: int) -> None:
        nonlocal bar, task
        if bar is None:
            if time.monotonic() - started < PROGRESS_AFTER:
                return
            bar = Progress(TextColumn("checking"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                           console=Console(stderr=True), transient=True)
            bar.start()
            task = bar.add_task("files", total=total)
        assert task is not None
        bar.update(task, completed=done, total=total)

    try:
        yield update
    finally:
        if bar is not None:
            bar.stop()


def _rrdcached(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    problem = rrdcached_problem(value) if value is not None else None
    if problem:
        raise click.BadParameter(problem)
    return value


RRDCACHED_HELP = "Read through this rrdcached (unix:/path or host:port; \"\" for none; default: setting, " \
                 "then $RRDCACHED_ADDRESS)."


# The last second of year 9999: later dates cannot be written in reports.
MAX_EPOCH = 253_402_300_799


def _epoch(ctx: click.Context, _param: click.Parameter, value: str | None) -> int | None:
    if value is None:
        return None
    try:
        at = int(value)
    except ValueError:
        at = -1
    if not 0 <= at <= MAX_EPOCH:  # click takes `--at -1` as the value -1: refused here, as `--at=-1` is
        raise click.UsageError(f"--at must be an epoch (whole seconds since 1970) from 0 to {MAX_EPOCH} (the end "
                               f"of year 9999), not {value!r}", ctx)
    return at


@cli.command()
@click.option("--config", type=click.Path(path_type=Path, dir_okay=False),
              help="Thresholds file: TOML or a legacy rrdAlarmConfig.txt.")
@click.option("--rrd-root", type=click.Path(path_type=Path, file_okay=False, exists=True),
              help="Root of the RRD tree.")
@click.option("--db", help="SQLAlchemy database URL (default: SQLite in the data dir).")
@click.option("--quiet", "output", flag_value="quiet", help="Print nothing (for cron); only the exit status.")
@click.option("--json", "output", flag_value="json", help="Print one JSON object.")
@click.option("--html", "html_file", type=click.Path(path_type=Path, dir_okay=False),
              help="Write the HTML report to this file.")
@click.option("--dry-run", is_flag=True, help="Evaluate and report; record nothing and run no action.")
@click.option("--at", callback=_epoch, metavar="EPOCH", help="Evaluate as if now were EPOCH.")
@click.option("--wait", type=float, help="Seconds to wait for a running check (default: lock_wait).")
@click.option("--workers", type=click.IntRange(min=0), help="Fetch processes (0: one per core).")
@click.option("--rrdcached", callback=_rrdcached, metavar="ADDRESS", help=RRDCACHED_HELP)
@click.pass_context
@user_errors
def check(ctx: click.Context, config: Path | None, rrd_root: Path | None, db: str | None,
          output: str | None, html_file: Path | None, dry_run: bool, at: int | None,
          wait: float | None, workers: int | None, rrdcached: str | None) -> None:
    """Run one check and report it.

    Exit status: 0 nothing firing, 1 at least one series firing, 2 bad usage or
    configuration (--at before the newest recorded check included), 3 nothing
    firing but some series unreadable, 4 another check held the lock, 5 the
    database could not be reached or written (down, locked, disk full): the
    check was not recorded, 73 the --html report could not be written (the
    check was recorded; the previous report is kept).
    """
    from rrdalarm.report import render as report

    if html_file is not None and output is not None:
        raise click.UsageError("--html cannot be combined with --quiet or --json")
    settings = settings_from(ctx, rrd_root, db, config)
    if workers is not None:
        settings = replace(settings, workers=workers)
    if rrdcached is not None:
        settings = replace(settings, rrdcached=rrdcached)
    loaded = thresholds_file_of(settings)
    show = output is None and html_file is None and sys.stderr.isatty()
    result = _checked(settings, loaded, at=at, dry_run=dry_run, want_ok=output != "quiet", wait=wait, show=show)
    if output != "quiet":
        for warning in result.warnings:
            click.echo(f"rrdalarm: warning: {warning}", err=True)
    if output == "json":
        click.echo(report.to_json(result), nl=False)
    elif html_file is not None:
        _write_report(html_file, report.to_html(result), recorded=not dry_run)
        click.echo(report.summary_line(result))
    elif output is None:
        click.echo(report.to_text(result), nl=False)
    sys.exit(result.exit_status)


def _write_report(path: Path, html: str, *, recorded: bool) -> None:
    """The HTML report, whole or not at all: a failed write leaves the previous report as it was."""
    from rrdalarm.common.fileutil import atomic_write_text

    try:
        atomic_write_text(path, html)
    except OSError as exc:
        # The check itself is done (and recorded): only its report is missing, which cron's mail should say.
        done = "the check was recorded" if recorded else "dry run: nothing recorded"
        fail(f"cannot write the HTML report {path}: {exc.strerror or exc} ({done})", EXIT_REPORT)


def _checked(settings: Settings, loaded: ThresholdsFile, *, at: int | None, dry_run: bool, want_ok: bool,
             wait: float | None, show: bool) -> CheckResult:
    """One check under the lock, recorded, then the outbox sent; a failing database: the check is not recorded."""
    from rrdalarm.check.engine import deliver_after_check, run_check

    try:
        with open_store(settings.db_url) as store:
            with check_lock(settings.data_dir, settings.lock_wait if wait is None else wait, store), \
                    progress_bar(show) as progress:
                result = run_check(settings, loaded.thresholds, store, at=at, dry_run=dry_run, want_ok=want_ok,
                                   progress=progress, deliver=False, windows=loaded.windows)
            if not dry_run:
                deliver_after_check(store, settings, result)
    except StoreError as exc:
        if isinstance(exc, BadDatabaseURL):
            raise
        # One transaction records a check: when it fails nothing of it is in the database.
        raise StoreError(f"the check could not be recorded: {exc}") from None
    return result


@cli.command()
@click.option("--config", type=click.Path(path_type=Path, dir_okay=False), help="Thresholds file to check.")
@click.option("--rrd-root", type=click.Path(path_type=Path, file_okay=False, exists=True),
              help="Also check that the RRD root exists and count what each glob matches.")
@click.option("--at", callback=_epoch, metavar="EPOCH", help="List maintenance windows from EPOCH on (default: now).")
@click.pass_context
@user_errors
def validate(ctx: click.Context, config: Path | None, rrd_root: Path | None, at: int | None) -> None:
    """Check the settings and thresholds without running a check."""
    from rrdalarm.delivery.dispatch import plan_actions
    from rrdalarm.plugins import available_actions, plugin_errors, source_plugins

    settings = settings_from(ctx, rrd_root, None, config)
    for plugin, why in plugin_errors().items():
        click.echo(f"warning: {plugin} plugin failed to load: {why}", err=True)
    loaded = thresholds_file_of(settings)
    thresholds = loaded.thresholds
    check_trees(thresholds, settings)
    plan = plan_actions(thresholds, available_actions(settings.scripts_dir))
    for warning in plan.warnings:
        click.echo(f"warning: {warning}", err=True)
    counts = ""
    plugins = source_plugins()
    here = [t for t in thresholds if t.tree == LOCAL_TREE]  # other trees' files are seen by their workers only
    for name in sorted({t.source for t in here} & plugins.keys()):
        note, warnings = plugins[name](settings).validate_notes([t for t in here if t.source == name])
        counts += note
        for warning in warnings:
            click.echo(f"warning: {warning}", err=True)
    enabled = sum(1 for t in thresholds if t.enabled)
    count = len(loaded.windows)
    windows = f", {count} maintenance window{'' if count == 1 else 's'}" if count else ""
    click.echo(f"{settings.thresholds}: {len(thresholds)} thresholds ({enabled} enabled){windows} OK{counts}")
    show_windows(loaded.windows, int(time.time()) if at is None else at)


def show_windows(windows: Sequence[MaintenanceWindow], now: int) -> None:
    """Each window: what it covers, then its next three occurrences in the server's local time."""
    from rrdalarm.common.quantities import format_duration
    from rrdalarm.rules.maintenance import local_zone, next_occurrences

    zone = local_zone()
    for w in windows:
        click.echo(f"maintenance {w.name!r} ({w.schedule!r}, {format_duration(w.duration)}): covers "
                   f"{w.matchers.describe()}")
        for start, end in next_occurrences(w, now, zone):
            click.echo(f"    {_local(start, zone)} – {_local(end, zone)}{'  (open now)' if start <= now else ''}")


def _local(epoch: int, zone: tzinfo) -> str:
    return datetime.fromtimestamp(epoch, zone).strftime("%Y-%m-%d %H:%M %Z")


@cli.command("import-legacy")
@click.argument("source", type=click.Path(path_type=Path, dir_okay=False, exists=True))
@click.argument("target", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--force", is_flag=True, help="Overwrite TARGET if it exists.")
@user_errors
def import_legacy(source: Path, target: Path, force: bool) -> None:
    """Convert a legacy rrdAlarmConfig.txt (SOURCE) to a TOML thresholds file (TARGET)."""
    from rrdalarm.config.legacy import parse_legacy
    from rrdalarm.config.writing import save_thresholds  # tomlkit: only commands that write pay for it

    text = read_config_text(source)
    if not is_legacy_text(text):
        raise ConfigError(source, "does not look like a legacy rrdAlarmConfig.txt (tab-separated rows)")
    thresholds = parse_legacy(text, str(source), sources=sorted(source_plugins()))
    if target.exists() and not force:
        fail(f"{target} exists; pass --force to overwrite it")
    header = [f" Converted from {source} by rrdalarm import-legacy {__version__}."]
    save_thresholds(target, thresholds, header)
    click.echo(f"{target}: wrote {len(thresholds)} thresholds")


def write_imported(source: Path, target: Path, force: bool, command: str, imported: Imported) -> None:
    """Write what an importer read to TARGET, with its warnings on stderr (the import-* commands)."""
    from rrdalarm.config.writing import save_thresholds  # tomlkit: only commands that write pay for it

    if not imported.thresholds:
        first = f" (skipped: {imported.warnings[0]})" if imported.warnings else ""
        raise ConfigError(source, f"no limits found to import{first}")
    if target.exists() and not force:
        fail(f"{target} exists; pass --force to overwrite it")
    for warning in imported.warnings:
        click.echo(f"warning: {warning}", err=True)
    header = [f"Converted from {source} by rrdalarm {command} {__version__}."]
    save_thresholds(target, imported.thresholds, header)
    count = len(imported.warnings)
    skipped = f" ({count} warning{'' if count == 1 else 's'})" if count else ""
    click.echo(f"{target}: wrote {len(imported.thresholds)} thresholds{skipped}")


def _import_command(name: str, reader: str, argument: str, doc: str) -> None:
    """One `import-*` command: read ARGUMENT with `reader` ("module:function"), write TARGET."""

    @cli.command(name, help=doc)
    @click.argument(argument, type=click.Path(path_type=Path, dir_okay=False, exists=True))
    @click.argument("target", type=click.Path(path_type=Path, dir_okay=False))
    @click.option("--force", is_flag=True, help="Overwrite TARGET if it exists.")
    @click.option("--start-id", type=click.IntRange(min=0), default=1, show_default=True,
                  help="Id of the first threshold written; the others follow.")
    @user_errors
    def command(target: Path, force: bool, start_id: int, **given: Path) -> None:
        import importlib

        module, function = reader.split(":")
        parse = getattr(importlib.import_module(module), function)  # only this command pays for its parser
        source = given[argument]
        imported = parse(read_config_text(source), str(source), start_id, sorted(source_plugins()))
        write_imported(source, target, force, name, imported)


_import_command("import-munin", "rrdalarm.config.import_munin:parse_munin", "datafile",
                "Turn the warning and critical levels of munin's DATAFILE into a TOML thresholds file (TARGET).")
_import_command("import-collectd", "rrdalarm.config.import_collectd:parse_collectd", "source",
                "Turn collectd's threshold configuration (SOURCE, e.g. threshold.conf) into a TOML thresholds file.")


@cli.command()
@click.option("--db", help="SQLAlchemy database URL (default: SQLite in the data dir).")
@click.option("--threshold", type=int, help="Only this threshold id.")
@click.option("--status", type=click.Choice([*(s.value for s in EventStatus), "fired", "resolved"],
                                              case_sensitive=False), help="Only this status.")
@click.option("--since", help="Only events at or after this AT-style time or epoch (e.g. now-1d).")
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON lines.")
@click.option("--deliveries", is_flag=True, help="List deliveries with their attempts instead of events.")
@click.option("--repeats", is_flag=True, help="Also list re-arm repeats (only first firings by default).")
@click.pass_context
@user_errors
def history(ctx: click.Context, db: str | None, threshold: int | None, status: str | None,
            since: str | None, limit: int, as_json: bool, deliveries: bool, repeats: bool) -> None:
    """List recent alarm events (or deliveries), newest first."""
    from rrdalarm.report.render import fmt_limit, fmt_time, fmt_value

    settings = settings_from(ctx, None, db)
    since_epoch = None
    if since is not None:
        try:
            since_epoch, _ = timespec.resolve_window(since, "now", int(time.time()))
        except timespec.TimeSpecError as exc:
            raise click.BadParameter(str(exc), param_hint="--since") from None
    wanted = {"fired": EventStatus.ALARM_FIRED, "resolved": EventStatus.RESOLVED}.get((status or "").lower(), status)
    if deliveries:
        show_deliveries(settings, since_epoch, limit, as_json)
        return
    with open_store(settings.db_url) as store:
        events = store.events(threshold=threshold, status=wanted, since=since_epoch, limit=limit, repeats=repeats)
    if as_json:
        for e in events:
            click.echo(json.dumps({
                "id": e.id, "at": e.at, "threshold": e.threshold_id, "name": e.threshold_name,
                "file": e.series, "ds": e.ds, "status": e.status, "kind": e.kind, "value": e.value,
                "time": e.time, "type": e.type, "limit": e.limit, "message": e.message,
                "severity": e.severity, "unit": e.unit,
                "silenced": e.silenced.split(",") if e.silenced else [],
            }))
        return
    if not events:
        click.echo("no events")
        return
    for e in events:
        series = f"{e.series}:{e.ds}" if e.ds else e.series
        unit = str(getattr(e, "unit", "") or "")  # events recorded with a unit show it
        quiet = f"  [silenced: {e.silenced}]" if e.silenced else ""
        click.echo(f"{fmt_time(e.at)}  {e.status:<11}  #{e.threshold_id:<4} {series}  "
                   f"{fmt_value(e.value, unit)} {e.type} {fmt_limit(e.limit, unit)}  {e.message}{quiet}")


def shown_param(spec: Any, value: Any) -> Any:
    """What history may print of an action parameter (its plugin's Param, None when unknown).

    Secrets show only as references or ***, a table of them (headers) entry by entry; a
    target (a URL that may carry a token) is *** too; so is anything of a plugin not installed.
    """
    from rrdalarm.common.secrets import describe, secret_problem

    if spec is None or not (spec.secret or spec.target):
        return "***" if spec is None else value
    if isinstance(value, dict) and secret_problem(value):
        return {k: describe(v) if isinstance(v, dict) else "***" for k, v in value.items()}
    return describe(value) if isinstance(value, dict) else "***"


def show_deliveries(settings: Settings, since: int | None, limit: int, as_json: bool) -> None:
    from rrdalarm.plugins import available_actions
    from rrdalarm.report.render import fmt_time

    plugins = available_actions(settings.scripts_dir)

    with open_store(settings.db_url) as store:
        rows = store.deliveries(since=since, limit=limit)
        digests = store.digest_messages(d.id for d, _ in rows)
    if not rows:
        click.echo("no deliveries")
        return
    for d, attempts in rows:
        declared = getattr(plugins.get(d.action), "params", {})
        params = {k: shown_param(declared.get(k), v) for k, v in json.loads(d.params).items()}
        if as_json:
            click.echo(json.dumps({
                "id": d.id, "created_at": d.created_at, "action": d.action, "params": params, "status": d.status,
                "attempts": [{"at": a.at, "ok": a.ok, "error": a.error, "duration_s": round(a.duration_s, 3)}
                             for a in attempts],
                "events": d.event_ids, "last_error": d.last_error, "digest": digests.get(d.id),
            }))
            continue
        click.echo(f"{fmt_time(d.created_at)}  {d.status:<7}  {d.action:<8} {d.id}  "
                   f"{len(d.event_ids)} events, {len(attempts)} attempts")
        if d.id in digests:
            click.echo(f"    digest: {digests[d.id]}")
        for a in attempts:
            result = "ok" if a.ok else f"failed: {a.error}"
            click.echo(f"    {fmt_time(a.at)}  {a.duration_s:.2f} s  {result}")


@cli.command()
@click.argument("ids", nargs=-1, metavar="[ID]...")
@click.option("--db", help="SQLAlchemy database URL (default: SQLite in the data dir).")
@click.option("--quiet", is_flag=True, help="Print nothing; the exit status says if something failed.")
@click.option("--requeue", is_flag=True, help="First queue the dead deliveries ID... (or --all-dead) again.")
@click.option("--all-dead", is_flag=True, help="With --requeue: every dead delivery (see --since).")
@click.option("--since", help="With --all-dead: only those created at or after this AT-style time or epoch.")
@click.option("--author", help="Who requeues, for the audit log (default: the user running the command).")
@click.pass_context
@user_errors
def deliver(ctx: click.Context, ids: tuple[str, ...], db: str | None, quiet: bool, requeue: bool, all_dead: bool,
            since: str | None, author: str | None) -> None:
    """Send the outbox's due deliveries (for cron setups); exit 1 if any attempt failed.

    With --requeue, dead deliveries (the IDs given, or --all-dead) are first queued again: each
    starts over with a new retry horizon and is audited with its author.
    """
    from rrdalarm.delivery.outbox import deliver_pending, summarize

    wanted = _requeue_request(ids, requeue, all_dead, since)
    settings = settings_from(ctx, None, db)
    with open_store(settings.db_url) as store:
        if wanted is not None:
            _requeue(store, wanted, author, quiet)
        results = deliver_pending(store, settings)
    if not quiet:
        for r in results:
            if not r.ok:
                click.echo(f"rrdalarm: delivery {r.delivery_id} ({r.action}): {r.error}", err=True)
        click.echo(summarize(results))
    sys.exit(1 if any(not r.ok for r in results) else 0)


@dataclass(frozen=True)
class _Requeue:
    ids: tuple[str, ...] | None  # None: every dead delivery since `since`
    since: int | None


def _requeue_request(ids: tuple[str, ...], requeue: bool, all_dead: bool, since: str | None) -> _Requeue | None:
    """What `deliver` is asked to requeue (None: nothing); a mistake is one line and exit 2."""
    if not requeue:
        stray = "delivery ids" if ids else "--all-dead" if all_dead else "--since" if since is not None else None
        if stray is not None:
            fail(f"{stray} needs --requeue")
        return None
    if bool(ids) == all_dead:
        fail("--requeue needs delivery ids or --all-dead (not both)")
    if since is not None and not all_dead:
        fail("--since goes with --all-dead")
    since_epoch = None
    if since is not None:
        try:
            since_epoch, _ = timespec.resolve_window(since, "now", int(time.time()))
        except timespec.TimeSpecError as exc:
            fail(f"--since: {exc}")
    return _Requeue(None if all_dead else ids, since_epoch)


def _requeue(store: Store, wanted: _Requeue, author: str | None, quiet: bool) -> None:
    from rrdalarm.cli.control import _author as author_of

    try:
        done = store.requeue_dead(wanted.ids, since=wanted.since, by=author_of(author), now=int(time.time()))
    except RequeueError as exc:
        fail(str(exc))
    if not quiet:
        click.echo(f"requeued {len(done)} {'delivery' if len(done) == 1 else 'deliveries'}"
                   + (f": {', '.join(done)}" if done else ""))


@cli.group()
def action() -> None:
    """The actions of the thresholds."""


@action.command("test")
@click.argument("threshold_id", type=int)
@click.option("--action", "number", type=int, metavar="N",
              help="Only the threshold's N-th action (1-based, in file order; default: all).")
@click.option("--config", type=click.Path(path_type=Path, dir_okay=False), help="Thresholds file.")
@click.option("--db", help="SQLAlchemy database URL (default: SQLite in the data dir).")
@click.pass_context
@user_errors
def action_test(ctx: click.Context, threshold_id: int, number: int | None, config: Path | None,
                db: str | None) -> None:
    """Send a TEST event through the threshold's actions now; exit 1 if any failed.

    The event is recorded (history shows it as TEST, never as a firing); a failed test
    delivery is not retried.
    """
    from rrdalarm.delivery.test_notification import TestNotificationError, send_test

    settings = settings_from(ctx, None, db, config)
    thresholds = thresholds_of(settings)
    with open_store(settings.db_url) as store:
        try:
            results = send_test(store, settings, thresholds, threshold_id, number)
        except TestNotificationError as exc:
            fail(str(exc))
    for r in results:
        click.echo(r.line())
    sys.exit(0 if all(r.ok for r in results) else 1)


@cli.command()
@click.option("--listen", help="HOST:PORT to serve on (default: [service] listen, 127.0.0.1:8080).")
@click.option("--no-scheduler", is_flag=True, help="Serve pages only; cron drives the checks.")
@click.option("--log-level", type=click.Choice(["debug", "info", "warning", "error"]), default="info",
              show_default=True)
@click.option("--rrd-root", type=click.Path(path_type=Path, file_okay=False, exists=True),
              help="Root of the RRD tree.")
@click.option("--db", help="SQLAlchemy database URL (default: SQLite in the data dir).")
@click.option("--rrdcached", callback=_rrdcached, metavar="ADDRESS", help=RRDCACHED_HELP)
@click.pass_context
@user_errors
def serve(ctx: click.Context, listen: str | None, no_scheduler: bool, log_level: str, rrd_root: Path | None,
          db: str | None, rrdcached: str | None) -> None:
    """Run the web app and the scheduler until SIGTERM or Ctrl-C."""
    from rrdalarm.cli.serve import serve_forever

    overrides: dict[str, Any] = {}
    if rrd_root is not None:
        overrides["rrd_root"] = rrd_root
    if db is not None:
        overrides["database_url"] = db
    if rrdcached is not None:
        overrides["rrdcached"] = rrdcached
    sys.exit(serve_forever(ctx.obj["settings_path"], overrides, listen, not no_scheduler, log_level))


@cli.command()
@click.argument("path", type=click.Path(path_type=Path, dir_okay=False), default="rrdalarm.toml")
@click.option("--rrd-root", type=click.Path(path_type=Path, file_okay=False), required=True,
              help="Root of the RRD tree to watch.")
@click.option("--data-dir", type=click.Path(path_type=Path, file_okay=False),
              help="rrdalarm's own state (default: beside the settings file, in ./data).")
@click.option("--force", is_flag=True, help="Overwrite an existing settings file.")
@user_errors
def init(path: Path, rrd_root: Path, data_dir: Path | None, force: bool) -> None:
    """Write a starter settings file (and an empty thresholds file beside it)."""
    from rrdalarm.common.fileutil import atomic_write_text

    if path.exists() and not force:
        fail(f"{path} exists; pass --force to overwrite it")
    base = path.resolve().parent
    data = (data_dir or base / "data").resolve()
    thresholds = base / "thresholds.toml"
    from rrdalarm.access.tokens import ensure_token_file
    from rrdalarm.config.starter import starter_settings

    atomic_write_text(path, starter_settings(rrd_root.resolve(), thresholds, data, data / "log"))
    if not thresholds.exists():
        atomic_write_text(thresholds, "# rrdalarm thresholds: one [[threshold]] table each "
                          "(see config/thresholds.toml in the sources).\n")
    ensure_token_file(data / "api_token")
    click.echo(f"{path}: written; thresholds in {thresholds}, state in {data}; "
               f"API token for /start in {data / 'api_token'}")


@cli.command()
@click.argument("directory", type=click.Path(path_type=Path, file_okay=False))
@click.option("--now", "now", callback=_epoch, metavar="EPOCH", help="Last update time (default: now).")
@click.option("--days", type=float, default=1.0, show_default=True, help="Days of 60 s data.")
@user_errors
def demo(directory: Path, now: int | None, days: float) -> None:
    """Generate a demo RRD tree with settings and thresholds in DIRECTORY."""
    from rrdalarm.service.demo import generate_demo, write_demo_config

    directory = directory.resolve()
    tree = generate_demo(directory / "rrd", int(time.time()) if now is None else now, days=days)
    settings = write_demo_config(directory, tree.root, directory / "data")
    click.echo(f"{len(tree.files)} RRD files under {tree.root}; settings: {settings}")


@cli.group()
def user() -> None:
    """Users of the web pages (admin: edit; viewer: read). There is no default account."""


def _new_password(password_file: Path | None, random_pw: bool) -> tuple[str, bool]:
    """(password, whether to print it) from a file, a random one, or a prompt on a terminal."""
    from rrdalarm.access.users import random_password

    if password_file is not None:
        return read_config_text(password_file).strip(), False
    if random_pw:
        return random_password(), True
    if not sys.stdin.isatty():
        raise click.UsageError("no terminal to ask for the password: use --password-file FILE or --random")
    return click.prompt("Password", hide_input=True, confirmation_prompt=True), False


def _users_store(ctx: click.Context, db: str | None) -> Store:
    return open_store(settings_from(ctx, None, db).db_url)


def open_store(url: str) -> Store:
    """The database, opened (and migrated) only by the commands that use it: SQLAlchemy costs a third of a second."""
    from rrdalarm.store.database import open_store as open_it

    return open_it(url)


@user.command("add")
@click.argument("name")
@click.option("--role", type=click.Choice(["admin", "viewer"]), default="viewer", show_default=True)
@click.option("--password-file", type=click.Path(path_type=Path, dir_okay=False, exists=True),
              help="Read the password from this file (never from the command line).")
@click.option("--random", "random_pw", is_flag=True, help="Make a random password and print it once.")
@click.option("--db", help="SQLAlchemy database URL (default: SQLite in the data dir).")
@click.pass_context
@user_errors
def user_add(ctx: click.Context, name: str, role: str, password_file: Path | None, random_pw: bool,
             db: str | None) -> None:
    """Add a user."""
    from rrdalarm.access.users import UserError, add_user

    password, show = _new_password(password_file, random_pw)
    with _users_store(ctx, db) as store:
        try:
            add_user(store, name, password, role)
        except UserError as exc:
            fail(str(exc))
    click.echo(f"user {name} added ({role})" + (f"; password: {password}" if show else ""))


@user.command("passwd")
@click.argument("name")
@click.option("--password-file", type=click.Path(path_type=Path, dir_okay=False, exists=True))
@click.option("--random", "random_pw", is_flag=True, help="Make a random password and print it once.")
@click.option("--db", help="SQLAlchemy database URL (default: SQLite in the data dir).")
@click.pass_context
@user_errors
def user_passwd(ctx: click.Context, name: str, password_file: Path | None, random_pw: bool, db: str | None) -> None:
    """Set a user's password."""
    from rrdalarm.access.users import UserError, set_password

    password, show = _new_password(password_file, random_pw)
    with _users_store(ctx, db) as store:
        try:
            set_password(store, name, password)
        except UserError as exc:
            fail(str(exc))
    click.echo(f"password of {name} changed" + (f": {password}" if show else ""))


@user.command("del")
@click.argument("name")
@click.option("--db", help="SQLAlchemy database URL (default: SQLite in the data dir).")
@click.pass_context
@user_errors
def user_del(ctx: click.Context, name: str, db: str | None) -> None:
    """Delete a user."""
    from rrdalarm.access.users import UserError, delete_user

    with _users_store(ctx, db) as store:
        try:
            delete_user(store, name)
        except UserError as exc:
            fail(str(exc))
    click.echo(f"user {name} deleted")


@user.command("list")
@click.option("--db", help="SQLAlchemy database URL (default: SQLite in the data dir).")
@click.pass_context
@user_errors
def user_list(ctx: click.Context, db: str | None) -> None:
    """List users and their roles."""
    from rrdalarm.access.users import list_users
    from rrdalarm.report.render import fmt_time

    with _users_store(ctx, db) as store:
        accounts = list_users(store)
    for a in accounts:
        click.echo(f"{a.name:<24} {a.role:<7} since {fmt_time(a.created_at)}")
    if not accounts:
        click.echo("no users")


@cli.group()
def ntopng() -> None:
    """What an ntopng instance offers ([ntopng] url and credentials in the settings)."""


def _ntopng_client(ctx: click.Context) -> Any:
    from rrdalarm.common.secrets import SecretError
    from rrdalarm.sources.ntopng_client import NtopngClient

    settings: Settings = ctx.obj["settings"]
    if not settings.ntopng.url:
        raise ConfigError(settings.path, "no ntopng: set url in the [ntopng] table", field="url")
    try:
        return NtopngClient(settings.ntopng)
    except SecretError as exc:
        raise ConfigError(settings.path, str(exc), field="ntopng") from None


@ntopng.command("schemas")
@click.option("--entity", default="host", show_default=True, help="Entity type: host, iface, subnet, asn, ...")
@click.option("--ifid", type=int, default=0, show_default=True)
@click.pass_context
@user_errors
def ntopng_schemas(ctx: click.Context, entity: str, ifid: int) -> None:
    """List the timeseries schemas ntopng has for an entity type (ntopng 5.6 or later)."""
    from rrdalarm.sources.ntopng_client import NtopngError

    with _ntopng_client(ctx) as client:
        try:
            names = client.schemas(entity, ifid)
        except NtopngError as exc:
            fail(str(exc), 3)
    for name in names:
        click.echo(name)


@ntopng.command("series")
@click.argument("schema")
@click.argument("query")
@click.option("--since", default="now-1h", show_default=True, help="Window start (AT-style).")
@click.pass_context
@user_errors
def ntopng_series(ctx: click.Context, schema: str, query: str, since: str) -> None:
    """List the series SCHEMA QUERY expands to (e.g. host:traffic 'ifid:0,host:*'), with their newest values."""
    from rrdalarm.report.render import fmt_time, fmt_value
    from rrdalarm.rules.evaluate import newest_known, window_slice
    from rrdalarm.sources.ntopng import expand, fetch_limit, not_found_message, parse_query, query_problem, series_name
    from rrdalarm.sources.ntopng_client import NtopngError

    problem = query_problem(query)
    if problem:
        raise click.BadParameter(problem, param_hint="QUERY")
    now = int(time.time())
    try:
        begin, end = timespec.resolve_window(since, "now", now)
    except timespec.TimeSpecError as exc:
        raise click.BadParameter(str(exc), param_hint="--since") from None
    with _ntopng_client(ctx) as client:
        try:
            concrete = expand(client, parse_query(query))
            if not concrete:
                click.echo(f"{schema} {query}: nothing matches now")
            for tags in concrete:
                answer = client.timeseries(schema, dict(tags), begin, end, fetch_limit(begin, end))
                name = series_name(schema, tags)
                if not answer.found:  # no step, no points: nothing to place in the window
                    click.echo(f"{name}  no data: {not_found_message(schema)}")
                    continue
                lo, hi = window_slice(answer.first, answer.step, begin, end)
                if not answer.labels:
                    click.echo(f"{name}  (no data)")
                for label, values in answer.labels.items():
                    newest = newest_known(values[lo:hi], answer.first + lo * answer.step, answer.step)
                    value, at = (newest[1], newest[0]) if newest else (None, None)
                    click.echo(f"{name} {label}  {fmt_value(value)}  {fmt_time(at)}  step {answer.step} s")
        except NtopngError as exc:
            fail(str(exc), 3)


def program() -> None:
    """The `rrdalarm` program (the console script and `python -m rrdalarm`): `main`, then a quick exit.

    At exit the interpreter's collector walks every object the imports made, SQLAlchemy's
    above all: about 0.1 s of each check. Frozen, they are left to the process's end.
    """
    try:
        main()
    finally:
        gc.freeze()


def main() -> None:
    """Entry point; usage errors are one line (cron mails stay short)."""
    try:
        cli.main(prog_name="rrdalarm", standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.UsageError as exc:
        where = exc.ctx.command_path if exc.ctx else "rrdalarm"
        hint = f" (see '{where} --help')" if exc.ctx else ""
        fail(f"{exc.format_message()}{hint}", exc.exit_code)
    except click.ClickException as exc:
        fail(exc.format_message(), exc.exit_code)
    except click.exceptions.Abort:
        fail("aborted", 1)


# Silences and acknowledgements, and the cluster's commands, have modules of their own; importing
# them adds their commands to `cli`.
from rrdalarm.cli import cluster as _cluster  # noqa: E402,F401
from rrdalarm.cli import control as _control  # noqa: E402,F401
