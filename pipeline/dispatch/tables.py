"""What the dispatcher remembers: one delivery row per message, one circuit per partner.

``deliveries`` is mutable working state, not history: the history of every attempt is the
``dispatch.acknowledged`` / ``dispatch.failed`` events in the log. A delivery row can be
deleted and rebuilt from ``message_state`` at the price of resending the current payloads
(Altegio receives a status it already has, never an older one).
"""

from __future__ import annotations

from sqlalchemy import Column, Index, Integer, String, Table

from pipeline.db.tables import metadata
from pipeline.db.types import UTCDateTime

#: Stored states of a delivery. ``in_flight`` is the stored state of a claimed row; a row
#: whose lease ran out is treated as pending again whatever it says.
DELIVERY_STATES = ("pending", "in_flight", "acknowledged", "parked", "expired")

deliveries = Table(
    "deliveries",
    metadata,
    Column("message_id", String(128), primary_key=True),
    Column("state", String(16), nullable=False),
    #: Times the message was claimed for sending (each claim that sends is one attempt).
    Column("attempts", Integer, nullable=False),
    #: Consecutive failed attempts since the last acknowledgement: the backoff exponent.
    Column("failures", Integer, nullable=False),
    Column("last_status_code", Integer, nullable=True),
    Column("last_altegio_code", Integer, nullable=True),
    #: The last error, partner token masked, at most 500 characters.
    Column("last_error", String(500), nullable=True),
    Column("last_attempt_at", UTCDateTime(), nullable=True),
    #: The payload (hash, version) the current or last claim sent.
    Column("sent_hash", String(128), nullable=True),
    Column("sent_version", Integer, nullable=True),
    #: The newest payload Altegio acknowledged; an older acknowledgement never replaces it.
    Column("acked_hash", String(128), nullable=True),
    Column("acked_version", Integer, nullable=True),
    Column("acked_at", UTCDateTime(), nullable=True),
    #: Parked or expired for exactly this payload: a new payload makes the row pending again.
    Column("held_hash", String(128), nullable=True),
    #: The mismatch kind that parked or expired the row.
    Column("held_reason", String(64), nullable=True),
    Column("next_attempt_at", UTCDateTime(), nullable=True),
    #: When the oldest unacknowledged change was first claimed: the start of max_age.
    Column("first_pending_at", UTCDateTime(), nullable=True),
    #: "<dispatcher>/<claim>" of the claim that owns the row until lease_until.
    Column("lease_owner", String(128), nullable=True),
    Column("lease_until", UTCDateTime(), nullable=True),
    Column("updated_at", UTCDateTime(), nullable=False),
    Index("ix_deliveries_next_attempt_at", "next_attempt_at"),
    Index("ix_deliveries_state", "state"),
)

#: A partner's circuit is ``open`` after Altegio refused the partner's token (401) or the
#: partner's callback URL itself does not exist (404 everywhere); nothing is sent for the
#: partner until ``probe_at``, then exactly one single-status probe.
partner_circuits = Table(
    "partner_circuits",
    metadata,
    Column("partner", String(64), primary_key=True),
    Column("state", String(16), nullable=False),
    #: The mismatch kind that opened it: partner_token_invalid or altegio_not_found.
    Column("reason", String(64), nullable=True),
    Column("opened_at", UTCDateTime(), nullable=True),
    Column("probe_at", UTCDateTime(), nullable=True),
    Column("closed_at", UTCDateTime(), nullable=True),
    Column("last_status_code", Integer, nullable=True),
    Column("last_error", String(500), nullable=True),
    Column("updated_at", UTCDateTime(), nullable=False),
)
