"""The report's HTML: `check --html` is one self-contained file (styles inlined, nothing fetched); the served
page embeds the same body; both label every cell for the cards of phone width; times are ISO, 24 hours."""

from __future__ import annotations

import re
import time
from pathlib import Path

from test_render import result, row

from rrdalarm.model.states import Status
from rrdalarm.report.render import COLUMNS, fmt_time, report_body, to_html

WEB_CSS = Path(__file__).resolve().parents[2] / "web" / "static" / "rrdalarm.css"
CORE_CSS = Path(__file__).resolve().parents[2] / "rrdalarm" / "report" / "templates" / "report.css"
VARIABLE = re.compile(r"(--[\w-]+):\s*([^;]+);")


def test_standalone_report_inlines_its_styles_and_fetches_nothing() -> None:
    page = to_html(result(row(), row(ds="out", status=Status.OK)))
    assert page.startswith("<!doctype html>")
    assert "<link" not in page and "@import" not in page and "url(" not in page
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page)
    style = page.split("<style>", 1)[1].split("</style>", 1)[0]
    assert "--bg:" in style and "@media (prefers-color-scheme: dark)" in style and "table.cards" in style
    assert page.count("<script>") == 1  # the table's script, inline too


def test_standalone_colours_are_the_web_stylesheets() -> None:
    web = dict(VARIABLE.findall(WEB_CSS.read_text().split("@media (prefers-color-scheme: dark)")[0]))
    web_dark = dict(VARIABLE.findall(WEB_CSS.read_text().split("@media (prefers-color-scheme: dark)")[1]))
    core, core_dark = (dict(VARIABLE.findall(part)) for part in
                       CORE_CSS.read_text().split("@media (prefers-color-scheme: dark)"))
    assert core and core.items() <= web.items()
    assert core_dark and core_dark.items() <= web_dark.items()


def test_every_cell_has_its_column_as_label() -> None:
    body = str(report_body(result(row())))
    assert "<html" not in body and "<style" not in body
    cells = body.split('<tbody id="rows">', 1)[1].split("</tbody>", 1)[0]
    assert re.findall(r'<td data-label="([^"]+)"', cells) == list(COLUMNS)
    assert '"columns":["ID","File"' in body  # report.js labels the rows it draws


def test_times_are_iso_and_24_hours() -> None:
    afternoon = int(time.mktime((2026, 3, 9, 15, 4, 5, 0, 0, -1)))
    assert fmt_time(afternoon) == "2026-03-09 15:04:05"
    assert fmt_time(None) == "-"
