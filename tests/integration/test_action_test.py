"""`rrdalarm action test`: a TEST event through a threshold's real actions (aiosmtpd, pytest-httpserver)."""

from __future__ import annotations

import json

import pytest
from conftest import Env, Inbox, WebApp, assert_one_clear_line, free_port, threshold
from flask import Flask
from pytest_httpserver import HTTPServer
from test_threshold_pages import PASSWORD, csrf, logged_in

from rrdalarm.config.thresholds import load_thresholds
from rrdalarm.delivery.outbox import deliver_pending
from rrdalarm.delivery.test_notification import send_test
from rrdalarm.model.records import NewEvent, PlannedDelivery, RunSummary
from rrdalarm.store.database import Store


def setup(env: Env, smtp_port: int, hook: str) -> None:
    with env.settings_path.open("a", encoding="utf-8") as f:
        f.write(f'[smtp]\nhost = "127.0.0.1"\nport = {smtp_port}\nsender = "rrdalarm@example.org"\n'
                "[delivery]\ntimeout = 5\n")
    env.write_thresholds(
        threshold(1, name="disk full", actions=[{"type": "email", "to": "ops@example.org"},
                                                {"type": "webhook", "url": hook}])
        + threshold(2, glob="b.rrd")
    )


def test_sends_a_marked_test_through_every_action(env: Env, smtp: tuple[Inbox, int], httpserver: HTTPServer,
                                                  store: Store) -> None:
    inbox, port = smtp
    httpserver.expect_request("/hook", method="POST").respond_with_data("ok")
    setup(env, port, httpserver.url_for("/hook"))
    proc = env.run("action", "test", "1")
    assert proc.returncode == 0, (proc.stdout, proc.stderr)
    assert proc.stdout.splitlines() == ["action 1 (email to ops@example.org): sent", "action 2 (webhook): sent"]
    [mail] = inbox.messages
    assert str(mail["Subject"]).startswith("[rrdalarm] TEST ")
    text = mail.get_body(preferencelist=("plain",))
    assert text is not None
    assert "TEST notification from rrdalarm: threshold 1 'disk full' (not an alarm)" in text.get_content()
    [(request, _)] = httpserver.log
    body = json.loads(request.get_data())
    assert body["counts"] == {"TEST": 1}
    [event] = body["events"]
    assert event["kind"] == "test" and event["status"] == "TEST" and "not an alarm" in event["message"]
    # In the history as TEST, never a firing; the run is no check for the service's health.
    [recorded] = store.events()
    assert recorded.status == "TEST" and recorded.kind == "test"
    assert store.threshold_activity([1]) == ({}, {})
    assert store.newest_run_at() is None
    history = env.run("history", "--deliveries", check=True).stdout
    assert history.count("sent") == 2


def test_only_the_chosen_action(env: Env, smtp: tuple[Inbox, int], httpserver: HTTPServer) -> None:
    inbox, port = smtp
    httpserver.expect_request("/hook", method="POST").respond_with_data("ok")
    setup(env, port, httpserver.url_for("/hook"))
    proc = env.run("action", "test", "1", "--action", "2")
    assert proc.returncode == 0, (proc.stdout, proc.stderr)
    assert proc.stdout.splitlines() == ["action 2 (webhook): sent"]
    assert not inbox.messages
    assert len(httpserver.log) == 1


def test_an_smtp_server_that_is_not_there_fails_at_once_and_is_not_retried(
        env: Env, httpserver: HTTPServer, store: Store) -> None:
    httpserver.expect_request("/hook", method="POST").respond_with_data("ok")
    port = free_port()  # nothing listens there
    setup(env, port, httpserver.url_for("/hook"))
    proc = env.run("action", "test", "1")
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("action 1 (email to ops@example.org): failed: ")
    assert f"127.0.0.1:{port}" in lines[0] and "Connection refused" in lines[0], lines[0]
    assert lines[1] == "action 2 (webhook): sent"
    assert "Traceback" not in proc.stdout + proc.stderr
    # Dead at once: neither `deliver` nor the outbox ever tries it again.
    assert deliver_pending(store, env.settings(), clock=lambda: 2**31 - 1) == []
    [(row, attempts)] = [(d, a) for d, a in store.deliveries() if d.action == "email"]
    assert row.status == "dead" and len(attempts) == 1
    assert "0 delivered, 0 failed (will retry), 0 dead" in env.run("deliver").stdout


def test_leaves_other_due_deliveries_to_the_outbox(env: Env, smtp: tuple[Inbox, int], httpserver: HTTPServer,
                                                   store: Store) -> None:
    inbox, port = smtp
    httpserver.expect_request("/hook", method="POST").respond_with_data("ok")
    setup(env, port, httpserver.url_for("/hook"))
    env.run("action", "test", "1", "--action", "1", check=True)
    settings = env.settings()
    assert settings.thresholds is not None
    thresholds = load_thresholds(settings.thresholds)
    # A due delivery of someone else (queued, not sent) stays queued while a test is sent.
    event = NewEvent(1, "disk full", "a.rrd", "value", "ALARM FIRED", "fired", "above", 5, 9, 100, "high")
    store.record_check(RunSummary(100, 0, 1, 1, 1, 1, 0), [], [event],
                       [PlannedDelivery("other", "webhook", {"url": httpserver.url_for("/hook")}, (0,))])
    results = send_test(store, settings, thresholds, 1, 2)
    assert [r.line() for r in results] == ["action 2 (webhook): sent"]
    assert {d.id: d.status for d, _ in store.deliveries()}["other"] == "pending"
    assert len(inbox.messages) == 1


@pytest.mark.parametrize(("args", "fragment"), [
    (("7",), "no threshold with id 7"),
    (("2",), "threshold 2 has no actions"),
    (("1", "--action", "3"), "--action must be 1 to 2, not 3"),
    (("1", "--action", "0"), "--action must be 1 to 2, not 0"),
])
def test_bad_ids_are_one_clear_line(env: Env, args: tuple[str, ...], fragment: str) -> None:
    setup(env, free_port(), "http://127.0.0.1:9/hook")
    assert_one_clear_line(env.run("action", "test", *args), fragment)


@pytest.fixture
def app(env: Env, make_app: WebApp, smtp: tuple[Inbox, int], httpserver: HTTPServer) -> Flask:
    httpserver.expect_request("/hook", method="POST").respond_with_data("ok")
    setup(env, smtp[1], httpserver.url_for("/hook"))
    app: Flask = make_app(env, [("alice", PASSWORD, "admin"), ("victor", PASSWORD, "viewer")])
    return app


def test_the_editor_sends_a_test_of_one_saved_action(app: Flask, smtp: tuple[Inbox, int],
                                                      httpserver: HTTPServer) -> None:
    client = logged_in(app)
    page = client.get("/thresholds/1/edit").get_data(as_text=True)
    assert 'formaction="/thresholds/1/actions/1/test"' in page
    assert 'formaction="/thresholds/1/actions/2/test"' in page
    assert "/thresholds/1/actions/3/test" not in page  # spare slots have nothing saved to test
    resp = client.post("/thresholds/1/actions/1/test", data={"csrf_token": csrf(page)}, follow_redirects=True)
    assert resp.status_code == 200
    assert "Test: action 1 (email to ops@example.org): sent" in resp.get_data(as_text=True)
    [mail] = smtp[0].messages
    assert str(mail["Subject"]).startswith("[rrdalarm] TEST ")
    assert not httpserver.log
    resp = client.post("/thresholds/1/actions/5/test", data={"csrf_token": csrf(page)}, follow_redirects=True)
    assert "--action must be 1 to 2, not 5" in resp.get_data(as_text=True)


def test_the_editors_test_needs_an_admin_and_csrf(app: Flask, smtp: tuple[Inbox, int]) -> None:
    admin = logged_in(app)
    assert admin.post("/thresholds/1/actions/1/test").status_code == 400  # no CSRF token
    viewer = logged_in(app, "victor")
    token = csrf(viewer.get("/thresholds").get_data(as_text=True))
    assert viewer.post("/thresholds/1/actions/1/test", data={"csrf_token": token}).status_code == 403
    assert not smtp[0].messages
