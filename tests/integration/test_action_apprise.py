"""The `apprise` action through apprise's json:// service to a real HTTP server (pytest-httpserver)."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, cast

import pytest
from conftest import free_port, make_event, tuned_event
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from rrdalarm.actions.apprise import AppriseAction, scheme
from rrdalarm.model.events import Delivery
from rrdalarm.model.states import EventKind
from rrdalarm.plugins import ActionContext, ActionError, action_plugins, validate_params

pytest.importorskip("apprise")





event = make_event


def delivery() -> Delivery:
    return Delivery(id="d-5", action="apprise", params={}, events=(
        event(1), event(2, series="hosts/2/bytes.rrd"),
        event(3, status="RESOLVED", kind=EventKind.RESOLVED, value=1.0, message="back to 1"),
    ))


def ctx(tmp_path: Path, timeout: float = 5.0) -> ActionContext:
    return ActionContext(log_dir=tmp_path, data_dir=tmp_path, timeout=timeout)


def json_url(httpserver: HTTPServer, path: str = "/notify") -> str:
    return f"json://127.0.0.1:{httpserver.port}{path}"


def test_registered_through_its_entry_point() -> None:
    assert action_plugins()["apprise"] is cast(object, AppriseAction)
    assert AppriseAction.split_param == "urls"


def test_notification_arrives(httpserver: HTTPServer, tmp_path: Path) -> None:
    httpserver.expect_request("/notify", method="POST").respond_with_data("ok")
    params = validate_params(AppriseAction, {"urls": [json_url(httpserver)]})
    AppriseAction(params, ctx(tmp_path)).run(delivery())
    assert len(httpserver.log) == 1
    body = json.loads(httpserver.log[0][0].get_data())
    assert body["title"] == "[rrdalarm] [warning] 2 alarms fired, 1 resolved"
    lines = body["message"].splitlines()
    assert len(lines) == 4 and lines[-1] == "delivery d-5"
    assert lines[0].startswith("ALARM FIRED") and "hosts/1/bytes.rrd:sent" in lines[0]
    assert "hosts/2/bytes.rrd:sent" in lines[1]
    assert lines[2].startswith("RESOLVED") and lines[2].endswith("back to 1")


def test_title_prefix_and_single_url_string(httpserver: HTTPServer, tmp_path: Path) -> None:
    httpserver.expect_request("/notify").respond_with_data("ok")
    params = validate_params(AppriseAction, {"urls": json_url(httpserver), "title_prefix": "NOC:"})
    assert params["urls"] == [json_url(httpserver)]
    AppriseAction(params, ctx(tmp_path)).run(delivery())
    assert json.loads(httpserver.log[0][0].get_data())["title"].startswith("NOC: [warning] 2 alarms fired")


def test_receiver_error_is_retryable_and_names_only_the_scheme(httpserver: HTTPServer, tmp_path: Path) -> None:
    httpserver.expect_request("/tok-SECRET").respond_with_data("down", status=500)
    url = f"json://user:pa55@127.0.0.1:{httpserver.port}/tok-SECRET?x=qSECRETq"
    with pytest.raises(ActionError, match=r"json://") as err:
        AppriseAction({"urls": [url]}, ctx(tmp_path)).run(delivery())
    assert not err.value.permanent
    msg = str(err.value)
    for secret in ("SECRET", "pa55", "user", "127.0.0.1", str(httpserver.port)):
        assert secret not in msg


def test_unreachable_receiver_is_retryable(tmp_path: Path) -> None:
    with pytest.raises(ActionError, match="failed") as err:
        AppriseAction({"urls": [f"json://127.0.0.1:{free_port()}/x"]}, ctx(tmp_path)).run(delivery())
    assert not err.value.permanent


def test_slow_receiver_is_bounded_by_the_context_timeout(httpserver: HTTPServer, tmp_path: Path) -> None:
    def slow(request: Request) -> Response:
        time.sleep(3)
        return Response("late")

    httpserver.expect_request("/slow").respond_with_handler(slow)
    started = time.monotonic()
    with pytest.raises(ActionError) as err:
        AppriseAction({"urls": [json_url(httpserver, "/slow")]}, ctx(tmp_path, timeout=1.0)).run(delivery())
    assert time.monotonic() - started < 2.5
    assert not err.value.permanent


def test_unknown_service_is_permanent_and_its_url_is_not_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG), pytest.raises(ActionError, match=r"\(nosuchservice://\) is not understood") \
            as err:
        AppriseAction({"urls": ["nosuchservice://host/secretpath"]}, ctx(tmp_path)).run(delivery())
    assert err.value.permanent and "secretpath" not in str(err.value)
    assert caplog.records, "apprise logged nothing: the check below would prove nothing"
    assert "secretpath" not in caplog.text and "nosuchservice://" in caplog.text


@pytest.mark.parametrize(("params", "match"), [
    ({}, "needs parameter 'urls'"),
    ({"urls": []}, "at least one"),
    ({"urls": ["not a url"]}, "item 1 is not an Apprise URL"),
    ({"urls": ["json://x", 3]}, "must be list|at least one"),
    ({"urls": ["json://x"], "title_prefix": "a\nb"}, "one line"),
])
def test_bad_parameters_are_config_errors(params: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match) as err:
        validate_params(AppriseAction, params)
    assert "json://x" not in str(err.value)


def test_scheme() -> None:
    assert scheme("TGRAM://bottoken/chat") == "tgram://"
    assert scheme("no scheme here") == "<no scheme>"


def test_without_apprise_the_module_imports_and_the_action_fails_permanently(tmp_path: Path) -> None:
    code = f"""
import sys
sys.modules["apprise"] = None  # makes `import apprise` raise ImportError
from pathlib import Path
from rrdalarm.actions.apprise import AppriseAction
from rrdalarm.model.events import Delivery
from rrdalarm.plugins import ActionContext, ActionError
ctx = ActionContext(log_dir=Path({str(tmp_path)!r}), data_dir=Path({str(tmp_path)!r}))
try:
    AppriseAction({{"urls": ["json://127.0.0.1:9/x"]}}, ctx).run(Delivery("d", "apprise", {{}}, ()))
except ActionError as exc:
    print(exc.permanent, exc)
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert proc.stdout.strip() == "True apprise: the apprise package is not installed (pip install apprise)"


def test_title_has_the_severity_and_body_readable_values(httpserver: HTTPServer, tmp_path: Path) -> None:
    httpserver.expect_request("/notify").respond_with_data("ok")
    params = validate_params(AppriseAction, {"urls": [json_url(httpserver)]})
    AppriseAction(params, ctx(tmp_path)).run(Delivery(id="d-6", action="apprise", params={}, events=(tuned_event(),)))
    # A slow receiver's request of an earlier test may land in this log too: pick this delivery's.
    bodies = [json.loads(req.get_data()) for req, _ in httpserver.log]
    (body,) = [b for b in bodies if b["message"].endswith("delivery d-6")]
    assert body["title"] == "[rrdalarm] [critical] 1 alarm fired"
    lines = body["message"].splitlines()
    assert lines[0].startswith("ALARM FIRED [critical]") and "value=31.6 MB/s above 30 MB/s" in lines[0]
    assert "  description: uplink saturated" in lines and "  labels: site=lab, team=net" in lines
    assert "  runbook: https://wiki.example.org/uplink?x=1&y=2" in lines
