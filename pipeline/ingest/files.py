"""The files ``smsrecon ingest`` reads, turned into the requests the live server would get.

Every record of a file becomes one RawRequest at the route it belongs to (``/v1/messages``,
``/v1/dlr/<carrier>`` ...), so a file parses through the very code a webhook does, a bad
record is quarantined on its own (the rest of the file still goes in), and a quarantined
record replays like any other request. The layout is recognised from the content:

* captured requests (``GET /path?query HTTP/1.1`` ...), as in the DLR samples: carrier formats;
* JSON: one document (an array is one record per element, an object is one record) or,
  when the whole text is not one document, JSON lines (one record per line);
* CSV with a header row (empty cells are left out);
* ``smpp`` only: plain text, one receipt per line.

How a record becomes a request depends on the format: our own kinds and the JSON-bodied
carrier formats (``generic``, ``infobip``, ``vonage`` from JSON) get a JSON POST; the
query/form gateways (``kannel``, ``jasmin``, ``twilio``, ``smpp``, and ``vonage`` from CSV)
get a form POST of the record's fields, which their adapters read like a query string.
"""

from __future__ import annotations

import csv
import io
import json
import uuid
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

from pipeline.ingest.adapters import bounded
from pipeline.ingest.adapters.base import ParseError, RawRequest
from pipeline.ingest.captured import looks_captured, read_captured_requests
from pipeline.ingest.requests import KINDS
from pipeline.ingest.routing import Target

JSON_BODY_FORMATS = {"generic", "infobip", "vonage", *KINDS}
#: Fields of our own kinds that CSV can only spell as text.
_BOOLEANS = {"free"}
_TRUE = {"true", "1", "yes"}
_FALSE = {"false", "0", "no"}


class FileLayoutError(ValueError):
    """The file as a whole cannot be read in this format (a usage problem, exit 2)."""


@dataclass(frozen=True, slots=True)
class FileRecord:
    #: Where in the file: ``line 12``, ``row 3``, ``element 5``, ``request 2``.
    location: str
    request: RawRequest


def read_records(text: str, fmt: str, target: Target) -> list[FileRecord]:
    """Every record of ``text`` as a request to ``target``; FileLayoutError if unreadable."""
    if looks_captured(text):
        if fmt in KINDS:
            raise FileLayoutError(f"captured requests are for carrier formats, not {fmt}")
        try:
            captured = read_captured_requests(text)
        except ParseError as exc:
            raise FileLayoutError(f"{exc.field}: {exc.reason}") from None
        return [
            FileRecord(f"request {n}", replace(request, path=target.path))
            for n, request in enumerate(captured, start=1)
        ]
    stripped = text.lstrip()
    if stripped[:1] in ("{", "["):
        return _json_records(text, fmt, target)
    if fmt == "smpp":
        return [
            FileRecord(f"line {n}", _text_post(target, line.strip()))
            for n, line in enumerate(text.splitlines(), start=1)
            if line.strip() and not line.lstrip().startswith("#")
        ]
    return _csv_records(text, fmt, target)


def _json_records(text: str, fmt: str, target: Target) -> list[FileRecord]:
    try:
        document = bounded.load_json(text)
    except bounded.Refused:
        # One document past a bound (a huge number, deep nesting, a NUL): one record as
        # written, which the parse path refuses and quarantine keeps.
        return [FileRecord("document", _json_post(target, text.encode("utf-8")))]
    except (ValueError, RecursionError):
        # Not one document: read it line by line, so only a bad line is refused.
        return _json_lines(text, fmt, target)
    if isinstance(document, list):
        return [
            FileRecord(f"element {n}", _record_request(item, fmt, target))
            for n, item in enumerate(document, start=1)
        ]
    return [FileRecord("document", _record_request(document, fmt, target))]


def _json_lines(text: str, fmt: str, target: Target) -> list[FileRecord]:
    records = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            item = bounded.load_json(line)
        except (ValueError, RecursionError):  # bounded.Refused is a ValueError
            # Kept as it is: the adapter refuses it and quarantine keeps the line.
            records.append(FileRecord(f"line {number}", _json_post(target, line.encode())))
            continue
        records.append(FileRecord(f"line {number}", _record_request(item, fmt, target)))
    return records


def _csv_records(text: str, fmt: str, target: Target) -> list[FileRecord]:
    if fmt == "infobip":
        raise FileLayoutError("infobip reports are nested JSON: use JSON or captured requests")
    reader = csv.DictReader(io.StringIO(text))
    if not reader.fieldnames:
        raise FileLayoutError("not captured requests, JSON or CSV with a header row")
    records = []
    for number, row in enumerate(reader, start=2):
        extra = row.pop(None, None)  # type: ignore[call-overload]
        fields: dict[str, Any] = {k: v for k, v in row.items() if k and v not in (None, "")}
        if extra:
            fields["_extra_cells"] = extra  # refused as an unknown field, so kept in quarantine
        if fmt in KINDS:
            fields = {k: _csv_boolean(v) if k in _BOOLEANS else v for k, v in fields.items()}
            request = _json_post(target, _dumps(fields))
        elif fmt == "generic":
            request = _json_post(target, _dumps(fields))
        else:
            request = _form_post(target, fields)
        records.append(FileRecord(f"line {number}", request))
    return records


def _record_request(item: Any, fmt: str, target: Target) -> RawRequest:
    if fmt in JSON_BODY_FORMATS or not isinstance(item, dict):
        return _json_post(target, _dumps(item))
    return _form_post(target, item)


def _csv_boolean(value: str) -> Any:
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    return value  # left as text: the parser says "must be true or false"


def _dumps(item: Any) -> bytes:
    """The record as the JSON body a server would get, every number as it was written."""
    try:
        return _exact_json(item, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        # A lone surrogate, written as a JSON escape in the file: kept as that escape, so
        # the record reaches the parser (and, if refused, the quarantine) as it was sent.
        return _exact_json(item, ensure_ascii=True).encode("ascii")


def _exact_json(item: Any, *, ensure_ascii: bool) -> str:
    """``json.dumps`` that writes a Decimal as its exact literal.

    Numbers with a fraction or an exponent are read as Decimal (a float would change a
    cost's digits), and ``json`` cannot write one: each is written as a placeholder string
    unique to this call, then put back as its literal.
    """
    literals: dict[str, str] = {}
    nonce = uuid.uuid4().hex

    def decimal_literal(value: Any) -> str:
        if not isinstance(value, Decimal):
            raise TypeError(f"not JSON: {type(value).__name__}")
        mark = f"{nonce}:{len(literals)}"
        literals[json.dumps(mark)] = str(value)
        return mark

    text = json.dumps(item, ensure_ascii=ensure_ascii, default=decimal_literal)
    for mark, literal in literals.items():
        text = text.replace(mark, literal, 1)
    return text


def _json_post(target: Target, body: bytes) -> RawRequest:
    return RawRequest("POST", target.path, [], {"content-type": "application/json"}, body)


def _text_post(target: Target, text: str) -> RawRequest:
    return RawRequest("POST", target.path, [], {"content-type": "text/plain"}, text.encode())


def _form_post(target: Target, fields: dict[str, Any]) -> RawRequest:
    pairs = [(str(k), "" if v is None else str(v)) for k, v in fields.items()]
    body = urlencode(pairs).encode("ascii")
    return RawRequest(
        "POST", target.path, [], {"content-type": "application/x-www-form-urlencoded"}, body
    )
