"""(being written)"""

from flask import Blueprint

bp = Blueprint("suggest", __name__)
