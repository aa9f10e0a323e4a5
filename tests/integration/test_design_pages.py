"""One design for every page, through the Flask test client: error pages and their content negotiation,
the favicon, the header on every page, the shared stylesheet, cards' labels and ISO times."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from conftest import Env, WebApp
from flask import Flask
from flask.testing import FlaskClient

HTML = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
PASSWORD = "correct horse battery"
TOKEN = "tok-123456789"
SECRET = "s3cr3t-in-the-exception"
STYLES = Path(__file__).resolve().parents[2] / "web" / "static" / "rrdalarm.css"


@pytest.fixture
def app(env: Env, make_app: WebApp) -> Flask:
    env.rrd("a.rrd", {"x": [1.0] * 5}, end=int(time.time()) // 60 * 60)  # the pages check "now"
    env.write_thresholds('[[threshold]]\nid = 1\nname = "a"\nglob = "a.rrd"\ntype = "above"\nvalue = 5\n')
    env.settings_path.write_text(env.settings_path.read_text() + f'\n[service]\napi_token = "{TOKEN}"\n')
    app: Flask = make_app(env, [("alice", PASSWORD, "admin"), ("victor", PASSWORD, "viewer")],
                          PROPAGATE_EXCEPTIONS=False)

    @app.get("/boom")
    def boom() -> str:
        raise RuntimeError(f"database password {SECRET} at /etc/rrdalarm/secret.toml")

    return app


def logged_in(app: Flask, name: str) -> FlaskClient:
    client = app.test_client()
    page = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page)
    assert token, page
    resp = client.post("/login", data={"name": name, "password": PASSWORD, "csrf_token": token.group(1)})
    assert resp.status_code == 302
    return client


def is_page(resp_text: str) -> bool:
    return resp_text.startswith("<!doctype html>") and 'href="/static/rrdalarm.css"' in resp_text


def test_a_browser_gets_error_pages_in_the_design(app: Flask) -> None:
    client = logged_in(app, "victor")
    missing = client.get("/no/such/page", headers=HTML)
    assert missing.status_code == 404 and missing.mimetype == "text/html"
    body = missing.get_data(as_text=True)
    assert is_page(body) and "<h1>Not found</h1>" in body and 'id="check-now"' in body
    refused = client.get("/thresholds/new", headers=HTML)
    assert refused.status_code == 403 and refused.mimetype == "text/html"
    body = refused.get_data(as_text=True)
    assert is_page(body) and "<h1>Forbidden</h1>" in body and "needs a user with the admin role" in body
    # Logged out: the same page, its header without the pages and Check now.
    anonymous = app.test_client().get("/nope", headers=HTML).get_data(as_text=True)
    assert is_page(anonymous) and 'id="check-now"' not in anonymous and "Log out" not in anonymous


def test_scripts_keep_plain_text_and_json(app: Flask) -> None:
    client = logged_in(app, "victor")
    for accept in ({}, {"Accept": "*/*"}, {"Accept": "application/json"}, {"Accept": "text/plain"}):
        resp = client.get("/no/such/page", headers=accept)
        assert resp.status_code == 404 and resp.mimetype == "text/plain", accept
        assert resp.get_data(as_text=True) == "There is no page at this address.\n"
        refused = client.get("/thresholds/new", headers=accept)
        assert (refused.status_code, refused.mimetype) == (403, "text/plain")
        assert refused.get_data(as_text=True).startswith("forbidden: changing thresholds")
    # Script paths answer text or JSON even to a browser's Accept header.
    api = client.post("/api/silences", json={}, headers=HTML)
    assert api.status_code == 403 and api.is_json and "forbidden" in api.get_json()["error"]
    assert client.get("/api/nothing-here", headers=HTML).get_json() == {"error": "There is no page at this address."}
    start = client.get("/start?noHTML=true", headers=HTML)
    assert (start.status_code, start.mimetype) == (403, "text/plain")
    assert client.get("/healthz", headers=HTML).is_json
    unauthenticated = app.test_client().get("/thresholds", headers={"Authorization": "Bearer wrong"})
    assert (unauthenticated.status_code, unauthenticated.mimetype) == (401, "text/plain")


def test_a_server_error_leaks_nothing(app: Flask) -> None:
    for client, headers in ((logged_in(app, "alice"), HTML), (app.test_client(), {})):
        resp = client.get("/boom", headers=headers)
        body = resp.get_data(as_text=True)
        assert resp.status_code == 500
        for leak in (SECRET, "RuntimeError", "Traceback", "secret.toml", "/etc/"):
            assert leak not in body, (leak, body)
        assert "could not answer this request" in body
        assert is_page(body) == (headers == HTML)


def test_favicon_is_served_and_linked(app: Flask) -> None:
    client = app.test_client()
    icon = client.get("/favicon.ico")
    assert icon.status_code == 200 and icon.mimetype == "image/svg+xml" and b"<svg" in icon.data
    assert client.get("/static/favicon.svg").status_code == 200
    login = client.get("/login").get_data(as_text=True)
    assert '<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">' in login


@pytest.mark.parametrize("path", ["/login", "/", "/report", "/thresholds", "/thresholds/new", "/events",
                                  "/deliveries", "/audit", "/silences", "/stats", "/trees",
                                  "/series?threshold=1&series=a.rrd&ds=x"])
def test_every_page_has_the_header_and_only_the_shared_stylesheet(app: Flask, path: str) -> None:
    client = logged_in(app, "alice")
    if path == "/report":
        token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/thresholds").get_data(as_text=True))
        assert token
        client.post("/check-now", data={"csrf_token": token.group(1)})
    page = client.get(path, headers=HTML).get_data(as_text=True)
    assert is_page(page), page[:300]
    assert '<header class="top">' in page and 'class="brand"' in page
    vendored = ["/static/vendor/uplot/uPlot.min.css"] if path.startswith("/series") else []
    assert re.findall(r'<link rel="stylesheet" href="([^"]+)"', page) == ["/static/rrdalarm.css", *vendored]
    if path != "/login":
        assert "<style" not in page
    if path != "/login":
        assert 'id="check-now"' in page and "alice (admin)" in page


def test_report_page_rows_are_cards_with_labels(app: Flask) -> None:
    client = app.test_client()
    resp = client.get("/start", headers={"Authorization": f"Bearer {TOKEN}", **HTML})
    page = resp.get_data(as_text=True)
    assert resp.status_code == 200 and is_page(page) and '<table class="report cards">' in page
    row = page.split('<tbody id="rows">', 1)[1].split("</tr>", 1)[0]
    labels = re.findall(r'<td data-label="([^"]+)"', row)
    assert labels == ["ID", "File", "DS", "Value", "Type", "Threshold", "Time", "Action", "Status", "Severity",
                      "Message"]
    assert re.search(r'data-label="Time">\d{4}-\d\d-\d\d \d\d:\d\d:\d\d</td>', row)


def test_stylesheet_has_the_variables_and_a_dark_theme() -> None:
    css = STYLES.read_text()
    for name in ("--bg", "--fg", "--muted", "--border", "--accent", "--danger", "--warn", "--ok", "--firing-bg",
                 "--surface"):
        assert re.search(rf"{name}:\s*#", css), name
    dark = css.split("@media (prefers-color-scheme: dark)", 1)[1].split("\n}\n", 1)[0]
    assert "--bg:" in dark and "--fg:" in dark
    assert "break-all" not in css and "overflow-wrap: anywhere" in css
