"""The glob autocomplete: PathSuggester over a real tree, the JSON routes, and suggest.js in a real browser."""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from conftest import Env, WebApp, free_port, make_rrd
from fake_ntopng import FakeNtopng
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pytest_httpserver import HTTPServer

from rrdalarm.editor.suggest import PathSuggester, SuggestError, Suggestion
from rrdalarm.sources.rrd_index import FileIndex, cache_path_for

if TYPE_CHECKING:
    from playwright.sync_api import Browser

# The browser test's chromium (headless Debian chromium; skipped without it, failed on CI).
pytest_plugins = ["browser"]

TOKEN = "suggest-token-0123456789"
XSS = "<img src=x onerror=alert(1)>.rrd"
EMPTY_FILES = [
    "a.rrd",
    "notes.txt",
    ".hidden.rrd",
    ".git/config",
    "interfaces/eth0/bytes.rrd",
    "interfaces/eth0/inBytes.rrd",
    "interfaces/eth0/outBytes.rrd",
    "interfaces/eth0/readme.txt",
    "interfaces/eth1/bytes.rrd",
    "interfaces/eth10/bytes.rrd",
    "interfaces/eth10/packets.rrd",
    "hosts/192.168.1.10/bytes.rrd",
    "hosts/192.168.1.10/ndpi/HTTP.rrd",
    "hosts/192.168.1.11/bytes.rrd",
    "hosts/bytes.rrd",
    "case/bytes.rrd",
    "case/Bytes.rrd",
    "case/BYTES2.rrd",
    "case/Backup/x.rrd",
]


def make_tree(root: Path, files: list[str] = EMPTY_FILES) -> Path:
    """Empty files are enough to be listed; data sources need real RRDs (make_rrd)."""
    for rel in files:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(b"")
    return root


def populate(root: Path, outside: Path) -> Path:
    """The test tree, with symlinks leading out of it (into `outside`) and one staying inside."""
    make_tree(root)
    outside.mkdir()
    (outside / "secret.rrd").write_bytes(b"")
    (outside / "passwd").write_text("root:x:0:0\n")
    os.symlink(outside, root / "evil")  # a folder link leading out
    os.symlink(outside / "secret.rrd", root / "evil.rrd")  # a file link leading out
    os.symlink(root / "a.rrd", root / "inner.rrd")  # a link that stays inside: an ordinary file
    return root


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    return populate(tmp_path / "root", tmp_path / "outside")


def values(s: PathSuggester, text: str, limit: int = 50) -> list[str]:
    return [item.value for item in s.suggest(text, limit).items]


# ---------------------------------------------------------------------------- the core


def test_folders_first_then_rrd_files_without_hidden_or_foreign_entries(tree: Path) -> None:
    s = PathSuggester(tree, None)
    got = s.suggest("")
    assert got.items == [
        Suggestion("case/", "dir"), Suggestion("hosts/", "dir"), Suggestion("interfaces/", "dir"),
        Suggestion("a.rrd", "file"), Suggestion("inner.rrd", "file"),
    ]
    assert not got.more
    assert values(s, "interfaces/e") == ["interfaces/eth0/", "interfaces/eth1/", "interfaces/eth10/"]
    assert values(s, "interfaces/eth1") == ["interfaces/eth1/", "interfaces/eth10/"]
    # Only .rrd files: readme.txt is not offered.
    assert values(s, "interfaces/eth0/") == [
        "interfaces/eth0/bytes.rrd", "interfaces/eth0/inBytes.rrd", "interfaces/eth0/outBytes.rrd"]
    assert values(s, "hosts/192.168.1.10/") == ["hosts/192.168.1.10/ndpi/", "hosts/192.168.1.10/bytes.rrd"]
    assert values(s, "interfaces/eth0/bytes.rrd") == ["interfaces/eth0/bytes.rrd"]
    assert values(s, "nothing/here/") == []
    assert values(s, "a.rrd/") == []  # a file is not a folder


def test_hidden_entries_only_when_asked_for(tree: Path) -> None:
    s = PathSuggester(tree, None)
    assert values(s, ".") == [".git/", ".hidden.rrd"]
    assert values(s, ".g") == [".git/"]
    assert all(not v.startswith(".") for v in values(s, ""))


def test_exact_case_first_then_other_case(tree: Path) -> None:
    s = PathSuggester(tree, None)
    assert values(s, "case/b") == ["case/bytes.rrd", "case/Backup/", "case/BYTES2.rrd", "case/Bytes.rrd"]
    assert values(s, "case/B") == ["case/Backup/", "case/BYTES2.rrd", "case/Bytes.rrd", "case/bytes.rrd"]
    assert values(s, "CASE/") == []  # the folder part is exact: the file system is case-sensitive
    assert values(s, "CAS") == ["case/"]


def test_limit_and_more(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "root", [f"many/f{i:03d}.rrd" for i in range(60)] + ["many/sub/x.rrd"])
    s = PathSuggester(root, None)
    got = s.suggest("many/", limit=50)
    assert len(got.items) == 50 and got.more
    assert got.items[0] == Suggestion("many/sub/", "dir")  # folders first, even when the list is cut
    all_of_them = s.suggest("many/", limit=100)
    assert len(all_of_them.items) == 61 and not all_of_them.more
    assert not s.suggest("many/f05").more


def test_a_glob_in_the_folder_part_merges_the_folders_it_matches(tree: Path) -> None:
    s = PathSuggester(tree, None)
    assert values(s, "interfaces/*/") == ["interfaces/*/bytes.rrd", "interfaces/*/inBytes.rrd",
                                          "interfaces/*/outBytes.rrd", "interfaces/*/packets.rrd"]
    assert values(s, "interfaces/eth1*/p") == ["interfaces/eth1*/packets.rrd"]
    assert values(s, "hosts/**/") == ["hosts/**/192.168.1.10/", "hosts/**/192.168.1.11/", "hosts/**/ndpi/",
                                      "hosts/**/HTTP.rrd", "hosts/**/bytes.rrd"]
    assert values(s, "**/n") == ["**/ndpi/"]
    assert values(s, "interfaces/eth[01]/b") == ["interfaces/eth[01]/bytes.rrd"]


def test_a_glob_over_too_many_folders_is_cut_short_and_says_so(tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import rrdalarm.editor.suggest

    monkeypatch.setattr(rrdalarm.editor.suggest, "MAX_GLOB_FOLDERS", 3)
    got = PathSuggester(tree, None).suggest("**/")
    assert got.more and got.items


@pytest.mark.parametrize("text", [
    "interfaces/eth*", "interfaces/eth?", "interfaces/[", "interfaces/[/x", "[]/", "***", "**/**x", "a/**b/",
    "?/", "[!a]/", "[z-a]/", "interfaces/eth[9-0]/b", "\u00e9/", "x" * 5000, "hosts//192.168.1.10/", "./interfaces/",
])
def test_typed_globs_and_odd_text_never_crash(tree: Path, text: str) -> None:
    s = PathSuggester(tree, None)
    got = s.suggest(text)
    assert all(item.value.startswith(text[: text.rfind("/") + 1]) for item in got.items)


@pytest.mark.parametrize("text", [
    "..", "../", "../x", "../../etc/", "/", "/etc/", "/etc/pass", "interfaces/../../", "interfaces/..",
    "a\x00b", "\x00", "\\etc\\", "interfaces\\..\\..\\", "C:/Windows/", "c:", "evil/", "evil/p", "inner.rrd/",
])
def test_nothing_outside_the_root(tree: Path, text: str) -> None:
    assert PathSuggester(tree, None).suggest(text).items == []


def test_symlinks_leading_out_are_never_offered_or_read(tree: Path) -> None:
    s = PathSuggester(tree, None)
    offered = values(s, "") + values(s, "e") + values(s, "**/") + values(s, "*/")
    assert not any("evil" in v or "secret" in v for v in offered)
    assert "inner.rrd" in offered  # a link inside the root is a file like any other
    counted = s.matches("*.rrd")
    assert counted.count == 2 and counted.sample == ["a.rrd", "inner.rrd"] and counted.outside == 1
    for rel in ("evil.rrd", "evil/secret.rrd", "evil/passwd"):
        with pytest.raises(SuggestError) as caught:
            s.data_sources(rel)
        assert caught.value.not_found and str(tree.parent) not in str(caught.value)


@pytest.mark.parametrize(("glob", "problem"), [
    ("../*.rrd", "'..'"),
    ("interfaces/../../*.rrd", "'..'"),
    ("/etc/*", "absolute"),
    ("\\etc", "absolute"),
    ("", "empty"),
    ("/", "absolute"),
    (".", "empty"),
    ("a/**x/b.rrd", "'**' must be a whole path component"),
    ("interfaces/eth[z-a]/bytes.rrd", "reversed range"),
    ("a\x00", "NUL"),
])
def test_matches_refuses_what_the_check_refuses(tree: Path, glob: str, problem: str) -> None:
    with pytest.raises(SuggestError) as caught:
        PathSuggester(tree, None).matches(glob)
    assert problem in str(caught.value) and "\n" not in str(caught.value)


GLOBS = [
    "*.rrd", "*", "a.rrd", ".*", ".*.rrd", "interfaces/eth0/*Bytes.rrd", "interfaces/eth?/bytes.rrd",
    "interfaces/eth[01]/bytes.rrd", "interfaces/eth[!0]/bytes.rrd", "interfaces/*/bytes.rrd", "*/bytes.rrd",
    "hosts/**/bytes.rrd", "hosts/**", "**/*.rrd", "**", "**/ndpi/*", "interfaces/eth1*/*", "interfaces/*/p*",
    "case/B*", "case/?ytes.rrd", "case/*/x.rrd", "hosts/*/ndpi/HTTP.rrd", "nothing/*.rrd", "interfaces/[/x",
    "**/**/bytes.rrd", "interfaces/**/eth0/*", "./a.rrd", "interfaces//eth0/bytes.rrd", "evil/*", "evil*",
]


@pytest.mark.parametrize("glob", GLOBS)
def test_matches_counts_what_the_check_expands(tree: Path, glob: str) -> None:
    index = FileIndex(tree)
    index.refresh()
    expected = index.match(glob)
    got = PathSuggester(tree, None).matches(glob, sample=3)
    assert got.count == len(expected.files)
    assert got.outside == len(expected.escapes)
    assert len(got.sample) == min(3, got.count) and set(got.sample) <= set(expected.files)


COMPONENTS = ["*", "?", "**", "eth*", "[ab]*", "*.rrd", "bytes.rrd", "hosts", "interfaces", "eth0", ".*", "1?",
              "*Bytes.rrd", "[!e]*", "192.168.1.1?", "case", "B*", "?????"]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(parts=st.lists(st.sampled_from(COMPONENTS), min_size=1, max_size=4))
def test_matches_agrees_with_the_index_on_any_glob(tree: Path, parts: list[str]) -> None:
    glob = "/".join(parts)
    index = FileIndex(tree)
    index.refresh()
    assert PathSuggester(tree, None).matches(glob).count == len(index.match(glob).files), glob


def test_a_count_is_kept_until_the_listing_changes(tree: Path) -> None:
    s = PathSuggester(tree, None)
    full = s.matches("**/*.rrd")
    assert s.matches("**/*.rrd", budget_s=0.0) == full  # no time needed: counted over this listing already
    fresh = PathSuggester(tree, None, min_interval=0.0, background=False)  # a new listing on every look-up
    before = fresh.matches("**/*.rrd").count
    (tree / "interfaces" / "zz-new.rrd").write_bytes(b"")
    assert fresh.matches("**/*.rrd").count == before + 1


def test_a_look_up_out_of_time_says_it_is_partial(tree: Path) -> None:
    s = PathSuggester(tree, None)
    full = s.matches("**/*.rrd")
    assert not full.partial and full.message == "" and full.count > 3
    late = PathSuggester(tree, None).matches("**/*.rrd", budget_s=0.0)  # a new one: nothing counted yet
    assert late.partial and late.count < full.count
    assert "too long" in late.message and f"at least {late.count} files" in late.message
    assert s.suggest("**/", budget_s=0.0).more
    assert not s.suggest("**/", budget_s=60.0).more


def test_repeated_double_stars_count_as_one(tree: Path) -> None:
    s = PathSuggester(tree, None)
    one = s.matches("**/bytes.rrd")
    assert s.matches("/".join(["**"] * 40) + "/bytes.rrd") == one
    assert s.matches("hosts/" + "**/" * 12 + "*.rrd") == s.matches("hosts/**/*.rrd")
    assert [v[12:] for v in values(s, "**/**/**/**/b")] == [v[3:] for v in values(s, "**/b")]


def test_data_sources_in_file_order(tree: Path) -> None:
    make_rrd(tree / "interfaces/eth0/bytes.rrd", {"zeta": [1.0, 2.0], "alpha": [3.0, 4.0], "mid": [5.0, 6.0]})
    s = PathSuggester(tree, None)
    assert s.data_sources("interfaces/eth0/bytes.rrd") == ["zeta", "alpha", "mid"]
    assert s.data_sources("./interfaces//eth0/bytes.rrd") == ["zeta", "alpha", "mid"]


@pytest.mark.parametrize(("rel", "not_found", "text"), [
    ("a.rrd", False, "file is empty"),
    ("notes.txt", False, "as an RRD"),
    ("missing.rrd", True, "no such RRD file"),
    ("interfaces", True, "no such RRD file"),
    ("", True, "no such RRD file"),
    ("../../etc/passwd", False, "'..'"),
    ("/etc/passwd", False, "absolute"),
    ("interfaces/*/bytes.rrd", False, "not a file path"),
    ("a\\b.rrd", False, "not a file path"),
])
def test_data_sources_errors_are_one_line(tree: Path, rel: str, not_found: bool, text: str) -> None:
    (tree / "notes.txt").write_text("not an rrd at all, but long enough to have a header\n" * 10)
    with pytest.raises(SuggestError, match=text) as caught:
        PathSuggester(tree, None).data_sources(rel)
    assert caught.value.not_found is not_found
    assert "\n" not in str(caught.value) and str(tree) not in str(caught.value)


def mixed(root: Path) -> None:
    """Three RRDs with different data sources under interfaces/ (and the tree's empty files beside them)."""
    make_rrd(root / "interfaces/eth0/bytes.rrd", {"rx": [1.0, 2.0], "tx": [3.0, 4.0]})
    make_rrd(root / "interfaces/eth1/bytes.rrd", {"rx": [1.0, 2.0]})
    make_rrd(root / "interfaces/eth10/bytes.rrd", {"rx": [1.0, 2.0], "errors": [0.0, 0.0]})


def test_data_source_union_counts_each_name_over_the_matched_files(tree: Path) -> None:
    mixed(tree)
    s = PathSuggester(tree, None)
    got = s.data_source_union("interfaces/*/bytes.rrd")
    # The most common first; among equals, the order of the first file that has it.
    assert (got.ds, got.files, got.unreadable, got.partial) == ([("rx", 3), ("tx", 1), ("errors", 1)], 3, 0, False)
    # The empty files the glob also matches are counted as unreadable, not hidden, and hide nothing.
    got = s.data_source_union("interfaces/**/*.rrd")
    assert (got.ds[0], got.files, got.unreadable) == (("rx", 3), 3, 3)
    assert s.data_source_union("nothing/*.rrd") == type(got)([], 0, 0, False)


def test_data_source_union_reads_nothing_outside_the_root(tree: Path) -> None:
    make_rrd(tree.parent / "outside" / "real.rrd", {"leak": [1.0, 2.0]})
    os.symlink(tree.parent / "outside" / "real.rrd", tree / "link.rrd")
    s = PathSuggester(tree, None)
    for glob in ("*.rrd", "**/*.rrd", "evil/*.rrd", "*/*.rrd"):
        assert "leak" not in [name for name, _ in s.data_source_union(glob).ds], glob
    for glob in ("../*.rrd", "/etc/*", "a/**b"):
        with pytest.raises(SuggestError):
            s.data_source_union(glob)


def test_data_source_union_stops_at_its_file_limit_and_budget(tree: Path) -> None:
    mixed(tree)
    s = PathSuggester(tree, None)
    got = s.data_source_union("interfaces/*/bytes.rrd", max_files=2)
    assert (got.files, got.partial) == (2, True) and "first 2" in got.message
    got = s.data_source_union("interfaces/*/bytes.rrd", budget_s=0.0)
    assert got.partial and got.files == 0


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_new_files_appear_after_the_refresh_interval_not_before(tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    clock = Clock()
    s = PathSuggester(tree, None, min_interval=1.0, clock=clock, background=False)
    walks: list[float] = []
    real_refresh = FileIndex.refresh

    def counted(index: FileIndex) -> None:
        walks.append(clock.now)
        real_refresh(index)

    monkeypatch.setattr(FileIndex, "refresh", counted)
    assert values(s, "interfaces/eth0/n") == []
    (tree / "interfaces/eth0/new.rrd").write_bytes(b"")
    for _ in range(20):  # typing: every keystroke within the interval reuses the listing
        assert values(s, "interfaces/eth0/n") == []
    assert len(walks) == 1
    clock.now += 1.01
    assert values(s, "interfaces/eth0/n") == ["interfaces/eth0/new.rrd"]
    assert s.matches("interfaces/eth0/new.rrd").count == 1
    assert len(walks) == 2


def test_a_background_refresh_keeps_answering_from_the_old_listing(tree: Path) -> None:
    s = PathSuggester(tree, None, min_interval=0.05)
    assert values(s, "interfaces/eth0/n") == []
    (tree / "interfaces/eth0/new.rrd").write_bytes(b"")
    deadline = time.monotonic() + 10
    while values(s, "interfaces/eth0/n") != ["interfaces/eth0/new.rrd"]:
        assert time.monotonic() < deadline, "the new file never showed up"
        time.sleep(0.02)


def test_the_index_cache_is_shared_with_the_check(tree: Path, tmp_path: Path) -> None:
    cache = cache_path_for(tmp_path / "data", Path(os.path.realpath(tree)))
    PathSuggester(tree, cache).suggest("")
    assert cache.is_file()
    index = FileIndex(tree, cache)
    index.refresh()
    assert index.relisted == 0  # the check found every folder already listed


def test_a_vanished_root_is_one_line(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "root", ["a.rrd"])
    s = PathSuggester(root, None, min_interval=0.0, background=False)
    assert values(s, "") == ["a.rrd"]
    shutil.rmtree(root)
    assert values(s, "") == ["a.rrd"]  # the last listing, rather than an error per keystroke
    with pytest.raises(SuggestError, match="cannot read the RRD root"):
        PathSuggester(root, None).suggest("")


def test_concurrent_requests_share_one_build(tree: Path) -> None:
    s = PathSuggester(tree, None)
    results: list[list[str]] = []

    def ask() -> None:
        results.append(values(s, "interfaces/e"))

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [["interfaces/eth0/", "interfaces/eth1/", "interfaces/eth10/"]] * 8


# ---------------------------------------------------------------------------- the routes


def use_token(env: Env) -> None:
    (env.base / "token").write_text(TOKEN + "\n")
    with env.settings_path.open("a") as fh:
        fh.write('\n[service]\napi_token = { file = "token" }\n')


@pytest.fixture
def web_env(env: Env) -> Env:
    populate(env.root, env.base / "outside")
    (env.root / XSS).write_bytes(b"")
    make_rrd(env.root / "interfaces/eth0/bytes.rrd", {"rcvd": [1.0, 2.0], "sent": [3.0, 4.0]})
    use_token(env)
    return env


@pytest.fixture
def app(web_env: Env, make_app: WebApp) -> Flask:
    app: Flask = make_app(web_env, SUGGEST_REFRESH_S=0.05)
    return app


class Api:
    def __init__(self, client: FlaskClient) -> None:
        self.client = client

    def get(self, path: str, **params: str) -> Any:
        return self.client.get(path, query_string=params, headers={"Authorization": f"Bearer {TOKEN}"})


@pytest.fixture
def api(app: Flask) -> Api:
    return Api(app.test_client())


ROUTES = ["/api/suggest?q=", "/api/matches?glob=*.rrd", "/api/ds?file=a.rrd", "/api/ds?glob=*.rrd",
          "/api/ntopng/interfaces",
          "/api/ntopng/schemas?entity=host&ifid=0", "/api/ntopng/hosts?ifid=0"]


@pytest.mark.parametrize("path", ROUTES)
def test_every_route_needs_access(app: Flask, path: str) -> None:
    client = app.test_client()
    assert client.get(path).status_code == 401
    assert client.get(path, headers={"Authorization": "Bearer wrong-token"}).status_code == 401


def test_suggest_route(api: Api) -> None:
    r = api.get("/api/suggest", q="interfaces/eth1")
    assert r.status_code == 200 and r.mimetype == "application/json"
    assert r.get_json() == {"items": [{"value": "interfaces/eth1/", "kind": "dir"},
                                      {"value": "interfaces/eth10/", "kind": "dir"}], "more": False}
    assert r.headers["X-Content-Type-Options"] == "nosniff" and r.headers["Cache-Control"] == "no-store"
    cut = api.get("/api/suggest", q="", limit="2").get_json()
    assert len(cut["items"]) == 2 and cut["more"] is True
    assert api.get("/api/suggest", q="", limit="many").status_code == 400


@pytest.mark.parametrize("q", ["../", "..", "/etc/", "/", "interfaces/../../", "evil/", "\\..\\", "C:/", "a\x00"])
def test_suggest_route_stays_inside(api: Api, q: str) -> None:
    r = api.get("/api/suggest", q=q)
    assert r.status_code == 200 and r.get_json() == {"items": [], "more": False}


def test_names_come_back_verbatim_as_json(api: Api) -> None:
    r = api.get("/api/suggest", q="<")
    assert r.get_json()["items"] == [{"value": XSS, "kind": "file"}]
    assert r.mimetype == "application/json" and r.headers["X-Content-Type-Options"] == "nosniff"
    assert api.get("/api/matches", glob="<*").get_json()["sample"] == [XSS]


def test_the_script_inserts_text_never_markup() -> None:
    script = (Path(__file__).parents[2] / "web" / "static" / "suggest.js").read_text(encoding="utf-8")
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"):
        assert sink not in script, sink
    assert "textContent" in script


def test_matches_route(api: Api) -> None:
    r = api.get("/api/matches", glob="interfaces/*/bytes.rrd")
    assert r.status_code == 200
    assert r.get_json() == {"count": 3, "sample": ["interfaces/eth0/bytes.rrd", "interfaces/eth1/bytes.rrd",
                                                   "interfaces/eth10/bytes.rrd"], "outside": 0, "partial": False}
    assert api.get("/api/matches", glob="evil/*").get_json() == {"count": 0, "sample": [], "outside": 0,
                                                                 "partial": False}
    assert api.get("/api/matches", glob="evil*").get_json()["outside"] == 1  # a wildcard takes *.rrd only
    assert api.get("/api/matches", glob="evil").get_json()["outside"] == 1


@pytest.mark.parametrize(("glob", "text"), [("../*.rrd", "'..'"), ("/etc/*", "absolute"), ("", "empty"),
                                            ("a/**b", "'**'"), ("interfaces/eth[z-a]/*.rrd", "z-a"),
                                            ("[9-0].rrd", "range")])
def test_matches_route_errors(api: Api, glob: str, text: str) -> None:
    r = api.get("/api/matches", glob=glob)
    assert r.status_code == 400
    error = r.get_json()["error"]
    assert text in error and "\n" not in error


def test_matches_route_out_of_time_is_partial_not_late(api: Api, app: Flask) -> None:
    app.config["SUGGEST_BUDGET_S"] = 0.0
    r = api.get("/api/matches", glob="**")
    assert r.status_code == 200
    body = r.get_json()
    assert body["partial"] is True and "too long" in body["message"] and "at least" in body["message"]


def test_ds_route(api: Api, web_env: Env) -> None:
    assert api.get("/api/ds", file="interfaces/eth0/bytes.rrd").get_json() == {"ds": ["rcvd", "sent"]}
    for rel, status in [("../../etc/passwd", 400), ("/etc/passwd", 400), ("evil/passwd", 404), ("evil.rrd", 404),
                        ("missing.rrd", 404), ("interfaces/*/bytes.rrd", 400), ("a.rrd", 400), ("", 404)]:
        r = api.get("/api/ds", file=rel)
        assert r.status_code == status, rel
        body = r.get_json()
        assert set(body) == {"error"} and "root:x" not in body["error"] and str(web_env.base) not in body["error"]


def test_the_route_notices_a_new_file(api: Api, web_env: Env) -> None:
    assert api.get("/api/suggest", q="interfaces/eth1/n").get_json()["items"] == []
    (web_env.root / "interfaces/eth1/new.rrd").write_bytes(b"")
    deadline = time.monotonic() + 10
    while not api.get("/api/suggest", q="interfaces/eth1/n").get_json()["items"]:
        assert time.monotonic() < deadline, "the new file never showed up"
        time.sleep(0.05)
    assert api.get("/api/matches", glob="interfaces/eth1/*").get_json()["count"] == 2


def test_a_new_root_gets_a_new_suggester(api: Api, web_env: Env, tmp_path: Path) -> None:
    assert api.get("/api/suggest", q="i").get_json()["items"][0]["value"] == "interfaces/"
    other = make_tree(tmp_path / "other", ["zz/top.rrd"])
    text = web_env.settings_path.read_text()
    web_env.settings_path.write_text(text.replace(f'rrd_root = "{web_env.root}"', f'rrd_root = "{other}"'))
    assert api.get("/api/suggest", q="").get_json()["items"] == [{"value": "zz/", "kind": "dir"}]
    web_env.settings_path.write_text(text.replace(f'rrd_root = "{web_env.root}"', f'rrd_root = "{tmp_path}/gone"'))
    for path in ("/api/suggest?q=", "/api/matches?glob=*", "/api/ds?file=a.rrd"):
        r = api.client.get(path, headers={"Authorization": f"Bearer {TOKEN}"})
        assert r.status_code == 503 and "not a directory" in r.get_json()["error"]


# ---------------------------------------------------------------------------- ntopng


def test_ds_route_with_a_glob_answers_the_union_with_counts(api: Api, web_env: Env) -> None:
    make_rrd(web_env.root / "interfaces/eth1/bytes.rrd", {"rcvd": [1.0, 2.0]})
    make_rrd(web_env.root / "interfaces/eth10/bytes.rrd", {"rcvd": [1.0, 2.0], "drops": [0.0, 0.0]})
    r = api.get("/api/ds", glob="interfaces/*/bytes.rrd")
    assert r.status_code == 200
    assert r.get_json() == {"ds": [{"name": "rcvd", "files": 3}, {"name": "sent", "files": 1},
                                   {"name": "drops", "files": 1}], "files": 3, "unreadable": 0, "partial": False}
    for glob, text in [("../*.rrd", "'..'"), ("/etc/*", "absolute"), ("", "empty")]:
        r = api.get("/api/ds", glob=glob)
        assert r.status_code == 400 and text in r.get_json()["error"], glob
    # A link leading out of the root is never read, whichever glob reaches it.
    make_rrd(web_env.base / "outside" / "real.rrd", {"leak": [1.0, 2.0]})
    body = api.get("/api/ds", glob="evil/*.rrd").get_json()
    assert body["ds"] == [] and body["files"] == 0


def test_ds_route_with_a_glob_out_of_time_is_partial(api: Api, app: Flask) -> None:
    app.config["SUGGEST_BUDGET_S"] = 0.0
    body = api.get("/api/ds", glob="**/*.rrd").get_json()
    assert body["partial"] is True and body["files"] == 0 and "first" in body["message"]


def configure_ntopng(env: Env, url: str, token: str = "T") -> None:
    with env.settings_path.open("a") as fh:
        fh.write(f'\n[ntopng]\nurl = "{url}"\ntoken = "{token}"\ntimeout = 5\nretries = 2\n')


@pytest.fixture
def ntop(web_env: Env, httpserver: HTTPServer) -> FakeNtopng:
    fake = FakeNtopng(httpserver, version="6.2", interfaces={0: "eth0", 2: "eth2"})
    end = int(time.time()) // 300 * 300
    for ip in ("192.168.1.10", "192.168.1.11"):
        fake.add_host(0, ip)
        fake.add_series("host:traffic", f"ifid:0,host:{ip}", {"bytes_sent": [1.0] * 3, "bytes_rcvd": [1.0] * 3},
                        end=end)
    fake.add_host(0, "10.0.0.2", vlan=3)
    fake.add_host(0, "8.8.8.8", local=False)
    fake.add_series("host:ndpi", "ifid:0,host:192.168.1.10,protocol:HTTP", {"bytes_sent": [1.0] * 3}, end=end)
    fake.add_series("iface:traffic", "ifid:0", {"bytes": [1.0] * 3}, end=end)
    configure_ntopng(web_env, fake.url)
    return fake


def test_ntopng_routes(api: Api, ntop: FakeNtopng) -> None:
    assert api.get("/api/ntopng/interfaces").get_json() == [{"ifid": 0, "name": "eth0"}, {"ifid": 2, "name": "eth2"}]
    host = api.get("/api/ntopng/schemas", entity="host", ifid="0").get_json()  # ntopng's catalog, top: left out
    assert host[:2] == ["host:traffic", "host:score"] and len(host) == 23 and "host:ndpi" not in host
    iface = api.get("/api/ntopng/schemas", entity="iface").get_json()
    assert iface[:2] == ["iface:traffic_rxtx", "iface:traffic_ip"] and "iface:traffic" in iface and len(iface) == 32
    assert api.get("/api/ntopng/hosts", ifid="0").get_json() == ["192.168.1.10", "192.168.1.11", "10.0.0.2@3"]
    for path, params in [("/api/ntopng/hosts", {"ifid": "x"}), ("/api/ntopng/hosts", {"ifid": "-1"}),
                         ("/api/ntopng/schemas", {"entity": "host;drop"}), ("/api/ntopng/schemas", {"ifid": "1.5"})]:
        r = api.get(path, **params)
        assert r.status_code == 400 and "error" in r.get_json(), (path, params)
    r = api.get("/api/ntopng/hosts", ifid="7")  # ntopng: no such interface
    assert r.status_code == 502 and "Invalid interface" in r.get_json()["error"]


def test_ntopng_wrong_token_is_502_without_the_token(api: Api, ntop: FakeNtopng, web_env: Env) -> None:
    web_env.settings_path.write_text(web_env.settings_path.read_text().replace('token = "T"', 'token = "sesame"'))
    r = api.get("/api/ntopng/interfaces")
    assert r.status_code == 502
    assert "authentication failed" in r.get_json()["error"] and "sesame" not in r.get_data(as_text=True)


def test_ntopng_not_configured_or_unreachable(api: Api, web_env: Env) -> None:
    r = api.get("/api/ntopng/schemas", entity="host", ifid="0")
    assert r.status_code == 502 and "not configured" in r.get_json()["error"]
    configure_ntopng(web_env, f"http://127.0.0.1:{free_port()}")
    started = time.monotonic()
    for path in ("/api/ntopng/interfaces", "/api/ntopng/schemas", "/api/ntopng/hosts"):
        r = api.get(path)
        assert r.status_code == 502
        error = r.get_json()["error"]
        assert "cannot reach ntopng (connection refused)" in error and "\n" not in error
    assert time.monotonic() - started < 5  # no retries with backoff behind an autocomplete


# ---------------------------------------------------------------------------- the browser

PAGE = """<!doctype html><html><head><meta charset="utf-8">
<link rel="stylesheet" href="/static/rrdalarm.css"></head><body>
<form id="f" method="post" action="/submitted">
<div class="suggest-wrap"><input type="text" id="glob" name="glob" autocomplete="off" role="combobox"
 aria-autocomplete="list" aria-expanded="false" aria-controls="glob-list" data-suggest-url="/api/suggest"
 data-count-url="/api/matches" data-ds-url="/api/ds" data-ds-target="ds" data-count-target="glob-count"></div>
<span id="glob-count" aria-live="polite"></span>
<input id="ds" name="ds"><div id="ds-choices"></div>
<input id="schema" name="schema" list="ntopng-schemas" data-ntopng-schemas-url="/api/ntopng/schemas">
<input id="query" name="query" list="ntopng-hosts" data-ntopng-hosts-url="/api/ntopng/hosts" value="ifid:0,host:*">
<datalist id="ntopng-schemas"></datalist><datalist id="ntopng-hosts"></datalist>
<button type="submit">Save</button></form>
<script src="/static/suggest.js" defer></script></body></html>"""


@pytest.fixture
def served(app: Flask, ntop: FakeNtopng) -> Iterator[str]:
    from werkzeug.serving import make_server

    submitted: list[int] = []

    def submit() -> str:
        submitted.append(1)
        return "submitted"

    app.add_url_rule("/suggest-page", "suggest_page", lambda: PAGE)
    app.add_url_rule("/submitted", "submitted", submit, methods=["POST"])
    app.config["WTF_CSRF_ENABLED"] = False
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    assert not submitted, "Enter in the open list submitted the form"


def test_keyboard_and_mouse_in_a_real_browser(served: str, chromium: Browser) -> None:
    context = chromium.new_context(extra_http_headers={"Authorization": f"Bearer {TOKEN}"})
    try:
        page = context.new_page()
        dialogs: list[str] = []

        def on_dialog(dialog: Any) -> None:
            dialogs.append(dialog.message)
            dialog.dismiss()

        page.on("dialog", on_dialog)
        page.goto(served + "/suggest-page")
        run_browser_steps(page, served, dialogs)
    finally:
        context.close()


def run_browser_steps(page: Any, served: str, dialogs: list[str]) -> None:
    glob = page.locator("#glob")
    options = page.locator("#glob-list li[role=option]")
    expect = pytest.importorskip("playwright.sync_api").expect

    glob.click()
    glob.press_sequentially("interfaces/")
    expect(options).to_have_text(["folder" + "interfaces/eth0/", "folderinterfaces/eth1/", "folderinterfaces/eth10/"])
    expect(glob).to_have_attribute("aria-expanded", "true")
    expect(page.locator("#glob-count")).to_have_text("0 files match")

    glob.press("ArrowDown")
    expect(options.nth(0)).to_have_attribute("aria-selected", "true")
    expect(glob).to_have_attribute("aria-activedescendant", "glob-list-0")
    glob.press("ArrowDown")
    glob.press("ArrowUp")
    expect(options.nth(0)).to_have_attribute("aria-selected", "true")
    glob.press("Enter")  # a folder: taken, and the list shows what is inside
    expect(glob).to_have_value("interfaces/eth0/")
    expect(options).to_have_count(3)
    expect(options.nth(0)).to_contain_text("interfaces/eth0/bytes.rrd")

    glob.press("ArrowDown")
    glob.press("Enter")  # a file: taken, the list closes
    expect(glob).to_have_value("interfaces/eth0/bytes.rrd")
    expect(page.locator("#glob-list")).to_be_hidden()
    expect(glob).to_have_attribute("aria-expanded", "false")
    expect(page.locator("#glob-count")).to_have_text("1 file matches")

    buttons = page.locator("#ds-choices button")
    expect(buttons).to_have_text(["rcvd", "sent"])
    buttons.nth(1).click()
    expect(page.locator("#ds")).to_have_value("sent")
    buttons.nth(0).click()
    expect(page.locator("#ds")).to_have_value("sent, rcvd")
    buttons.nth(1).click()
    expect(page.locator("#ds")).to_have_value("rcvd")
    expect(buttons.nth(0)).to_have_attribute("aria-pressed", "true")

    glob.fill("")
    glob.press_sequentially("interfaces/*/bytes.rrd")
    expect(page.locator("#glob-count")).to_have_text("3 files match")
    # A glob: the union over the files it reads (eth1 and eth10 are empty files here), with counts.
    expect(page.locator("#ds-choices")).to_contain_text("Data sources of the 1 matched file (2 unreadable)")
    expect(page.locator("#ds-choices button")).to_have_count(2)
    assert page.locator("#ds-choices button").evaluate_all("bs => bs.map(b => b.dataset.ds)") == ["rcvd", "sent"]
    expect(page.locator("#ds-choices button").nth(0)).to_have_attribute("aria-pressed", "true")

    glob.fill("")
    glob.press_sequentially("interfaces/e")
    expect(options).to_have_count(3)
    glob.press("Escape")
    expect(page.locator("#glob-list")).to_be_hidden()
    expect(glob).to_have_value("interfaces/e")

    glob.press_sequentially("th1")  # typing opens it again; a click picks
    expect(options).to_have_count(2)
    options.nth(1).click()
    expect(glob).to_have_value("interfaces/eth10/")
    expect(options).to_have_count(2)
    expect(glob).to_be_focused()

    glob.fill("")
    glob.press_sequentially("../")
    expect(page.locator("#glob-count")).to_have_class("error")
    expect(page.locator("#glob-count")).to_contain_text("'..'")

    glob.fill("")
    glob.press_sequentially("<")
    expect(options).to_have_count(1)
    expect(options.nth(0)).to_have_text("file" + XSS)
    assert page.locator("#glob-list img").count() == 0

    page.locator("#schema").focus()  # nothing typed: host and interface schemas
    expect(page.locator("#ntopng-schemas option")).to_have_count(23 + 32)
    schemas = page.locator("#ntopng-schemas option").evaluate_all("os => os.map(o => o.value)")
    assert schemas[:2] == ["host:traffic", "host:score"]
    assert schemas[23:25] == ["iface:traffic_rxtx", "iface:traffic_ip"]
    page.locator("#schema").press_sequentially("iface:")  # an entity typed: only its schemas
    expect(page.locator("#ntopng-schemas option")).to_have_count(32)
    page.locator("#query").focus()
    expect(page.locator("#ntopng-hosts option")).to_have_count(4)
    assert page.locator("#ntopng-hosts option").nth(3).get_attribute("value") == "ifid:0,host:10.0.0.2@3"
    assert not dialogs
