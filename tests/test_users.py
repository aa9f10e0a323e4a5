"""Users: the CLI, argon2 hashes, login and logout with CSRF, rate limiting, roles reaching the pages."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import Env
from flask import Flask
from flask.testing import FlaskClient

from rrdalarm.service import CheckService
from rrdalarm.store import User, open_store
from rrdalarm.users import UserError, add_user, authenticate, delete_user, list_users, set_password


def test_cli_user_lifecycle(env: Env, tmp_path: Path) -> None:
    pw = tmp_path / "pw"
    pw.write_text("correct horse battery\n")
    added = env.run("user", "add", "alice", "--role", "admin", "--password-file", str(pw))
    assert added.returncode == 0 and "alice added (admin)" in added.stdout and "correct horse" not in added.stdout
    rand = env.run("user", "add", "bob", "--random")
    assert rand.returncode == 0
    password = rand.stdout.strip().rsplit(": ", 1)[1]
    assert len(password) >= 16
    assert env.run("user", "add", "bob", "--random").returncode == 2  # exists
    assert env.run("user", "add", "carol").returncode == 2  # no terminal, no password source
    listing = env.run("user", "list").stdout
    assert re.search(r"alice\s+admin", listing) and re.search(r"bob\s+viewer", listing)
    assert env.run("user", "passwd", "bob", "--password-file", str(pw)).returncode == 0
    store = open_store(env.settings().db_url)
    try:
        assert authenticate(store, "bob", "correct horse battery") is not None
        assert authenticate(store, "bob", password) is None
        with store.session() as s:
            hashes = [u.password_hash for u in s.query(User)]
        assert all(h.startswith("$argon2id$") for h in hashes)
    finally:
        store.close()
    assert env.run("user", "del", "bob").returncode == 0
    assert env.run("user", "del", "bob").returncode == 2
    assert "bob" not in env.run("user", "list").stdout


def test_rules_for_names_passwords_and_roles(env: Env) -> None:
    store = open_store(env.settings().db_url)
    try:
        with pytest.raises(UserError, match="at least 10"):
            add_user(store, "dan", "short", "viewer")
        with pytest.raises(UserError, match="user name"):
            add_user(store, "../x", "long enough pw", "viewer")
        with pytest.raises(UserError, match="role"):
            add_user(store, "dan", "long enough pw", "root")
        add_user(store, "dan", "long enough pw", "viewer")
        with pytest.raises(UserError, match="no user"):
            set_password(store, "nobody", "long enough pw")
        with pytest.raises(UserError, match="no user"):
            delete_user(store, "nobody")
        assert authenticate(store, "nobody", "long enough pw") is None
        assert [a.name for a in list_users(store)] == ["dan"]
    finally:
        store.close()


@pytest.fixture
def app(env: Env) -> Iterator[Flask]:
    from rrdalarm.web import create_app
    from rrdalarm.web.login import failures

    env.write_thresholds("")
    service = CheckService(env.settings_path)
    add_user(service.store, "alice", "correct horse battery", "admin")
    failures.clear("127.0.0.1")
    yield create_app(service)
    service.close()


def csrf(page: str) -> str:
    m = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page)
    assert m, page
    return m.group(1)


def login(client: FlaskClient, password: str) -> int:
    page = client.get("/login").get_data(as_text=True)
    return client.post("/login", data={"name": "alice", "password": password, "csrf_token": csrf(page)}).status_code


def test_login_logout_and_access(app: Flask) -> None:
    client = app.test_client()
    assert client.get("/report").status_code == 401
    browser = client.get("/report", headers={"Accept": "text/html"})
    assert browser.status_code == 302 and "/login?next=/report" in browser.headers["Location"]
    assert login(client, "wrong password!") == 401
    assert login(client, "correct horse battery") == 302
    assert client.get("/report").status_code == 200
    cookie = client.get_cookie("session")
    assert cookie is not None and cookie.http_only and cookie.same_site == "Lax"
    page = client.get("/login").get_data(as_text=True)
    assert client.post("/logout", data={"csrf_token": csrf(page)}).status_code == 302
    assert client.get("/report").status_code == 401


def test_login_needs_csrf(app: Flask) -> None:
    client = app.test_client()
    client.get("/login")
    assert client.post("/login", data={"name": "alice", "password": "correct horse battery"}).status_code == 400
    assert client.post("/logout").status_code == 400


def test_failed_logins_are_rate_limited(app: Flask) -> None:
    client = app.test_client()
    assert [login(client, f"wrong password {i}") for i in range(5)] == [401] * 5
    # Even the right password waits now.
    page = client.get("/login")
    assert page.status_code == 429 and "Too many failed logins" in page.get_data(as_text=True)


def test_next_cannot_leave_the_site(app: Flask) -> None:
    client = app.test_client()
    page = client.get("/login?next=//evil.example/x").get_data(as_text=True)
    r = client.post("/login?next=//evil.example/x",
                    data={"name": "alice", "password": "correct horse battery", "csrf_token": csrf(page)})
    assert r.status_code == 302 and r.headers["Location"] == "/report"
