"""Third-party actions are found through the `rrdalarm.actions` entry-point group.

tests/plugin_pkg is a tiny installable package. Instead of pip-installing it
into the running venv (slow, and it would outlive the test), the test writes
the `*.dist-info` that an install would create into tmp_path, with the entry
points read from the package's own pyproject.toml, and puts it and the
package's source on sys.path: importlib.metadata finds it exactly as it finds
an installed distribution.
"""

from __future__ import annotations

import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import T0, Env, threshold

from rrdalarm.model.events import Delivery
from rrdalarm.plugins import (
    ActionContext,
    action_plugins,
    available_actions,
    clear_plugin_cache,
    plugin_errors,
    source_plugins,
    validate_params,
)

PLUGIN_PKG = Path(__file__).parents[1] / "plugin_pkg"


def write_dist_info(site: Path, name: str, version: str, entry_points: dict[str, dict[str, str]]) -> None:
    info = site / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    lines = []
    for group, eps in entry_points.items():
        lines.append(f"[{group}]")
        lines += [f"{k} = {v}" for k, v in eps.items()]
    (info / "entry_points.txt").write_text("\n".join(lines) + "\n")


@pytest.fixture
def plugin_on_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    project = tomllib.loads((PLUGIN_PKG / "pyproject.toml").read_text())["project"]
    site = tmp_path / "site"
    write_dist_info(site, project["name"], project["version"], project["entry-points"])
    # A second distribution whose entry point cannot load: it must not hide the others.
    write_dist_info(site, "rrdalarm-broken-plugin", "1.0", {"rrdalarm.actions": {
        "broken": "no_such_module:X",
        "notaction": "rrdalarm_test_plugin:name_problem",  # loads, but is no Action
    }})
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.syspath_prepend(str(PLUGIN_PKG))
    clear_plugin_cache()
    yield
    clear_plugin_cache()  # the next test sees the installed actions only
    sys.modules.pop("rrdalarm_test_plugin", None)


@pytest.mark.usefixtures("plugin_on_path")
def test_third_party_action_is_listed_and_runs(tmp_path: Path) -> None:
    plugins = action_plugins()
    assert "touch" in plugins and "broken" not in plugins and "notaction" not in plugins
    assert {"log", "email", "webhook", "script", "syslog", "apprise"} <= set(plugins)
    assert "touch" in available_actions(None)
    touch = plugins["touch"]
    params = validate_params(touch, {"file": "touched.txt"})
    with pytest.raises(ValueError, match="plain file name"):
        validate_params(touch, {"file": "../escape"})
    data = tmp_path / "data"
    data.mkdir()
    touch(params, ActionContext(log_dir=tmp_path, data_dir=data)).run(Delivery("d-1", "touch", params, ()))
    assert (data / "touched.txt").exists()


def test_without_the_plugin_touch_is_not_listed() -> None:
    clear_plugin_cache()
    assert "touch" not in action_plugins()


@pytest.mark.usefixtures("plugin_on_path")
def test_a_plugin_that_fails_to_load_says_why(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("WARNING", logger="rrdalarm.plugins"):
        errors = plugin_errors()
    assert errors["action broken"] == "no_such_module:X: ModuleNotFoundError: No module named 'no_such_module'"
    assert errors["action notaction"] == (
        "rrdalarm_test_plugin:name_problem is not a subclass of rrdalarm.actions.base.Action")
    assert "action plugin 'broken' failed to load: no_such_module:X" in caplog.text


@pytest.mark.usefixtures("plugin_on_path")
def test_validate_and_healthz_name_plugins_that_did_not_load(env: Env) -> None:
    from click.testing import CliRunner

    from rrdalarm.cli.main import cli
    from rrdalarm.service.service import CheckService
    from rrdalarm.web import create_app

    env.write_thresholds("")
    got = CliRunner().invoke(cli, ["--settings", str(env.settings_path), "validate"])
    assert got.exit_code == 0, got.output
    assert ("warning: action broken plugin failed to load: no_such_module:X: ModuleNotFoundError: "
            "No module named 'no_such_module'") in got.stderr
    service = CheckService(env.settings_path)
    try:
        body = create_app(service).test_client().get("/healthz").get_json()
    finally:
        service.close()
    assert body["plugins_not_loaded"] == ["action broken", "action notaction"]


def test_loading_the_actions_imports_no_library_they_only_need_to_send() -> None:
    # `rrdalarm validate` loads every action; these libraries cost more than the rest of its start.
    code = """
import sys
from rrdalarm.plugins import action_plugins
assert {"apprise", "email", "webhook"} <= set(action_plugins())
print(" ".join(sorted(m for m in ("apprise", "requests", "smtplib", "ssl") if m in sys.modules)))
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert proc.stdout.strip() == ""


def test_a_check_imports_only_the_actions_its_thresholds_use(env: Env) -> None:
    # Looking an action up imports its module alone; listing them imports every one.
    env.rrd("a.rrd", {"x": [9.0] * 3})
    env.write_thresholds(threshold(actions=[{"type": "log", "file": "alarms.log"}]))
    code = f"""
import sys
from rrdalarm.cli.main import main
sys.argv = ["rrdalarm", "--settings", {str(env.settings_path)!r}, "check", "--quiet", "--at", "{T0}"]
try:
    main()
except SystemExit as exc:
    assert exc.code == 1, exc.code
print(" ".join(sorted(m for m in sys.modules if m.startswith("rrdalarm.actions."))))
from rrdalarm.plugins import available_actions
assert {{"log", "email", "webhook"}} <= set(available_actions(None))
print(" ".join(sorted(m for m in sys.modules if m.startswith("rrdalarm.actions."))))
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=env.base)
    assert proc.returncode == 0, proc.stderr
    used, listed = proc.stdout.splitlines()
    assert used == "rrdalarm.actions.base rrdalarm.actions.log"
    assert {"rrdalarm.actions.email", "rrdalarm.actions.webhook", "rrdalarm.actions.script"} <= set(listed.split())
    log_dir = env.settings().log_dir
    assert log_dir is not None and "ALARM FIRED" in (log_dir / "alarms.log").read_text()


def test_a_source_entry_point_that_is_no_source_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    site = tmp_path / "site"
    write_dist_info(site, "rrdalarm-odd-source", "1.0",
                    {"rrdalarm.sources": {"notsource": "rrdalarm_test_plugin:TouchAction"}})
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.syspath_prepend(str(PLUGIN_PKG))
    clear_plugin_cache()
    try:
        assert "notsource" not in source_plugins() and {"rrd", "ntopng"} <= set(source_plugins())
        assert plugin_errors()["source notsource"] == (
            "rrdalarm_test_plugin:TouchAction is not a subclass of rrdalarm.sources.base.Source")
    finally:
        clear_plugin_cache()
        sys.modules.pop("rrdalarm_test_plugin", None)
