"""What a check and a delivery attempt return to the faces: plain data for reports, metrics and exit statuses."""

from __future__ import annotations

from dataclasses import dataclass, field

from rrdalarm.model.control import Acknowledgement
from rrdalarm.model.states import DeliveryStatus, State, Status


@dataclass(frozen=True)
class AttemptResult:
    delivery_id: str
    action: str
    ok: bool
    error: str | None
    status: DeliveryStatus  # after this attempt: sent, pending (will retry) or dead


@dataclass(frozen=True, slots=True)
class Row:
    """One line of the report."""

    threshold: int
    file: str
    ds: str
    status: Status
    value: float | None
    time: int | None
    type: str
    limit: float
    message: str
    action: str
    state: State | None
    severity: str = "warning"
    unit: str = ""
    silenced: tuple[str, ...] = ()
    """Refs of the silences (ids) and maintenance windows ("maintenance:NAME") quieting it."""
    acknowledged: Acknowledgement | None = None


@dataclass
class CheckResult:
    started_at: int
    duration_s: float
    files_checked: int
    series_checked: int
    alarms_fired: int
    rows: list[Row]
    firing: int
    errors: int
    dry_run: bool = False
    warnings: list[str] = field(default_factory=list)
    deliveries: list[AttemptResult] = field(default_factory=list)
    repeats: int = 0
    """ALARM FIRED rows that were re-arm repeats (`alarms_fired` counts them too)."""

    @property
    def first_firings(self) -> int:
        return self.alarms_fired - self.repeats

    @property
    def exit_status(self) -> int:
        """0 nothing firing, 1 something firing, 3 nothing firing but something unreadable."""
        if self.firing:
            return 1
        if self.errors:
            return 3
        return 0
