"""Who may run checks and see reports: an API token (Bearer or token=) or, later, a logged-in user."""

from __future__ import annotations

import functools
import hmac
from collections.abc import Callable
from typing import Any, TypeVar

from flask import Response, current_app, redirect, request, session, url_for

from rrdalarm.access.sessions import stamp
from rrdalarm.common.secrets import SecretError, resolve_secret
from rrdalarm.service.service import CheckService

from .errors import error_response

F = TypeVar("F", bound=Callable[..., Any])


def service() -> CheckService:
    svc: CheckService = current_app.extensions["rrdalarm"]
    return svc


def presented_token() -> str | None:
    header = request.headers.get("Authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip()
    return request.args.get("token") or None


def _api_token() -> str | None:
    try:
        return resolve_secret(service().settings().service.api_token, "api_token")
    except SecretError:
        current_app.logger.error("api_token cannot be read; token access is refused")
        return None


def token_ok(given: str | None) -> bool:
    if not given:
        return False
    expected = _api_token()
    # Compared in constant time, so the token cannot be guessed byte by byte from timings.
    return bool(expected) and hmac.compare_digest(given.encode(), expected.encode())  # type: ignore[union-attr]


def token_session() -> bool:
    """A browser session opened with ?token=: alive, and opened with the token that is configured now."""
    tied = session.get("token_session")
    if not isinstance(tied, str):
        return False
    expected = _api_token()
    if not expected:
        return False
    records = current_app.extensions["rrdalarm.access.sessions"]
    return hmac.compare_digest(tied, stamp(expected)) and bool(records.alive(session.get("sid")))


def open_token_session(token: str) -> None:
    records = current_app.extensions["rrdalarm.access.sessions"]
    if session.get("token_session") != stamp(token) or not records.alive(session.get("sid")):
        records.end(session.get("sid"))
        session.clear()
        session["sid"] = records.open()
        session["token_session"] = stamp(token)
        session.permanent = True


def logged_in() -> bool:
    if token_session():
        return True
    checker = current_app.extensions.get("rrdalarm.login")
    return bool(checker and checker())


def require_access(view: F) -> F:
    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        given = presented_token()
        if token_ok(given):
            if request.args.get("token") and given:
                # A browser that opened a link with ?token= keeps access (graphs, pages) through its
                # signed, HttpOnly session cookie instead of carrying the token in every URL; the
                # session is tied to this token, so rotating the token ends it.
                open_token_session(given)
            return view(*args, **kwargs)
        if logged_in():
            return view(*args, **kwargs)
        if presented_token() is None and "text/html" in request.headers.get("Accept", ""):
            # A browser: to the login page, and back here afterwards.
            return redirect(url_for("login.login", next=request.full_path.rstrip("?")))
        return Response("authentication required: send the API token as 'Authorization: Bearer …'\n", 401,
                        {"WWW-Authenticate": 'Bearer realm="rrdalarm"', "Content-Type": "text/plain"})

    return wrapper  # type: ignore[return-value]


def require_token(view: F) -> F:
    """GETs that change something (/start): the API token only. A browser's cookies go along on any
    cross-site link (SameSite=Lax), so a session must POST, with CSRF, instead."""

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if token_ok(presented_token()):
            return view(*args, **kwargs)
        if logged_in():
            return error_response(403, "forbidden: GET here needs the API token; from the pages, use Check now")
        return Response("authentication required: send the API token as 'Authorization: Bearer …'\n", 401,
                        {"WWW-Authenticate": 'Bearer realm="rrdalarm"', "Content-Type": "text/plain"})

    return wrapper  # type: ignore[return-value]


def current_account() -> Any:
    """The logged-in user's rrdalarm.access.users.Account, or None (token access, or nobody)."""
    from flask_login import current_user

    return current_user.account if current_user.is_authenticated else None


def require_admin(view: F) -> F:
    """Edits: a logged-in admin only. A viewer or a token gets 403, nobody is sent to log in."""

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        account = current_account()
        if account is not None and account.role == "admin":
            return view(*args, **kwargs)
        if account is not None or token_ok(presented_token()) or token_session():
            # Edits are recorded under a user's name, so the shared API token cannot make them.
            return error_response(403, "forbidden: changing thresholds needs a user with the admin role")
        if "text/html" in request.headers.get("Accept", ""):
            return redirect(url_for("login.login", next=request.full_path.rstrip("?")))
        return Response("authentication required: log in as an admin\n", 401,
                        {"Content-Type": "text/plain; charset=utf-8"})

    return wrapper  # type: ignore[return-value]


TOKEN_AUTHOR = "token"
"""Who the audit log names for a change made with the API token."""


def _bearer_ok() -> bool:
    """The token in an Authorization header: scripts send it; a browser never adds it on its own."""
    header = request.headers.get("Authorization", "")
    return header.lower().startswith("bearer ") and token_ok(header[7:].strip())


def control_author() -> str | None:
    """Who may quiet alarms now (a logged-in admin's name, or "token"), else None."""
    if _bearer_ok():
        return TOKEN_AUTHOR
    account = current_account()
    return account.name if account is not None and account.role == "admin" else None


def require_control(view: F) -> F:
    """Silences and acknowledgements: a logged-in admin (with CSRF) or the API token as a Bearer header.

    The view's blueprint is exempt from the app-wide CSRF check, so that scripts with the token can
    POST; a browser session is checked here instead. A viewer, or the token given any other way
    (?token=, its session cookie), gets 403.
    """

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        author = control_author()
        if author is None:
            if current_account() is not None or token_ok(presented_token()) or token_session():
                return error_response(403, "forbidden: silences and acknowledgements need an admin, or the API "
                                      "token as 'Authorization: Bearer …'")
            return Response("authentication required: log in as an admin, or send the API token as "
                            "'Authorization: Bearer …'\n", 401,
                            {"WWW-Authenticate": 'Bearer realm="rrdalarm"', "Content-Type": "text/plain"})
        if author != TOKEN_AUTHOR:
            current_app.extensions["csrf"].protect()
        return view(*args, author=author, **kwargs)

    return wrapper  # type: ignore[return-value]
