"""The threshold form: fields for one threshold and its actions, validated by the model's own rules.

The form only turns text into the TOML shape; `threshold_from_dict` and the
check's action planning decide what is valid, so the page and the loader can
never disagree.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from flask_wtf import FlaskForm
from werkzeug.datastructures import MultiDict
from wtforms import BooleanField, HiddenField, SelectField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import Length

from rrdalarm.common.fileutil import split_lines
from rrdalarm.common.secrets import redact_url
from rrdalarm.config.thresholds import threshold_problems
from rrdalarm.config.tuning import TUNING_FIELDS
from rrdalarm.delivery.dispatch import DEFAULT_WHEN, WHEN, plan_action
from rrdalarm.model.definitions import CONSOLIDATION_FUNCTIONS, DEFAULT_SOURCE, LOCAL_TREE, ActionSpec, Threshold
from rrdalarm.plugins import Action, Param, own_params
from rrdalarm.sources.base import Field, Source

SPARE_SLOTS = 2
MAX_SLOTS = 20


class ThresholdForm(FlaskForm):  # type: ignore[misc]
    version = HiddenField()
    copy_of = HiddenField()
    id = StringField("Id", validators=[Length(max=12)])
    name = StringField("Name", validators=[Length(max=255)])
    source = SelectField("Source", choices=[SelectChoice("rrd", "RRD files")])
    glob = StringField("Files (glob relative to the RRD root)", validators=[Length(max=1024)])
    schema = StringField("ntopng schema", validators=[Length(max=255)])
    query = StringField("ntopng query", validators=[Length(max=1024)])
    ds = StringField("Data sources (comma-separated; empty: all)", validators=[Length(max=1024)])
    cf = SelectField("Consolidation", choices=[SelectChoice(c) for c in CONSOLIDATION_FUNCTIONS])
    type = SelectField("Alarm when the value is", choices=[SelectChoice("above"), SelectChoice("below")])
    value = StringField("Limit", validators=[Length(max=64)])
    repetitions = StringField("Repetitions (consecutive points)", validators=[Length(max=12)])
    start = StringField("Window start", validators=[Length(max=64)])
    end = StringField("Window end", validators=[Length(max=64)])
    rearm = StringField("Re-arm (seconds before acting again)", validators=[Length(max=12)])
    enabled = BooleanField("Enabled")
    tree = StringField("Tree (read by its workers; empty: this machine)", validators=[Length(max=64)])
    source_values: Mapping[str, Any] = {}
    """The values of the sources' own fields shown in the page (from the threshold, or as posted)."""
    tuning_texts: Mapping[str, str] = {}
    """The tuning inputs' texts shown in the page (each field as the file has it, or as posted)."""
    tuning_errors: Mapping[str, str] = {}
    """Tuning inputs that do not even give a value to check (a label line without "="), by field."""


TUNING_PREFIX = "tuning-"


@dataclass
class TuningInput:
    """One alarm-tuning field (config.tuning.TUNING_FIELDS) as the template draws it."""

    name: str
    input_name: str
    label: str
    help: str
    kind: str  # number, text, choice or labels
    choices: tuple[str, ...]
    value: str


def tuning_inputs(texts: Mapping[str, str]) -> list[TuningInput]:
    """An input per tuning field, in the table's order, filled from `texts`."""
    return [TuningInput(name, TUNING_PREFIX + name, spec.label, spec.help, spec.kind, spec.choices,
                        texts.get(name, "")) for name, spec in TUNING_FIELDS.items()]


def _typed_text(raw: Any) -> str:
    if isinstance(raw, Mapping):
        return "\n".join(f"{k}={v}" for k, v in raw.items())
    if isinstance(raw, float):
        return repr(raw).removesuffix(".0")
    return str(raw)


def tuning_texts(t: Threshold) -> dict[str, str]:
    """What the tuning inputs show for a saved threshold: each field as the file has it ("80M", "10min")."""
    return {name: _typed_text(raw) for name, raw in t.tuning.typed.items() if name in TUNING_FIELDS}


def _labels(text: str) -> dict[str, str] | str:
    """key=value lines as a table, or why they are not."""
    out: dict[str, str] = {}
    for n, line in enumerate(split_lines(text), 1):
        if not line.strip():
            continue
        key, sep, value = line.partition("=")
        if not sep or not key.strip():
            return f"line {n} ({line.strip()!r}) is not key=value"
        out[key.strip()] = value.strip()
    return out


def tuning_values(formdata: Mapping[str, str]) -> tuple[dict[str, Any], dict[str, str], dict[str, str]]:
    """(the tuning keys of the TOML table, the texts as posted, errors by field) from the posted form.

    An empty input leaves its key out (the default); numbers become numbers and anything else stays
    text, so that "80M" or "10min" is written as typed and the loader's message names it.
    """
    values: dict[str, Any] = {}
    texts: dict[str, str] = {}
    errors: dict[str, str] = {}
    for name, spec in TUNING_FIELDS.items():
        texts[name] = text = formdata.get(TUNING_PREFIX + name) or ""
        if not text.strip():
            continue
        if spec.kind == "labels":
            labels = _labels(text)
            if isinstance(labels, str):
                errors[name] = labels
            elif labels:
                values[name] = labels
        elif spec.kind in ("text", "choice"):
            values[name] = text.strip()
        else:
            values[name] = _number(text.strip(), int)
    return values, texts, errors


@dataclass
class SourceInput:
    """One declared field of a source (Source.fields), as the generic source template draws it."""

    name: str
    label: str
    kind: str  # text or number
    value: str
    help: str
    required: bool


def source_inputs(plugins: Mapping[str, type[Source]],
                  values: Mapping[str, Any]) -> dict[str, tuple[str, list[SourceInput]]]:
    """Each source's label and inputs, filled from `values` (field name -> value)."""
    out = {}
    for name, plugin in plugins.items():
        inputs = [SourceInput(key, spec.label or key, "number" if spec.type in (int, float) else "text",
                              "" if values.get(key) is None else str(values.get(key, "")), spec.help, spec.required)
                  for key, spec in plugin.fields.items()]
        out[name] = (plugin.label or name, inputs)
    return out


@dataclass
class ParamField:
    """One parameter input of an action slot, as the template draws it."""

    name: str
    input_name: str
    kind: str  # text, number, checkbox, lines, password
    value: str
    help: str
    required: bool
    sensitive: bool
    is_set: bool = False


@dataclass
class ActionSlot:
    index: int
    type: str
    on: list[str]
    fields: dict[str, list[ParamField]] = field(default_factory=dict)


def is_sensitive(plugin: str, name: str, spec: Param) -> bool:
    """Whether the page must never show the value (the plugin declares it secret)."""
    return spec.secret


def _shown(spec: Param, value: Any) -> str:
    """A parameter's value as the page shows it: a target URL without its user info and query values."""
    text = _param_text(spec, value)
    return redact_url(text) if spec.target else text


def _number(text: str, kind: type) -> Any:
    """A number when the text is one; otherwise the text, so the model's message names it."""
    try:
        return kind(text)
    except ValueError:
        try:
            as_float = float(text)
        except ValueError:
            return text
        return int(as_float) if kind is int and as_float.is_integer() else as_float


def _param_text(spec: Param, value: Any) -> str:
    if value is None:
        return ""
    if spec.type is list and isinstance(value, list):
        return "\n".join(str(v) for v in value)
    if spec.type is dict and isinstance(value, Mapping):
        return "\n".join(f"{k}: {v if isinstance(v, str) else json.dumps(v)}" for k, v in value.items())
    if isinstance(value, bool):
        return "true" if value else ""
    return str(value)


def _param_value(spec: Param, text: str) -> Any:
    if spec.type is list:
        return [line.strip() for line in split_lines(text) if line.strip()]
    if spec.type is dict:
        out: dict[str, Any] = {}
        for line in split_lines(text):
            if line.strip():
                key, _, val = line.partition(":")
                out[key.strip()] = val.strip()
        return out
    if spec.type is bool:
        return text in ("y", "on", "true", "1")
    if spec.type in (int, float):
        return _number(text, spec.type)
    return text


def _kind(plugin: str, name: str, spec: Param) -> str:
    if spec.type in (list, dict):
        return "lines"
    if is_sensitive(plugin, name, spec):
        return "password"
    if spec.type is bool:
        return "checkbox"
    return "number" if spec.type in (int, float) else "text"


def action_slots(actions: Sequence[Mapping[str, Any]], plugins: Mapping[str, type[Action]]) -> list[ActionSlot]:
    """One slot per configured action plus spare empty ones; secrets are never put into the page."""
    slots = []
    specs = list(actions) + [{}] * SPARE_SLOTS
    for i, spec in enumerate(specs[:MAX_SLOTS]):
        kind = str(spec.get("type", ""))
        params = dict(spec)
        on = params.pop("on", list(DEFAULT_WHEN))
        slot = ActionSlot(i, kind, [on] if isinstance(on, str) else list(on))
        for pname, plugin in plugins.items():
            mine = own_params(plugin, params) if pname == kind else {}
            fields = []
            for name, pspec in plugin.params.items():
                sensitive = is_sensitive(pname, name, pspec)
                present = name in mine and mine[name] not in (None, "", [], {})
                fields.append(ParamField(
                    name=name, input_name=f"action-{i}-{pname}-{name}", kind=_kind(pname, name, pspec),
                    value="" if sensitive else _shown(pspec, mine.get(name)),
                    help=pspec.help, required=pspec.required, sensitive=sensitive, is_set=sensitive and present,
                ))
            slot.fields[pname] = fields
        slots.append(slot)
    return slots


def actions_from_request(form: MultiDict[str, str], plugins: Mapping[str, type[Action]],
                         previous: Sequence[Mapping[str, Any]]) -> tuple[list[dict[str, Any]], list[str]]:
    """The [[threshold.action]] tables the form describes, and what is missing from them.

    An empty secret field keeps the previous value, unless the action's target (its URL)
    changed: a secret meant for one receiver is never sent on to another, so it must be given again.
    """
    out: list[dict[str, Any]] = []
    missing: list[str] = []
    for i in range(MAX_SLOTS):
        kind = (form.get(f"action-{i}-type") or "").strip()
        if not kind:
            continue
        plugin = plugins.get(kind)
        if plugin is None:
            out.append({"type": kind})  # planning names the unknown type
            continue
        before = own_params(plugin, previous[i]) if i < len(previous) and previous[i].get("type") == kind else {}
        spec, again = _action_spec(form, i, kind, plugin, before)
        if again:
            missing.append(f"action {i + 1} ({kind}): its target changed, so enter {', '.join(again)} again "
                           "(secrets kept for the old address are not sent to a new one)")
        on = [w for w in form.getlist(f"action-{i}-on") if w in WHEN]
        if sorted(on) != sorted(DEFAULT_WHEN):
            spec["on"] = on or ["fire"]
        out.append(spec)
    return out, missing


def _action_spec(form: MultiDict[str, str], i: int, kind: str, plugin: type[Action],
                 before: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """One action's table from its slot, and the kept secrets that cannot be kept (its target moved)."""
    spec: dict[str, Any] = {"type": kind}
    kept: list[str] = []
    for name, pspec in plugin.params.items():
        text = (form.get(f"action-{i}-{kind}-{name}") or "").strip()
        if pspec.type is bool:
            if text:
                spec[name] = True
        elif text:
            # A target shown without its secrets and sent back unchanged keeps its stored value.
            unchanged = pspec.target and name in before and text == _shown(pspec, before[name])
            spec[name] = before[name] if unchanged else _param_value(pspec, text)
        elif is_sensitive(kind, name, pspec) and before.get(name) not in (None, "", [], {}):
            spec[name] = before[name]
            kept.append(name)
    if not before or not _target_moved(plugin, spec, before):
        return spec, []
    for name in kept:
        del spec[name]
    return spec, kept


def _target_moved(plugin: type[Action], spec: Mapping[str, Any], before: Mapping[str, Any]) -> bool:
    return any(p.target and spec.get(n) != before.get(n) for n, p in plugin.params.items())


def _field_value(spec: Field, text: str) -> Any:
    """A source field's value from its input: a number when it is one, so the source's message names the text."""
    text = text.strip()
    if spec.type in (int, float):
        return _number(text, spec.type) if text else spec.default
    return text


NEW_REARM = "3600"
"""What a threshold made in the editor re-arms after unless told otherwise: once an hour, not every check."""


def form_values(form: ThresholdForm, actions: list[dict[str, Any]], formdata: Mapping[str, str],
                sources: Mapping[str, type[Source]], new: bool = False) -> dict[str, Any]:
    """The TOML table the form describes (numbers converted where they are numbers)."""
    source = form.source.data or DEFAULT_SOURCE
    values: dict[str, Any] = {"id": _number((form.id.data or "").strip(), int), "name": (form.name.data or "").strip()}
    if source != DEFAULT_SOURCE:
        values["source"] = source
    plugin = sources.get(source)
    own = {key: _field_value(spec, formdata.get(key) or "") for key, spec in (plugin.fields if plugin else {}).items()}
    form.source_values = own
    values.update(own)
    values[plugin.series_key if plugin else "ds"] = [d.strip() for d in (form.ds.data or "").split(",") if d.strip()]
    rearm = (form.rearm.data or "").strip() or (NEW_REARM if new else "0")
    values.update({
        "cf": form.cf.data,
        "type": form.type.data,
        "value": _number((form.value.data or "").strip(), float),
        "repetitions": _number((form.repetitions.data or "0").strip() or "0", int),
        "start": (form.start.data or "").strip() or "now-1h",
        "end": (form.end.data or "").strip() or "now",
        "rearm": _number(rearm, int),
        "enabled": bool(form.enabled.data),
    })
    tree = (form.tree.data or "").strip()
    if tree and tree != LOCAL_TREE:
        values["tree"] = tree
    tuning, form.tuning_texts, form.tuning_errors = tuning_values(formdata)
    values.update(tuning)
    values["action"] = actions
    return values


FIELD_OF = {"label": "ds", "action": "action", "action.type": "action", "id": "id"}


def _bare(message: str) -> str:
    # The page shows the message beside its field: "threshold 3:" would only repeat the form's title.
    return re.sub(r"^threshold -?\d+: ", "", message)


def action_problems(actions: Sequence[Mapping[str, Any]], plugins: Mapping[str, type[Action]]) -> str:
    """What is wrong with the action tables, by the plugins' own rules (as the check plans them); '' when fine."""
    found = []
    for i, table in enumerate(actions):
        kind = str(table.get("type", ""))
        plugin = plugins.get(kind)
        try:
            if plugin is None:
                raise ValueError(f"action {kind} is not installed")
            plan_action(ActionSpec(kind, {k: v for k, v in table.items() if k != "type"}), plugin)
        except ValueError as exc:
            found.append(f"action {i + 1}: {exc}" if len(actions) > 1 else str(exc))
    return "; ".join(found)


def validate_values(values: Mapping[str, Any], where: str, sources: Sequence[str],
                    plugins: Mapping[str, type[Action]]) -> tuple[Threshold | None, dict[str, str]]:
    """(threshold, {}) when valid, else (None, {form field: message}): every field's mistake, by the model's rules."""
    threshold, problems = threshold_problems(values, where, sources)
    errors: dict[str, str] = {}
    for exc in problems:
        errors.setdefault(FIELD_OF.get(exc.field or "", exc.field or "form"), _bare(exc.message))
    if "action" not in errors:
        message = action_problems(values.get("action", []), plugins)
        if message:
            errors["action"] = message
    return (None, errors) if errors else (threshold, {})


def validate_form(form: ThresholdForm, values: Mapping[str, Any], where: str, sources: Sequence[str],
                  plugins: Mapping[str, type[Action]]) -> tuple[Threshold | None, dict[str, str]]:
    """As validate_values, with the tuning inputs that gave no value at all (a label line without "=")."""
    threshold, errors = validate_values(values, where, sources, plugins)
    errors = {**errors, **form.tuning_errors}  # such an input is left out of `values`: its own message
    return (None, errors) if errors else (threshold, {})


def place_errors(errors: Mapping[str, str],
                 drawn: Sequence[tuple[str, str]]) -> tuple[dict[str, str], list[tuple[str, str]]]:
    """(errors, summary): the page shows each error once, beside its field.

    A field the page does not draw (a CSRF token) has its error put at the top instead ("form"). The
    summary names the fields that need attention, in page order, as (field name, label), to link to them.
    """
    names = dict(drawn)
    placed = {k: v for k, v in errors.items() if k in names or k == "form"}
    stray = [v for k, v in errors.items() if k not in names and k != "form"]
    if stray:
        placed["form"] = "; ".join([placed["form"], *stray] if "form" in placed else stray)
    return placed, [(name, label) for name, label in drawn if name in placed]


def fill_form(form: ThresholdForm, t: Threshold) -> None:
    form.id.data = str(t.id)
    form.name.data = t.name
    form.source.data = t.source
    form.source_values = dict(t.fields)
    for key, value in t.fields.items():
        if key in form:  # a source field the form draws itself (glob, schema, query)
            form[key].data = value
    form.ds.data = ", ".join(t.ds)
    form.cf.data = t.cf
    form.type.data = t.type.value
    typed = t.tuning.typed.get("value")
    form.value.data = typed if isinstance(typed, str) else repr(t.value).removesuffix(".0")  # "80M" as typed
    form.repetitions.data = str(t.repetitions)
    form.start.data = t.start
    form.end.data = t.end
    form.rearm.data = str(t.rearm)
    form.enabled.data = t.enabled
    form.tree.data = "" if t.tree == LOCAL_TREE else t.tree
    form.tuning_texts = tuning_texts(t)


def raw_actions(t: Threshold | None) -> list[dict[str, Any]]:
    return [{"type": a.type, **dict(a.params)} for a in t.actions] if t else []
