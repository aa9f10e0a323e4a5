"""/ is "Alarms now": only the series that are not OK, by threshold, critical first; ack and silence from it."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest
from conftest import Env, WebApp, check, threshold
from flask import Flask
from test_control_api import logged_in

from rrdalarm.store.database import Store

LOG = {"type": "log", "file": "a.log"}
# The service checks on the real clock: the files end at the current minute.
NOW = int(time.time()) // 60 * 60


@pytest.fixture
def app(env: Env, make_app: WebApp) -> Flask:
    env.rrd("web/a.rrd", {"x": [9] * 40}, end=NOW)
    env.rrd("web/b.rrd", {"x": [9] * 40}, end=NOW)
    env.rrd("web/ok.rrd", {"x": [1] * 40}, end=NOW)
    env.rrd("db/main.rrd", {"x": [99] * 40}, end=NOW)
    env.write_thresholds(
        threshold(1, "web/*.rrd", name="web load", severity="warning", actions=[LOG])
        + threshold(2, "db/*.rrd", name="db load", severity="critical", value=50, actions=[LOG])
        + threshold(3, "web/ok.rrd", name="wrong ds", ds=["nope"]))
    users = [("alice", "correct horse battery", "admin"), ("vic", "correct horse battery", "viewer")]
    app: Flask = make_app(env, users, WTF_CSRF_ENABLED=True)
    return app


def run(app: Flask) -> None:
    """A check by the service of this process, as the scheduler runs it."""
    from rrdalarm.service.service import CheckService

    svc: CheckService = app.extensions["rrdalarm"]
    svc.run_check(wait=5)


def listed(html: str) -> list[tuple[str, str, str]]:
    """(group id, series, status) of each row, in page order."""
    out = []
    for group, body in re.findall(r'<section class="group [^"]*" id="group-(\d+)">(.*?)</section>', html, re.S):
        for series, status in re.findall(r'data-series="([^"]*)".*?<span class="status">([^<]+)</span>', body, re.S):
            out.append((group, series, status))
    return out


def count(html: str, what: str) -> int:
    m = re.search(rf'id="count-{what}">(\d+)<', html)
    assert m, html
    return int(m.group(1))


def test_only_what_is_wrong_critical_first(app: Flask, env: Env, store: Store) -> None:
    run(app)
    client, _ = logged_in(app, "vic")
    html = client.get("/").get_data(as_text=True)
    assert listed(html) == [("2", "db/main.rrd", "FIRING"), ("1", "web/a.rrd", "FIRING"),
                            ("1", "web/b.rrd", "FIRING"), ("3", "web/ok.rrd", "ERROR")]
    assert "web/ok.rrd" not in [s for g, s, _ in listed(html) if g == "1"]
    assert (count(html, "critical"), count(html, "warning"), count(html, "info")) == (1, 3, 0)
    assert "#2 db load" in html and "99 above 50" in html and 'id="full-report"' in html
    assert "Take control" not in html  # a viewer sees, but no acknowledge or silence buttons
    fragment = client.get("/?fragment=1").get_data(as_text=True)
    assert "<html" not in fragment and listed(fragment) == listed(html)


def test_filters_in_the_url(app: Flask, env: Env, store: Store) -> None:
    run(app)
    client, _ = logged_in(app, "vic")
    assert listed(client.get("/?q=WEB/A").get_data(as_text=True)) == [("1", "web/a.rrd", "FIRING")]
    assert [g for g, _, _ in listed(client.get("/?severity=critical").get_data(as_text=True))] == ["2"]
    assert listed(client.get("/?status=ERROR&threshold=3").get_data(as_text=True)) == [("3", "web/ok.rrd", "ERROR")]
    page = client.get("/?q=web/&status=FIRING")
    html = page.get_data(as_text=True)
    assert len(listed(html)) == 2 and 'value="web/"' in html and "fragment=1&amp;q=web/&amp;status=FIRING" in html
    assert "No series that is not OK matches these filters." in client.get("/?q=nothing").get_data(as_text=True)
    bad = client.get("/?severity=loud")
    assert bad.status_code == 400 and "severity: &#39;loud&#39; is not one of" in bad.get_data(as_text=True)


def test_from_the_stored_states_when_checks_come_from_cron(app: Flask, env: Env, store: Store) -> None:
    check(env, store, at=NOW + 30)  # another process's check: this one has no rows of its own
    client, _ = logged_in(app, "vic")
    html = client.get("/").get_data(as_text=True)
    assert listed(html) == [("2", "db/main.rrd", "FIRING"), ("1", "web/a.rrd", "FIRING"), ("1", "web/b.rrd", "FIRING")]


def test_acknowledge_and_silence_from_the_page_then_the_badges(app: Flask, env: Env, store: Store) -> None:
    run(app)
    client, token = logged_in(app, "alice")
    html = client.get("/").get_data(as_text=True)
    assert html.count("<summary>Acknowledge</summary>") == 3 and html.count("<summary>Silence…</summary>") == 4
    form: dict[str, Any] = {"csrf_token": token, "back": "alarms", "threshold": "1", "series": "web/a.rrd",
                            "ds": "x", "comment": "on it"}
    done = client.post("/acks", data=form)
    assert done.status_code == 303 and done.headers["Location"].endswith("/")
    preview = client.get("/api/silences/preview?threshold=1&series=web/*").get_json()
    assert preview == {"series": 3, "firing": 2}
    done = client.post("/silences", data=form | {"scope": "file", "for": "2h", "comment": "swap"})
    assert done.status_code == 303
    at_once = client.get("/").get_data(as_text=True)  # before any new check
    assert "acknowledged by alice" in at_once and '<span class="badge silenced" title="1">' in at_once
    run(app)
    html = client.get("/").get_data(as_text=True)
    assert "acknowledged by alice" in html and 'class="badge silenced"' in html
    assert (count(html, "warning"), count(html, "silenced"), count(html, "acknowledged")) == (2, 1, 1)
    whole = client.post("/silences", data=form | {"scope": "threshold", "for": "1h", "comment": "all"},
                        follow_redirects=True).get_data(as_text=True)
    assert "silence 2 (threshold 1) for 1 h added" in whole


def test_the_refresh_interval_is_a_setting(env: Env, make_app: WebApp) -> None:
    env.write_thresholds(threshold())
    with env.settings_path.open("a") as fh:
        fh.write("\n[service]\npage_refresh = 5\n")
    app: Flask = make_app(env, [("vic", "correct horse battery", "viewer")])
    client, _ = logged_in(app, "vic")
    assert 'data-refresh="5"' in client.get("/").get_data(as_text=True)
    env.settings_path.write_text(env.settings_path.read_text().replace("page_refresh = 5", "page_refresh = 0"))
    proc = env.run("validate")
    assert proc.returncode == 2 and "page_refresh must be a number of seconds above 0" in proc.stderr


def test_nothing_wrong(env: Env, make_app: WebApp) -> None:
    env.rrd("a.rrd", {"x": [1] * 40}, end=NOW)
    env.write_thresholds(threshold())
    app: Flask = make_app(env, [("vic", "correct horse battery", "viewer")])
    run(app)
    client, _ = logged_in(app, "vic")
    html = client.get("/").get_data(as_text=True)
    assert "Nothing is wrong: every series is OK." in html and count(html, "critical") == 0


def test_a_check_prepares_the_groups_and_pages_share_one_rendering(app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    import flask

    from rrdalarm.report.alarms_now import alarms_now as real
    from rrdalarm.service import alarms_view
    from rrdalarm.web import alarms as page

    made: list[int] = []

    def making(*args: Any) -> Any:
        made.append(1)
        return real(*args)

    monkeypatch.setattr(alarms_view, "alarms_now", making)
    run(app)
    assert made == [1]  # by the check, before any page asked
    client, _ = logged_in(app, "vic")
    other, _ = logged_in(app, "vic")
    rendered: list[str] = []

    def rendering(name: str, **context: Any) -> str:
        rendered.append(name)
        return flask.render_template(name, **context)

    monkeypatch.setattr(page, "render_template", rendering)
    first = client.get("/?fragment=1").get_data(as_text=True)
    assert other.get("/?fragment=1").get_data(as_text=True) == first and len(rendered) == 1 and made == [1]
    assert "since " in first
    later = time.time() + page.AGE_STEP_S  # the ages in the list are at most AGE_STEP_S late
    monkeypatch.setattr(time, "time", lambda: later)
    client.get("/?fragment=1")
    assert len(rendered) == 2 and made == [1]
    run(app)  # a new check: new groups, rendered again
    assert made == [1, 1]
    client.get("/?fragment=1")
    assert len(rendered) == 3
