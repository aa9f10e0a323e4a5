"""The SMTP conversation of the `email` action, bounded by one deadline.

Apart from email.py so that loading the actions (`rrdalarm validate`) does not
import smtplib and ssl: email.py imports this module when a mail goes out.
"""

from __future__ import annotations

import base64
import smtplib
import ssl
import time
from collections.abc import Sequence
from email.message import EmailMessage
from typing import TYPE_CHECKING, Any

from rrdalarm.common.secrets import redact
from rrdalarm.model.definitions import SmtpSettings
from rrdalarm.plugins import ActionError

from .email import one_line

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer


class _Deadline(smtplib.SMTP):
    """Bounds the whole conversation: smtplib's timeout is per socket operation, so a
    server answering slowly line by line could otherwise outlast context.timeout."""

    def __init__(self, host: str, port: int, *, deadline: float, **kwargs: Any) -> None:
        # Set before the base constructor: it connects and reads the greeting.
        self.deadline = deadline
        super().__init__(host, port, **kwargs)

    def _arm(self) -> None:
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("deadline passed")
        if self.sock is not None:
            self.sock.settimeout(remaining)

    def send(self, s: ReadableBuffer | str) -> None:
        self._arm()
        super().send(s)

    def getreply(self) -> tuple[int, bytes]:
        self._arm()
        return super().getreply()


class _DeadlineSSL(_Deadline, smtplib.SMTP_SSL):
    """SMTP over implicit TLS (port 465) with the same deadline."""


def _auth_forms(username: str, password: str | None) -> list[str]:
    """The password and the base64 forms AUTH PLAIN/LOGIN send, in case a server echoes them back."""
    if not password:
        return []
    forms = [password]
    for raw in (password, f"\0{username}\0{password}"):
        forms.append(base64.b64encode(raw.encode("utf-8")).decode("ascii"))
    return forms


def _failure(exc: BaseException, where: str, timeout: float, deadline: float) -> ActionError:
    """One line naming the server and the error; permanent when the server said no with a 5xx."""
    name = exc.__class__.__name__
    permanent = False
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        refused = exc.recipients
        permanent = bool(refused) and all(500 <= code < 600 for code, _ in refused.values())
        what = "recipients refused: " + "; ".join(f"{r}: {c} {one_line(m)}" for r, (c, m) in refused.items())
    elif isinstance(exc, smtplib.SMTPResponseException):
        # Covers authentication failure (535), sender refused, data refused, greeting refused.
        permanent = 500 <= exc.smtp_code < 600
        what = f"{name}: {exc.smtp_code} {one_line(exc.smtp_error)}"
    elif isinstance(exc, smtplib.SMTPNotSupportedError):
        permanent = True  # no STARTTLS / AUTH / SMTPUTF8 on the server: a setting has to change
        what = f"{name}: {exc}"
    elif isinstance(exc, TimeoutError) or time.monotonic() >= deadline:
        what = f"no answer within {timeout:g} s ({name}: {exc})"
    else:
        what = f"{name}: {exc}"
    return ActionError(one_line(f"email: {where}: {what}"), permanent=permanent)


def send(msg: EmailMessage, smtp: SmtpSettings, recipients: Sequence[str], password: str | None,
         timeout: float) -> None:
    """Hands `msg` to the server of `smtp` within `timeout` seconds, or raises ActionError."""
    where = f"{smtp.host}:{smtp.port}"
    deadline = time.monotonic() + timeout
    client: _Deadline | None = None
    try:
        if smtp.security == "ssl":
            client = _DeadlineSSL(
                smtp.host, smtp.port, deadline=deadline, timeout=timeout, context=ssl.create_default_context()
            )
        else:
            client = _Deadline(smtp.host, smtp.port, deadline=deadline, timeout=timeout)
        if smtp.security == "starttls":
            # Verification stays on: a mail server with a bad certificate is an error, not a warning.
            client.starttls(context=ssl.create_default_context())
        if smtp.username:
            client.login(smtp.username, password or "")
        refused = client.send_message(msg, from_addr=smtp.sender, to_addrs=list(recipients))
        if refused:  # some recipients accepted, some not: report the refused ones
            raise smtplib.SMTPRecipientsRefused(refused)
    except (smtplib.SMTPException, OSError) as exc:
        error = _failure(exc, where, timeout, deadline)
        if client is not None:
            client.close()
        # Servers may echo what they were sent; the password must not reach the outbox or logs.
        raise ActionError(redact(str(error), _auth_forms(smtp.username, password)), error.permanent) from None
    try:
        client.quit()
    except (smtplib.SMTPException, OSError):
        # The server has the message: a failed QUIT must not make the outbox send it again.
        client.close()
