"""The Flask app: /start for cron, reports, the threshold editor, history, /metrics and /healthz.

A thin face over rrdalarm.service.CheckService: every rule lives in the core.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from pathlib import Path
from typing import Any

from flask import Flask, Response
from flask_wtf.csrf import CSRFProtect

from rrdalarm.common.fileutil import private_file
from rrdalarm.report.render import fmt_time
from rrdalarm.service.service import CheckService


def secret_key(data_dir: Path) -> bytes:
    """The session-signing key, made once and kept (mode 0600) in the data dir."""
    return private_file(data_dir / "secret_key", lambda: secrets.token_bytes(32))


# Inline <script> and <style> blocks (the report is one self-contained page) are allowed by their hashes.
_INLINE = re.compile(r"<(script|style)>(.*?)</\1>", re.S)


def security_headers(response: Response) -> Response:
    """A Content-Security-Policy for every answer: our own files only, and no framing by other sites."""
    hashes: dict[str, list[str]] = {"script": [], "style": []}
    if response.mimetype == "text/html" and not response.direct_passthrough:
        for kind, body in _INLINE.findall(response.get_data(as_text=True)):
            digest = base64.b64encode(hashlib.sha256(body.encode("utf-8")).digest()).decode()
            hashes[kind].append(f"'sha256-{digest}'")
    scripts = " ".join(["'self'", *hashes["script"]])
    styles = " ".join(["'self'", *hashes["style"]])
    response.headers["Content-Security-Policy"] = (
        "default-src 'none'; img-src 'self' data:; connect-src 'self'; form-action 'self'; base-uri 'none'; "
        f"script-src {scripts}; style-src {styles}; frame-ancestors 'none'"
    )
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


def create_app(service: CheckService, test_config: dict[str, Any] | None = None) -> Flask:
    app = Flask(__name__)
    settings = service.settings()
    app.config.update(
        SECRET_KEY=secret_key(settings.data_dir),
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        MAX_CONTENT_LENGTH=1 << 20,
    )
    if test_config:
        app.config.update(test_config)
    app.extensions["rrdalarm"] = service
    csrf = CSRFProtect(app)

    from . import alarms, charts, control_api, control_pages, history, report, status, suggest, thresholds, trees
    from .auth import logged_in
    from .errors import init_errors
    from .login import init_login

    init_login(app)
    init_errors(app)
    for module in (alarms, report, status, thresholds, suggest, history, charts, control_pages, control_api, trees):
        app.register_blueprint(module.bp)
    # Scripts POST there with the API token; a browser session's CSRF token is checked by require_control.
    csrf.exempt(control_api.bp)
    app.context_processor(lambda: {"nav_links": report.nav, "signed_in": logged_in, "role": service.role})
    app.add_template_filter(fmt_time, "datetime")
    app.after_request(security_headers)
    return app
