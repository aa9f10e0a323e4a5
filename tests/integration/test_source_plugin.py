"""A source added by a third-party package, through the `rrdalarm.sources` entry point alone.

tests/source_plugin_pkg holds `csvdir`: points from CSV files in a folder, with a required
`dir` field and an optional `factor`. As tests/test_action_entrypoint.py does for actions, the
`*.dist-info` an install would create is written into tmp_path and put on sys.path (and on
PYTHONPATH for the `rrdalarm` subprocesses). Nothing in rrdalarm names the source.
"""

from __future__ import annotations

import json
import os
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import T0, Env, WebApp
from test_action_entrypoint import write_dist_info
from test_threshold_pages import PASSWORD, form_of, logged_in

from rrdalarm.config.thresholds import load_thresholds
from rrdalarm.config.writing import thresholds_to_toml
from rrdalarm.editor.preview import backtest, preview
from rrdalarm.model.errors import ConfigError
from rrdalarm.plugins import clear_plugin_cache, source_of_series, source_plugins

PKG = Path(__file__).parents[1] / "source_plugin_pkg"


@pytest.fixture
def csvdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The plugin installed for this test; returns a folder of CSV series with a busy one."""
    project = tomllib.loads((PKG / "pyproject.toml").read_text())["project"]
    site = tmp_path / "site"
    write_dist_info(site, project["name"], project["version"], project["entry-points"])
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.syspath_prepend(str(PKG))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(site), str(PKG), os.environ.get("PYTHONPATH", "")]))
    clear_plugin_cache()
    folder = tmp_path / "csv"
    folder.mkdir()
    yield folder
    clear_plugin_cache()
    sys.modules.pop("rrdalarm_test_source", None)


def write_points(folder: Path, now: int) -> None:
    last = now // 60 * 60
    (folder / "busy.csv").write_text("".join(f"{last - 60 * i},{v}\n" for i, v in enumerate([9, 9, 1])))
    (folder / "calm.csv").write_text("".join(f"{last - 60 * i},1\n" for i in range(3)))


def csv_threshold(folder: Path | str, ident: int = 1, **extra: str) -> str:
    lines = [f"id = {ident}", 'name = "csv busy"', 'source = "csvdir"', f'dir = "{folder}"']
    lines += [f"{k} = {v}" for k, v in extra.items()]
    lines += ['type = "above"', "value = 5", "repetitions = 2"]
    return "[[threshold]]\n" + "\n".join(lines) + "\n"


def test_the_source_is_found_by_its_entry_point(csvdir: Path) -> None:
    assert "csvdir" in source_plugins()
    assert source_of_series("csvdir:busy") == "csvdir" and source_of_series("hosts/a.rrd") == "rrd"


def test_its_fields_are_validated_with_file_and_line(env: Env, csvdir: Path) -> None:
    env.write_thresholds("# csv\n" + csv_threshold("relative/dir"))
    p = env.run("validate")
    assert p.returncode == 2
    assert f"{env.thresholds_path}:6: field 'dir'" in p.stderr, p.stderr
    assert "must be an absolute folder path" in p.stderr
    env.write_thresholds(csv_threshold(csvdir, factor="-1"))
    p = env.run("validate")
    assert p.returncode == 2 and ":6: field 'factor'" in p.stderr and "must be a positive number" in p.stderr, p.stderr
    env.write_thresholds('[[threshold]]\nid = 1\nsource = "csvdir"\ntype = "above"\nvalue = 1\n')
    with pytest.raises(ConfigError, match="a csvdir threshold needs 'dir'"):
        load_thresholds(env.thresholds_path)
    env.write_thresholds(csv_threshold(csvdir, glob='"*.rrd"'))
    with pytest.raises(ConfigError, match="'glob' belongs to rrd thresholds"):
        load_thresholds(env.thresholds_path)


def test_it_is_written_back_and_read_again(env: Env, csvdir: Path) -> None:
    env.write_thresholds(csv_threshold(csvdir, factor="2"))
    [t] = load_thresholds(env.thresholds_path)
    assert t.source == "csvdir" and t.fields == {"dir": str(csvdir), "factor": 2.0}
    assert t.tuning.scale == 1.0
    text = thresholds_to_toml([t])
    assert f'dir = "{csvdir}"' in text and "factor = 2.0" in text and "glob" not in text
    env.write_thresholds(text)
    assert load_thresholds(env.thresholds_path) == [t]


def test_check_fires_on_it_and_the_reports_show_its_rows(env: Env, csvdir: Path) -> None:
    write_points(csvdir, T0)
    env.write_thresholds(csv_threshold(csvdir))
    assert env.run("validate").returncode == 0
    p = env.run("check", "--at", str(T0), "--json")
    assert p.returncode == 1, p.stderr
    rows = {(r["file"], r["ds"]): r["status"] for r in json.loads(p.stdout)["results"]}
    assert rows == {("csvdir:busy", "value"): "ALARM FIRED", ("csvdir:calm", "value"): "OK"}, p.stdout
    p = env.run("history", "--json", check=True)
    [event] = [json.loads(line) for line in p.stdout.splitlines()]
    assert (event["file"], event["status"]) == ("csvdir:busy", "ALARM FIRED")


def test_preview_and_backtest(env: Env, csvdir: Path) -> None:
    write_points(csvdir, T0)
    env.write_thresholds(csv_threshold(csvdir))
    [t] = load_thresholds(env.thresholds_path)
    result = preview(env.settings(), t, T0)
    assert [(r.file, r.status.value) for r in result.rows] == [("csvdir:busy", "would fire"), ("csvdir:calm", "ok")]
    assert result.matched == 2 and result.would_fire == 1
    assert backtest(env.settings(), t, T0).unsupported == (
        "Backtests read RRD files only, so a csvdir threshold can be previewed but not replayed.")


def test_it_is_edited_in_the_web_form(env: Env, csvdir: Path, make_app: WebApp) -> None:
    import time

    write_points(csvdir, int(time.time()))
    app = make_app(env, [("alice", PASSWORD, "admin")])
    client = logged_in(app)
    page = client.get("/thresholds/new").get_data(as_text=True)
    assert '<option value="csvdir">CSV folder</option>' in page
    assert 'fieldset data-source="csvdir"' in page and "absolute folder of &lt;series&gt;.csv files" in page
    data = form_of(page)
    data.update({"name": "csv busy", "source": "csvdir", "dir": "not/absolute", "type": "above", "value": "5",
                 "repetitions": "2", "op": "save"})
    resp = client.post("/thresholds/new", data=data)
    assert resp.status_code == 400 and "must be an absolute folder path" in resp.get_data(as_text=True)
    data["dir"] = str(csvdir)
    resp = client.post("/thresholds/new", data=data | {"op": "preview"})
    assert resp.status_code == 200 and "csvdir:busy" in resp.get_data(as_text=True)
    assert client.post("/thresholds/new", data=data).status_code == 302
    [t] = load_thresholds(env.thresholds_path)
    assert (t.source, t.fields["dir"], t.fields["factor"], t.value) == ("csvdir", str(csvdir), 1.0, 5.0)
    page = client.get(f"/thresholds/{t.id}/edit").get_data(as_text=True)
    assert form_of(page)["dir"] == str(csvdir) and form_of(page)["source"] == "csvdir"
    table = client.get("/thresholds").get_data(as_text=True)
    assert f"csvdir:{csvdir}/*.csv" in table
