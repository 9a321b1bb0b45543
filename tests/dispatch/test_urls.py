"""Callback URL choice, the SSRF allow-list, and masking the partner token."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest

from pipeline import logsafe
from pipeline.dispatch.urls import callback_url, check_url, mask_token
from pipeline.logsafe import mask_url

ALLOWED = ["app.alteg.io"]
INSECURE = ["127.0.0.1", "localhost", "::1"]
TOKEN = "s3cr3t-Partner_Token"


def check(url: str) -> str | None:
    return check_url(url, allowed_hosts=ALLOWED, insecure_hosts=INSECURE)


def test_message_url_wins_over_the_default() -> None:
    url = "https://app.alteg.io/smsprovider/status/callback/other"
    assert callback_url(url, base_url="https://x.example", partner_token=TOKEN) == url


@pytest.mark.parametrize("message_url", [None, "", "   "])
def test_default_callback_url_carries_the_partner_token(message_url: str | None) -> None:
    got = callback_url(message_url, base_url="https://app.alteg.io/", partner_token=TOKEN)
    assert got == f"https://app.alteg.io/smsprovider/status/callback/{TOKEN}"


def test_default_callback_url_percent_encodes_a_token_that_would_reshape_the_path() -> None:
    got = callback_url(None, base_url="https://app.alteg.io", partner_token="a/b?c")
    assert got == "https://app.alteg.io/smsprovider/status/callback/a%2Fb%3Fc"


def test_default_callback_url_needs_a_token() -> None:
    with pytest.raises(ValueError):
        callback_url(None, base_url="https://app.alteg.io", partner_token="")


@pytest.mark.parametrize(
    "url",
    [
        "https://app.alteg.io/smsprovider/status/callback/tok",
        "https://APP.Alteg.IO/smsprovider/status/callback/tok",
        "http://127.0.0.1:8123/smsprovider/status/callback/tok",
        "http://localhost:8123/smsprovider/status/callback/tok",
        "http://[::1]:8123/smsprovider/status/callback/tok",
    ],
)
def test_allowed_urls(url: str) -> None:
    assert check(url) is None


@pytest.mark.parametrize(
    ("url", "reason_part"),
    [
        ("https://app.alteg.io:8443/smsprovider/status/callback/tok", "port 8443"),
        ("https://app.alteg.io/cb?x=1", "query"),
        ("https://app.alteg.io/cb", "path"),
        ("https://127.0.0.1:8443/smsprovider/status/callback/tok", "not in altegio.allowed_hosts"),
    ],
)
def test_urls_allowed_before_the_path_and_port_policy_are_refused(
    url: str, reason_part: str
) -> None:
    reason = check(url)
    assert reason is not None and reason_part in reason


@pytest.mark.parametrize(
    ("url", "reason_part"),
    [
        ("https://evil.com/smsprovider/status/callback/tok", "not in altegio.allowed_hosts"),
        ("https://app.alteg.io@evil.com/", "credentials"),
        ("https://user:pw@app.alteg.io/", "credentials"),
        ("https://app.alteg.io%2f@evil.com/", "credentials"),
        ("https://app.alteg.io.evil.com/", "not in altegio.allowed_hosts"),
        ("https://evil-app.alteg.io/", "not in altegio.allowed_hosts"),
        ("https://alteg.io/", "not in altegio.allowed_hosts"),
        ("https://evil.com/#@app.alteg.io", "not in altegio.allowed_hosts"),
        ("https://app.alteg.io./cb", "ends with a dot"),
        ("http://app.alteg.io/cb", "plain http"),
        ("ftp://app.alteg.io/cb", "scheme"),
        ("file:///etc/passwd", "scheme"),
        ("javascript:alert(1)", "scheme"),
        ("/smsprovider/status/callback/tok", "not absolute"),
        ("//app.alteg.io/cb", "not absolute"),
        ("https://app.alteg.io\\@evil.com/", "backslash"),
        ("https://app.alteg.io /cb", "whitespace"),
        ("https://app.alteg.io/\r\nHost: evil", "control character"),
        ("", "empty"),
        ("http://127.0.0.2/cb", "plain http"),
        ("http://2130706433/cb", "plain http"),
        ("http://0x7f000001/cb", "plain http"),
        ("http://169.254.169.254/latest/meta-data", "plain http"),
    ],
)
def test_refused_urls(url: str, reason_part: str) -> None:
    reason = check(url)
    assert reason is not None
    assert reason_part in reason


def test_a_lookalike_host_in_another_script_is_refused() -> None:
    reason = check("https://\u0430pp.alteg.io/cb")  # Cyrillic "а"
    assert reason is not None and "xn--" in reason


def test_unicode_allowed_hosts_match_their_a_label() -> None:
    kwargs = {"allowed_hosts": ["bücher.example"], "insecure_hosts": []}
    path = "/smsprovider/status/callback/tok"
    assert check_url(f"https://xn--bcher-kva.example{path}", **kwargs) is None
    assert check_url(f"https://BÜCHER.example{path}", **kwargs) is None
    assert check_url(f"https://bucher.example{path}", **kwargs) is not None


def test_insecure_hosts_are_off_by_default() -> None:
    assert check_url("http://127.0.0.1:1/cb", allowed_hosts=ALLOWED, insecure_hosts=[]) is not None


def test_a_reason_never_shows_the_token() -> None:
    for url in (
        f"https://evil.com/smsprovider/status/callback/{TOKEN}",
        f"http://app.alteg.io/smsprovider/status/callback/{TOKEN}",
        f"https://app.alteg.io./smsprovider/status/callback/{TOKEN}",
        f"https://{TOKEN}@evil.com/smsprovider/status/callback/{TOKEN}",
    ):
        reason = check(url)
        assert reason is not None and TOKEN not in reason


def test_mask_token_hides_raw_and_percent_encoded_forms() -> None:
    token = "a/b c"
    text = f"sent to https://h/callback/{token} and https://h/callback/a%2Fb%20c"
    masked = mask_token(text, token)
    assert "a/b c" not in masked and "a%2Fb%20c" not in masked
    assert masked.count("***") == 2


def test_mask_token_with_an_empty_token_changes_nothing() -> None:
    assert mask_token("nothing secret", "") == "nothing secret"


def test_mask_url_hides_the_callback_segment_and_keeps_the_rest() -> None:
    url = f"https://app.alteg.io:443/smsprovider/status/callback/{TOKEN}?x=1#f"
    assert mask_url(url) == "https://app.alteg.io:443/smsprovider/status/callback/***?x=1#f"


def test_mask_url_hides_bearer_credentials_in_any_text() -> None:
    text = f"POST failed: headers={{'Authorization': 'Bearer {TOKEN}'}}"
    masked = mask_url(text)
    assert TOKEN not in masked
    assert "Bearer ***" in masked


def test_mask_url_works_on_several_urls_in_one_text() -> None:
    text = f"a=https://h/callback/{TOKEN} b=https://h/smsprovider/status/callback/{TOKEN}/"
    assert TOKEN not in mask_url(text)


# -- masking in logs (pipeline.logsafe builds on mask_url) ------------------------------------


@pytest.fixture
def secret_registry() -> Iterator[None]:
    logsafe.clear_secrets()
    yield
    logsafe.clear_secrets()


def _capture(logger_name: str) -> tuple[logging.Logger, io.StringIO, logging.Handler]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    handler.addFilter(logsafe.SecretFilter())
    logger = logging.getLogger(logger_name)
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    return logger, stream, handler


def test_filter_masks_a_registered_secret_in_message_args_and_traceback(
    secret_registry: None,
) -> None:
    logsafe.register_secret(TOKEN)
    logger, stream, handler = _capture("smsrecon.test.logsafe.filter")
    try:
        logger.info("token is %s", TOKEN)
        logger.warning("mapping %(t)s", {"t": TOKEN})
        logger.info("object %r", {"auth": TOKEN.upper(), "raw": TOKEN})
        try:
            raise RuntimeError(f"connect failed for key {TOKEN}")
        except RuntimeError:
            logger.exception("request failed")
    finally:
        logging.getLogger("smsrecon.test.logsafe.filter").removeHandler(handler)
    output = stream.getvalue()
    assert TOKEN not in output
    assert output.count("***") == 4
    assert "RuntimeError: connect failed for key ***" in output
    assert TOKEN.upper() in output  # only the secret itself is masked


def test_filter_masks_unregistered_callback_tokens_and_bearer(secret_registry: None) -> None:
    logger, stream, handler = _capture("smsrecon.test.logsafe.unregistered")
    try:
        logger.info("POST %s", "https://app.alteg.io/smsprovider/status/callback/abc123")
        logger.info("headers %s", {"Authorization": "Bearer abc123"})
    finally:
        logger.removeHandler(handler)
    assert "abc123" not in stream.getvalue()


def test_install_masks_records_from_every_logger(
    secret_registry: None, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = logging.getLogRecordFactory()
    monkeypatch.setattr(logsafe, "_installed", False)
    try:
        logsafe.install()
        logsafe.install()  # idempotent: one wrapper only
        logsafe.register_secret("a/b c")
        with caplog.at_level(logging.INFO):
            logging.getLogger("some.library.deep.child").info("url %s", "https://h/x/a%2Fb%20c")
            logging.getLogger("other").info("raw a/b c")
    finally:
        logging.setLogRecordFactory(original)
    assert [r.getMessage() for r in caplog.records] == ["url https://h/x/***", "raw ***"]
