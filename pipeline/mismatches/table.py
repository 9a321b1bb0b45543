"""The ``mismatches`` table: problems found in the data, open -> resolved | acknowledged.

Read by the CLI, ``explain`` and the reports; written only through ``pipeline.mismatches``.
Projector-owned rows (``origin='projector'``) are rebuilt from the event log by ``replay
--rebuild``; dispatcher-owned rows are the dispatcher's own record.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, String, Table, Text, text

from pipeline.db.tables import BigId, metadata
from pipeline.db.types import JSONDocument, Money, UTCDateTime

mismatches = Table(
    "mismatches",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("message_id", String(128), nullable=True),
    # What the mismatch is about: the message id, or e.g. "carrier:mts:abc" when there is none.
    Column("subject", String(256), nullable=False),
    Column("kind", String(64), nullable=False),
    Column("origin", String(16), nullable=False),
    Column("detail", JSONDocument, nullable=False),
    Column("status", String(16), nullable=False),
    Column("opened_at", UTCDateTime(), nullable=False),
    Column("resolved_at", UTCDateTime(), nullable=True),
    Column("first_position", BigInteger(), nullable=True),
    Column("last_position", BigInteger(), nullable=True),
    Column("note", Text(), nullable=True),
    # The money a money mismatch is about (what finance would recover or lose), if any.
    Column("amount_at_stake", Money(), nullable=True),
    Column("amount_currency", String(3), nullable=True),
    # ``amount_at_stake`` at the fixed 10^-9 scale, which SQL sums exactly (NULL when it
    # cannot be held exactly).
    Column("amount_at_stake_nano", BigInteger(), nullable=True),
    # The invoice an invoice mismatch is about (the latest one, when several are).
    Column("invoice_id", String(80), nullable=True),
    Index("ix_mismatches_message_id", "message_id"),
    Index("ix_mismatches_invoice_id", "invoice_id"),
    Index("ix_mismatches_status_kind", "status", "kind"),
    # At most one open row per (subject, kind, origin): a message's parts can disagree with
    # the text (origin projector) and with its invoice (origin invoice) at once.
    Index(
        "ix_mismatches_open_subject_kind_origin",
        "subject",
        "kind",
        "origin",
        unique=True,
        sqlite_where=text("status = 'open'"),
        postgresql_where=text("status = 'open'"),
    ),
    sqlite_autoincrement=True,
)
