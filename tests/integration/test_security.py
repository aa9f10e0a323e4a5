"""Security regressions over every route of the web app (enumerated from app.url_map, so new routes count).

Login or token on every route, CSRF on every POST, no path leaving the RRD root, no injection through
action parameters or graph definitions, HTML escaped on every page, no secret in any answer or log. The
field-fault findings have their own tests (test_users, test_history_pages, test_threshold_pages, test_points,
test_suggest, e2e/test_service); these cover the rules for all routes at once.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from conftest import T0, Env, make_env, make_rrd, threshold
from flask import Flask
from flask.testing import FlaskClient
from fuzzing import table
from werkzeug.routing import Rule

from rrdalarm.access.users import add_user
from rrdalarm.actions.base import Action
from rrdalarm.actions.email import EmailAction
from rrdalarm.actions.script import ScriptAction
from rrdalarm.actions.webhook import WebhookAction
from rrdalarm.plugins import validate_params
from rrdalarm.report.graphs import series_args
from rrdalarm.service.service import CheckService
from rrdalarm.web import create_app

MARK = "S3cr3tM4rker"
TOKEN = f"tok-{MARK}-0123456789"
PUBLIC = {"/login", "/healthz", "/metrics", "/static/<path:filename>", "/favicon.ico"}
EVIL = "<script>alert(1)</script>"
OUTSIDE = "outside-secret-content"


def routes(app: Flask, method: str) -> list[Rule]:
    return [r for r in app.url_map.iter_rules() if method in (r.methods or set()) and r.rule not in PUBLIC]


def concrete(rule: Rule) -> str:
    return re.sub(r"<[^>]+>", "1", rule.rule)


def install(env: Env) -> None:
    """Secrets with a marker in every place they can be set, names with markup, a file outside the root and
    a symlink to it inside."""
    secret = env.base / "outside.rrd"
    make_rrd(secret, {"x": [1, 2, 3]}, end=T0)
    (env.base / "outside.txt").write_text(OUTSIDE, encoding="utf-8")
    os.symlink(secret, env.root / "link.rrd")
    os.symlink(env.base, env.root / "up")
    make_rrd(env.root / f"{EVIL}.rrd", {"x": [1, 9, 9]}, end=T0)
    make_rrd(env.root / "a.rrd", {"x": [1, 9, 9]}, end=T0)
    hook = {"type": "webhook", "url": f"http://user:{MARK}@127.0.0.1:9/x?k={MARK}", "secret": MARK,
            "headers": {"X-Key": MARK}}
    env.write_thresholds(threshold(1, "a.rrd", name=f"n{EVIL}", description=EVIL, unit=EVIL)
                         + table("[[threshold.action]]", hook) + threshold(2, "*.rrd", name="all"))
    with env.settings_path.open("a", encoding="utf-8") as f:
        f.write(f'[service]\napi_token = "{TOKEN}"\n[smtp]\nhost = "127.0.0.1"\nusername = "u"\npassword = "{MARK}"\n'
                f'[ntopng]\nurl = "http://127.0.0.1:9"\ntoken = "{MARK}"\n')


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Flask, Env]]:
    env = make_env(tmp_path_factory.mktemp("security"))
    install(env)
    service = CheckService(env.settings_path)
    for name in ("admin", "viewer"):
        add_user(service.store, name, "correct horse battery", name)
    app = create_app(service, {"WTF_CSRF_ENABLED": True})
    service.run_check(wait=5)
    yield app, env
    service.close()


def login(app: Flask, name: str) -> FlaskClient:
    client = app.test_client()
    page = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page)
    assert token
    answer = client.post("/login", data={"name": name, "password": "correct horse battery",
                                         "csrf_token": token.group(1)})
    assert answer.status_code == 302
    return client


def test_every_route_needs_a_login_or_the_token(site: tuple[Flask, Env]) -> None:
    app, _ = site
    client = app.test_client()
    for method in ("GET", "POST"):
        for rule in routes(app, method):
            for accept in ("text/html", "*/*"):
                answer = client.open(concrete(rule), method=method, headers={"Accept": accept})
                refused = answer.status_code in (400, 401) or (
                    answer.status_code == 302 and "/login" in answer.headers["Location"])
                assert refused, (method, rule.rule, accept, answer.status_code)


def test_every_post_needs_csrf_from_a_session(site: tuple[Flask, Env]) -> None:
    app, _ = site
    admin = login(app, "admin")
    for rule in routes(app, "POST"):
        if rule.rule == "/logout":
            continue
        answer = admin.post(concrete(rule), data={"comment": "x", "for": "1h"})
        assert answer.status_code == 400, (rule.rule, answer.status_code)
    assert admin.post("/logout").status_code == 400


TRAVERSAL = ["../outside.txt", "../outside.rrd", "/etc/passwd", str(Path("/etc/passwd")), "..%2Foutside.rrd",
             "%2e%2e/outside.rrd", "%252e%252e%252foutside.rrd", "a.rrd\x00../../outside.rrd", "link.rrd",
             "up/outside.rrd", "up/outside.txt", "./../outside.rrd", "a/../../outside.rrd", "**/outside.rrd",
             "up/**", "\\..\\outside.rrd", "C:/outside.rrd"]


@pytest.mark.parametrize("payload", TRAVERSAL)
def test_paths_never_leave_the_root(site: tuple[Flask, Env], payload: str) -> None:
    app, _env = site
    admin = login(app, "admin")
    urls = [f"/api/suggest?q={quote(payload)}", f"/api/matches?glob={quote(payload)}",
            f"/api/ds?file={quote(payload)}", f"/api/ds?glob={quote(payload)}",
            f"/graph?threshold=2&file={quote(payload)}&ds=x", f"/api/points?threshold=2&series={quote(payload)}&ds=x",
            f"/series?threshold=2&series={quote(payload)}&ds=x", f"/thresholds/preview.png?glob={quote(payload)}"]
    for url in [*urls, *(u.replace(quote(payload), quote(quote(payload))) for u in urls)]:
        answer = admin.get(url)
        body = answer.get_data(as_text=True) if answer.mimetype != "image/png" else ""
        assert OUTSIDE not in body, (url, body[:300])
        assert answer.mimetype != "image/png" or answer.status_code != 200, url
        if url.startswith(("/api/points", "/api/ds?file")):
            assert answer.status_code != 200, url
        if url.startswith(("/api/suggest", "/api/matches")) and answer.is_json:
            listed = (answer.get_json() or {}).get("items", []) + (answer.get_json() or {}).get("sample", [])
            assert not any("outside" in str(item) for item in listed), (url, listed)
    token = {"Authorization": f"Bearer {TOKEN}"}
    answer = app.test_client().get(f"/start?format=json&config={quote(payload)}", headers=token)
    assert answer.status_code in (400, 404, 429), (payload, answer.status_code)


@pytest.mark.parametrize(("plugin", "params"), [
    (EmailAction, {"to": "ops@example.org\r\nBcc: all@example.org"}),
    (EmailAction, {"to": ["ops@example.org", "x@example.org>, <y@example.org"]}),
    (EmailAction, {"to": "ops@example.org", "subject_prefix": "[x]\r\nBcc: a@example.org"}),
    (WebhookAction, {"url": "http://example.org/\r\nHost: evil"}),
    (WebhookAction, {"url": "file:///etc/passwd"}),
    (WebhookAction, {"url": "http://example.org/", "headers": {"X-A": "v\r\nX-B: w"}}),
])
def test_action_parameters_cannot_inject(plugin: type[Action], params: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="parameter") as caught:
        validate_params(plugin, params)
    assert "\n" not in str(caught.value)


def test_script_arguments_are_not_read_by_a_shell() -> None:
    # The script action's own test runs a script with these arguments and sees them verbatim
    # (test_action_script.test_args_arrive_verbatim_without_a_shell); here: they are accepted as data.
    args = ["$(id)", ";", "`x`", "a b"]
    assert validate_params(ScriptAction, {"script": "notify", "args": args})["args"] == args


def test_graph_definitions_escape_separators(tmp_path: Path) -> None:
    path = tmp_path / "a:b\\c.rrd"
    args = series_args("out.png", path, "a:b.rrd", "x", "AVERAGE", T0 - 600, T0, 5.0, "t:\nLINE1:x")
    definition = next(a for a in args if a.startswith("DEF:"))
    assert definition == f"DEF:v={tmp_path!s}/a\\:b\\\\c.rrd:x:AVERAGE"
    assert all(not a.startswith(("DEF:", "LINE", "HRULE")) or "\n" not in a for a in args)


PAGES = ["/", "/report", "/thresholds", "/thresholds/1/edit", "/thresholds/1/duplicate", "/events",
         "/series?threshold=1&series=a.rrd&ds=x", "/deliveries", "/audit", "/silences", "/stats", "/trees",
         "/api/trees", "/api/silences", "/api/acks", "/api/points?threshold=1&series=a.rrd&ds=x", "/api/suggest?q=",
         "/api/matches?glob=*.rrd", "/api/ds?glob=*.rrd", "/healthz", "/metrics", "/?fragment=1"]


def test_markup_is_escaped_and_no_secret_shows_for_any_role(site: tuple[Flask, Env],
                                                             caplog: pytest.LogCaptureFixture) -> None:
    app, env = site
    caplog.set_level(logging.DEBUG)
    admin = login(app, "admin")
    silence = admin.get("/silences").get_data(as_text=True)
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', silence)
    assert csrf
    admin.post("/silences", data={"csrf_token": csrf.group(1), "threshold": "1", "series": "a.rrd",
                                  "for": "1h", "comment": EVIL})
    clients = {"admin": admin, "viewer": login(app, "viewer"), "token": app.test_client()}
    clients["token"].environ_base["HTTP_AUTHORIZATION"] = f"Bearer {TOKEN}"
    for role, client in clients.items():
        for page in PAGES:
            answer = client.get(page, headers={"Accept": "text/html"})
            body = answer.get_data(as_text=True)
            assert MARK not in body, (role, page)
            assert answer.status_code != 500, (role, page)
            if answer.mimetype == "text/html":
                assert EVIL not in body, (role, page)
    audit = clients["admin"].get("/audit").get_data(as_text=True)
    assert MARK not in audit and "&lt;script&gt;" in audit
    logs = caplog.text + "".join(p.read_text(errors="replace") for p in env.data.rglob("*.log"))
    assert MARK not in logs


@pytest.mark.parametrize("path", ["/silences/9223372036854775808/expire", "/silences/99999999999999999999/extend",
                                  "/api/silences/9223372036854775808/expire",
                                  "/api/silences/18446744073709551616/extend"])
def test_an_id_past_64_bits_is_not_found(site: tuple[Flask, Env], path: str) -> None:
    # Found by fuzzing: the id went to the database as it was and SQLite raised OverflowError (a 500).
    app, _ = site
    answer = app.test_client().post(path, json={"for": "1h"}, headers={"Authorization": f"Bearer {TOKEN}"})
    assert answer.status_code in (400, 403, 404), answer.status_code
    admin = login(app, "admin")
    page = admin.get("/silences").get_data(as_text=True)
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert csrf
    answer = admin.post(path, data={"csrf_token": csrf.group(1), "for": "1h"})
    assert answer.status_code in (302, 303, 400, 404), answer.status_code
