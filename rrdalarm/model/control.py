"""What people put over the alarms: silences, maintenance windows and acknowledgements (DESIGN §2b).

Plain records shared by the config (maintenance windows live in the thresholds file),
the store (silences and acknowledgements live in the database), the rules that match
them and the faces that make them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Matchers:
    """Which series a silence or window covers; a matcher left out matches everything."""

    threshold: int | None = None
    series: str | None = None
    """A glob over the series (for RRD files: the path relative to the root)."""
    ds: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict, hash=False)
    """Every one must equal the threshold's label of that name."""
    severity: str | None = None

    def describe(self) -> str:
        """The matchers in a line, e.g. "threshold 3, series web/*.rrd"; "everything" when none."""
        parts = [f"{name} {value}" for name, value in (("threshold", self.threshold), ("series", self.series),
                                                       ("ds", self.ds), ("severity", self.severity))
                 if value is not None]
        parts += [f"label {k}={v}" for k, v in sorted(self.labels.items())]
        return ", ".join(parts) or "everything"


@dataclass(frozen=True)
class Silence:
    """A silence kept in the database: quiet from `starts_at` until `ends_at` (epoch seconds)."""

    id: int
    matchers: Matchers
    starts_at: int
    ends_at: int
    comment: str
    author: str
    created_at: int
    expired_by: str | None = None
    """Who ended it early (`ends_at` is then when)."""

    def active(self, now: int) -> bool:
        return self.starts_at <= now < self.ends_at

    @property
    def ref(self) -> str:
        return str(self.id)


@dataclass(frozen=True)
class MaintenanceWindow:
    """A recurring silence of the thresholds file: from each time of the cron `schedule`, for `duration` s."""

    name: str
    schedule: str
    duration: int
    comment: str = ""
    matchers: Matchers = field(default_factory=Matchers)
    line: int | None = None

    @property
    def ref(self) -> str:
        return f"maintenance:{self.name}"


@dataclass(frozen=True)
class Quiet:
    """What quiets one series at one check: the silences' and windows' refs and until when."""

    refs: tuple[str, ...]
    until: int


@dataclass(frozen=True)
class Acknowledgement:
    """Someone has seen a FIRING series: no re-arm repeats until it resolves."""

    by: str
    at: int
    comment: str

    def as_dict(self) -> dict[str, object]:
        return {"by": self.by, "at": self.at, "comment": self.comment}
