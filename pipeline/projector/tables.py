"""The projector's tables: the read model, mismatches, correlation, held reports, checkpoint.

``message_state`` and ``mismatches`` are read by the dispatcher, the reports and finance;
the other three are the projector's own bookkeeping. Everything here is derived from the
event log and can be rebuilt from it (``smsrecon replay --rebuild``), except mismatch rows of
``origin='dispatcher'``, which the dispatcher owns.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Table,
)

from pipeline.db.tables import metadata
from pipeline.db.types import JSONDocument, Money, UTCDateTime

# The mismatches table lives with the rest of the concept; the projector writes its rows
# (through ``pipeline.mismatches``) in the same transactions as these tables.
from pipeline.mismatches.table import mismatches

__all__ = [
    "message_state",
    "mismatches",
    "projector_checkpoints",
    "projector_correlations",
    "projector_held",
]

#: One row per message: what Altegio and finance see.
message_state = Table(
    "message_state",
    metadata,
    Column("message_id", String(128), primary_key=True),
    Column("partner", String(64), nullable=True),
    Column("phone", String(32), nullable=True),
    Column("channel", String(16), nullable=True),
    Column("dispatch_type", String(16), nullable=True),
    Column("delivery_callback_url", String(2048), nullable=True),
    Column("free", Boolean(), nullable=False),
    Column("carrier", String(64), nullable=True),
    Column("carrier_message_id", String(128), nullable=True),
    # Altegio status code; NULL until a status is known (accepted, not yet submitted).
    Column("status", Integer(), nullable=True),
    Column("status_at", UTCDateTime(), nullable=True),
    Column("is_final", Boolean(), nullable=False),
    Column("parts_amount", Integer(), nullable=True),
    Column("parts_source", String(16), nullable=True),
    # NULL means "no price yet" (no tariff, or not accepted yet), never zero.
    Column("payment_sum", Money(), nullable=True),
    Column("currency_iso", String(3), nullable=True),
    Column("carrier_cost", Money(), nullable=True),
    Column("carrier_cost_currency", String(3), nullable=True),
    Column("accepted_at", UTCDateTime(), nullable=True),
    Column("last_position", BigInteger(), nullable=False),
    # Rises only when (status, payment_sum, currency_iso, parts_amount) changes.
    Column("version", Integer(), nullable=False),
    # Hash of that payload; NULL while it is incomplete, so the dispatcher does not send it.
    Column("payload_hash", String(64), nullable=True),
    # The recorded_at of the event that last changed the row (log time, so replay agrees).
    Column("updated_at", UTCDateTime(), nullable=False),
    # The rest of the fold's state (per-part tracks, reported finals, costs), as JSON.
    Column("fold_state", JSONDocument, nullable=False),
)

#: (carrier, carrier_message_id) -> message_id, from carrier.submitted.
projector_correlations = Table(
    "projector_correlations",
    metadata,
    Column("carrier", String(64), nullable=False),
    Column("carrier_message_id", String(128), nullable=False),
    Column("message_id", String(128), nullable=False),
    Column("part", Integer(), nullable=True),
    Column("position", BigInteger(), nullable=False),
    PrimaryKeyConstraint("carrier", "carrier_message_id", name="pk_projector_correlations"),
    Index("ix_projector_correlations_message_id", "message_id"),
)

#: Reports waiting for their correlation (kind 'uncorrelated': folded when it arrives) and
#: messages waiting for their message.accepted (kind 'unaccepted': a timer only).
projector_held = Table(
    "projector_held",
    metadata,
    Column("position", BigInteger(), primary_key=True, autoincrement=False),
    Column("kind", String(16), nullable=False),
    Column("carrier", String(64), nullable=True),
    Column("carrier_message_id", String(128), nullable=True),
    Column("message_id", String(128), nullable=True),
    Column("held_at", UTCDateTime(), nullable=False),
    Column("deadline", UTCDateTime(), nullable=False),
    # True once the grace has passed and the unknown_message mismatch is open.
    Column("expired", Boolean(), nullable=False),
    Index("ix_projector_held_carrier_message", "carrier", "carrier_message_id"),
    Index("ix_projector_held_message_id", "message_id"),
    Index("ix_projector_held_deadline", "expired", "deadline"),
)

#: How far each projection has folded the log, and its event clock at that point.
projector_checkpoints = Table(
    "projector_checkpoints",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("position", BigInteger(), nullable=False),
    # The log's event time at ``position`` (drives the correlation grace deterministically).
    Column("clock", UTCDateTime(), nullable=True),
    Column("updated_at", UTCDateTime(), nullable=False),
)
