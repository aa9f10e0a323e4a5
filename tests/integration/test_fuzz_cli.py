"""Fuzzing `rrdalarm validate` and `rrdalarm check --dry-run` with fuzzed thresholds files and --at values.

Through the command's own entry point in this process (Env.run): never an internal error (exit 70), and a
refusal is one line on stderr.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator

import pytest
from conftest import T0, Env, make_env, make_rrd, stderr_lines
from fuzzing import LEGACY_FIELD, NUMBERS, TEXT, Internal, fuzz, thresholds_text
from hypothesis import given
from hypothesis import strategies as st

from rrdalarm.config import settings as settings_module
from rrdalarm.config import thresholds as thresholds_module
from rrdalarm.config.lines import read_config_text


@pytest.fixture(scope="module")
def cli_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    env = make_env(tmp_path_factory.mktemp("fuzz-cli"))
    make_rrd(env.root / "a.rrd", {"x": [1, 9, 9, 9]}, end=T0)
    make_rrd(env.root / "h" / "b.rrd", {"x": [1, 2, 3]}, end=T0)
    # The fuzzed files are read at once (a file written a moment ago is otherwise watched for 0.1 s).
    with pytest.MonkeyPatch.context() as mp:
        for module in (settings_module, thresholds_module):
            mp.setattr(module, "read_config_text", functools.partial(read_config_text, quiet=0))
        yield env


LEGACY = st.lists(st.lists(LEGACY_FIELD, min_size=10, max_size=10).map("\t".join), max_size=3).map("\n".join)
COMMANDS = st.sampled_from([("validate",), ("check", "--dry-run", "--quiet"), ("check", "--dry-run", "--json")])


@fuzz("cli validate and check --dry-run", share=0.4)
@given(st.one_of(thresholds_text(), LEGACY, TEXT), COMMANDS,
       st.one_of(st.none(), NUMBERS.map(str), TEXT.filter(lambda t: "\x00" not in t)))
def test_validate_and_dry_run_never_fail_internally(cli_env: Env, text: str, command: tuple[str, ...],
                                                    at: str | None) -> None:
    cli_env.thresholds_path.write_bytes(text.encode("utf-8", "surrogatepass"))
    args = [*command, *(("--at", at) if at is not None and command[0] == "check" else ())]
    proc = cli_env.run(*args)
    if proc.returncode == 70:
        raise Internal(f"exit 70: {args} {text!r}\n{proc.stderr}")
    assert "Traceback" not in proc.stderr + proc.stdout, proc.stderr
    if proc.returncode == 2:
        assert len(stderr_lines(proc)) == 1, proc.stderr
