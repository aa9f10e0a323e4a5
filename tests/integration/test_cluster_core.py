"""The cluster's core on one machine: the `tree` field, [cluster] settings, sharded RRD checks, the trees' store.

What needs real workers is in tests/e2e/test_cluster.py.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

import pytest
from conftest import T0, Env, threshold
from redis_server import RedisServer

from rrdalarm.config.cluster import broker_urls
from rrdalarm.config.settings import load_settings
from rrdalarm.config.thresholds import load_thresholds, parse_thresholds_toml
from rrdalarm.config.writing import thresholds_to_toml
from rrdalarm.model.definitions import Settings, Threshold
from rrdalarm.model.errors import ConfigError
from rrdalarm.model.records import WorkerSeen
from rrdalarm.sources.base import Outcome, OutcomeKind, ProgressCallback, SeriesKey, Shard, Source, SourceReport
from rrdalarm.sources.rrd import RRDSource
from rrdalarm.store.database import Store
from rrdalarm.store.workers import record_workers, tree_workers

SECRET = "s3cret-pw"

# ---------------------------------------------------------------- the tree field


def test_the_tree_is_read_and_written_and_local_is_left_out(tmp_path: Path) -> None:
    text = threshold(1, tree="collector-a") + threshold(2, glob="b.rrd")
    a, b = parse_thresholds_toml(text, "t.toml")
    assert (a.tree, b.tree) == ("collector-a", "local")
    written = thresholds_to_toml([a, b])
    assert written.count("tree") == 1 and 'tree = "collector-a"' in written
    assert parse_thresholds_toml(written, "t.toml") == [a, b]


@pytest.mark.parametrize("bad", ['"a b"', '"x/y"', '""', "3", '"' + "t" * 65 + '"'])
def test_a_bad_tree_name_is_a_located_error(tmp_path: Path, bad: str) -> None:
    path = tmp_path / "t.toml"
    path.write_text(threshold(7) + f"tree = {bad}\n")
    with pytest.raises(ConfigError) as info:
        load_thresholds(path)
    assert info.value.field == "tree" and info.value.line == 8
    assert str(info.value).startswith(f"{path}:8: field 'tree': threshold 7: must be a tree name")


def test_a_tree_without_a_broker_is_a_configuration_error_naming_the_threshold(env: Env) -> None:
    env.rrd("a.rrd", {"x": [1, 9]})
    env.write_thresholds(threshold(1) + threshold(4, source="ntopng", schema="host:traffic", query="ifid:0",
                                                    glob="", tree="probe-1").replace('glob = ""\n', ""))
    for command in (("check", "--at", str(T0)), ("validate",)):
        p = env.run(*command)
        assert p.returncode == 2, p.stdout + p.stderr
        assert p.stderr.strip().count("\n") == 0
        assert "field 'tree'" in p.stderr and "threshold 4: tree 'probe-1' needs [cluster] broker" in p.stderr


def test_only_this_machines_thresholds_are_counted_by_validate(env: Env, tmp_path: Path) -> None:
    env.rrd("a.rrd", {"x": [1]})
    env.settings_path.write_text(env.settings_path.read_text() + '[cluster]\nbroker = "redis://127.0.0.1:1/0"\n')
    env.write_thresholds(threshold(1) + threshold(2, glob="elsewhere/*.rrd", tree="b"))
    p = env.run("validate")
    assert p.returncode == 0, p.stderr
    assert "files matched: 1: 1" in p.stdout and "warning" not in p.stderr


# ---------------------------------------------------------------- [cluster] settings


def settings_with(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "rrdalarm.toml"
    path.write_text(body, encoding="utf-8")
    return path


def test_cluster_settings_defaults_and_forms(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_settings(settings_with(tmp_path, "")).cluster.broker is None
    s = load_settings(settings_with(tmp_path, '[cluster]\nbroker = "redis://:pw@h:6379/0"\nanswer_timeout = 30\n'))
    assert (s.cluster.shards_per_tree, s.cluster.answer_timeout, s.cluster.redo_delay) == (4, 30.0, 15.0)
    assert broker_urls(s) == ("redis://:pw@h:6379/0", "redis://:pw@h:6379/0")
    (tmp_path / "broker-url").write_text("redis://:from-file@h:6379/1\n")
    s = load_settings(settings_with(tmp_path, '[cluster]\nbroker = { file = "broker-url" }\nredo_after = 5\n'
                                              'result_backend = { env = "RRDALARM_TEST_BACKEND" }\n'))
    monkeypatch.setenv("RRDALARM_TEST_BACKEND", "redis://h:6379/2")
    assert broker_urls(s) == ("redis://:from-file@h:6379/1", "redis://h:6379/2")
    assert s.cluster.redo_delay == 5.0


def test_a_rabbitmq_broker_needs_a_result_backend_of_its_own(tmp_path: Path) -> None:
    s = load_settings(settings_with(tmp_path, '[cluster]\nbroker = "amqp://u:secret@mq:5672//"\n'))
    with pytest.raises(ConfigError) as got:
        broker_urls(s)
    assert "amqp:// broker keeps no answers: set [cluster] result_backend" in str(got.value)
    assert "secret" not in str(got.value)
    s = load_settings(settings_with(tmp_path, '[cluster]\nbroker = "amqp://u:secret@mq:5672//"\n'
                                              'result_backend = "redis://r:6379/1"\n'))
    assert broker_urls(s) == ("amqp://u:secret@mq:5672//", "redis://r:6379/1")


@pytest.mark.parametrize(("body", "key", "words"), [
    (f'broker = "not a url {SECRET}"', "broker", "must be a URL such as redis://"),
    ("broker = 5", "broker", "must be a string"),
    ('broker = "redis://h"\nshards_per_tree = 0', "shards_per_tree", "from 1 to 256"),
    ('broker = "redis://h"\nanswer_timeout = -1', "answer_timeout", "above 0"),
    ('broker = "redis://h"\nanswer_timeout = 10\nredo_after = 10', "redo_after", "shorter than answer_timeout"),
    ('result_backend = "redis://h"', "result_backend", "needs a broker"),
    ('broker = "redis://h"\nbrokers = 1', "brokers", "unknown key in [cluster]"),
])
def test_cluster_settings_mistakes_are_located_and_hide_the_password(tmp_path: Path, body: str, key: str,
                                                                    words: str) -> None:
    path = settings_with(tmp_path, "workers = 1\n[cluster]\n" + body + "\n")
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    assert info.value.field == key and info.value.line is not None and words in str(info.value)
    assert SECRET not in str(info.value)


# ---------------------------------------------------------------- sources over shards


def _key(o: Outcome) -> tuple[object, ...]:
    return (o.threshold, o.series, o.ds, o.kind, o.value, o.time, o.message)


def test_the_shards_of_an_rrd_check_together_are_the_whole_check(env: Env) -> None:
    for i in range(40):
        env.rrd(f"hosts/h{i}/bytes.rrd", {"in": [1, 9 if i % 3 == 0 else 1], "out": [1, 1]})
    env.write_thresholds(threshold(1, glob="hosts/*/bytes.rrd") + threshold(2, glob="nothing/*.rrd")
                         + threshold(3, glob="hosts/h1/*.rrd", start=1_800_000_000))
    [t1, t2, t3] = load_thresholds(env.thresholds_path)
    firing = frozenset({(1, "hosts/h3/bytes.rrd", "in"), (1, "hosts/gone/bytes.rrd", "in"),
                        (2, "nothing/x.rrd", "in")})
    source = RRDSource(env.settings())
    whole = source.check([t1, t2, t3], T0, firing=firing, want_ok=False)
    parts = [source.check_shard([t1, t2, t3], T0, firing=frozenset(k for k in firing if Shard(i, 4).keeps(k[1])),
                                want_ok=False, shard=Shard(i, 4)) for i in range(4)]
    merged = SourceReport()
    for part in parts:
        merged.add(part)
    assert sorted(map(_key, merged.outcomes)) == sorted(map(_key, whole.outcomes))
    assert (merged.files_checked, merged.series_checked, merged.watched) == (
        whole.files_checked, whole.series_checked, whole.watched)
    assert all(p.files_checked < whole.files_checked for p in parts)
    kinds = {(o.threshold, o.kind, o.message) for o in whole.outcomes if o.kind is not OutcomeKind.BREACH}
    assert (1, OutcomeKind.GONE, "file removed") in kinds
    assert (2, OutcomeKind.ERROR, "glob matches no file; state kept") in kinds
    # The glob's and the window's errors come once, from shard 0.
    for tid in (2, 3):
        said = [i for i, p in enumerate(parts) for o in p.outcomes if o.threshold == tid and o.ds == ""]
        assert said == [0], (tid, [o for o in whole.outcomes if o.threshold == tid])


class Whole(Source):
    """A source that cannot shard: it says how often it ran and with which firing series."""

    name = "whole"
    runs: ClassVar[list[frozenset[SeriesKey]]] = []

    def check(self, thresholds: Sequence[Threshold], now: int, *, firing: frozenset[SeriesKey], want_ok: bool,
              progress: ProgressCallback | None = None, shard: Shard | None = None) -> SourceReport:
        assert shard is None
        Whole.runs.append(firing)
        return SourceReport([Outcome(t.id, "s", "", OutcomeKind.OK) for t in thresholds], 1, 1)


def test_a_source_that_cannot_shard_runs_whole_in_shard_0() -> None:
    t = parse_thresholds_toml(threshold(1), "t.toml")[0]
    keys = frozenset({(1, "s1", ""), (1, "s2", "")})
    assert {Whole.shard_of(k[1], 4) for k in keys} == {0}  # so shard 0 gets all its firing series
    got = [Whole(Settings()).check_shard([t], T0, firing=keys, want_ok=True, shard=Shard(i, 4)) for i in range(4)]
    assert [len(r.outcomes) for r in got] == [1, 0, 0, 0]
    assert Whole.runs == [keys]


# ---------------------------------------------------------------- the trees' workers in the store


@pytest.mark.usefixtures("any_database")
def test_workers_are_recorded_updated_and_listed(env: Env, store: Store) -> None:
    record_workers(store, [WorkerSeen("a", "rrdalarm.a.1@h1", T0, 10, 0.5, 1.5),
                           WorkerSeen("b", "rrdalarm.b.2@h2", T0, 0, None, 2.0)])
    record_workers(store, [WorkerSeen("a", "rrdalarm.a.1@h1", T0 + 60, 12, 0.25, 1.0),
                           WorkerSeen("a", "rrdalarm.a.3@h3", T0 + 60, 0, None, 1.0)])
    assert tree_workers(store) == [
        WorkerSeen("a", "rrdalarm.a.1@h1", T0 + 60, 12, 0.25, 1.0),
        WorkerSeen("a", "rrdalarm.a.3@h3", T0 + 60, 0, None, 1.0),
        WorkerSeen("b", "rrdalarm.b.2@h2", T0, 0, None, 2.0)]
    record_workers(store, [WorkerSeen("a", "rrdalarm.a.1@h1", T0 + 8 * 86400)])
    assert [w.worker for w in tree_workers(store)] == ["rrdalarm.a.1@h1"]  # a week unseen: forgotten
    p = env.run("trees")
    assert p.returncode == 0, p.stderr
    assert p.stdout.split()[:2] == ["a", "rrdalarm.a.1@h1"] and "0 files" in p.stdout
    assert json.loads(env.run("trees", "--json").stdout)["worker"] == "rrdalarm.a.1@h1"


@pytest.mark.usefixtures("any_database")
def test_migration_0011_goes_up_and_down(store: Store) -> None:
    from alembic import command
    from sqlalchemy import inspect

    from rrdalarm.store.migrate import alembic_config

    assert inspect(store.engine).has_table("tree_workers")
    command.downgrade(alembic_config(store.engine), "0010")
    assert not inspect(store.engine).has_table("tree_workers")
    store.migrate()
    record_workers(store, [WorkerSeen("a", "w", T0, 1, 0.1, 0.2)])
    assert tree_workers(store) == [WorkerSeen("a", "w", T0, 1, 0.1, 0.2)]


def test_no_worker_seen_yet(env: Env) -> None:
    p = env.run("trees")
    assert p.returncode == 0 and p.stdout.startswith("no worker seen yet")


# ---------------------------------------------------------------- brokers that cannot be used


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _with_broker(env: Env, url: str, **cluster: object) -> None:
    extra = "".join(f"{k} = {v}\n" for k, v in cluster.items())
    env.settings_path.write_text(env.settings_path.read_text() + f'[cluster]\nbroker = "{url}"\n{extra}')


def test_a_worker_with_an_unreachable_broker_says_so_in_one_line(env: Env) -> None:
    _with_broker(env, f"redis://:{SECRET}@127.0.0.1:{_closed_port()}/0")
    p = env.run("worker", "--tree", "a", "--rrd-root", str(env.root))
    assert p.returncode == 69, p.stderr
    [line] = [ln for ln in p.stderr.splitlines() if ln.startswith("rrdalarm:")]
    assert "unreachable" in line and "redis://:***@127.0.0.1" in line
    assert SECRET not in p.stderr and "Traceback" not in p.stderr


def test_a_worker_with_a_broker_url_no_transport_takes_is_a_configuration_error(env: Env) -> None:
    _with_broker(env, f"nosuch://u:{SECRET}@host/0")
    p = env.run("worker", "--tree", "a", "--rrd-root", str(env.root))
    assert p.returncode == 2, p.stderr
    assert "not a broker URL" in p.stderr and SECRET not in p.stderr and "Traceback" not in p.stderr


def test_a_check_whose_broker_is_down_still_checks_this_machine(env: Env) -> None:
    env.rrd("a.rrd", {"x": [1, 9]})
    _with_broker(env, f"redis://:{SECRET}@127.0.0.1:{_closed_port()}/0", answer_timeout=5)
    env.write_thresholds(threshold(1) + threshold(2, glob="b/*.rrd", tree="b"))
    p = env.run("check", "--json", "--at", str(T0))
    assert p.returncode == 1, p.stderr
    rows = {r["threshold"]: r for r in json.loads(p.stdout)["results"]}
    assert rows[1]["status"] == "ALARM FIRED"
    assert rows[2]["status"] == "ERROR" and rows[2]["file"] == "b/*.rrd"
    assert rows[2]["message"].startswith("tree b: not sent: broker redis://:***@127.0.0.1:")
    assert SECRET not in p.stdout + p.stderr


def test_a_coordinator_polls_its_answers_and_subscribes_to_none(tmp_path: Path, redis_server: RedisServer) -> None:
    """Celery's Redis backend subscribes per task sent; that listener is what logs CRITICAL "must be
    restarted" at every check while Redis is away. The coordinator polls instead."""
    import redis

    from rrdalarm.cluster.app import TASK, make_app

    settings = load_settings(settings_with(tmp_path, f'[cluster]\nbroker = "{redis_server.url}"\n'))
    app = make_app(settings)
    sent = app.send_task(TASK, args=[{}], queue="rrdalarm.tree.nobody", task_id="t-1")
    client = redis.Redis.from_url(redis_server.url)
    assert client.pubsub_numsub("celery-task-meta-t-1") == [(b"celery-task-meta-t-1", 0)]
    assert not sent.ready()
    app.backend.store_result("t-1", {"v": 1}, "SUCCESS")
    assert sent.ready() and sent.result == {"v": 1}
    sent.forget()
    assert client.get("celery-task-meta-t-1") is None


def test_validate_names_a_rabbitmq_broker_without_a_result_backend(env: Env) -> None:
    _with_broker(env, f"amqp://u:{SECRET}@127.0.0.1:5672//")
    env.write_thresholds(threshold(1, glob="b/*.rrd", tree="b"))
    for command in (["validate"], ["check", "--quiet"]):
        p = env.run(*command)
        assert p.returncode == 2, p.stderr
        assert "field 'result_backend': a amqp:// broker keeps no answers" in p.stderr
        assert SECRET not in p.stderr + p.stdout and "Traceback" not in p.stderr
