"""The threshold table and editor through the Flask test client: roles, CSRF, validation, saving, audit."""

from __future__ import annotations

import html
import re
import time
from typing import Any

import pytest
from conftest import Env, WebApp
from flask import Flask
from flask.testing import FlaskClient

from rrdalarm.config.thresholds import load_thresholds
from rrdalarm.service.service import CheckService

THRESHOLDS = """\
# site thresholds

# uplink
[[threshold]]
id = 1  # keep
name = "uplink"
glob = "interfaces/*/bytes.rrd"
type = "above"
value = 100.0

[[threshold.action]]
type = "webhook"
url = "https://hooks.example.org/x"
secret = "s3cr3t-hmac-key"
headers = { Authorization = "Bearer hidden-api-key" }

# disks
[[threshold]]
id = 2
name = "disks"
glob = "df/*.rrd"
type = "below"
value = 5.0
"""

PASSWORD = "correct horse battery"


@pytest.fixture
def app(env: Env, make_app: WebApp) -> Flask:
    # Points up to the current minute: the pages check "now".
    end = int(time.time()) // 60 * 60
    env.rrd("interfaces/eth0/bytes.rrd", {"rx": [10.0] * 5 + [500.0] * 3}, end=end)
    env.rrd("interfaces/eth1/bytes.rrd", {"rx": [10.0] * 8}, end=end)
    env.rrd("df/root.rrd", {"free": [50.0] * 8}, end=end)
    env.write_thresholds(THRESHOLDS)
    app: Flask = make_app(env, [("alice", PASSWORD, "admin"), ("victor", PASSWORD, "viewer")])
    return app


def csrf(page: str) -> str:
    m = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page) or re.search(
        r'name="csrf_token" value="([^"]+)"', page)
    assert m, page
    return m.group(1)


def logged_in(app: Flask, name: str = "alice") -> FlaskClient:
    client = app.test_client()
    page = client.get("/login").get_data(as_text=True)
    resp = client.post("/login", data={"name": name, "password": PASSWORD, "csrf_token": csrf(page)})
    assert resp.status_code == 302
    return client


def form_of(page: str) -> dict[str, Any]:
    """The values a browser would submit from the threshold form as rendered (visible or not)."""
    form = page.split('id="threshold-form"', 1)[1].split("</form>", 1)[0]
    data: dict[str, Any] = {}
    for m in re.finditer(r"<input ([^>]*)>", form):
        attrs = dict(re.findall(r'([\w-]+)="([^"]*)"', m.group(1)))
        if "name" not in attrs:
            continue
        if attrs.get("type") == "checkbox":
            if " checked" in m.group(1):
                data.setdefault(attrs["name"], []).append(attrs.get("value", "y"))
            continue
        data[attrs["name"]] = attrs.get("value", "")
    for m in re.finditer(r'<select[^>]*name="([^"]+)"[^>]*>(.*?)</select>', form, re.S):
        chosen = [o for o in re.findall(r"<option([^>]*)>", m.group(2)) if re.search(r"\bselected\b", o)]
        # With nothing selected a browser submits the first option.
        first = re.findall(r"<option([^>]*)>", m.group(2))[:1]
        value = re.search(r'value="([^"]*)"', (chosen or first or [""])[0])
        data[m.group(1)] = value.group(1) if value else ""
    for m in re.finditer(r'<textarea[^>]*name="([^"]+)"[^>]*>(.*?)</textarea>', form, re.S):
        data[m.group(1)] = m.group(2)
    return data


def test_table_shows_every_threshold_with_live_state(app: Flask, env: Env) -> None:
    client = logged_in(app, "victor")
    page = client.get("/thresholds").get_data(as_text=True)
    assert 'id="threshold-1"' in page and 'id="threshold-2"' in page
    row1 = page.split('id="threshold-1"')[1].split("</tr>")[0]
    assert re.search(r'class="num matched">2<', row1)  # two interfaces match
    assert "Edit" not in page and "Add a threshold" not in page  # a viewer reads only
    client = logged_in(app)
    client.post("/check-now", data={"csrf_token": csrf(client.get("/thresholds").get_data(as_text=True))})
    page = client.get("/thresholds").get_data(as_text=True)
    row1 = page.split('id="threshold-1"')[1].split("</tr>")[0]
    assert "state-firing" in row1 and ">1</a>" in row1 and "never" not in row1
    assert "Add a threshold" in page


@pytest.mark.parametrize("path", ["/thresholds/new", "/thresholds/1/edit", "/thresholds/1/duplicate",
                                  "/thresholds/1/delete"])
def test_a_viewer_cannot_open_editors(app: Flask, path: str) -> None:
    assert logged_in(app, "victor").get(path).status_code == 403


@pytest.mark.parametrize("path", ["/thresholds/new", "/thresholds/1/edit", "/thresholds/1/enable",
                                  "/thresholds/1/disable", "/thresholds/1/delete"])
def test_a_viewer_cannot_change_anything(app: Flask, env: Env, path: str) -> None:
    client = logged_in(app, "victor")
    token = csrf(client.get("/thresholds").get_data(as_text=True))
    assert client.post(path, data={"csrf_token": token, "name": "x", "glob": "*.rrd", "value": "1"}).status_code == 403
    assert env.thresholds_path.read_text() == THRESHOLDS


def test_the_api_token_cannot_edit(app: Flask, env: Env) -> None:
    env.settings_path.write_text(env.settings_path.read_text() + '\n[service]\napi_token = "tok-123456789"\n')
    client = app.test_client()
    assert client.get("/thresholds", headers={"Authorization": "Bearer tok-123456789"}).status_code == 200
    assert client.get("/thresholds/new", headers={"Authorization": "Bearer tok-123456789"}).status_code == 403
    assert client.get("/thresholds/new").status_code == 401
    browser = client.get("/thresholds/new", headers={"Accept": "text/html"})
    assert browser.status_code == 302 and "/login" in browser.headers["Location"]


def test_posts_without_csrf_are_refused(app: Flask, env: Env) -> None:
    client = logged_in(app)
    for path in ("/thresholds/new", "/thresholds/1/edit", "/thresholds/1/disable", "/thresholds/1/delete"):
        assert client.post(path, data={"name": "x"}).status_code == 400
    assert env.thresholds_path.read_text() == THRESHOLDS


def test_add_a_threshold(app: Flask, env: Env) -> None:
    client = logged_in(app)
    page = client.get("/thresholds/new").get_data(as_text=True)
    data = form_of(page)
    assert data["id"] == "3" and data["start"] == "now-1h"
    data.update({"name": "root disk", "glob": "df/root.rrd", "ds": "free", "type": "below", "value": "20",
                 "repetitions": "2", "rearm": "600", "action-0-type": "log", "action-0-log-file": "disk.log",
                 "op": "save"})
    resp = client.post("/thresholds/new", data=data)
    assert resp.status_code == 302, resp.get_data(as_text=True)
    text = env.thresholds_path.read_text()
    assert text.startswith(THRESHOLDS.rstrip("\n"))  # comments and the other tables untouched
    t = load_thresholds(env.thresholds_path)[-1]
    assert (t.id, t.name, t.glob, t.ds, t.type.value, t.value, t.repetitions, t.rearm) == (
        3, "root disk", "df/root.rrd", ("free",), "below", 20.0, 2, 600)
    assert [(a.type, dict(a.params)) for a in t.actions] == [("log", {"file": "disk.log"})]
    assert (env.base / "thresholds.toml.bak").read_text() == THRESHOLDS
    audit = client.get("/audit").get_data(as_text=True)
    assert "alice" in audit and "root disk" in audit and "+glob = &#34;df/root.rrd&#34;" in audit


@pytest.mark.parametrize(("change", "field", "message"), [
    ({"glob": "../etc/*.rrd"}, "glob", "cannot leave the RRD root"),
    ({"glob": "/etc/passwd"}, "glob", "is absolute"),
    ({"glob": "df/[z-a]*.rrd"}, "glob", "reversed range 'z-a'"),
    ({"value": "lots"}, "value", "is not a number with an SI suffix"),
    ({"repetitions": "-1"}, "repetitions", "must be 0 or more"),
    ({"start": "yesterday-ish"}, "start", ""),
    ({"id": "1"}, "id", "already used by"),
    ({"action-0-type": "email"}, "action", "needs parameter 'to'"),
    ({"action-0-type": "webhook", "action-0-webhook-url": "ftp://x"}, "action", "url"),
])
def test_the_form_uses_the_models_rules(app: Flask, env: Env, change: dict[str, str], field: str,
                                        message: str) -> None:
    client = logged_in(app)
    data = form_of(client.get("/thresholds/new").get_data(as_text=True))
    data.update({"name": "n", "glob": "df/*.rrd", "type": "above", "value": "1", "op": "save"})
    data.update(change)
    resp = client.post("/thresholds/new", data=data)
    page = resp.get_data(as_text=True)
    assert resp.status_code == 400
    if field == "action":
        block = page.split('id="action-error"')[1].split("</ul>")[0]
    else:
        block = page.split(f'id="field-{field}"')[1].split('class="field"')[0]
        assert 'class="errors"' in block
    assert message in html.unescape(block) and "threshold 3:" not in block
    assert env.thresholds_path.read_text() == THRESHOLDS


def test_edit_keeps_secrets_out_of_the_page_and_in_the_file(app: Flask, env: Env) -> None:
    client = logged_in(app)
    page = client.get("/thresholds/1/edit").get_data(as_text=True)
    assert "s3cr3t-hmac-key" not in page and "hidden-api-key" not in page
    assert "https://hooks.example.org/x" in page  # not a secret
    data = form_of(page)
    assert data["action-0-type"] == "webhook" and data["action-0-webhook-secret"] == ""
    data.update({"value": "250", "op": "save"})
    assert client.post("/thresholds/1/edit", data=data).status_code == 302
    text = env.thresholds_path.read_text()
    assert "id = 1  # keep" in text and "# uplink" in text and "# disks" in text
    t = load_thresholds(env.thresholds_path)[0]
    assert t.value == 250.0
    assert dict(t.actions[0].params) == {"url": "https://hooks.example.org/x", "secret": "s3cr3t-hmac-key",
                                         "headers": {"Authorization": "Bearer hidden-api-key"}}
    audit = client.get("/audit").get_data(as_text=True)
    assert "-value = 100.0" in audit and "+value = 250.0" in audit


def test_the_id_of_a_saved_threshold_cannot_change(app: Flask, env: Env) -> None:
    client = logged_in(app)
    data = form_of(client.get("/thresholds/2/edit").get_data(as_text=True))
    data.update({"id": "7", "op": "save"})
    resp = client.post("/thresholds/2/edit", data=data)
    assert resp.status_code == 400 and "cannot change" in resp.get_data(as_text=True)


def test_saving_refuses_when_the_file_changed_meanwhile(app: Flask, env: Env) -> None:
    client = logged_in(app)
    data = form_of(client.get("/thresholds/2/edit").get_data(as_text=True))
    changed = THRESHOLDS.replace('name = "disks"', 'name = "disks (edited by hand)"')
    env.thresholds_path.write_text(changed)
    data.update({"value": "9", "op": "save"})
    resp = client.post("/thresholds/2/edit", data=data)
    assert resp.status_code == 409 and "changed by someone else" in resp.get_data(as_text=True)
    assert env.thresholds_path.read_text() == changed


def test_duplicate_copies_settings_and_secrets(app: Flask, env: Env) -> None:
    client = logged_in(app)
    page = client.get("/thresholds/1/duplicate").get_data(as_text=True)
    assert "s3cr3t-hmac-key" not in page
    data = form_of(page)
    assert data["id"] == "3" and data["name"] == "copy of uplink" and data["glob"] == "interfaces/*/bytes.rrd"
    data["op"] = "save"
    assert client.post("/thresholds/new", data=data).status_code == 302
    t = load_thresholds(env.thresholds_path)[-1]
    assert t.id == 3 and t.actions[0].params["secret"] == "s3cr3t-hmac-key"
    assert "duplicate" in client.get("/audit").get_data(as_text=True)


def test_enable_disable_and_delete(app: Flask, env: Env) -> None:
    client = logged_in(app)
    token = csrf(client.get("/thresholds").get_data(as_text=True))
    page = client.get("/thresholds").get_data(as_text=True)
    version = re.search(r'name="version" type="hidden" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
    resp = client.post("/thresholds/2/disable", data={"csrf_token": token, "version": version})
    assert resp.status_code == 302
    assert [t.enabled for t in load_thresholds(env.thresholds_path)] == [True, False]
    # The table's version is now stale: a second click from the old page is refused.
    resp = client.post("/thresholds/2/enable", data={"csrf_token": token, "version": version},
                       follow_redirects=True)
    assert "changed since this page was loaded" in resp.get_data(as_text=True)
    confirm = client.get("/thresholds/2/delete").get_data(as_text=True)
    assert "Delete threshold 2?" in confirm
    version = re.search(r'name="version" type="hidden" value="([^"]+)"', confirm).group(1)  # type: ignore[union-attr]
    resp = client.post("/thresholds/2/delete", data={"csrf_token": token, "version": version})
    assert resp.status_code == 302
    text = env.thresholds_path.read_text()
    assert [t.id for t in load_thresholds(env.thresholds_path)] == [1] and "# disks" not in text
    assert "# site thresholds" in text
    audit = client.get("/audit").get_data(as_text=True)
    assert "delete" in audit and "disable" in audit


def test_a_legacy_file_is_shown_but_not_edited(app: Flask, env: Env) -> None:
    env.write_thresholds("1\tdf/*.rrd\tbelow\t5.0\t0\tnow-3h\tnow\tNone\tNone\t60\n")
    client = logged_in(app)
    page = client.get("/thresholds").get_data(as_text=True)
    assert "import-legacy" in page
    resp = client.get("/thresholds/new", follow_redirects=True)
    assert "import-legacy" in resp.get_data(as_text=True)


def test_a_glob_the_matcher_cannot_compile_is_named_not_a_500(app: Flask, env: Env) -> None:
    env.write_thresholds(THRESHOLDS.replace('glob = "df/*.rrd"', 'glob = "df/[z-a]*.rrd"'))
    client = logged_in(app)
    resp = client.get("/thresholds")
    assert resp.status_code == 200
    page = html.unescape(resp.get_data(as_text=True))
    assert "thresholds.toml:21:" in page and "threshold 2" in page and "z-a" in page
    token = csrf(resp.get_data(as_text=True))
    resp = client.post("/check-now", data={"csrf_token": token}, follow_redirects=True)
    assert resp.status_code == 200 and "z-a" in html.unescape(resp.get_data(as_text=True))


def test_file_names_are_escaped(app: Flask, env: Env) -> None:
    env.rrd("hostile/<img src=x onerror=alert(1)>.rrd", {"v": [500.0] * 8})
    env.write_thresholds(THRESHOLDS + '\n[[threshold]]\nid = 5\nname = "<b>bold</b>"\nglob = "hostile/*.rrd"\n'
                         'type = "above"\nvalue = 1.0\n')
    client = logged_in(app)
    page = client.get("/thresholds").get_data(as_text=True)
    assert "<b>bold</b>" not in page and "&lt;b&gt;bold&lt;/b&gt;" in page


def test_the_scheduler_uses_saved_changes_at_the_next_check(app: Flask, env: Env) -> None:
    service: CheckService = app.extensions["rrdalarm"]
    assert service.run_check().alarms_fired == 1  # eth0 above 100
    client = logged_in(app)
    data = form_of(client.get("/thresholds/1/edit").get_data(as_text=True))
    data.update({"value": "1000", "op": "save"})
    assert client.post("/thresholds/1/edit", data=data).status_code == 302
    result = service.run_check()
    assert result.alarms_fired == 0 and result.firing == 0


def test_preview_shows_what_would_fire_and_a_backtest_without_saving(app: Flask, env: Env) -> None:
    client = logged_in(app)
    data = form_of(client.get("/thresholds/new").get_data(as_text=True))
    data.update({"name": "busy", "glob": "interfaces/*/bytes.rrd", "type": "above", "value": "100",
                 "repetitions": "2", "op": "preview"})
    resp = client.post("/thresholds/new", data=data)
    page = resp.get_data(as_text=True)
    assert resp.status_code == 200, page
    assert re.search(r'id="preview-matched">2<', page) and re.search(r'id="preview-would-fire">1<', page)
    rows = page.split('id="preview-rows"')[1].split("</table>")[0]
    assert rows.index("interfaces/eth0/bytes.rrd") < rows.index("would fire") < rows.index("interfaces/eth1")
    # Three points above 100 at the end of the file: one firing in the replayed day, still firing now.
    assert re.search(r'id="backtest-fires">1<', page)
    graph = html.unescape(re.search(r'id="preview-graph-1" src="([^"]+)"', page).group(1))  # type: ignore[union-attr]
    png = client.get(graph)
    assert png.status_code == 200 and png.data.startswith(b"\x89PNG")
    assert env.thresholds_path.read_text() == THRESHOLDS  # nothing saved
    assert 'value="busy"' in page  # the form keeps what was typed


@pytest.mark.parametrize("rel", ["../rrdalarm.toml", "/etc/passwd", "interfaces/../../thresholds.toml"])
def test_the_preview_graph_stays_inside_the_root(app: Flask, rel: str) -> None:
    client = logged_in(app)
    resp = client.get("/thresholds/preview.png", query_string={"file": rel, "ds": "rx", "value": "1"})
    assert resp.status_code in (400, 404) and not resp.data.startswith(b"\x89PNG")


def test_the_audit_log_stores_no_secret(app: Flask, env: Env) -> None:
    client = logged_in(app)
    data = form_of(client.get("/thresholds/1/edit").get_data(as_text=True))
    data.update({"action-0-webhook-secret": "new-hmac-key-value",
                 "action-0-webhook-headers": "Authorization: Bearer new-api-key", "value": "300", "op": "save"})
    assert client.post("/thresholds/1/edit", data=data).status_code == 302
    assert "new-hmac-key-value" in env.thresholds_path.read_text()
    store = app.extensions["rrdalarm"].store
    stored = "".join(e.diff for e in store.audit())
    for secret in ("s3cr3t-hmac-key", "hidden-api-key", "new-hmac-key-value", "new-api-key"):
        assert secret not in stored, secret
    assert "+value = 300.0" in stored and 'secret = "***"' in stored


def test_changing_the_webhook_url_asks_for_its_secrets_again(app: Flask, env: Env) -> None:
    client = logged_in(app)
    data = form_of(client.get("/thresholds/1/edit").get_data(as_text=True))
    data.update({"action-0-webhook-url": "https://elsewhere.example.net/hook", "op": "save"})
    r = client.post("/thresholds/1/edit", data=data)
    page = html.unescape(r.get_data(as_text=True))
    assert r.status_code == 400 and "enter secret, headers again" in page
    assert env.thresholds_path.read_text() == THRESHOLDS
    data.update({"action-0-webhook-secret": "key-for-elsewhere", "action-0-webhook-headers": "X-Key: other"})
    assert client.post("/thresholds/1/edit", data=data).status_code == 302
    params = dict(load_thresholds(env.thresholds_path)[0].actions[0].params)
    assert params == {"url": "https://elsewhere.example.net/hook", "secret": "key-for-elsewhere",
                      "headers": {"X-Key": "other"}}


def test_a_url_with_credentials_is_shown_without_them(app: Flask, env: Env) -> None:
    env.write_thresholds(THRESHOLDS.replace("https://hooks.example.org/x",
                                            "https://bot:pass-in-url@hooks.example.org/x?key=query-token"))
    client = logged_in(app)
    page = client.get("/thresholds/1/edit").get_data(as_text=True)
    assert "pass-in-url" not in page and "query-token" not in page and "hooks.example.org/x" in page
    data = form_of(page)
    data.update({"value": "7", "op": "save"})  # the URL sent back as shown keeps its stored credentials
    assert client.post("/thresholds/1/edit", data=data).status_code == 302
    params = dict(load_thresholds(env.thresholds_path)[0].actions[0].params)
    assert params["url"] == "https://bot:pass-in-url@hooks.example.org/x?key=query-token"
    assert params["secret"] == "s3cr3t-hmac-key"


@pytest.mark.parametrize("rel", ["z" * 300 + ".rrd", "a\x00b.rrd"])
def test_the_preview_graph_refuses_impossible_names(app: Flask, rel: str) -> None:
    client = logged_in(app)
    r = client.get("/thresholds/preview.png", query_string={"file": rel, "ds": "rx", "value": "1"})
    assert r.status_code == 400


def test_list_parameters_are_one_item_per_line_of_the_textarea() -> None:
    # A browser ends textarea lines with CRLF; U+2028 inside an argument is part of it, not a line end.
    from werkzeug.datastructures import MultiDict

    from rrdalarm.plugins import action_plugins
    from rrdalarm.web.threshold_form import actions_from_request

    form = MultiDict({"action-0-type": "script", "action-0-script-script": "notify.sh",
                      "action-0-script-args": "--to\r\nops\u2028lab\x85x\r\n\r\nlast"})
    [spec], missing = actions_from_request(form, action_plugins(), [])
    assert missing == []
    assert spec["args"] == ["--to", "ops\u2028lab\x85x", "last"]


def test_table_shows_limits_readable_with_the_unit_and_the_severity(app: Flask, env: Env) -> None:
    env.write_thresholds(THRESHOLDS.replace("value = 100.0\n", 'value = "80M"\nunit = "bit/s"\nseverity = "critical"\n')
                         .replace("value = 5.0\n", "value = 1234567\n"))
    page = logged_in(app, "victor").get("/thresholds").get_data(as_text=True)
    row1 = page.split('id="threshold-1"')[1].split("</tr>")[0]
    row2 = page.split('id="threshold-2"')[1].split("</tr>")[0]
    assert '<span class="severity severity-critical">critical</span>: above' in row1
    assert '<span class="limit" title="as typed: 80M">80 Mbit/s</span>' in row1
    assert '<span class="limit">1234567</span>' in row2 and ">warning</span>: below" in row2


TUNED_FORM = {
    "name": "uplink bits", "glob": "interfaces/*/bytes.rrd", "type": "above", "value": "80M", "repetitions": "2",
    "tuning-severity": "critical", "tuning-labels": "team=net\nsite = lab\n", "tuning-description": "uplink full",
    "tuning-runbook": "https://wiki.example.org/uplink", "tuning-unit": "bit/s", "tuning-scale": "8",
    "tuning-within": "3", "tuning-clear_value": "60M", "tuning-keep_firing_for": "10min", "tuning-no_data": "alarm",
    "tuning-stale_after": "15min", "tuning-flap_changes": "4", "tuning-flap_window": "1h", "op": "save",
}


def test_the_editor_has_an_input_for_every_tuning_field(app: Flask) -> None:
    from rrdalarm.config.tuning import TUNING_FIELDS

    page = logged_in(app).get("/thresholds/new").get_data(as_text=True)
    data = form_of(page)
    assert data["rearm"] == "3600"  # a new threshold re-arms once an hour
    for name, spec in TUNING_FIELDS.items():
        assert data[f"tuning-{name}"] == "", name
        block = page.split(f'id="field-{name}"')[1].split('<div class="field"')[0]
        assert f'<label for="tuning-{name}">{html.escape(spec.label)}</label>' in block
        assert f'<div class="help">{spec.help}</div>' in html.unescape(block)
        if spec.choices:
            options = re.findall(r'<option value="([^"]*)"', block)
            assert options == ["", *spec.choices]
    assert '<textarea name="tuning-labels"' in page and 'placeholder="80M"' in page


def test_tuning_fields_are_saved_as_typed_and_read_back(app: Flask, env: Env) -> None:
    client = logged_in(app)
    data = form_of(client.get("/thresholds/new").get_data(as_text=True)) | TUNED_FORM
    resp = client.post("/thresholds/new", data=data)
    assert resp.status_code == 302, resp.get_data(as_text=True)
    text = env.thresholds_path.read_text()
    assert text.startswith(THRESHOLDS.rstrip("\n"))
    added = text[len(THRESHOLDS.rstrip("\n")):]
    for line in ('value = "80M"', "rearm = 3600", 'severity = "critical"', 'labels = {team = "net", site = "lab"}',
                 'unit = "bit/s"', "scale = 8", "within = 3", 'clear_value = "60M"', 'keep_firing_for = "10min"',
                 'no_data = "alarm"', 'stale_after = "15min"', "flap_changes = 4", 'flap_window = "1h"'):
        assert f"\n{line}\n" in added, (line, added)
    t = load_thresholds(env.thresholds_path)[-1]
    tu = t.tuning
    assert (t.value, t.rearm, t.repetitions) == (80e6, 3600, 2)
    assert (str(tu.severity), dict(tu.labels), tu.description, tu.runbook, tu.unit, tu.scale) == (
        "critical", {"team": "net", "site": "lab"}, "uplink full", "https://wiki.example.org/uplink", "bit/s", 8.0)
    assert (tu.within, tu.clear_value, tu.keep_firing_for, str(tu.no_data), tu.stale_after) == (
        3, 60e6, 600, "alarm", 900)
    assert (tu.flap_changes, tu.flap_window) == (4, 3600)

    # The editor shows each field as typed; saving it unchanged leaves the file as it is.
    page = client.get("/thresholds/3/edit").get_data(as_text=True)
    again = form_of(page)
    assert again["value"] == "80M" and again["tuning-keep_firing_for"] == "10min"
    assert again["tuning-labels"] == "team=net\nsite=lab" and again["tuning-severity"] == "critical"
    assert again["tuning-scale"] == "8" and again["tuning-clear_value"] == "60M"
    assert client.post("/thresholds/3/edit", data=again | {"op": "save"}).status_code == 302
    assert env.thresholds_path.read_text() == text

    # An emptied input takes the field out of the file: its default applies again.
    again |= {"tuning-description": "", "tuning-labels": "", "op": "save"}
    assert client.post("/thresholds/3/edit", data=again).status_code == 302
    changed = env.thresholds_path.read_text()
    assert "description" not in changed and "labels" not in changed and 'keep_firing_for = "10min"' in changed
    assert load_thresholds(env.thresholds_path)[-1].tuning.description == ""


def test_an_empty_rearm_is_an_hour_for_a_new_threshold_and_files_without_rearm_keep_0(app: Flask, env: Env) -> None:
    client = logged_in(app)
    assert form_of(client.get("/thresholds/2/edit").get_data(as_text=True))["rearm"] == "0"
    data = form_of(client.get("/thresholds/new").get_data(as_text=True))
    data.update({"name": "n", "glob": "df/*.rrd", "type": "above", "value": "1", "rearm": "", "op": "save"})
    assert client.post("/thresholds/new", data=data).status_code == 302
    thresholds = load_thresholds(env.thresholds_path)
    assert [t.rearm for t in thresholds] == [0, 0, 3600]


@pytest.mark.parametrize(("change", "field", "message"), [
    ({"tuning-severity": "urgent"}, "severity", "must be one of 'critical', 'warning', 'info'"),
    ({"tuning-labels": "team=net\noops"}, "labels", "line 2 ('oops') is not key=value"),
    ({"tuning-runbook": "ftp://wiki"}, "runbook", "must be an http:// or https:// URL"),
    ({"tuning-scale": "0"}, "scale", "must be above 0"),
    ({"tuning-scale": "lots"}, "scale", "is not a number with an SI suffix"),
    ({"tuning-clear_value": "2k"}, "clear_value", "must be at or below the limit"),
    ({"tuning-keep_firing_for": "soon"}, "keep_firing_for", "is not a duration"),
    ({"tuning-stale_after": "-5"}, "stale_after", "must be a whole number of seconds"),
    ({"tuning-within": "1", "repetitions": "2"}, "within", "must be at least 'repetitions' (2)"),
    ({"tuning-flap_changes": "3"}, "flap_window", "needs both flap_changes and flap_window"),
    ({"tuning-no_data": "maybe"}, "no_data", "must be one of 'keep', 'ok', 'alarm'"),
])
def test_tuning_errors_come_back_beside_their_field(app: Flask, env: Env, change: dict[str, str], field: str,
                                                   message: str) -> None:
    client = logged_in(app)
    data = form_of(client.get("/thresholds/new").get_data(as_text=True))
    data.update({"name": "n", "glob": "df/*.rrd", "type": "above", "value": "1k", "op": "save"})
    data.update(change)
    resp = client.post("/thresholds/new", data=data)
    page = resp.get_data(as_text=True)
    assert resp.status_code == 400
    block = page.split(f'id="field-{field}"')[1].split('<div class="field"')[0]
    assert 'class="errors"' in block and message in html.unescape(block), html.unescape(block)
    assert "threshold 3:" not in block
    assert env.thresholds_path.read_text() == THRESHOLDS
    again = form_of(page)
    for key, value in change.items():
        if key.startswith("tuning-") and key != "tuning-severity" and key != "tuning-no_data":
            assert again[key] == value  # what was typed is shown again, to correct it


def test_preview_takes_an_si_limit_and_shows_values_with_the_unit(app: Flask, env: Env) -> None:
    client = logged_in(app)
    data = form_of(client.get("/thresholds/new").get_data(as_text=True))
    data.update({"name": "busy", "glob": "interfaces/*/bytes.rrd", "type": "above", "value": "0.1k",
                 "repetitions": "2", "tuning-unit": "B/s", "op": "preview"})
    page = client.post("/thresholds/new", data=data).get_data(as_text=True)
    assert re.search(r'id="preview-would-fire">1<', page)
    rows = page.split('id="preview-rows"')[1].split("</table>")[0]
    assert '<td class="num">500 B/s</td>' in rows and '<td class="num">10 B/s</td>' in rows
    assert form_of(page)["value"] == "0.1k" and env.thresholds_path.read_text() == THRESHOLDS


WINDOW = '\n[[maintenance]]\nname = "disk backup"\nschedule = "0 3 * * sun"\nduration = "1h"\nthreshold = 2\n'


def test_delete_keeps_maintenance_windows_and_refuses_a_threshold_one_names(app: Flask, env: Env) -> None:
    # The window sits right below threshold 2, the last threshold of the file.
    env.write_thresholds(THRESHOLDS + WINDOW)
    client = logged_in(app)
    page = client.get("/thresholds").get_data(as_text=True)
    token = csrf(page)
    version = re.search(r'name="version" type="hidden" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
    resp = client.post("/thresholds/2/delete", data={"csrf_token": token, "version": version},
                       follow_redirects=True)
    assert "threshold 2 is named by maintenance window &#39;disk backup&#39;" in resp.get_data(as_text=True)
    assert env.thresholds_path.read_text() == THRESHOLDS + WINDOW
    resp = client.post("/thresholds/1/delete", data={"csrf_token": token, "version": version})
    assert resp.status_code == 302
    text = env.thresholds_path.read_text()
    assert [t.id for t in load_thresholds(env.thresholds_path)] == [2] and text.endswith(WINDOW)


def field_block(page: str, field: str) -> str:
    return page.split(f'id="field-{field}"')[1].split('<div class="field"')[0]


def test_three_mistakes_show_three_errors_each_once_beside_its_field(app: Flask, env: Env) -> None:
    client = logged_in(app)
    data = form_of(client.get("/thresholds/new").get_data(as_text=True))
    data.update({"name": "n", "glob": "../etc/*.rrd", "type": "above", "value": "lots", "start": "yesterday-ish",
                 "op": "save"})
    resp = client.post("/thresholds/new", data=data)
    page = resp.get_data(as_text=True)
    assert resp.status_code == 400
    messages = {"glob": "cannot leave the RRD root", "value": "is not a number with an SI suffix",
                "start": "yesterday-ish"}
    for field, message in messages.items():
        block = html.unescape(field_block(page, field))
        assert 'class="errors"' in block and message in block, (field, block)
    errors = re.findall(r'<ul class="errors"[^>]*><li>(.*?)</li></ul>', page, re.S)
    assert len(errors) == 3, errors
    body = html.unescape(page.split("</h1>", 1)[1])
    for message in ("cannot leave the RRD root", "is not a number with an SI suffix"):
        assert body.count(message) == 1, message  # beside its field, and nowhere else
    summary = page.split('id="error-summary"')[1].split("</div>")[0]
    assert "3 fields need attention" in summary
    assert re.findall(r'href="#field-(\w+)"', summary) == ["glob", "value", "start"]
    assert 'id="form-error"' not in page and env.thresholds_path.read_text() == THRESHOLDS
    again = form_of(page)
    assert (again["glob"], again["value"], again["start"]) == ("../etc/*.rrd", "lots", "yesterday-ish")


def test_the_forms_own_checks_and_the_rules_and_actions_report_together(app: Flask, env: Env) -> None:
    client = logged_in(app)
    data = form_of(client.get("/thresholds/new").get_data(as_text=True))
    data.update({"name": "x" * 300, "glob": "df/*.rrd", "type": "above", "value": "1", "id": "1",
                 "tuning-labels": "oops", "tuning-scale": "0", "action-0-type": "email", "op": "save"})
    page = client.post("/thresholds/new", data=data).get_data(as_text=True)
    assert "Field cannot be longer than 255 characters" in field_block(page, "name")
    assert "already used by &#39;uplink&#39;; the next free id is 3" in field_block(page, "id")
    assert "is not key=value" in html.unescape(field_block(page, "labels"))
    assert "must be above 0" in field_block(page, "scale")
    assert "needs parameter &#39;to&#39;" in page.split('id="action-error"')[1].split("</ul>")[0]
    assert "5 fields need attention" in page and page.count('class="errors"') == 5


def test_a_new_threshold_is_proposed_the_next_free_id(app: Flask, env: Env) -> None:
    client = logged_in(app)
    env.write_thresholds(THRESHOLDS.replace("id = 2\n", "id = 41\n"))
    assert form_of(client.get("/thresholds/new").get_data(as_text=True))["id"] == "42"
    assert form_of(client.get("/thresholds/1/duplicate").get_data(as_text=True))["id"] == "42"
    env.write_thresholds("# nothing yet\n")
    assert form_of(client.get("/thresholds/new").get_data(as_text=True))["id"] == "1"


def test_the_preview_graphs_every_series_that_would_fire_up_to_a_limit(app: Flask, env: Env) -> None:
    end = int(time.time()) // 60 * 60
    for i in range(3):
        env.rrd(f"busy/host{i}.rrd", {"in": [500.0] * 8, "out": [1.0] * 8}, end=end)
    client = logged_in(app)
    data = form_of(client.get("/thresholds/new").get_data(as_text=True))
    data.update({"name": "busy", "glob": "busy/*.rrd", "type": "above", "value": "100", "op": "preview"})
    page = client.post("/thresholds/new", data=data).get_data(as_text=True)
    assert re.search(r'id="preview-would-fire">3<', page)
    graphs = [html.unescape(u) for u in re.findall(r'id="preview-graph-\d+" src="([^"]+)"', page)]
    assert len(graphs) == 3 and 'id="preview-graphs-more"' not in page
    drawn = set()
    for url in graphs:
        png = client.get(url)
        assert png.status_code == 200 and png.data.startswith(b"\x89PNG"), url
        args = dict(re.findall(r"[?&](\w+)=([^&]+)", url))
        drawn.add((args["file"].replace("%2F", "/"), args["ds"]))
    assert drawn == {(f"busy/host{i}.rrd", "in") for i in range(3)}  # the firing series, not "out"

    for i in range(3, 9):
        env.rrd(f"busy/host{i}.rrd", {"in": [500.0] * 8, "out": [1.0] * 8}, end=end)
    page = client.post("/thresholds/new", data=data).get_data(as_text=True)
    assert re.search(r'id="preview-would-fire">9<', page)
    assert len(re.findall(r'id="preview-graph-\d+"', page)) == 6
    assert re.search(r'id="preview-graphs-more">and 3 more would fire', page)


def test_a_preview_with_nothing_firing_graphs_the_first_series(app: Flask, env: Env) -> None:
    client = logged_in(app)
    data = form_of(client.get("/thresholds/new").get_data(as_text=True))
    data.update({"name": "quiet", "glob": "interfaces/*/bytes.rrd", "type": "above", "value": "1G", "op": "preview"})
    page = client.post("/thresholds/new", data=data).get_data(as_text=True)
    assert re.search(r'id="preview-would-fire">0<', page) and "The first matched series" in page
    assert len(re.findall(r'id="preview-graph-\d+"', page)) == 1


def test_the_editor_layout_is_in_the_one_stylesheet(app: Flask) -> None:
    client = logged_in(app)
    page = client.get("/thresholds/new").get_data(as_text=True)
    assert re.findall(r'<link rel="stylesheet" href="([^"]+)"', page) == ["/static/rrdalarm.css"]
    css = client.get("/static/rrdalarm.css")
    assert css.status_code == 200 and b"@media (min-width: 1100px)" in css.data


def test_the_tree_of_a_threshold_stays_through_an_edit_and_can_be_changed(app: Flask, env: Env) -> None:
    env.write_thresholds(env.thresholds_path.read_text() + '\n[[threshold]]\nid = 9\nglob = "x/*.rrd"\n'
                         'type = "above"\nvalue = 1\ntree = "collector-a"\n')
    client = logged_in(app)
    data = form_of(client.get("/thresholds/9/edit").get_data(as_text=True))
    assert data["tree"] == "collector-a"
    assert client.post("/thresholds/9/edit", data=data | {"name": "renamed", "op": "save"}).status_code == 302
    assert [(t.name, t.tree) for t in load_thresholds(env.thresholds_path) if t.id == 9] == [("renamed", "collector-a")]
    data = form_of(client.get("/thresholds/9/edit").get_data(as_text=True))
    assert client.post("/thresholds/9/edit", data=data | {"tree": "", "op": "save"}).status_code == 302
    assert [t.tree for t in load_thresholds(env.thresholds_path) if t.id == 9] == ["local"]
    assert "tree" not in env.thresholds_path.read_text()
    data = form_of(client.get("/thresholds/9/edit").get_data(as_text=True))
    page = client.post("/thresholds/9/edit", data=data | {"tree": "a b", "op": "save"}).get_data(as_text=True)
    assert "must be a tree name" in page
