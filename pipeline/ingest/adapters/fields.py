"""Reading a request's fields: query pairs, form bodies, JSON bodies, typed values.

Every failure is a ParseError naming the field, so a bad report is answered with a reason a
gateway operator can act on, and never with a KeyError or a traceback.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl

from pipeline.ingest.adapters import bounded
from pipeline.ingest.adapters.base import ParseError, RawRequest

Pairs = list[tuple[str, str]]


def content_type(request: RawRequest) -> str:
    """The media type without parameters, lower-cased (``application/json``)."""
    return request.headers.get("content-type", "").split(";", 1)[0].strip().lower()


def body_text(request: RawRequest) -> str:
    """The body as text: UTF-8 without NULs (no text column stores a NUL)."""
    try:
        text = request.body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ParseError("body", f"not UTF-8 (byte {exc.start})") from None
    if "\x00" in text:
        raise ParseError("body", "holds a NUL byte")
    return text


def parse_form(request: RawRequest) -> Pairs:
    """An ``application/x-www-form-urlencoded`` body as ordered pairs."""
    text = body_text(request).strip()
    if not text:
        return []
    try:
        pairs = parse_qsl(text, keep_blank_values=True, strict_parsing=True, errors="strict")
    except (ValueError, UnicodeDecodeError):
        raise ParseError("body", "not a form-encoded body") from None
    bounded.check_pairs(pairs, "body")
    return pairs


def parse_json(request: RawRequest) -> Any:
    """A JSON body; numbers with a fraction become Decimal so no digit is lost to floats.

    Bounded (``bounded.load_json``): no number literal is expanded, no deep nesting, no
    NUL or lone surrogate in a string."""
    text = body_text(request)
    if not text.strip():
        raise ParseError("body", "empty (a JSON document is expected)")
    try:
        return bounded.load_json(text)
    except json.JSONDecodeError as exc:
        raise ParseError("body", f"not JSON: {exc.msg} at line {exc.lineno}") from None
    except bounded.Refused as exc:
        raise ParseError("body", exc.reason) from None


def looks_like_json(request: RawRequest) -> bool:
    if content_type(request).endswith("json"):
        return True
    return request.body.lstrip()[:1] in (b"{", b"[")


def query_and_form(request: RawRequest) -> Pairs:
    """The query pairs followed by a form body's pairs (GET or form POST gateways)."""
    pairs = list(request.query)
    bounded.check_pairs(pairs, "query")
    if request.body.strip():
        pairs.extend(parse_form(request))
    return pairs


def first(pairs: Iterable[tuple[str, str]], name: str) -> str | None:
    """The first value of ``name``; gateways never legitimately repeat a DLR field."""
    for key, value in pairs:
        if key == name:
            return value
    return None


def require(pairs: Iterable[tuple[str, str]], name: str) -> str:
    value = first(pairs, name)
    if value is None or not value.strip():
        raise ParseError(name, "required")
    return value.strip()


def optional_text(value: Any, field: str) -> str | None:
    """A JSON string or number as text; None for absent, null or blank."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int, Decimal)):
        raise ParseError(field, f"must be a string, got {type(value).__name__}")
    text = str(value).strip()
    return text or None


def parse_decimal(value: Any, field: str) -> Decimal:
    """A finite decimal from a string or JSON number (never via float), its digits bounded
    and written in fixed point (``bounded.decimal``)."""
    if isinstance(value, bool) or not isinstance(value, (str, int, Decimal)):
        raise ParseError(field, f"must be a decimal string, got {type(value).__name__}")
    if isinstance(value, Decimal):
        return bounded.bounded_decimal(value, field)
    if isinstance(value, int):
        return bounded.bounded_decimal(Decimal(value), field)
    return bounded.decimal(value, field)


def parse_int(value: Any, field: str, *, minimum: int | None = None) -> int:
    """An integer from a JSON integer or a string of ASCII digits, at most
    ``bounded.MAX_INT_DIGITS`` of them (checked before any conversion)."""
    if isinstance(value, bool):
        raise ParseError(field, "must be an integer, got bool")
    if isinstance(value, int):
        number = bounded.integral(Decimal(value), field)
    elif isinstance(value, Decimal):
        number = bounded.integral(value, field)
    elif isinstance(value, str):
        number = bounded.integer(value, field)
    else:
        raise ParseError(field, f"must be an integer, got {type(value).__name__}")
    if minimum is not None and number < minimum:
        raise ParseError(field, f"must be at least {minimum}, got {number}")
    return number


def parse_currency(value: Any, field: str) -> str:
    text = optional_text(value, field)
    if text is None or not re.fullmatch(r"[A-Za-z]{3}", text):
        raise ParseError(field, f"not an ISO 4217 currency code: {str(value)[:20]!r}")
    return text.upper()


def first_values(pairs: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Pairs as a dict keeping each name's first value, in request order (for ``raw``)."""
    out: dict[str, str] = {}
    for key, value in pairs:
        out.setdefault(key, value)
    return out
