"""Preview and backtest of one threshold: real RRD files, the real sources, the real engine to compare with."""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Sequence
from typing import Any

import pytest
import rrdtool
from conftest import STEP, T0, Env, make_rrd
from fake_ntopng import FakeNtopng
from pytest_httpserver import HTTPServer

from rrdalarm.check.engine import run_check
from rrdalarm.config.thresholds import threshold_from_dict
from rrdalarm.editor.preview import (
    BACKTEST_UNSUPPORTED,
    MAX_EVALUATIONS,
    BacktestReport,
    PreviewStatus,
    SeriesBacktest,
    backtest,
    preview,
)
from rrdalarm.model.definitions import Threshold
from rrdalarm.model.errors import ConfigError
from rrdalarm.report.render import fmt_time
from rrdalarm.sources.rrd import RRDSource, fetch
from rrdalarm.store.database import open_store

HOUR = 3600
DAY = 86400


def rrd_threshold(**fields: Any) -> Threshold:
    raw = {"id": 1, "glob": "a.rrd", "type": "above", "value": 5, "start": "now-1h", "end": "now"} | fields
    return threshold_from_dict(raw, "preview test", sources=("rrd", "ntopng"))


def day_of(value: float = 1.0, *, spikes: Sequence[tuple[int, Sequence[float | None]]] = ()) -> list[float | None]:
    """A day and an hour of 1-minute points ending at T0; each spike (minutes before T0, values) overwrites some."""
    values: list[float | None] = [value] * (25 * 60)
    for minutes_ago, spike in spikes:
        at = len(values) - 1 - minutes_ago
        values[at : at + len(spike)] = spike
    return values


def only(report: BacktestReport) -> SeriesBacktest:
    [s] = report.series
    return s


# ---------------------------------------------------------------- preview


def test_preview_would_fire_and_ok_rows(env: Env) -> None:
    env.rrd("hosts/a.rrd", {"x": [1, 1, 9], "y": [1, 1, 1]})
    env.rrd("hosts/b.rrd", {"x": [1, 1, 1], "y": [1, 1, 2]})
    p = preview(env.settings(), rrd_threshold(glob="hosts/*.rrd"), T0)
    assert p.matched == 2 and (p.would_fire, p.errors, p.no_data, p.truncated) == (1, 0, 0, False)
    assert (p.start, p.end) == (T0 - HOUR, T0)
    first, *rest = p.rows
    assert (first.file, first.ds, first.status, first.value, first.time) == (
        "hosts/a.rrd", "x", PreviewStatus.WOULD_FIRE, 9.0, T0)
    assert first.message == "9 above 5"
    assert [(r.file, r.ds, r.status.value, r.value) for r in rest] == [
        ("hosts/a.rrd", "y", "ok", 1.0), ("hosts/b.rrd", "x", "ok", 1.0), ("hosts/b.rrd", "y", "ok", 2.0)]


def test_preview_of_a_disabled_unsaved_threshold_still_evaluates(env: Env) -> None:
    env.rrd("a.rrd", {"x": [9, 9]})
    p = preview(env.settings(), rrd_threshold(enabled=False, ds=["x"]), T0)
    assert [r.status for r in p.rows] == [PreviewStatus.WOULD_FIRE]


def test_preview_of_tuned_fields_words_rows_as_the_check_does(env: Env) -> None:
    env.rrd("fresh.rrd", {"x": [1e6] * 10 + [3.95e6] * 2})
    env.rrd("old.rrd", {"x": [1.0] * 10}, end=T0 - 20 * 60)
    t = rrd_threshold(glob="*.rrd", value="30M", scale=8, unit="B/s", stale_after="15min", repetitions=2, within=3)
    p = preview(env.settings(), t, T0)
    assert [(r.file, r.status, r.value, r.message) for r in p.rows] == [
        ("fresh.rrd", PreviewStatus.WOULD_FIRE, 31.6e6, "31.6 MB/s above 30 MB/s"),
        ("old.rrd", PreviewStatus.STALE, None, f"not updated since {fmt_time(T0 - 20 * 60)}"),
    ]


def test_preview_glob_matching_nothing(env: Env) -> None:
    env.rrd("a.rrd", {"x": [9]})
    p = preview(env.settings(), rrd_threshold(glob="nope/*.rrd"), T0)
    assert p.matched == 0 and p.would_fire == 0 and p.errors == 1
    [row] = p.rows
    assert (row.file, row.status) == ("nope/*.rrd", PreviewStatus.ERROR)
    assert "glob matches no file" in row.message


def test_preview_unreadable_files_are_rows(env: Env) -> None:
    env.rrd("a.rrd", {"x": [9]})
    (env.root / "b.rrd").write_bytes(b"not an rrd at all" * 10)
    (env.root / "c.rrd").write_bytes(b"")
    p = preview(env.settings(), rrd_threshold(glob="*.rrd"), T0)
    assert p.matched == 3 and (p.would_fire, p.errors) == (1, 2)
    errors = {r.file: r.message for r in p.rows if r.status is PreviewStatus.ERROR}
    assert errors.keys() == {"b.rrd", "c.rrd"}
    assert errors["c.rrd"] == "cannot read RRD: file is empty"
    assert all(str(env.root) not in m and "\n" not in m for m in errors.values())
    assert [r.status for r in p.rows][:1] == [PreviewStatus.WOULD_FIRE]  # the interesting rows first


def test_preview_missing_ds_and_no_data(env: Env) -> None:
    env.rrd("a.rrd", {"x": [9, 9] + [None] * 70})
    p = preview(env.settings(), rrd_threshold(ds=["x", "nope"], start="now-30min"), T0)
    got = {r.ds: (r.status, r.message) for r in p.rows}
    assert got["x"] == (PreviewStatus.NO_DATA, "no known point in the window")
    assert got["nope"][0] is PreviewStatus.ERROR and "no data source 'nope' (file has: x)" in got["nope"][1]
    assert (p.errors, p.no_data, p.would_fire) == (1, 1, 0)


@pytest.mark.parametrize(("repetitions", "fires"), [(0, True), (1, True), (2, True), (3, False)])
def test_preview_repetitions(env: Env, repetitions: int, fires: bool) -> None:
    env.rrd("a.rrd", {"x": [9, 1, 9, 9]})
    p = preview(env.settings(), rrd_threshold(repetitions=repetitions), T0)
    assert (p.would_fire == 1) is fires


def test_preview_limit_truncates_rows_but_not_counts(env: Env) -> None:
    for i in range(5):
        env.rrd(f"h{i}.rrd", {"x": [9 if i % 2 else 1]})
    p = preview(env.settings(), rrd_threshold(glob="*.rrd"), T0, limit=2)
    assert p.truncated and len(p.rows) == 2 and p.matched == 5 and p.would_fire == 2
    assert [r.status for r in p.rows] == [PreviewStatus.WOULD_FIRE] * 2
    assert not preview(env.settings(), rrd_threshold(glob="*.rrd"), T0, limit=5).truncated


def test_preview_window_that_cannot_resolve_now_is_an_error_row(env: Env) -> None:
    env.rrd("a.rrd", {"x": [9]})
    p = preview(env.settings(), rrd_threshold(start="1800000000", end="now"), T0)  # start after now
    [row] = p.rows
    assert row.status is PreviewStatus.ERROR and "is not before end" in row.message
    assert (p.start, p.end, p.errors) == (None, None, 1)


def test_preview_without_rrd_root_raises_config_error(env: Env) -> None:
    settings = dataclasses.replace(env.settings(), rrd_root=None)
    with pytest.raises(ConfigError, match="no RRD root"):
        preview(settings, rrd_threshold(), T0)
    with pytest.raises(ConfigError, match="no RRD root"):
        backtest(settings, rrd_threshold(), T0)


def escaping_symlink(env: Env) -> None:
    """root/out.rrd -> a breaching RRD outside the root, next to a normal file inside."""
    outside = make_rrd(env.base / "outside" / "secret.rrd", {"x": day_of(spikes=[(30, [9, 9, 9])])}, rows=1600)
    os.symlink(outside, env.root / "out.rrd")
    env.rrd("in.rrd", {"x": [1.0] * 10})


def test_preview_never_reads_outside_the_root(env: Env) -> None:
    escaping_symlink(env)
    p = preview(env.settings(), rrd_threshold(glob="*.rrd"), T0)
    assert p.would_fire == 0 and p.matched == 1
    assert {(r.file, r.status) for r in p.rows} == {("in.rrd", PreviewStatus.OK), ("out.rrd", PreviewStatus.ERROR)}
    assert any("outside the RRD root" in r.message for r in p.rows)


# ---------------------------------------------------------------- preview of ntopng thresholds


def ntopng_threshold(**fields: Any) -> Threshold:
    raw = {"id": 7, "source": "ntopng", "schema": "host:traffic", "query": "ifid:0,host:*", "type": "above",
           "value": 5, "label": ["bytes_sent"]} | fields
    return threshold_from_dict(raw, "preview test", sources=("rrd", "ntopng"))


def test_preview_and_backtest_of_an_ntopng_threshold(env: Env, server: HTTPServer) -> None:
    fake = FakeNtopng(server, now=lambda: T0 - T0 % 300)
    end = T0 - T0 % 300
    for host, sent in (("10.0.0.1", [1, 9]), ("10.0.0.2", [1, 1])):
        fake.add_host(0, host)
        fake.add_series("host:traffic", f"ifid:0,host:{host}", {"bytes_sent": sent, "bytes_rcvd": [1, 1]}, end=end)
    env.settings_path.write_text(env.settings_path.read_text() + f'\n[ntopng]\nurl = "{fake.url}"\ntoken = "T"\n')
    p = preview(env.settings(), ntopng_threshold(), end)
    assert p.matched == 2 and p.would_fire == 1
    assert [(r.file, r.status) for r in p.rows] == [
        ("ntopng:host:traffic{ifid:0,host:10.0.0.1}", PreviewStatus.WOULD_FIRE),
        ("ntopng:host:traffic{ifid:0,host:10.0.0.2}", PreviewStatus.OK)]
    r = backtest(env.settings(), ntopng_threshold(), end)
    assert r.unsupported == BACKTEST_UNSUPPORTED and r.series == () and r.evaluations == MAX_EVALUATIONS


def test_preview_of_ntopng_without_address_raises_config_error(env: Env) -> None:
    with pytest.raises(ConfigError, match=r"\[ntopng\] url"):
        preview(env.settings(), ntopng_threshold(), T0)


# ---------------------------------------------------------------- backtest


def test_backtest_counts_two_spikes_with_rearm_repeats(env: Env) -> None:
    # Spikes of three points 20 h and 5 h ago; a now-5min window sees each for 7 checks (first point at
    # the window's end .. last point just inside its start), then the alarm resolves.
    env.rrd("a.rrd", {"x": day_of(spikes=[(20 * 60, [9, 9, 9]), (5 * 60, [8, 8, 8])])}, rows=1600)
    t = rrd_threshold(start="now-5min", rearm=120)
    s = only(r := backtest(env.settings(), t, T0))
    assert (r.interval, r.evaluations, r.period) == (60, 1440, DAY)
    assert (s.file, s.ds, s.step) == ("a.rrd", "x", STEP)
    assert (s.fires, s.repeats, s.resolves, s.firing_at_end, s.no_data) == (2, 6, 2, False, 0)
    assert (s.first_fire, s.last_fire) == (T0 - 20 * HOUR, T0 - 5 * HOUR)
    assert (r.total_fires, r.files_matched, r.files_examined, r.truncated) == (2, 1, 1, False)
    assert r.errors == ()
    s0 = only(backtest(env.settings(), rrd_threshold(start="now-5min", rearm=0), T0))
    assert (s0.fires, s0.repeats) == (2, 12)  # rearm 0: every check while breaching repeats
    s3 = only(backtest(env.settings(), rrd_threshold(start="now-5min", repetitions=4), T0))
    assert s3.fires == 0  # three points in a row never make four


def test_backtest_spike_older_than_the_period_does_not_count(env: Env) -> None:
    env.rrd("a.rrd", {"x": day_of(spikes=[(24 * 60 + 10, [9]), (60, [9])])}, rows=1600)
    s = only(backtest(env.settings(), rrd_threshold(start="now-5min"), T0))
    assert (s.fires, s.first_fire) == (1, T0 - HOUR)


def test_backtest_sorts_by_fires_and_reports_missing_ds(env: Env) -> None:
    env.rrd("a.rrd", {"x": day_of(spikes=[(60, [9])]), "y": day_of()}, rows=1600)
    env.rrd("b.rrd", {"x": day_of(spikes=[(60, [9]), (600, [9])]), "y": day_of()}, rows=1600)
    r = backtest(env.settings(), rrd_threshold(glob="*.rrd", ds=["x", "z"], start="now-5min"), T0)
    assert [(s.file, s.ds, s.fires) for s in r.series] == [("b.rrd", "x", 2), ("a.rrd", "x", 1)]
    assert [(e.file, e.message) for e in r.errors] == [
        ("a.rrd", "no data source 'z' (file has: x, y)"), ("b.rrd", "no data source 'z' (file has: x, y)")]
    assert r.total_fires == 3


def test_backtest_max_files_truncates(env: Env) -> None:
    for i in range(5):
        env.rrd(f"h{i}.rrd", {"x": day_of(spikes=[(60, [9])])}, rows=1600)
    r = backtest(env.settings(), rrd_threshold(glob="h*.rrd", start="now-5min"), T0, max_files=2)
    assert (r.files_matched, r.files_examined, r.truncated) == (5, 2, True)
    assert [s.file for s in r.series] == ["h0.rrd", "h1.rrd"] and r.total_fires == 2


def test_backtest_glob_matching_nothing(env: Env) -> None:
    r = backtest(env.settings(), rrd_threshold(glob="none/*.rrd"), T0)
    assert (r.files_matched, r.files_examined, r.series) == (0, 0, ())
    assert [e.file for e in r.errors] == ["none/*.rrd"] and "matches no file" in r.errors[0].message


def test_backtest_unreadable_file_is_a_one_line_error(env: Env) -> None:
    env.rrd("a.rrd", {"x": day_of(spikes=[(60, [9])])}, rows=1600)
    (env.root / "b.rrd").write_bytes(b"garbage" * 100)
    (env.root / "c.rrd").write_bytes(b"")
    os.symlink(env.root / "gone.rrd", env.root / "d.rrd")  # dangling, inside the root
    r = backtest(env.settings(), rrd_threshold(glob="*.rrd", start="now-5min"), T0)
    assert r.total_fires == 1 and r.files_examined == 4
    errors = {e.file: e.message for e in r.errors}
    assert errors.keys() == {"b.rrd", "c.rrd", "d.rrd"}
    assert errors["c.rrd"] == "cannot read RRD: file is empty"
    for message in errors.values():
        assert message.startswith("cannot read RRD") and "\n" not in message and str(env.root) not in message
        assert "Traceback" not in message


def test_backtest_never_reads_outside_the_root(env: Env) -> None:
    escaping_symlink(env)
    r = backtest(env.settings(), rrd_threshold(glob="*.rrd", start="now-5min"), T0)
    assert [s.file for s in r.series] == ["in.rrd"] and r.total_fires == 0
    assert [(e.file, e.message) for e in r.errors] == [("out.rrd", "symlink leads outside the RRD root; skipped")]
    assert str(r.errors[0]) == "out.rrd: symlink leads outside the RRD root; skipped"
    assert r.files_matched == 1


def test_backtest_of_a_symlink_swapped_after_indexing_is_refused(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    """The index said it was inside; by read time it points outside: the read-time check refuses it."""
    escaping_symlink(env)
    env.rrd("later.rrd", {"x": [1.0]})
    real_index = RRDSource.index

    def index_then_swap(self: RRDSource) -> Any:
        index = real_index(self)
        (env.root / "later.rrd").unlink()
        os.symlink(env.base / "outside" / "secret.rrd", env.root / "later.rrd")
        return index

    monkeypatch.setattr(RRDSource, "index", index_then_swap)
    r = backtest(env.settings(), rrd_threshold(glob="later.rrd", start="now-5min"), T0)
    assert r.series == () and [(e.file, e.message) for e in r.errors] == [
        ("later.rrd", "symlink leads outside the RRD root; skipped")]


def test_backtest_reads_the_archive_checks_read(env: Env) -> None:
    """With a 10 h archive of 1-minute points and a 50 h one of 5-minute points, a now-5min window is
    checked on 1-minute points: the backtest reads those for as far as they go, not the coarser archive
    rrdtool would pick for a whole day at once (where a single high minute averages away)."""
    path = env.root / "two.rrd"
    first = T0 - 3000 * STEP
    rrdtool.create(str(path), "--start", str(first - STEP), "--step", str(STEP), "DS:x:GAUGE:120:U:U",
                   "RRA:AVERAGE:0.5:1:600", "RRA:AVERAGE:0.5:5:600")
    updates = [f"{first + i * STEP}:{9 if i == 3000 - 120 else 1}" for i in range(3001)]  # one 9, 2 h ago
    for i in range(0, len(updates), 500):
        rrdtool.update(str(path), *updates[i : i + 500])
    s = only(backtest(env.settings(), rrd_threshold(glob="two.rrd", start="now-5min"), T0))
    assert (s.step, s.fires, s.first_fire) == (STEP, 1, T0 - 2 * HOUR)
    assert s.no_data == 1440 - 600  # checks older than the fine archive see none of its points
    whole_day = rrdtool.fetch(str(path), "AVERAGE", "-s", str(T0 - 25 * HOUR), "-e", str(T0))
    assert whole_day[0][2] == 300  # what a single fetch of the period would have read
    # A 20 h window is longer than the fine archive: checks read 5-minute points, and so does the backtest.
    s = only(backtest(env.settings(), rrd_threshold(glob="two.rrd", start="now-20h"), T0))
    assert s.step == 300 and s.fires == 0


def test_backtest_interval_defaults_to_the_schedulers_and_is_widened(env: Env) -> None:
    env.rrd("a.rrd", {"x": day_of()}, rows=1600)
    settings = env.settings()
    assert backtest(settings, rrd_threshold(), T0, period=2 * DAY).interval == 120
    assert backtest(settings, rrd_threshold(), T0, interval=30).interval == 60
    r = backtest(settings, rrd_threshold(), T0, period=HOUR, interval=300)
    assert (r.interval, r.evaluations) == (300, 12)
    slow = dataclasses.replace(settings, service=dataclasses.replace(settings.service, check_interval=299.5))
    assert backtest(slow, rrd_threshold(), T0).interval == 300
    for bad in ({"period": 0}, {"interval": 0}):
        with pytest.raises(ValueError, match="positive"):
            backtest(settings, rrd_threshold(), T0, **bad)


def test_backtest_window_that_cannot_resolve_is_an_error(env: Env) -> None:
    env.rrd("a.rrd", {"x": [1.0]})
    r = backtest(env.settings(), rrd_threshold(start="1700000000"), T0)  # start after the early checks
    assert r.series == () and "is not before end" in r.errors[0].message


def test_backtest_uses_the_thresholds_consolidation_function(env: Env) -> None:
    env.rrd("a.rrd", {"x": day_of(spikes=[(60, [9])])}, rows=1600)
    assert only(backtest(env.settings(), rrd_threshold(cf="MAX", start="now-5min"), T0)).fires == 1
    r = backtest(env.settings(), rrd_threshold(cf="MIN", type="below", value=0.5, start="now-5min"), T0)
    assert only(r).fires == 0


# ---------------------------------------------------------------- the engine, check by check


def wobbly(n: int, seed: int) -> list[float | None]:
    """Deterministic values around 5 with unknown stretches: runs of crossings of every length."""
    out: list[float | None] = []
    for i in range(n):
        k = (i * 7919 + seed * 104729) % 97
        out.append(None if k < 9 else 5 + 4 * math.sin(i * (0.3 + seed / 10)) + (k % 5 - 2) * 0.5)
    return out


PERIOD = 60 * 60

Story = tuple[dict[tuple[str, str, str], list[int]], dict[tuple[str, str], Any], dict[tuple[str, str], int],
              set[str]]


def engine_story(env: Env, t: Threshold, report: BacktestReport) -> Story:
    """Real checks every minute over PERIOD: (event times by series and kind, final states, NO DATA rows,
    event messages)."""
    no_data: dict[tuple[str, str], int] = {}
    store = open_store(env.settings().db_url)
    try:
        for at in range(T0 - PERIOD + 60, T0 + 1, 60):
            for row in run_check(env.settings(), [t], store, at=at, deliver=False).rows:
                no_data[(row.file, row.ds)] = no_data.get((row.file, row.ds), 0) + (row.status.value == "NO DATA")
        events = store.events(limit=100_000)
        states = {(s.file, s.ds): store.series_state(1, s.file, s.ds) for s in report.series}
    finally:
        store.close()
    kinds: dict[tuple[str, str, str], list[int]] = {}
    for e in events:
        kinds.setdefault((e.series, e.ds, e.kind), []).append(e.at)
    return kinds, states, no_data, {e.message for e in events}


def assert_same_story(report: BacktestReport, kinds: dict[tuple[str, str, str], list[int]],
                      states: dict[tuple[str, str], Any], no_data: dict[tuple[str, str], int],
                      compare_no_data: bool = False) -> None:
    """The backtest told the same story as the real checks, series by series."""
    for s in report.series:
        fired = sorted(kinds.get((s.file, s.ds, "fired"), []))
        assert (s.fires, s.first_fire, s.last_fire) == (len(fired), min(fired, default=None), max(fired, default=None))
        assert s.repeats == len(kinds.get((s.file, s.ds, "repeat"), []))
        assert s.resolves == len(kinds.get((s.file, s.ds, "resolved"), []))
        if compare_no_data:
            assert s.no_data == no_data[(s.file, s.ds)]
        state = states[(s.file, s.ds)]
        assert s.firing_at_end == (state is not None and state.state == "FIRING")


@pytest.mark.parametrize(("repetitions", "rearm", "start"), [(0, 0, "now-5min"), (2, 150, "now-10min"),
                                                            (3, 0, "now-7min")])
def test_backtest_agrees_with_the_engine_run_check_by_check(
    env: Env, repetitions: int, rearm: int, start: str
) -> None:
    """Real checks at every minute of the last hour, state in SQLite; the backtest must tell the same story."""
    env.rrd("a.rrd", {"x": wobbly(200, 1), "y": wobbly(200, 2)})
    env.rrd("b.rrd", {"x": wobbly(200, 3), "y": wobbly(200, 4)})
    t = rrd_threshold(glob="*.rrd", repetitions=repetitions, rearm=rearm, start=start,
                      action=[{"type": "log", "file": "x.log", "on": ["fire", "repeat", "resolve"]}])
    report = backtest(env.settings(), t, T0, period=PERIOD, interval=60)
    assert len(report.series) == 4
    kinds, states, no_data, _ = engine_story(env, t, report)
    assert_same_story(report, kinds, states, no_data)
    assert report.total_fires > 2 and sum(s.repeats for s in report.series) > 0  # the series exercise the machine


def gappy(n: int, seed: int) -> list[float | None]:
    """wobbly, with stretches of several unknown minutes: windows with no known point at all."""
    out = wobbly(n, seed)
    for lo in range(25 + seed * 3, n, 37):
        out[lo : lo + 4 + seed % 3] = [None] * len(out[lo : lo + 4 + seed % 3])
    return out


TUNED = {
    "within": {"repetitions": 3, "within": 5, "start": "now-10min"},
    "within_rearm": {"repetitions": 2, "within": 4, "start": "now-6min", "rearm": 150},
    "scale": {"scale": 2, "value": "10", "start": "now-3min"},
    "clear_value": {"clear_value": 3, "start": "now-2min"},
    "keep_firing_for": {"keep_firing_for": "3min", "start": "now-2min"},
    "no_data_ok": {"no_data": "ok", "start": "now-2min"},
    "no_data_alarm": {"no_data": "alarm", "start": "now-2min"},
    "flapping": {"flap_changes": 1, "flap_window": "5min", "start": "now-2min"},
    "flapping_clear_value": {"flap_changes": 2, "flap_window": "20min", "clear_value": 4, "start": "now-1min"},
}


@pytest.mark.parametrize("fields", TUNED.values(), ids=TUNED.keys())
def test_backtest_agrees_with_the_engine_for_each_tuning_field(env: Env, fields: dict[str, Any]) -> None:
    """The same lifecycle in the replay and in real checks, minute by minute, state in SQLite."""
    env.rrd("a.rrd", {"x": gappy(200, 1), "y": gappy(200, 2)})
    t = rrd_threshold(**fields, action=[{"type": "log", "file": "x.log",
                                         "on": ["fire", "repeat", "resolve", "no_data", "flapping"]}])
    report = backtest(env.settings(), t, T0, period=PERIOD, interval=60)
    assert len(report.series) == 2, report
    kinds, states, no_data, messages = engine_story(env, t, report)
    assert_same_story(report, kinds, states, no_data, compare_no_data=True)
    # The series exercise the field: the machine fired and resolved, and what the field adds happened.
    assert report.total_fires > 1 and sum(s.resolves for s in report.series) > 0
    if fields.get("no_data") == "alarm":
        assert sum(s.no_data for s in report.series) > 0
    if fields.get("no_data") == "ok":
        assert "resolved: no known point in the window" in messages
    if "flap_changes" in fields:
        assert any(kind == "flapping" for _, _, kind in kinds)


def test_a_window_longer_than_the_files_archives_is_cut_to_them(env: Env) -> None:
    # 600 one-minute rows: the file holds 10 hours. Ten years at one minute were 5 million rows.
    path = env.rrd("a.rrd", {"x": [1.0] * 10 + [9.0]})
    p = preview(env.settings(), rrd_threshold(start="now-10y"), T0)
    [row] = p.rows
    assert (row.status, row.value, row.time) == (PreviewStatus.WOULD_FIRE, 9.0, T0)
    assert row.message == "9 above 5; window cut to the last 10 hours the file's archives hold"
    assert p.start is not None and p.start <= T0 - 10 * 365 * DAY and p.end == T0  # the window asked for
    for start, end in ((T0 - 10 * 365 * DAY, T0), (T0 - 10 * 365 * DAY, T0 + 5 * 365 * DAY),
                       (T0 - 10 * 365 * DAY, T0 - 5 * 365 * DAY), (T0 + 365 * DAY, T0 + 5 * 365 * DAY)):
        got = fetch(str(path.parent), path.name, "AVERAGE", start, end)
        assert len(got.columns[0]) <= 601, (start, end)
    assert fetch(str(path.parent), path.name, "AVERAGE", T0 - HOUR, T0).note == ""


def test_a_window_the_file_holds_nothing_of_is_no_data(env: Env) -> None:
    env.rrd("a.rrd", {"x": [9.0] * 10})
    p = preview(env.settings(), rrd_threshold(start="now-10y", end="now-5y"), T0)
    [row] = p.rows
    assert row.status is PreviewStatus.NO_DATA
    assert row.message == "no known point in the window; window cut to the last 10 hours the file's archives hold"


def test_a_backtest_of_a_file_left_long_ago_reads_only_what_it_holds(env: Env) -> None:
    from rrdalarm.editor.preview import _fetch

    path = env.rrd("a.rrd", {"x": [9.0] * 10})  # last updated at T0, 10 hours of one-minute rows
    later = T0 + 2 * 365 * DAY
    r = backtest(env.settings(), rrd_threshold(start="now-10y"), later, period=DAY, interval=HOUR)
    # Every check's ten years reach back over the file's 10 hours: it fires once, then repeats.
    assert (only(r).fires, only(r).repeats, r.evaluations) == (1, 23, 24)
    window = 10 * 365 * DAY
    points = _fetch(str(path), "AVERAGE", later - window - DAY, later, window)
    assert len(points.columns[0]) <= 602
    assert [v for v in points.columns[0] if v is not None] == [9.0] * 10  # what it holds is all read
