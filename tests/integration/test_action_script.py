"""The `script` action and drop-in scripts: real executables, no shell, JSON on stdin."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any, cast

import pytest
from conftest import T0, make_event, tuned_event

from rrdalarm.actions.script import ScriptAction
from rrdalarm.model.events import Delivery, Event
from rrdalarm.model.states import EventKind
from rrdalarm.plugins import (
    ActionContext,
    ActionError,
    action_plugins,
    available_actions,
    drop_in_actions,
    validate_params,
)

# Records what it got: stdin, argv (NUL-separated, so any byte but NUL survives), the delivery id, the environment.
RECORDER = """#!/bin/sh
cat > "$OUT_DIR/stdin.json"
for a in "$@"; do printf '%s\\0' "$a"; done > "$OUT_DIR/argv"
printf '%s' "$RRDALARM_DELIVERY_ID" > "$OUT_DIR/id"
env > "$OUT_DIR/env"
"""


event = make_event


def delivery(*events: Event) -> Delivery:
    events = events or (
        event(1),
        event(2, status="RESOLVED", kind=EventKind.RESOLVED, value=1.0, ds="", message="back to 1"),
    )
    return Delivery(id="d-7", action="script", params={}, events=events)


def write(path: Path, text: str, mode: int = 0o755) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(mode)
    return path


@pytest.fixture
def scripts(tmp_path: Path) -> Path:
    d = tmp_path / "scripts"
    d.mkdir()
    return d


@pytest.fixture
def out(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    d = tmp_path / "out"
    d.mkdir()
    monkeypatch.setenv("OUT_DIR", str(d))
    return d


def ctx(tmp_path: Path, scripts: Path | None, timeout: float = 10.0) -> ActionContext:
    return ActionContext(log_dir=tmp_path, data_dir=tmp_path, scripts_dir=scripts, timeout=timeout)


def run(tmp_path: Path, scripts: Path | None, d: Delivery | None = None, timeout: float = 10.0, **params: Any) -> None:
    ScriptAction(params, ctx(tmp_path, scripts, timeout)).run(d or delivery())


def argv(out: Path) -> list[str]:
    return (out / "argv").read_bytes().decode().split("\0")[:-1]


def test_registered_through_its_entry_point() -> None:
    assert action_plugins()["script"] is cast(object, ScriptAction)


def test_script_gets_json_on_stdin_with_ntopng_field_names(
    tmp_path: Path, scripts: Path, out: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(scripts / "rec", RECORDER)
    monkeypatch.setenv("RRDALARM_SETTINGS", "/etc/rrdalarm/secret.toml")
    monkeypatch.setenv("RRDALARM_API_TOKEN", "tok")
    run(tmp_path, scripts, **validate_params(ScriptAction, {"script": "rec"}))
    doc = json.loads((out / "stdin.json").read_text())
    assert doc["delivery_id"] == "d-7" and doc["counts"] == {"ALARM FIRED": 1, "RESOLVED": 1}
    fired, resolved = doc["events"]
    assert {k: fired.get(k) for k in event(1).as_dict()} == event(1).as_dict()  # our own fields, unchanged
    assert {
        "alert_id": 3, "entity_val": "hosts/1/bytes.rrd:sent", "tstamp": T0, "tstamp_end": 0,
        "action": "engage", "severity": "warning", "score": 50, "msg": "9.5 above 5",
    }.items() <= fired.items()
    assert {
        "action": "release", "entity_val": "hosts/1/bytes.rrd", "tstamp_end": T0, "severity": "warning", "score": 10,
        "msg": "back to 1", "kind": "resolved",
    }.items() <= resolved.items()
    assert (out / "id").read_text() == "d-7"
    env = dict(line.split("=", 1) for line in (out / "env").read_text().splitlines() if "=" in line)
    assert env["RRDALARM_DELIVERY_ID"] == "d-7" and env["RRDALARM_EVENT_COUNT"] == "2"
    assert "RRDALARM_SETTINGS" not in env and "RRDALARM_API_TOKEN" not in env
    assert env["OUT_DIR"] == str(out)  # the rest of the environment is passed on
    assert argv(out) == []


def test_args_arrive_verbatim_without_a_shell(tmp_path: Path, scripts: Path, out: Path) -> None:
    write(scripts / "rec", RECORDER)
    evil = ["two words", "a;touch pwned", "$(touch pwned2)", "`id`", "'quoted'", "*", "", "line\nbreak", "-x"]
    run(tmp_path, scripts, script="rec", args=evil)
    assert argv(out) == evil
    assert not list(tmp_path.rglob("pwned*"))


def test_legacy_single_argument(tmp_path: Path, scripts: Path, out: Path) -> None:
    write(scripts / "rec", RECORDER)
    params = validate_params(ScriptAction, {"script": "rec", "args": "ops@example.org"})
    assert params["args"] == ["ops@example.org"]
    run(tmp_path, scripts, **params)
    assert argv(out) == ["ops@example.org"]
    assert ScriptAction.legacy_param == "args"


def test_non_zero_exit_is_retryable_with_the_last_stderr_line(tmp_path: Path, scripts: Path) -> None:
    write(scripts / "fail", "#!/bin/sh\ncat >/dev/null\necho 'first line' >&2\necho 'receiver said no' >&2\nexit 3\n")
    with pytest.raises(ActionError) as err:
        run(tmp_path, scripts, script="fail")
    assert not err.value.permanent
    assert str(err.value) == "script: 'fail' exited with status 3: receiver said no"


def test_long_stderr_is_cut_to_200_characters(tmp_path: Path, scripts: Path) -> None:
    write(scripts / "fail", "#!/bin/sh\nprintf 'x%.0s' $(seq 1 5000) >&2\nexit 1\n")
    with pytest.raises(ActionError) as err:
        run(tmp_path, scripts, script="fail")
    last = str(err.value).split(": ", 2)[2]
    assert len(last) == 200 and last.endswith("…")


def test_script_that_does_not_read_stdin_is_fine(tmp_path: Path, scripts: Path) -> None:
    write(scripts / "quiet", "#!/bin/sh\nexit 0\n")
    many = tuple(event(i, message="m" * 2000) for i in range(200))  # more than a pipe buffer
    run(tmp_path, scripts, delivery(*many), script="quiet")


def _dead(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return True
    return state in ("Z", "X")


def test_timeout_kills_the_script_and_its_children(tmp_path: Path, scripts: Path, out: Path) -> None:
    write(scripts / "hang", '#!/bin/sh\nsleep 30 &\necho $! > "$OUT_DIR/child"\nsleep 30\n')
    started = time.monotonic()
    with pytest.raises(ActionError, match="killed after 1 s") as err:
        run(tmp_path, scripts, timeout=1.0, script="hang")
    assert time.monotonic() - started < 3
    assert not err.value.permanent
    child = int((out / "child").read_text())
    deadline = time.monotonic() + 2
    while not _dead(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _dead(child), "the script's background child outlived the timeout"


@pytest.mark.parametrize("name", ["../rec", "a/rec", "..", ".", "", "/bin/sh", "a\\b"])
def test_names_with_folders_are_refused(tmp_path: Path, scripts: Path, name: str) -> None:
    write(tmp_path / "rec", RECORDER)
    with pytest.raises(ValueError, match="plain file name"):
        validate_params(ScriptAction, {"script": name})
    with pytest.raises(ActionError, match="plain file name") as err:
        run(tmp_path, scripts, script=name)
    assert err.value.permanent


def test_missing_script_is_permanent(tmp_path: Path, scripts: Path) -> None:
    with pytest.raises(ActionError, match="does not exist") as err:
        run(tmp_path, scripts, script="nope")
    assert err.value.permanent


def test_non_executable_file_is_permanent(tmp_path: Path, scripts: Path) -> None:
    write(scripts / "plain", RECORDER, mode=0o644)
    with pytest.raises(ActionError, match="not executable") as err:
        run(tmp_path, scripts, script="plain")
    assert err.value.permanent


def test_folder_is_not_a_script(tmp_path: Path, scripts: Path) -> None:
    (scripts / "sub").mkdir()
    with pytest.raises(ActionError, match="not a regular file") as err:
        run(tmp_path, scripts, script="sub")
    assert err.value.permanent


def test_symlink_leaving_the_dir_is_refused(tmp_path: Path, scripts: Path, out: Path) -> None:
    outside = write(tmp_path / "elsewhere" / "evil", RECORDER)
    (scripts / "evil").symlink_to(outside)
    (scripts / "up").symlink_to("../elsewhere/evil")
    for name in ("evil", "up"):
        with pytest.raises(ActionError, match="outside") as err:
            run(tmp_path, scripts, script=name)
        assert err.value.permanent
    assert not (out / "argv").exists()


def test_symlink_inside_the_dir_is_fine(tmp_path: Path, scripts: Path, out: Path) -> None:
    write(scripts / "real", RECORDER)
    (scripts / "alias").symlink_to("real")
    run(tmp_path, scripts, script="alias", args=["ok"])
    assert argv(out) == ["ok"]


def test_no_scripts_dir_is_permanent(tmp_path: Path) -> None:
    with pytest.raises(ActionError, match="no scripts_dir") as err:
        run(tmp_path, None, script="rec")
    assert err.value.permanent


def test_bad_interpreter_line_is_permanent(tmp_path: Path, scripts: Path) -> None:
    write(scripts / "broken", "#!/no/such/interpreter\n")
    with pytest.raises(ActionError, match="cannot run") as err:
        run(tmp_path, scripts, script="broken")
    assert err.value.permanent


def test_args_must_be_strings() -> None:
    with pytest.raises(ValueError, match="list of strings"):
        validate_params(ScriptAction, {"script": "x", "args": ["a", 3]})
    assert validate_params(ScriptAction, {"script": "x"})["args"] == []


def test_drop_in_executable_becomes_an_action(tmp_path: Path, scripts: Path, out: Path) -> None:
    write(scripts / "notify", RECORDER)
    write(scripts / "README", "not a script\n", mode=0o644)
    write(scripts / ".hidden", RECORDER)
    found = drop_in_actions(scripts)
    assert set(found) == {"notify"}
    plugin = found["notify"]
    assert issubclass(plugin, ScriptAction) and plugin.name == "notify"
    assert "script" not in plugin.params and "args" in plugin.params
    with pytest.raises(ValueError, match="no parameter 'script'"):
        validate_params(plugin, {"script": "other"})
    params = validate_params(plugin, {"args": ["--channel", "#ops"]})
    plugin(params, ctx(tmp_path, scripts)).run(delivery())
    assert argv(out) == ["--channel", "#ops"]
    assert json.loads((out / "stdin.json").read_text())["delivery_id"] == "d-7"
    assert "notify" in available_actions(scripts)
    assert available_actions(scripts)["script"] is ScriptAction  # installed actions win over drop-ins


def test_drop_in_removed_after_discovery_is_a_permanent_error(tmp_path: Path, scripts: Path) -> None:
    write(scripts / "notify", RECORDER)
    plugin = drop_in_actions(scripts)["notify"]
    os.unlink(scripts / "notify")
    with pytest.raises(ActionError, match="does not exist") as err:
        plugin({}, ctx(tmp_path, scripts)).run(delivery())
    assert err.value.permanent


def test_script_events_carry_the_tuning_fields(tmp_path: Path, scripts: Path, out: Path) -> None:
    """The threshold's severity is "severity" (ntopng's numeric level is not sent); numbers stay raw."""
    write(scripts / "rec", RECORDER)
    run(tmp_path, scripts, delivery(tuned_event(4)), **validate_params(ScriptAction, {"script": "rec"}))
    (got,) = json.loads((out / "stdin.json").read_text())["events"]
    assert got.items() >= {
    "severity": "critical", "unit": "B/s", "labels": {"team": "net", "site": "lab"},
    "description": "uplink saturated", "runbook": "https://wiki.example.org/uplink?x=1&y=2",
}.items()
    assert got["value"] == 31_600_000.0 and got["limit"] == 30_000_000.0 and got["score"] == 50
