"""The `webhook` action against a real HTTP server (pytest-httpserver on 127.0.0.1)."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from pathlib import Path
from typing import Any, cast

import pytest
from conftest import T0, free_port, make_event, tuned_event
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from rrdalarm import __version__
from rrdalarm.actions.webhook import WebhookAction, safe_url
from rrdalarm.model.events import Delivery, Event
from rrdalarm.model.states import EventKind
from rrdalarm.plugins import ActionContext, ActionError, action_plugins, validate_params

KEY = "hmac-Key-0123456789"




event = make_event


def delivery(*events: Event, attempt: int = 1) -> Delivery:
    events = events or (event(1), event(2, status="RESOLVED", kind=EventKind.RESOLVED, value=1.0))
    return Delivery(id="d-42", action="webhook", params={}, events=events, attempt=attempt, created_at=T0 + 1)


def ctx(tmp_path: Path, timeout: float = 5.0) -> ActionContext:
    return ActionContext(log_dir=tmp_path, data_dir=tmp_path, timeout=timeout)


def run(tmp_path: Path, d: Delivery | None = None, timeout: float = 5.0, **params: Any) -> None:
    WebhookAction(validate_params(WebhookAction, params), ctx(tmp_path, timeout)).run(d or delivery())


def last_request(httpserver: HTTPServer) -> Request:
    assert httpserver.log, "the receiver got nothing"
    return httpserver.log[-1][0]


def test_registered_through_its_entry_point() -> None:
    assert action_plugins()["webhook"] is cast(object, WebhookAction)


def test_posts_one_json_document_with_headers(httpserver: HTTPServer, tmp_path: Path) -> None:
    httpserver.expect_request("/hook", method="POST").respond_with_data("ok")
    run(tmp_path, url=httpserver.url_for("/hook"), headers={"Authorization": "Bearer abc", "X-Team": "ops"})
    req = last_request(httpserver)
    body = json.loads(req.get_data())
    assert body["delivery_id"] == "d-42" and body["created_at"] == T0 + 1
    assert body["counts"] == {"ALARM FIRED": 1, "RESOLVED": 1}
    assert [e["id"] for e in body["events"]] == [1, 2]
    assert body["events"][0] == event(1).as_dict()
    assert body["events"][1]["kind"] == "resolved"
    assert req.headers["Content-Type"] == "application/json"
    assert req.headers["X-Rrdalarm-Delivery"] == "d-42"
    assert req.headers["User-Agent"] == f"rrdalarm/{__version__}"
    assert req.headers["Authorization"] == "Bearer abc" and req.headers["X-Team"] == "ops"
    assert "X-Rrdalarm-Signature" not in req.headers


def test_signature_is_hmac_sha256_of_the_raw_body(httpserver: HTTPServer, tmp_path: Path) -> None:
    httpserver.expect_request("/hook").respond_with_data("ok")
    run(tmp_path, url=httpserver.url_for("/hook"), secret=KEY)
    req = last_request(httpserver)
    raw = req.get_data()
    expected = "sha256=" + hmac.new(KEY.encode(), raw, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(req.headers["X-Rrdalarm-Signature"], expected)
    wrong = "sha256=" + hmac.new(b"other", raw, hashlib.sha256).hexdigest()
    assert not hmac.compare_digest(req.headers["X-Rrdalarm-Signature"], wrong)


def test_secret_and_header_from_the_environment(
    httpserver: HTTPServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOOK_KEY", KEY)
    monkeypatch.setenv("HOOK_TOKEN", "Bearer from-env")
    httpserver.expect_request("/hook").respond_with_data("ok")
    params: dict[str, Any] = {"url": httpserver.url_for("/hook"), "secret": {"env": "HOOK_KEY"},
              "headers": {"Authorization": {"env": "HOOK_TOKEN"}}}
    run(tmp_path, **params)
    req = last_request(httpserver)
    expected = "sha256=" + hmac.new(KEY.encode(), req.get_data(), hashlib.sha256).hexdigest()
    assert hmac.compare_digest(req.headers["X-Rrdalarm-Signature"], expected)
    assert req.headers["Authorization"] == "Bearer from-env"

    monkeypatch.delenv("HOOK_KEY")
    with pytest.raises(ActionError, match="HOOK_KEY is not set") as err:
        run(tmp_path, **params)
    assert not err.value.permanent and KEY not in str(err.value)


def test_500_is_retried_and_the_retry_carries_the_same_delivery_id(httpserver: HTTPServer, tmp_path: Path) -> None:
    httpserver.expect_oneshot_request("/hook").respond_with_data("down", status=500)
    httpserver.expect_oneshot_request("/hook").respond_with_data("ok", status=200)
    url = httpserver.url_for("/hook")
    d = delivery()
    with pytest.raises(ActionError, match="HTTP 500") as err:
        run(tmp_path, d, url=url)
    assert not err.value.permanent
    run(tmp_path, Delivery(d.id, d.action, d.params, d.events, attempt=2, created_at=d.created_at), url=url)
    seen = [req.headers["X-Rrdalarm-Delivery"] for req, _ in httpserver.log]
    assert seen == ["d-42", "d-42"]
    bodies = [req.get_data() for req, _ in httpserver.log]
    assert bodies[0] == bodies[1]  # the same document, so a receiver can dedupe on either


@pytest.mark.parametrize(("status", "permanent"), [(404, True), (400, True), (401, True), (429, False),
                                                   (503, False), (408, False)])
def test_status_codes(httpserver: HTTPServer, tmp_path: Path, status: int, permanent: bool) -> None:
    httpserver.expect_request("/hook").respond_with_data("no", status=status)
    with pytest.raises(ActionError, match=f"HTTP {status}") as err:
        run(tmp_path, url=httpserver.url_for("/hook"))
    assert err.value.permanent is permanent


def test_redirect_is_not_followed(httpserver: HTTPServer, tmp_path: Path) -> None:
    httpserver.expect_request("/hook").respond_with_data("", status=302, headers={"Location": "/elsewhere"})
    httpserver.expect_request("/elsewhere").respond_with_data("ok")
    with pytest.raises(ActionError, match=r"HTTP 302.*not followed") as err:
        run(tmp_path, url=httpserver.url_for("/hook"), secret=KEY)
    assert err.value.permanent
    assert [req.path for req, _ in httpserver.log] == ["/hook"]


def test_slow_receiver_times_out_after_context_timeout(httpserver: HTTPServer, tmp_path: Path) -> None:
    def slow(request: Request) -> Response:
        time.sleep(3)
        return Response("late")

    httpserver.expect_request("/slow").respond_with_handler(slow)
    started = time.monotonic()
    with pytest.raises(ActionError, match="no answer within 1 s") as err:
        run(tmp_path, timeout=1.0, url=httpserver.url_for("/slow"))
    elapsed = time.monotonic() - started
    assert 0.9 <= elapsed < 2.5
    assert not err.value.permanent


def test_timeout_param_is_capped_by_the_context(httpserver: HTTPServer, tmp_path: Path) -> None:
    def slow(request: Request) -> Response:
        time.sleep(2)
        return Response("late")

    httpserver.expect_request("/slow").respond_with_handler(slow)
    url = httpserver.url_for("/slow")
    started = time.monotonic()
    with pytest.raises(ActionError, match="no answer within 1 s"):
        WebhookAction(validate_params(WebhookAction, {"url": url, "timeout": 30}), ctx(tmp_path, 1.0)).run(delivery())
    with pytest.raises(ActionError, match=r"no answer within 0\.5 s"):
        WebhookAction(validate_params(WebhookAction, {"url": url, "timeout": 0.5}), ctx(tmp_path, 1.0)).run(delivery())
    assert time.monotonic() - started < 4


def test_connection_refused_is_retryable(tmp_path: Path) -> None:
    with pytest.raises(ActionError, match="refused") as err:
        run(tmp_path, url=f"http://127.0.0.1:{free_port()}/hook?token=tok-SECRET-1")
    assert not err.value.permanent
    assert "SECRET" not in str(err.value) and "token" not in str(err.value)


def test_no_secret_text_in_any_error(httpserver: HTTPServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOOK_KEY", KEY)
    httpserver.expect_request("/services/T000/B000/XXXXSECRETPATH").respond_with_data("no", status=500)
    url = httpserver.url_for("/services/T000/B000/XXXXSECRETPATH").replace("http://", "http://bob:pa55word@")
    url += "?token=qSECRETq#frag"
    messages = []
    for status_url in (url, url.replace(f":{httpserver.port}/", f":{free_port()}/")):
        with pytest.raises(ActionError) as err:
            run(tmp_path, url=status_url, secret={"env": "HOOK_KEY"}, headers={"Authorization": "Bearer hdrSECRET"})
        messages.append(str(err.value))
    assert "HTTP 500" in messages[0]
    for msg in messages:
        assert "\n" not in msg
        for secret in (KEY, "pa55word", "bob", "SECRET", "token", "frag", "hdrSECRET"):
            assert secret not in msg, msg
        assert "services" not in msg and msg.startswith("webhook: http://localhost:")


def test_safe_url() -> None:
    assert safe_url("https://u:p@example.org:8443/a/b/c?x=1#f") == "https://example.org:8443"
    assert safe_url("http://[::1]:81/hook") == "http://[::1]:81"
    # Telegram's bot API puts the token in the first path segment.
    assert safe_url("https://api.telegram.org/bot123456:AAE-secret/sendMessage") == "https://api.telegram.org"
    assert safe_url("http://example.org") == "http://example.org"


@pytest.mark.parametrize(("params", "match"), [
    ({}, "needs parameter 'url'"),
    ({"url": "ftp://example.org/x"}, "http:// or https://"),
    ({"url": "http:///nohost"}, "no host"),
    ({"url": "http://example.org/a b"}, "without spaces"),
    ({"url": "http://x/", "headers": {"X-A": "one\ntwo"}}, "line breaks"),
    ({"url": "http://x/", "headers": {"Content-Type": "text/plain"}}, "cannot be overridden"),
    ({"url": "http://x/", "headers": {"X-Rrdalarm-Delivery": "forged"}}, "cannot be overridden"),
    ({"url": "http://x/", "headers": {"Bad Name": "v"}}, "not a valid header name"),
    ({"url": "http://x/", "headers": {"X-A": {"vault": "x"}}}, "env"),
    ({"url": "http://x/", "secret": {"nope": "x"}}, "env"),
    ({"url": "http://x/", "timeout": -1}, "above 0"),
])
def test_bad_parameters_are_config_errors(params: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        validate_params(WebhookAction, params)


def test_header_from_a_secret_file_with_a_line_break_is_refused(
    httpserver: HTTPServer, tmp_path: Path
) -> None:
    bad = tmp_path / "hdr"
    bad.write_text("one\r\nX-Injected: yes\n")
    with pytest.raises(ActionError, match="one line") as err:
        run(tmp_path, url=httpserver.url_for("/hook"), headers={"X-A": {"file": str(bad)}})
    assert err.value.permanent and not httpserver.log


def test_secret_parameters_are_declared_and_never_echoed() -> None:
    from rrdalarm.actions.apprise import AppriseAction

    specs = WebhookAction.params
    assert specs["secret"].secret and specs["headers"].secret and specs["url"].target
    assert AppriseAction.params["urls"].secret
    bad: list[dict[str, Any]] = [{"url": ["https://u:leaked-pw@example.org/"]},
                                 {"url": "https://x.example/", "headers": "leaked-pw"}]
    for params in bad:
        with pytest.raises(ValueError, match="parameter") as err:
            validate_params(WebhookAction, params)
        assert "leaked-pw" not in str(err.value)


def test_events_carry_the_tuning_fields_and_raw_numbers(httpserver: HTTPServer, tmp_path: Path) -> None:
    httpserver.expect_request("/hook", method="POST").respond_with_data("ok")
    run(tmp_path, delivery(tuned_event(7)), url=httpserver.url_for("/hook"))
    (got,) = json.loads(last_request(httpserver).get_data())["events"]
    assert got.items() >= {
    "severity": "critical", "unit": "B/s", "labels": {"team": "net", "site": "lab"},
    "description": "uplink saturated", "runbook": "https://wiki.example.org/uplink?x=1&y=2",
}.items()
    assert got["value"] == 31_600_000.0 and got["limit"] == 30_000_000.0  # numbers stay numbers
    assert got == tuned_event(7).as_dict()
