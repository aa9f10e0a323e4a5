"""The `log` action and the action contract every plugin gets."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import cast

import pytest
from conftest import T0, Env, make_event, threshold, tuned_event

from rrdalarm.actions.log import LogAction, format_line
from rrdalarm.model.events import Delivery, Event
from rrdalarm.model.states import EventKind
from rrdalarm.plugins import ActionContext, ActionError, action_plugins, validate_params

event = make_event


def deliver(*events: Event) -> Delivery:
    return Delivery(id="d-1", action="log", params={}, events=events)


def test_log_is_registered_through_its_entry_point() -> None:
    assert action_plugins()["log"] is cast(object, LogAction)


def test_appends_one_line_per_event(tmp_path: Path) -> None:
    ctx = ActionContext(log_dir=tmp_path / "log", data_dir=tmp_path)
    LogAction({"file": "x.log"}, ctx).run(deliver(event(1), event(2, status="RESOLVED", kind=EventKind.RESOLVED)))
    LogAction({"file": "x.log"}, ctx).run(deliver(event(3, message="line\nbreak")))
    lines = (tmp_path / "log" / "x.log").read_text().splitlines()
    assert len(lines) == 3
    assert ("ALARM FIRED severity=warning threshold=3 series=hosts/1/bytes.rrd:sent value=9.5 above 5 event=1"
            in lines[0])
    assert "RESOLVED" in lines[1] and "event=3 line break" in lines[2]


def test_concurrent_writers_keep_lines_whole(tmp_path: Path) -> None:
    ctx = ActionContext(log_dir=tmp_path, data_dir=tmp_path)

    def write(n: int) -> None:
        for i in range(50):
            LogAction({"file": "c.log"}, ctx).run(deliver(event(n * 1000 + i, message="x" * 300)))

    threads = [threading.Thread(target=write, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    lines = (tmp_path / "c.log").read_text().splitlines()
    assert len(lines) == 200 and all(line.endswith("x" * 300) for line in lines)


@pytest.mark.parametrize("name", ["../escape.log", "/etc/passwd", "a/b.log", "..", "", "a\\b"])
def test_file_name_cannot_leave_the_log_dir(tmp_path: Path, name: str) -> None:
    with pytest.raises(ValueError, match="plain file name"):
        validate_params(LogAction, {"file": name})
    with pytest.raises(ActionError):
        LogAction({"file": name}, ActionContext(log_dir=tmp_path, data_dir=tmp_path))


def test_unknown_and_mistyped_parameters() -> None:
    with pytest.raises(ValueError, match="no parameter 'fiel'"):
        validate_params(LogAction, {"fiel": "x.log"})
    with pytest.raises(ValueError, match="must be str"):
        validate_params(LogAction, {"file": 3})
    assert validate_params(LogAction, {}) == {"file": "rrdalarm.log"}


def test_unwritable_log_dir_is_a_warning_not_a_crash(env: Env) -> None:
    env.rrd("a.rrd", {"x": [9]})
    (env.data / "log").mkdir(parents=True)
    (env.data / "log" / "a.log").mkdir()  # a folder where the log file should be
    env.write_thresholds(threshold(actions=[{"type": "log", "file": "a.log"}]))
    p = env.run("check", "--at", str(T0), "--json")
    assert p.returncode == 1
    assert "(log): log: cannot write" in p.stderr and "will retry" in p.stderr and "Traceback" not in p.stderr


def test_escaping_log_file_is_a_config_error(env: Env) -> None:
    env.rrd("a.rrd", {"x": [9]})
    env.write_thresholds(threshold(actions=[{"type": "log", "file": "../../etc/cron.d/x"}]))
    p = env.run("check", "--at", str(T0), "--quiet")
    assert p.returncode == 2
    assert "plain file name" in p.stderr and len(p.stderr.strip().splitlines()) == 1
    assert not (env.base / "etc").exists()


def test_event_as_dict_is_json_ready() -> None:
    import json

    d = event().as_dict()
    assert json.loads(json.dumps(d))["kind"] == "fired"
    assert set(d) >= {"threshold_id", "series", "ds", "value", "time", "status", "message", "id"}
    assert "value=9.5" in format_line(event())


def test_log_line_has_severity_and_readable_values(tmp_path: Path) -> None:
    line = format_line(tuned_event(5))
    assert "ALARM FIRED severity=critical threshold=3 series=hosts/1/bytes.rrd:sent " in line
    assert "value=31.6MB/s above 30MB/s event=5" in line
