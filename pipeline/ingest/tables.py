"""The ``quarantine`` table: raw requests that could not be turned into events.

Unlike the event log this table is mutable in one way only: an entry moves from ``open``
to ``resolved`` when a replay with fixed code (or config) succeeds; it is never deleted, so
the audit trail keeps what arrived, why it was refused, and which events it finally became.
Bodies are kept as UTF-8 text when they are (nearly always: JSON, forms, query strings)
and as base64 otherwise; ``body_encoding`` says which, so replay gets the exact bytes back.
"""

from __future__ import annotations

from sqlalchemy import CheckConstraint, Column, Index, String, Table, Text

from pipeline.db.tables import BigId, metadata
from pipeline.db.types import JSONDocument, UTCDateTime

QUARANTINE_STATUSES = ("open", "resolved")
BODY_ENCODINGS = ("utf-8", "base64")

quarantine = Table(
    "quarantine",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("received_at", UTCDateTime(), nullable=False),
    #: Where it came from, as events name it: ``http:/v1/dlr/mts``, ``file:dlr.csv``.
    Column("source", String(128), nullable=False),
    Column("carrier", String(64), nullable=True),
    #: The adapter format, or messages | submissions | refusals for our own routes.
    Column("format", String(32), nullable=True),
    Column("method", String(16), nullable=False),
    Column("path", String(512), nullable=False),
    #: Decoded query pairs ``[[name, value], ...]``, the ``token`` parameter removed.
    Column("query", JSONDocument, nullable=False),
    #: Lower-cased header names, credentials (Authorization, signatures, tokens) removed.
    Column("headers", JSONDocument, nullable=False),
    Column("body", Text, nullable=False),
    Column("body_encoding", String(16), nullable=False),
    Column("error", Text, nullable=False),
    #: ``[{"index"?, "field", "reason"}, ...]`` plus, for files, where in the file.
    Column("detail", JSONDocument, nullable=False),
    Column("status", String(16), nullable=False),
    Column("resolved_at", UTCDateTime(), nullable=True),
    #: Positions of the events the successful replay appended (duplicates have none).
    Column("resolved_positions", JSONDocument, nullable=True),
    Column("note", Text, nullable=True),
    CheckConstraint("status IN ('open', 'resolved')", name="status"),
    CheckConstraint("body_encoding IN ('utf-8', 'base64')", name="body_encoding"),
    Index("ix_quarantine_status_id", "status", "id"),
    sqlite_autoincrement=True,
)
