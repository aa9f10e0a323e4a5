"""/report's filters live in the query string: the first page is narrowed on the server too (no script needed)."""

from __future__ import annotations

import re
import time

import pytest
from conftest import Env, WebApp, threshold
from flask import Flask
from test_control_api import logged_in

NOW = int(time.time()) // 60 * 60


@pytest.fixture
def app(env: Env, make_app: WebApp) -> Flask:
    for name, value in (("web/a.rrd", 9), ("web/b.rrd", 1), ("db/main.rrd", 99)):
        env.rrd(name, {"x": [value] * 40}, end=NOW)
    env.write_thresholds(threshold(1, "web/*.rrd", name="web", severity="warning")
                         + threshold(2, "db/*.rrd", name="db", severity="critical", value=50))
    app: Flask = make_app(env, [("vic", "correct horse battery", "viewer")])
    app.extensions["rrdalarm"].run_check(wait=5)
    return app


def files(html: str) -> list[str]:
    body = html.split('<tbody id="rows">', 1)[1].split("</tbody>", 1)[0]
    return re.findall(r'data-label="File" class="file">([^<]+)<', body)


@pytest.mark.parametrize(("query", "shown"), [
    ("", ["web/a.rrd", "db/main.rrd", "web/b.rrd"]),  # fired first, then by threshold
    ("?q=WEB/", ["web/a.rrd", "web/b.rrd"]),
    ("?severity=critical", ["db/main.rrd"]),
    ("?threshold=1&status=OK", ["web/b.rrd"]),
    ("?status=ALARM+FIRED&q=web", ["web/a.rrd"]),
])
def test_the_first_page_follows_the_query(app: Flask, query: str, shown: list[str]) -> None:
    client, _ = logged_in(app, "vic")
    html = client.get("/report" + query).get_data(as_text=True)
    assert files(html) == shown
    assert f"rows 1–{len(shown)} of {len(shown)}" in html


def test_the_form_shows_the_filters_and_a_bad_one_is_named(app: Flask) -> None:
    client, _ = logged_in(app, "vic")
    html = client.get("/report?q=web&severity=warning").get_data(as_text=True)
    assert 'name="q" value="web"' in html and "<option selected>warning</option>" in html
    bad = client.get("/report?severity=loud").get_data(as_text=True)
    assert "Filter not applied: severity: &#39;loud&#39; is not one of critical, warning, info" in bad
    assert len(files(bad)) == 3
