"""`webhook`: one JSON document per delivery, POSTed to an HTTP(S) receiver.

The body is `{"delivery_id", "created_at", "counts", "events": [...]}` with
each event as `Event.as_dict()`. A digest (the events past `[delivery]
max_per_check`) adds `"digest": {"event_id", "severity", "count", "message",
"statuses", "thresholds": [{"id", "name", "count"}]}`; its `events` are all
the events it sums up. Every attempt of a delivery carries the same
`X-Rrdalarm-Delivery` header (and `delivery_id`), so receivers drop the
duplicates that at-least-once delivery produces. With a `secret`, the header
`X-Rrdalarm-Signature: sha256=<hex>` is the HMAC-SHA256 of the exact body
bytes, as GitHub signs its webhooks.

Outcome: 2xx delivered; 5xx, 408, 429, timeouts and connection errors are
retryable; other answers (3xx: redirects are not followed, so that the body and
signature never go to a host nobody configured; 4xx) are permanent. Messages
name only the URL's scheme, host and port: chat services put their tokens in
the path (Telegram's /bot<TOKEN>/...), others in the user info or the query.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Mapping
from typing import Any, ClassVar
from urllib.parse import urlsplit

from rrdalarm import __version__
from rrdalarm.common.secrets import SecretError, resolve_secret, secret_problem, url_origin
from rrdalarm.plugins import ActionError, Param

from .base import Action, Delivery

# RFC 9110 token: what a header name may be made of.
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")

# Headers the action sets itself; letting a table override them would break the body or the signature.
_RESERVED = {"content-type", "content-length", "host", "transfer-encoding", "connection"}
_RESERVED_PREFIX = "x-rrdalarm-"


def url_problem(value: object) -> str | None:
    """Why `value` is not an http(s) URL with a host, or None."""
    if not isinstance(value, str) or any(ord(c) < 33 or ord(c) == 127 for c in value):
        return "must be a URL without spaces or control characters"
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        return "is not a valid URL"
    if parts.scheme not in ("http", "https"):
        return "must start with http:// or https://"
    if not parts.hostname:
        return "has no host"
    return None


def safe_url(url: str) -> str:
    """What a message may show of `url`: scheme, host and port (chat services put tokens in the path)."""
    return url_origin(url)


def header_value_problem(value: object) -> str | None:
    """Why `value` cannot be a header value (a line break would start a new header), or None."""
    if isinstance(value, str):
        if any(c in value for c in "\r\n\0"):
            return "must not contain line breaks"
        return None
    return secret_problem(value)


def headers_problem(value: object) -> str | None:
    """Why `value` is not a table of extra headers (name -> text or secret reference), or None."""
    if not isinstance(value, Mapping):
        return "must be a table of header names and values"
    for name, v in value.items():
        if not isinstance(name, str) or not _TOKEN.fullmatch(name):
            return f"{name!r} is not a valid header name"
        lower = name.lower()
        if lower in _RESERVED or lower.startswith(_RESERVED_PREFIX):
            return f"header {name!r} is set by rrdalarm and cannot be overridden"
        problem = header_value_problem(v)
        if problem:
            return f"header {name!r} {problem}"
    return None


def timeout_problem(value: object) -> str | None:
    if not isinstance(value, int | float) or isinstance(value, bool) or not 0 < value < 3600:
        return "must be a number of seconds above 0"
    return None


def signature(secret: str, body: bytes) -> str:
    """The X-Rrdalarm-Signature value for `body`."""
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def build_body(delivery: Delivery) -> bytes:
    """The exact bytes that are sent (and signed)."""
    doc: dict[str, Any] = {
        "delivery_id": delivery.id,
        "created_at": delivery.created_at,
        "counts": delivery.counts,
        "events": [e.as_dict() for e in delivery.carried],
    }
    digest = delivery.digest_summary()
    if digest is not None:
        doc["digest"] = digest
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _root_cause(exc: BaseException) -> str:
    """The innermost OS error text (e.g. 'Connection refused'), without the URL requests puts in its messages."""
    seen: set[int] = set()
    todo: list[BaseException] = [exc]
    while todo:
        e = todo.pop(0)
        if id(e) in seen:
            continue
        seen.add(id(e))
        if isinstance(e, OSError) and e.strerror:
            return e.strerror
        for nxt in (getattr(e, "reason", None), e.__cause__, e.__context__, *e.args):
            if isinstance(nxt, BaseException):
                todo.append(nxt)
    return exc.__class__.__name__


class WebhookAction(Action):
    """POSTs the delivery's events as one JSON document to `url`."""

    name = "webhook"
    params: ClassVar[Mapping[str, Param]] = {
        "url": Param(str, required=True, target=True, help="http:// or https:// address of the receiver",
                     check=url_problem),
        "secret": Param(str, secret=True, help="key of the X-Rrdalarm-Signature HMAC-SHA256"),
        "headers": Param(dict, default=None, secret=True, help="extra headers (values may be secret references)",
                         check=headers_problem),
        "timeout": Param(float, default=None, help="seconds (at most the delivery timeout)", check=timeout_problem),
    }
    legacy_param: ClassVar[str | None] = "url"

    def _timeout(self) -> float:
        wanted = self.config.get("timeout")
        limit = self.context.timeout
        if isinstance(wanted, int | float) and not isinstance(wanted, bool) and wanted > 0:
            return float(min(wanted, limit))
        return float(limit)

    def _headers(self, delivery: Delivery, body: bytes) -> dict[str, str]:
        headers: dict[str, str] = {}
        extra = self.config.get("headers") or {}
        problem = headers_problem(extra)
        if problem:
            raise ActionError(f"webhook: parameter 'headers': {problem}", permanent=True)
        for name, ref in extra.items():
            try:
                value = resolve_secret(ref, f"webhook header {name!r}")
            except SecretError as exc:
                raise ActionError(str(exc)) from None
            if value is None or header_value_problem(value):  # a secret file may hold a line break
                raise ActionError(f"webhook: header {name!r} must be one line of text", permanent=True)
            headers[name] = value
        headers.update({
            "Content-Type": "application/json",
            "User-Agent": f"rrdalarm/{__version__}",
            "X-Rrdalarm-Delivery": delivery.id,
        })
        key = self.secret("secret")
        if key:
            headers["X-Rrdalarm-Signature"] = signature(key, body)
        return headers

    def run(self, delivery: Delivery) -> None:
        url = self.config.get("url")
        problem = url_problem(url)
        if problem or not isinstance(url, str):
            raise ActionError(f"webhook: parameter 'url' {problem}", permanent=True)
        where = safe_url(url)
        body = build_body(delivery)
        headers = self._headers(delivery, body)
        timeout = self._timeout()
        import requests  # here, not at the top: `rrdalarm validate` imports every action and sends nothing

        try:
            # stream=True: the status line is all we need; an endless body cannot hold us past the timeout.
            with requests.post(url, data=body, headers=headers, timeout=timeout, allow_redirects=False,
                               stream=True) as response:
                status, reason = response.status_code, " ".join((response.reason or "").split())
        except requests.Timeout:
            raise ActionError(f"webhook: {where}: no answer within {timeout:g} s") from None
        except requests.RequestException as exc:
            # str(exc) would carry the full URL (query included): name only the cause.
            raise ActionError(f"webhook: {where}: {exc.__class__.__name__}: {_root_cause(exc)}") from None
        if 200 <= status < 300:
            return
        retryable = status >= 500 or status in (408, 429)
        what = f"webhook: {where}: HTTP {status} {reason}".rstrip()
        if 300 <= status < 400:
            what += " (redirects are not followed; configure the final address)"
        raise ActionError(what, permanent=not retryable)
