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
        """Screenshots, then axe at desktop and at phone width (where tables are cards)."""
        shots(self.ui, name, self.scheme)
        self.axe(f"{name}-{self.scheme}")
        self.ui.page.set_viewport_size(PHONE)
        self.axe(f"{name}-{self.scheme}-phone")
        self.ui.page.set_viewport_size(DESKTOP)

    def axe(self, name: str) -> None:
        try:
            self.ui.assert_accessible(name)
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
    expect(page.locator("#rows tr").first).to_be_visible()


def suggestions_open(page: Page) -> None:
    """The glob's autocomplete list open, its first option highlighted."""
    page.locator("#glob").focus()
    page.keyboard.type("interfaces/")
    expect(page.locator("#glob-list li[role=option]").filter(has_text="eth2/")).to_have_count(1)
    page.keyboard.press("ArrowDown")
    expect(page.locator("#glob-list li[aria-selected=true]")).to_have_count(1)


def editor_with_errors(page: Page) -> None:
    page.fill("#value", "lots")
    page.fill("#start", "yesterday-ish")
    page.click("#save-button")
    expect(page.locator("#error-summary")).to_be_visible()
    for name in ("value", "start"):  # each field is marked and reads its own message
        expect(page.locator(f"#{name}")).to_have_attribute("aria-invalid", "true")
        expect(page.locator(f"#{name}")).to_have_accessible_description(page.locator(f"#error-{name}").inner_text())


def editor_with_preview(page: Page) -> None:
    page.click("#preview-button")
    expect(page.locator("#preview-would-fire")).to_have_text("2")
    page.wait_for_function("() => [...document.querySelectorAll('#preview-graphs img')].every(i => i.naturalWidth)")


def chart_loaded(page: Page) -> None:
    """The chart drawn, and named and described in words for a screen reader (the canvas says nothing)."""
    expect(page.locator(".chart-plot canvas")).to_have_count(1)
    expect(page.locator(".chart-status")).not_to_contain_text("Loading")
    plot = page.get_by_role("img", name="chart of interfaces/eth0/bytes.rrd rx over time")
    expect(plot).to_have_count(1)
    expect(page.locator("#chart-summary")).to_contain_text("Threshold: above 100.")
    expect(plot).to_have_attribute("aria-describedby", "chart-status chart-summary")


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
    tour.visit("editor-new", "/thresholds/new", suggestions_open)
    tour.visit("editor-edit", "/thresholds/1/edit")
    ui.allow(r"status of 400 .*/thresholds/1/edit")  # the answer of a form with mistakes
    editor_with_errors(ui.page)
    tour.check("editor-errors")
    tour.visit("editor-preview", "/thresholds/1/edit", editor_with_preview)
    tour.visit("events", "/events")
    tour.visit("series", SERIES, chart_loaded)
    tour.visit("deliveries", "/deliveries")
    tour.visit("audit", "/audit")
    tour.visit("silences", "/silences", lambda p: expect(p.locator("#windows tbody tr")).to_contain_text("backup"))
    tour.visit("statistics", "/stats", stats_loaded)
    tour.visit("trees", "/trees")
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


# --- Keyboard only: no click, no fill; Tab moves the focus, keys do the rest. ---

ETH2 = "#alarms tr[data-series='interfaces/eth2/bytes.rrd']"
FOCUSED_JS = "s => !!document.activeElement && document.activeElement.matches(s)"
RING_JS = """() => { const s = getComputedStyle(document.activeElement);
  return {style: s.outlineStyle, width: parseFloat(s.outlineWidth), tag: document.activeElement.tagName}; }"""


def tab_to(page: Page, selector: str, limit: int = 250) -> None:
    """Press Tab until the focus is on `selector` (forward through the page, as a keyboard user would)."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate(FOCUSED_JS, selector):
            return
    raise AssertionError(f"{limit} presses of Tab never reached {selector}")


def keyboard_log_in(page: Page, site: Site, path: str) -> None:
    """The login form by keyboard: the name field has the focus when the page opens."""
    page.goto(site.url + path)
    expect(page).to_have_url(re.compile(r"/login\?next="))
    expect(page.locator("#name")).to_be_focused()
    page.keyboard.type("alice")
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    expect(page).to_have_url(site.url + path)


def assert_focus_ring(page: Page, what: str) -> None:
    ring = page.evaluate(RING_JS)
    # Chromium's own ring is `auto 1px`; rrdalarm.css draws a 2 px solid one that shows in both themes.
    assert ring["style"] == "solid" and ring["width"] >= 2, (what, ring)


def test_acknowledge_and_silence_by_keyboard(ui: Watched, site: Site) -> None:
    page = ui.page
    keyboard_log_in(page, site, "/")
    row = page.locator(ETH2)
    expect(row).to_have_count(1)

    tab_to(page, f"{ETH2} details[id^=ack-] summary")
    assert_focus_ring(page, "the Acknowledge menu")
    page.keyboard.press("Enter")
    expect(row.locator("details[id^=ack-]")).to_have_attribute("open", "")
    page.keyboard.press("Tab")
    expect(row.locator("details[id^=ack-] input[name=comment]")).to_be_focused()
    page.keyboard.type("swapping the cable")
    ui.shot("ack-menu")
    page.keyboard.press("Enter")
    expect(page.locator(".flash")).to_contain_text("Acknowledged 1 series")
    expect(row.locator(".badge.acked")).to_have_text("acknowledged by alice")

    menu = row.locator("details[id^=silence-]")
    tab_to(page, f"{ETH2} details[id^=silence-] summary")
    page.keyboard.press("Space")
    expect(menu).to_have_attribute("open", "")
    page.keyboard.press("Tab")
    expect(menu.locator("input[value=series]")).to_be_focused()
    page.keyboard.press("ArrowDown")  # a radio group: the arrow moves to the next scope and chooses it
    expect(menu.locator("input[value=file]")).to_be_checked()
    # One file, one DS: the same one series, counted by the stored states or by the server's last check.
    expect(menu.locator("output.preview")).to_have_text(re.compile(r"^matches 1 (firing series|series \(1 firing\))$"))
    page.keyboard.press("Tab")
    expect(menu.locator("select[name=for]")).to_be_focused()
    page.keyboard.press("ArrowDown")  # 2h, the default, to 4h
    expect(menu.locator("select[name=for]")).to_have_value("4h")
    page.keyboard.press("Tab")
    page.keyboard.type("cable swap")
    ui.shot("silence-menu")
    page.keyboard.press("Enter")
    expect(page.locator(".flash")).to_contain_text("(threshold 1, series interfaces/eth2/bytes.rrd) for 4 h added")
    expect(row.locator(".badge.silenced")).to_have_count(1)
    ui.assert_clean()


def test_a_new_threshold_by_keyboard(ui: Watched, site: Site) -> None:
    page = ui.page
    keyboard_log_in(page, site, "/thresholds")
    tab_to(page, "#add-threshold")
    assert_focus_ring(page, "the Add a threshold link")
    page.keyboard.press("Enter")
    expect(page).to_have_url(site.url + "/thresholds/new")
    proposed = page.locator("#id").input_value()
    assert proposed.isdigit() and int(proposed) >= 2, proposed  # threshold 1 exists: the next free id

    tab_to(page, "#name")
    page.keyboard.type("eth2 by keyboard")
    tab_to(page, "#glob")
    page.keyboard.type("inter", delay=30)
    found = page.locator("#glob-list li[role=option]")
    expect(found).to_have_count(1)
    page.keyboard.press("ArrowDown")
    page.keyboard.press("Enter")  # a folder: taken, the list shows what is inside
    expect(page.locator("#glob")).to_have_value("interfaces/")
    expect(found.filter(has_text="eth2/")).to_have_count(1)  # the folder's contents, before typing on
    page.keyboard.type("eth2/", delay=30)
    expect(found).to_have_count(1)
    expect(found.first).to_have_attribute("data-value", "interfaces/eth2/bytes.rrd")  # not the list before
    page.keyboard.press("ArrowDown")
    expect(found.first).to_have_attribute("aria-selected", "true")
    page.keyboard.press("Enter")
    expect(page.locator("#glob")).to_have_value("interfaces/eth2/bytes.rrd")
    expect(page.locator("#glob-count")).to_have_text("1 file matches")
    tab_to(page, "#type")
    page.keyboard.type("b")  # a select takes the option its typed letters start: below
    expect(page.locator("#type")).to_have_value("below")
    page.keyboard.press("ArrowUp")
    expect(page.locator("#type")).to_have_value("above")
    tab_to(page, "#value")
    page.keyboard.type("100")

    tab_to(page, "#preview-button")
    assert_focus_ring(page, "the Preview button")
    page.keyboard.press("Enter")
    expect(page.locator("#preview-would-fire")).to_have_text("1")
    ui.shot("editor-preview-by-keyboard")
    tab_to(page, "#save-button")
    page.keyboard.press("Enter")
    expect(page).to_have_url(site.url + "/thresholds")
    expect(page.locator(".flash")).to_contain_text(f"Saved threshold {proposed} (eth2 by keyboard)")
    ui.assert_clean()


def test_focus_is_visible_on_links_buttons_and_fields(ui: Watched, site: Site) -> None:
    page = ui.page
    keyboard_log_in(page, site, "/silences")
    page.keyboard.press("Tab")  # the first stop: past the header, to the page
    skip = page.locator("a.skip-link")
    expect(skip).to_be_focused()
    expect(skip).to_be_in_viewport()
    assert_focus_ring(page, "the skip link")
    page.keyboard.press("Enter")
    expect(page.locator("main")).to_be_focused()
    page.keyboard.press("Tab")
    expect(page.locator("main a").first).to_be_focused()  # the header's links were skipped
    page.keyboard.press("Shift+Tab")  # back: the header's last control
    expect(page.get_by_role("button", name="Log out")).to_be_focused()
    page.goto(site.url + "/silences")
    for selector in ("header .brand", "header nav a", "#check-now", "main a", "#s-threshold",
                     "#new-silence button[type=submit]"):
        tab_to(page, selector)
        assert_focus_ring(page, selector)
    page.emulate_media(color_scheme="dark")
    assert_focus_ring(page, "dark theme")
    ui.assert_clean()
