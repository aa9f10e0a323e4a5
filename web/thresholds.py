"""(being written)"""

from flask import Blueprint

bp = Blueprint("thresholds", __name__)


@bp.get("/thresholds")
def table() -> str:
    return ""
