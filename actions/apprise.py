"""`apprise`: one notification per delivery to Apprise URLs (Slack, Telegram, ntfy, Matrix, json:// ...).

Needs the optional `apprise` package (`pip install rrdalarm[apprise]`), imported
when sending: without it the action fails permanently, saying so.
The title is `<title_prefix> <counts>` ("[rrdalarm] 2 alarms fired, 1
resolved"), the body one line per event plus the delivery id. `urls` is the
split parameter: the outbox makes one delivery per URL, so a service that is
down is retried on its own. Apprise URLs carry tokens and passwords, so
messages name only their scheme ("json://"), never the URL.
"""

from __future__ import annotations

import inspect
import logging
import re
from collections.abc import Mapping
from typing import Any, ClassVar

from rrdalarm.plugins import ActionError, Param

from .base import Action, Delivery
from .email import detail_lines, prefix_problem, subject, text_line

_URL = re.compile(r"\b([A-Za-z][A-Za-z0-9+.-]{0,31}://)\S+")


class _HideUrls(logging.Filter):
    """Apprise logs whole URLs ("Unparseable URL json://user:token@..."); keep only their scheme."""

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        hidden = _URL.sub(r"\1…", text)
        if hidden != text:
            record.msg, record.args = hidden, None
        return True


_HIDE_URLS = _HideUrls()
logging.getLogger("apprise").addFilter(_HIDE_URLS)  # idempotent: a filter is added once


def url_list(value: object) -> list[str] | None:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
        return list(value)
    return None


def scheme(url: str) -> str:
    """What a message may show of an Apprise URL: its scheme."""
    head, sep, _ = url.partition("://")
    return f"{head.lower()}://" if sep and re.fullmatch(r"[A-Za-z][A-Za-z0-9+.-]{0,31}", head) else "<no scheme>"


def urls_problem(value: object) -> str | None:
    """Why `value` is not a non-empty list of Apprise URLs (checked for shape only: no URL in the message)."""
    urls = url_list(value)
    if not urls:
        return "needs at least one Apprise URL"
    for i, u in enumerate(urls, 1):
        if scheme(u) == "<no scheme>" or any(ord(c) < 32 for c in u):
            return f"item {i} is not an Apprise URL (expected scheme://...)"
    return None


def build_body(delivery: Delivery) -> str:
    """A line per event; a digest is its one summing-up line (a chat is no place for 995 lines)."""
    events = [delivery.digest] if delivery.digest else delivery.events
    lines = [line for e in events for line in (text_line(e), *detail_lines(e))]
    return "\n".join([*lines, f"delivery {delivery.id}"])


class AppriseAction(Action):
    """Sends the delivery's events as one notification to each Apprise URL."""

    name = "apprise"
    params: ClassVar[Mapping[str, Param]] = {
        # Apprise URLs carry the service's token or password.
        "urls": Param(list, required=True, secret=True, help="Apprise URLs, e.g. ntfys://ntfy.sh/topic",
                      check=urls_problem),
        "title_prefix": Param(str, default="[rrdalarm]", help="start of the title", check=prefix_problem),
    }
    legacy_param: ClassVar[str | None] = "urls"
    split_param: ClassVar[str | None] = "urls"

    def run(self, delivery: Delivery) -> None:
        try:
            # Imported here: it is optional, and slow to import for `rrdalarm validate`, which sends nothing.
            import apprise
        except ImportError:
            raise ActionError("apprise: the apprise package is not installed (pip install apprise)",
                              permanent=True) from None
        urls = url_list(self.config.get("urls"))
        problem = urls_problem(urls)
        if problem or not urls:
            raise ActionError(f"apprise: parameter 'urls' {problem}", permanent=True)
        prefix = self.config.get("title_prefix")
        prefix = "[rrdalarm]" if prefix is None else str(prefix)
        if prefix_problem(prefix):
            raise ActionError("apprise: parameter 'title_prefix' must be one line of text", permanent=True)
        schemes = ", ".join(dict.fromkeys(scheme(u) for u in urls))
        timeout = self.context.timeout

        notifier = apprise.Apprise()
        for i, url in enumerate(urls, 1):
            if not notifier.add(url):
                raise ActionError(f"apprise: URL {i} ({scheme(url)}) is not understood by apprise", permanent=True)
        for service in notifier:
            # Per-socket limits of every HTTP-based service; the default (4 s) may exceed ours.
            for attr in ("socket_connect_timeout", "socket_read_timeout"):
                current = getattr(service, attr, None)
                if isinstance(current, int | float):
                    setattr(service, attr, min(float(current), timeout))
        kwargs: dict[str, Any] = {}
        if "timeout" in inspect.signature(notifier.notify).parameters:  # apprise >= 2: a limit for the whole call
            kwargs["timeout"] = timeout
        try:
            result = notifier.notify(
                body=build_body(delivery), title=subject(prefix, delivery),
                body_format=apprise.NotifyFormat.TEXT, **kwargs,
            )
        except Exception as exc:  # noqa: BLE001 - a plugin error must not carry the URL out in a traceback
            raise ActionError(f"apprise: notification via {schemes} failed ({exc.__class__.__name__})") from None
        if not result:
            status = getattr(getattr(result, "status", None), "name", None)
            raise ActionError(f"apprise: notification via {schemes} failed" + (f" ({status})" if status else ""))
