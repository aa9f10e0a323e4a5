"""Fuzzing every route of the web app: query strings, forms and JSON bodies, for every role. Never a 500.

The routes come from app.url_map, so a route added later is fuzzed too. The app runs with TESTING, so an
exception a view lets out reaches the test instead of becoming an error page.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import pytest
from conftest import T0, Env, make_env, make_rrd, threshold
from flask import Flask
from flask.testing import FlaskClient
from fuzzing import AT_SPEC, NASTY, NUMBERS, TEXT, fuzz, unexpected
from hypothesis import given
from hypothesis import strategies as st
from werkzeug.routing import Rule

from rrdalarm.access.users import add_user
from rrdalarm.service.service import CheckService
from rrdalarm.web import create_app

TOKEN = "fuzz-api-token-0123456789"
ROLES = ("admin", "viewer", "token", "anonymous")
# Every parameter a view reads (grep request.args/form/get_json in web/), the editor's fields and some unknown.
PARAMS = ["q", "threshold", "severity", "status", "fragment", "page", "from", "to", "series", "ds", "file", "glob",
          "at", "range", "start", "end", "config", "noHTML", "format", "all", "for", "comment", "labels", "label",
          "scope", "back", "next", "token", "action", "limit", "entity", "ifid", "op", "name", "password", "id",
          "version", "copy_of", "source", "schema", "query", "cf", "type", "value", "repetitions", "rearm",
          "enabled", "action-0-type", "action-0-on", "action-0-file", "action-0-url", "action-0-secret",
          "action-1-type", "tuning-severity", "tuning-labels", "tuning-scale", "tuning-within", "tuning-unit",
          "tuning-keep_firing_for", "tuning-no_data", "tuning-stale_after", "tuning-clear_value", "csrf_token"]
VALUES = st.one_of(TEXT, AT_SPEC, NUMBERS.map(str), st.sampled_from(
    ["1", "0", "2", "a.rrd", "h/b.rrd", "**", "*.rrd", "above", "below", "critical", "FIRING", "1h", "7d", "json",
     "true", "preview", "save", "log", "webhook", "email", "script", "fire", "threshold", "series", "alarms"]))
PARAM_DICT = st.dictionaries(st.one_of(st.sampled_from(PARAMS), TEXT), VALUES, max_size=6)


@dataclass
class Site:
    app: Flask
    rules: list[tuple[Rule, str]]
    clients: dict[str, FlaskClient]


def routes(app: Flask) -> list[tuple[Rule, str]]:
    """Every (rule, method) of the app but the static files."""
    return [(rule, method) for rule in app.url_map.iter_rules() if rule.endpoint != "static"
            for method in sorted((rule.methods or set()) & {"GET", "POST"})]


def login(app: Flask, name: str) -> FlaskClient:
    client = app.test_client()
    answer = client.post("/login", data={"name": name, "password": "correct horse battery"})
    assert answer.status_code == 302, answer.get_data(as_text=True)
    return client


def fuzz_env(env: Env) -> None:
    """Two RRD files, thresholds over them (one with actions), a token, a thresholds_dir for /start?config=."""
    make_rrd(env.root / "a.rrd", {"x": [1, 9, 9, 9]}, end=T0)
    make_rrd(env.root / "h" / "b.rrd", {"x": [1, 2, 3], "y": [4, 5, 6]}, end=T0)
    env.write_thresholds(threshold(1, "a.rrd", actions=[{"type": "log", "file": "a.log"}])
                         + threshold(2, "h/*.rrd", severity="critical"))
    extra = env.base / "extra"
    extra.mkdir()
    (extra / "other.toml").write_text(threshold(3, "a.rrd"), encoding="utf-8")
    with env.settings_path.open("a", encoding="utf-8") as f:
        f.write(f'[service]\napi_token = "{TOKEN}"\nthresholds_dir = "{extra}"\n')


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    env = make_env(tmp_path_factory.mktemp("fuzz-web"))
    fuzz_env(env)
    service = CheckService(env.settings_path)
    for name in ("admin", "viewer"):
        add_user(service.store, name, "correct horse battery", name)
    app = create_app(service, {"TESTING": True, "WTF_CSRF_ENABLED": False})
    clients = {"admin": login(app, "admin"), "viewer": login(app, "viewer"), "token": app.test_client(),
               "anonymous": app.test_client()}
    clients["token"].environ_base["HTTP_AUTHORIZATION"] = f"Bearer {TOKEN}"
    yield Site(app, routes(app), clients)
    service.close()


PATH_ARGS = st.one_of(st.integers(-5, 5), st.integers(), st.sampled_from([1, 2, 3, 2**31, 2**63]), TEXT)


def url_for_rule(rule: Rule, values: list[Any]) -> str:
    """The rule's path with each <converter:name> replaced by a value (quoted; an int rule gets its text)."""
    parts = iter(values)
    return re.sub(r"<[^>]+>", lambda _m: quote(str(next(parts)).encode("utf-8", "surrogatepass"), safe=""),
                  rule.rule)


def encoded(params: dict[str, str]) -> dict[str, bytes]:
    # A lone surrogate cannot be sent as UTF-8: its bytes go as they are, as a client may send them.
    return {k.encode("utf-8", "surrogatepass").decode("latin-1"): v.encode("utf-8", "surrogatepass")
            for k, v in params.items()}


@fuzz("web routes", share=1.0)
@given(st.data())
def test_every_route_never_answers_500(site: Site, data: st.DataObject) -> None:
    rule, method = data.draw(st.sampled_from(site.rules), "route")
    role = data.draw(st.sampled_from(ROLES if rule.rule != "/logout" else ("anonymous", "token")), "role")
    path = url_for_rule(rule, [data.draw(PATH_ARGS) for _ in rule.arguments])
    query = data.draw(PARAM_DICT, "query")
    accept = data.draw(st.sampled_from(["text/html", "*/*", "application/json"]), "accept")
    kwargs: dict[str, Any] = {"query_string": encoded(query), "headers": {"Accept": accept}}
    if method == "POST":
        body = data.draw(PARAM_DICT, "body")
        if data.draw(st.booleans(), "as json"):
            kwargs["data"] = json.dumps(body | data.draw(st.dictionaries(TEXT, st.one_of(NUMBERS, st.lists(NASTY)),
                                                                         max_size=2)))
            kwargs["content_type"] = "application/json"
        else:
            kwargs["data"] = encoded(body)
    try:
        answer = site.clients[role].open(path, method=method, **kwargs)
    except Exception as exc:
        raise unexpected(exc, f"{method} {path} as {role}") from exc
    text = answer.get_data(as_text=True) if (answer.mimetype or "").startswith(("text/", "application/json")) else ""
    assert answer.status_code != 500, (method, path, role, text[:500])
    assert "Traceback" not in text, (method, path, role)
