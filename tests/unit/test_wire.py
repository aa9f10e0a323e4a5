"""What crosses the broker: thresholds out and back equal (less their actions), answers out and back equal."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

from hypothesis import assume, given
from hypothesis import strategies as st

from rrdalarm.cluster.wire import (
    ShardAnswer,
    ShardRequest,
    decode_answer,
    decode_request,
    encode_answer,
    encode_request,
    read_thresholds,
    thresholds_text,
)
from rrdalarm.config.thresholds import threshold_problems
from rrdalarm.model.definitions import Threshold
from rrdalarm.sources.base import Outcome, OutcomeKind, Shard, SourceReport

WORDS = st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=20)
NAMES = st.from_regex(r"[a-z0-9_-]{1,8}(/[a-z0-9*?_-]{1,8}){0,2}\.rrd", fullmatch=True)
OPTIONAL: dict[str, Any] = {
    "name": WORDS,
    "ds": st.lists(st.from_regex(r"[a-z][a-z0-9_]{0,10}", fullmatch=True), max_size=3, unique=True),
    "cf": st.sampled_from(["AVERAGE", "MIN", "MAX", "LAST"]),
    "repetitions": st.integers(0, 10),
    "rearm": st.integers(0, 86400),
    "enabled": st.booleans(),
    "tree": st.sampled_from(["local", "collector-a", "b.2", "x_y"]),
    "severity": st.sampled_from(["critical", "warning", "info"]),
    "labels": st.dictionaries(st.from_regex(r"[a-z]{1,6}", fullmatch=True), WORDS, max_size=3),
    "description": WORDS,
    "unit": st.sampled_from(["", "B/s", "%"]),
    "scale": st.sampled_from([1, 8, 0.5]),
    "within": st.integers(0, 5),
    "keep_firing_for": st.sampled_from([0, 60, "10min"]),
    "no_data": st.sampled_from(["keep", "ok", "alarm"]),
    "stale_after": st.sampled_from([0, 900, "15min"]),
    "action": st.lists(st.fixed_dictionaries({"type": st.sampled_from(["log", "webhook"]),
                                              "url": st.just("https://user:secret@example.org/hook")}),
                       max_size=2),
}


@st.composite
def threshold_tables(draw: st.DrawFn) -> dict[str, Any]:
    table: dict[str, Any] = {
        "id": draw(st.integers(0, 2**31 - 1)), "glob": draw(NAMES), "type": draw(st.sampled_from(["above", "below"])),
        "value": draw(st.one_of(st.floats(-1e12, 1e12, allow_nan=False), st.sampled_from(["80M", "1.5G", "64Ki"]))),
    }
    table.update(draw(st.fixed_dictionaries({}, optional=OPTIONAL)))
    window = draw(st.sampled_from([None, ("now-1h", "now"), ("end-1d", "now-5min"), ("now-3h", "now")]))
    if window:
        table["start"], table["end"] = window
    return table


def parsed(table: dict[str, Any]) -> Threshold:
    threshold, errors = threshold_problems(table, "thresholds.toml", ("rrd", "ntopng"))
    assume(threshold is not None)
    assert threshold is not None and not errors
    return threshold


@given(st.lists(threshold_tables(), min_size=1, max_size=4, unique_by=lambda t: t["id"]))
def test_thresholds_sent_are_read_back_the_same_without_their_actions(tables: list[dict[str, Any]]) -> None:
    sent = [parsed(t) for t in tables]
    text = thresholds_text(sent)
    assert "secret" not in text  # action parameters stay on the coordinator
    got = read_thresholds(json.loads(json.dumps(text)), "collector-a")
    assert got == [replace(t, actions=()) for t in sent]


KINDS = st.sampled_from(list(OutcomeKind))
OUTCOMES = st.builds(
    Outcome, st.integers(0, 2**31 - 1), NAMES, WORDS, KINDS, st.none() | st.floats(allow_nan=False),
    st.none() | st.integers(0, 2**40), WORDS, st.booleans(),
    st.none() | st.tuples(st.integers(0, 99), st.integers(0, 99)))


@given(st.lists(OUTCOMES, max_size=10), st.integers(0, 10**6), st.integers(0, 10**6),
       st.dictionaries(st.integers(0, 99), st.integers(0, 10**6), max_size=4), st.lists(WORDS, max_size=2), WORDS)
def test_answers_are_read_back_the_same(outcomes: list[Outcome], files: int, series: int, watched: dict[int, int],
                                        warnings: list[str], error: str) -> None:
    report = SourceReport(outcomes, files, series, warnings, watched)
    answer = ShardAnswer("c1", "collector-a", 3, "rrdalarm.a.1@host", 0.25, report, error)
    assert decode_answer(json.loads(json.dumps(encode_answer(answer)))) == answer


@given(st.sets(st.tuples(st.integers(0, 99), NAMES, WORDS), max_size=6), st.booleans(), st.integers(1, 8))
def test_requests_are_read_back_the_same(firing: set[tuple[int, str, str]], want_ok: bool, count: int) -> None:
    request = ShardRequest("c1", "b.2", "[[threshold]]\n", 1_700_000_040, Shard(count - 1, count), want_ok,
                           frozenset(firing))
    assert decode_request(json.loads(json.dumps(encode_request(request)))) == request
