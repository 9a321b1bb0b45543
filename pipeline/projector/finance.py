"""A message's money as finance sees it: three carrier costs, revenue, margin, disputes.

Pure, like the rest of the fold: the facts of one message, the configured carrier terms and
the log's reference data as of the event being folded (``Book``: FX rates, each invoice's
latest version, the closed invoices) always give the same figures and the same conditions.
The projector's edge keeps the book in step with the log (``pipeline.projector.reference``)
and re-derives the messages a new rate, version or closing concerns, so a figure never
depends on how the log was cut into batches.

The three costs are kept apart and none overwrites another (docs/reconciliation.md):

* expected: the carrier's rate card (``carriers.<name>.rates`` and ``charge_on``);
* reported: what DLRs said: a cost about the whole message, else the latest per part
  summed over the parts, once every part has one;
* invoiced: the sum of the message's invoice lines, per invoice only its latest version,
  credit notes (negative lines) netted.

The carrier cost finance uses is invoiced, else reported, else expected, and says which.
"""

from __future__ import annotations

import decimal
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from functools import lru_cache
from typing import Any, NamedTuple, Protocol

from pipeline.domain.carrier_cost import CarrierCost, expected_cost_by_rules
from pipeline.domain.fx import convert
from pipeline.domain.money import to_nano
from pipeline.domain.price_tables import (
    PriceTable,
    carrier_scope,
    configured_table,
    table_in_force,
    table_version,
)
from pipeline.domain.status import DELIVERED, Stamp, is_final
from pipeline.domain.tariffs import TariffRule
from pipeline.domain.tolerance import within
from pipeline.mismatches.kinds import (
    KIND_BILLED_BUT_REJECTED,
    KIND_COST_MISMATCH,
    KIND_CURRENCY_MISMATCH,
    KIND_DUPLICATE_CHARGE,
    KIND_MISSING_INVOICE_LINE,
    KIND_NEGATIVE_MARGIN,
    KIND_PARTS_MISMATCH,
)
from pipeline.projector.message import BilledLine, Cost, MessageFacts
from pipeline.times import parse_iso_time_text

#: Conditions opened with origin ``invoice`` are keyed ``kind@invoice`` among a message's
#: conditions (a message's parts can disagree with its text and its invoice at once).
INVOICE = "@invoice"

#: Amounts converted to another currency keep this many decimals (the fixed 10^-9 scale
#: of carrier costs); a conversion is the only rounding here, half even.
CONVERTED = Decimal("1e-9")


class ClosedInvoice(NamedTuple):
    invoice_id: str
    period_from: datetime | None
    period_to: datetime | None


class Book(Protocol):
    """The log's reference data as of the event being folded."""

    def rate(self, day: date, base: str, quote: str) -> Decimal | None: ...

    def invoice_version(self, invoice_id: str) -> int | None: ...

    def closed_invoices(self, carrier: str) -> Sequence[ClosedInvoice]: ...

    def price_tables(self, scope: str) -> Sequence[PriceTable]:
        """The scope's recorded tables in log order (``pipeline.domain.price_tables``)."""
        ...


class EmptyBook:
    """No rates, no headers, nothing closed: what a log without reference data gives."""

    def rate(self, day: date, base: str, quote: str) -> Decimal | None:
        return None

    def invoice_version(self, invoice_id: str) -> int | None:
        return None

    def closed_invoices(self, carrier: str) -> Sequence[ClosedInvoice]:
        return ()

    def price_tables(self, scope: str) -> Sequence[PriceTable]:
        return ()


class _DayRates:
    """``pipeline.domain.fx.convert``'s rate table over the book, for one day's lookups."""

    def __init__(self, book: Book) -> None:
        self.book = book

    def get(self, key: tuple[date, str, str]) -> Decimal | None:
        return self.book.rate(*key)


@dataclass(frozen=True)
class CarrierTerms:
    """What the configuration says of one carrier's costs."""

    rates: tuple[TariffRule, ...] = ()
    charge_on: str = "submitted"
    tolerance_abs: Decimal = Decimal(0)
    tolerance_rel: Decimal = Decimal(0)


@dataclass
class FinanceRules:
    carriers: dict[str, CarrierTerms] = field(default_factory=dict)
    reporting_currency: str = "EUR"
    book: Book = field(default_factory=EmptyBook)
    _days: dict[str, date] = field(default_factory=dict, repr=False)
    #: scope -> (the configured rules object, its version-0 table), hashed once.
    _configured: dict[str, tuple[Sequence[TariffRule], int, PriceTable]] = field(
        default_factory=dict, repr=False
    )

    def table(
        self, scope: str, facts: MessageFacts, configured: Sequence[TariffRule]
    ) -> PriceTable:
        """The table of ``scope`` that prices the message (it must be accepted): the version
        a repricing named, else the one in force before its ``message.accepted``, else the
        configured ``configured`` (version 0) when the log records none."""
        accepted = facts.accepted
        assert accepted is not None
        recorded = self.book.price_tables(scope)
        if recorded:
            named = facts.repriced.get(scope)
            if named is not None:
                found = table_version(recorded, named[0])
                if found is not None:
                    return found
            return table_in_force(recorded, accepted.position, recorded[0])
        # The hot path: the configured rules are the same object every time (identity, not
        # equality, which would compare every rule after every event).
        known = self._configured.get(scope)
        if known is not None and known[0] is configured and known[1] == len(configured):
            return known[2]
        table = configured_table(scope, configured)
        self._configured[scope] = (configured, len(configured), table)
        return table

    def rate_card(self, carrier: str, facts: MessageFacts) -> PriceTable:
        """The carrier's rate card that prices the message (``table`` of ``carrier:<name>``)."""
        terms = self.carriers.get(carrier)
        return self.table(carrier_scope(carrier), facts, terms.rates if terms else ())

    def day(self, accepted_at: str) -> date:
        found = self._days.get(accepted_at)
        if found is None:
            if len(self._days) >= 100_000:
                self._days.clear()
            found = self._days[accepted_at] = parse_iso_time_text(accepted_at).date()
        return found

    def convert(self, amount: Decimal, source: str, target: str, day: date) -> Decimal | None:
        """``amount`` in ``target`` at ``day``'s rate (None without one)."""
        if source == target:
            return amount
        converted = convert(amount, source, target, day, _DayRates(self.book))  # type: ignore[arg-type]
        return None if converted is None else _quantize(converted)


def _quantize(amount: Decimal) -> Decimal:
    if amount.as_tuple().exponent >= -9:  # type: ignore[operator]
        return amount
    with decimal.localcontext() as ctx:
        ctx.prec = decimal.MAX_PREC
        return amount.quantize(CONVERTED, rounding=decimal.ROUND_HALF_EVEN)


class Money(NamedTuple):
    amount: Decimal
    currency: str | None


class FinanceView(NamedTuple):
    expected: Money | None
    reported: Money | None
    invoiced: Money | None
    cost: Money | None
    cost_source: str | None
    acked_payment_sum: Decimal | None
    acked_currency: str | None
    acked_status: int | None
    margin: Money | None
    revenue_reporting: Decimal | None
    cost_reporting: Decimal | None
    margin_reporting: Decimal | None
    fx_missing: bool
    submitted_at: str | None


class Sale(NamedTuple):
    """What the rest of the fold derived, which the money depends on. A NamedTuple: it is
    built after every event, and a tuple is the cheapest to build."""

    carrier: str | None
    status: int | None
    parts: int | None
    payment_sum: Decimal | None
    currency: str | None
    non_chargeable: frozenset[int]


# -- the three costs ------------------------------------------------------------------------


def message_carrier(facts: MessageFacts) -> str | None:
    """The carrier of the first submission (the first part's): the one the row names."""
    submissions = facts.submissions
    if len(submissions) < 2:  # none, or one: the min of one needs no key
        return next(iter(submissions.values())).carrier if submissions else None
    first = min(submissions.values(), key=lambda s: (s.part or 0, s.stamp[1]))
    return first.carrier


def submitted_at(facts: MessageFacts) -> str | None:
    """The carrier time of the first submission (fold time text)."""
    if not facts.submissions:
        return None
    return submitted_stamp(facts)[0]


def submitted_stamp(facts: MessageFacts) -> Stamp:
    """The stamp of the first submission (there is one)."""
    submissions = facts.submissions
    if len(submissions) == 1:  # the min of one
        return next(iter(submissions.values())).stamp
    return min(s.stamp for s in submissions.values())


def reported_cost(facts: MessageFacts, part_of: Any, parts: int | None = None) -> Cost | None:
    """DLR costs: a cost about the whole message, else the latest per part summed (one
    currency; parts reported in several currencies have no single sum).

    The sum needs a cost for each of the message's ``parts``: the parts reported so far
    are not what the message cost, and held against a right invoice they would make the
    unreported parts look overcharged (and the margin look better than it is)."""
    if facts.message_cost is not None:
        return facts.message_cost
    latest: dict[str, Cost] = {}
    for key, cost in facts.part_costs.items():
        name = part_of(facts, key)
        if name not in latest or cost.stamp > latest[name].stamp:
            latest[name] = cost
    if not latest or len({c.currency for c in latest.values()}) != 1:
        return None
    if parts is not None and len(latest) < parts:
        return None
    total = sum((Decimal(c.amount) for c in latest.values()), Decimal(0))
    first = next(iter(latest.values()))
    return Cost(format(total, "f"), first.currency, first.stamp)


def expected_cost(facts: MessageFacts, sale: Sale, rules: FinanceRules) -> CarrierCost | None:
    accepted = facts.accepted
    if accepted is None or not accepted.phone or sale.carrier is None or not sale.parts:
        return None
    card = rules.rate_card(sale.carrier, facts)
    if not card.rules:
        return None
    terms = rules.carriers.get(sale.carrier) or CarrierTerms()
    return expected_cost_by_rules(
        card.rules,
        terms.charge_on,  # type: ignore[arg-type]
        accepted.phone,
        parse_iso_time_text(accepted.accepted_at),
        sale.parts,
        sale.status,
    )


def current_lines(facts: MessageFacts, book: Book) -> list[BilledLine]:
    """The lines that count: of each invoice, those of its latest version (the version the
    book knows from the invoice's header, or a later one whose lines are arriving)."""
    if not facts.lines:
        return []
    latest: dict[str, int] = {}
    for line in facts.lines.values():
        if line.version > latest.get(line.invoice_id, 0):
            latest[line.invoice_id] = line.version
    for invoice_id in latest:
        known = book.invoice_version(invoice_id)
        if known is not None and known > latest[invoice_id]:
            latest[invoice_id] = known
    chosen = [line for line in facts.lines.values() if line.version == latest[line.invoice_id]]
    return sorted(chosen, key=lambda line: line.position)


def _sum_by_currency(lines: Sequence[BilledLine]) -> dict[str | None, Decimal]:
    out: dict[str | None, Decimal] = {}
    for line in lines:
        out[line.currency] = out.get(line.currency, Decimal(0)) + Decimal(line.amount)
    return out


# -- derivation -----------------------------------------------------------------------------


class _Costs(NamedTuple):
    expected: Money | None
    reported: Money | None
    lines: list[BilledLine]
    by_currency: dict[str | None, Decimal]
    invoiced: Money | None
    day: date | None


def _costs(facts: MessageFacts, sale: Sale, rules: FinanceRules, part_of: Any) -> _Costs:
    expected_cc = expected_cost(facts, sale, rules)
    expected = Money(expected_cc.amount, expected_cc.currency) if expected_cc else None
    dlr = reported_cost(facts, part_of, sale.parts)
    reported = Money(Decimal(dlr.amount), dlr.currency) if dlr else None
    lines = current_lines(facts, rules.book)
    by_currency = _sum_by_currency(lines)
    invoiced = None
    if len(by_currency) == 1:
        ((currency, total),) = by_currency.items()
        invoiced = Money(total, currency)
    accepted = facts.accepted
    day = rules.day(accepted.accepted_at) if accepted is not None else None
    return _Costs(expected, reported, lines, by_currency, invoiced, day)


def money_conditions(
    facts: MessageFacts, sale: Sale, rules: FinanceRules, part_of: Any
) -> dict[str, dict[str, Any]]:
    """The money conditions that hold now: what the fold needs after every event (the
    figures of ``derive_finance`` are needed once per message per batch)."""
    return _conditions(facts, sale, rules, _costs(facts, sale, rules, part_of))


def _conditions(
    facts: MessageFacts, sale: Sale, rules: FinanceRules, costs: _Costs
) -> dict[str, dict[str, Any]]:
    conditions: dict[str, dict[str, Any]] = {}
    expected, reported = costs.expected, costs.reported
    comparable = reported if reported is not None else expected
    _negative_margin(conditions, facts, sale, comparable, "reported" if reported else "expected",
                     rules, costs.day)  # fmt: skip
    carrier = sale.carrier
    terms = rules.carriers.get(carrier) if carrier else None
    if costs.lines:
        _invoice_conditions(conditions, facts, sale, costs.lines, costs.by_currency,
                            costs.invoiced, comparable, terms or CarrierTerms(),
                            expected)  # fmt: skip
    elif carrier is not None and facts.submissions:
        _missing_line(
            conditions, facts, sale, carrier, terms or CarrierTerms(), expected, rules.book
        )
    return conditions


def derive_finance(
    facts: MessageFacts, sale: Sale, rules: FinanceRules, part_of: Any
) -> tuple[FinanceView, dict[str, dict[str, Any]]]:
    """The message's money and the money conditions that hold now."""
    costs = _costs(facts, sale, rules, part_of)
    expected, reported, invoiced, day = costs.expected, costs.reported, costs.invoiced, costs.day
    if invoiced is not None:
        cost, source = invoiced, "invoiced"
    elif reported is not None:
        cost, source = reported, "reported"
    elif expected is not None:
        cost, source = expected, "expected"
    else:
        cost, source = None, None

    acked = facts.acked
    revenue = None
    if acked is not None and acked.payment_sum is not None and acked.currency_iso:
        revenue = Money(Decimal(acked.payment_sum), acked.currency_iso)

    margin = None
    fx_missing = False
    target = rules.reporting_currency
    revenue_r = cost_r = margin_r = None
    if day is not None:
        if revenue is not None and cost is not None and cost.currency:
            in_revenue = rules.convert(cost.amount, cost.currency, revenue.currency, day)  # type: ignore[arg-type]
            if in_revenue is None:
                fx_missing = True
            else:
                margin = Money(revenue.amount - in_revenue, revenue.currency)
        if revenue is not None:
            revenue_r = rules.convert(revenue.amount, revenue.currency, target, day)  # type: ignore[arg-type]
            fx_missing = fx_missing or revenue_r is None
        if cost is not None and cost.currency:
            cost_r = rules.convert(cost.amount, cost.currency, target, day)
            fx_missing = fx_missing or cost_r is None
        if revenue_r is not None and cost_r is not None:
            margin_r = revenue_r - cost_r

    view = FinanceView(
        expected=expected,
        reported=reported,
        invoiced=invoiced,
        cost=cost,
        cost_source=source,
        acked_payment_sum=revenue.amount if revenue else None,
        acked_currency=acked.currency_iso if acked else None,
        acked_status=acked.status if acked else None,
        margin=margin,
        revenue_reporting=revenue_r,
        cost_reporting=cost_r,
        margin_reporting=margin_r,
        fx_missing=fx_missing,
        submitted_at=submitted_at(facts),
    )
    return view, _conditions(facts, sale, rules, costs)


def _text(amount: Decimal) -> str:
    return format(amount, "f")


# -- precision ------------------------------------------------------------------------------


@lru_cache(maxsize=4096)
def _too_fine(text: str) -> bool:
    """Whether an amount's text is one the 10^-9 integer columns cannot hold exactly."""
    try:
        return to_nano(Decimal(text)) is None
    except (ArithmeticError, TypeError, ValueError):
        return False  # not an amount at all: the fold judges it elsewhere


@lru_cache(maxsize=256)
def _fine_rates(terms: CarrierTerms) -> bool:
    return any(to_nano(rule.price_per_part) is None for rule in terms.rates)


def cost_precision(
    facts: MessageFacts, sale: Sale, rules: FinanceRules, part_of: Any
) -> dict[str, Any] | None:
    """The ``cost_precision`` detail when one of the message's three carrier costs has a
    digit finer than 10^-9 (or is too large for the integer columns): its ``*_nano``
    column stays NULL rather than rounded, and this says so. None otherwise.

    Cheap after every event: only a message with a DLR cost, an invoice line or a rate
    card whose amount text is that fine is derived further.
    """
    terms = rules.carriers.get(sale.carrier) if sale.carrier else None
    if (
        facts.message_cost is None
        and not facts.part_costs
        and not facts.lines
        and (terms is None or not terms.rates)
    ):
        return None  # no cost at all (most events): nothing can be too fine
    suspect = (
        (facts.message_cost is not None and _too_fine(facts.message_cost.amount))
        or any(_too_fine(c.amount) for c in facts.part_costs.values())
        or any(_too_fine(line.amount) for line in facts.lines.values())
        or (terms is not None and _fine_rates(terms))
    )
    if not suspect:
        return None
    costs = _costs(facts, sale, rules, part_of)
    fine = {
        name: money
        for name, money in (
            ("expected", costs.expected),
            ("reported", costs.reported),
            ("invoiced", costs.invoiced),
        )
        if money is not None and to_nano(money.amount) is None
    }
    if not fine:
        return None
    return {
        "costs": {name: _text(money.amount) for name, money in fine.items()},
        "currencies": {name: money.currency for name, money in fine.items()},
        "scale": "1e-9",
        "amount_at_stake": None,
        "currency": None,
    }


def _negative_margin(
    conditions: dict[str, dict[str, Any]],
    facts: MessageFacts,
    sale: Sale,
    cost: Money | None,
    source: str,
    rules: FinanceRules,
    day: date | None,
) -> None:
    """A charged message whose expected carrier cost exceeds its price (through the day's
    rate when the currencies differ; without a rate nothing is claimed)."""
    accepted = facts.accepted
    price, currency = sale.payment_sum, sale.currency
    if accepted is None or accepted.free or price is None or price <= 0 or currency is None:
        return
    if cost is None or cost.currency is None or day is None:
        return
    in_price = rules.convert(cost.amount, cost.currency, currency, day)
    if in_price is None or in_price <= price:
        return
    conditions[KIND_NEGATIVE_MARGIN] = {
        "payment_sum": _text(price),
        "cost": _text(cost.amount),
        "cost_currency": cost.currency,
        "cost_source": source,
        "cost_in_price_currency": _text(in_price),
        "amount_at_stake": _text(in_price - price),
        "currency": currency,
    }


class Netted(NamedTuple):
    """The lines after credit notes are netted: what is billed, and what twice."""

    charges: list[BilledLine]  # charges neither cancelled nor duplicated
    duplicates: list[BilledLine]  # charges that bill again what another charge bills
    adjustments: list[BilledLine]  # credits that cancel no charge: price adjustments
    why: list[dict[str, Any]]  # what each duplicate repeats


def net_lines(lines: list[BilledLine]) -> Netted:
    """Credit notes against charges, then charges against each other (lines in log order).

    A credit of exactly a charge's amount for the same carrier id cancels that charge (the
    latest such: of its own invoice first, else of any, as a credit note issued as a
    document of its own does), parts and all; any other credit adjusts the price. Of the
    charges left, one for a carrier id another charge already bills is a duplicate, and so
    is a charge without a carrier id from a second invoice when one already billed the
    message that way. Several charges of one invoice without carrier ids are its parts
    (``parts_mismatch`` judges their number), and a message whose parts were billed in two
    invoices, each part once, is no duplicate.
    """
    charges = [line for line in lines if Decimal(line.amount) >= 0]
    adjustments = []
    for credit in (line for line in lines if Decimal(line.amount) < 0):
        amount = -Decimal(credit.amount)
        same = [
            c
            for c in charges
            if c.carrier_message_id == credit.carrier_message_id and Decimal(c.amount) == amount
        ]
        match = [c for c in same if c.invoice_id == credit.invoice_id] or same
        if match:
            charges.remove(match[-1])
        else:
            adjustments.append(credit)
    kept: list[BilledLine] = []
    duplicates: list[BilledLine] = []
    why: list[dict[str, Any]] = []
    by_id: dict[str, str] = {}
    plain: str | None = None
    for charge in charges:
        if Decimal(charge.amount) == 0:
            kept.append(charge)
            continue
        cmid = charge.carrier_message_id
        if cmid:
            first = by_id.setdefault(cmid, charge.invoice_id)
            again = len([k for k in kept if k.carrier_message_id == cmid]) > 0
        else:
            first = plain = plain or charge.invoice_id
            again = first != charge.invoice_id
        if again:
            duplicates.append(charge)
            why.append({"carrier_message_id": cmid, "first_in": first,
                        "again_in": charge.invoice_id, "line": charge.line})  # fmt: skip
        else:
            kept.append(charge)
    return Netted(kept, duplicates, adjustments, why)


def _invoice_conditions(
    conditions: dict[str, dict[str, Any]],
    facts: MessageFacts,
    sale: Sale,
    lines: list[BilledLine],
    by_currency: dict[str | None, Decimal],
    invoiced: Money | None,
    comparable: Money | None,
    terms: CarrierTerms,
    rate_card: Money | None,
) -> None:
    """The invoice's kinds, each about money no other kind counts: a charge that should
    not be (billed_but_rejected) is not also priced; a duplicate is not also a cost or
    parts difference; a difference in parts is not also one in price."""
    invoice_id = lines[-1].invoice_id
    cited = [_cite(line) for line in lines]
    currency = invoiced.currency if invoiced else None
    total = invoiced.amount if invoiced is not None else None
    if sale.status in sale.non_chargeable and total is not None and total > 0:
        conditions[KIND_BILLED_BUT_REJECTED + INVOICE] = {
            "status": sale.status,
            "invoiced": _text(total),
            "lines": cited,
            "invoice_id": invoice_id,
            "amount_at_stake": _text(total),
            "currency": currency,
        }
        return
    if comparable is not None and comparable.currency is not None:
        foreign = {c: a for c, a in by_currency.items() if c != comparable.currency}
        if foreign:
            single = next(iter(foreign)) if len(foreign) == 1 else None
            conditions[KIND_CURRENCY_MISMATCH + INVOICE] = {
                "expected_currency": comparable.currency,
                "invoiced": {str(c): _text(a) for c, a in foreign.items()},
                "lines": cited,
                "invoice_id": invoice_id,
                "amount_at_stake": _text(foreign[single]) if single else None,
                "currency": single,
            }
            return
    if invoiced is None:
        return
    netted = net_lines(lines)
    if netted.duplicates:
        again = sum((Decimal(d.amount) for d in netted.duplicates), Decimal(0))
        conditions[KIND_DUPLICATE_CHARGE + INVOICE] = {
            "charged_again": netted.why,
            "lines": cited,
            "invoice_id": netted.duplicates[-1].invoice_id,
            "amount_at_stake": _text(again),
            "currency": currency,
        }
    billed = sum(c.parts for c in netted.charges)
    amount = sum((Decimal(c.amount) for c in [*netted.charges, *netted.adjustments]), Decimal(0))
    if billed == 0 and amount <= 0:
        return  # credited in full: nothing is billed
    parts = sale.parts
    if parts and billed and billed != parts:
        per_part = _per_part(rate_card, parts, invoiced, billed)
        detail: dict[str, Any] = {
            "invoice": billed,
            "message": parts,
            "lines": cited,
            "invoice_id": invoice_id,
            "amount_at_stake": None,
            "currency": None,
        }
        if per_part is not None:
            detail["amount_at_stake"] = _text(per_part.amount * (billed - parts))
            detail["currency"] = per_part.currency
            detail["price_per_part"] = _text(per_part.amount)
        conditions[KIND_PARTS_MISMATCH + INVOICE] = detail
    if comparable is None:
        return
    expected = comparable.amount
    if parts and billed and billed != parts:
        with decimal.localcontext() as ctx:
            ctx.prec = 40
            expected = _quantize(expected * billed / parts)
    if not within(amount, expected, terms.tolerance_abs, terms.tolerance_rel):
        conditions[KIND_COST_MISMATCH + INVOICE] = {
            "invoiced": _text(amount),
            "expected": _text(expected),
            "expected_source": "reported" if comparable is not rate_card else "rates",
            "billed_parts": billed,
            "tolerance": {"abs": _text(terms.tolerance_abs), "rel": _text(terms.tolerance_rel)},
            "lines": cited,
            "invoice_id": invoice_id,
            "amount_at_stake": _text(amount - expected),
            "currency": currency,
        }


def _per_part(
    rate_card: Money | None, parts: int, invoiced: Money | None, billed: int
) -> Money | None:
    """The price of one part: the rate card's (its cost is parts x price, so the division
    is exact), else the invoice's own average, kept to 10^-9."""
    if rate_card is not None and rate_card.amount > 0 and parts > 0:
        return Money(rate_card.amount / parts, rate_card.currency)
    if invoiced is None or billed <= 0:
        return None
    with decimal.localcontext() as ctx:
        ctx.prec = 40
        return Money(_quantize(invoiced.amount / billed), invoiced.currency)


def _missing_line(
    conditions: dict[str, dict[str, Any]],
    facts: MessageFacts,
    sale: Sale,
    carrier: str,
    terms: CarrierTerms,
    expected: Money | None,
    book: Book,
) -> None:
    """A closed invoice of the carrier covers the message's submission, the carrier bills
    it, and no line of any invoice bills it."""
    closed = book.closed_invoices(carrier)
    if not closed or sale.status in sale.non_chargeable:
        # A rejected or refused message (16, 52) left out of an invoice is what should
        # happen: billed, it would be billed_but_rejected. Never both ways a dispute.
        return
    billed = sale.status == DELIVERED if terms.charge_on == "delivered" else True
    if not billed or (expected is not None and expected.amount == 0):
        return
    sent = submitted_at(facts)
    if sent is None:
        return
    at = datetime.fromisoformat(sent)
    for invoice in closed:
        if (invoice.period_from is None or invoice.period_from <= at) and (
            invoice.period_to is None or at < invoice.period_to
        ):
            conditions[KIND_MISSING_INVOICE_LINE + INVOICE] = {
                "invoice_id": invoice.invoice_id,
                "submitted_at": sent,
                "status": sale.status,
                "final": is_final(sale.status),
                "amount_at_stake": _text(expected.amount) if expected else None,
                "currency": expected.currency if expected else None,
            }
            return


def _cite(line: BilledLine) -> dict[str, Any]:
    return {
        "invoice_id": line.invoice_id,
        "version": line.version,
        "line": line.line,
        "parts": line.parts,
        "cost": line.amount,
        "currency": line.currency,
    }
