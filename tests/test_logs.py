"""Secrets read through settings never reach a log line, in either log format."""

from __future__ import annotations

import json
import logging

import pytest

from pipeline.config import LoggingSettings, load_settings
from pipeline.logs import configure_logging

TOKEN = "tok-7Hq2-secret-value"


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_a_secret_read_from_settings_is_masked_in_logs(
    fmt: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SMSRECON_TEST_PARTNER_TOKEN", TOKEN)
    settings = load_settings(None, environ={})
    configure_logging(LoggingSettings(level="INFO", format=fmt))
    token = settings.secret("SMSRECON_TEST_PARTNER_TOKEN", "altegio.partners.default.token_env")
    assert token == TOKEN
    try:
        raise RuntimeError(f"POST failed with Authorization: Bearer {token}")
    except RuntimeError:
        logging.getLogger("smsrecon.test").exception("sending with %s failed", token)
    err = capsys.readouterr().err
    assert TOKEN not in err
    assert "sending with *** failed" in err
    if fmt == "json":
        entry = json.loads(err.strip().splitlines()[0])
        assert entry["level"] == "ERROR" and entry["time"].endswith("Z")
