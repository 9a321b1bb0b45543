"""Keep secrets out of logs: a ``logging.Filter`` that masks every registered secret.

Code that reads a partner token or carrier secret calls ``register_secret(value)`` once;
from then on the value (and its percent-encoded form, as it appears in a URL) is replaced by
``***`` in every record the filter sees: the message, its arguments, the formatted traceback
and the stack. Callback-URL tokens and ``Bearer`` credentials are masked even when never
registered (``pipeline.dispatch.urls.mask_url``), so a token that arrives from outside is safe
too.

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

import logging
import re
import threading
import traceback
from urllib.parse import quote

from pipeline.dispatch.urls import MASK, mask_url

_lock = threading.Lock()
_secrets: set[str] = set()
_pattern: re.Pattern[str] | None = None
_installed = False


def register_secret(value: str | None) -> None:
    """Mask ``value`` (and its percent-encoded form) in every log record from now on."""
    global _pattern
    if not value:
        return
    with _lock:
        forms = {value, quote(value, safe="")}
        if forms <= _secrets:
            return
        _secrets.update(forms)
        # Longest first, so a secret that contains another is masked whole.
        ordered = sorted(_secrets, key=len, reverse=True)
        _pattern = re.compile("|".join(re.escape(s) for s in ordered))


def clear_secrets() -> None:
    """Forget every registered secret (for tests that need a clean registry)."""
    global _pattern
    with _lock:
        _secrets.clear()
        _pattern = None


def mask_secrets(text: str) -> str:
    """``text`` with every registered secret, callback token and Bearer credential masked."""
    pattern = _pattern
    if pattern is not None:
        text = pattern.sub(MASK, text)
    return mask_url(text)


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
