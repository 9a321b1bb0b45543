"""Every mismatch kind, by the part of the pipeline that opens it.

A new kind goes here first: the projector's come from the fold's conditions and its
timers, the dispatcher's from Altegio's answers and its own checks.
"""

from __future__ import annotations

#: Lifecycle states of a row.
OPEN = "open"
RESOLVED = "resolved"
ACKNOWLEDGED = "acknowledged"

#: Who opened a row (and may resolve it).
ORIGIN_PROJECTOR = "projector"
#: Opened by the projector too, from invoice lines and headers (rebuilt by replay alike).
ORIGIN_INVOICE = "invoice"
ORIGIN_DISPATCHER = "dispatcher"
ORIGINS = (ORIGIN_PROJECTOR, ORIGIN_INVOICE, ORIGIN_DISPATCHER)
#: Origins whose rows the projector owns: derived from the log, rebuilt by ``replay``.
PROJECTOR_ORIGINS = (ORIGIN_PROJECTOR, ORIGIN_INVOICE)

# The projector's kinds.
#: The carrier's part count differs from the one computed from the text.
KIND_PARTS_MISMATCH = "parts_mismatch"
#: Two different final statuses were reported for one part.
KIND_CONFLICTING_FINAL = "conflicting_final"
#: We refused the message, yet a carrier reported it delivered.
KIND_REFUSED_THEN_DELIVERED = "refused_then_delivered"
#: No tariff prices the message.
KIND_NO_TARIFF = "no_tariff"
#: A report no message claims, or a message never accepted, past the grace.
KIND_UNKNOWN_MESSAGE = "unknown_message"
#: An event the projector cannot read or apply (skipped).
KIND_UNREADABLE_EVENT = "unreadable_event"

#: A message not final ``projector.stale_after`` after it was accepted (event clock).
KIND_STALE = "stale"
#: A charged message's expected carrier cost exceeds its price: a route sold below cost.
KIND_NEGATIVE_MARGIN = "negative_margin"
#: A carrier cost with a digit finer than 10^-9: its integer column is left NULL, unrounded.
KIND_COST_PRECISION = "cost_precision"

# The money kinds (docs/reconciliation.md); all but negative_margin have origin invoice.
#: Invoiced differs from the expected cost beyond the carrier's tolerance.
KIND_COST_MISMATCH = "cost_mismatch"
#: The invoice's currency is not the one expected.
KIND_CURRENCY_MISMATCH = "currency_mismatch"
#: One message billed twice: on two lines or in two invoices.
KIND_DUPLICATE_CHARGE = "duplicate_charge"
#: An invoice line no message claims, by message id or carrier id, after the grace.
KIND_INVOICE_UNKNOWN_MESSAGE = "invoice_unknown_message"
#: Charged although the status is non-chargeable (16, 52).
KIND_BILLED_BUT_REJECTED = "billed_but_rejected"
#: A closed invoice has no line for a message the carrier bills in its period.
KIND_MISSING_INVOICE_LINE = "missing_invoice_line"
#: An invoice's lines do not add up to its stated total.
KIND_INVOICE_TOTAL_MISMATCH = "invoice_total_mismatch"

#: Every kind the projector opens.
PROJECTOR_KINDS = (
    KIND_PARTS_MISMATCH,
    KIND_CONFLICTING_FINAL,
    KIND_REFUSED_THEN_DELIVERED,
    KIND_NO_TARIFF,
    KIND_UNKNOWN_MESSAGE,
    KIND_UNREADABLE_EVENT,
    KIND_STALE,
    KIND_NEGATIVE_MARGIN,
    KIND_COST_PRECISION,
)

#: Every kind the projector opens with origin invoice.
INVOICE_KINDS = (
    KIND_COST_MISMATCH,
    KIND_PARTS_MISMATCH,
    KIND_CURRENCY_MISMATCH,
    KIND_DUPLICATE_CHARGE,
    KIND_INVOICE_UNKNOWN_MESSAGE,
    KIND_BILLED_BUT_REJECTED,
    KIND_MISSING_INVOICE_LINE,
    KIND_INVOICE_TOTAL_MISMATCH,
)

# The dispatcher's kinds: the refusal each answer or check opens.
KIND_VALIDATION = "altegio_validation"
KIND_NOT_FOUND = "altegio_not_found"
KIND_FORBIDDEN = "altegio_forbidden"
KIND_REJECTED = "altegio_rejected"
KIND_TOKEN_INVALID = "partner_token_invalid"
KIND_EXPIRED = "delivery_expired"
KIND_URL_REJECTED = "callback_url_rejected"
KIND_PARTNER_UNKNOWN = "partner_not_configured"
KIND_PAYLOAD_INVALID = "payload_invalid"

#: Every kind the dispatcher opens (and resolves when the cause goes away).
DISPATCH_KINDS = (
    KIND_VALIDATION,
    KIND_NOT_FOUND,
    KIND_FORBIDDEN,
    KIND_REJECTED,
    KIND_TOKEN_INVALID,
    KIND_EXPIRED,
    KIND_URL_REJECTED,
    KIND_PARTNER_UNKNOWN,
    KIND_PAYLOAD_INVALID,
)

#: The dispatcher's kinds about one message (not the partner-wide circuit): an
#: acknowledgement of the message removes their cause.
DISPATCH_MESSAGE_KINDS = tuple(k for k in DISPATCH_KINDS if k != KIND_TOKEN_INVALID)
