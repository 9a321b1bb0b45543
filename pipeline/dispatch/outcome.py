"""What an answer from Altegio means, as a typed value: the one place answers are judged.

``classify_response`` and ``classify_network_error`` are pure: given a status code, headers
and body (or the exception) they say what the dispatcher does next. The dispatcher then only
has to act on the value, and the table in docs/dispatcher.md is this module, read aloud.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime

from pipeline.dispatch.backoff import parse_retry_after
from pipeline.dispatch.model import Outcome
from pipeline.mismatches.kinds import (
    KIND_FORBIDDEN,
    KIND_NOT_FOUND,
    KIND_REJECTED,
    KIND_TOKEN_INVALID,
    KIND_VALIDATION,
)

#: Bodies are quoted into errors and mismatches up to this many characters.
MAX_TEXT = 300


def _one_line(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 1] + "…"


def read_error_body(body: bytes, content_type: str | None = None) -> tuple[int | None, str]:
    """(Altegio error code, message) from an error body: JSON, text or empty; never raises.

    Altegio documents the codes but not the body's shape, so the JSON reader looks for the
    usual names (``code``/``error_code``, ``message``/``error``/``errors``/``meta.message``)
    and otherwise quotes the body as text.
    """
    if not body:
        return None, ""
    text = body.decode("utf-8", errors="replace").strip()
    try:
        data = json.loads(text)
    except ValueError:
        return None, _one_line(text)
    code, message = _code_and_message(data)
    return code, _one_line(message if message else text)


def _code_and_message(data: object) -> tuple[int | None, str]:
    if isinstance(data, list) and data:
        return _code_and_message(data[0])
    if not isinstance(data, dict):
        return None, ""
    code = None
    for key in ("code", "error_code", "errorCode"):
        value = data.get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            code = value
            break
        if isinstance(value, str) and value.isdigit():
            code = int(value)
            break
    message = ""
    for key in ("message", "error_message", "error", "errors", "detail"):
        value = data.get(key)
        if isinstance(value, str) and value:
            message = value
            break
        if isinstance(value, (dict, list)) and value:
            message = json.dumps(value, ensure_ascii=False)
            break
    meta = data.get("meta")
    if isinstance(meta, dict):  # Altegio's envelope: {"success": false, "meta": {...}}
        inner_code, inner_message = _code_and_message(meta)
        code = code if code is not None else inner_code
        message = message or inner_message
    if code is None and isinstance(data.get("error"), dict):
        inner_code, inner_message = _code_and_message(data["error"])
        return inner_code, message or inner_message
    return code, message


def classify_response(
    status: int, headers: Mapping[str, str], body: bytes, now: datetime
) -> Outcome:
    """What an HTTP answer means (see the answer table in docs/dispatcher.md)."""
    if 200 <= status < 300:
        return Outcome("acknowledged", status)
    code, text = read_error_body(body)
    described = text or f"HTTP {status} with no description"
    if status == 401:
        return Outcome("open_circuit", status, code, described, kind=KIND_TOKEN_INVALID)
    if status == 403:
        return Outcome("park", status, code, described, kind=KIND_FORBIDDEN)
    if status == 400:
        return Outcome("split", status, code, described, kind=KIND_VALIDATION)
    if status == 404:
        return Outcome("split", status, code, described, kind=KIND_NOT_FOUND)
    if status == 413:
        # Too large: a smaller batch may pass; a single status that is too large is invalid.
        return Outcome("split", status, code, described, kind=KIND_VALIDATION)
    if status in (408, 425, 429) or status >= 500:
        retry_after = parse_retry_after(headers.get("Retry-After"), now)
        return Outcome("retry", status, code, described, retry_after=retry_after)
    # 1xx/3xx (redirects are not followed: a redirect could lead off the allow-list) and
    # undocumented 4xx: nothing a retry would fix.
    return Outcome("park", status, code, described, kind=KIND_REJECTED)


def classify_network_error(error: BaseException) -> Outcome:
    """A request that got no answer: always transient."""
    if isinstance(error, TimeoutError):
        text = "timed out"
    else:
        detail = str(error)
        text = f"{type(error).__name__}: {detail}" if detail else type(error).__name__
    return Outcome("retry", None, None, _one_line(text))
