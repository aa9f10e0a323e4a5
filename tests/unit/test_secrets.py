"""Redaction of secrets in configuration text and diffs."""

from __future__ import annotations

from rrdalarm.common.secrets import redact_config_text


def test_a_redacted_secret_holding_a_unicode_line_break_is_masked_whole() -> None:
    # One TOML line, however str.splitlines would cut it: nothing after U+2028 may leak.
    shown = redact_config_text('+secret = "first\u2028second-half"\n', ["secret"])
    assert shown == '+secret = "***"\n'
