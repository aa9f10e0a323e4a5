"""The text, JSON and HTML reports of a check: readable values with units and severities, raw JSON numbers."""

from __future__ import annotations

import json
from typing import Any

from conftest import T0

from rrdalarm.model.results import CheckResult, Row
from rrdalarm.model.states import State, Status
from rrdalarm.report.render import COLUMNS, fmt_limit, fmt_value, ordered, to_dict, to_html, to_json, to_text


def row(**kw: Any) -> Row:
    base: dict[str, Any] = {
        "threshold": 1, "file": "hosts/1/bytes.rrd", "ds": "in", "status": Status.ALARM_FIRED,
        "value": 31_600_000.0, "time": T0, "type": "above", "limit": 30_000_000.0, "message": "busy",
        "action": "log", "state": State.FIRING, "severity": "critical", "unit": "B/s",
    }
    return Row(**(base | kw))


def result(*rows: Row) -> CheckResult:
    return CheckResult(started_at=T0, duration_s=0.5, files_checked=1, series_checked=len(rows), alarms_fired=1,
                       rows=list(rows), firing=1, errors=0)


def test_fmt_value_and_limit() -> None:
    assert fmt_value(31_600_000.0, "B/s") == "31.6 MB/s"
    assert fmt_value(None, "B/s") == "-"
    assert fmt_value(0.5) == "0.5"
    assert fmt_limit(80e6, "bit/s") == "80 Mbit/s"
    assert fmt_limit(1_234_567.0, "B") == "1234567 B"  # a limit keeps every digit that was set


def test_text_report_shows_units_and_severity() -> None:
    text = to_text(result(row(), row(ds="out", status=Status.OK, value=1500.0, severity="info", unit="")))
    header, fired, ok = text.splitlines()[2:5]
    assert header.split() == [w for c in COLUMNS for w in c.split()]
    assert "31.6 MB/s" in fired and "30 MB/s" in fired and " critical " in fired
    assert "1.5 k" in ok and " info " in ok


def test_json_keeps_raw_numbers_and_carries_severity_and_unit() -> None:
    doc = json.loads(to_json(result(row())))
    (r,) = doc["results"]
    assert r["value"] == 31_600_000.0 and r["limit"] == 30_000_000.0
    assert (r["severity"], r["unit"]) == ("critical", "B/s")
    assert to_dict(result(row()))["results"][0]["value"] == 31_600_000.0


def test_html_report_shows_units_and_severity_in_the_page_and_its_data() -> None:
    page = to_html(result(row()))
    assert "<th>Severity</th>" in page
    assert ">31.6 MB/s</td>" in page and ">30 MB/s</td>" in page and ">critical</td>" in page
    data = json.loads(page.split('id="report-data">', 1)[1].split("</script>", 1)[0])
    (cells,) = data["rows"]
    assert cells[3] == "31.6 MB/s" and cells[8] == "ALARM FIRED" and cells[9] == "critical" and cells[10] == "busy"


def test_every_status_has_a_place_in_the_order() -> None:
    rows = [row(status=s, ds=str(s)) for s in Status]
    assert [r.status for r in ordered(rows)][:2] == [Status.ALARM_FIRED, Status.FIRING]
    assert "STALE" in to_text(result(*rows)) and "FLAPPING" in to_text(result(*rows))
