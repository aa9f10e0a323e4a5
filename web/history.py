"""(being written)"""

from flask import Blueprint

bp = Blueprint("history", __name__)


@bp.get("/events")
def events() -> str:
    return ""


@bp.get("/deliveries")
def deliveries() -> str:
    return ""


@bp.get("/audit")
def audit() -> str:
    return ""


@bp.post("/check-now")
def check_now() -> str:
    return ""
