"""/silences: everyone logged in sees silences and acknowledgements; only admins make or end them."""

from __future__ import annotations

import pytest
from conftest import Env, WebApp, check, threshold
from flask import Flask
from test_control_api import logged_in

from rrdalarm.control import silences
from rrdalarm.store.database import Store

LOG = {"type": "log", "file": "a.log", "on": ["fire", "ack"]}


@pytest.fixture
def app(env: Env, make_app: WebApp) -> Flask:
    env.rrd("web/a.rrd", {"x": [9] * 40})
    env.write_thresholds(threshold(glob="web/*.rrd", name="web load", actions=[LOG]))
    users = [("alice", "correct horse battery", "admin"), ("vic", "correct horse battery", "viewer")]
    app: Flask = make_app(env, users, WTF_CSRF_ENABLED=True)
    return app


def test_an_admin_silences_expires_and_acknowledges_from_the_page(app: Flask, env: Env, store: Store) -> None:
    check(env, store)
    client, token = logged_in(app, "alice")
    page = client.get("/silences").get_data(as_text=True)
    assert 'id="new-silence"' in page and 'id="new-ack"' in page and "No silences in force or to come." in page
    form = {"csrf_token": token, "threshold": "1", "series": "web/*", "for": "1h", "comment": "rack move",
            "labels": "", "severity": ""}
    done = client.post("/silences", data=form, follow_redirects=True).get_data(as_text=True)
    assert "silence 1 (threshold 1, series web/*) for 1 h added" in done
    assert 'id="silence-1" class="silence-active"' in done and "rack move" in done and "(web load)" in done
    bad = client.post("/silences", data=form | {"for": "", "end": ""}, follow_redirects=True).get_data(as_text=True)
    assert "Silence not added: give either an end or a duration" in bad
    acked = client.post("/acks", data={"csrf_token": token, "threshold": "1", "comment": "on it"},
                        follow_redirects=True).get_data(as_text=True)
    assert "Acknowledged 1 series." in acked and "on it" in acked
    gone = client.post("/silences/1/expire", data={"csrf_token": token}, follow_redirects=True).get_data(as_text=True)
    assert "Silence 1 expired." in gone and "No silences in force or to come." in gone
    audit = client.get("/audit").get_data(as_text=True)
    assert audit.count("alice · silence") == 1 and "alice · expire" in audit and "alice · ack" in audit
    assert '<option value="1">#1 web load</option>' in audit


def test_a_viewer_sees_but_cannot_make(app: Flask, env: Env, store: Store) -> None:
    check(env, store)
    admin, token = logged_in(app, "alice")
    admin.post("/silences", data={"csrf_token": token, "for": "1h", "comment": "everything"})
    viewer, vtoken = logged_in(app, "vic")
    page = viewer.get("/silences").get_data(as_text=True)
    assert ">Silences</a>" in page and "everything" in page
    assert 'id="new-silence"' not in page and "Expire</button>" not in page
    for path in ("/silences", "/silences/1/expire", "/acks"):
        assert viewer.post(path, data={"csrf_token": vtoken, "threshold": "1", "for": "1h", "comment": "x"}
                           ).status_code == 403
        assert admin.post(path, data={"threshold": "1", "for": "1h", "comment": "x"}).status_code == 400  # no CSRF
    assert app.test_client().get("/silences").status_code == 401
    # The API token reads the page; it makes silences through /api/silences only (recorded as "token").
    env.settings_path.write_text(env.settings_path.read_text() + '\n[service]\napi_token = "tok-0123456789abcdef"\n')
    bearer = {"Authorization": "Bearer tok-0123456789abcdef"}
    scripted = app.test_client()
    assert scripted.get("/silences", headers=bearer).status_code == 200
    for path in ("/silences", "/silences/1/expire", "/acks"):
        assert scripted.post(path, data={"threshold": "1", "for": "1h", "comment": "x"},
                             headers=bearer).status_code in (400, 403)
    assert [s.expired_by for s in silences.listed(store, 0, include_ended=True)] == [None]


def test_windows_what_each_covers_now_and_extend(app: Flask, env: Env, store: Store) -> None:
    env.write_thresholds(env.thresholds_path.read_text() + (
        '\n[[maintenance]]\nname = "nightly"\nschedule = "0 3 * * *"\nduration = "1h"\nthreshold = 1\n'
        'comment = "backup"\n'))
    check(env, store)
    client, token = logged_in(app, "alice")
    client.post("/silences", data={"csrf_token": token, "threshold": "1", "series": "web/*", "for": "1h",
                                   "comment": "rack move"})
    page = client.get("/silences").get_data(as_text=True)
    # No check of this process yet: the stored states.
    assert '<td data-label="Matches now" class="matches">1 firing</td>' in page
    assert "nightly" in page and "<code>0 3 * * *</code> for 1 h" in page and "backup" in page
    assert "threshold 1" in page.split('id="windows"')[1]
    before = silences.listed(store, 0)[0].ends_at
    done = client.post("/silences/1/extend", data={"csrf_token": token, "for": "2h"},
                       follow_redirects=True).get_data(as_text=True)
    assert "Silence 1 now ends" in done
    assert silences.listed(store, 0)[0].ends_at == before + 7200
    bad = client.post("/silences/1/extend", data={"csrf_token": token, "for": "soon"},
                      follow_redirects=True).get_data(as_text=True)
    assert "is not a duration" in bad
    assert [a.change for a in store.audit()][:2] == ["extend", "silence"]
