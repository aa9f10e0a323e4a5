"""The `email` action against a real SMTP server (aiosmtpd on 127.0.0.1)."""

from __future__ import annotations

import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any, cast

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from conftest import free_port, make_event, tuned_event

from rrdalarm.actions.email import EmailAction, summary
from rrdalarm.model.definitions import SmtpSettings
from rrdalarm.model.events import Delivery, Event
from rrdalarm.model.states import EventKind
from rrdalarm.plugins import ActionContext, ActionError, action_plugins, validate_params

EVIL = "<img src=x onerror=alert(1)>.rrd"
PASSWORD = "s3cret-Pa55word"




event = make_event


def delivery(*events: Event, to: Any = "ops@example.org", ident: str = "d-1", attempt: int = 1) -> Delivery:
    return Delivery(id=ident, action="email", params={"to": to}, events=events, attempt=attempt)


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage
    tls: bool
    login: bytes | None


@dataclass
class Recorder:
    """aiosmtpd handler that keeps every message; `rcpt_reply` lets a test refuse recipients."""

    messages: list[Received] = field(default_factory=list)
    rcpt_reply: str | None = None

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        if self.rcpt_reply:
            return self.rcpt_reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        msg = message_from_bytes(envelope.original_content, policy=policy.default)
        assert isinstance(msg, EmailMessage)
        self.messages.append(
            Received(envelope.mail_from, list(envelope.rcpt_tos), msg, session.ssl is not None, session.login_data)
        )
        return "250 Message accepted"


@dataclass
class Server:
    handler: Recorder
    port: int

    def smtp(self, **kw: Any) -> SmtpSettings:
        base: dict[str, Any] = {"host": "127.0.0.1", "port": self.port, "sender": "rrdalarm@example.org"}
        return SmtpSettings(**(base | kw))


ServerFactory = Callable[..., Server]


@pytest.fixture
def smtp_server() -> Iterator[ServerFactory]:
    """Starts aiosmtpd servers with the given Controller options; stops them after the test."""
    controllers: list[Controller] = []

    def start(**options: Any) -> Server:
        handler = Recorder()
        port = free_port()
        controller = Controller(handler, hostname="127.0.0.1", port=port, **options)
        controller.start()
        controllers.append(controller)
        return Server(handler, port)

    yield start
    for c in controllers:
        c.stop()


def context(smtp: SmtpSettings, tmp_path: Path, timeout: float = 5.0) -> ActionContext:
    return ActionContext(log_dir=tmp_path, data_dir=tmp_path, timeout=timeout, smtp=smtp)


def send(smtp: SmtpSettings, tmp_path: Path, d: Delivery, timeout: float = 5.0, **params: Any) -> None:
    EmailAction({"to": d.params["to"], **params}, context(smtp, tmp_path, timeout)).run(d)


def test_registered_and_parameters_validated() -> None:
    assert action_plugins()["email"] is cast(object, EmailAction)
    assert EmailAction.legacy_param == "to" and EmailAction.split_param == "to"
    with pytest.raises(ValueError, match="not an e-mail address"):
        validate_params(EmailAction, {"to": "not-an-address"})
    with pytest.raises(ValueError, match="not an e-mail address"):
        validate_params(EmailAction, {"to": ["ops@example.org", "a@b@c"]})
    with pytest.raises(ValueError, match="needs parameter 'to'"):
        validate_params(EmailAction, {})
    with pytest.raises(ValueError, match="one line"):
        validate_params(EmailAction, {"to": "ops@example.org", "subject_prefix": "x\r\nBcc: evil@example.org"})
    assert validate_params(EmailAction, {"to": "ops@example.org"}) == {
        "to": ["ops@example.org"], "subject_prefix": "[rrdalarm]",
    }


def test_subject_summary_counts() -> None:
    assert summary({"ALARM FIRED": 2, "RESOLVED": 1}) == "2 alarms fired, 1 resolved"
    assert summary({"RESOLVED": 1, "ALARM FIRED": 1}) == "1 alarm fired, 1 resolved"
    assert summary({}) == "no events"


def test_one_message_per_delivery_with_text_and_escaped_html(smtp_server: ServerFactory, tmp_path: Path) -> None:
    server = smtp_server()
    d = delivery(
        event(1),
        event(2, series=EVIL, ds="", value=12.25, message="12.25 above 5\n<b>bold</b>"),
        event(3, status="RESOLVED", kind=EventKind.RESOLVED, value=1.0, message="back to normal"),
    )
    send(server.smtp(), tmp_path, d)

    assert len(server.handler.messages) == 1
    got = server.handler.messages[0]
    msg = got.message
    assert got.mail_from == "rrdalarm@example.org" and got.rcpt_tos == ["ops@example.org"]
    assert msg["Subject"] == "[rrdalarm] [warning] 2 alarms fired, 1 resolved"
    assert msg["From"] == "rrdalarm@example.org" and msg["To"] == "ops@example.org"
    assert msg["Date"] and msg["Message-ID"] == "<d-1@rrdalarm>" and msg["X-Rrdalarm-Delivery"] == "d-1"
    assert msg.get_content_type() == "multipart/alternative"

    text_part = msg.get_body(("plain",))
    html_part = msg.get_body(("html",))
    assert text_part is not None and html_part is not None
    text = text_part.get_content()
    lines = [line for line in text.splitlines() if line.startswith(("ALARM FIRED", "RESOLVED"))]
    assert len(lines) == 3
    assert "threshold 3 uplink busy" in lines[0] and "hosts/1/bytes.rrd:sent" in lines[0]
    assert "value=9.5 above 5" in lines[0] and "9.5 above 5" in lines[0]
    assert event(1).time is not None
    assert time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(event(1).time)) in lines[0]
    assert EVIL in lines[1] and "<b>bold</b>" in lines[1]  # plain text is not HTML: no escaping there
    assert lines[2].startswith("RESOLVED") and "back to normal" in lines[2]

    body = html_part.get_content()
    assert "<table" in body and body.count("<tr>") == 4
    assert "&lt;img src=x onerror=alert(1)&gt;.rrd" in body
    assert "<img" not in body and "<b>bold" not in body

    # A retry of the same delivery is recognisable as the same mail.
    send(server.smtp(), tmp_path, delivery(*d.events, attempt=2))
    again = server.handler.messages[1].message
    assert again["Message-ID"] == msg["Message-ID"]
    assert again["X-Rrdalarm-Delivery"] == msg["X-Rrdalarm-Delivery"] == "d-1"


@pytest.mark.parametrize(
    ("to", "expected"),
    [
        ("ops@example.org", ["ops@example.org"]),
        (["ops@example.org"], ["ops@example.org"]),
        (["a@example.org", "b@example.net"], ["a@example.org", "b@example.net"]),
    ],
)
def test_to_as_string_or_list(smtp_server: ServerFactory, tmp_path: Path, to: Any, expected: list[str]) -> None:
    server = smtp_server()
    send(server.smtp(), tmp_path, delivery(event(), to=to), subject_prefix="[lab]")
    (got,) = server.handler.messages
    assert got.rcpt_tos == expected
    assert got.message["To"] == ", ".join(expected)
    assert got.message["Subject"] == "[lab] [warning] 1 alarm fired"


def test_invalid_recipient_at_run_time_is_permanent(tmp_path: Path) -> None:
    with pytest.raises(ActionError, match="not an e-mail address") as err:
        send(SmtpSettings(host="127.0.0.1", port=free_port()), tmp_path, delivery(event(), to="x\r\nBcc: y"))
    assert err.value.permanent


def authenticator(echo: bool = False) -> Callable[..., AuthResult]:
    """Accepts user 'alarm' with PASSWORD; with echo=True it repeats the password it got (a careless server)."""

    def check(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        if isinstance(data, LoginPassword) and data.login == b"alarm" and data.password == PASSWORD.encode():
            return AuthResult(success=True, auth_data=data)
        if echo and isinstance(data, LoginPassword):
            return AuthResult(success=False, handled=False, message=f"535 5.7.8 {data.password.decode()} is wrong")
        return AuthResult(success=False, handled=False)

    return check


def test_login_with_password_from_environment(
    smtp_server: ServerFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = smtp_server(authenticator=authenticator(), auth_require_tls=False, auth_required=False)
    monkeypatch.setenv("X", PASSWORD)
    send(server.smtp(username="alarm", password={"env": "X"}), tmp_path, delivery(event()))
    (got,) = server.handler.messages
    assert got.login == b"alarm"


@pytest.mark.parametrize("echo", [False, True])
def test_wrong_password_is_permanent_and_not_shown(
    smtp_server: ServerFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, echo: bool
) -> None:
    server = smtp_server(authenticator=authenticator(echo), auth_require_tls=False)
    wrong = "Wrong-Pa55word-42"
    monkeypatch.setenv("X", wrong)
    with pytest.raises(ActionError) as err:
        send(server.smtp(username="alarm", password={"env": "X"}), tmp_path, delivery(event()))
    text = str(err.value)
    assert err.value.permanent
    assert f"127.0.0.1:{server.port}" in text and "535" in text and "SMTPAuthenticationError" in text
    assert wrong not in text and "\n" not in text
    assert not server.handler.messages


def test_missing_password_variable_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RRDALARM_TEST_UNSET", raising=False)
    smtp = SmtpSettings(host="127.0.0.1", port=free_port(), username="alarm", password={"env": "RRDALARM_TEST_UNSET"})
    with pytest.raises(ActionError, match="RRDALARM_TEST_UNSET is not set"):
        send(smtp, tmp_path, delivery(event()))


@pytest.mark.parametrize(("reply", "permanent"), [("550 5.1.1 no such user", True), ("451 4.3.0 try later", False)])
def test_refused_recipient(smtp_server: ServerFactory, tmp_path: Path, reply: str, permanent: bool) -> None:
    server = smtp_server()
    server.handler.rcpt_reply = reply
    with pytest.raises(ActionError, match=reply.split()[0]) as err:
        send(server.smtp(), tmp_path, delivery(event()))
    assert err.value.permanent is permanent
    assert "ops@example.org" in str(err.value)


def test_server_down_is_retryable_and_names_the_server(tmp_path: Path) -> None:
    port = free_port()  # bound and closed again: nothing listens there
    started = time.monotonic()
    with pytest.raises(ActionError) as err:
        send(SmtpSettings(host="127.0.0.1", port=port), tmp_path, delivery(event()), timeout=2.0)
    assert time.monotonic() - started < 2.0
    assert not err.value.permanent
    assert f"127.0.0.1:{port}" in str(err.value) and "ConnectionRefusedError" in str(err.value)


def test_silent_server_times_out(tmp_path: Path) -> None:
    """A server that accepts the connection and never says a word costs about context.timeout."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def serve() -> None:
        conn, _ = listener.accept()
        accepted.append(conn)
        stop.wait(10)  # hold the connection open, say nothing

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        started = time.monotonic()
        with pytest.raises(ActionError) as err:
            send(SmtpSettings(host="127.0.0.1", port=port), tmp_path, delivery(event()), timeout=1.0)
        elapsed = time.monotonic() - started
    finally:
        stop.set()
        thread.join(2)
        for conn in accepted:
            conn.close()
        listener.close()
    assert 0.9 <= elapsed < 2.0
    assert not err.value.permanent
    assert f"127.0.0.1:{port}" in str(err.value) and "1 s" in str(err.value)


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 made with the openssl CLI."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl CLI not installed")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )
    return cert, key


def server_tls(certificate: tuple[Path, Path]) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(*certificate)
    return ctx


def test_starttls_verifies_the_certificate(
    smtp_server: ServerFactory, tmp_path: Path, certificate: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    server = smtp_server(tls_context=server_tls(certificate), require_starttls=True)
    # An untrusted certificate fails loudly (verification is never turned off) ...
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    with pytest.raises(ActionError, match="CERTIFICATE_VERIFY_FAILED") as err:
        send(server.smtp(security="starttls"), tmp_path, delivery(event()))
    assert f"127.0.0.1:{server.port}" in str(err.value) and not err.value.permanent
    assert not server.handler.messages
    # ... and once the certificate is trusted (OpenSSL reads SSL_CERT_FILE), the mail goes over TLS.
    monkeypatch.setenv("SSL_CERT_FILE", str(certificate[0]))
    send(server.smtp(security="starttls"), tmp_path, delivery(event()))
    (got,) = server.handler.messages
    assert got.tls


def test_implicit_tls(
    smtp_server: ServerFactory, tmp_path: Path, certificate: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    server = smtp_server(ssl_context=server_tls(certificate))
    monkeypatch.setenv("SSL_CERT_FILE", str(certificate[0]))
    send(server.smtp(security="ssl"), tmp_path, delivery(event()))
    (got,) = server.handler.messages
    assert got.message["Subject"] == "[rrdalarm] [warning] 1 alarm fired"


def test_starttls_on_a_server_without_it_is_permanent(smtp_server: ServerFactory, tmp_path: Path) -> None:
    server = smtp_server()
    with pytest.raises(ActionError, match="STARTTLS") as err:
        send(server.smtp(security="starttls"), tmp_path, delivery(event()))
    assert err.value.permanent and not server.handler.messages


@pytest.mark.parametrize("breaker", ["\n", "\r", "\u2028", "\u2029", "\x85"])
def test_a_subject_prefix_that_would_break_the_header_is_refused_at_load(tmp_path: Path, breaker: str) -> None:
    from rrdalarm.config.thresholds import load_thresholds
    from rrdalarm.delivery.dispatch import plan_actions
    from rrdalarm.model.errors import ConfigError

    path = tmp_path / "thresholds.toml"
    prefix = tomlkit_string(f"[ops{breaker}lab]")
    path.write_text(
        '[[threshold]]\nid = 1\nglob = "a/*.rrd"\ntype = "above"\nvalue = 1\n\n'
        f'[[threshold.action]]\ntype = "email"\nto = "ops@example.org"\nsubject_prefix = {prefix}\n',
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as info:
        plan_actions(load_thresholds(path, ["rrd"]), action_plugins())
    message = str(info.value)
    assert message.startswith(f"{path}:") and "subject_prefix" in message and "one line" in message
    assert len(message.splitlines()) == 1


def tomlkit_string(text: str) -> str:
    """`text` as a TOML basic string with the raw character kept where TOML allows it."""
    import json

    return json.dumps(text, ensure_ascii=False)


def test_severity_in_subject_readable_values_and_tuning_fields(smtp_server: ServerFactory, tmp_path: Path) -> None:
    """The worst severity leads the subject; values show with the unit; description, runbook, labels follow."""
    server = smtp_server()
    send(server.smtp(), tmp_path, delivery(event(1, severity="info"), tuned_event(2)))
    msg = server.handler.messages[0].message
    assert msg["Subject"] == "[rrdalarm] [critical] 2 alarms fired"
    text_part, html_part = msg.get_body(("plain",)), msg.get_body(("html",))
    assert text_part is not None and html_part is not None
    text = text_part.get_content()
    line = next(line for line in text.splitlines() if "event" not in line and "[critical]" in line)
    assert line.startswith("ALARM FIRED [critical]") and "value=31.6 MB/s above 30 MB/s" in line
    assert "  description: uplink saturated" in text
    assert "  runbook: https://wiki.example.org/uplink?x=1&y=2" in text
    assert "  labels: site=lab, team=net" in text
    assert "ALARM FIRED [info]" in text and "value=9.5 above 5" in text
    body = html_part.get_content()
    assert "<td>critical</td>" in body and "<td>31.6 MB/s</td>" in body and "<td>30 MB/s</td>" in body
    assert '<a href="https://wiki.example.org/uplink?x=1&amp;y=2">runbook</a>' in body
    assert "uplink saturated" in body and "site=lab, team=net" in body
