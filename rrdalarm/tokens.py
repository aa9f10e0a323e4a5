"""The API token of /start: a random secret kept in a file only its owner can read."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from rrdalarm.fileutil import make_private_dirs


def ensure_token_file(path: Path) -> str:
    """The token in `path`, made (mode 0600) if the file does not exist yet."""
    try:
        return path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        pass
    make_private_dirs(path.parent)
    token = secrets.token_urlsafe(32)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # made by a concurrent caller a moment ago
        return path.read_text(encoding="utf-8").strip()
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(token + "\n")
    return token
