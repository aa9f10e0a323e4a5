"""Reading a thresholds or settings file that an editor rewrites in place while checks read it.

The writer is a real process that truncates the file and writes it again line by line, slowly, over and
over; readers must only ever see a whole version of it, never the half-written one in between.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import T0, Env, threshold

from rrdalarm.config import lines
from rrdalarm.config.settings import load_settings
from rrdalarm.config.thresholds import load_thresholds_file
from rrdalarm.model.errors import ConfigError

COUNT = 8  # thresholds in each version of the file

# Rewrites argv[1] in place for ever: truncate, one line every 4 ms, a pause (over twice the readers' quiet time),
# then the other version. It asks for the CPU first where it may: a writer kept from running in the middle
# of its file for longer than the quiet time cannot be told from one that has finished (read_config_text).
WRITER = """
import contextlib, os, sys, time
path, versions = sys.argv[1], sys.argv[2:]
with contextlib.suppress(OSError):
    os.nice(-10)
i = 0
while True:
    with open(path, "r+", encoding="utf-8") as fh:
        fh.truncate(0)
        for line in versions[i % 2].splitlines(keepends=True):
            fh.write(line)
            fh.flush()
            time.sleep(0.004)
    i += 1
    time.sleep(0.45)
"""


def _version(rearm: int) -> str:
    # `rearm` comes last in every table: a file cut short loses it, and it defaults to 0.
    return "".join(threshold(i, glob=f"d{i}/*.rrd", rearm=rearm) for i in range(1, COUNT + 1))


def _writer(path: Path, *versions: str) -> subprocess.Popen[bytes]:
    path.write_text(versions[0], encoding="utf-8")
    return subprocess.Popen([sys.executable, "-c", WRITER, str(path), *versions])


def test_a_file_rewritten_in_place_is_read_whole_or_not_at_all(env: Env) -> None:
    writer = _writer(env.thresholds_path, _version(600), _version(900))
    seen: list[tuple[int, ...]] = []
    try:
        deadline = time.monotonic() + 2.5
        while time.monotonic() < deadline:
            loaded = load_thresholds_file(env.thresholds_path)
            seen.append(tuple(t.rearm for t in loaded.thresholds))
    finally:
        writer.kill()
        writer.wait()
    assert seen and set(seen) <= {(600,) * COUNT, (900,) * COUNT}, [s for s in seen if len(set(s)) != 1][:3]
    assert len(set(seen)) == 2  # both versions were read, whole


def test_checks_never_use_a_half_written_file(env: Env) -> None:
    env.rrd("a.rrd", {"x": [9] * 3})
    writer = _writer(env.thresholds_path, threshold(1, rearm=600) + threshold(2, glob="b*.rrd", rearm=600),
                     threshold(1, rearm=900) + threshold(2, glob="b*.rrd", rearm=900))
    try:
        for _ in range(6):
            p = env.run("check", "--at", str(T0), "--json", "--dry-run")
            assert p.returncode in (1, 3), p.stderr
            assert [r["threshold"] for r in json.loads(p.stdout)["results"]] == [1, 2]
    finally:
        writer.kill()
        writer.wait()


def test_settings_rewritten_in_place_are_read_whole(env: Env) -> None:
    whole = env.settings_path.read_text(encoding="utf-8")
    writer = _writer(env.settings_path, *(f"{whole}[service]\ncheck_interval = {n}\n" for n in (120, 180)))
    try:
        deadline = time.monotonic() + 1.5
        seen = set()
        while time.monotonic() < deadline:
            seen.add(load_settings(env.settings_path).service.check_interval)
    finally:
        writer.kill()
        writer.wait()
    assert seen <= {120, 180}, seen


def test_a_file_that_never_stops_changing_is_one_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "thresholds.toml"
    writer = _writer(path, "a = 1\n" * 50, "b = 2\n" * 50)
    monkeypatch.setattr(lines, "CHANGING_FOR", 0.5)
    try:
        # The writer's pauses are long enough to read it whole: ask for more quiet than it ever keeps.
        with pytest.raises(ConfigError) as caught:
            lines.read_config_text(path, quiet=1.0)
    finally:
        writer.kill()
        writer.wait()
    message = str(caught.value)
    assert str(path) in message and "kept changing" in message and "atomically" in message
    assert "\n" not in message
