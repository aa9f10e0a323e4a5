"""/api/silences and /api/acks: who may see and who may make them, and what they do."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from conftest import T0, Env, WebApp, check, threshold
from flask import Flask
from flask.testing import FlaskClient

from rrdalarm.store.database import AuditEntry, Store, open_store

TOKEN = "tok-0123456789abcdef"
BEARER = {"Authorization": f"Bearer {TOKEN}"}
LOG = {"type": "log", "file": "a.log", "on": ["fire", "repeat", "ack"]}


@pytest.fixture
def app(env: Env, make_app: WebApp) -> Flask:
    env.settings_path.write_text(env.settings_path.read_text() + f'\n[service]\napi_token = "{TOKEN}"\n')
    env.rrd("web/a.rrd", {"x": [9] * 40})
    env.rrd("web/b.rrd", {"x": [9] * 40})
    env.write_thresholds(threshold(glob="web/*.rrd", rearm=0, actions=[LOG]))
    users = [("alice", "correct horse battery", "admin"), ("vic", "correct horse battery", "viewer")]
    app: Flask = make_app(env, users, WTF_CSRF_ENABLED=True)
    return app


def csrf(page: str) -> str:
    m = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page)
    assert m, page
    return m.group(1)


def logged_in(app: Flask, name: str) -> tuple[FlaskClient, str]:
    """A client logged in as `name`, and its CSRF token."""
    client = app.test_client()
    token = csrf(client.get("/login").get_data(as_text=True))
    got = client.post("/login", data={"name": name, "password": "correct horse battery", "csrf_token": token})
    assert got.status_code == 302
    return client, csrf(client.get("/login").get_data(as_text=True))


def db(env: Env) -> Store:
    return open_store(env.settings().db_url)


SILENCE = {"threshold": 1, "series": "web/a*", "for": "2h", "comment": "disk swap"}


Call = Callable[[FlaskClient, dict[str, str]], int]

ROUTES: dict[str, Call] = {
    "GET /api/silences": lambda c, h: c.get("/api/silences", headers=h).status_code,
    "POST /api/silences": lambda c, h: c.post("/api/silences", json=SILENCE, headers=h).status_code,
    "POST /api/silences/1/extend": lambda c, h: c.post("/api/silences/1/extend", json={"for": "1h"},
                                                       headers=h).status_code,
    "POST /api/silences/1/expire": lambda c, h: c.post("/api/silences/1/expire", headers=h).status_code,
    "GET /api/acks": lambda c, h: c.get("/api/acks", headers=h).status_code,
    "POST /api/acks": lambda c, h: c.post("/api/acks", json={"threshold": 1, "comment": "seen"},
                                          headers=h).status_code,
}
# What each may do, route by route in ROUTES' order: the token and an admin (with CSRF) everything; a viewer
# may only look. (GET silences, POST silences, extend, expire, GET acks, POST acks.)
CODES = {
    "anonymous": (401, 401, 401, 401, 401, 401),
    "viewer": (200, 403, 403, 403, 200, 403),
    "token as ?token=": (200, 403, 403, 403, 200, 403),
    "admin without CSRF": (200, 400, 400, 400, 200, 400),
    "admin": (200, 201, 200, 200, 200, 200),
    "token": (200, 201, 200, 200, 200, 200),
}
EXPECTED = {who: dict(zip(ROUTES, codes, strict=True)) for who, codes in CODES.items()}


@pytest.mark.parametrize("who", list(EXPECTED))
def test_permissions_on_every_route(app: Flask, env: Env, store: Store, who: str) -> None:
    check(env, store)
    headers: dict[str, str] = {}
    if who == "anonymous":
        client = app.test_client()
    elif who in ("token", "token as ?token="):
        client = app.test_client()
        headers = BEARER if who == "token" else {}
        if who == "token as ?token=":
            assert client.get(f"/report?token={TOKEN}").status_code == 200  # opens a token session
    else:
        client, token = logged_in(app, "vic" if who == "viewer" else "alice")
        headers = {"X-CSRFToken": token} if who in ("admin", "viewer") else {}
    got = {route: call(client, headers) for route, call in ROUTES.items()}
    assert got == EXPECTED[who]
    with db(env) as s:
        made = [(a.user, a.change) for a in s.audit()]
    author = {"admin": "alice", "token": "token"}.get(who)
    assert made == ([(author, "ack"), (author, "expire"), (author, "extend"), (author, "silence")] if author else [])


def test_silences_over_http_end_to_end(app: Flask, env: Env, store: Store) -> None:
    check(env, store)
    client = app.test_client()
    made = client.post("/api/silences", json=SILENCE | {"labels": {}}, headers=BEARER)
    assert made.status_code == 201, made.get_json()
    body = made.get_json()
    assert body["firing_matched"] == 1
    assert body["silence"]["author"] == "token" and body["silence"]["state"] == "active"
    sid = body["silence"]["id"]
    listed = client.get("/api/silences", headers=BEARER).get_json()["silences"]
    assert [s["id"] for s in listed] == [sid]
    wrong = client.post("/api/silences", json={"threshold": 9, "for": "1h", "comment": "x"}, headers=BEARER)
    assert wrong.status_code == 400 and wrong.get_json() == {"error": "no threshold with id 9 in the thresholds file"}
    assert client.post("/api/silences", json={"for": "1h"}, headers=BEARER).status_code == 400
    assert client.post("/api/silences", data="[1]", content_type="application/json",
                       headers=BEARER).status_code == 400
    longer = client.post(f"/api/silences/{sid}/extend", json={"for": "30min"}, headers=BEARER)
    assert longer.status_code == 200
    assert longer.get_json()["silence"]["ends_at"] == body["silence"]["ends_at"] + 1800
    assert client.post(f"/api/silences/{sid}/extend", json={}, headers=BEARER).status_code == 400
    assert client.post("/api/silences/99/extend", json={"for": "1h"}, headers=BEARER).status_code == 404
    assert client.post(f"/api/silences/{sid}/expire", headers=BEARER).status_code == 200
    assert client.post(f"/api/silences/{sid}/extend", json={"for": "1h"}, headers=BEARER).status_code == 409
    assert client.post(f"/api/silences/{sid}/expire", headers=BEARER).status_code == 409
    assert client.post("/api/silences/99/expire", headers=BEARER).status_code == 404
    assert client.get("/api/silences", headers=BEARER).get_json()["silences"] == []
    assert [s["expired_by"] for s in client.get("/api/silences?all=1", headers=BEARER).get_json()["silences"]] == [
        "token"]
    with db(env) as s:
        assert s.count(AuditEntry) == 3


def test_acks_over_http_stop_repeats(app: Flask, env: Env, store: Store) -> None:
    check(env, store)
    client, token = logged_in(app, "alice")
    got = client.post("/api/acks", json={"threshold": 1, "series": "web/a.rrd", "comment": "replacing"},
                      headers={"X-CSRFToken": token})
    assert got.status_code == 200
    body = got.get_json()
    assert body["acknowledged"] == [{"threshold": 1, "series": "web/a.rrd", "ds": "x"}]
    assert [d["ok"] for d in body["deliveries"]] == [True]
    [acked] = client.get("/api/acks").get_json()["acknowledged"]
    assert (acked["series"], acked["by"], acked["comment"]) == ("web/a.rrd", "alice", "replacing")
    r = check(env, store, at=T0 + 60)
    assert {row.file: row.status.value for row in r.rows} == {"web/a.rrd": "FIRING", "web/b.rrd": "ALARM FIRED"}
    none = client.post("/api/acks", json={"threshold": 5, "comment": "x"}, headers={"X-CSRFToken": token})
    assert none.status_code == 400 and "no FIRING series" in none.get_json()["error"]
    assert client.post("/api/acks", json={"comment": "x"}, headers={"X-CSRFToken": token}).status_code == 400
