"""The API token of /start: a random secret kept in a file only its owner can read."""

from __future__ import annotations

import secrets
from pathlib import Path

from rrdalarm.common.fileutil import private_file


def ensure_token_file(path: Path) -> str:
    """The token in `path`, made (mode 0600) if the file does not exist yet."""
    made = private_file(path, lambda: (secrets.token_urlsafe(32) + "\n").encode("ascii"))
    return made.decode("utf-8").strip()
