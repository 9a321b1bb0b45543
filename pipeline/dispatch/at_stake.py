"""The revenue a dispatcher mismatch puts at risk: ``payment_sum`` Altegio has not taken.

Altegio bills a salon what the statuses it acknowledged say; a status it refused, or never
received, is revenue finance may lose. So every mismatch the dispatcher opens names that
money in its detail (``amount_at_stake`` and ``currency``, decimal text), which
``pipeline.mismatches`` copies into the row's columns for SQL to sum:

- about one message (parked, expired, refused before sending): the ``payment_sum`` of the
  payload Altegio did not acknowledge, in its ``currency_iso``;
- about a partner (its circuit is open): the sum over the partner's messages held
  unacknowledged. In one currency it fills the same two fields; in several it is a
  ``{"currency": "amount"}`` map, ``at_stake_by_currency``, and the columns stay NULL
  (amounts in different currencies do not add up).
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, Select, or_, select

from pipeline.db.backend import Backend, backend_of
from pipeline.dispatch.claim import partner_expr
from pipeline.dispatch.model import ClaimedItem
from pipeline.dispatch.payload import amount_text
from pipeline.dispatch.tables import deliveries
from pipeline.projector.tables import message_state

d = deliveries
ms = message_state

#: Every stored state of a delivery but ``acknowledged``: the dispatcher's backlog, which
#: ``ix_deliveries_state`` serves without reading the acknowledged history.
UNACKNOWLEDGED_STATES = ("pending", "in_flight", "parked", "expired")


def message_at_stake(item: ClaimedItem) -> dict[str, str]:
    """The detail fields of a mismatch about one message (none while it has no price)."""
    amount = amount_text(item.payment_sum, item.currency_iso)
    if amount is None or item.currency_iso is None:
        return {}
    return {"amount_at_stake": amount, "currency": item.currency_iso}


def at_stake_detail(totals: Mapping[str, Decimal]) -> dict[str, Any]:
    """The detail fields for amounts summed per currency: one currency fills
    ``amount_at_stake``/``currency``, several make ``at_stake_by_currency``, none nothing."""
    texts = {
        currency: amount_text(total, currency)
        for currency, total in sorted(totals.items())
        if total is not None
    }
    if not texts:
        return {}
    if len(texts) == 1:
        [(currency, amount)] = texts.items()
        return {"amount_at_stake": amount, "currency": currency}
    return {"at_stake_by_currency": texts}


def partner_totals(conn: Connection, partner: str) -> dict[str, Decimal]:
    """The ``payment_sum`` of the partner's unacknowledged messages, exactly, per currency.

    Runs once per partner and kind per recorded group whose circuit opened or stayed open
    (a refused probe), not per message.
    """
    query = partner_totals_query(backend_of(conn), partner)
    return {currency: amount for currency, amount in conn.execute(query) if amount is not None}


def partner_totals_query(backend: Backend, partner: str) -> Select[Any]:
    """The query of ``partner_totals``: read through ``ix_deliveries_state`` (the backlog,
    not every message ever sent), each backlog row's state found by primary key.

    A message Altegio acknowledged before and whose newer payload no claim has taken yet
    still reads ``acknowledged`` there and is left out: Altegio holds a price for it
    already, and finding it would mean reading every delivery.
    """
    return (
        select(ms.c.currency_iso, backend.money_sum(ms.c.payment_sum))
        .select_from(d.join(ms, ms.c.message_id == d.c.message_id))
        .where(
            d.c.state.in_(UNACKNOWLEDGED_STATES),
            partner_expr() == partner,
            ms.c.payload_hash.is_not(None),
            ms.c.payment_sum.is_not(None),
            ms.c.currency_iso.is_not(None),
            or_(d.c.acked_hash.is_(None), d.c.acked_hash != ms.c.payload_hash),
        )
        .group_by(ms.c.currency_iso)
    )


def partner_at_stake(conn: Connection, partner: str) -> dict[str, Any]:
    """The detail fields of the partner's circuit mismatch."""
    return at_stake_detail(partner_totals(conn, partner))
