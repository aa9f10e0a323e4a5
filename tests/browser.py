"""Shared pieces of the browser tests: one headless Debian chromium per test module, watched pages, screenshots.

A test module uses them with `pytest_plugins = ["browser"]`, then asks for the fixtures:

    chromium   the launched playwright Browser (module scope, so one per module and xdist worker).
               Missing chromium or playwright: skipped, or a one-line failure when CI is set.
    ui         a Watched page in a new context: it records every dialog (an alert would mean an XSS),
               console error and page error, and takes screenshots with `ui.shot("step")` into
               <RRDALARM_TEST_OUTPUT or test-output>/browser/<test name>-<step>.png.
               A passing test also passes `ui.assert_clean()`: no dialog, no console or page error
               (404s for favicon.ico excepted); the fixture checks it again at teardown.
               `ui.assert_accessible("name")` runs axe-core (WCAG 2.0/2.1 A and AA rules) on the page as it
               is, writes the full results to <output>/browser/axe-<name>.json and fails on any violation
               of impact serious or critical, naming the rule, its help and the elements.

Playwright cannot download its own browsers here: the browser is always Debian's chromium.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from playwright.sync_api import Browser, ConsoleMessage, Dialog, Page

PROJECT = Path(__file__).resolve().parent.parent
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
MISSING = "chromium is missing: run scripts/test.sh, which installs it"
# Waits of expect(); a 2-core machine running the suite on every core is slow at times.
EXPECT_TIMEOUT_MS = 10_000
ACTION_TIMEOUT_MS = 15_000
# axe-core's rule tags for WCAG 2.0 and 2.1, levels A and AA; best practices are not asked for.
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
AXE_BLOCKING = ("serious", "critical")


def output_dir() -> Path:
    """Where the screenshots go: RRDALARM_TEST_OUTPUT (default test-output, under the project root)/browser."""
    return PROJECT / os.environ.get("RRDALARM_TEST_OUTPUT", "test-output") / "browser"


def chromium_path() -> str | None:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    return "/usr/bin/chromium" if os.access("/usr/bin/chromium", os.X_OK) else None


def missing(what: str) -> None:
    """No browser to test with: a failure on CI (where scripts/test.sh installs it), a skip elsewhere."""
    if os.environ.get("CI"):
        pytest.fail(MISSING, pytrace=False)
    pytest.skip(f"{what} is missing (scripts/test.sh installs chromium)")


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    """Headless Debian chromium driven by playwright, shared by the tests of one module in one worker."""
    try:
        from playwright.sync_api import expect, sync_playwright
    except ImportError:
        missing("playwright")
        raise  # not reached: missing() skips or fails
    executable = chromium_path()
    if executable is None:
        missing("chromium")
        raise AssertionError(MISSING)  # not reached
    expect.set_options(timeout=EXPECT_TIMEOUT_MS)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def _favicon(url: str) -> bool:
    return url.split("?", 1)[0].endswith("/favicon.ico")


@dataclass
class Watched:
    """A page and what the browser reported while the test drove it."""

    page: Page
    name: str
    dialogs: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    allowed: list[re.Pattern[str]] = field(default_factory=list)
    checked: bool = False
    shots: list[Path] = field(default_factory=list)

    def on_dialog(self, dialog: Dialog) -> None:
        self.dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    def on_console(self, msg: ConsoleMessage) -> None:
        if msg.type != "error":
            return
        url = (msg.location or {}).get("url", "")
        if _favicon(url) and "404" in msg.text:
            return
        text = f"console error: {msg.text} (at {url or '?'})"
        if not any(p.search(text) for p in self.allowed):
            self.errors.append(text)

    def on_page_error(self, exc: Any) -> None:
        self.errors.append(f"page error: {exc}")

    def allow(self, pattern: str) -> None:
        """Console errors the test expects (say, the 403 of a page it opens to be refused)."""
        self.allowed.append(re.compile(pattern))

    def shot(self, step: str, *, full_page: bool = True) -> Path:
        path = output_dir() / f"{self.name}-{re.sub(r'[^A-Za-z0-9_.-]+', '_', step)}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(path), full_page=full_page)
        self.shots.append(path)
        return path

    def assert_accessible(self, name: str) -> dict[str, Any]:
        """axe-core on the page now: no serious or critical violation; the full results go to axe-<name>.json."""
        results = run_axe(self.page)
        path = output_dir() / f"axe-{re.sub(r'[^A-Za-z0-9_.-]+', '_', name)}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(results, indent=1), encoding="utf-8")
        blocking = [v for v in results["violations"] if v.get("impact") in AXE_BLOCKING]
        if blocking:  # raised, not asserted: pytest would append the whole list to the readable report
            raise AssertionError(f"axe on {name} ({self.page.url}), see {path}:\n" + axe_report(blocking))
        return results

    def assert_clean(self) -> None:
        self.checked = True
        assert not self.dialogs, f"a dialog opened (script ran from page data?): {self.dialogs}"
        assert not self.errors, "the browser reported errors:\n" + "\n".join(self.errors)


def run_axe(page: Page) -> dict[str, Any]:
    """axe-core's results for `page`, from the script the axe-playwright-python wheel ships.

    Playwright's evaluate runs outside the page's Content-Security-Policy, so the app's policy stays as
    it is served and no context needs bypass_csp.
    """
    from axe_playwright_python.sync_playwright import Axe

    options = {"runOnly": {"type": "tag", "values": AXE_TAGS}, "resultTypes": ["violations", "incomplete"]}
    results: dict[str, Any] = Axe().run(page, options=options).response
    return results


def axe_report(violations: list[dict[str, Any]]) -> str:
    """One paragraph per rule: id, impact, help, and the first elements with axe's summary of each."""
    lines = []
    for v in violations:
        lines.append(f"- {v['id']} ({v['impact']}): {v['help']} [{v.get('helpUrl', '')}]")
        for node in v["nodes"][:6]:
            summary = " ".join(str(node.get("failureSummary", "")).split())
            lines.append(f"    {' '.join(map(str, node['target']))}: {summary[:300]}")
        if len(v["nodes"]) > 6:
            lines.append(f"    … and {len(v['nodes']) - 6} more")
    return "\n".join(lines)


def watch(browser: Browser, name: str, **context_options: Any) -> Watched:
    """A new context and page of `browser`, with dialogs, console and page errors recorded."""
    context = browser.new_context(**context_options)
    context.set_default_timeout(ACTION_TIMEOUT_MS)
    page = context.new_page()
    watched = Watched(page, re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_"))
    page.on("dialog", watched.on_dialog)
    page.on("console", watched.on_console)
    page.on("pageerror", watched.on_page_error)
    return watched


_CALL_REPORT = pytest.StashKey[pytest.TestReport]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, Any]:
    # The outcome of the test's call, for the teardown of `ui` (a plugin hook: it sees every test).
    report = yield
    if report.when == "call":
        item.stash[_CALL_REPORT] = report
    return report


@pytest.fixture
def ui(chromium: Browser, request: pytest.FixtureRequest) -> Iterator[Watched]:
    """A watched page at a desktop size; `ui.page.set_viewport_size` changes it."""
    watched = watch(chromium, request.node.name, viewport={"width": 1280, "height": 900})
    try:
        yield watched
        report = request.node.stash.get(_CALL_REPORT, None)
        if report is not None and report.failed:
            watched.shot("failed")
        elif report is not None and report.passed and not watched.checked:
            watched.assert_clean()
    finally:
        watched.page.context.close()

