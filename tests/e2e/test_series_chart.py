"""The series page's interactive chart in a real browser against a real `rrdalarm serve`.

The chart loads without console errors under the page's Content-Security-Policy, its points equal
rrdtool.fetch, the range buttons and the custom range fetch again, a drag zooms and "Reset zoom"
comes back, and the SI formatting in the browser equals fmt_value. Screenshots at desktop and phone
widths go to test-output/browser/.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import rrdtool
from conftest import Env, free_port, threshold, wait_until_up

from rrdalarm.report.render import fmt_value

if TYPE_CHECKING:
    from browser import Watched

try:
    from playwright.sync_api import expect
except ImportError:  # the chromium fixture skips these tests (or fails them on CI) before one runs
    expect = None  # type: ignore[assignment]

pytest_plugins = ["browser"]

PASSWORD = "correct horse battery staple"
FILE = "net/eth0.rrd"
DAYS = 8


@dataclass
class Site:
    url: str
    env: Env
    path: Path


def week_rrd(path: Path, end: int) -> None:
    """DAYS days of one-minute points up to `end` in archives of 1 min (a day), 5 min (a week) and 1 h."""
    path.parent.mkdir(parents=True, exist_ok=True)
    first = end - DAYS * 86400
    rrdtool.create(str(path), "--start", str(first - 60), "--step", "60", "DS:rx:GAUGE:120:U:U",
                   "RRA:AVERAGE:0.5:1:1440", "RRA:AVERAGE:0.5:5:2016", "RRA:AVERAGE:0.5:60:744")
    # Bytes per second in the megabytes, high for the last ten minutes: the check fires.
    rrdtool.update(str(path), *(f"{t}:{(9e7 if end - t < 600 else 1e6 * (1 + (i % 720) / 60))}"
                                for i, t in enumerate(range(first, end + 1, 60))))


@pytest.fixture
def site(env: Env) -> Iterator[Site]:
    """A file that fires, a check, an acknowledgement and a silence, a viewer, and a server."""
    end = int(time.time()) // 60 * 60
    week_rrd(env.root / FILE, end)
    env.write_thresholds(threshold(1, "net/*.rrd", name="uplink", value="50M", unit="B/s", clear_value="40M"))
    env.run("check", check=False)
    env.run("ack", "--threshold", "1", "--comment", "cable swap", check=True)
    env.run("silence", "add", "--threshold", "1", "--for", "1h", "--comment", "planned", check=True)
    password = env.base / "password"
    password.write_text(PASSWORD + "\n")
    env.run("user", "add", "victor", "--role", "viewer", "--password-file", str(password), check=True)
    port = free_port()
    with env.settings_path.open("a") as fh:
        fh.write(f'\n[service]\nlisten = "127.0.0.1:{port}"\n')
    log_path = env.base / "serve.log"
    with log_path.open("w") as log:
        proc = subprocess.Popen([sys.executable, "-m", "rrdalarm", "serve", "--no-scheduler"],
                                env=env.process_env(), text=True, stdout=log, stderr=log, cwd=env.base)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(url, proc, log_path)
        yield Site(url, env, env.root / FILE)
        assert proc.poll() is None, f"rrdalarm serve exited:\n{log_path.read_text(errors='replace')}"
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)


def open_series(ui: Watched, site: Site) -> None:
    page = ui.page
    page.goto(f"{site.url}/series?threshold=1&series={FILE}&ds=rx")
    page.fill("#name", "victor")
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    expect(page.locator("#series-chart")).to_have_attribute("data-state", "ready")


def answer(ui: Watched) -> Any:
    return ui.page.evaluate("window.rrdalarmChart.data")


def fetched(path: Path, start: int, end: int) -> tuple[int, list[list[Any]]]:
    (first, _end, step), _names, rows = rrdtool.fetch(str(path), "AVERAGE", "-s", str(start), "-e", str(end))
    return step, [[first + (i + 1) * step, row[0]] for i, row in enumerate(rows)]


def shown(ui: Watched) -> tuple[int, int]:
    box = ui.page.locator("#series-chart")
    return int(box.get_attribute("data-xmin") or 0), int(box.get_attribute("data-xmax") or 0)


def reload_after(ui: Watched, action: Any) -> Any:
    """Run `action`, wait for the chart's next answer, return it."""
    before = ui.page.evaluate("window.rrdalarmChart.loads")
    action()
    ui.page.wait_for_function(f"() => window.rrdalarmChart.loads > {before}")
    expect(ui.page.locator("#series-chart")).to_have_attribute("data-state", "ready")
    return answer(ui)


def test_chart_loads_ranges_zoom_and_phone(ui: Watched, site: Site) -> None:
    page = ui.page
    open_series(ui, site)
    expect(page.locator("#chart-plot canvas")).to_have_count(1)
    day = answer(ui)
    start, end = day["window"]
    assert end - start == 86400
    step, points = fetched(site.path, start, end)
    assert (day["step"], day["points"]) == (step, points) and step == 60
    assert day["limit"] == 5e7 and day["clear"] == 4e7 and day["unit"] == "B/s"
    assert len(day["firing"]) == 1 and day["firing"][0][1] is None
    assert [e["kind"] for e in day["events"]] == ["fired", "ack"] and len(day["acks"]) == 1
    assert [s["comment"] for s in day["silences"]] == ["planned"]
    expect(page.locator('[data-range="1d"]')).to_have_attribute("aria-pressed", "true")
    expect(page.locator("#chart-status")).to_contain_text("one point every 60 s")
    ui.shot("desktop-1d")

    week = reload_after(ui, lambda: page.click('[data-range="7d"]'))
    assert week["window"][1] - week["window"][0] == 7 * 86400 and week["step"] == 300
    assert week["points"] == fetched(site.path, *week["window"])[1]
    assert shown(ui)[0] < start  # the chart shows the week now
    ui.shot("desktop-7d")

    hour = reload_after(ui, lambda: page.click('[data-range="1h"]'))
    assert hour["points"] == fetched(site.path, *hour["window"])[1]
    full = shown(ui)
    over = page.locator("#chart-plot .u-over").bounding_box()
    assert over is not None
    y = over["y"] + over["height"] / 2
    page.mouse.move(over["x"] + over["width"] * 0.3, y)
    page.mouse.down()
    page.mouse.move(over["x"] + over["width"] * 0.6, y, steps=8)
    page.mouse.up()
    expect(page.locator("#chart-reset")).to_be_enabled()
    zoomed = shown(ui)
    assert full[0] < zoomed[0] < zoomed[1] < full[1]
    page.mouse.move(over["x"] + over["width"] * 0.95, y)
    expect(page.locator("#chart-hover")).to_contain_text("MB/s")
    ui.shot("desktop-zoomed")
    page.click("#chart-reset")
    expect(page.locator("#chart-reset")).to_be_disabled()
    assert shown(ui) == full

    since, until = (datetime.fromtimestamp(t).strftime("%Y-%m-%d %H:%M") for t in (end - 3 * 86400, end))
    page.fill("#chart-from", since)
    page.fill("#chart-to", until)
    custom = reload_after(ui, lambda: page.click("#chart-custom button[type=submit]"))
    want = [int(datetime.strptime(v, "%Y-%m-%d %H:%M").timestamp()) for v in (since, until)]
    assert custom["window"] == want and custom["points"] == fetched(site.path, *want)[1]
    expect(page.locator("[data-range][aria-pressed=true]")).to_have_count(0)

    page.set_viewport_size({"width": 390, "height": 844})
    page.wait_for_function("() => document.querySelector('#chart-plot canvas').getBoundingClientRect().width <= 390")
    box = page.locator("#series-chart").bounding_box()
    assert box is not None and box["x"] + box["width"] <= 390
    ui.shot("phone")
    ui.assert_clean()


def test_si_formatting_matches_fmt_value(ui: Watched, site: Site) -> None:
    open_series(ui, site)
    cases = [(v, u) for u in ("", "B/s", "%", "bit/s") for v in
             (0.0, -0.0, 1.0, 0.5, 999.0, 999.96, 1000.0, 1234.5, 31_600_000.0, -2.5e-3, 1e-5, 7.2e-12, 1e21,
              999_960.0, 123_456_789.0, 0.000123, -42.0)]
    got = ui.page.evaluate("cases => cases.map(c => window.rrdalarmChart.fmtValue(c[0], c[1]))", cases)
    assert got == [fmt_value(v, u) for v, u in cases]
    iso = ui.page.evaluate("window.rrdalarmChart.fmtTime(1700000040)")
    assert iso == time.strftime("%Y-%m-%d %H:%M", time.localtime(1700000040))
    ui.assert_clean()
