"""The log's reference data at the projector's edge: FX rates, invoice headers, closings.

These events are about no single message, yet they change what a message's money comes to:
a rate for the day turns an ``fx_missing`` margin into a number, a superseding invoice
version drops the lines of the old one, a closed invoice makes a missing line a dispute.
The projector writes each into its table (``fx_rates``, ``invoices``) as it folds it, keeps
the values in a ``LiveBook`` that the pure fold reads, and names the messages it concerns
(``concerned_by_*``), which it then derives again at the event's position, so live
projection and replay agree however the log is cut.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import Connection, and_, func, select, update

from pipeline.db.backend import backend_of
from pipeline.db.tables import events
from pipeline.domain.money import to_nano
from pipeline.domain.price_tables import (
    CARRIER_PREFIX,
    PriceTable,
    PriceTableError,
    rules_of_json,
    table_sha256,
)
from pipeline.domain.tolerance import within
from pipeline.eventlog import StoredEvent
from pipeline.eventlog.read import read_rows_leniently
from pipeline.projector.finance import ClosedInvoice, FinanceRules
from pipeline.times import parse_iso_time_text

#: Reference events: folded into their tables, never into a message directly.
REFERENCE_EVENTS = frozenset(
    {"fx.rate", "carrier.invoice", "carrier.invoice_closed", "prices.recorded", "prices.repriced"}
)


class ReferenceError(ValueError):
    """A reference event whose payload cannot be used (the projector skips it)."""


class LiveBook:
    """``pipeline.projector.finance.Book`` over the projection's tables, in one transaction.

    Reads are memoised for the batch; writes go through ``record_*``, which update the
    table and the memo together, so a later event of the same batch sees them.
    """

    def __init__(self, conn: Connection, tables: Any) -> None:
        self.conn = conn
        self.tables = tables
        self._rates: dict[date, dict[tuple[str, str], Decimal]] = {}
        self._versions: dict[str, int | None] = {}
        self._closed: dict[str, list[ClosedInvoice]] | None = None
        self._prices: dict[str, list[PriceTable]] | None = None
        self._first: dict[str, PriceTable] | None = None

    # -- Book --------------------------------------------------------------------------

    def rate(self, day: date, base: str, quote: str) -> Decimal | None:
        rates = self._rates.get(day)
        if rates is None:
            fx = self.tables.fx_rates
            rows = self.conn.execute(
                select(fx.c.base, fx.c.quote, fx.c.rate).where(fx.c.day == day.isoformat())
            )
            rates = self._rates[day] = {(r.base, r.quote): r.rate for r in rows}
        return rates.get((base, quote))

    def invoice_version(self, invoice_id: str) -> int | None:
        if invoice_id not in self._versions:
            inv = self.tables.invoices
            self._versions[invoice_id] = self.conn.scalar(
                select(inv.c.version).where(inv.c.invoice_id == invoice_id)
            )
        return self._versions[invoice_id]

    def closed_invoices(self, carrier: str) -> Sequence[ClosedInvoice]:
        if self._closed is None:
            inv = self.tables.invoices
            self._closed = {}
            rows = self.conn.execute(
                select(inv.c.invoice_id, inv.c.carrier, inv.c.period_from, inv.c.period_to)
                .where(inv.c.closed.is_(True))
                .order_by(inv.c.invoice_id)
            )
            for row in rows:
                self._closed.setdefault(row.carrier, []).append(
                    ClosedInvoice(row.invoice_id, row.period_from, row.period_to)
                )
        return self._closed.get(carrier, ())

    def price_tables(self, scope: str) -> Sequence[PriceTable]:
        """The scope's tables folded so far; before the first is folded, the first the log
        records (later in the log): a message older than the first table is priced by it
        from the start, so replay prices it at once as the live projection finally does."""
        found = self.recorded_tables(scope)
        if found:
            return found
        first = self._first_recorded().get(scope)
        return (first,) if first is not None else ()

    def recorded_tables(self, scope: str) -> list[PriceTable]:
        """The scope's tables folded into ``price_tables`` so far, in log order."""
        if self._prices is None:
            pt = self.tables.price_tables
            self._prices = {}
            rows = self.conn.execute(
                select(pt.c.scope, pt.c.version, pt.c.position, pt.c.sha256, pt.c.rules).order_by(
                    pt.c.position
                )
            )
            for row in rows:
                table = PriceTable(row.scope, row.version, row.position, row.sha256,
                                   rules_of_json(row.rules))  # fmt: skip
                self._prices.setdefault(row.scope, []).append(table)
        return self._prices.get(scope, [])

    def _first_recorded(self) -> dict[str, PriceTable]:
        """The first readable ``prices.recorded`` of each scope in the whole log (a few
        events, read by the index on type and position)."""
        if self._first is None:
            self._first = {}
            # Each row decoded on its own: one that no reader can decode (a payload nested
            # past the decoder's depth, say) is skipped here as the projector skips it.
            rows = read_rows_leniently(self.conn, events.c.type == "prices.recorded")
            for row in rows:
                if type(row) is not StoredEvent:
                    continue
                try:
                    table = price_table_of(row)
                except (ReferenceError, ValueError):
                    continue  # the projector skips it when it gets there
                self._first.setdefault(table.scope, table)
        return self._first

    # -- writes ------------------------------------------------------------------------

    def record_price_table(self, event: StoredEvent) -> tuple[PriceTable, bool]:
        """Store a recorded table: (the table, whether it is the first of its scope)."""
        table = price_table_of(event)
        self.recorded_tables(table.scope)  # load before changing
        assert self._prices is not None
        known = self._prices.setdefault(table.scope, [])
        if any(t.version == table.version for t in known):
            raise ReferenceError(f"prices.recorded: {table.label} is recorded already")
        pt = self.tables.price_tables
        row = {
            "position": table.position,
            "scope": table.scope,
            "version": table.version,
            "sha256": table.sha256,
            "rules": event.payload["rules"],
            "recorded_at": event.recorded_at,
        }
        self.conn.execute(pt.insert().values(**row))
        known.append(table)
        return table, len(known) == 1

    def record_rate(self, event: StoredEvent) -> tuple[date, str, str]:
        payload = event.payload
        day = _day(payload.get("day"))
        base, quote = _currency(payload.get("base")), _currency(payload.get("quote"))
        rate = _amount(payload.get("rate"), "rate")
        if rate <= 0 or base == quote:
            raise ReferenceError("fx.rate: a rate must be above 0 between two currencies")
        source = payload.get("source")
        row = {
            "day": day.isoformat(),
            "base": base,
            "quote": quote,
            "rate": rate,
            "source": str(source)[:128] if source is not None else None,
            "position": event.position,
        }
        backend_of(self.conn).upsert(
            self.conn, self.tables.fx_rates, [_encode(self.conn, self.tables.fx_rates, row)],
            ("day", "base", "quote"),
        )  # fmt: skip
        self.rate(day, base, quote)  # load the day before changing it
        self._rates[day][(base, quote)] = rate
        return day, base, quote

    def record_header(self, event: StoredEvent) -> dict[str, Any] | None:
        """Store a header; None when a later version is stored already (it counts)."""
        payload = event.payload
        invoice_id = _invoice_id(payload)
        version = payload.get("version")
        carrier = payload.get("carrier") or event.carrier
        if type(version) is not int or version < 1 or not isinstance(carrier, str):
            raise ReferenceError("carrier.invoice: needs a version and a carrier")
        known = self.invoice_version(invoice_id)
        if known is not None and known > version:
            return None
        inv, lines = self.tables.invoices, self.tables.invoice_lines
        total = payload.get("total")
        stated = None if total is None else _amount(total, "total")
        found = self.conn.execute(
            select(lines.c.cost).where(lines.c.invoice_id == invoice_id, lines.c.version == version)
        )
        count, lines_total = 0, Decimal(0)
        for (cost,) in found:
            count += 1
            lines_total += cost
        closed = self.conn.execute(
            select(inv.c.closed, inv.c.closed_at).where(inv.c.invoice_id == invoice_id)
        ).first()
        row = {
            "invoice_id": invoice_id,
            "carrier": carrier[:64],
            "version": version,
            "period_from": _time(payload.get("period_from")),
            "period_to": _time(payload.get("period_to")),
            "currency": _optional_currency(payload.get("currency")),
            "stated_total": stated,
            "lines": count,
            "lines_total": lines_total if count else None,
            "stated_total_nano": None if stated is None else to_nano(stated),
            "lines_total_nano": to_nano(lines_total) if count else None,
            "sha256": str(payload.get("sha256") or "")[:64] or None,
            "closed": bool(closed.closed) if closed else False,
            "closed_at": closed.closed_at if closed else None,
            "position": event.position,
        }
        backend_of(self.conn).upsert(
            self.conn, inv, [_encode(self.conn, inv, row)], ("invoice_id",)
        )
        self._versions[invoice_id] = version
        self._closed = None
        return row

    def record_closed(self, event: StoredEvent) -> dict[str, Any] | None:
        """Close an invoice; None when it was never imported or is closed already."""
        invoice_id = _invoice_id(event.payload)
        inv = self.tables.invoices
        row = self.conn.execute(select(inv).where(inv.c.invoice_id == invoice_id)).first()
        if row is None or row.closed:
            return None
        self.conn.execute(
            update(inv)
            .where(inv.c.invoice_id == invoice_id)
            .values(closed=True, closed_at=event.occurred_at)
        )
        self._closed = None
        return dict(row._mapping)


def price_table_of(event: StoredEvent) -> PriceTable:
    """The table a ``prices.recorded`` event states; its hash must be the rules' own."""
    payload = event.payload
    scope, version, sha = payload.get("scope"), payload.get("version"), payload.get("sha256")
    if not isinstance(scope, str) or not (scope == "billing" or scope.startswith(CARRIER_PREFIX)):
        raise ReferenceError("prices.recorded: scope is billing or carrier:<name>")
    if len(scope) > 80 or type(version) is not int or not 1 <= version < 2**31:
        raise ReferenceError("prices.recorded: a scope of at most 80 characters and a version")
    try:
        rules = rules_of_json(payload.get("rules"))
    except PriceTableError as exc:
        raise ReferenceError(f"prices.recorded: {exc}") from None
    if sha != table_sha256(rules):
        raise ReferenceError("prices.recorded: sha256 is not the hash of its rules")
    return PriceTable(scope, version, event.position, sha, rules)


def total_condition(row: dict[str, Any], rules: FinanceRules) -> dict[str, Any] | None:
    """The ``invoice_total_mismatch`` detail of a header row, or None when its lines add up
    to the stated total (within the carrier's tolerance) or no total is stated."""
    stated, total = row["stated_total"], row["lines_total"] or Decimal(0)
    if stated is None:
        return None
    terms = rules.carriers.get(row["carrier"])
    tol_abs = terms.tolerance_abs if terms else Decimal(0)
    tol_rel = terms.tolerance_rel if terms else Decimal(0)
    if within(stated, total, tol_abs, tol_rel):
        return None
    return {
        "invoice_id": row["invoice_id"],
        "version": row["version"],
        "stated_total": format(stated, "f"),
        "lines_total": format(total, "f"),
        "lines": row["lines"],
        "amount_at_stake": format(stated - total, "f"),
        "currency": row["currency"],
    }


# -- who is concerned ------------------------------------------------------------------


def concerned_by_rate(
    conn: Connection, tables: Any, day: date, base: str, quote: str, reporting: str
) -> list[str]:
    """Messages of that UTC day whose figures can use the pair: among the currencies they
    involve (price, costs, revenue, the reporting currency) are both of its sides."""
    st = tables.state
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    columns = (
        st.c.currency_iso,
        st.c.carrier_cost_currency,
        st.c.carrier_cost_expected_currency,
        st.c.carrier_cost_reported_currency,
        st.c.carrier_cost_invoiced_currency,
        st.c.acked_currency_iso,
    )
    rows = conn.execute(
        select(st.c.message_id, *columns).where(
            st.c.accepted_at >= start, st.c.accepted_at < start + timedelta(days=1)
        )
    )
    out = []
    for row in rows:
        involved = {c for c in row[1:] if c} | {reporting}
        if base in involved and quote in involved:
            out.append(row.message_id)
    return out


def concerned_by_version(conn: Connection, tables: Any, invoice_id: str, version: int) -> list[str]:
    """Messages billed by an older version of the invoice and not by this one."""
    lines = tables.invoice_lines
    rows = conn.execute(
        select(lines.c.message_id)
        .where(lines.c.invoice_id == invoice_id, lines.c.message_id.is_not(None))
        .group_by(lines.c.message_id)
        .having(func.max(lines.c.version) < version)
    )
    return [r.message_id for r in rows]


def superseded_unknown_lines(
    conn: Connection, tables: Any, invoice_id: str, version: int
) -> dict[tuple[str, str], list[int]]:
    """(carrier, carrier id) -> positions of the invoice's older lines that no message
    claims, when no unclaimed line of this version or of another invoice names the same
    carrier id: a line that no longer counts is no ``invoice_unknown_message``."""
    lines = tables.invoice_lines
    unclaimed = and_(lines.c.message_id.is_(None), lines.c.carrier_message_id.is_not(None))
    old = conn.execute(
        select(lines.c.carrier, lines.c.carrier_message_id, lines.c.position)
        .where(unclaimed, lines.c.invoice_id == invoice_id, lines.c.version < version)
        .order_by(lines.c.position)
    )
    found: dict[tuple[str, str], list[int]] = {}
    for carrier, carrier_message_id, position in old:
        found.setdefault((carrier, carrier_message_id), []).append(position)
    gone = {}
    for (carrier, carrier_message_id), positions in found.items():
        still = conn.scalar(
            select(func.count())
            .select_from(lines)
            .where(
                unclaimed,
                lines.c.carrier == carrier,
                lines.c.carrier_message_id == carrier_message_id,
                (lines.c.invoice_id != invoice_id) | (lines.c.version >= version),
            )
        )
        if not still:
            gone[(carrier, carrier_message_id)] = positions
    return gone


def concerned_by_closing(conn: Connection, tables: Any, row: dict[str, Any]) -> list[str]:
    """Messages of the invoice's carrier submitted within its period that no line bills."""
    st = tables.state
    where = [st.c.carrier == row["carrier"], st.c.carrier_cost_invoiced.is_(None)]
    if row["period_from"] is not None:
        where.append(st.c.submitted_at >= row["period_from"])
    if row["period_to"] is not None:
        where.append(st.c.submitted_at < row["period_to"])
    where.append(st.c.submitted_at.is_not(None))
    return [r.message_id for r in conn.execute(select(st.c.message_id).where(and_(*where)))]


def concerned_by_first_table(conn: Connection, tables: Any, scope: str) -> list[str]:
    """Messages accepted before a scope's first recorded table (every accepted message the
    projection holds when it folds that table): priced until then by the configuration,
    by the first table from then on."""
    st = tables.state
    where = [st.c.accepted_at.is_not(None)]
    if scope.startswith(CARRIER_PREFIX):
        where.append(st.c.carrier == scope[len(CARRIER_PREFIX) :])
    rows = conn.execute(select(st.c.message_id).where(and_(*where)).order_by(st.c.message_id))
    return [r.message_id for r in rows]


def concerned_by_repricing(
    conn: Connection, tables: Any, scope: str, start: datetime, end: datetime
) -> list[str]:
    """Messages accepted in ``[start, end)`` (of the carrier, for a rate card's scope)."""
    st = tables.state
    where = [st.c.accepted_at >= start, st.c.accepted_at < end]
    if scope.startswith(CARRIER_PREFIX):
        where.append(st.c.carrier == scope[len(CARRIER_PREFIX) :])
    rows = conn.execute(select(st.c.message_id).where(and_(*where)).order_by(st.c.message_id))
    return [r.message_id for r in rows]


def repricing_of(event: StoredEvent) -> tuple[str, int, datetime, datetime]:
    """(scope, version, start, end) of a ``prices.repriced`` event."""
    payload = event.payload
    scope, version = payload.get("scope"), payload.get("version")
    if not isinstance(scope, str) or type(version) is not int:
        raise ReferenceError("prices.repriced: needs a scope and a version")
    start = _time(payload.get("accepted_from"))
    end = _time(payload.get("accepted_to"))
    if start is None or end is None or not start < end:
        raise ReferenceError("prices.repriced: accepted_from before accepted_to")
    return scope, version, start, end


# -- payload fields --------------------------------------------------------------------


def _encode(conn: Connection, table: Any, row: dict[str, Any]) -> dict[str, Any]:
    from pipeline.db.codec import row_codec

    return row_codec(backend_of(conn), table).encode(row)


def _invoice_id(payload: dict[str, Any]) -> str:
    value = payload.get("invoice_id")
    if not isinstance(value, str) or not value or len(value) > 80:
        raise ReferenceError("invoice_id: a text of 1 to 80 characters")
    return value


def _currency(value: Any) -> str:
    if not isinstance(value, str) or len(value) != 3 or not value.isascii() or not value.isupper():
        raise ReferenceError("currency: an ISO 4217 code such as EUR")
    return value


def _optional_currency(value: Any) -> str | None:
    return None if value is None else _currency(value)


def _amount(value: Any, name: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, (str, int)) or len(str(value)) > 40:
        raise ReferenceError(f"{name}: a decimal amount as text")
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        raise ReferenceError(f"{name}: a decimal amount as text") from None
    if not amount.is_finite() or amount.adjusted() >= 18 or amount.as_tuple().exponent < -24:  # type: ignore[operator]
        raise ReferenceError(f"{name}: at most 18 digits before the point and 24 after")
    return amount


def _day(value: Any) -> date:
    if not isinstance(value, str):
        raise ReferenceError("day: a date such as 2026-11-30")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ReferenceError("day: a date such as 2026-11-30") from None


def _time(value: Any) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ReferenceError("period: a time as text")
    try:
        moment = parse_iso_time_text(value)
    except ValueError:
        raise ReferenceError("period: a time as text") from None
    if moment.tzinfo is None:
        raise ReferenceError("period: a time with its zone")
    return moment.astimezone(UTC)
