"""`email`: one mail per delivery (one check, one recipient) listing its events, sent over SMTP.

The outbox calls `run(delivery)` and retries on a retryable ActionError. Every
attempt of a delivery carries the same `Message-ID: <delivery.id@rrdalarm>`
and `X-Rrdalarm-Delivery`, so receivers can drop the duplicates that
at-least-once delivery produces. Server, security, login and sender come
from the `[smtp]` settings (`context.smtp`); only the recipients and the
subject prefix are per-action parameters.

A digest (the events past `[delivery] max_per_check`) is one mail too: its subject
says DIGEST, its first line counts the events and names their thresholds, and it
lists the first DIGEST_LISTED of them.
"""

from __future__ import annotations

import html
import re
import unicodedata
from collections.abc import Mapping, Sequence
from datetime import datetime
from email.message import EmailMessage
from email.utils import formatdate
from typing import ClassVar

from rrdalarm.common.quantities import format_limit, format_quantity
from rrdalarm.common.secrets import SecretError, resolve_secret
from rrdalarm.model.definitions import SmtpSettings
from rrdalarm.model.states import EventKind, EventStatus, Severity
from rrdalarm.plugins import ActionError, Param

from .base import Action, Delivery, Event

# A bare addr-spec (user@host): no display names, nothing that could end a header or add a recipient.
_ADDRESS = re.compile(r"[^@\s<>()\[\],;:\"\\]+@[^\W_][\w-]*(?:\.[^\W_][\w-]*)*")

# Plural forms for the subject; other statuses are shown lower-cased as they are.
_LABELS: dict[str, tuple[str, str]] = {
    EventStatus.ALARM_FIRED: ("alarm fired", "alarms fired"),
    EventStatus.RESOLVED: ("resolved", "resolved"),
    EventStatus.TEST: ("test notification", "test notifications"),
}

# A digest mail lists this many of its events: enough to see what broke, small enough for any mailbox.
DIGEST_LISTED = 100

_COLUMNS = ("Status", "Severity", "Threshold", "Series", "Value", "Type", "Limit", "Time", "Message")
_SEVERITY_ORDER = [str(s) for s in Severity]  # worst first


def address_list(value: object) -> list[str] | None:
    """`value` as a list of recipients (a single string is one recipient), or None if it is neither."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
        return list(value)
    return None


def recipients_problem(value: object) -> str | None:
    """Why `value` is not a non-empty list of e-mail addresses, or None."""
    addresses = address_list(value)
    if not addresses:
        return "needs at least one e-mail address"
    for a in addresses:
        if not _ADDRESS.fullmatch(a):
            return f"{a!r} is not an e-mail address (expected user@example.org)"
    return None


def prefix_problem(value: object) -> str | None:
    """Why `value` cannot start a subject line, or None.

    Control characters (C0 and C1, as U+0085) and the Unicode line and paragraph separators
    would break the header: the email package refuses every message whose header holds one.
    """
    if not isinstance(value, str) or any(unicodedata.category(c) in ("Cc", "Zl", "Zp") for c in value):
        return "must be one line of text"
    return None


def summary(counts: Mapping[str, int]) -> str:
    """'2 alarms fired, 1 resolved': fired first, resolved next, any other status after."""
    order = [*_LABELS, *(s for s in counts if s not in _LABELS)]
    parts = []
    for status in order:
        n = counts.get(status, 0)
        if n:
            one, many = _LABELS.get(status, (status.lower(), status.lower()))
            parts.append(f"{n} {one if n == 1 else many}")
    return ", ".join(parts) or "no events"


def worst_severity(events: Sequence[Event]) -> str:
    """The worst severity among `events` ("critical" before "warning" before "info"); "" when there are none."""
    known = [e.severity for e in events if e.severity in _SEVERITY_ORDER]
    others = [e.severity for e in events if e.severity not in _SEVERITY_ORDER]
    return min(known, key=_SEVERITY_ORDER.index) if known else (others[0] if others else "")


def subject(prefix: str, delivery: Delivery) -> str:
    """'[rrdalarm] [critical] 2 alarms fired, 1 resolved': the worst severity in brackets after the prefix.

    A test notification says TEST first ('[rrdalarm] TEST [warning] 1 test notification'): never taken
    for an alarm.
    """
    worst = worst_severity(delivery.events)
    tag = f"[{one_line(worst)}] " if worst else ""
    if any(e.kind == EventKind.TEST for e in delivery.events):
        tag = "TEST " + tag
    if delivery.digest is not None:
        tag += "DIGEST "
    return f"{prefix} {tag}{summary(delivery.counts)}".strip()


def _iso(stamp: int | None) -> str:
    # Local time with its offset: what the operator reads, still unambiguous.
    return "-" if stamp is None else datetime.fromtimestamp(stamp).astimezone().isoformat()


def event_fields(e: Event) -> tuple[str, ...]:
    """The event's cells, in the order of _COLUMNS, as plain (unescaped) text."""
    return (
        e.status,
        e.severity,
        f"{e.threshold_id} {e.threshold_name}".rstrip(),
        f"{e.series}:{e.ds}" if e.ds else e.series,
        format_quantity(e.value, e.unit),
        e.type,
        format_limit(e.limit, e.unit),
        _iso(e.time),
        e.message,
    )


def text_line(e: Event) -> str:
    """One line per event; newlines in the message would split it, so they become spaces."""
    status, severity, threshold, series, value, kind, limit, when, message = event_fields(e)
    line = (f"{status} [{severity}]  threshold {threshold}  {series}  value={value} {kind} {limit}  "
            f"time={when}  {message}")
    return one_line_keep_spaces(line)


def detail_lines(e: Event) -> list[str]:
    """The event's description and runbook, indented under its line (none when the threshold has neither)."""
    out = [f"  {name}: {one_line_keep_spaces(text)}" for name, text in
           (("description", e.description), ("runbook", e.runbook)) if text]
    if e.labels:
        out.append("  labels: " + one_line_keep_spaces(", ".join(f"{k}={v}" for k, v in sorted(e.labels.items()))))
    return out


def one_line_keep_spaces(text: str) -> str:
    """Line breaks become spaces (a line per event), other spacing stays as it was."""
    return text.replace("\r\n", " ").replace("\r", " ").replace("\n", " ").rstrip()


def html_body(title: str, events: Sequence[Event], delivery_id: str, after: Sequence[str] = ()) -> str:
    """A small table; every value goes through html.escape (file names and messages are not trusted)."""
    esc = html.escape
    head = "".join(f"<th>{esc(c)}</th>" for c in _COLUMNS)
    rows = "".join(
        "<tr>" + "".join(f"<td>{esc(cell)}</td>" for cell in event_fields(e)) + "</tr>\n" + _html_details(e)
        for e in events
    )
    return (
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>" + esc(title) + "</title></head><body>\n"
        f"<p>{esc(title)}</p>\n"
        "<table border=\"1\" cellpadding=\"4\" cellspacing=\"0\">\n"
        f"<tr>{head}</tr>\n{rows}</table>\n"
        + "".join(f"<p>{esc(line)}</p>\n" for line in after)
        + f"<p><small>delivery {esc(delivery_id)}</small></p>\n</body></html>\n"
    )


def _html_details(e: Event) -> str:
    """A row under the event with its description, runbook link and labels, when it has any."""
    esc = html.escape
    parts = [esc(e.description)] if e.description else []
    if e.runbook:  # the loader accepts only http(s) URLs here
        parts.append(f"<a href=\"{esc(e.runbook, quote=True)}\">runbook</a>")
    if e.labels:
        parts.append(esc(", ".join(f"{k}={v}" for k, v in sorted(e.labels.items()))))
    if not parts:
        return ""
    return f"<tr><td></td><td colspan=\"{len(_COLUMNS) - 1}\">{' · '.join(parts)}</td></tr>\n"


def build_message(delivery: Delivery, recipients: Sequence[str], sender: str, prefix: str) -> EmailMessage:
    """The mail for one delivery: text and HTML alternatives, ids that stay the same on every attempt."""
    digest = delivery.digest
    title = summary(delivery.counts) if digest is None else one_line_keep_spaces(digest.message)
    msg = EmailMessage()
    msg["Subject"] = subject(prefix, delivery)
    msg["From"] = sender
    msg["To"] = ", ".join(recipients)
    msg["Date"] = formatdate(localtime=True)
    msg["Message-ID"] = f"<{delivery.id}@rrdalarm>"
    msg["X-Rrdalarm-Delivery"] = delivery.id
    msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: vacation responders must not answer alarms
    events = delivery.carried[:DIGEST_LISTED] if digest else delivery.events
    body = [line for e in events for line in (text_line(e), *detail_lines(e))]
    more = _more_line(delivery, len(events))
    lines = [f"rrdalarm: {title}", "", *body, *more, "", f"delivery {delivery.id}"]
    msg.set_content("\n".join(lines) + "\n")
    msg.add_alternative(html_body(title, events, delivery.id, more), subtype="html")
    return msg


def _more_line(delivery: Delivery, listed: int) -> list[str]:
    """Under a digest's list: how many events it leaves out and where to see them."""
    left = len(delivery.carried) - listed if delivery.digest else 0
    if left <= 0:
        return []
    return [f"... and {left} more (rrdalarm history --deliveries, or the deliveries page, lists them all)"]


def one_line(value: bytes | str) -> str:
    text = value.decode("utf-8", "replace") if isinstance(value, bytes) else value
    return " ".join(text.split())


class EmailAction(Action):
    """Sends the delivery's events as one mail to the addresses in `to`."""

    name = "email"
    params: ClassVar[Mapping[str, Param]] = {
        "to": Param(list, required=True, help="recipient addresses", check=recipients_problem),
        "subject_prefix": Param(str, default="[rrdalarm]", help="start of the subject line", check=prefix_problem),
    }
    legacy_param: ClassVar[str | None] = "to"
    split_param: ClassVar[str | None] = "to"

    def recipients(self) -> list[str]:
        """The `to` parameter as a list; the outbox passes one address, as a string or a one-item list."""
        value = self.config.get("to")
        problem = recipients_problem(value)
        if problem:
            raise ActionError(f"email: parameter 'to' {problem}", permanent=True)
        return address_list(value) or []

    def run(self, delivery: Delivery) -> None:
        smtp = self.context.smtp or SmtpSettings()
        recipients = self.recipients()
        prefix = self.config.get("subject_prefix")
        prefix = "[rrdalarm]" if prefix is None else str(prefix)
        if prefix_problem(prefix):
            raise ActionError("email: parameter 'subject_prefix' must be one line of text", permanent=True)
        if smtp.security not in ("none", "starttls", "ssl"):
            raise ActionError(f"email: [smtp] security {smtp.security!r} is not none, starttls or ssl", permanent=True)
        try:
            password = resolve_secret(smtp.password, "email: [smtp] password") if smtp.username else None
        except SecretError as exc:
            raise ActionError(str(exc)) from None
        try:
            msg = build_message(delivery, recipients, smtp.sender, prefix)
        except (ValueError, TypeError) as exc:  # e.g. a sender the header parser refuses
            raise ActionError(one_line(f"email: cannot build the message: {exc}"), permanent=True) from None

        from .smtp import send  # smtplib and ssl only when a mail goes out, not for `rrdalarm validate`

        send(msg, smtp, recipients, password, self.context.timeout)
