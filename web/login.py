"""Log in and out (Flask-Login over rrdalarm.access.users), with server-side session records and a login limit.

Failed logins are counted per client address and per account; an attempt is
counted before its password is checked, so parallel guesses cannot slip past
the limit while the (slow) hash is verified.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Iterable
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, Flask, Response, current_app, redirect, render_template, request, session, url_for
from flask_login import LoginManager, UserMixin, current_user, login_user, logout_user
from flask_wtf import FlaskForm
from wtforms import PasswordField, StringField
from wtforms.validators import DataRequired, Length

from rrdalarm.access.sessions import SessionRecords
from rrdalarm.access.users import Account, authenticate, get_user

from .auth import service

bp = Blueprint("login", __name__, template_folder="templates")

MAX_FAILURES = 5
WINDOW_S = 300.0


class WebUser(UserMixin):  # type: ignore[misc]
    def __init__(self, account: Account) -> None:
        self.account = account
        self.id = str(account.id)


class LoginForm(FlaskForm):  # type: ignore[misc]
    name = StringField("User", validators=[DataRequired(), Length(max=64)])
    password = PasswordField("Password", validators=[DataRequired(), Length(max=1024)])


class Failures:
    """Recent login attempts that did not succeed, per key (an address, an account)."""

    def __init__(self) -> None:
        self._seen: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, key: str, now: float) -> deque[float]:
        times = self._seen.setdefault(key, deque())
        while times and now - times[0] > WINDOW_S:
            times.popleft()
        return times

    def _wait(self, recent: list[deque[float]], now: float) -> int:
        return max((int(WINDOW_S - (now - t[0])) + 1 for t in recent if len(t) >= MAX_FAILURES), default=0)

    def blocked_for(self, keys: Iterable[str], now: float) -> int:
        with self._lock:
            return self._wait([self._recent(k, now) for k in keys], now)

    def begin(self, keys: Iterable[str], now: float) -> int:
        """Seconds to wait when any key is over the limit; else 0, and the attempt counts as failed until cleared."""
        with self._lock:
            recent = [self._recent(k, now) for k in keys]
            wait = self._wait(recent, now)
            if not wait:
                for times in recent:
                    times.append(now)
            return wait

    def clear(self, keys: Iterable[str]) -> None:
        with self._lock:
            for key in keys:
                self._seen.pop(key, None)


def records() -> SessionRecords:
    found: SessionRecords = current_app.extensions["rrdalarm.access.sessions"]
    return found


def _safe_next(target: str | None) -> str | None:
    """A local path to go to after login; None for a target with control characters (a 400)."""
    if target and any(ord(c) < 32 or ord(c) == 127 for c in target):
        return None
    # Only local paths: a login link must not send the browser to another site.
    if target and target.startswith("/") and not target.startswith(("//", "/\\")) and not urlsplit(target).netloc:
        return target
    return url_for("report.last_report")


def _address() -> str:
    return f"address:{request.remote_addr or '?'}"


@bp.route("/login", methods=["GET", "POST"])
def login() -> Response | str | tuple[str, int]:
    form = LoginForm()
    target = _safe_next(request.args.get("next"))
    if target is None:
        return Response("next: not a path of this site\n", 400, {"Content-Type": "text/plain; charset=utf-8"})
    failures: Failures = current_app.extensions["rrdalarm.login_failures"]
    wait = failures.blocked_for([_address()], time.monotonic())
    if not wait and not form.validate_on_submit():
        return render_template("login.html", form=form, error=None)
    keys = [_address(), f"account:{(form.name.data or '').lower()}"]
    wait = wait or failures.begin(keys, time.monotonic())
    if wait:
        return render_template("login.html", form=form, error=f"Too many failed logins; try again in {wait} s."), 429
    account = authenticate(service().store, form.name.data, form.password.data)
    if account is None:
        return render_template("login.html", form=form, error="Wrong user name or password."), 401
    failures.clear(keys)
    end_session()  # a new session id on login: one planted before it is worth nothing
    login_user(WebUser(account))
    session["sid"] = records().open()
    session["stamp"] = account.password_stamp
    session.permanent = True
    return redirect(target)  # type: ignore[return-value]


def end_session() -> None:
    records().end(session.get("sid"))
    session.clear()


@bp.post("/logout")
def logout() -> Response:
    logout_user()
    end_session()
    return redirect(url_for("login.login"))  # type: ignore[return-value]


def _load(user_id: str) -> WebUser | None:
    """The logged-in user while its record is alive and the password is the one it was opened with."""
    try:
        account = get_user(service().store, int(user_id))
    except ValueError:
        return None
    if account is None or session.get("stamp") != account.password_stamp or not records().alive(session.get("sid")):
        return None
    return WebUser(account)


def init_login(app: Flask) -> None:
    manager = LoginManager(app)
    manager.login_view = "login.login"
    manager.user_loader(_load)
    settings: Any = app.extensions["rrdalarm"].settings()
    app.extensions["rrdalarm.access.sessions"] = SessionRecords(settings.data_dir, settings.service.session_idle)
    app.extensions["rrdalarm.login_failures"] = Failures()
    app.config["PERMANENT_SESSION_LIFETIME"] = timedelta(seconds=settings.service.session_idle)
    app.extensions["rrdalarm.login"] = lambda: bool(current_user.is_authenticated)
    app.register_blueprint(bp)
