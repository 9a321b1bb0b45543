"""Keep secrets out of logs: a ``logging.Filter`` that masks every registered secret.

Code that reads a partner token or carrier secret calls ``register_secret(value)`` once;
from then on the value is replaced by ``***`` in every record the filter sees (the message,
its arguments, the formatted traceback and the stack), in each form it commonly takes in
text: as is, percent-encoded (upper- or lower-case escapes, ``quote`` or ``quote_plus``),
JSON- or HTML-escaped, and base64 (alone or inside Basic's ``user:secret``). Callback-URL
tokens, ``Bearer`` and ``Basic`` credentials are masked even when never registered
(``mask_url``), so a token that arrives from outside is safe too.

Why mask the rendered text rather than trust each call site: a token can reach a log through
an exception's text (an aiohttp error quoting the URL), a repr, a third-party library; only a
check at the point where records are made catches all of them.

Install it one of two ways:
- ``install()`` wraps the process's log-record factory, so every record from every logger is
  masked when it is created, whatever handlers exist now or are added later (pytest's
  capture included). This is what commands should call at start-up.
- ``SecretFilter()`` can be added to a handler (``handler.addFilter(SecretFilter())``) where
  only that handler's output must be protected. (On a logger it would miss records that
  propagate from child loggers: logging applies logger filters only at the logger of origin.)
"""

from __future__ import annotations

import base64
import binascii
import html
import json
import logging
import re
import threading
import traceback
from urllib.parse import quote, quote_plus

MASK = "***"

_CALLBACK_SEGMENT = re.compile(r"(/callback/)[^/?#\s\"'<>]+", re.IGNORECASE)
_BEARER = re.compile(r"(Bearer\s+)[^\s,;\"'<>]+", re.IGNORECASE)

_lock = threading.Lock()
_secrets: set[str] = set()
_raw_secrets: set[bytes] = set()
_pattern: re.Pattern[str] | None = None
_installed = False

#: Characters percent-encoders commonly leave alone: none, "/" (Python's quote), and
#: JavaScript's encodeURIComponent set.
_SAFE_SETS = ("", "/", "-_.!~*'()")
_PERCENT = re.compile(r"%([0-9A-F])([0-9A-F])")
#: A run of base64 (standard or URL-safe) long enough to hide a secret of 8 characters.
_BASE64_RUN = re.compile(r"[A-Za-z0-9+/_-]{12,}={0,2}")
#: HTTP Basic credentials, masked even when they carry no registered secret (only when
#: they decode to ``user:password``, so "Basic credentials" in prose is left alone).
_BASIC = re.compile(r"(Basic\s+)([A-Za-z0-9+/]{4,}={0,2})", re.IGNORECASE)


def encoded_forms(value: str) -> set[str]:
    """The ways ``value`` commonly appears in text: as is, percent-encoded (quote and
    quote_plus, with the usual safe sets), JSON-escaped and HTML-escaped. Base64 is found
    by decoding instead (``_mask_base64``), since its text depends on what precedes the
    secret (``user:secret``)."""
    forms = {value}
    for safe in _SAFE_SETS:
        forms.add(quote(value, safe=safe))
        forms.add(quote_plus(value, safe=safe))
    forms.add(json.dumps(value)[1:-1])
    forms.add(json.dumps(value, ensure_ascii=False)[1:-1])
    forms.add(json.dumps(value)[1:-1].replace("/", "\\/"))
    escaped = html.escape(value)
    forms.update({escaped, escaped.replace("&#x27;", "&#39;"), html.escape(value, quote=False)})
    return forms


def _form_pattern(form: str) -> str:
    """A regex for ``form`` whose percent escapes match in either case (``%2F``, ``%2f``)."""
    parts: list[str] = []
    last = 0
    for match in _PERCENT.finditer(form):
        parts.append(re.escape(form[last : match.start()]))
        hi, lo = match.groups()
        parts.append("%" + "".join(f"[{c}{c.lower()}]" if c.isalpha() else c for c in (hi, lo)))
        last = match.end()
    parts.append(re.escape(form[last:]))
    return "".join(parts)


def register_secret(value: str | None) -> None:
    """Mask ``value`` (in any of its common encodings) in every log record from now on."""
    global _pattern
    if not value:
        return
    with _lock:
        forms = encoded_forms(value)
        if forms <= _secrets:
            return
        _secrets.update(forms)
        # Base64 is matched on its decoded bytes, which may hold any of the text forms
        # (base64 of a JSON document holds the JSON-escaped secret).
        _raw_secrets.update(form.encode("utf-8") for form in forms)
        # Longest first, so a secret that contains another is masked whole.
        ordered = sorted(_secrets, key=len, reverse=True)
        _pattern = re.compile("|".join(_form_pattern(s) for s in ordered))


def clear_secrets() -> None:
    """Forget every registered secret (for tests that need a clean registry)."""
    global _pattern
    with _lock:
        _secrets.clear()
        _raw_secrets.clear()
        _pattern = None


def _decodes_to_a_secret(run: str, secrets: frozenset[bytes]) -> bool:
    """Whether a base64 run (from any of its first four offsets) decodes to bytes that hold
    a registered secret in any of its forms: ``base64("user:" + secret)`` holds it at no
    fixed text offset."""
    body = run.rstrip("=").replace("-", "+").replace("_", "/")
    for offset in range(4):
        chunk = body[offset:]
        if len(chunk) % 4 == 1:  # one stray character decodes to nothing: drop it
            chunk = chunk[:-1]
        try:
            decoded = base64.b64decode(chunk + "=" * (-len(chunk) % 4))
        except (binascii.Error, ValueError):
            continue
        if any(secret in decoded for secret in secrets):
            return True
    return False


def _mask_base64(text: str, secrets: frozenset[bytes]) -> str:
    return _BASE64_RUN.sub(
        lambda m: MASK if _decodes_to_a_secret(m.group(0), secrets) else m.group(0), text
    )


def mask_secrets(text: str) -> str:
    """``text`` with every registered secret (in its common encodings), callback token,
    Bearer and Basic credential masked."""
    pattern = _pattern
    if pattern is not None:
        text = pattern.sub(MASK, text)
        raw = frozenset(_raw_secrets)
        if raw:
            text = _mask_base64(text, raw)
    text = _BASIC.sub(_mask_basic, text)
    return mask_url(text)


def _mask_basic(match: re.Match[str]) -> str:
    try:
        decoded = base64.b64decode(match.group(2), validate=True)
    except (binascii.Error, ValueError):
        return match.group(0)
    return match.group(1) + MASK if b":" in decoded else match.group(0)


def mask_record(record: logging.LogRecord) -> logging.LogRecord:
    """Render the record's message once, masked, and drop the raw arguments.

    The arguments are rendered into the message here (rather than masked one by one) because
    a secret can hide inside any object's ``str()``; afterwards ``args`` is empty so no
    handler can render the unmasked originals again.
    """
    try:
        message = record.getMessage()
    except Exception:  # a broken format string must not lose the record, nor leak its args
        message = f"{record.msg!s} (unformattable log arguments)"
    record.msg = mask_secrets(message)
    record.args = None
    if record.exc_info and not record.exc_text:
        record.exc_text = "".join(traceback.format_exception(*record.exc_info)).rstrip("\n")
    if record.exc_text:
        record.exc_text = mask_secrets(record.exc_text)
        # The text now stands for the exception; keeping exc_info would let a formatter
        # that ignores exc_text render the unmasked original.
        record.exc_info = None
    if record.stack_info:
        record.stack_info = mask_secrets(record.stack_info)
    return record


class SecretFilter(logging.Filter):
    """Masks secrets in each record that passes; never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        mask_record(record)
        return True


def install() -> None:
    """Mask every log record of this process at creation (idempotent)."""
    global _installed
    with _lock:
        if _installed:
            return
        previous = logging.getLogRecordFactory()

        def masking_factory(*args: object, **kwargs: object) -> logging.LogRecord:
            return mask_record(previous(*args, **kwargs))

        logging.setLogRecordFactory(masking_factory)
        _installed = True


def mask_url(url: str) -> str:
    """``url`` (or any text holding URLs) with the segment after ``/callback/`` and any
    ``Bearer`` credential replaced by ***, for logs, errors and reports.

    Works without knowing the token, so a URL from outside (which may carry a token we have
    never seen) is safe to show as well.
    """
    masked = _CALLBACK_SEGMENT.sub(lambda m: m.group(1) + MASK, url)
    return _BEARER.sub(lambda m: m.group(1) + MASK, masked)
