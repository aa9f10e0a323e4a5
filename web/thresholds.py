"""The threshold table and editor: add, edit, duplicate, enable/disable, delete, preview.

Reading is open to every user; changes need an admin. Every change goes through
rrdalarm.editor.thresholds_edit.commit (conflict check, whole-file validation, backup,
atomic write) and is recorded in the audit log. The service reads the file again
before each check, so a saved change applies at the next check.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from flask import Blueprint, Response, abort, flash, redirect, render_template, request, send_file, url_for
from flask_wtf import FlaskForm
from wtforms import HiddenField
from wtforms.fields.choices import SelectChoice

from rrdalarm.common.quantities import format_limit
from rrdalarm.delivery.dispatch import WHEN
from rrdalarm.delivery.test_notification import TestNotificationError, send_test
from rrdalarm.editor.overview import live_states
from rrdalarm.editor.preview import Preview, PreviewStatus
from rrdalarm.editor.suggest import SuggestError
from rrdalarm.editor.thresholds_edit import (
    Conflict,
    EditError,
    Snapshot,
    add_threshold,
    commit,
    delete_threshold,
    next_id,
    read_snapshot,
    replace_threshold,
    set_enabled,
)
from rrdalarm.model.definitions import DEFAULT_SOURCE, Settings, Threshold
from rrdalarm.model.errors import ConfigError
from rrdalarm.plugins import Action, available_actions, source_plugins
from rrdalarm.report.graphs import BadGraphRequest, GraphError, series_graph
from rrdalarm.report.render import fmt_value
from rrdalarm.rules.timespec import TimeSpecError, resolve_window
from rrdalarm.sources.base import Source

from .auth import current_account, require_access, require_admin, service
from .suggest import suggester
from .threshold_form import (
    NEW_REARM,
    SourceInput,
    ThresholdForm,
    TuningInput,
    action_slots,
    actions_from_request,
    fill_form,
    form_values,
    place_errors,
    raw_actions,
    source_inputs,
    tuning_inputs,
    validate_form,
)

bp = Blueprint("thresholds", __name__, template_folder="templates")

BACKTEST_PERIOD = 86400
# Graphs of a preview: enough to compare the firing series, few enough to load at once.
MAX_PREVIEW_GRAPHS = 6


class VersionForm(FlaskForm):  # type: ignore[misc]
    """The small forms of the table (enable, disable, delete): CSRF plus the file version they saw."""

    version = HiddenField()


def _snapshot() -> tuple[Settings, Snapshot]:
    svc = service()
    settings = svc.settings()
    return settings, read_snapshot(svc.thresholds_file(settings, None))


def _matched(thresholds: list[Threshold]) -> dict[int, int | None]:
    """Files each RRD threshold matches now, from the autocomplete's cached index (None: not a file source)."""
    counts: dict[int, int | None] = {t.id: None for t in thresholds}
    plugins = source_plugins()
    rrd = [t for t in thresholds if t.source in plugins and plugins[t.source].rrd_files]
    if not rrd:
        return counts
    try:
        paths = suggester()
        for t in rrd:
            counts[t.id] = paths.matches(t.glob).count
    except SuggestError:
        pass  # no usable RRD root: the check reports it; the table shows "–"
    return counts


def _is_admin() -> bool:
    account = current_account()
    return account is not None and account.role == "admin"


@bp.get("/thresholds")
@require_access
def table() -> Response | str | tuple[str, int]:
    try:
        _, snap = _snapshot()
    except (ConfigError, EditError) as exc:
        return render_template("thresholds.html", error=str(exc), rows=[], admin=False, form=None), 200
    ids = [t.id for t in snap.thresholds]
    live = live_states(service().store, ids)
    matched = _matched(snap.thresholds)
    rows = [(t, live[t.id], matched[t.id]) for t in snap.thresholds]
    form = VersionForm(version=snap.version)
    return render_template("thresholds.html", rows=rows, admin=_is_admin(), form=form, error=None,
                           path=snap.path, watched=_watched(snap.thresholds), limit_text=limit_text)


def limit_text(t: Threshold) -> str:
    """The limit with the threshold's unit: "80 MB/s" for value = "80M", unit = "B/s"; every digit of 1234567."""
    return format_limit(t.value, t.tuning.unit)


def _watched(thresholds: list[Threshold]) -> dict[int, str]:
    """What each threshold watches, as its source shows it."""
    plugins = source_plugins()
    return {t.id: plugins[t.source].display(t) if t.source in plugins else t.glob for t in thresholds}


def _fail(message: str) -> Response:
    flash(message, "error")
    return redirect(url_for("thresholds.table"))  # type: ignore[return-value]


def _record(change: str, t: Threshold | None, ident: int | None, path: str, diff: str) -> None:
    account = current_account()
    service().store.add_audit(
        at=int(time.time()), user=account.name if account else "?", change=change,
        threshold_id=t.id if t else ident, threshold_name=t.name if t else "", file=path, diff=diff,
    )


def _plugins(settings: Settings) -> Mapping[str, type[Action]]:
    return available_actions(settings.scripts_dir)


def _render_editor(form: ThresholdForm, slots: Any, *, ident: int | None, plugins: Mapping[str, type[Action]],
                   errors: dict[str, str] | None = None, preview: Any = None, backtest: Any = None,
                   graphs: PreviewGraphs | None = None, status: int = 200, unit: str = "",
                   saved: int = 0) -> tuple[str, int]:
    sources = source_inputs(_sources(), form.source_values)
    tuning = tuning_inputs(form.tuning_texts)
    placed, attention = place_errors(errors or {}, _drawn(form, sources, tuning))
    return render_template(
        "threshold_form.html", form=form, slots=slots, ident=ident, plugins=plugins, errors=placed,
        attention=attention, saved=saved, preview=preview, backtest=backtest, graphs=graphs or PreviewGraphs(),
        when_choices=tuple(WHEN), source_inputs=sources, tuning_inputs=tuning, fmt_value=fmt_value, unit=unit,
    ), status


def _drawn(form: ThresholdForm, sources: Mapping[str, tuple[str, list[SourceInput]]],
           tuning: list[TuningInput]) -> list[tuple[str, str]]:
    """(field name, label) of every input that shows its own error, in page order."""
    def label(name: str) -> str:
        return str(form[name].label.text)

    drawn = [(name, label(name)) for name in ("id", "name", "source")]
    drawn += [(i.name, label(i.name) if i.name in form else i.label) for _, inputs in sources.values() for i in inputs]
    drawn += [(name, label(name)) for name in ("ds", "type", "value", "repetitions", "cf", "start", "end", "rearm",
                                                 "tree")]
    drawn += [(t.name, t.label) for t in tuning]
    return [*dict(drawn).items(), ("action", "Actions")]


def _sources() -> dict[str, type[Source]]:
    """The installed sources, the default one first."""
    plugins = source_plugins()
    return {name: plugins[name] for name in sorted(plugins, key=lambda s: (s != DEFAULT_SOURCE, s))}


@bp.route("/thresholds/new", methods=["GET", "POST"])
@require_admin
def new() -> Response | tuple[str, int]:
    return _editor(None)


@bp.route("/thresholds/<int:ident>/edit", methods=["GET", "POST"])
@require_admin
def edit(ident: int) -> Response | tuple[str, int]:
    return _editor(ident)


@bp.get("/thresholds/<int:ident>/duplicate")
@require_admin
def duplicate(ident: int) -> Response | tuple[str, int]:
    return _editor(None, copy_from=ident)


def _editor(ident: int | None, copy_from: int | None = None) -> Response | tuple[str, int]:
    try:
        settings, snap = _snapshot()
        original = snap.get(ident) if ident is not None else None
    except (ConfigError, EditError) as exc:
        return _fail(str(exc))
    plugins = _plugins(settings)
    installed = _sources()
    sources = list(installed)
    form = ThresholdForm()
    form.source.choices = [SelectChoice(s, p.label or s) for s, p in installed.items()]
    if request.method == "GET":
        base = original
        form.version.data = snap.version
        if copy_from is not None:
            try:
                base = snap.get(copy_from)
            except EditError as exc:
                return _fail(str(exc))
        if base is not None:
            fill_form(form, base)
        else:
            form.start.data, form.end.data, form.repetitions.data = "now-1h", "now", "0"
            form.rearm.data = NEW_REARM
            form.source.data, form.cf.data, form.type.data, form.enabled.data = DEFAULT_SOURCE, "AVERAGE", "above", True
        if ident is None:
            form.id.data = str(next_id(snap.thresholds))
        if copy_from is not None and base is not None:
            form.name.data = f"copy of {base.name}"
            form.copy_of.data = str(copy_from)
        return _render_editor(form, action_slots(raw_actions(base), plugins), ident=ident, plugins=plugins,
                              saved=len(original.actions) if original is not None else 0)
    return _submit(form, settings, snap, original, ident, plugins, sources)


def _submit(form: ThresholdForm, settings: Settings, snap: Snapshot, original: Threshold | None, ident: int | None,
            plugins: Mapping[str, type[Action]], sources: list[str]) -> Response | tuple[str, int]:
    copied = None
    if ident is None and (form.copy_of.data or "").isdigit():
        copied = next((t for t in snap.thresholds if t.id == int(form.copy_of.data)), None)
    actions, missing = actions_from_request(request.form, plugins, raw_actions(original or copied))
    slots = action_slots(actions, plugins)
    values = form_values(form, actions, request.form, _sources(), new=ident is None)
    threshold, errors = _form_errors(form, values, snap, ident, plugins, sources)
    if missing:
        errors.setdefault("action", "; ".join(missing))
    if threshold is None or errors:
        return _render_editor(form, slots, ident=ident, plugins=plugins, errors=errors, status=400)
    if request.form.get("op") == "preview":
        return _preview(form, slots, settings, threshold, ident, plugins)
    try:
        # `snap` was read by this request; commit checks the version again under the file lock.
        if snap.version != form.version.data:
            raise Conflict(snap.path)
        text = add_threshold(snap.text, values) if ident is None else replace_threshold(snap.text, ident, values)
        done = commit(snap.path, form.version.data, text, plugins)
    except Conflict as exc:
        return _render_editor(form, slots, ident=ident, plugins=plugins, errors={"form": str(exc)}, status=409)
    except (EditError, ConfigError) as exc:
        return _render_editor(form, slots, ident=ident, plugins=plugins, errors={"form": str(exc)}, status=400)
    change = "edit" if ident is not None else ("duplicate" if copied else "add")
    _record(change, threshold, threshold.id, str(snap.path), done.diff)
    flash(f"Saved threshold {threshold.id} ({threshold.name}); the next check uses it.", "ok")
    return redirect(url_for("thresholds.table"))  # type: ignore[return-value]


def _form_errors(form: ThresholdForm, values: Mapping[str, Any], snap: Snapshot, ident: int | None,
                 plugins: Mapping[str, type[Action]], sources: list[str]) -> tuple[Threshold | None, dict[str, str]]:
    """Every field's first mistake at once: the form's own (length, CSRF), then the rule set's, then the id's."""
    errors = {} if form.validate() else {name: "; ".join(errs) for name, errs in form.errors.items()}
    threshold, found = validate_form(form, values, str(snap.path), sources, plugins)
    for name, message in found.items():
        errors.setdefault(name, message)
    taken = _id_problem(values.get("id"), snap, ident)
    if taken:
        errors.setdefault("id", taken)
    return (None, errors) if errors else (threshold, {})


def _id_problem(ident: Any, snap: Snapshot, editing: int | None) -> str:
    """Why this id cannot be saved (already used, or a saved threshold's changed), or ''."""
    if not isinstance(ident, int) or isinstance(ident, bool):
        return ""  # not a number: the rule set says so
    if editing is not None:
        return "" if ident == editing else ("the id of a saved threshold cannot change (its history is kept "
                                            "under it); duplicate it instead")
    other = next((t for t in snap.thresholds if t.id == ident), None)
    if other is None:
        return ""
    return f"id {ident} is already used by '{other.name}'; the next free id is {next_id(snap.thresholds)}"


@dataclass(frozen=True)
class PreviewGraph:
    """One series the preview draws: a matched file's DS with the limit line."""

    file: str
    ds: str
    url: str


@dataclass(frozen=True)
class PreviewGraphs:
    """The graphs of a preview: every series that would fire up to a limit (`more` left out), else the first one."""

    shown: tuple[PreviewGraph, ...] = ()
    more: int = 0
    firing: bool = False


def _preview(form: ThresholdForm, slots: Any, settings: Settings, threshold: Threshold, ident: int | None,
             plugins: Mapping[str, type[Action]]) -> tuple[str, int]:
    from rrdalarm.editor.preview import backtest, preview

    now = int(time.time())
    errors: dict[str, str] = {}
    result = report = None
    try:
        result = preview(settings, threshold, now)
        report = backtest(settings, threshold, now, period=BACKTEST_PERIOD)
    except ConfigError as exc:
        errors["form"] = str(exc)
    plugin = source_plugins().get(threshold.source)
    graphs = PreviewGraphs()
    if result is not None and plugin is not None and plugin.rrd_files:
        graphs = _preview_graphs(result, threshold, now)
    return _render_editor(form, slots, ident=ident, plugins=plugins, errors=errors, preview=result,
                          backtest=report, graphs=graphs, unit=threshold.tuning.unit)


def _preview_graphs(result: Preview, t: Threshold, now: int) -> PreviewGraphs:
    """A graph per series that would fire, up to MAX_PREVIEW_GRAPHS; none firing: the first one that is ok."""
    firing = [r for r in result.rows if r.status is PreviewStatus.WOULD_FIRE]
    rows = firing[:MAX_PREVIEW_GRAPHS] or [r for r in result.rows if r.status is PreviewStatus.OK][:1]
    shown = tuple(PreviewGraph(r.file, r.ds, url_for("thresholds.preview_graph", file=r.file, ds=r.ds, cf=t.cf,
                                                      value=repr(t.value), at=now)) for r in rows)
    # Count from the totals: the rows the preview lists may be cut short.
    return PreviewGraphs(shown, max(0, result.would_fire - len(shown)) if firing else 0, bool(firing))


@bp.get("/thresholds/preview.png")
@require_access
def preview_graph() -> Response:
    """One file's DS over the last day with a limit line (the limit is not saved anywhere yet)."""
    try:
        rel, ds, cf = request.args["file"], request.args["ds"], request.args.get("cf", "AVERAGE")
        value = float(request.args["value"])
        at = int(request.args.get("at") or time.time())
        start, end = resolve_window(f"end-{BACKTEST_PERIOD}s", str(at), at)
    except (KeyError, ValueError, TimeSpecError):
        return Response("preview.png needs file, ds, value (and optionally cf, at)\n", 400,
                        {"Content-Type": "text/plain"})
    if cf not in ("AVERAGE", "MIN", "MAX", "LAST"):
        abort(400)
    try:
        png = series_graph(service().settings(), rel, ds, cf, start, end, value, time.time(),
                           title=f"{rel} {ds}")
    except BadGraphRequest as exc:
        return Response(f"{exc}\n", 400, {"Content-Type": "text/plain; charset=utf-8"})
    except (GraphError, ConfigError) as exc:
        return Response(f"{exc}\n", 404, {"Content-Type": "text/plain; charset=utf-8"})
    return send_file(png, mimetype="image/png", max_age=60)


def _change(ident: int, change: str, edit: Any) -> Response:
    form = VersionForm()
    if not form.validate():
        abort(400)
    try:
        settings, snap = _snapshot()
        threshold = snap.get(ident)
        if snap.version != form.version.data:
            raise EditError(f"{snap.path} changed since this page was loaded; look again and retry")
        done = commit(snap.path, snap.version, edit(snap.text), _plugins(settings))
    except (ConfigError, EditError) as exc:
        return _fail(str(exc))
    _record(change, threshold, ident, str(snap.path), done.diff)
    past = {"enable": "Enabled", "disable": "Disabled", "delete": "Deleted"}[change]
    flash(f"{past} threshold {ident} ({threshold.name}).", "ok")
    return redirect(url_for("thresholds.table"))  # type: ignore[return-value]


@bp.post("/thresholds/<int:ident>/enable")
@require_admin
def enable(ident: int) -> Response:
    return _change(ident, "enable", lambda text: set_enabled(text, ident, True))


@bp.post("/thresholds/<int:ident>/disable")
@require_admin
def disable(ident: int) -> Response:
    return _change(ident, "disable", lambda text: set_enabled(text, ident, False))


@bp.post("/thresholds/<int:ident>/actions/<int:number>/test")
@require_admin
def test_action(ident: int, number: int) -> Response:
    """Send a TEST event through the saved action `number` (1-based) now; flash one line per target."""
    try:
        settings, snap = _snapshot()
        results = send_test(service().store, settings, snap.thresholds, ident, number)
    except (ConfigError, EditError, TestNotificationError) as exc:
        return _fail(str(exc))
    for r in results:
        flash(f"Test: {r.line()}", "ok" if r.ok else "error")
    return redirect(url_for("thresholds.edit", ident=ident))  # type: ignore[return-value]


@bp.route("/thresholds/<int:ident>/delete", methods=["GET", "POST"])
@require_admin
def delete(ident: int) -> Response | str:
    if request.method == "POST":
        return _change(ident, "delete", lambda text: delete_threshold(text, ident))
    try:
        _, snap = _snapshot()
        threshold = snap.get(ident)
    except (ConfigError, EditError) as exc:
        return _fail(str(exc))
    return render_template("threshold_delete.html", t=threshold, form=VersionForm(version=snap.version))
