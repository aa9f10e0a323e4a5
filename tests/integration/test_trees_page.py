"""/trees and /api/trees: each tree's workers, last heartbeat, files and check duration, trouble first."""

from __future__ import annotations

import time

from conftest import Env, WebApp, threshold
from flask import Flask
from test_control_api import logged_in

from rrdalarm.model.records import WorkerSeen
from rrdalarm.store.database import open_store
from rrdalarm.store.workers import record_workers

USERS = [("alice", "correct horse battery", "admin"), ("vic", "correct horse battery", "viewer")]


def clustered(env: Env, make_app: WebApp) -> Flask:
    env.settings_path.write_text(env.settings_path.read_text() + '[cluster]\nbroker = "redis://:s3cret@127.0.0.1:1/0"\n'
                                 "answer_timeout = 10\n")
    env.write_thresholds(threshold(1, "if/*.rrd", tree="collector-a") + threshold(2, "x/*.rrd", tree="collector-b")
                         + threshold(3, "local/*.rrd"))
    now = time.time()
    with open_store(env.settings().db_url) as store:
        record_workers(store, [WorkerSeen("collector-a", "rrdalarm.collector-a.11@host-a", now - 2, 1200, 0.8, 1.1),
                               WorkerSeen("collector-b", "rrdalarm.collector-b.12@host-b", now - 3600, 40, 0.2, 0.3)])
    app: Flask = make_app(env, USERS)
    return app


def test_trees_show_workers_and_the_tree_that_is_down_first(env: Env, make_app: WebApp) -> None:
    app = clustered(env, make_app)
    client, _ = logged_in(app, "vic")
    html = client.get("/trees").get_data(as_text=True)
    assert html.index('id="tree-collector-b"') < html.index('id="tree-collector-a"')
    assert "no worker alive: none answered for" in html and "not answering" in html
    assert "rrdalarm.collector-a.11@host-a" in html and "1200" in html and "last check 1.1 s" in html
    assert ">Trees</a>" in html and "s3cret" not in html
    api = client.get("/api/trees").get_json()
    assert [(x["name"], x["alive"], x["files"]) for x in api["trees"]] == [("collector-b", 0, 0),
                                                                           ("collector-a", 1, 1200)]
    assert app.test_client().get("/api/trees").status_code in (302, 401)


def test_one_machine_has_no_trees_link_and_says_why_the_page_is_empty(env: Env, make_app: WebApp) -> None:
    env.write_thresholds(threshold(1, "a/*.rrd"))
    app: Flask = make_app(env, USERS)
    client, _ = logged_in(app, "alice")
    assert ">Trees</a>" not in client.get("/").get_data(as_text=True)
    html = client.get("/trees").get_data(as_text=True)
    assert 'id="no-cluster"' in html and 'id="no-trees"' in html
