"""History pages: events with filters, series timeline, deliveries, audit, and "Check now" (real engine, real DB)."""

from __future__ import annotations

import html
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from conftest import T0, Env, free_port
from flask import Flask
from flask.testing import FlaskClient

from rrdalarm.access.users import add_user
from rrdalarm.check.engine import run_check
from rrdalarm.check.lock import check_lock
from rrdalarm.config.thresholds import load_thresholds
from rrdalarm.service.service import CheckService
from rrdalarm.store.database import CheckRun, DeliveryRow
from rrdalarm.web import history
from rrdalarm.web.filters import FilterError, parse_choice, parse_int, parse_page, parse_time
from rrdalarm.web.history import event_filter

EVIL = "<img src=x onerror=alert(1)>.rrd"
SECRET = "params-secret-1234"
ADMIN_PW = "correct horse battery"
VIEWER_PW = "viewer horse battery"


# Pure helpers.


def test_parse_time_accepts_local_datetimes_epochs_and_relative_specs() -> None:
    local = int(time.mktime((2023, 11, 14, 22, 13, 0, 0, 0, -1)))
    assert parse_time("2023-11-14T22:13", T0, "from") == local
    assert parse_time("2023-11-14T22:13:20", T0, "from") == local + 20
    assert parse_time("2023-11-14 22:13", T0, "from") == local
    assert parse_time(str(T0), 0, "from") == T0
    assert parse_time(f"{T0}.7", 0, "from") == T0
    assert parse_time("now-1h", T0, "from") == T0 - 3600
    assert parse_time("-2d", T0, "from") == T0 - 2 * 86400
    assert parse_time("now", T0, "to") == T0
    assert parse_time("", T0, "from") is None
    assert parse_time(None, T0, "from") is None
    for bad in ("yesterday", "2023-13-01T00:00", "now-1x", "1e9", "99999999999999"):
        with pytest.raises(FilterError, match=r"^to: .* is not a date and time"):
            parse_time(bad, T0, "to")


def test_event_filter_checks_every_field() -> None:
    f = event_filter({"threshold": "3", "status": "alarm fired", "from": str(T0 - 60), "to": "now", "page": "2"},
                     T0, ("ALARM FIRED", "RESOLVED"))
    assert (f.threshold, f.status, f.since, f.until, f.page) == (3, "ALARM FIRED", T0 - 60, T0, 2)
    assert f.query() == {"threshold": "3", "status": "ALARM FIRED", "from": str(T0 - 60), "to": str(T0)}
    assert event_filter({}, T0, ()).query() == {}
    with pytest.raises(FilterError, match="is after to"):
        event_filter({"from": str(T0), "to": str(T0 - 1)}, T0, ())
    with pytest.raises(FilterError, match="status: 'OK' is not one of ALARM FIRED, RESOLVED"):
        event_filter({"status": "OK"}, T0, ("ALARM FIRED", "RESOLVED"))
    with pytest.raises(FilterError, match="threshold"):
        event_filter({"threshold": "1; drop table"}, T0, ())


def test_numbers_are_bounded() -> None:
    assert parse_int(" 7 ", "threshold") == 7
    assert parse_page(None) == 1 and parse_page("3") == 3
    for bad in ("0", "-1", "x", "1.5", str(2**70)):
        with pytest.raises(FilterError, match="page"):
            parse_page(bad)
    with pytest.raises(FilterError):
        parse_int(str(2**31), "threshold")
    assert parse_choice("SENT", ("pending", "sent"), "status") == "sent"


# The app with history made by the real engine.


@dataclass
class Site:
    app: Flask
    service: CheckService
    env: Env

    def client(self, password: str | None = ADMIN_PW, name: str = "alice") -> FlaskClient:
        client = self.app.test_client()
        if password is not None:
            page = client.get("/login").get_data(as_text=True)
            r = client.post("/login", data={"name": name, "password": password, "csrf_token": csrf(page)})
            assert r.status_code == 302
        return client


def csrf(page: str) -> str:
    m = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page)
    assert m, page
    return m.group(1)


def thresholds_toml(port: int, limit: float = 5) -> str:
    return f"""
[[threshold]]
id = 1
name = "busy"
glob = "*.rrd"
type = "above"
value = {limit}

[[threshold.action]]
type = "log"
file = "alarms.log"
on = ["fire", "repeat", "resolve"]

[[threshold.action]]
type = "webhook"
url = "http://127.0.0.1:{port}/hook"
headers = {{ X-Token = "{SECRET}" }}

[[threshold.action]]
type = "script"
script = "missing.sh"
args = ["{SECRET}"]

[[threshold]]
id = 2
name = "low <b>disk</b>"
glob = "low/b.rrd"
type = "below"
value = 5

[[threshold]]
id = 3
name = "many"
glob = "p/*.rrd"
type = "above"
value = 5
"""


def check(env: Env, service: CheckService, at: int) -> None:
    settings = env.settings()
    assert settings.thresholds is not None
    run_check(settings, load_thresholds(settings.thresholds), service.store, at=at)


@pytest.fixture
def site(env: Env) -> Iterator[Site]:
    from rrdalarm.web import create_app

    env.rrd("a.rrd", {"x": [1, 1, 9, 9]})
    env.rrd(EVIL, {"x": [9]})
    env.rrd("low/b.rrd", {"y": [1, 2]})
    for i in range(110):
        env.rrd(f"p/{i:03d}.rrd", {"v": [9]}, rows=5)
    port = free_port()  # nothing listens: the webhook fails and waits for a retry
    env.write_thresholds(thresholds_toml(port))
    service = CheckService(env.settings_path, overrides={"lock_wait": 0.2})
    check(env, service, T0)  # 1 (a, evil), 2 (b), 3 (110 files) fire
    check(env, service, T0 + 60)  # re-arm 0: all fire again; only #1's repeats are stored (its log hears them)
    env.write_thresholds(thresholds_toml(port, limit=100))
    check(env, service, T0 + 120)  # threshold 1 resolves
    env.write_thresholds(thresholds_toml(port))
    add_user(service.store, "alice", ADMIN_PW, "admin")
    add_user(service.store, "vera", VIEWER_PW, "viewer")
    yield Site(create_app(service), service, env)
    service.close()


def text(client: FlaskClient, url: str, status: int = 200) -> str:
    r = client.get(url)
    assert r.status_code == status, r.get_data(as_text=True)[:3000]
    return r.get_data(as_text=True)


def event_rows(page: str) -> list[str]:
    body = page.split("<tbody>", 1)[1].split("</tbody>", 1)[0] if "<tbody>" in page else ""
    return re.findall(r"<tr class=\"s-[^\"]*\"[^>]*>.*?</tr>", body, re.S)


def test_events_filters_by_threshold_status_and_time(site: Site) -> None:
    c = site.client()
    page = text(c, "/events?threshold=1")
    rows = event_rows(page)
    # Newest first: two resolutions at T0+120, then two repeats, then two firings.
    assert len(rows) == 6 and "RESOLVED" in rows[0] and "(repeat)" in rows[2] and "(repeat)" not in rows[5]
    assert "#1 busy" in rows[0] and "resolved: 9 no longer above 100" in html.unescape(page)
    assert '<option value="1" selected>#1 busy</option>' in page
    assert "low &lt;b&gt;disk&lt;/b&gt;" in page and "<b>disk" not in page
    resolved = event_rows(text(c, "/events?status=resolved"))
    assert len(resolved) == 2 and all("RESOLVED" in r for r in resolved)
    assert '<option value="RESOLVED" selected>' in text(c, "/events?status=resolved")
    middle = text(c, f"/events?threshold=1&from={T0 + 60}&to={T0 + 60}")
    assert len(event_rows(middle)) == 2 and all("(repeat)" in r for r in event_rows(middle))
    # The form shows the range as ISO local times (server time, 24 hours) that read back the same.
    value = re.search(r'name="from" value="([^"]+)"', middle)
    assert value and re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", value.group(1))
    assert value and parse_time(value.group(1), 0, "from") == T0 + 60
    assert len(event_rows(text(c, f"/events?threshold=1&from={value.group(1)}"))) == 4
    assert len(event_rows(text(c, "/events?threshold=2&status=ALARM+FIRED"))) == 1  # its repeats are not stored
    assert "No events" in text(c, "/events?threshold=99")


def test_events_filter_by_file_text_and_severity_in_the_url(site: Site) -> None:
    c = site.client()
    rows = event_rows(text(c, "/events?q=P/00"))  # case-insensitive: p/000.rrd to p/009.rrd
    assert len(rows) == 10 and all("p/00" in r for r in rows)
    assert not event_rows(text(c, "/events?q=%25"))  # LIKE's wildcards are plain text here
    assert len(event_rows(text(c, "/events?q=low/&threshold=2"))) == 1
    page = text(c, "/events?q=low/&severity=warning")
    assert len(event_rows(page)) == 1 and 'value="low/"' in page and '<option value="warning" selected>' in page
    assert "No events" in text(c, "/events?severity=critical")
    error = text(c, "/events?severity=bad", 400)
    assert "severity: 'bad' is not one of critical, warning, info" in html.unescape(error)
    first = text(c, "/events?q=p/&severity=warning")
    older = re.search(r'href="([^"]+)" rel="next"', first)
    assert older and html.unescape(older.group(1)) == "/events?q=p/&severity=warning&page=2"


def test_events_pages_of_fifty_keep_the_filter(site: Site) -> None:
    c = site.client()
    # Threshold 3 fired 110 series in the first check (no action hears its repeats: none is stored).
    first = text(c, "/events?threshold=3&status=ALARM+FIRED")
    assert len(event_rows(first)) == 50 and 'rel="prev"' not in first
    older = re.search(r'href="([^"]+)" rel="next"', first)
    assert older
    link = html.unescape(older.group(1))
    assert link == "/events?threshold=3&status=ALARM+FIRED&page=2"
    second = text(c, link)
    assert len(event_rows(second)) == 50 and set(event_rows(first)).isdisjoint(event_rows(second))
    newer = re.search(r'href="([^"]+)" rel="prev"', second)
    assert newer and html.unescape(newer.group(1)) == "/events?threshold=3&status=ALARM+FIRED"
    last = text(c, "/events?threshold=3&page=3")
    assert len(event_rows(last)) == 10 and 'rel="next"' not in last
    assert "No events on this page" in text(c, "/events?threshold=3&page=4")


@pytest.mark.parametrize(("query", "message"), [
    ("threshold=abc", "threshold: 'abc' is not a whole number"),
    ("status=BOGUS", "status: 'BOGUS' is not one of"),
    ("from=yesterday", "from: 'yesterday' is not a date and time"),
    (f"from={T0}&to={T0 - 60}", "is after to"),
    ("page=0", "page: '0' is not a whole number"),
    (f"threshold={2**40}", "is not a whole number from 0"),
])
def test_invalid_event_filters_are_a_400_with_one_line(site: Site, query: str, message: str) -> None:
    page = text(site.client(), f"/events?{query}", 400)
    [error] = re.findall(r'<p class="error" role="alert">(.*?)</p>', page)
    assert message in html.unescape(error) and "Traceback" not in page
    assert not event_rows(page)


def test_file_names_are_escaped(site: Site) -> None:
    c = site.client()
    page = text(c, "/events?threshold=1")
    assert "&lt;img src=x onerror=alert(1)&gt;.rrd" in page
    assert "<img src=x" not in page
    link = re.search(r'<a href="(/series\?[^"]*onerror[^"]*)">', page)
    assert link
    series = text(c, html.unescape(link.group(1)))
    assert "&lt;img src=x onerror=alert(1)&gt;.rrd" in series and "<img src=x" not in series
    assert series.count("<img ") == 1  # the graph, whose src and alt carry the name escaped


def test_series_timeline(site: Site) -> None:
    c = site.client()
    page = text(c, "/series?threshold=1&series=a.rrd&ds=x")
    assert "Threshold #1 busy" in page
    assert '<dd class="state-ok">OK</dd>' in page
    assert f"<dt>Last value</dt><dd>9 at {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(T0))}</dd>" in page
    fired, resolved = (time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t)) for t in (T0, T0 + 120))
    assert f"<dt>Fired at</dt><dd>{fired}</dd>" in page and f"<dt>Resolved at</dt><dd>{resolved}</dd>" in page
    rows = event_rows(page)
    assert [("RESOLVED" in r, "(repeat)" in r) for r in rows] == [(True, False), (False, True), (False, False)]
    graph = re.search(r'<img class="graph" src="([^"]+)"', page)
    assert graph
    src = html.unescape(graph.group(1))
    assert src.startswith("/graph?") and "threshold=1" in src and "file=a.rrd" in src and "ds=x" in src
    png = c.get(src)
    assert png.status_code == 200 and png.data.startswith(b"\x89PNG")
    deliveries = page.split("Deliveries of these events", 1)[1]
    # Fired and resolved events went to log, webhook and script; the repeat to the log only.
    assert deliveries.count('<tr class="delivery-') == 7
    assert "delivery-sent" in deliveries and "delivery-pending" in deliveries and "delivery-dead" in deliveries
    assert "script: no scripts_dir is configured" in deliveries and SECRET not in page
    only = text(c, "/series?threshold=1&series=a.rrd&ds=x&status=resolved")
    assert [("RESOLVED" in r) for r in event_rows(only)] == [True] and "<option selected>RESOLVED</option>" in only
    assert "status: &#39;nope&#39; is not one of" in text(c, "/series?threshold=1&series=a.rrd&ds=x&status=nope", 400)
    never = text(c, "/series?threshold=2&series=low/b.rrd&ds=y")
    assert "FIRING" in never and "No delivery carried the events shown." in never


def test_series_of_ntopng_has_no_graph_and_bad_keys_are_400(site: Site) -> None:
    c = site.client()
    page = text(c, "/series?threshold=9&series=ntopng:host:traffic{ifid:0}&ds=bytes_sent")
    assert "never fired" in page and "No events" in page and '<img class="graph"' not in page
    for query in ("", "threshold=1&series=a.rrd", "threshold=x&series=a.rrd&ds=x", "threshold=1&ds=x"):
        bad = text(c, f"/series?{query}", 400)
        assert '<p class="error" role="alert">' in bad


def test_deliveries_with_attempts_errors_and_no_params(site: Site) -> None:
    c = site.client()
    page = text(c, "/deliveries")
    assert page.count('<tr class="delivery-') == 7
    assert SECRET not in page and "X-Token" not in page
    dead = text(c, "/deliveries?status=dead")
    assert dead.count('<tr class="delivery-dead">') == 2 and "delivery-sent" not in dead
    assert '<td data-label="Last error" class="error">script: no scripts_dir is configured</td>' in dead
    pending = text(c, "/deliveries?status=pending&action=webhook")
    assert pending.count('<tr class="delivery-pending">') == 2
    assert re.search(r"<details><summary>1</summary>", pending)
    assert "failed: webhook: http://127.0.0.1:" in html.unescape(pending)
    sent = text(c, "/deliveries?status=sent")
    assert sent.count('<tr class="delivery-sent">') == 3 and ">ok</td>" in sent
    assert '<option value="log" selected>' in text(c, "/deliveries?action=log")
    with site.service.store.session() as s:
        params = [d.params for d in s.query(DeliveryRow)]
    assert any(SECRET in p for p in params)  # it is stored, and still never shown
    bad = text(c, "/deliveries?status=lost", 400)
    assert "status: &#39;lost&#39; is not one of pending, sent, dead" in bad


def test_deliveries_and_audit_paginate(site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(history, "PAGE_SIZE", 4)
    c = site.client()
    first = text(c, "/deliveries?action=log")
    assert first.count('<tr class="delivery-') == 3 and 'rel="next"' not in first
    all_first = text(c, "/deliveries")
    assert all_first.count('<tr class="delivery-') == 4 and 'href="/deliveries?page=2" rel="next"' in all_first
    second = text(c, "/deliveries?page=2")
    assert second.count('<tr class="delivery-') == 3 and 'href="/deliveries" rel="prev"' in second
    for i in range(6):
        site.service.store.add_audit(at=T0 + i, user="alice", change="edit", threshold_id=1, threshold_name="busy",
                                     file="thresholds.toml", diff=f"-value = {i}\n+value = {i + 1}\n")
    audit = text(c, "/audit?threshold=1")
    assert audit.count('<article class="change"') == 4
    assert 'href="/audit?threshold=1&amp;page=2" rel="next"' in audit
    assert audit.index("+value = 6") < audit.index("+value = 5")
    assert text(c, "/audit?threshold=1&page=2").count('<article class="change"') == 2


def test_audit_shows_who_when_what_with_the_diff(site: Site) -> None:
    store = site.service.store
    store.add_audit(at=T0, user="alice", change="add", threshold_id=2, threshold_name="low <b>disk</b>",
                    file="thresholds.toml", diff="+[[threshold]]\n+id = 2\n+name = \"<script>x</script>\"\n")
    store.add_audit(at=T0 + 5, user="bob", change="delete", threshold_id=1, threshold_name="busy",
                    file="thresholds.toml", diff="-[[threshold]]\n-id = 1\n")
    c = site.client(VIEWER_PW, "vera")
    page = text(c, "/audit")
    assert re.findall(r"· (\w+) · (\w+) ·", page) == [("bob", "delete"), ("alice", "add")]
    assert '<pre class="diff">+[[threshold]]\n+id = 2\n+name = &#34;&lt;script&gt;x&lt;/script&gt;&#34;\n</pre>' in page
    assert "<script>x" not in page and "low &lt;b&gt;disk&lt;/b&gt;" in page
    one = text(c, "/audit?threshold=2")
    assert one.count('<article class="change"') == 1 and "bob" not in one
    assert '<option value="2" selected>#2 low &lt;b&gt;disk&lt;/b&gt;</option>' in one
    assert "No changes" in text(c, "/audit?threshold=7")
    assert "threshold: &#39;two&#39; is not a whole number" in text(c, "/audit?threshold=two", 400)


@pytest.mark.parametrize("path", ["/events", "/series?threshold=1&series=a.rrd&ds=x", "/deliveries", "/audit"])
def test_pages_need_a_login_and_viewers_may_read(site: Site, path: str) -> None:
    anonymous = site.app.test_client()
    assert anonymous.get(path).status_code == 401
    browser = anonymous.get(path, headers={"Accept": "text/html"})
    assert browser.status_code == 302 and "/login?next=" in browser.headers["Location"]
    viewer = site.client(VIEWER_PW, "vera")
    page = text(viewer, path)
    assert "vera (viewer)" in page and 'id="check-now"' in page


def test_a_broken_database_is_a_one_line_500(site: Site) -> None:
    c = site.client()
    with site.service.store.engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE delivery_attempts")
    r = c.get("/deliveries")
    assert r.status_code == 500 and "delivery_attempts" in r.get_data(as_text=True)
    assert len(r.get_data(as_text=True).strip().splitlines()) == 1


def runs(site: Site) -> int:
    return site.service.store.count(CheckRun)


def test_check_now_needs_csrf_and_runs_a_check(site: Site) -> None:
    c = site.client()
    before = runs(site)
    assert c.post("/check-now").status_code == 400
    token = csrf(text(c, "/events"))
    r = c.post("/check-now", data={"csrf_token": token})
    assert r.status_code == 303 and r.headers["Location"] == "/report"
    assert runs(site) == before + 1
    report = text(c, "/report")
    assert "Alarms fired" in report
    assert re.search(r'<p class="notice message" role="status">Check done: 113 files checked, \d+ alarms fired',
                     report)
    assert "Check done" not in text(c, "/events")  # shown once


def test_check_now_needs_access(site: Site) -> None:
    anonymous = site.app.test_client()
    token = csrf(text(anonymous, "/login"))
    assert anonymous.post("/check-now", data={"csrf_token": token}).status_code == 401
    before = runs(site)
    viewer = site.client(VIEWER_PW, "vera")
    r = viewer.post("/check-now", data={"csrf_token": csrf(text(viewer, "/audit"))})
    assert r.status_code == 303 and runs(site) == before + 1


def test_check_now_reports_a_busy_lock_and_bad_config(site: Site) -> None:
    c = site.client()
    token = csrf(text(c, "/deliveries"))
    before = runs(site)
    with check_lock(site.env.data, 0, site.service.store):
        r = c.post("/check-now", data={"csrf_token": token}, headers={"Referer": "http://localhost/deliveries"})
    assert r.status_code == 303 and r.headers["Location"] == "/deliveries"
    assert runs(site) == before
    page = text(c, "/deliveries")
    assert '<p class="flash error" role="status">Check not run: a check is already running' in page
    site.env.write_thresholds("[[threshold]]\nid = 1\n")
    r = c.post("/check-now", data={"csrf_token": token}, headers={"Referer": "http://evil.example/x"})
    assert r.status_code == 303 and r.headers["Location"] == "/events"
    flash = re.search(r'<p class="flash error" role="status">(Check failed: [^<]+)</p>', text(c, "/events"))
    assert flash and "thresholds.toml" in flash.group(1) and "\n" not in flash.group(1)
    assert runs(site) == before


def test_deliveries_name_only_the_host_of_a_url(site: Site) -> None:
    token = "123456:AAE-telegram-token"
    port = free_port()
    site.env.write_thresholds(f"""
[[threshold]]
id = 1
name = "busy"
glob = "a.rrd"
type = "above"
value = 5

[[threshold.action]]
type = "webhook"
url = "http://127.0.0.1:{port}/bot{token}/sendMessage?chat=1"
""")
    check(site.env, site.service, T0 + 180)
    c = site.client()
    page = html.unescape(text(c, "/deliveries?action=webhook"))
    assert f"webhook: http://127.0.0.1:{port}" in page
    assert token not in page and "AAE" not in page
    # An error recorded by an older version, with the token in the path, is cut on display too.
    with site.service.store.session() as s:
        row = s.query(DeliveryRow).filter(DeliveryRow.action == "webhook").first()
        assert row is not None
        row.last_error = "webhook: https://api.telegram.org/bot999:OLD-token/…: HTTP 404 Not Found"
    page = html.unescape(text(c, "/deliveries?action=webhook"))
    assert "OLD-token" not in page and "https://api.telegram.org: HTTP 404" in page


def test_audit_hides_secrets_of_entries_already_stored(site: Site) -> None:
    diff = (
        "--- thresholds.toml (before)\n+++ thresholds.toml (after)\n@@ -1,4 +1,6 @@\n"
        ' type = "webhook"\n'
        '-url = "https://hooks.example.org/x?token=query-secret"\n'
        '+url = "https://user:userinfo-secret@hooks.example.org/x"\n'
        '+secret = "hmac-secret-value"\n'
        '+headers = { Authorization = "Bearer header-secret" }\n'
        '+urls = ["tgram://apprise-secret/42"]\n'
        ' urls = [\n  "mailto://user:mail-password@example.org",\n ]\n'
        '+secret = { env = "HOOK_KEY" }\n'
    )
    site.service.store.add_audit(at=T0, user="alice", change="edit", threshold_id=1, threshold_name="busy",
                                 file="thresholds.toml", diff=diff)
    page = html.unescape(text(site.client(VIEWER_PW, "vera"), "/audit"))
    for secret in ("query-secret", "userinfo-secret", "hmac-secret-value", "header-secret", "apprise-secret",
                   "mail-password"):
        assert secret not in page, secret
    assert "hooks.example.org/x" in page and '{ env = "HOOK_KEY" }' in page


def test_values_and_limits_show_with_the_thresholds_unit(site: Site) -> None:
    """Events keep raw numbers; the pages show them with the unit the threshold has in the file now."""
    site.env.write_thresholds(thresholds_toml(free_port()).replace("value = 5\n", 'value = 5\nunit = "B/s"\n', 1))
    c = site.client()
    rows = event_rows(text(c, "/events?threshold=1&status=ALARM+FIRED"))
    assert rows and all('<td data-label="Limit" class="num hide-narrow">above 5 B/s</td>' in r for r in rows)
    assert any(">9 B/s</td>" in r for r in rows)
    page = text(c, "/series?threshold=1&series=a.rrd&ds=x")
    assert "<dt>Last value</dt><dd>9 B/s at " in page
    assert "above 5 B/s" in page
    other = event_rows(text(c, "/events?threshold=2"))
    assert other and all('<td data-label="Limit" class="num hide-narrow">below 5</td>' in r for r in other)
