"""The Flask app: /start for cron, reports, the threshold editor, history, /metrics and /healthz.

A thin face over rrdalarm.service.CheckService: every rule lives in the core.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

from flask import Flask
from flask_wtf.csrf import CSRFProtect

from rrdalarm.fileutil import make_private_dirs
from rrdalarm.report import fmt_time
from rrdalarm.service import CheckService


def secret_key(data_dir: Path) -> bytes:
    """The session-signing key, made once and kept (mode 0600) in the data dir."""
    path = data_dir / "secret_key"
    try:
        return path.read_bytes()
    except FileNotFoundError:
        make_private_dirs(data_dir)
        key = secrets.token_bytes(32)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(key)
        return key


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
    CSRFProtect(app)

    from . import history, report, status, suggest, thresholds
    from .login import init_login

    init_login(app)
    for module in (report, status, thresholds, suggest, history):
        app.register_blueprint(module.bp)
    app.context_processor(lambda: {"nav_links": report.nav})
    app.add_template_filter(fmt_time, "datetime")
    return app
