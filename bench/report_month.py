"""A month of messages written straight into the projection tables, for the reports bench
and the test that the reports agree with the views.

Rows are built as the projector builds them (decimal amounts with their integer columns
from the same ``to_minor``/``to_nano``) and stored through the projector's own bulk path
(``save_states``, ``save_lines``: one driver ``executemany`` a batch), so a million
messages load in minutes instead of folding five million events. What this measures is
reading the projection, not projecting it.

The traffic: 40 partners (a few large, many small), five routes (Russia on three carriers,
Kazakhstan with a rate card in KZT and DLR costs in EUR, Germany, the United Kingdom), one
to three parts, the usual spread of final and pending statuses, free and unpriced messages,
refusals with no carrier, DLR costs on most delivered messages, Altegio's acknowledgements,
margins in EUR (``fx_missing`` on a few), one closed invoice per carrier billing a tenth of
its messages (a few lines unclaimed, a few at another price) and open and resolved
mismatches.
"""

from __future__ import annotations

import hashlib
import random
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from pipeline.db.backend import backend_of
from pipeline.db.codec import row_codec
from pipeline.db.engine import Database
from pipeline.domain.money import currency_exponent, to_minor, to_nano
from pipeline.projector.store import LIVE, save_lines, save_states

BATCH = 5000
REPORTING_CURRENCY = "EUR"
#: One unit of each currency in EUR (exact decimals, so every product is exact).
TO_EUR = {"EUR": Decimal(1), "RUB": Decimal("0.0101"), "KZT": Decimal("0.0019"),
          "GBP": Decimal("1.17")}  # fmt: skip


@dataclass(frozen=True)
class Route:
    country: str
    prefix: str
    price: Decimal  # per part, the partner's tariff
    currency: str
    carriers: tuple[str, ...]
    card: Decimal  # per part, the carriers' rate card
    card_currency: str
    dlr_cost: Decimal  # per part, what DLRs report
    dlr_currency: str
    weight: float


ROUTES = (
    Route("RU", "+7916", Decimal("2.27"), "RUB", ("mts", "megafon", "beeline"),
          Decimal("0.50"), "RUB", Decimal("0.48"), "RUB", 0.72),
    Route("KZ", "+7701", Decimal("9.50"), "KZT", ("kcell",),
          Decimal("4.20"), "KZT", Decimal("0.0083"), "EUR", 0.08),
    Route("DE", "+49151", Decimal("0.07"), "EUR", ("vodafone",),
          Decimal("0.041"), "EUR", Decimal("0.04"), "EUR", 0.10),
    Route("GB", "+44770", Decimal("0.05"), "GBP", ("bt",),
          Decimal("0.031"), "GBP", Decimal("0.0305"), "GBP", 0.10),
)  # fmt: skip
CARRIERS = sorted({c for r in ROUTES for c in r.carriers})
PARTNERS = [f"salon-{n:03d}" for n in range(40)]
PARTNER_WEIGHTS = [1 / (n + 1) for n in range(40)]
#: (status, is_final, weight); None: accepted, not submitted yet.
STATUSES = ((1, True, 0.82), (2, True, 0.06), (16, True, 0.02), (52, True, 0.01),
            (4, False, 0.05), (8, False, 0.03), (None, False, 0.01))  # fmt: skip
FOLD_STATE = {
    "tracks": {"1": {"status": 1, "rank": 3, "at": "2026-01-01T00:00:05Z"}},
    "reported_finals": [1],
    "costs": {},
}


@dataclass(frozen=True)
class Month:
    start: datetime
    end: datetime
    messages: int


def message_row(n: int, month: Month, rng: random.Random, *, offset: int = 0) -> dict[str, Any]:
    """Message ``n`` of the month (numbered ``offset + n`` in the whole set), as
    ``store.state_row`` would build it."""
    span = (month.end - month.start).total_seconds()
    accepted = month.start + timedelta(seconds=span * (n + rng.random()) / month.messages)
    route = rng.choices(ROUTES, [r.weight for r in ROUTES])[0]
    status, final, _w = rng.choices(STATUSES, [s[2] for s in STATUSES])[0]
    refused = rng.random() < 0.01
    carrier = None if refused or status is None else rng.choice(route.carriers)
    if refused:
        status, final = 16, True
    parts = rng.choices((1, 2, 3), (0.85, 0.12, 0.03))[0]
    free = rng.random() < 0.02
    price: Decimal | None = Decimal(0) if free else parts * route.price
    if rng.random() < 0.005:
        price = None  # no tariff
    currency = None if price is None else route.currency
    expected = None if carrier is None else parts * route.card
    reported = parts * route.dlr_cost if status == 1 and rng.random() < 0.7 else None
    invoiced = None
    if carrier is not None and rng.random() < 0.1:
        invoiced = expected if rng.random() < 0.95 else parts * (route.card + Decimal("0.01"))
    cost, cost_currency, source = None, None, None
    for amount, cur, name in ((invoiced, route.card_currency, "invoiced"),
                              (reported, route.dlr_currency, "reported"),
                              (expected, route.card_currency, "expected")):  # fmt: skip
        if amount is not None:
            cost, cost_currency, source = amount, cur, name
            break
    acked = price if final and price is not None and rng.random() < 0.9 else None
    margin = None
    if acked is not None and cost is not None and cost_currency == currency:
        margin = acked - cost
    fx_missing = rng.random() < 0.01
    revenue_r = cost_r = margin_r = None
    if not fx_missing:
        revenue_r = acked * TO_EUR[route.currency] if acked is not None else None
        cost_r = cost * TO_EUR[cost_currency] if cost is not None and cost_currency else None
        if revenue_r is not None and cost_r is not None:
            margin_r = revenue_r - cost_r
    number = offset + n
    message_id = f"{70_000_000_000 + number}"
    status_at = accepted + timedelta(seconds=rng.randint(2, 600)) if status else None
    submitted = accepted + timedelta(seconds=1) if carrier else None
    return {
        "message_id": message_id,
        "partner": rng.choices(PARTNERS, PARTNER_WEIGHTS)[0],
        "phone": f"{route.prefix}{rng.randrange(10**7):07d}",
        "channel": "sms",
        "dispatch_type": "notification",
        "delivery_callback_url": None,
        "free": free,
        "carrier": carrier,
        "carrier_message_id": f"{carrier}-{number:010d}" if carrier else None,
        "status": status,
        "status_at": status_at,
        "is_final": final,
        "parts_amount": parts,
        "parts_source": "text",
        "payment_sum": price,
        "currency_iso": currency,
        "carrier_cost": cost,
        "carrier_cost_currency": cost_currency,
        "carrier_cost_source": source,
        "carrier_cost_expected": expected,
        "carrier_cost_expected_currency": route.card_currency if expected is not None else None,
        "carrier_cost_reported": reported,
        "carrier_cost_reported_currency": route.dlr_currency if reported is not None else None,
        "carrier_cost_invoiced": invoiced,
        "carrier_cost_invoiced_currency": route.card_currency if invoiced is not None else None,
        "acked_payment_sum": acked,
        "acked_currency_iso": currency if acked is not None else None,
        "acked_status": status if acked is not None else None,
        "margin": margin,
        "margin_currency": currency if margin is not None else None,
        "revenue_reporting": revenue_r,
        "cost_reporting": cost_r,
        "margin_reporting": margin_r,
        "fx_missing": fx_missing,
        "payment_sum_minor": None if price is None else to_minor(price, route.currency),
        "currency_exponent": currency_exponent(currency) if currency else None,
        "acked_payment_sum_minor": None if acked is None else to_minor(acked, route.currency),
        "acked_currency_exponent": currency_exponent(currency) if acked is not None else None,
        "carrier_cost_nano": _nano(cost),
        "carrier_cost_expected_nano": _nano(expected),
        "carrier_cost_reported_nano": _nano(reported),
        "carrier_cost_invoiced_nano": _nano(invoiced),
        "margin_nano": _nano(margin),
        "revenue_reporting_nano": _nano(revenue_r),
        "cost_reporting_nano": _nano(cost_r),
        "margin_reporting_nano": _nano(margin_r),
        "country": route.country,
        "accepted_at": accepted,
        "submitted_at": submitted,
        "last_position": 5 * number + 5,
        "version": 3 if final else 2,
        "payload_hash": hashlib.sha256(message_id.encode()).hexdigest(),
        "updated_at": status_at or accepted,
        "fold_state": FOLD_STATE,
    }


def _nano(amount: Decimal | None) -> int | None:
    return None if amount is None else to_nano(amount)


def seed(db: Database, month: Month, *, seed: int = 2026, before: int = 0) -> None:
    """Write ``month.messages`` messages accepted in the month (and ``before`` more in the
    month before it, which a month's report must leave out), their invoices, invoice lines
    and mismatches."""
    rng = random.Random(seed)
    earlier = Month(month.start - (month.end - month.start), month.start, max(before, 1))
    lines: dict[str, list[dict[str, Any]]] = defaultdict(list)
    mismatches: list[dict[str, Any]] = []

    def rows() -> Iterator[dict[str, Any]]:
        for n in range(before):
            yield message_row(n, earlier, rng)
        for n in range(month.messages):
            yield message_row(n, month, rng, offset=before)

    batch: list[dict[str, Any]] = []
    for row in rows():
        batch.append(row)
        if row["carrier_cost_invoiced"] is not None:
            lines[row["carrier"]].append(_line(row, len(lines[row["carrier"]]) + 1, month))
        mismatches.extend(_mismatches(row, len(mismatches), rng, month))
        if len(batch) >= BATCH:
            with db.write() as conn:
                save_states(conn, LIVE, batch)
            batch = []
    with db.write() as conn:
        save_states(conn, LIVE, batch)
    _store_invoices(db, lines, month)
    with db.write() as conn:
        backend = backend_of(conn)
        encode = row_codec(backend, LIVE.mismatches).encode_into
        for start in range(0, len(mismatches), BATCH):
            chunk = [encode(dict(m)) for m in mismatches[start : start + BATCH]]
            backend.insert_new(conn, LIVE.mismatches, chunk, "id")


def invoice_id(carrier: str, month: Month) -> str:
    return f"INV-{carrier}-{month.start:%Y-%m}"


def _line(row: dict[str, Any], number: int, month: Month) -> dict[str, Any]:
    cost = row["carrier_cost_invoiced"]
    return {
        "invoice_id": invoice_id(row["carrier"], month),
        "version": 1,
        "line": number,
        "carrier": row["carrier"],
        "carrier_message_id": row["carrier_message_id"],
        "message_id": row["message_id"],
        "billed_at": row["submitted_at"],
        "destination": row["phone"],
        "parts": row["parts_amount"],
        "cost": cost,
        "cost_nano": to_nano(cost),
        "currency": row["carrier_cost_invoiced_currency"],
        "position": row["last_position"],
    }


def _store_invoices(db: Database, lines: dict[str, list[dict[str, Any]]], month: Month) -> None:
    headers = []
    for carrier in sorted(lines):
        ours = lines[carrier]
        # Two lines no message claims, as a carrier's file always has a few.
        for extra in range(2):
            stray = dict(ours[-1], line=len(ours) + 1, message_id=None,
                         carrier_message_id=f"{carrier}-stray-{extra}")  # fmt: skip
            ours.append(stray)
        total = sum((line["cost"] for line in ours), Decimal(0))
        stated = total + Decimal("1.00")
        headers.append({
            "invoice_id": invoice_id(carrier, month), "carrier": carrier, "version": 1,
            "period_from": month.start, "period_to": month.end,
            "currency": ours[0]["currency"], "stated_total": stated, "lines": len(ours),
            "lines_total": total, "stated_total_nano": to_nano(stated),
            "lines_total_nano": to_nano(total), "sha256": "0" * 64, "closed": True,
            "closed_at": month.end + timedelta(days=3), "position": 10**9 + len(headers),
        })  # fmt: skip
        for start in range(0, len(ours), BATCH):
            with db.write() as conn:
                save_lines(conn, LIVE, ours[start : start + BATCH])
    with db.write() as conn:
        backend = backend_of(conn)
        encode = row_codec(backend, LIVE.invoices).encode_into
        backend.upsert(conn, LIVE.invoices, [encode(h) for h in headers], "invoice_id")


def _mismatches(
    row: dict[str, Any], count: int, rng: random.Random, month: Month
) -> list[dict[str, Any]]:
    """About one message in a hundred has a mismatch; two in three are still open."""
    if rng.random() >= 0.01:
        return []
    invoiced = row["carrier_cost_invoiced"] is not None
    kind, origin = ("cost_mismatch", "invoice") if invoiced else ("negative_margin", "projector")
    amount = Decimal("0.01") * row["parts_amount"]
    currency = row["carrier_cost_currency"] or row["currency_iso"]
    opened = row["accepted_at"] + timedelta(minutes=5)
    open_ = rng.random() < 2 / 3
    return [{
        "id": count + 1, "message_id": row["message_id"], "subject": row["message_id"],
        "kind": kind, "origin": origin, "detail": {"amount": str(amount), "rule": kind},
        "status": "open" if open_ else "resolved", "opened_at": opened,
        "resolved_at": None if open_ else opened + timedelta(hours=1),
        "first_position": row["last_position"], "last_position": row["last_position"],
        "note": None, "amount_at_stake": amount, "amount_currency": currency,
        "amount_at_stake_nano": to_nano(amount),
        "invoice_id": invoice_id(row["carrier"], month) if invoiced else None,
    }]  # fmt: skip
