"""A registered secret is masked in every common encoding it can take in a log line, not
only as is or ``quote()``d."""

from __future__ import annotations

import base64
import html
import json
import logging
import re
from collections.abc import Iterator
from urllib.parse import quote, quote_plus, urlencode

import pytest

from pipeline import logsafe

#: Characters that every encoding below changes: "/", space, "+", "&", quotes, "<", "é".
SECRET = 'S3cr/t Tok+en&"q"<é>'


@pytest.fixture(autouse=True)
def registry() -> Iterator[None]:
    """A registry holding SECRET only, and the previous one back afterwards."""
    saved = (set(logsafe._secrets), set(logsafe._raw_secrets), logsafe._pattern)
    logsafe.clear_secrets()
    logsafe.register_secret(SECRET)
    yield
    logsafe._secrets.clear()
    logsafe._secrets.update(saved[0])
    logsafe._raw_secrets.clear()
    logsafe._raw_secrets.update(saved[1])
    logsafe._pattern = saved[2]


def _lower_escapes(text: str) -> str:
    return re.sub(r"%[0-9A-F]{2}", lambda m: m.group(0).lower(), text)


FORMS = {
    "exact": SECRET,
    "quote": quote(SECRET, safe=""),
    "quote default safe": quote(SECRET),
    "quote lower-case escapes": _lower_escapes(quote(SECRET, safe="")),
    "quote_plus": quote_plus(SECRET),
    "quote_plus lower-case escapes": _lower_escapes(quote_plus(SECRET)),
    "urlencode in a query": urlencode({"token": SECRET, "type": "1"}),
    "encodeURIComponent": quote(SECRET, safe="-_.!~*'()"),
    "base64": base64.b64encode(SECRET.encode()).decode(),
    "base64 url-safe": base64.urlsafe_b64encode(SECRET.encode()).decode(),
    "base64 unpadded": base64.b64encode(SECRET.encode()).decode().rstrip("="),
    "basic user:secret": "Authorization: Basic "
    + base64.b64encode(f"kannel:{SECRET}".encode()).decode(),
    "base64 of a longer document": base64.b64encode(
        json.dumps({"user": "a", "password": SECRET}).encode()
    ).decode(),
    "json ascii": json.dumps({"secret": SECRET}),
    "json utf-8": json.dumps({"secret": SECRET}, ensure_ascii=False),
    "json with escaped slashes": json.dumps({"secret": SECRET}).replace("/", "\\/"),
    "html": html.escape(SECRET),
    "html no quotes": html.escape(SECRET, quote=False),
    "html decimal apostrophe": html.escape(SECRET + "'").replace("&#x27;", "&#39;"),
}


@pytest.mark.parametrize("form", FORMS)
def test_every_common_encoding_of_a_secret_is_masked(form: str) -> None:
    text = f"POST https://gw.example/dlr?x={FORMS[form]} failed"
    masked = logsafe.mask_secrets(text)
    assert "***" in masked
    assert FORMS[form] not in masked
    # Nothing of the secret survives in any form.
    for other in FORMS.values():
        assert other not in masked


@pytest.mark.parametrize("form", FORMS)
def test_a_log_record_carrying_an_encoded_secret_is_masked(
    form: str, caplog: pytest.LogCaptureFixture
) -> None:
    logger = logging.getLogger("smsrecon.test.masking")
    handler = logging.StreamHandler()
    handler.addFilter(logsafe.SecretFilter())
    logger.addHandler(handler)
    try:
        with caplog.at_level(logging.INFO, logger=logger.name):
            logger.info("gateway said %s", FORMS[form])
    finally:
        logger.removeHandler(handler)
    [record] = [r for r in caplog.records if r.name == logger.name]
    assert FORMS[form] not in record.getMessage()


def test_basic_credentials_are_masked_even_when_never_registered() -> None:
    unknown = base64.b64encode(b"someone:never-registered-pw").decode()
    assert logsafe.mask_secrets(f"Authorization: Basic {unknown}") == "Authorization: Basic ***"


def test_ordinary_text_and_unrelated_base64_are_left_alone() -> None:
    text = (
        "projected 500 events in pipeline.projector.runner; id "
        + base64.b64encode(b"an unrelated value of some length").decode()
        + "; missing HTTP Basic credentials; Basic auth failed"
    )
    assert logsafe.mask_secrets(text) == text
