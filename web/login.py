"""Log in and out (Flask-Login over rrdalarm.users); failed attempts are rate-limited per address."""

from __future__ import annotations

import threading
import time
from collections import deque
from urllib.parse import urlsplit

from flask import Blueprint, Flask, Response, redirect, render_template, request, url_for
from flask_login import LoginManager, UserMixin, current_user, login_user, logout_user
from flask_wtf import FlaskForm
from wtforms import PasswordField, StringField
from wtforms.validators import DataRequired, Length

from rrdalarm.users import Account, authenticate, get_user

from .auth import service

bp = Blueprint("login", __name__, template_folder="templates")

MAX_FAILURES = 5
WINDOW_S = 300.0


class WebUser(UserMixin):  # type: ignore[misc]
    def __init__(self, account: Account) -> None:
        self.account = account
        self.id = str(account.id)

    @property
    def is_admin(self) -> bool:
        return self.account.role == "admin"


class LoginForm(FlaskForm):  # type: ignore[misc]
    name = StringField("User", validators=[DataRequired(), Length(max=64)])
    password = PasswordField("Password", validators=[DataRequired(), Length(max=1024)])


class Failures:
    """Recent failed logins per client address, to slow down password guessing."""

    def __init__(self) -> None:
        self._seen: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, key: str, now: float) -> deque[float]:
        times = self._seen.setdefault(key, deque())
        while times and now - times[0] > WINDOW_S:
            times.popleft()
        return times

    def blocked_for(self, key: str, now: float) -> int:
        with self._lock:
            times = self._recent(key, now)
            return int(WINDOW_S - (now - times[0])) + 1 if len(times) >= MAX_FAILURES else 0

    def add(self, key: str, now: float) -> None:
        with self._lock:
            self._recent(key, now).append(now)

    def clear(self, key: str) -> None:
        with self._lock:
            self._seen.pop(key, None)


failures = Failures()


def _safe_next(target: str | None) -> str:
    # Only local paths: a login link must not send the browser to another site.
    if target and target.startswith("/") and not target.startswith("//") and not urlsplit(target).netloc:
        return target
    return url_for("report.last_report")


@bp.route("/login", methods=["GET", "POST"])
def login() -> Response | str | tuple[str, int]:
    form = LoginForm()
    key = request.remote_addr or "?"
    wait = failures.blocked_for(key, time.monotonic())
    if wait:
        return render_template("login.html", form=form, error=f"Too many failed logins; try again in {wait} s."), 429
    if form.validate_on_submit():
        account = authenticate(service().store, form.name.data, form.password.data)
        if account is not None:
            failures.clear(key)
            login_user(WebUser(account))
            return redirect(_safe_next(request.args.get("next")))  # type: ignore[return-value]
        failures.add(key, time.monotonic())
        return render_template("login.html", form=form, error="Wrong user name or password."), 401
    return render_template("login.html", form=form, error=None)


@bp.post("/logout")
def logout() -> Response:
    logout_user()
    return redirect(url_for("login.login"))  # type: ignore[return-value]


def init_login(app: Flask) -> None:
    manager = LoginManager(app)
    manager.login_view = "login.login"

    @manager.user_loader  # type: ignore[untyped-decorator]
    def load(user_id: str) -> WebUser | None:
        try:
            account = get_user(service().store, int(user_id))
        except ValueError:
            return None
        return WebUser(account) if account else None

    app.extensions["rrdalarm.login"] = lambda: bool(current_user.is_authenticated)
    app.register_blueprint(bp)
