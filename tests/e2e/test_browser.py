"""End to end in a real browser against a real `rrdalarm serve`: the threshold editor, Check now, roles, phones.

The server is the installed command in a subprocess (`rrdalarm serve --no-scheduler` on a free port) with
users made by the real CLI; chromium comes from tests/browser.py, which also fails a test on any dialog,
console error or page error and writes the screenshots (test-output/browser/<test>-<step>.png).
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pytest
from conftest import Env, free_port, wait_until_up

if TYPE_CHECKING:
    from browser import Watched
    from playwright.sync_api import Locator, Page, ViewportSize

try:
    from playwright.sync_api import expect
except ImportError:  # the chromium fixture skips these tests (or fails them on CI) before one runs
    expect = None  # type: ignore[assignment]

pytest_plugins = ["browser"]

PASSWORD = "correct horse battery staple"
XSS = "<img src=x onerror=alert(1)>.rrd"
EXPANDED = "aria-expanded"


@dataclass
class Site:
    url: str
    env: Env
    proc: subprocess.Popen[str]

    def log(self) -> str:
        return (self.env.base / "serve.log").read_text(errors="replace")


@pytest.fixture
def site(env: Env) -> Iterator[Site]:
    """RRDs ending at the current minute, users alice (admin) and victor (viewer), no thresholds, a server."""
    with serve(env) as served:
        yield served


@contextlib.contextmanager
def serve(env: Env) -> Iterator[Site]:
    """What `site` gives, for fixtures of other scopes: write the RRDs and users of `env`, serve it."""
    end = int(time.time()) // 60 * 60
    env.rrd("interfaces/eth0/bytes.rrd", {"rx": [10.0] * 7 + [500.0] * 3}, end=end)
    env.rrd("interfaces/eth1/bytes.rrd", {"rx": [10.0] * 10}, end=end)
    env.rrd(f"interfaces/{XSS}", {"rx": [10.0] * 10}, end=end)
    env.write_thresholds("")
    password = env.base / "password"
    password.write_text(PASSWORD + "\n")
    env.run("user", "add", "alice", "--role", "admin", "--password-file", str(password), check=True)
    env.run("user", "add", "victor", "--role", "viewer", "--password-file", str(password), check=True)
    port = free_port()
    with env.settings_path.open("a") as fh:
        fh.write(f'\n[service]\nlisten = "127.0.0.1:{port}"\n')
    envvars = {k: v for k, v in os.environ.items() if not k.startswith("RRDALARM_")}
    envvars["RRDALARM_SETTINGS"] = str(env.settings_path)
    log_path = env.base / "serve.log"
    # A file, not a pipe: a pipe nobody reads fills up and blocks the server's logging.
    with log_path.open("w") as log:
        proc = subprocess.Popen([sys.executable, "-m", "rrdalarm", "serve", "--no-scheduler"], env=envvars,
                                text=True, stdout=log, stderr=log, cwd=env.base)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(url, proc, log_path)
        yield Site(url, env, proc)
        # A server that died under the test (a crash in a request) fails it, with its log.
        assert proc.poll() is None, f"rrdalarm serve exited with {proc.returncode}:\n{Site(url, env, proc).log()}"
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)


def log_in(ui: Watched, site: Site, user: str, path: str = "/thresholds", shot: str = "") -> None:
    """Open `path` logged out: the login page, then back at `path` as `user`."""
    page = ui.page
    page.goto(site.url + path)
    expect(page).to_have_url(re.compile(r"/login\?next="))
    if shot:
        ui.shot(shot)
    page.fill("#name", user)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    expect(page).to_have_url(site.url + path)


def options(page: Page) -> Locator:
    return page.locator("#glob-list li[role=option]")


def test_add_preview_check_edit_delete(ui: Watched, site: Site) -> None:
    """The issue's flow: log in, create a threshold through the autocomplete, preview it, save, run Check now,
    see ALARM FIRED on the expected file, edit it, delete it."""
    page = ui.page
    log_in(ui, site, "alice", shot="00-login")
    expect(page.locator("main")).to_contain_text("No thresholds yet.")
    ui.shot("01-thresholds-empty")

    # 2. The autocomplete, with the keyboard.
    page.click("#add-threshold")
    expect(page).to_have_url(site.url + "/thresholds/new")
    glob, listbox, found = page.locator("#glob"), page.locator("#glob-list"), options(page)
    glob.click()
    glob.press_sequentially("inter", delay=40)
    expect(found.first).to_be_visible()
    expect(glob).to_have_attribute(EXPANDED, "true")
    expect(found.filter(has_text="interfaces/")).to_have_count(1)
    assert found.evaluate_all("os => os.map(o => o.dataset.value)") == ["interfaces/"]
    ui.shot("02-suggest-folder")
    glob.press("ArrowDown")
    expect(found.first).to_have_attribute("aria-selected", "true")
    glob.press("Enter")  # a folder: taken, and the list shows what is inside
    expect(glob).to_have_value("interfaces/")
    hostile = found.filter(has_text="onerror")
    expect(hostile).to_have_count(1)
    # The name is text: the option holds its kind label and the name, and no element was made from it.
    assert hostile.evaluate("li => li.lastChild.nodeType === Node.TEXT_NODE && li.lastChild.textContent") == (
        "interfaces/" + XSS)
    assert hostile.get_attribute("data-value") == "interfaces/" + XSS
    assert listbox.locator("img").count() == 0 and page.locator("img").count() == 0
    expect(found).to_have_count(3)
    ui.shot("03-suggest-folder-contents")

    glob.press_sequentially("eth0/", delay=40)
    expect(found).to_have_count(1)
    expect(found.first).to_have_attribute("data-value", "interfaces/eth0/bytes.rrd")
    glob.press("ArrowDown")
    expect(found.first).to_have_attribute("aria-selected", "true")
    glob.press("Enter")  # a file: taken, the list closes
    expect(glob).to_have_value("interfaces/eth0/bytes.rrd")
    expect(listbox).to_be_hidden()
    expect(glob).to_have_attribute(EXPANDED, "false")
    expect(page.locator("#glob-count")).to_have_text("1 file matches")
    ds_buttons = page.locator("#ds-choices button")
    expect(ds_buttons).to_have_text(["rx"])
    ds_buttons.first.click()
    expect(page.locator("#ds")).to_have_value("rx")
    expect(ds_buttons.first).to_have_attribute("aria-pressed", "true")
    ui.shot("04-file-and-ds-chosen")

    glob.click()
    glob.press("ArrowDown")  # a closed list opens again
    expect(glob).to_have_attribute(EXPANDED, "true")
    expect(listbox).to_be_visible()
    glob.press("Escape")
    expect(listbox).to_be_hidden()
    expect(glob).to_have_attribute(EXPANDED, "false")
    expect(glob).to_have_value("interfaces/eth0/bytes.rrd")

    # 3. The rest of the form, and a preview.
    page.fill("#name", "eth0 busy")
    page.select_option("#type", "above")
    page.fill("#value", "100")
    page.fill("#repetitions", "2")
    page.click("#preview-button")
    expect(page.locator("#preview")).to_be_visible()
    expect(page.locator("#preview-would-fire")).to_have_text("1")
    expect(page.locator("#backtest-fires")).to_be_attached()
    graph = page.locator("#preview-graph-1")
    expect(graph).to_be_visible()
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=graph.element_handle())
    expect(glob).to_have_value("interfaces/eth0/bytes.rrd")  # the preview keeps the form filled in
    ui.shot("05-preview")

    # 4. Save.
    page.click("#save-button")
    expect(page).to_have_url(site.url + "/thresholds")
    row = page.locator("#threshold-1")
    expect(row).to_contain_text("eth0 busy")
    expect(row.locator("td.file")).to_have_text("interfaces/eth0/bytes.rrd [rx]")
    expect(row).to_contain_text("above 100 ×2")
    expect(page.locator(".flash")).to_contain_text("Saved threshold 1 (eth0 busy)")
    ui.shot("06-saved")

    # 5. Check now: the report of that check.
    page.click("#check-now")
    expect(page).to_have_url(site.url + "/report")
    expect(page.locator(".notice")).to_contain_text("1 alarms fired")
    rows = page.locator("#rows tr")
    expect(rows).to_have_count(1)  # the one file the threshold watches
    fired = rows.filter(has=page.locator("td:nth-child(9)", has_text="ALARM FIRED"))
    expect(fired).to_have_count(1)
    expect(fired.locator("td.file")).to_have_text("interfaces/eth0/bytes.rrd")
    expect(fired.locator("td:nth-child(3)")).to_have_text("rx")
    ui.shot("07-report")

    # 6. Edit: the limit goes up to 1000.
    page.click("nav a:text-is('Thresholds')")
    expect(page).to_have_url(site.url + "/thresholds")
    expect(row.locator("td.firing")).to_have_text("1")
    row.locator("a:text-is('Edit')").click()
    expect(page).to_have_url(site.url + "/thresholds/1/edit")
    expect(page.locator("#glob")).to_have_value("interfaces/eth0/bytes.rrd")
    expect(page.locator("#ds-choices button")).to_have_text(["rx"])  # an edit form shows them at once
    page.fill("#value", "1000")
    ui.shot("08-edit")
    page.click("#save-button")
    expect(page).to_have_url(site.url + "/thresholds")
    expect(row).to_contain_text("above 1 k")
    ui.shot("09-edited")

    # 7. Delete, after the confirmation page.
    row.locator("a:text-is('Delete')").click()
    expect(page).to_have_url(site.url + "/thresholds/1/delete")
    expect(page.locator("h1")).to_have_text("Delete threshold 1?")
    ui.shot("10-confirm-delete")
    page.click("#confirm-delete")
    expect(page).to_have_url(site.url + "/thresholds")
    expect(page.locator("#threshold-1")).to_have_count(0)
    expect(page.locator("main")).to_contain_text("No thresholds yet.")
    ui.shot("11-deleted")

    page.click("nav a:text-is('Audit')")
    changes = page.locator("article.change h2")
    expect(changes).to_have_count(3)
    titles = [" ".join(t.split()) for t in changes.all_text_contents()]
    assert [t.split(" · ", 1)[1] for t in titles] == [
        "alice · delete · #1 eth0 busy", "alice · edit · #1 eth0 busy", "alice · add · #1 eth0 busy"], titles
    ui.shot("12-audit")
    ui.assert_clean()


ALL_INTERFACES = """\
[[threshold]]
id = 1
name = "all interfaces"
glob = "interfaces/**/*.rrd"
type = "above"
value = 100.0
"""

# Elements that stick out of the window on the right, outside a .table-wrap (which may scroll inside);
# only the outermost of each: the one whose parent still fits.
OVERFLOW_JS = """() => {
  const width = window.innerWidth;
  const sticksOut = el => el.getBoundingClientRect().right > width + 0.5;
  const culprits = [];
  for (const el of document.querySelectorAll('body *')) {
    if (el.closest('.table-wrap') || !sticksOut(el) || (el.parentElement && sticksOut(el.parentElement))) continue;
    const name = el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') +
      (el.classList.length ? '.' + [...el.classList].join('.') : '');
    culprits.push(name + ' "' + el.textContent.trim().replace(/\\s+/g, ' ').slice(0, 40) + '" ends at ' +
      Math.round(el.getBoundingClientRect().right) + 'px');
  }
  return {scroll: document.documentElement.scrollWidth, inner: width, culprits: culprits.slice(0, 8)};
}"""
PHONE: ViewportSize = {"width": 390, "height": 844}


def assert_fits(ui: Watched, what: str) -> None:
    """No sideways scrolling of the page: its width is the window's."""
    ui.shot(f"phone-{what}")
    got = ui.page.evaluate(OVERFLOW_JS)
    assert got["scroll"] <= got["inner"], (
        f"{what}: the page is {got['scroll']} px wide in a {got['inner']} px window; sticking out: {got['culprits']}")


def test_phone_width_app_pages(ui: Watched, site: Site) -> None:
    """At 390 px the pages of the app scroll only down: tables scroll inside their .table-wrap."""
    site.env.write_thresholds(ALL_INTERFACES)
    page = ui.page
    page.set_viewport_size(PHONE)
    page.goto(site.url + "/login")
    assert_fits(ui, "login")
    log_in(ui, site, "alice")
    page.click("#check-now")  # events, a firing row, and the hostile file name in the report
    expect(page).to_have_url(site.url + "/report")
    rows = page.locator("#rows tr")
    expect(rows).to_have_count(3)
    status = {row[1]: row[8] for row in (r.locator("td").all_text_contents() for r in rows.all())}
    assert status == {"interfaces/eth0/bytes.rrd": "ALARM FIRED", "interfaces/eth1/bytes.rrd": "OK",
                      f"interfaces/{XSS}": "OK"}, status
    assert page.locator("img").count() == 0
    page.goto(site.url + "/thresholds")
    expect(page.locator("#threshold-1 td.firing")).to_have_text("1")
    assert_fits(ui, "thresholds")
    page.click("#add-threshold")
    page.locator("#glob").press_sequentially("interfaces/", delay=20)
    expect(options(page)).to_have_count(3)  # the open list and its long hostile name fit too
    assert_fits(ui, "threshold-form-new")
    page.goto(site.url + "/thresholds/1/edit")
    expect(page.locator("#glob-count")).to_have_text("3 files match")
    page.click("#preview-button")
    expect(page.locator("#preview-would-fire")).to_have_text("1")
    page.wait_for_function("() => document.querySelector('#preview-graph-1').naturalWidth > 0")
    assert_fits(ui, "threshold-form-preview")
    page.goto(site.url + "/events")
    expect(page.locator("tr.s-alarm-fired")).to_have_count(1)
    assert_fits(ui, "events")
    ui.assert_clean()


def test_phone_width_report(ui: Watched, site: Site) -> None:
    """The report of Check now (its own page, outside base.html) at 390 px."""
    site.env.write_thresholds(ALL_INTERFACES)
    page = ui.page
    page.set_viewport_size(PHONE)
    log_in(ui, site, "alice")
    page.click("#check-now")
    expect(page).to_have_url(site.url + "/report")
    expect(page.locator("#rows tr")).to_have_count(3)
    ui.assert_clean()
    assert_fits(ui, "report")


def test_viewer_reads_but_cannot_edit(ui: Watched, site: Site) -> None:
    site.env.write_thresholds(ALL_INTERFACES)
    page = ui.page
    log_in(ui, site, "victor")
    expect(page.locator("header .user")).to_have_text("victor (viewer)")
    expect(page.locator("#threshold-1")).to_contain_text("all interfaces")
    assert page.locator("#add-threshold").count() == 0
    main = page.locator("main")
    for label in ("Edit", "Duplicate", "Disable", "Delete", "Add a threshold"):
        expect(main.get_by_role("link", name=label)).to_have_count(0)
        expect(main.get_by_role("button", name=label)).to_have_count(0)
    ui.shot("thresholds")
    # A viewer who opens the editor's address anyway is refused, not sent to log in again.
    ui.allow(r"status of 403 .*/thresholds/(new|1/edit)")
    for path in ("/thresholds/new", "/thresholds/1/edit"):
        response = page.goto(site.url + path)
        assert response is not None and response.status == 403, path
        expect(page.locator("body")).to_contain_text("forbidden")
        assert page.locator("#threshold-form").count() == 0
    ui.shot("new-403")
    ui.assert_clean()



def test_silence_acknowledge_and_expire_from_the_silences_page(ui: Watched, site: Site) -> None:
    """An admin quiets the firing interface, acknowledges it and ends the silence, at phone width."""
    site.env.write_thresholds(ALL_INTERFACES)
    page = ui.page
    page.set_viewport_size(PHONE)
    log_in(ui, site, "alice", "/silences")
    expect(page.locator("#silences tbody")).to_contain_text("No silences in force or to come.")
    page.click("#check-now")
    expect(page.locator("#rows tr")).to_have_count(3)
    page.goto(site.url + "/silences")
    page.select_option("#s-threshold", "1")
    page.fill("#s-series", "interfaces/eth0/*")
    page.fill("#s-for", "2h")
    page.fill("#s-comment", "cable swap")
    page.click("#new-silence button[type=submit]")
    expect(page.locator(".flash")).to_contain_text("silence 1 (threshold 1, series interfaces/eth0/*) for 2 h added")
    expect(page.locator("#silence-1")).to_contain_text("cable swap")
    assert_fits(ui, "silences")
    page.select_option("#a-threshold", "1")
    page.fill("#a-comment", "on it")
    page.click("#new-ack button[type=submit]")
    expect(page.locator(".flash")).to_contain_text("Acknowledged 1 series.")
    expect(page.locator("#acks")).to_contain_text("interfaces/eth0/bytes.rrd")
    page.click("#check-now")
    expect(page.locator("#rows tr")).to_have_count(3)
    expect(page.locator("#rows")).to_contain_text("acknowledged by alice: on it")
    page.goto(site.url + "/silences")
    page.click("#silence-1 button")
    expect(page.locator(".flash")).to_contain_text("Silence 1 expired.")
    expect(page.locator("#silences tbody")).to_contain_text("No silences in force or to come.")
    page.goto(site.url + "/audit")
    expect(page.locator("article.change")).to_have_count(3)
    ui.assert_clean()


def test_alarms_now_shows_what_is_wrong_and_takes_control(ui: Watched, site: Site) -> None:
    """The dashboard lists exactly the non-OK series; acknowledge and silence from it; a refresh keeps a menu open."""
    site.env.write_thresholds(ALL_INTERFACES)
    page = ui.page
    log_in(ui, site, "alice", "/")
    page.click("#check-now")
    expect(page.locator("#rows tr")).to_have_count(3)
    page.goto(site.url + "/")
    items = page.locator("#alarms tr[data-series]")
    expect(items).to_have_count(1)
    assert items.first.get_attribute("data-series") == "interfaces/eth0/bytes.rrd"
    expect(page.locator("#count-warning")).to_have_text("1")
    ui.shot("alarms-desktop")
    # Keyboard only: open the acknowledge menu, type, submit.
    page.locator("details[id^=ack-] summary").focus()
    page.keyboard.press("Enter")
    page.keyboard.press("Tab")
    page.keyboard.type("cable check")
    page.keyboard.press("Enter")
    expect(page.locator("#alarms .badge.acked")).to_have_text("acknowledged by alice")
    menu = page.locator("details[id^=silence-]")
    menu.locator("summary").click()
    expect(menu.locator("output.preview")).to_have_text("matches 1 series (1 firing)")
    menu.locator("input[value=threshold]").check()
    expect(menu.locator("output.preview")).to_have_text("matches 3 series (1 firing)")
    page.evaluate("document.activeElement.blur()")
    # A refresh (forced here rather than waited for) keeps the open menu open.
    page.evaluate("document.dispatchEvent(new Event('visibilitychange'))")
    page.wait_for_timeout(500)
    expect(page.locator("details[id^=silence-]")).to_have_attribute("open", "")
    menu = page.locator("details[id^=silence-]")
    menu.locator("input[value=threshold]").check()
    menu.locator("select[name=for]").select_option("1h")
    menu.locator("input[name=comment]").fill("maintenance")
    menu.locator("button[type=submit]").click()
    expect(page.locator(".flash")).to_contain_text("silence 1 (threshold 1) for 1 h added")
    expect(page.locator("#alarms .badge.silenced")).to_have_count(1)
    expect(page.locator("#count-silenced")).to_have_text("1")
    page.set_viewport_size(PHONE)
    assert_fits(ui, "alarms")


def test_editor_proposes_the_id_offers_a_globs_data_sources_and_previews_beside_the_form(ui: Watched,
                                                                                        site: Site) -> None:
    """The next free id, the DS union of a glob with counts, the preview beside the form on a wide screen
    (one graph per firing series) and below it on a phone."""
    site.env.write_thresholds(ALL_INTERFACES)
    end = int(time.time()) // 60 * 60
    site.env.rrd("interfaces/eth2/bytes.rrd", {"rx": [600.0] * 10, "tx": [1.0] * 10}, end=end)
    page = ui.page
    page.set_viewport_size({"width": 1400, "height": 900})
    log_in(ui, site, "alice", "/thresholds/new")
    expect(page.locator("#id")).to_have_value("2")  # threshold 1 exists

    glob = page.locator("#glob")
    glob.click()
    glob.press_sequentially("interfaces/*/bytes.rrd", delay=20)
    expect(page.locator("#glob-count")).to_have_text("3 files match")
    buttons = page.locator("#ds-choices button")
    expect(buttons).to_have_count(2)
    expect(page.locator("#ds-choices")).to_contain_text("Data sources of the 3 matched files")
    offered = buttons.evaluate_all("bs => bs.map(b => [b.dataset.ds, b.querySelector('.ds-files').textContent])")
    assert offered == [["rx", "all"], ["tx", "1/3"]], offered
    buttons.first.click()
    expect(page.locator("#ds")).to_have_value("rx")
    ui.shot("01-ds-union")

    page.fill("#name", "busy interfaces")
    page.fill("#value", "100")
    page.click("#preview-button")
    expect(page.locator("#preview-would-fire")).to_have_text("2")  # eth0 and eth2
    graphs = page.locator("#preview-graphs img")
    expect(graphs).to_have_count(2)
    for i in range(2):
        page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=graphs.nth(i).element_handle())
    form, preview = page.locator("#threshold-form").bounding_box(), page.locator("#preview").bounding_box()
    assert form and preview
    assert preview["x"] >= form["x"] + form["width"], (form, preview)  # side by side
    assert preview["y"] < form["y"] + form["height"] and preview["y"] + 1 >= form["y"], (form, preview)
    ui.shot("02-preview-beside-the-form", full_page=False)

    page.set_viewport_size(PHONE)
    form, preview = page.locator("#threshold-form").bounding_box(), page.locator("#preview").bounding_box()
    assert form and preview
    assert preview["y"] >= form["y"] + form["height"], (form, preview)  # below it
    assert_fits(ui, "03-preview-below-the-form")
    ui.assert_clean()


def test_report_filters_follow_the_address(ui: Watched, site: Site) -> None:
    """Choosing filters narrows the rows at once and writes them in the address; that address shows the same rows."""
    site.env.write_thresholds(ALL_INTERFACES)
    page = ui.page
    log_in(ui, site, "alice")
    page.click("#check-now")
    rows = page.locator("#rows tr")
    expect(rows).to_have_count(3)
    expect(page.locator("#f-apply")).to_be_hidden()  # the script filters as you choose
    page.fill("#f-text", "ETH")
    expect(rows).to_have_count(2)
    page.select_option("#f-status", "OK")
    expect(rows).to_have_count(1)
    expect(rows.first.locator("td[data-label=File]")).to_have_text("interfaces/eth1/bytes.rrd")
    expect(page).to_have_url(site.url + "/report?q=ETH&status=OK")
    page.goto(site.url + "/report?q=ETH&status=OK")
    expect(rows).to_have_count(1)
    expect(page.locator("#f-text")).to_have_value("ETH")
    page.select_option("#f-status", "")
    expect(rows).to_have_count(2)
    expect(page).to_have_url(site.url + "/report?q=ETH")
    ui.assert_clean()
