"""What quarantine stores of a refused request: without credentials, as text any engine keeps.

A refused request is kept so that an operator can see it and replay it, so it is kept
exactly, with two exceptions. Credentials are removed, the same fields ``carrier.status``
events drop from their ``raw`` (``report.SECRET_FIELDS``) and the headers authentication
reads (``auth.SECRET_HEADERS``), wherever they appear: query, headers, form or JSON body.
And a string no text column can hold (a NUL, which PostgreSQL refuses, or a lone surrogate,
which is not UTF-8) is stored as ``{"base64": ...}`` of its UTF-8 bytes (surrogates kept
with ``surrogatepass``), and read back to the same string; a body holding a NUL is kept as
base64 like any other body that is not UTF-8 text.
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import replace
from typing import Any
from urllib.parse import unquote_plus

from pipeline.ingest.adapters.base import RawRequest
from pipeline.ingest.adapters.report import SECRET_FIELDS
from pipeline.ingest.auth import SECRET_HEADERS

_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
#: A JSON member whose value is a string or a scalar: ``"name" : value``.
_JSON_MEMBER = re.compile(r'"((?:[^"\\]|\\.){1,64})"(\s*:\s*)("(?:[^"\\]|\\.)*"|[^,{}\[\]\s"]+)')
REMOVED = "[removed]"


def is_secret_field(name: str) -> bool:
    """A query, form or JSON field that may hold a credential (``api-key``, ``Token``...)."""
    return name.strip().lower() in SECRET_FIELDS


def is_secret_header(name: str) -> bool:
    """Authentication headers, and ``X-<secret field>`` ones such as ``X-Api-Key``."""
    lowered = name.strip().lower()
    return lowered in SECRET_HEADERS or lowered.removeprefix("x-") in SECRET_FIELDS


def scrub(request: RawRequest) -> RawRequest:
    """``request`` without any credential field or header (also in its body)."""
    query = [(name, value) for name, value in request.query if not is_secret_field(name)]
    headers = {name: value for name, value in request.headers.items() if not is_secret_header(name)}
    return replace(request, query=query, headers=headers, body=scrub_body(request.body))


def scrub_body(body: bytes) -> bytes:
    """The body with credential fields removed: ``name=value`` pieces of a form dropped,
    JSON members' values replaced by ``"[removed]"``. Worked on latin-1 text, so every
    other byte of any body (not UTF-8, not valid JSON) is kept as it was."""
    if not body:
        return body
    text = body.decode("latin-1")
    scrubbed = _scrub_json(text) if text.lstrip()[:1] in ("{", "[") else _scrub_form(text)
    return body if scrubbed == text else scrubbed.encode("latin-1")


def _scrub_form(text: str) -> str:
    pieces = text.split("&")
    kept = [piece for piece in pieces if not is_secret_field(_form_name(piece))]
    return text if len(kept) == len(pieces) else "&".join(kept)


def _form_name(piece: str) -> str:
    raw = piece.partition("=")[0]
    try:
        return unquote_plus(raw.encode("latin-1").decode("utf-8", "replace"))
    except ValueError:
        return raw


def _scrub_json(text: str) -> str:
    def member(match: re.Match[str]) -> str:
        if is_secret_field(_json_key(match.group(1))):
            return f'"{match.group(1)}"{match.group(2)}"{REMOVED}"'
        return match.group(0)

    return _JSON_MEMBER.sub(member, text)


def _json_key(escaped: str) -> str:
    """A member name as JSON reads it (``api\\u002dkey`` is ``api-key``)."""
    try:
        key = json.loads(f'"{escaped}"')
    except ValueError:
        return escaped
    return key if isinstance(key, str) else escaped


def storable_text(value: str) -> str | dict[str, str]:
    """``value``, or ``{"base64": ...}`` when a text column cannot hold it."""
    if _UNSTORABLE.search(value) is None:
        return value
    raw = value.encode("utf-8", "surrogatepass")
    return {"base64": base64.b64encode(raw).decode("ascii")}


def loaded_text(value: Any) -> str:
    """The string ``storable_text`` stored."""
    if isinstance(value, dict) and isinstance(value.get("base64"), str):
        return base64.b64decode(value["base64"]).decode("utf-8", "surrogatepass")
    return str(value)


def printable(value: Any) -> Any:
    """A JSON value whose strings a text column can hold, for messages (not for replay):
    a NUL or lone surrogate is written as its escape (``\\x00``, ``\\ud800``)."""
    if isinstance(value, str):
        if _UNSTORABLE.search(value) is None:
            return value
        return _UNSTORABLE.sub(lambda m: m.group(0).encode("unicode_escape").decode(), value)
    if isinstance(value, dict):
        return {printable(str(key)): printable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [printable(item) for item in value]
    return value
