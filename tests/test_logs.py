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


def test_configure_logging_itself_masks_the_records_of_every_logger(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Masking is installed by ``configure_logging``, not by whatever ran before it: a record
    made before the call keeps the secret (so nothing else masks in this test), and after
    it a library's record is masked at creation, even in a handler without any filter
    (pytest's own capture handler)."""
    monkeypatch.setenv("SMSRECON_TEST_PARTNER_TOKEN", TOKEN)
    settings = load_settings(None, environ={})
    settings.secret("SMSRECON_TEST_PARTNER_TOKEN", "altegio.partners.default.token_env")
    library = logging.getLogger("some.library.client")
    with caplog.at_level(logging.INFO):
        library.info("calling with %s", TOKEN)
        assert caplog.records[-1].getMessage() == f"calling with {TOKEN}"
        configure_logging(LoggingSettings(level="INFO", format="text"))
        library.info("calling with %s", TOKEN)
    assert caplog.records[-1].getMessage() == "calling with ***"
    assert TOKEN not in caplog.records[-1].msg and not caplog.records[-1].args


def test_apscheduler_job_runs_are_quiet_at_info_and_shown_at_debug() -> None:
    """Inside `run` APScheduler logs every job run every few seconds; at INFO that buries
    the jobs' own summary lines, so its loggers show only warnings unless debugging."""
    configure_logging(LoggingSettings(level="INFO"))
    for name in ("apscheduler", "apscheduler.executors.default", "apscheduler.scheduler"):
        logger = logging.getLogger(name)
        assert not logger.isEnabledFor(logging.INFO), name
        assert logger.isEnabledFor(logging.WARNING), name
    assert logging.getLogger("smsrecon.jobs.dispatch").isEnabledFor(logging.INFO)
    configure_logging(LoggingSettings(level="DEBUG"))
    assert logging.getLogger("apscheduler.executors.default").isEnabledFor(logging.INFO)
