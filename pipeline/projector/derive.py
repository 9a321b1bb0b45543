"""From a message's facts to what Altegio and finance see: status, parts, price, cost, problems.

Pure: the same facts and rules always give the same view. Called after every event, so
its answer never depends on how the log was cut into batches. Because it runs that often,
the costly steps that depend on a handful of values (counting a text's parts, selecting a
tariff, pricing) are memoised: a message's text is counted once, not once per report.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, NamedTuple

from pipeline.domain.money import price_message
from pipeline.domain.parts import count_parts
from pipeline.domain.price_tables import BILLING, PriceTable, carrier_scope
from pipeline.domain.status import (
    DELIVERED,
    NOT_ENOUGH_FUNDS,
    Track,
    TrackStatus,
    combine_parts,
    merge_tracks,
    track_status,
)
from pipeline.domain.tariffs import TariffRule, select_tariff
from pipeline.mismatches.kinds import (
    KIND_CONFLICTING_FINAL,
    KIND_COST_PRECISION,
    KIND_NO_TARIFF,
    KIND_PARTS_MISMATCH,
    KIND_REFUSED_THEN_DELIVERED,
)
from pipeline.projector.finance import (
    FinanceRules,
    FinanceView,
    Sale,
    cost_precision,
    derive_finance,
    message_carrier,
    money_conditions,
    submitted_stamp,
)
from pipeline.projector.message import MessageFacts
from pipeline.times import parse_iso_time_text

WHOLE = "message"


@dataclass
class FoldRules:
    """The configuration the fold depends on (billing), with a memo of tariff look-ups."""

    tariffs: list[TariffRule] = field(default_factory=list)
    non_chargeable: frozenset[int] = frozenset({16, 52})
    rounding: str = "half_up"
    #: Event time after which a message not final is ``stale`` (projector.stale_after).
    stale_after: float = 72 * 3600.0
    #: Carrier terms, the reporting currency and the log's reference data (finance).
    finance: FinanceRules = field(default_factory=FinanceRules)
    _memo: dict[tuple[Any, ...], TariffRule | None] = field(default_factory=dict, repr=False)
    _prices: dict[tuple[Any, ...], tuple[Decimal, str, str]] = field(
        default_factory=dict, repr=False
    )
    _parts: dict[tuple[str, str], int] = field(default_factory=dict, repr=False)
    #: Rises whenever the reference data the fold reads may have changed (a new book, a
    #: rate, an invoice header, a closing, a price table): a derivation kept on a message's
    #: facts is reused only under the epoch it was made in (``row_view``).
    epoch: int = field(default=0, repr=False, compare=False)

    #: Memo sizes: each memo is cleared when it reaches this, which bounds memory.
    MEMO_LIMIT = 100_000

    def reference_changed(self) -> None:
        """The book changed: derivations kept on facts before now are not reused."""
        self.epoch += 1

    def computed_parts(self, text: str, channel: str) -> int:
        """``count_parts(text, channel).parts``, memoised (a message's reports share its text)."""
        key = (text, channel)
        found = self._parts.get(key)
        if found is None:
            if len(self._parts) >= self.MEMO_LIMIT:
                self._parts.clear()
            found = self._parts[key] = count_parts(text, channel).parts
        return found

    def price(
        self, tariff: TariffRule, parts: int, free: bool, status: int | None
    ) -> tuple[Decimal, str, str]:
        """(payment_sum, currency, payment_sum as payload text) by ``price_message``,
        memoised on what the price depends on."""
        key = (tariff, parts, free, status in self.non_chargeable)
        found = self._prices.get(key)
        if found is None:
            if len(self._prices) >= self.MEMO_LIMIT:
                self._prices.clear()
            quote = price_message(
                parts=parts,
                tariff=tariff,
                free=free,
                status=status,
                non_chargeable=self.non_chargeable,
                rounding=self.rounding,
            )
            assert quote.payment_sum is not None and quote.currency_iso is not None
            money = format(quote.payment_sum, "f")
            found = self._prices[key] = (quote.payment_sum, quote.currency_iso, money)
        return found

    def sale_table(self, facts: MessageFacts) -> PriceTable:
        """The ``billing`` table that prices an accepted message: recorded in the log (the
        book), else ``tariffs`` as the configured version 0."""
        return self.finance.table(BILLING, facts, self.tariffs)

    def tariff_for(
        self,
        partner: str,
        channel: str,
        dispatch_type: str | None,
        phone: str,
        at: str,
        table: PriceTable | None = None,
    ) -> TariffRule | None:
        """The tariff of ``table`` (default: the configured tariffs) for the message;
        memoised by the table's hash, so two versions never share an answer."""
        rules = self.tariffs if table is None else table.rules
        key = (partner, channel, dispatch_type, phone, at, None if table is None else table.sha256)
        if key not in self._memo:
            if len(self._memo) >= self.MEMO_LIMIT:
                self._memo.clear()
            self._memo[key] = select_tariff(
                rules,
                partner=partner,
                channel=channel,
                dispatch_type=dispatch_type,
                phone=phone,
                accepted_at=parse_iso_time_text(at),
            )
        return self._memo[key]


@dataclass(frozen=True, slots=True)
class MessageView:
    status: int | None = None
    status_at: str | None = None
    is_final: bool = False
    parts_amount: int | None = None
    parts_source: str | None = None
    payment_sum: Decimal | None = None
    currency_iso: str | None = None
    carrier: str | None = None
    carrier_message_id: str | None = None
    carrier_cost: Decimal | None = None
    carrier_cost_currency: str | None = None
    conditions: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: The money finance sees (pipeline.projector.finance); None before any derivation.
    finance: FinanceView | None = None

    @property
    def payload(self) -> tuple[Any, ...]:
        """The Altegio-visible payload; money as text so it is JSON- and hash-stable."""
        money = None if self.payment_sum is None else format(self.payment_sum, "f")
        return (self.status, money, self.currency_iso, self.parts_amount)


_HASHES: dict[tuple[Any, ...], str] = {}


def payload_hash(payload: tuple[Any, ...]) -> str | None:
    """sha256 of the payload as a JSON object; None while any of its fields is unknown.

    Memoised: a few payloads (a status, a price, a currency, a count) cover most messages.
    """
    if any(value is None for value in payload):
        return None
    found = _HASHES.get(payload)
    if found is None:
        if len(_HASHES) >= FoldRules.MEMO_LIMIT:
            _HASHES.clear()
        found = _HASHES[payload] = _hash(payload)
    return found


def _hash(payload: tuple[Any, ...]) -> str:
    status, money, currency, parts = payload
    canonical = json.dumps(
        {"status": status, "payment_sum": money, "currency_iso": currency, "parts_amount": parts},
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def part_identity(facts: MessageFacts, key: str) -> str:
    """Which part a raw report key is about, given every submission known now."""
    if key.startswith("cmid:"):
        submission = facts.submissions.get(key[5:])
        if submission is not None and submission.part is not None:
            return f"part:{submission.part}"
        if len(facts.submissions) > 1:
            return key
        return WHOLE
    return key


def carrier_parts(facts: MessageFacts) -> int | None:
    """A DLR's part count first, then the count given at submission."""
    if facts.dlr_parts is not None:
        return facts.dlr_parts[0]
    if len(facts.submissions) == 1:  # the common case: one submission, its count or none
        return next(iter(facts.submissions.values())).parts or None
    stated = [s.parts for s in facts.submissions.values() if s.parts]
    if stated:
        return max(stated)
    if len(facts.submissions) > 1:
        return len(facts.submissions)
    return None


def _part_statuses(facts: MessageFacts, parts: int | None) -> dict[str, TrackStatus]:
    if len(facts.tracks) == 1:
        # The common case, a single track about the whole message, needs no grouping.
        ((key, track),) = facts.tracks.items()
        if part_identity(facts, key) == WHOLE:
            return {WHOLE: track_status(track)}
    grouped: dict[str, list[Track]] = {}
    for key, track in facts.tracks.items():
        grouped.setdefault(part_identity(facts, key), []).append(track)
    whole = grouped.pop(WHOLE, [])
    if not grouped:
        return {WHOLE: _status_of(whole)} if whole else {}
    if parts and any(name.startswith("part:") for name in grouped):
        for n in range(1, parts + 1):
            grouped.setdefault(f"part:{n}", [])
    # A whole-message report speaks for every part.
    return {name: _status_of(tracks + whole) for name, tracks in grouped.items()}


def _status_of(tracks: list[Track]) -> TrackStatus:
    # One track needs no merging (the common case: one report track per part).
    return track_status(tracks[0] if len(tracks) == 1 else merge_tracks(tracks))


#: What ``visible`` gives: (payload, conditions, whether the message is final).
Visible = tuple[tuple[Any, ...], dict[str, dict[str, Any]], bool]


def visible(facts: MessageFacts, rules: FoldRules) -> Visible:
    """Only what must be known after *every* event: the Altegio-visible payload (which
    decides ``version``) and the mismatch conditions (whose opening and resolving positions
    are per event). The projector's hot path; ``derive_view`` gives the same two and the rest
    of the row, which depends on the message's final facts alone and so is derived once per
    message per batch."""
    core = _core(facts, rules)
    return (core.status, core.money, core.currency, core.parts), core.conditions, core.is_final


class Derived(NamedTuple):
    """What ``_core`` derives from a message's facts. A NamedTuple, not a dataclass: it is
    built after every event on the projector's hot path, and a tuple is the cheapest to build."""

    status: int | None
    money: str | None  # payment_sum as payload text
    currency: str | None
    parts: int | None
    conditions: dict[str, dict[str, Any]]
    status_at: str | None
    is_final: bool
    parts_source: str | None
    payment_sum: Decimal | None
    sale: Sale


_new_derived = _new_sale = tuple.__new__


def _core(facts: MessageFacts, rules: FoldRules) -> Derived:
    """One computation for both ``visible`` and ``derive_view``, so that the two can never
    disagree."""
    conditions: dict[str, dict[str, Any]] = {}
    accepted = facts.accepted

    reported_parts = carrier_parts(facts)
    computed = None
    if accepted is not None and accepted.text is not None:
        computed = rules.computed_parts(accepted.text, accepted.channel)
    if reported_parts is not None:
        parts, parts_source = reported_parts, "carrier"
        if computed is not None and computed != reported_parts:
            conditions[KIND_PARTS_MISMATCH] = {"carrier": reported_parts, "computed": computed}
    elif computed is not None:
        parts, parts_source = computed, "computed"
    elif accepted is not None and accepted.parts:
        parts, parts_source = accepted.parts, "computed"
    else:
        parts, parts_source = None, None

    by_part = _part_statuses(facts, reported_parts)
    status, status_at, final = combine_parts(list(by_part.values()))
    if facts.submissions and status is None:
        first = submitted_stamp(facts)
        status, status_at = 8, first[0]
    conflicts = {
        name: [[s, stamp[0], stamp[1]] for s, stamp in ts.finals]
        for name, ts in by_part.items()
        if ts.conflicting
    }
    if conflicts:
        conditions[KIND_CONFLICTING_FINAL] = {"parts": conflicts}
    if facts.refused is not None:
        reason, stamp = facts.refused
        delivered = [t.finals[DELIVERED][0] for t in facts.tracks.values() if DELIVERED in t.finals]
        if delivered:
            conditions[KIND_REFUSED_THEN_DELIVERED] = {
                "reason": reason,
                "delivered_at": max(delivered),
            }
        # Our own refusal is authoritative: the message never reached a carrier from us.
        status, status_at, final = NOT_ENOUGH_FUNDS, stamp[0], True

    payment_sum = currency = money = None
    if accepted is not None and parts is not None:
        tariff = None
        table = rules.sale_table(facts)
        if accepted.phone:
            tariff = rules.tariff_for(
                accepted.partner,
                accepted.channel,
                accepted.dispatch_type,
                accepted.phone,
                accepted.accepted_at,
                table,
            )
        if tariff is None:
            conditions[KIND_NO_TARIFF] = {
                "partner": accepted.partner,
                "channel": accepted.channel,
                "dispatch_type": accepted.dispatch_type,
                "phone": accepted.phone,
                "accepted_at": accepted.accepted_at,
            }
            if table.version:  # a recorded table: name the one that has no tariff for it
                conditions[KIND_NO_TARIFF]["table"] = table.label
        else:
            payment_sum, currency, money = rules.price(tariff, parts, accepted.free, status)
    sale = _new_sale(
        Sale, (message_carrier(facts), status, parts, payment_sum, currency, rules.non_chargeable)
    )
    if _money_matters(facts, sale, rules.finance):
        conditions.update(money_conditions(facts, sale, rules.finance, part_identity))
    precision = cost_precision(facts, sale, rules.finance, part_identity)
    if precision is not None:
        conditions[KIND_COST_PRECISION] = precision
    # tuple.__new__ skips NamedTuple's Python-level __new__: as cheap as a bare tuple.
    return _new_derived(
        Derived,
        (
            status,
            money,
            currency,
            parts,
            conditions,
            status_at,
            final,
            parts_source,
            payment_sum,
            sale,
        ),
    )


def _money_matters(facts: MessageFacts, sale: Sale, finance: FinanceRules) -> bool:
    """Whether any money condition can hold. The rest are spared the derivation after every
    event (``derive_finance`` gives no condition for them: the fast-path tests).

    Invoice lines and a closed invoice of the carrier can give one. Without them only
    ``negative_margin`` can: a charged message, not free, whose comparable cost (a DLR
    cost or the rate card's) converts into the price's currency: the same currency, or a
    rate of the acceptance day either way (what ``FinanceRules.convert`` needs). A cost in
    another currency with no rate that day claims nothing, so it is not derived. A DLR cost
    counts before any submission names the carrier (a report naming the message by id can
    come first): ``derive_finance`` compares it then too."""
    if facts.lines:
        return True
    carrier = sale.carrier
    if carrier is not None and finance.book.closed_invoices(carrier):
        return True
    price, currency, accepted = sale.payment_sum, sale.currency, facts.accepted
    if price is None or price <= 0 or currency is None or accepted is None or accepted.free:
        return False
    part_costs, message_cost = facts.part_costs, facts.message_cost
    sources: set[str | None] = set()
    if part_costs or message_cost is not None:
        sources = {c.currency for c in part_costs.values()}
        if message_cost is not None:
            sources.add(message_cost.currency)
        if currency in sources:
            return True
    terms = finance.carriers.get(carrier) if carrier is not None else None
    if carrier is not None and (
        (terms is not None and terms.rates) or finance.book.price_tables(carrier_scope(carrier))
    ):
        # The carrier's rate card gives the expected cost, in its rules' currencies.
        sources.update(rule.currency for rule in finance.rate_card(carrier, facts).rules)
    sources.discard(None)  # a cost without a currency converts into nothing
    if not sources:
        return False
    if currency in sources:
        return True
    book = finance.book
    day = finance.day(accepted.accepted_at)
    return any(
        book.rate(day, source, currency) is not None or book.rate(day, currency, source) is not None
        for source in sources
    )


def derive_view(facts: MessageFacts, rules: FoldRules) -> MessageView:
    return _view(facts, rules, _core(facts, rules))


def row_view(facts: MessageFacts, rules: FoldRules) -> MessageView:
    """``derive_view``, reusing the derivation ``fold_into`` kept on the facts when it was
    made by these rules under the current epoch: the projector's rows, once per message per
    batch. Nothing the derivation reads changes between a fold and the row but the book,
    whose every change raises the epoch (a property test compares with ``derive_view``)."""
    kept = facts.derived
    if kept is not None and kept[0] is rules and kept[1] == rules.epoch:
        return _view(facts, rules, kept[2])
    return derive_view(facts, rules)


def _view(facts: MessageFacts, rules: FoldRules, core: Derived) -> MessageView:
    carrier = carrier_message_id = None
    if facts.submissions:
        first_sub = min(facts.submissions.values(), key=lambda s: (s.part or 0, s.stamp[1]))
        carrier, carrier_message_id = first_sub.carrier, first_sub.carrier_message_id
    money, _conditions = derive_finance(facts, core.sale, rules.finance, part_identity)
    cost = money.cost
    return MessageView(
        status=core.status,
        status_at=core.status_at,
        is_final=core.is_final,
        parts_amount=core.parts,
        parts_source=core.parts_source,
        payment_sum=core.payment_sum,
        currency_iso=core.currency,
        carrier=carrier,
        carrier_message_id=carrier_message_id,
        carrier_cost=cost.amount if cost else None,
        carrier_cost_currency=cost.currency if cost else None,
        conditions=core.conditions,
        finance=money,
    )
