"""The last update of an RRD file, right after 2038 too."""

from __future__ import annotations

import rrdtool

# rrdtool.last answers through a C int: from 2038-01-19 03:14:08 UTC on, it wraps to negative.
_WRAP = 1 << 32


def last_update(*args: str) -> int:
    """rrdtool.last(*args) as an epoch (until 2106): no RRD was updated before 1970, so a negative value wrapped."""
    last = int(rrdtool.last(*args))
    return last + _WRAP if last < 0 else last
