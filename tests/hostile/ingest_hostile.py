"""Helpers for the hostile-input tests of the ingest server: one carrier of every dialect,
an honest request per route, and the check that a refusal was answered 400 and kept."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import ClientResponse

from pipeline.db.engine import Database
from tests.ingest.server_fixtures import quarantine_rows

#: One carrier per dialect, named after it, no auth: the parse path is what is under test.
CARRIERS: dict[str, Any] = {
    fmt: {"format": fmt}
    for fmt in ("kannel", "jasmin", "smpp", "infobip", "vonage", "twilio", "generic")
}

MESSAGE: dict[str, Any] = {
    "id": "m-1",
    "phone": "79161234567",
    "text": "Hello",
    "accepted_at": "2026-01-15T13:30:00+03:00",
}
SUBMISSION: dict[str, Any] = {
    "message_id": "m-1",
    "carrier": "generic",
    "carrier_message_id": "c-1",
    "parts": 1,
    "submitted_at": "2026-01-15T10:30:01Z",
}
REFUSAL: dict[str, Any] = {
    "message_id": "m-2",
    "reason": "insufficient_funds",
    "refused_at": "2026-01-15T10:30:01Z",
}
GENERIC: dict[str, Any] = {
    "carrier_message_id": "c-1",
    "status": "DELIVRD",
    "occurred_at": "2026-01-15T10:31:00Z",
    "parts": 1,
    "cost": "0.50",
    "currency": "RUB",
}


def infobip(**result: Any) -> dict[str, Any]:
    """An Infobip report body; ``result`` keys replace the honest ones."""
    honest: dict[str, Any] = {
        "messageId": "ib-1",
        "doneAt": "2026-01-15T10:31:00.000+0000",
        "smsCount": 1,
        "price": {"pricePerMessage": "0.01", "currency": "EUR"},
        "status": {"groupId": 3, "groupName": "DELIVERED", "name": "DELIVERED_TO_HANDSET"},
        "error": {"id": 0, "name": "NO_ERROR"},
    }
    return {"results": [{**honest, **result}]}


def raw_json(document: Any, **replacements: str) -> str:
    """``document`` as JSON text with ``"@name@"`` placeholders swapped for raw JSON text
    (a number literal no encoder would write, such as ``1E+300000``)."""
    text = json.dumps(document)
    for name, literal in replacements.items():
        text = text.replace(f'"@{name}@"', literal)
    return text


async def assert_quarantined(response: ClientResponse, db: Database) -> dict[str, Any]:
    """The request was answered 400 and the refusal names an entry that is stored."""
    assert response.status == 400, await response.text()
    answer = await response.json()
    assert isinstance(answer.get("quarantine_id"), int), answer
    ids = [row.id for row in quarantine_rows(db)]
    assert answer["quarantine_id"] in ids
    return answer


async def raw_http(port: int, head: bytes, body: bytes = b"") -> tuple[int, bytes]:
    """Send one request exactly as given (bytes no HTTP client would send, such as a header
    that is not UTF-8) and return the status code and response body."""
    import asyncio

    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        length = f"Content-Length: {len(body)}\r\n".encode() if body else b""
        writer.write(head.rstrip(b"\r\n") + b"\r\n" + length + b"Connection: close\r\n\r\n" + body)
        await writer.drain()
        response = await reader.read()
    finally:
        writer.close()
    status_line, _, rest = response.partition(b"\r\n")
    return int(status_line.split()[1]), rest.partition(b"\r\n\r\n")[2]
