"""Keeping, listing and resolving quarantined requests (the ``quarantine`` table).

What is stored is scrubbed of credentials here (``keepsafe.scrub``: the fields events drop,
in the query, headers and body), whoever calls: a quarantined request can be shown to
anyone who may read the database. Any bytes can be kept on either engine (``keepsafe``).
The table is bounded, because refusals cost a sender nothing: an entry larger than
``max_entry_bytes`` or beyond ``max_open_entries`` open ones is not kept (``NotKept``), and
the sender is still answered 400.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, select, update

from pipeline.db.engine import Database
from pipeline.eventlog.model import utc_now
from pipeline.ingest import keepsafe
from pipeline.ingest.adapters.base import RawRequest
from pipeline.ingest.tables import quarantine


@dataclass(frozen=True, slots=True)
class Caps:
    """Bounds of the quarantine (``ingest.quarantine_max_entry_bytes`` / ``_open_entries``)."""

    max_entry_bytes: int = 65_536
    max_open_entries: int = 10_000


class NotKept(Exception):
    """The refused request was not stored: ``reason`` is ``too_large`` or ``full``."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Entry:
    id: int
    received_at: datetime
    source: str
    carrier: str | None
    format: str | None
    request: RawRequest
    body_encoding: str
    error: str
    detail: Any
    status: str
    resolved_at: datetime | None
    resolved_positions: list[int] | None
    note: str | None


def encode_body(body: bytes) -> tuple[str, str]:
    """(stored text, encoding): UTF-8 text when it is valid UTF-8 without a NUL (which no
    PostgreSQL text holds), else base64."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        pass
    else:
        if "\x00" not in text:
            return text, "utf-8"
    return base64.b64encode(body).decode("ascii"), "base64"


def decode_body(text: str, encoding: str) -> bytes:
    return base64.b64decode(text) if encoding == "base64" else text.encode("utf-8")


def save(
    db: Database,
    request: RawRequest,
    *,
    received_at: datetime,
    source: str,
    error: str,
    detail: Any,
    carrier: str | None = None,
    fmt: str | None = None,
    caps: Caps | None = None,
) -> int:
    """Store one refused request; returns its quarantine id, or NotKept past the caps.

    Failure policy: its own short transaction. If it fails, the caller must not answer the
    sender as if the request had been kept (the server answers 503, so the sender resends).
    """
    with db.write() as conn:
        return save_in(
            conn,
            request,
            received_at=received_at,
            source=source,
            error=error,
            detail=detail,
            carrier=carrier,
            fmt=fmt,
            caps=caps,
        )


def save_in(
    conn: Connection,
    request: RawRequest,
    *,
    received_at: datetime,
    source: str,
    error: str,
    detail: Any,
    carrier: str | None = None,
    fmt: str | None = None,
    caps: Caps | None = None,
) -> int:
    caps = caps or Caps()
    request = keepsafe.scrub(request)
    body, encoding = encode_body(request.body)
    query = [[keepsafe.storable_text(n), keepsafe.storable_text(v)] for n, v in request.query]
    headers = {
        keepsafe.printable(name): keepsafe.storable_text(value)
        for name, value in request.headers.items()
    }
    size = len(body) + len(json.dumps(query)) + len(json.dumps(headers))
    if size > caps.max_entry_bytes:
        raise NotKept("too_large")
    open_entries = conn.scalar(
        select(func.count()).select_from(quarantine).where(quarantine.c.status == "open")
    )
    if int(open_entries or 0) >= caps.max_open_entries:
        raise NotKept("full")
    row = {
        "received_at": received_at,
        "source": keepsafe.printable(source)[:128],
        "carrier": None if carrier is None else keepsafe.printable(carrier)[:64],
        "format": fmt,
        "method": keepsafe.printable(request.method)[:16],
        "path": keepsafe.printable(request.path)[:512],
        "query": query,
        "headers": headers,
        "body": body,
        "body_encoding": encoding,
        "error": keepsafe.printable(error),
        "detail": keepsafe.printable(detail),
        "status": "open",
    }
    return int(conn.execute(quarantine.insert().returning(quarantine.c.id), row).scalar_one())


def _entry(row: Any) -> Entry:
    request = RawRequest(
        method=row.method,
        path=row.path,
        query=[(keepsafe.loaded_text(n), keepsafe.loaded_text(v)) for n, v in row.query],
        headers={name: keepsafe.loaded_text(value) for name, value in row.headers.items()},
        body=decode_body(row.body, row.body_encoding),
    )
    return Entry(
        id=row.id,
        received_at=row.received_at,
        source=row.source,
        carrier=row.carrier,
        format=row.format,
        request=request,
        body_encoding=row.body_encoding,
        error=row.error,
        detail=row.detail,
        status=row.status,
        resolved_at=row.resolved_at,
        resolved_positions=row.resolved_positions,
        note=row.note,
    )


def get(db: Database, entry_id: int) -> Entry | None:
    with db.read() as conn:
        row = conn.execute(select(quarantine).where(quarantine.c.id == entry_id)).first()
    return None if row is None else _entry(row)


def entries(db: Database, *, status: str | None = "open", limit: int | None = None) -> list[Entry]:
    stmt = select(quarantine).order_by(quarantine.c.id)
    if status is not None:
        stmt = stmt.where(quarantine.c.status == status)
    if limit is not None:
        stmt = stmt.limit(limit)
    with db.read() as conn:
        return [_entry(row) for row in conn.execute(stmt)]


def counts(db: Database) -> dict[str, int]:
    stmt = select(quarantine.c.status, func.count()).group_by(quarantine.c.status)
    with db.read() as conn:
        return {status: int(n) for status, n in conn.execute(stmt)}


def resolve_in(conn: Connection, entry_id: int, positions: Sequence[int], note: str) -> bool:
    """Mark an open entry resolved; False if it was not open (someone else resolved it).

    Called in the same transaction that appends the replayed events, so an entry is
    resolved exactly when its events are stored.
    """
    result = conn.execute(
        update(quarantine)
        .where(quarantine.c.id == entry_id, quarantine.c.status == "open")
        .values(
            status="resolved",
            resolved_at=utc_now(),
            resolved_positions=list(positions),
            note=note,
        )
    )
    return result.rowcount == 1
