"""History pages: events, one series' timeline, deliveries, the audit log, and "Check now".

Pages only read (queries live in rrdalarm.store.database); /check-now runs a check through the
service like the scheduler does. Filters are parsed by pure functions that take the
clock as `now`, so a bad value becomes a one-line 400 message, never a traceback.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, Response, flash, redirect, render_template, request, url_for

from rrdalarm.check.lock import CheckBusy
from rrdalarm.common.errors import RequeueError, StoreError
from rrdalarm.common.secrets import origins_only, redact_config_text
from rrdalarm.config.thresholds import load_thresholds
from rrdalarm.model.definitions import Threshold
from rrdalarm.model.errors import ConfigError
from rrdalarm.model.states import DeliveryStatus, EventStatus, Severity
from rrdalarm.plugins import action_plugins, secret_keys, source_of_series, source_plugins
from rrdalarm.report.points import CHARTS_RRD_ONLY, RANGES
from rrdalarm.report.render import fmt_limit, fmt_time, fmt_value
from rrdalarm.store.database import AlarmEvent, Store

from .auth import current_account, require_access, require_admin, service
from .filters import FilterError, local_input, parse_choice, parse_int, parse_page, parse_text, parse_time

bp = Blueprint("history", __name__, template_folder="templates")

PAGE_SIZE = 50
EVENT_STATUSES = tuple(EventStatus)
SEVERITIES = tuple(s.value for s in Severity)
DELIVERY_STATUSES = tuple(DeliveryStatus)


@dataclass(frozen=True)
class EventFilter:
    threshold: int | None = None
    status: str | None = None
    since: int | None = None
    until: int | None = None
    page: int = 1
    text: str | None = None
    """Text the series (file or host) contains."""
    severity: str | None = None

    def query(self) -> dict[str, str]:
        """The filter as query arguments without the page: links to other pages keep it."""
        pairs = {"q": self.text, "threshold": self.threshold, "severity": self.severity, "status": self.status,
                 "from": self.since, "to": self.until}
        return {k: str(v) for k, v in pairs.items() if v is not None}

    def form(self) -> dict[str, str]:
        """The values the filter form shows."""
        return {"q": self.text or "", "threshold": "" if self.threshold is None else str(self.threshold),
                "severity": self.severity or "", "status": self.status or "",
                "from": local_input(self.since), "to": local_input(self.until)}


def event_filter(args: Mapping[str, str], now: int, statuses: Iterable[str]) -> EventFilter:
    """The events page's filter from its query arguments; FilterError names the bad one."""
    since = parse_time(args.get("from"), now, "from")
    until = parse_time(args.get("to"), now, "to")
    if since is not None and until is not None and since > until:
        raise FilterError(f"from ({fmt_time(since)}) is after to ({fmt_time(until)})")
    return EventFilter(
        threshold=parse_int(args.get("threshold"), "threshold"),
        status=parse_choice(args.get("status"), statuses, "status"),
        since=since,
        until=until,
        page=parse_page(args.get("page")),
        text=parse_text(args.get("q"), "file or host"),
        severity=parse_choice(args.get("severity"), SEVERITIES, "severity"),
    )


@dataclass(frozen=True)
class SeriesKey:
    threshold: int
    series: str
    ds: str


def series_key(args: Mapping[str, str]) -> SeriesKey:
    """threshold, series and ds of the timeline page; all three must be given (ds may be empty)."""
    threshold = parse_int(args.get("threshold"), "threshold")
    name, ds = args.get("series", ""), args.get("ds")
    if threshold is None or not name or ds is None:
        raise FilterError("the series page needs threshold, series and ds")
    if len(name) > 1024 or len(ds) > 255:
        raise FilterError("series or ds is too long")
    return SeriesKey(threshold, name, ds)


def page_links(endpoint: str, query: Mapping[str, str], page: int, more: bool) -> dict[str, str | None]:
    """URLs of the newer and older pages (None where there is none), keeping the filter."""
    def link(n: int) -> str:
        # Page 1 is the plain URL, so the first page has one address.
        args: dict[str, Any] = dict(query) | ({"page": str(n)} if n > 1 else {})
        return url_for(endpoint, **args)

    return {"newer": link(page - 1) if page > 1 else None, "older": link(page + 1) if more else None}


# Views.


@bp.errorhandler(StoreError)
def store_error(exc: StoreError) -> Response:
    """A database that cannot answer: its one-line message, not an error page with a traceback."""
    return Response(f"{exc}\n", 500, {"Content-Type": "text/plain; charset=utf-8"})


def _render(template: str, status: int = 200, **context: Any) -> tuple[str, int]:
    tz = time.strftime("%Z") or time.strftime("%z")
    # Delivery errors written before messages named only a URL's origin may carry a token in its path.
    return render_template(template, fmt_time=fmt_time, fmt_value=fmt_value, fmt_limit=fmt_limit, tz=tz,
                           hide_urls=origins_only, **context), status


def _offset(page: int) -> int:
    return (page - 1) * PAGE_SIZE


def _split(rows: list[Any]) -> tuple[list[Any], bool]:
    """A page of rows fetched with one extra, and whether an older page exists."""
    return rows[:PAGE_SIZE], len(rows) > PAGE_SIZE


def _configured() -> list[Threshold]:
    svc = service()
    try:
        return load_thresholds(svc.thresholds_file(svc.settings(), None))
    except ConfigError:
        return []  # pages still show every threshold that has events, values without a unit


def threshold_choices(store: Store, configured: list[Threshold] | None = None) -> dict[int, str]:
    """Thresholds seen in events, with the names of the thresholds file where it can be read."""
    names = store.event_thresholds()
    names |= {t.id: t.name for t in (_configured() if configured is None else configured)}
    return dict(sorted(names.items()))


def unit_lookup(configured: list[Threshold]) -> Callable[[Any], str]:
    """An event's display unit: its own when it carries one, else its threshold's in the file now."""
    units = {t.id: t.tuning.unit for t in configured}

    def unit(event: Any) -> str:
        return getattr(event, "unit", None) or units.get(event.threshold_id, "")

    return unit


def series_link(event: AlarmEvent) -> str:
    return url_for("history.series", threshold=event.threshold_id, series=event.series, ds=event.ds)


@bp.get("/events")
@require_access
def events() -> tuple[str, int]:
    """Alarm events, newest first: filter by threshold, status and time range."""
    store = service().store
    statuses = sorted(set(EVENT_STATUSES) | set(store.event_statuses()))
    configured = _configured()
    thresholds = threshold_choices(store, configured)
    unit = unit_lookup(configured)
    try:
        f = event_filter(request.args, int(time.time()), statuses)
    except FilterError as exc:
        return _render("events.html", 400, error=str(exc), form=dict(request.args), statuses=statuses,
                       severities=SEVERITIES, thresholds=thresholds, rows=[], links={}, page=1,
                       series_link=series_link, unit=unit)
    rows, more = _split(store.find_events(threshold=f.threshold, status=f.status, since=f.since, until=f.until,
                                          containing=f.text, severity=f.severity, limit=PAGE_SIZE + 1,
                                          offset=_offset(f.page)))
    if f.threshold is not None and f.threshold not in thresholds:
        thresholds[f.threshold] = "(not in the thresholds file)"
    return _render("events.html", error=None, form=f.form(), statuses=statuses, severities=SEVERITIES,
                   thresholds=thresholds, rows=rows, links=page_links("history.events", f.query(), f.page, more),
                   page=f.page, series_link=series_link, unit=unit)


@bp.get("/series")
@require_access
def series() -> tuple[str, int]:
    """One series: its stored state, a chart (RRD files only), its events and the deliveries that carried them."""
    store = service().store
    statuses = sorted(set(EVENT_STATUSES) | set(store.event_statuses()))
    try:
        key = series_key(request.args)
        page = parse_page(request.args.get("page"))
        status = parse_choice(request.args.get("status"), statuses, "status")
    except FilterError as exc:
        return _render("series.html", 400, error=str(exc), key=None)
    rows, more = _split(store.find_events(threshold=key.threshold, series=key.series, ds=key.ds, status=status,
                                          limit=PAGE_SIZE + 1, offset=_offset(page)))
    deliveries = store.deliveries_with_events(e.id for e in rows)
    # Only a source of RRD files has a file to draw; the graph route would only answer 404.
    source = source_plugins().get(source_of_series(key.series))
    graph = None if source is None or not source.rrd_files else url_for(
        "report.graph", threshold=key.threshold, file=key.series, ds=key.ds, at=int(time.time()))
    query = {"threshold": str(key.threshold), "series": key.series, "ds": key.ds}
    if status:
        query["status"] = status
    configured = _configured()
    chart = graph and url_for("charts.points", threshold=key.threshold, series=key.series, ds=key.ds)
    return _render("series.html", error=None, key=key, unit=unit_lookup(configured), chart=chart, ranges=RANGES,
                   chart_note=None if graph else CHARTS_RRD_ONLY,
                   name=threshold_choices(store, configured).get(key.threshold, ""),
                   state=store.series_state(key.threshold, key.series, key.ds), graph=graph, rows=rows,
                   deliveries=deliveries, event_ids=store.event_ids_of, shown={e.id for e in rows},
                   links=page_links("history.series", query, page, more), page=page, statuses=statuses,
                   chosen=status or "")


@bp.get("/deliveries")
@require_access
def deliveries() -> tuple[str, int]:
    """The outbox, newest first, with every attempt; never the parameters (they may hold secrets)."""
    store = service().store
    actions = store.delivery_actions()
    try:
        status = parse_choice(request.args.get("status"), DELIVERY_STATUSES, "status")
        action = (request.args.get("action") or "").strip()[:255] or None
        page = parse_page(request.args.get("page"))
    except FilterError as exc:
        return _render("deliveries.html", 400, error=str(exc), form=dict(request.args), statuses=DELIVERY_STATUSES,
                       actions=actions, rows=[], links={}, page=1, event_ids=store.event_ids_of,
                       digests={})
    if action and action not in actions:
        actions.append(action)
    rows, more = _split(store.find_deliveries(status=status, action=action, limit=PAGE_SIZE + 1,
                                              offset=_offset(page)))
    query = {k: v for k, v in (("status", status), ("action", action)) if v}
    account = current_account()
    return _render("deliveries.html", error=None, form=query, statuses=DELIVERY_STATUSES, actions=actions,
                   rows=rows, links=page_links("history.deliveries", query, page, more), page=page,
                   event_ids=store.event_ids_of, digests=store.digest_messages(d.id for d, _ in rows),
                   admin=account is not None and account.role == "admin")


@bp.post("/deliveries/<ident>/requeue")
@require_admin
def requeue(ident: str) -> Response:
    """Queue a dead delivery again (audited under the admin's name); the deliverer sends it at its next run."""
    account = current_account()
    try:
        service().store.requeue_dead([ident[:64]], since=None, by=account.name if account else "?",
                                     now=int(time.time()))
    except RequeueError as exc:
        flash(f"Delivery not requeued: {exc}", "error")
    else:
        flash(f"Delivery {ident} requeued.")
    return redirect(_back_to_deliveries(), 303)  # type: ignore[return-value]


def _back_to_deliveries() -> str:
    """The deliveries page the button was on (its filter and page kept), else the plain one."""
    ref = urlsplit(request.referrer or "")
    if ref.netloc == request.host and ref.path == url_for("history.deliveries"):
        return ref.path + (f"?{ref.query}" if ref.query else "")
    return url_for("history.deliveries")


@bp.get("/audit")
@require_access
def audit() -> tuple[str, int]:
    """Changes made through the threshold editor, newest first, each with its diff."""
    store = service().store
    thresholds = store.audit_thresholds()
    try:
        threshold = parse_int(request.args.get("threshold"), "threshold")
        page = parse_page(request.args.get("page"))
    except FilterError as exc:
        return _render("audit.html", 400, error=str(exc), form=dict(request.args), thresholds=thresholds,
                       rows=[], links={}, page=1)
    if threshold is not None and threshold not in thresholds:
        thresholds[threshold] = "(no changes recorded)"
    rows, more = _split(store.audit(threshold=threshold, limit=PAGE_SIZE + 1, offset=_offset(page)))
    query = {} if threshold is None else {"threshold": str(threshold)}
    # Entries written before diffs were redacted may hold secrets: redact again on the way out.
    secret, _ = secret_keys(action_plugins().values())
    return _render("audit.html", error=None, form=query, thresholds=thresholds, rows=rows,
                   links=page_links("history.audit", query, page, more), page=page,
                   redact=lambda diff: redact_config_text(diff, secret))


def _back() -> str:
    """The page the form was posted from, when it is one of ours; the events page otherwise."""
    ref = urlsplit(request.referrer or "")
    # The report is rendered outside Flask and shows no flash messages: come back to a page that does.
    report_paths = {url_for("report.last_report")}
    local = ref.path.startswith("/") and not ref.path.startswith(("//", "/\\"))  # "//x" would leave the site
    if ref.netloc == request.host and local and ref.path not in report_paths:
        return ref.path + (f"?{ref.query}" if ref.query else "")
    return url_for("history.events")


@bp.post("/check-now")
@require_access
def check_now() -> Response:
    """Run a check now (not rate-limited like /start, which is for cron) and show its report."""
    svc = service()
    try:
        result = svc.run_check(wait=svc.settings().lock_wait, want_ok=True)
    except CheckBusy:
        flash("Check not run: a check is already running; try again in a moment.", "error")
        return redirect(_back(), 303)  # type: ignore[return-value]
    except (ConfigError, StoreError) as exc:
        flash(f"Check failed: {(str(exc).splitlines() or ['error'])[0]}", "error")
        return redirect(_back(), 303)  # type: ignore[return-value]
    flash(f"Check done: {result.files_checked} files checked, {result.alarms_fired} alarms fired, "
          f"{result.firing} firing, {result.errors} unreadable.")
    return redirect(url_for("report.last_report"), 303)  # type: ignore[return-value]
