"""Secrets in settings and action parameters: inline, from the environment, or from a file.

A secret is written as a string, or as `{ env = "NAME" }`, or as
`{ file = "/path" }`. Only the reference is stored (in the outbox, in
reports); the value is read when it is used and never put in a message.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

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
