"""The delivery budget end to end: 1,000 breaching files, a real SMTP server and a real HTTP receiver."""

from __future__ import annotations

import json
import re
import shutil
from email.message import EmailMessage
from typing import Any

import pytest
from conftest import T0, Env, Inbox, WebApp, assert_one_clear_line, check, threshold
from pytest_httpserver import HTTPServer

from rrdalarm.store.database import SilenceRow, Store

WEB, DISK = 600, 400  # files of threshold 1 (warning) and threshold 2 (critical)
BUDGET = 5


def broken_folder(env: Env, folder: str, count: int) -> None:
    """`count` breaching files: one RRD made by rrdtool, copied (creating each would cost seconds)."""
    first = env.rrd(f"{folder}/f0000.rrd", {"x": [9, 9, 9]})
    for n in range(1, count):
        shutil.copyfile(first, first.with_name(f"f{n:04d}.rrd"))


def setup(env: Env, smtp_port: int, hook: str, budget: int | None) -> None:
    with env.settings_path.open("a") as fh:
        fh.write(f'\n[smtp]\nhost = "127.0.0.1"\nport = {smtp_port}\nsender = "rrdalarm@test"\n'
                 "\n[delivery]\ntimeout = 5\n" + (f"max_per_check = {budget}\n" if budget else ""))
    actions = [{"type": "email", "to": "ops@x.org"}, {"type": "webhook", "url": hook}]
    env.write_thresholds(threshold(1, glob="web/*.rrd", name="web bytes", actions=actions)
                         + threshold(2, glob="disk/*.rrd", name="disk", severity="critical", actions=actions))
    broken_folder(env, "web", WEB)
    broken_folder(env, "disk", DISK)


def plain(mail: EmailMessage) -> str:
    part = mail.get_body(("plain",))
    assert part is not None
    return str(part.get_content())


def bodies(httpserver: HTTPServer) -> list[dict[str, Any]]:
    return [json.loads(req.get_data()) for req, _ in httpserver.log]


def test_budget_of_five_sends_five_plus_one_digest_per_target(
    env: Env, store: Store, smtp: tuple[Inbox, int], httpserver: HTTPServer
) -> None:
    box, port = smtp
    httpserver.expect_request("/hook", method="POST").respond_with_data("ok")
    setup(env, port, httpserver.url_for("/hook"), BUDGET)
    result = check(env, store)
    assert result.alarms_fired == WEB + DISK and all(r.ok for r in result.deliveries)

    mails = box.messages
    digests = [m for m in mails if "DIGEST" in m["Subject"]]
    assert len(mails) == BUDGET + 1 and len(digests) == 1
    # The individual ones are the most severe: threshold 2 (critical), one event each.
    singles = [m for m in mails if m not in digests]
    assert all(m["Subject"] == "[rrdalarm] [critical] 1 alarm fired" for m in singles)
    assert all("threshold 2 disk" in plain(m) for m in singles)
    text = plain(digests[0])
    assert digests[0]["Subject"] == "[rrdalarm] [critical] DIGEST 995 alarms fired"
    assert "995 more alarms from thresholds 2 (disk), 1 (web bytes): 995 ALARM FIRED" in text
    assert "... and 895 more" in text

    posts = bodies(httpserver)
    assert len(posts) == BUDGET + 1
    [digest] = [p for p in posts if "digest" in p]
    assert all(len(p["events"]) == 1 and p["events"][0]["threshold_id"] == 2 for p in posts if p is not digest)
    assert {k: digest["digest"][k] for k in ("count", "statuses", "thresholds")} == {
        "count": 995, "statuses": {"ALARM FIRED": 995},
        "thresholds": [{"id": 2, "name": "disk", "count": DISK - BUDGET}, {"id": 1, "name": "web bytes", "count": WEB}],
    }
    assert "995 more alarms" in digest["digest"]["message"] and len(digest["events"]) == 995
    # No event lost: every alarm reached the receiver exactly once, alone or in the digest.
    series = [(e["threshold_id"], e["series"]) for p in posts for e in p["events"]]
    assert len(series) == len(set(series)) == WEB + DISK

    shown = [json.loads(line) for line in env.run("history", "--deliveries", "--json").stdout.splitlines()]
    assert len(shown) == 2 * (BUDGET + 1) and {d["status"] for d in shown} == {"sent"}
    assert sorted(d["action"] for d in shown if d["digest"]) == ["email", "webhook"]
    assert "digest: 995 more alarms" in env.run("history", "--deliveries").stdout


def test_without_a_budget_one_delivery_per_target_carries_every_event(
    env: Env, store: Store, smtp: tuple[Inbox, int], httpserver: HTTPServer
) -> None:
    box, port = smtp
    httpserver.expect_request("/hook", method="POST").respond_with_data("ok")
    setup(env, port, httpserver.url_for("/hook"), None)
    check(env, store)
    [mail] = box.messages
    assert mail["Subject"] == "[rrdalarm] [critical] 1000 alarms fired"
    [post] = bodies(httpserver)
    assert len(post["events"]) == WEB + DISK and "digest" not in post


def test_silenced_events_do_not_count(env: Env, store: Store) -> None:
    env.rrd("a.rrd", {"x": [9, 9, 9]})
    env.rrd("b.rrd", {"x": [9, 9, 9]})
    with env.settings_path.open("a") as fh:
        fh.write("\n[delivery]\nmax_per_check = 1\n")
    env.write_thresholds(threshold(1, glob="*.rrd", actions=[{"type": "log", "file": "a.log"}]))
    with store.session() as s:
        s.add(SilenceRow(series="b.rrd", starts_at=T0 - 60, ends_at=T0 + 3600, comment="known", author="alice",
                         created_at=T0 - 60))
    check(env, store, at=T0)
    lines = (env.data / "log" / "a.log").read_text().splitlines()
    assert len(lines) == 1 and "series=a.rrd" in lines[0]  # one event, within the budget: no digest


@pytest.mark.parametrize("value", ["0", "-3", "2.5", "true", '"5"'])
def test_validate_refuses_a_bad_budget(env: Env, value: str) -> None:
    with env.settings_path.open("a") as fh:
        fh.write(f"\n[delivery]\ntimeout = 5\nmax_per_check = {value}\n")
    line = env.settings_path.read_text().splitlines().index(f"max_per_check = {value}") + 1
    assert_one_clear_line(env.run("validate"), f"{env.settings_path}:{line}:", "max_per_check",
                          "whole number of at least 1")


def test_deliveries_page_shows_the_digest(env: Env, store: Store, make_app: WebApp) -> None:
    for name in ("a.rrd", "b.rrd", "c.rrd"):
        env.rrd(name, {"x": [9, 9, 9]})
    with env.settings_path.open("a") as fh:
        fh.write("\n[delivery]\nmax_per_check = 1\n")
    env.write_thresholds(threshold(1, glob="*.rrd", name="<b>web</b>", actions=[{"type": "log", "file": "a.log"}]))
    check(env, store, at=T0)
    client = make_app(env, users=[("alice", "a-long-enough-pw-1", "admin")]).test_client()
    login = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', login)
    assert token is not None
    client.post("/login", data={"name": "alice", "password": "a-long-enough-pw-1", "csrf_token": token.group(1)})
    page = client.get("/deliveries").get_data(as_text=True)
    assert page.count('<tr class="delivery-sent">') == 2
    assert "digest: 2 more alarms from threshold 1 (&lt;b&gt;web&lt;/b&gt;): 2 ALARM FIRED" in page
