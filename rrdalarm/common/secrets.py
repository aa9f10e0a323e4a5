"""Secrets in settings and action parameters: inline, from the environment, or from a file.

A secret is written as a string, or as `{ env = "NAME" }`, or as
`{ file = "/path" }`. Only the reference is stored (in the outbox, in
reports); the value is read when it is used and never put in a message.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from rrdalarm.common.fileutil import split_lines

SecretRef = str | Mapping[str, str]


class SecretError(Exception):
    """A secret reference that cannot be resolved; names the variable or file, never a value."""


def secret_problem(value: Any) -> str | None:
    """Why `value` is not a valid secret reference, or None."""
    if isinstance(value, str):
        return None
    if isinstance(value, Mapping) and len(value) == 1:
        (kind, where), = value.items()
        if kind in ("env", "file") and isinstance(where, str) and where:
            return None
    return "must be a string, { env = \"NAME\" } or { file = \"/path\" }"


def resolve_secret(value: SecretRef | None, what: str) -> str | None:
    """The secret's value; SecretError names `what` and the reference when it cannot be read."""
    if value is None or isinstance(value, str):
        return value
    (kind, where), = value.items()
    if kind == "env":
        got = os.environ.get(where)
        if got is None:
            raise SecretError(f"{what}: environment variable {where} is not set")
        return got
    try:
        return Path(where).read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise SecretError(f"{what}: cannot read secret file {where}: {exc.strerror}") from None


def redact(text: str, secrets: Iterable[str | None]) -> str:
    """`text` with every known secret value replaced, for messages that leave the process."""
    for s in secrets:
        if s and len(s) >= 3:
            text = text.replace(s, "***")
    return text


def describe(value: Any) -> Any:
    """What may be shown of a secret: the reference, or *** for an inline value."""
    if isinstance(value, Mapping):
        return dict(value)
    return "***" if value else value


_URL = re.compile(r"\b([A-Za-z][A-Za-z0-9+.-]{0,31})://([^\s\"'<>]*)")
_REFERENCE = re.compile(r"""\{\s*(env|file)\s*=\s*(?:"[^"\\]*"|'[^']*')\s*\}""")
_KEY_LINE = re.compile(r"""^(\s*)(?:"([^"]+)"|'([^']+)'|([A-Za-z0-9_-]+))(\s*=\s*)(.*)$""")


def redact_url(url: str) -> str:
    """`url` without its secrets: user info and query values as ***; a non-HTTP URL (Apprise) as scheme://***."""
    m = _URL.fullmatch(url)
    if m is None:
        return url
    if m.group(1).lower() not in ("http", "https"):
        return f"{m.group(1)}://***"
    try:
        parts = urlsplit(url)
    except ValueError:
        return f"{m.group(1)}://***"
    netloc = "***@" + parts.netloc.rpartition("@")[2] if "@" in parts.netloc else parts.netloc
    pairs = (p.partition("=") for p in parts.query.split("&") if p)
    query = "&".join(f"{k}=***" if sep else "***" for k, sep, _ in pairs)
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def hide_password(url: str) -> str:
    """`url` with the password of its user info as *** (user, host, port and path stay, to say where)."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    userinfo, at, hostpart = rest.rpartition("@")
    if not at or ":" not in userinfo.split("/", 1)[0]:
        return url
    user = userinfo.split(":", 1)[0]
    return f"{scheme}://{user}:***@{hostpart}"


def url_origin(url: str) -> str:
    """Only the scheme, host and port of `url`: what an error message about a delivery may name."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "<invalid URL>"
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    return f"{parts.scheme}://{host}:{port}" if port else f"{parts.scheme}://{host}"


def origins_only(text: str) -> str:
    """Every http(s) URL in `text` cut to its origin, any other URL to scheme://***."""
    def one(m: re.Match[str]) -> str:
        url = m.group(0).rstrip(":.,;)")  # "webhook: http://host:81: refused" ends the URL at the colon
        cut = url_origin(url) if m.group(1).lower() in ("http", "https") else f"{m.group(1)}://***"
        return cut + m.group(0)[len(url):]

    return _URL.sub(one, text)


def redact_urls(text: str) -> str:
    """Every URL in `text` passed through redact_url."""
    return _URL.sub(lambda m: redact_url(m.group(0)), text)


def _masked_value(value: str) -> str:
    """A TOML value of a secret key as it may be shown: a lone reference stays, anything else is ***."""
    return value.strip() if _REFERENCE.fullmatch(value.strip()) else '"***"'


class _ConfigRedactor:
    """Line-by-line state of redact_config_text: which side (removed, added) is inside a secret array."""

    def __init__(self, secret: Iterable[str]) -> None:
        self.secret = set(secret)
        self.open = {"-": False, "+": False}

    def line(self, mark: str, body: str) -> str:
        sides = [mark] if mark in "-+" and mark else ["-", "+"]
        if any(self.open[s] for s in sides):
            closed = "]" in body
            for s in sides:
                self.open[s] = not closed
            return "]" if closed else '  "***",'
        m = _KEY_LINE.match(body)
        key = m and (m.group(2) or m.group(3) or m.group(4))
        if not m or key not in self.secret:
            return redact_urls(body)
        value = m.group(6)
        if value.lstrip().startswith("[") and "]" not in value:
            for s in sides:
                self.open[s] = True
            return f"{m.group(1)}{key}{m.group(5)}["
        return f"{m.group(1)}{key}{m.group(5)}{_masked_value(value)}"


def redact_config_text(text: str, secret: Iterable[str]) -> str:
    """TOML text, or a unified diff of it, with the values of `secret` keys as *** and URLs without secrets.

    Works line by line (a diff is not whole TOML): a secret array that spans lines is
    masked up to its closing bracket, for the removed and the added side each.
    """
    redactor = _ConfigRedactor(secret)
    out = []
    for line in split_lines(text, keepends=True):
        header = line.startswith(("--- ", "+++ ", "@@"))
        mark = line[:1] if line[:1] in "-+ " and not header else ""
        content = line[len(mark):]
        body = content.rstrip("\r\n")
        out.append(mark + (redact_urls(body) if header else redactor.line(mark, body)) + content[len(body):])
    return "".join(out)
