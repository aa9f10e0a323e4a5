"""Check result -> text table, JSON document, standalone HTML page, or the report's HTML for a served page."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

from rrdalarm.common.quantities import format_limit, format_quantity
from rrdalarm.model.results import CheckResult, Row
from rrdalarm.model.states import Severity, Status

if TYPE_CHECKING:
    import jinja2
    from markupsafe import Markup

COLUMNS = ("ID", "File", "DS", "Value", "Type", "Threshold", "Time", "Action", "Status", "Severity", "Message")

# Fired rows first, then what needs attention, then the rest.
_STATUS_ORDER = {
    Status.ALARM_FIRED: 0, Status.FIRING: 1, Status.FLAPPING: 2, Status.ERROR: 3, Status.NO_DATA: 4,
    Status.STALE: 5, Status.OK: 6,
}


def fmt_value(value: float | None, unit: str = "") -> str:
    """A value for people: 3 significant digits, an SI prefix and the unit ("31.6 MB/s")."""
    return format_quantity(value, unit)


def fmt_limit(limit: float, unit: str = "") -> str:
    """A limit for people: readable when that is exact ("80 MB/s"), else every digit."""
    return format_limit(limit, unit)


def fmt_time(epoch: int | None) -> str:
    return "-" if epoch is None else time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(epoch))


@dataclass(frozen=True)
class RowFilter:
    """What the report is narrowed to (its query string): text of the file, threshold, severity, status."""

    text: str | None = None
    threshold: int | None = None
    severity: str | None = None
    status: str | None = None

    def keeps(self, r: Row) -> bool:
        return ((self.text is None or self.text.lower() in r.file.lower())
                and self.threshold in (None, r.threshold) and self.severity in (None, r.severity)
                and self.status in (None, r.status.value))

    def form(self) -> dict[str, str]:
        """The values the filter form shows."""
        pairs = (("q", self.text), ("threshold", self.threshold), ("severity", self.severity), ("status", self.status))
        return {k: "" if v is None else str(v) for k, v in pairs}


def ordered(rows: Iterable[Row]) -> list[Row]:
    return sorted(rows, key=lambda r: (_STATUS_ORDER[r.status], r.threshold, r.file, r.ds))


def _repeats(count: int) -> str:
    return f" (+{count} repeat{'s' if count > 1 else ''})" if count else ""


def summary_line(result: CheckResult) -> str:
    dry = " (dry run: nothing recorded, no action run)" if result.dry_run else ""
    return (
        f"Check at {fmt_time(result.started_at)}: {result.duration_s:.2f} s, "
        f"{result.files_checked} files checked ({result.series_checked} series), "
        f"{result.first_firings} alarms fired{_repeats(result.repeats)}, {result.firing} firing, "
        f"{result.errors} unreadable{dry}"
    )


def _cells(r: Row) -> tuple[str, ...]:
    return (
        str(r.threshold), r.file, r.ds or "-", fmt_value(r.value, r.unit), r.type, fmt_limit(r.limit, r.unit),
        fmt_time(r.time), r.action, r.status.value, r.severity, row_note(r),
    )


def row_note(r: Row) -> str:
    """The row's message, saying what silences it (an acknowledgement is in the message already)."""
    if not r.silenced:
        return r.message
    names = ", ".join(ref if ref.startswith("maintenance:") else f"silence {ref}" for ref in r.silenced)
    return f"{r.message} [silenced: {names}]" if r.message else f"[silenced: {names}]"


def to_text(result: CheckResult) -> str:
    """The summary line and an aligned table, like the original report."""
    table = [COLUMNS, *(_cells(r) for r in ordered(result.rows))]
    widths = [max(len(row[i]) for row in table) for i in range(len(COLUMNS) - 1)]
    lines = [summary_line(result), ""]
    for row in table:
        lead = "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=False))
        lines.append((lead + "  " + row[-1]).rstrip())
    if not result.rows:
        lines.append("(no series)")
    return "\n".join(lines) + "\n"


def to_dict(result: CheckResult) -> dict[str, Any]:
    """The JSON document of `check --json` and `/start?format=json`."""
    return {
        "started_at": result.started_at,
        "duration_s": round(result.duration_s, 6),
        "files_checked": result.files_checked,
        "series_checked": result.series_checked,
        "alarms_fired": result.alarms_fired,
        "results": [
            {
                "threshold": r.threshold,
                "file": r.file,
                "ds": r.ds,
                "status": r.status.value,
                "value": r.value,
                "time": r.time,
                "type": r.type,
                "limit": r.limit,
                "message": r.message,
                "severity": r.severity,
                "unit": r.unit,
                "silenced": [int(ref) if ref.isdigit() else ref for ref in r.silenced],
                "acknowledged": r.acknowledged.as_dict() if r.acknowledged else None,
            }
            for r in result.rows
        ],
    }


def to_json(result: CheckResult) -> str:
    return json.dumps(to_dict(result), indent=1) + "\n"


@cache
def _templates() -> jinja2.Environment:
    import jinja2  # only HTML output needs it; cron runs with --quiet skip the import

    return jinja2.Environment(
        loader=jinja2.PackageLoader("rrdalarm.report", "templates"),
        autoescape=jinja2.select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )


FIRST_PAGE = 200
GraphLink = Callable[[Row, int], str | None]


def report_body(result: CheckResult, graph_link: GraphLink | None = None,
                notices: Sequence[tuple[str, str]] = (), wanted: RowFilter | None = None) -> Markup:
    """The report without a page around it (summary, filters, table, its data and script), for a page to embed.

    `graph_link(row, check_time)` gives the URL of a row's graph, when the page is served;
    `notices` are (category, text) lines shown above the summary ("error" ones in red); `wanted`
    narrows the first page as the script narrows the rest (the data holds every row).
    The script is inline (pages that serve it allow it by its hash); every cell has a data-label,
    the label of its card at phone width.
    """
    rows = ordered(result.rows)

    def link(r: Row) -> str | None:
        if graph_link is None or r.status not in (Status.ALARM_FIRED, Status.FIRING):
            return None
        return graph_link(r, result.started_at)

    table = [(r, _cells(r), link(r)) for r in rows]
    data = {"columns": COLUMNS, "rows": [[r.threshold, *cells[1:], g] for r, cells, g in table]}
    wanted = wanted or RowFilter()
    shown = [entry for entry in table if wanted.keeps(entry[0])]
    # "<" escaped keeps "</script>" in a file name from closing the data block.
    data_json = json.dumps(data, separators=(",", ":")).replace("<", "\\u003c")
    from markupsafe import Markup  # as jinja2: only HTML output needs it

    html = _templates().get_template("report_body.html").render(
        result=result,
        summary=summary_line(result),
        first_page=shown[:FIRST_PAGE],
        rows_total=len(shown),
        columns=COLUMNS,
        statuses=[s.value for s in Status],
        severities=[s.value for s in Severity],
        thresholds=sorted({r.threshold for r in rows}),
        form=wanted.form(),
        data_json=data_json,
        notices=notices,
    )
    return Markup(html)


def to_html(result: CheckResult, graph_link: GraphLink | None = None,
            notices: Sequence[tuple[str, str]] = ()) -> str:
    """A standalone HTML page (`check --html`): one file with its styles inlined, that works offline."""
    return _templates().get_template("report.html").render(body=report_body(result, graph_link, notices))
