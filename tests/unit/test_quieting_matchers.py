"""Which series a silence's matchers cover."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rrdalarm.config.thresholds import parse_thresholds_file
from rrdalarm.control.silences import ControlError, check_matchers
from rrdalarm.model.control import Matchers
from rrdalarm.model.errors import ConfigError
from rrdalarm.rules.quieting import Cover, Quieting, matches, series_glob_problem

NAMES = st.text("ab/*.", max_size=6)


def test_no_matcher_matches_everything() -> None:
    assert matches(Matchers(), 7, "any/file.rrd", "ds", {}, "info")


@given(threshold=st.integers(1, 3), series=NAMES, ds=st.sampled_from(["x", "y"]),
       severity=st.sampled_from(["critical", "warning", "info"]),
       team=st.sampled_from([None, "web", "db"]),
       m_threshold=st.none() | st.integers(1, 3), m_ds=st.none() | st.sampled_from(["x", "y"]),
       m_severity=st.none() | st.sampled_from(["critical", "warning", "info"]),
       m_team=st.none() | st.sampled_from(["web", "db"]))
def test_every_matcher_given_must_agree(threshold: int, series: str, ds: str, severity: str, team: str | None,
                                        m_threshold: int | None, m_ds: str | None, m_severity: str | None,
                                        m_team: str | None) -> None:
    labels = {"team": team} if team else {}
    m = Matchers(m_threshold, None, m_ds, {"team": m_team} if m_team else {}, m_severity)
    expected = ((m_threshold is None or m_threshold == threshold) and (m_ds is None or m_ds == ds)
                and (m_severity is None or m_severity == severity) and (m_team is None or m_team == team))
    assert matches(m, threshold, series, ds, labels, severity) is expected


def test_series_glob_is_the_whole_name_and_case_sensitive() -> None:
    m = Matchers(series="web/*.rrd")
    assert matches(m, 1, "web/a.rrd", "x", {}, "warning")
    assert not matches(m, 1, "web/sub/a.rrd", "x", {}, "warning")  # as in thresholds: * stays in its folder
    deep = Matchers(series="web/**/*.rrd")
    assert matches(deep, 1, "web/a.rrd", "x", {}, "warning") and matches(deep, 1, "web/s/t/a.rrd", "x", {}, "i")
    assert matches(Matchers(series="h[0-9]/x?.rrd"), 1, "h1/xy.rrd", "x", {}, "i")
    assert not matches(Matchers(series="h[!0-9]/x.rrd"), 1, "h1/x.rrd", "x", {}, "i")
    assert not matches(m, 1, "Web/a.rrd", "x", {}, "warning")
    assert not matches(m, 1, "web/a.rrd.bak", "x", {}, "warning")


def test_quieting_names_every_cover_and_the_latest_end() -> None:
    q = Quieting((Cover("1", Matchers(threshold=1), 100), Cover("maintenance:night", Matchers(), 300),
                  Cover("2", Matchers(threshold=2), 900)))
    got = q.of(1, "a.rrd", "x", {}, "warning")
    assert got is not None and got.refs == ("1", "maintenance:night") and got.until == 300
    assert Quieting().of(1, "a.rrd", "x", {}, "warning") is None and not Quieting()


@pytest.mark.parametrize("pattern", ["[z-a]", "[!]", "x[a-\\]y]"])
def test_a_series_glob_the_matcher_cannot_read_is_refused_and_never_raises(pattern: str) -> None:
    # Found by fuzzing: a silence or window series such as "[z-a]" passed and crashed every check (re.error).
    assert series_glob_problem(pattern) is not None
    assert not matches(Matchers(series=pattern), 1, "z", "ds", {}, "info")
    with pytest.raises(ControlError, match="series"):
        check_matchers(Matchers(series=pattern), [])
    with pytest.raises(ConfigError, match="series"):
        parse_thresholds_file(f'[[maintenance]]\nname = "w"\nschedule = "0 3 * * *"\nduration = "1h"\n'
                              f'comment = "c"\nseries = {json.dumps(pattern)}\n', "t.toml")
