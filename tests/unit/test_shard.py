"""Shards of a split check: every series in exactly one, the same one in every process."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rrdalarm.sources.base import Shard

NAMES = st.text(min_size=1, max_size=60)
COUNTS = st.integers(min_value=1, max_value=64)


@given(NAMES, COUNTS)
def test_every_series_is_kept_by_exactly_one_shard(name: str, count: int) -> None:
    keepers = [i for i in range(count) if Shard(i, count).keeps(name)]
    assert keepers == [Shard.of(name, count)]


@settings(max_examples=5)  # each example starts an interpreter; many names per example
@given(st.lists(NAMES, min_size=1, max_size=200, unique=True))
def test_shards_are_the_same_in_another_process(names: list[str]) -> None:
    # Another interpreter has another string hash seed: a shard must not depend on it.
    code = ("import json, sys\nfrom rrdalarm.sources.base import Shard\n"
            "print(json.dumps([Shard.of(n, 7) for n in json.loads(sys.stdin.read())]))")
    out = subprocess.run([sys.executable, "-c", code], input=json.dumps(names), capture_output=True, text=True,
                         check=True, env={"PYTHONHASHSEED": "random"}).stdout
    assert json.loads(out) == [Shard.of(n, 7) for n in names]


def test_names_that_differ_in_one_digit_spread_over_the_shards() -> None:
    # CRC-32 alone would put h0 … h7 in one shard of 4 (it is linear in the bits that differ).
    used = {Shard.of(f"hosts/h{i}.rrd", 4) for i in range(8)}
    assert len(used) >= 3


@pytest.mark.parametrize(("index", "count"), [(-1, 4), (4, 4), (0, 0)])
def test_a_shard_that_does_not_exist_is_refused(index: int, count: int) -> None:
    with pytest.raises(ValueError, match="does not exist"):
        Shard(index, count)
