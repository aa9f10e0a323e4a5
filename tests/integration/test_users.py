"""Users: the CLI, argon2 hashes, login and logout with CSRF, rate limiting, roles reaching the pages."""

from __future__ import annotations

import os
import re
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from conftest import Env, WebApp
from flask import Flask
from flask.testing import FlaskClient

from rrdalarm.access.users import UserError, add_user, authenticate, delete_user, list_users, set_password
from rrdalarm.store.database import User, open_store


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
def app(env: Env, make_app: WebApp) -> Flask:
    env.write_thresholds("")
    app: Flask = make_app(env, [("alice", "correct horse battery", "admin")])
    return app


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


def logout(client: FlaskClient) -> None:
    page = client.get("/login").get_data(as_text=True)
    assert client.post("/logout", data={"csrf_token": csrf(page)}).status_code == 302


def replay(app: Flask, cookie: str) -> int:
    """What another browser holding a copy of `cookie` gets for /report."""
    other = app.test_client()
    other.set_cookie("session", cookie)
    return other.get("/report").status_code


def test_a_copied_cookie_stops_working_after_logout(app: Flask) -> None:
    client = app.test_client()
    assert login(client, "correct horse battery") == 302
    cookie = client.get_cookie("session")
    assert cookie is not None and replay(app, cookie.value) == 200
    logout(client)
    assert replay(app, cookie.value) == 401
    browser = app.test_client()
    browser.set_cookie("session", cookie.value)
    again = browser.get("/report", headers={"Accept": "text/html"})
    assert again.status_code == 302 and "/login" in again.headers["Location"]


def test_a_password_change_or_deleting_the_user_ends_sessions(app: Flask) -> None:
    store = app.extensions["rrdalarm"].store
    client = app.test_client()
    assert login(client, "correct horse battery") == 302
    assert client.get("/report").status_code == 200
    set_password(store, "alice", "another long password")
    assert client.get("/report").status_code == 401
    page = client.get("/login").get_data(as_text=True)
    assert client.post("/login", data={"name": "alice", "password": "another long password",
                                       "csrf_token": csrf(page)}).status_code == 302
    assert client.get("/report").status_code == 200
    delete_user(store, "alice")
    add_user(store, "alice", "another long password", "admin")  # the same name (and maybe id) again
    assert client.get("/report").status_code == 401


def test_rotating_the_token_ends_sessions_opened_with_it(app: Flask, env: Env) -> None:
    (env.base / "token").write_text("first-token-0123456789")
    with env.settings_path.open("a") as fh:
        fh.write('\n[service]\napi_token = { file = "token" }\n')
    client = app.test_client()
    assert client.get("/report?token=first-token-0123456789").status_code == 200
    assert client.get("/report").status_code == 200  # the browser session the link opened
    (env.base / "token").write_text("second-token-0123456789")
    assert client.get("/report").status_code == 401
    assert client.get("/report?token=second-token-0123456789").status_code == 200


def test_sessions_end_after_the_idle_time(app: Flask) -> None:
    assert app.permanent_session_lifetime.total_seconds() <= 12 * 3600
    client = app.test_client()
    assert login(client, "correct horse battery") == 302
    records = app.extensions["rrdalarm.access.sessions"]
    for entry in records.folder.iterdir():  # as if the login had not been used for 13 hours
        old = entry.stat().st_mtime - 13 * 3600
        os.utime(entry, (old, old))
    assert client.get("/report").status_code == 401


def login_from(client: FlaskClient, address: str, password: str) -> int:
    page = client.get("/login", environ_base={"REMOTE_ADDR": address}).get_data(as_text=True)
    return client.post("/login", data={"name": "alice", "password": password, "csrf_token": csrf(page)},
                       environ_base={"REMOTE_ADDR": address}).status_code


def test_failed_logins_are_counted_per_account_too(app: Flask) -> None:
    client = app.test_client()
    got = [login_from(client, f"10.0.0.{i}", f"wrong password {i}") for i in range(6)]
    assert got == [401] * 5 + [429]
    assert login_from(client, "10.0.0.99", "correct horse battery") == 429


def test_parallel_guesses_cannot_pass_the_limit(app: Flask) -> None:
    clients = [app.test_client() for _ in range(11)]
    tokens = [csrf(c.get("/login").get_data(as_text=True)) for c in clients]
    barrier = threading.Barrier(len(clients))

    def guess(i: int) -> int:
        barrier.wait()
        return clients[i].post("/login", data={"name": "alice", "password": f"wrong password {i}",
                                               "csrf_token": tokens[i]}).status_code

    with ThreadPoolExecutor(len(clients)) as pool:
        codes = list(pool.map(guess, range(len(clients))))
    assert codes.count(401) == 5 and codes.count(429) == 6


@pytest.mark.parametrize("target", ["/report\r\nSet-Cookie: x=1", "/\x00"])
def test_next_with_control_characters_is_a_400(app: Flask, target: str) -> None:
    client = app.test_client()
    page = client.get("/login").get_data(as_text=True)
    r = client.post("/login", query_string={"next": target},
                    data={"name": "alice", "password": "correct horse battery", "csrf_token": csrf(page)})
    assert r.status_code == 400


def test_get_start_needs_the_token_and_pages_forbid_framing(app: Flask) -> None:
    client = app.test_client()
    assert login(client, "correct horse battery") == 302
    # A cross-site link would carry the login cookie (SameSite=Lax): GET /start needs the token.
    assert client.get("/start?noHTML=true").status_code == 403
    page = client.get("/events")
    policy = page.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in policy and "script-src 'self'" in policy
    assert page.headers["X-Frame-Options"] == "DENY"
    token = csrf(client.get("/login").get_data(as_text=True))
    assert client.post("/start?noHTML=true", data={"csrf_token": token}).status_code == 200
    assert client.post("/start?noHTML=true").status_code == 400  # no CSRF token
