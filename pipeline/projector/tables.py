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
    "fx_rates",
    "invoice_lines",
    "invoices",
    "message_state",
    "mismatches",
    "price_tables",
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
    # The carrier cost finance uses: invoiced, else reported, else expected (which one is
    # ``carrier_cost_source``); the three are kept apart below and never overwrite each other.
    Column("carrier_cost", Money(), nullable=True),
    Column("carrier_cost_currency", String(3), nullable=True),
    Column("carrier_cost_source", String(16), nullable=True),
    # The buy-side rate card's cost (carriers.<name>.rates, charge_on).
    Column("carrier_cost_expected", Money(), nullable=True),
    Column("carrier_cost_expected_currency", String(3), nullable=True),
    # What DLRs reported, summed over parts.
    Column("carrier_cost_reported", Money(), nullable=True),
    Column("carrier_cost_reported_currency", String(3), nullable=True),
    # The sum of the message's invoice lines (each invoice's latest version), credits netted.
    Column("carrier_cost_invoiced", Money(), nullable=True),
    Column("carrier_cost_invoiced_currency", String(3), nullable=True),
    # What Altegio acknowledged last (the dispatch.acknowledged event): revenue.
    Column("acked_payment_sum", Money(), nullable=True),
    Column("acked_currency_iso", String(3), nullable=True),
    Column("acked_status", Integer(), nullable=True),
    # Acknowledged revenue minus the carrier cost, in the revenue's currency (the cost
    # converted with the day's rate when it is in another); NULL when either is unknown.
    Column("margin", Money(), nullable=True),
    Column("margin_currency", String(3), nullable=True),
    # The same three in finance.reporting_currency; NULL, with fx_missing, without a rate.
    Column("revenue_reporting", Money(), nullable=True),
    Column("cost_reporting", Money(), nullable=True),
    Column("margin_reporting", Money(), nullable=True),
    Column("fx_missing", Boolean(), nullable=False),
    # Integer columns beside the decimal text, which SQL sums exactly on both engines (the
    # public views read them): prices in their currency's minor units, with its exponent,
    # and costs and margins at the fixed 10^-9 scale. NULL where the amount is NULL, or
    # where it cannot be held exactly (a cost finer than 10^-9: ``cost_precision``).
    Column("payment_sum_minor", BigInteger(), nullable=True),
    Column("currency_exponent", Integer(), nullable=True),
    Column("acked_payment_sum_minor", BigInteger(), nullable=True),
    Column("acked_currency_exponent", Integer(), nullable=True),
    Column("carrier_cost_nano", BigInteger(), nullable=True),
    Column("carrier_cost_expected_nano", BigInteger(), nullable=True),
    Column("carrier_cost_reported_nano", BigInteger(), nullable=True),
    Column("carrier_cost_invoiced_nano", BigInteger(), nullable=True),
    Column("margin_nano", BigInteger(), nullable=True),
    Column("revenue_reporting_nano", BigInteger(), nullable=True),
    Column("cost_reporting_nano", BigInteger(), nullable=True),
    Column("margin_reporting_nano", BigInteger(), nullable=True),
    # The ISO region of ``phone`` (phonenumbers), for reports by country.
    Column("country", String(3), nullable=True),
    Column("accepted_at", UTCDateTime(), nullable=True),
    # The first submission to a carrier (what an invoice's period covers).
    Column("submitted_at", UTCDateTime(), nullable=True),
    Column("last_position", BigInteger(), nullable=False),
    # Rises only when (status, payment_sum, currency_iso, parts_amount) changes.
    Column("version", Integer(), nullable=False),
    # Hash of that payload; NULL while it is incomplete, so the dispatcher does not send it.
    Column("payload_hash", String(64), nullable=True),
    # The recorded_at of the event that last changed the row (log time, so replay agrees).
    Column("updated_at", UTCDateTime(), nullable=False),
    # The rest of the fold's state (per-part tracks, reported finals, costs), as JSON.
    Column("fold_state", JSONDocument, nullable=False),
    Index("ix_message_state_accepted_at", "accepted_at"),
    Index("ix_message_state_carrier_submitted_at", "carrier", "submitted_at"),
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


#: One row per invoice: its latest header (``carrier.invoice``) and whether it is closed.
invoices = Table(
    "invoices",
    metadata,
    Column("invoice_id", String(80), primary_key=True),
    Column("carrier", String(64), nullable=False),
    # The latest version imported (a superseding file is a new version; the latest counts).
    Column("version", Integer(), nullable=False),
    Column("period_from", UTCDateTime(), nullable=True),
    Column("period_to", UTCDateTime(), nullable=True),
    Column("currency", String(3), nullable=True),
    # The total the file (or --total) states; NULL when neither gives one.
    Column("stated_total", Money(), nullable=True),
    # The lines of the latest version and their sum (credits netted).
    Column("lines", Integer(), nullable=False),
    Column("lines_total", Money(), nullable=True),
    # The two totals at the fixed 10^-9 scale (NULL when not held exactly).
    Column("stated_total_nano", BigInteger(), nullable=True),
    Column("lines_total_nano", BigInteger(), nullable=True),
    Column("sha256", String(64), nullable=True),
    Column("closed", Boolean(), nullable=False),
    Column("closed_at", UTCDateTime(), nullable=True),
    Column("position", BigInteger(), nullable=False),
)

#: Every invoice line (``carrier.invoiced``) of every version, with the message it bills
#: once one claims it (NULL while none does).
invoice_lines = Table(
    "invoice_lines",
    metadata,
    Column("invoice_id", String(80), nullable=False),
    Column("version", Integer(), nullable=False),
    Column("line", Integer(), nullable=False),
    Column("carrier", String(64), nullable=False),
    Column("carrier_message_id", String(128), nullable=True),
    Column("message_id", String(128), nullable=True),
    Column("billed_at", UTCDateTime(), nullable=True),
    Column("destination", String(128), nullable=True),
    Column("parts", Integer(), nullable=False),
    Column("cost", Money(), nullable=False),
    # ``cost`` at the fixed 10^-9 scale; NULL when it has a finer digit.
    Column("cost_nano", BigInteger(), nullable=True),
    Column("currency", String(3), nullable=True),
    Column("position", BigInteger(), nullable=False),
    PrimaryKeyConstraint("invoice_id", "version", "line", name="pk_invoice_lines"),
    Index("ix_invoice_lines_message_id", "message_id"),
    Index("ix_invoice_lines_position", "position"),
)

#: The ``fx.rate`` events, the last one per (day, base, quote) counting.
fx_rates = Table(
    "fx_rates",
    metadata,
    Column("day", String(10), nullable=False),
    Column("base", String(3), nullable=False),
    Column("quote", String(3), nullable=False),
    Column("rate", Money(), nullable=False),
    Column("source", String(128), nullable=True),
    Column("position", BigInteger(), nullable=False),
    PrimaryKeyConstraint("day", "base", "quote", name="pk_fx_rates"),
)


#: Every price table in force as the log records it (``prices.recorded``): the
#: ``billing.tariffs`` table (scope ``billing``) and each carrier's rate card (scope
#: ``carrier:<name>``), numbered per scope. A message is priced by the table of its scope
#: in force before its ``message.accepted``.
price_tables = Table(
    "price_tables",
    metadata,
    Column("position", BigInteger(), primary_key=True, autoincrement=False),
    Column("scope", String(80), nullable=False),
    Column("version", Integer(), nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("rules", JSONDocument, nullable=False),
    Column("recorded_at", UTCDateTime(), nullable=False),
    Index("ix_price_tables_scope_position", "scope", "position"),
)
