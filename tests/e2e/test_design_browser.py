"""Every page in one design, in a real browser against a real `rrdalarm serve`: desktop and phone width,
the dark theme, the favicon, cards at phone width, error pages. Screenshots: page-<name>-desktop/-phone."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import test_browser
from test_browser import ALL_INTERFACES, PHONE, Site, log_in

if TYPE_CHECKING:
    from browser import Watched
    from playwright.sync_api import Page

try:
    from playwright.sync_api import expect
except ImportError:  # the chromium fixture skips these tests (or fails them on CI) before one runs
    expect = None  # type: ignore[assignment]

pytest_plugins = ["browser"]
site = test_browser.site  # the served app with users alice and victor

PAGES = {
    "report": "/report",
    "thresholds": "/thresholds",
    "events": "/events",
    "series": "/series?threshold=1&series=interfaces/eth0/bytes.rrd&ds=rx",
    "deliveries": "/deliveries",
    "audit": "/audit",
    "silences": "/silences",
    "statistics": "/stats",
    "trees": "/trees",
}
# Pages whose first table is cards, and the label of its first cell.
CARDS = {"report": "ID", "thresholds": "Id", "events": "Time", "series": "Time", "silences": "ID"}

# Strict: the page does not scroll sideways, and no table scrolls inside its .table-wrap either.
WIDTHS_JS = """() => ({
  page: document.documentElement.scrollWidth, inner: window.innerWidth,
  wraps: [...document.querySelectorAll('.table-wrap, pre')].filter(w => w.scrollWidth > w.clientWidth + 1)
    .map(w => (w.id || w.className) + ': ' + w.scrollWidth + '>' + w.clientWidth),
  offscreen: [...document.querySelectorAll('button, a.button, input, select')]
    .filter(b => b.getClientRects().length && b.getBoundingClientRect().right > window.innerWidth + 0.5)
    .map(b => b.outerHTML.slice(0, 80)),
})"""


def assert_no_sideways_scroll(page: Page, what: str) -> None:
    got = page.evaluate(WIDTHS_JS)
    assert got["page"] <= got["inner"], f"{what}: page {got['page']} px wide in {got['inner']} px"
    assert not got["wraps"], f"{what}: scrolls inside: {got['wraps']}"
    assert not got["offscreen"], f"{what}: controls off screen: {got['offscreen']}"


def assert_cards(page: Page, name: str) -> None:
    """At phone width a table.cards row is a card: no visible head, each cell shows its data-label."""
    table = page.locator("main table.cards").first
    assert table.locator("thead").evaluate("h => h.getBoundingClientRect().height") <= 1
    cell = table.locator("tbody tr td[data-label]").first
    assert cell.get_attribute("data-label") == CARDS[name]
    shown = cell.evaluate("td => getComputedStyle(td, '::before').content")
    assert shown == f'"{CARDS[name]}"', (name, shown)
    assert cell.evaluate("td => getComputedStyle(td).display") == "block"


def prepare(ui: Watched, site: Site) -> Page:
    """A threshold that fires, a check run by Check now, a silence: every page has rows."""
    site.env.write_thresholds(ALL_INTERFACES)
    page = ui.page
    log_in(ui, site, "alice", "/thresholds")
    page.click("#check-now")
    expect(page.locator("#rows tr")).to_have_count(3)
    page.goto(site.url + "/silences")
    page.select_option("#s-threshold", "1")
    page.fill("#s-series", "interfaces/eth1/*")
    page.fill("#s-for", "2h")
    page.fill("#s-comment", "a very long comment that has to wrap inside its card at phone width")
    page.click("#new-silence button[type=submit]")
    expect(page.locator("#silence-1")).to_be_attached()
    return page


def test_every_page_at_desktop_and_phone_width(ui: Watched, site: Site) -> None:
    page = ui.page
    ui.allow(r"status of 404 .*/no-such-page")
    for width, size in (("desktop", {"width": 1280, "height": 900}), ("phone", PHONE)):
        page.set_viewport_size(size)  # type: ignore[arg-type]
        page.goto(site.url + "/login")
        expect(page.locator("header.top .brand")).to_be_visible()
        assert page.locator("header.top nav, #check-now").count() == 0  # logged out: no pages, no Check now
        ui.shot(f"page-login-{width}")
        assert_no_sideways_scroll(page, f"login {width}")
    prepare(ui, site)
    for width, size in (("desktop", {"width": 1280, "height": 900}), ("phone", PHONE)):
        page.set_viewport_size(size)  # type: ignore[arg-type]
        for name, path in [*PAGES.items(), ("error", "/no-such-page")]:
            response = page.goto(site.url + path)
            assert response is not None and response.status == (404 if name == "error" else 200), name
            expect(page.locator("#check-now")).to_be_visible()
            expect(page.locator("header.top .user")).to_have_text("alice (admin)")
            if name == "statistics":
                page.wait_for_function("() => [...document.images].every(i => i.complete)")
            ui.shot(f"page-{name}-{width}")
            if width == "phone":
                assert_no_sideways_scroll(page, name)
                if name in CARDS:
                    assert_cards(page, name)
    expect(page.locator("h1")).to_have_text("Not found")
    ui.assert_clean()


def colours(page: Page, selector: str = "body") -> dict[str, float]:
    """Relative luminance (0 black, 1 white) of the element's computed background and text colours."""
    got: dict[str, float] = page.locator(selector).first.evaluate("""el => {
      const rgb = s => s.match(/[\\d.]+/g).slice(0, 3).map(Number);
      const light = c => (0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2]) / 255;
      const cs = getComputedStyle(el);
      return {bg: light(rgb(cs.backgroundColor)), fg: light(rgb(cs.color))};
    }""")
    return got


def test_dark_theme_follows_the_system(ui: Watched, site: Site) -> None:
    page = ui.page
    page.goto(site.url + "/login")
    light = colours(page)
    assert light["bg"] > 0.9 and light["fg"] < 0.3, light
    page.emulate_media(color_scheme="dark")
    dark = colours(page)
    assert dark["bg"] < 0.15 and dark["fg"] > 0.8, dark
    ui.shot("page-login-dark")
    prepare(ui, site)
    for name in ("report", "thresholds", "silences"):
        page.goto(site.url + PAGES[name])
        got = colours(page)
        assert got["bg"] < 0.15 and got["fg"] > 0.8, (name, got)
        header = colours(page, "header.top")
        assert header["bg"] < 0.25, (name, header)
        ui.shot(f"page-{name}-dark")
    page.set_viewport_size(PHONE)
    page.goto(site.url + PAGES["report"])
    fired = colours(page, "#rows tr.s-alarm-fired")
    assert fired["bg"] < 0.3 and fired["fg"] > 0.8, fired  # a firing card stays dark, its text readable
    ui.shot("page-report-phone-dark")
    ui.assert_clean()


def test_favicon_loads(ui: Watched, site: Site) -> None:
    page = ui.page
    icons: list[tuple[str, int]] = []
    page.on("response", lambda r: icons.append((r.url, r.status)) if "favicon" in r.url else None)
    page.goto(site.url + "/login")
    href = page.locator("link[rel=icon]").get_attribute("href")
    assert href == "/static/favicon.svg"
    loaded = page.evaluate("""async href => {
      const r = await fetch(href); return [r.status, r.headers.get('content-type'), (await r.text()).slice(0, 4)];
    }""", href)
    assert loaded[0] == 200 and loaded[1].startswith("image/svg+xml") and loaded[2] == "<svg", loaded
    # What a browser asks for on its own when a page names no icon.
    ico = page.request.get(site.url + "/favicon.ico")
    assert ico.status == 200 and ico.headers["content-type"].startswith("image/svg+xml")
    brand = page.locator("header.top .brand").evaluate("a => getComputedStyle(a, '::before').backgroundImage")
    assert "favicon.svg" in brand
    assert all(status == 200 for _, status in icons), icons
    ui.assert_clean()


def test_a_refused_page_is_in_the_design(ui: Watched, site: Site) -> None:
    site.env.write_thresholds(ALL_INTERFACES)
    page = ui.page
    page.set_viewport_size(PHONE)
    log_in(ui, site, "victor")
    ui.allow(r"status of 403 .*/thresholds/new")
    response = page.goto(site.url + "/thresholds/new")
    assert response is not None and response.status == 403
    assert response.headers["content-type"].startswith("text/html")
    expect(page.locator("h1")).to_have_text("Forbidden")
    expect(page.locator("#error-message")).to_contain_text("needs a user with the admin role")
    expect(page.locator("header.top .user")).to_have_text("victor (viewer)")
    assert re.search(r"/static/rrdalarm\.css", page.content())
    ui.shot("page-error-403-phone")
    assert_no_sideways_scroll(page, "403")
    ui.assert_clean()
