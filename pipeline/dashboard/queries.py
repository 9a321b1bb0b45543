"""What the dashboard reads: the public reporting views (docs/reporting.md), with bound
parameters only, and the two operational figures no view has (dispatch backlog, projector
lag).

Money is read from integer columns (``*_nano``, ``*_minor``) and summed as Python integers,
then shown as ``Decimal``: exact on both engines, never a float. The daily figures (margin,
delivery, billing) come from ``dashboard_daily``, the dashboard's rollup of the same rows
the daily views sum (``pipeline.dashboard.rollup``, refreshed before a page reads it): a
month is a few thousand rows however many messages it had, and the sums equal the views'
exactly (tests/dashboard/test_rollup.py). A page reads the month once, unfiltered by
partner and carrier, and narrows and groups in Python: the same read gives the rows, the
totals and the names the filter menus offer.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sqlalchemy import Connection, func, select, text

from pipeline.dashboard.filters import Filters
from pipeline.db.backend import backend_of
from pipeline.db.tables import events
from pipeline.dispatch.tables import deliveries
from pipeline.projector.store import CHECKPOINT, LIVE

NANO = 9
RATE = Decimal("0.0001")


def nano(units: int | None) -> Decimal | None:
    """10⁻⁹ units as the exact amount (None stays None)."""
    return None if units is None else Decimal(units).scaleb(-NANO)


def minor(units: int | None, exponent: int | None) -> Decimal | None:
    return None if units is None else Decimal(units).scaleb(-(exponent or 0))


def rate(delivered: int, finals: int) -> Decimal | None:
    """Delivered among the final messages, to 4 places, half up (as ``v_delivery_daily``)."""
    if finals <= 0:
        return None
    return (Decimal(delivered) / Decimal(finals)).quantize(RATE, rounding=ROUND_HALF_UP)


def _add(a: int | None, b: int | None) -> int | None:
    """A sum over rows where a NULL row adds nothing (SQL's ``sum``)."""
    if b is None:
        return a
    return b if a is None else a + b


def _days(f: Filters) -> dict[str, str]:
    return {"first": f.first.isoformat(), "after": f.after.isoformat()}


# -- margin (v_margin_daily) -----------------------------------------------------------


@dataclass
class Money3:
    """Revenue, cost, margin in 10⁻⁹ units of the reporting currency, and the counts."""

    messages: int = 0
    revenue: int | None = None
    cost: int | None = None
    margin: int | None = None
    fx_missing: int = 0

    def add(self, row: Any) -> None:
        self.messages += int(row.messages)
        self.revenue = _add(self.revenue, row.revenue_nano)
        self.cost = _add(self.cost, row.cost_nano)
        self.margin = _add(self.margin, row.margin_nano)
        self.fx_missing += int(row.fx_missing or 0)

    def merge(self, other: Money3) -> None:
        self.messages += other.messages
        self.revenue = _add(self.revenue, other.revenue)
        self.cost = _add(self.cost, other.cost)
        self.margin = _add(self.margin, other.margin)
        self.fx_missing += other.fx_missing

    @property
    def revenue_amount(self) -> Decimal | None:
        return nano(self.revenue)

    @property
    def cost_amount(self) -> Decimal | None:
        return nano(self.cost)

    @property
    def margin_amount(self) -> Decimal | None:
        return nano(self.margin)


#: The columns a margin figure can be grouped by (v_margin_daily's key).
MARGIN_KEYS = ("day", "partner", "carrier", "country")


@dataclass
class MarginData:
    #: Grouping (some of MARGIN_KEYS) -> [(the group's key values, its figures)].
    groups: dict[tuple[str, ...], list[tuple[tuple[Any, ...], Money3]]]
    partners: list[str]
    carriers: list[str]

    def total(self) -> Money3:
        out = Money3()
        for _key, money in next(iter(self.groups.values()), []):
            out.merge(money)
        return out

    def by(self, *keys: str) -> list[tuple[tuple[Any, ...], Money3]]:
        return list(self.groups[keys])


def margin_data(conn: Connection, f: Filters, *groupings: tuple[str, ...]) -> MarginData:
    """v_margin_daily's figures for the period, from the rollup, summed in SQL by each of
    ``groupings`` (a month is ~10,000 rollup rows: too many to group in Python per load)."""
    params: dict[str, Any] = _days(f)
    where = "WHERE day >= :first AND day < :after"
    names = conn.execute(
        text(f"SELECT DISTINCT partner, carrier FROM dashboard_daily {where}"), params
    ).all()
    for name in ("partner", "carrier"):
        value = getattr(f, name)
        if value is not None:
            where += f" AND {name} = :{name}"
            params[name] = value
    groups = {}
    for keys in groupings or (MARGIN_KEYS,):
        if not keys or any(k not in MARGIN_KEYS for k in keys):
            raise ValueError(f"cannot group the margin by {keys!r}")
        columns = ", ".join(keys)
        sql = (
            f"SELECT {columns}, CAST(sum(messages) AS BIGINT) AS messages, "
            "CAST(sum(revenue_nano) AS BIGINT) AS revenue_nano, "
            "CAST(sum(cost_nano) AS BIGINT) AS cost_nano, "
            "CAST(sum(margin_nano) AS BIGINT) AS margin_nano, "
            "CAST(sum(fx_missing) AS BIGINT) AS fx_missing "
            f"FROM dashboard_daily {where} GROUP BY {columns}"
        )
        rows = []
        for r in conn.execute(text(sql), params):
            money = Money3()
            money.add(r)
            rows.append((tuple(getattr(r, k) for k in keys), money))
        groups[keys] = rows
    return MarginData(
        groups,
        sorted({r.partner for r in names if r.partner is not None}),
        sorted({r.carrier for r in names if r.carrier is not None}),
    )


# -- delivery (v_delivery_daily) -------------------------------------------------------


@dataclass
class DeliveryData:
    #: (day, carrier) -> (messages, delivered, finals, the view's delivery_rate).
    cells: dict[tuple[str, str], tuple[int, int, int, Decimal | None]]
    carriers: list[str]

    def carrier_totals(self) -> list[tuple[str, int, int, int, Decimal | None]]:
        sums: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
        for (_day, carrier), (messages, delivered, finals, _r) in self.cells.items():
            s = sums[carrier]
            s[0] += messages
            s[1] += delivered
            s[2] += finals
        return [(c, *sums[c], rate(sums[c][1], sums[c][2])) for c in sorted(sums)]  # type: ignore[misc]


def delivery_data(conn: Connection, f: Filters) -> DeliveryData:
    params: dict[str, Any] = _days(f)
    # v_delivery_daily's rows, from the rollup; the rate rounded as the view rounds it.
    sql = (
        "SELECT day, carrier, CAST(sum(messages) AS BIGINT) AS messages, "
        "CAST(sum(delivered) AS BIGINT) AS delivered, CAST(sum(finals) AS BIGINT) AS finals "
        "FROM dashboard_daily WHERE day >= :first AND day < :after AND carrier IS NOT NULL"
    )
    if f.carrier is not None:
        sql += " AND carrier = :carrier"
        params["carrier"] = f.carrier
    sql += " GROUP BY day, carrier"
    cells = {}
    for r in conn.execute(text(sql), params):
        messages, delivered, finals = int(r.messages), int(r.delivered), int(r.finals)
        cells[(r.day, r.carrier)] = (messages, delivered, finals, rate(delivered, finals))
    return DeliveryData(cells, sorted({c for _d, c in cells}))


# -- billing (v_billing_daily) ---------------------------------------------------------


@dataclass(frozen=True)
class Billed:
    currency: str
    messages: int
    parts: int
    charged_messages: int
    payment_sum: Decimal


@dataclass
class BillingData:
    rows: list[Billed]
    currencies: list[str]


def billing_data(conn: Connection, f: Filters) -> BillingData:
    """What the partners owe in the period, per currency (every currency for the menu)."""
    params: dict[str, Any] = _days(f)
    # v_billing_daily summed per currency, from the rollup (its priced messages only).
    sql = (
        "SELECT currency_iso, sum(priced) AS messages, sum(priced_parts) AS parts, "
        "sum(charged) AS charged, sum(payment_sum_minor) AS minor, "
        "max(currency_exponent) AS exponent FROM dashboard_daily "
        "WHERE day >= :first AND day < :after AND priced > 0"
    )
    if f.partner is not None:
        sql += " AND partner = :partner"
        params["partner"] = f.partner
    sql += " GROUP BY currency_iso ORDER BY currency_iso"
    rows = [
        Billed(
            r.currency_iso,
            int(r.messages),
            int(r.parts),
            int(r.charged),
            minor(int(r.minor), r.exponent) or Decimal(0),
        )
        for r in conn.execute(text(sql), params)
    ]
    currencies = [b.currency for b in rows]
    if f.currency is not None:
        rows = [b for b in rows if b.currency == f.currency]
    return BillingData(rows, currencies)


# -- operations: dispatch backlog and projector lag ------------------------------------


@dataclass(frozen=True)
class Operations:
    #: Delivery rows by state (an in-flight row whose lease ran out counts as pending).
    backlog: dict[str, int]
    head: int
    checkpoint: int
    #: Seconds the oldest event not yet projected has waited (None: nothing waits).
    oldest_waiting: float | None

    @property
    def lag(self) -> int:
        return max(0, self.head - self.checkpoint)

    @property
    def waiting(self) -> int:
        return sum(self.backlog.get(s, 0) for s in ("pending", "in_flight"))


def operations(conn: Connection, now: datetime | None = None) -> Operations:
    now = now or datetime.now(UTC)
    lease_over = (deliveries.c.state == "in_flight") & (deliveries.c.lease_until < now)
    backlog: dict[str, int] = defaultdict(int)
    for state, expired, count in conn.execute(
        select(deliveries.c.state, lease_over, func.count()).group_by(
            deliveries.c.state, lease_over
        )
    ):
        backlog["pending" if expired else state] += int(count)
    head = int(conn.scalar(select(func.max(events.c.position))) or 0)
    cp = LIVE.checkpoints
    checkpoint = int(conn.scalar(select(cp.c.position).where(cp.c.name == CHECKPOINT)) or 0)
    oldest = None
    if head > checkpoint:
        recorded = conn.scalar(
            select(events.c.recorded_at).where(events.c.position > checkpoint)
            .order_by(events.c.position).limit(1)
        )  # fmt: skip
        if recorded is not None:
            oldest = max(0.0, (now - recorded).total_seconds())
    return Operations(dict(backlog), head, checkpoint, oldest)


def checkpoint(conn: Connection) -> int:
    cp = LIVE.checkpoints
    return int(conn.scalar(select(cp.c.position).where(cp.c.name == CHECKPOINT)) or 0)


def last_day(conn: Connection) -> str | None:
    """The UTC day of the newest accepted message (an index's last entry), or None."""
    from pipeline.projector.tables import message_state

    newest = conn.scalar(select(func.max(message_state.c.accepted_at)))
    return None if newest is None else newest.astimezone(UTC).date().isoformat()


# -- disputes (v_open_mismatches) ------------------------------------------------------


@dataclass
class Dispute:
    id: int
    message_id: str | None
    kind: str
    origin: str
    amount: Decimal | None
    currency: str | None
    invoice_id: str | None
    opened_at: datetime
    age_hours: int
    partner: str | None
    carrier: str | None


@dataclass
class DisputeGroup:
    kind: str
    currency: str | None
    count: int = 0
    #: 10⁻⁹ units; None when no row of the group has money at stake.
    at_stake: int | None = None
    rows: list[Dispute] = field(default_factory=list)

    @property
    def amount(self) -> Decimal | None:
        return nano(self.at_stake)


def disputes(conn: Connection, f: Filters, shown: int = 100) -> list[DisputeGroup]:
    """Every open mismatch (whatever the period: an open dispute is open now), grouped by
    kind and currency, the groups by amount at stake, largest first, each with its
    ``shown`` largest rows. The counts and sums are SQL's, and only the rows shown are
    read: thousands of open mismatches are a few groups and a few hundred rows."""
    backend = backend_of(conn)
    params: dict[str, Any] = {"shown": shown}
    source = "v_open_mismatches o"
    where = "WHERE 1 = 1"
    for name, column in (("partner", "s.partner"), ("carrier", "s.carrier"),
                         ("currency", "o.currency")):  # fmt: skip
        value = getattr(f, name)
        if value is not None:
            where += f" AND {column} = :{name}"
            params[name] = value
    if f.partner is not None or f.carrier is not None:
        source += " LEFT JOIN v_message_status s ON s.message_id = o.message_id"
    groups: dict[tuple[str, str | None], DisputeGroup] = {}
    for r in conn.execute(
        text(
            "SELECT o.kind, o.currency, count(*) AS n, "
            f"CAST(sum(o.amount_at_stake_nano) AS BIGINT) AS at_stake FROM {source} {where} "
            "GROUP BY o.kind, o.currency"
        ),
        params,
    ):
        groups[(r.kind, r.currency)] = DisputeGroup(r.kind, r.currency, int(r.n), r.at_stake)
    ranked = (
        "SELECT o.id, o.message_id, o.kind, o.origin, o.amount_at_stake_nano, o.currency, "
        "o.invoice_id, o.opened_at, o.age_hours, row_number() OVER (PARTITION BY o.kind, "
        "o.currency ORDER BY (o.amount_at_stake_nano IS NULL), o.amount_at_stake_nano DESC, "
        f"o.id) AS rank FROM {source} {where}"
    )
    sql = (
        "SELECT r.id, r.message_id, r.kind, r.origin, r.amount_at_stake_nano, r.currency, "
        "r.invoice_id, r.opened_at, r.age_hours, m.partner, m.carrier "
        f"FROM ({ranked}) r LEFT JOIN v_message_status m ON m.message_id = r.message_id "
        "WHERE r.rank <= :shown"
    )
    for r in conn.execute(text(sql), params):
        groups[(r.kind, r.currency)].rows.append(
            Dispute(
                r.id,
                r.message_id,
                r.kind,
                r.origin,
                nano(r.amount_at_stake_nano),
                r.currency,
                r.invoice_id,
                backend.load_time(r.opened_at),
                int(r.age_hours or 0),
                r.partner,
                r.carrier,
            )
        )
    for group in groups.values():
        group.rows.sort(key=lambda d: (d.amount is None, -(d.amount or 0), d.id))
    return sorted(
        groups.values(),
        key=lambda g: (g.at_stake is None, -(g.at_stake or 0), -g.count, g.kind, g.currency or ""),
    )


# -- invoices (v_invoices) -------------------------------------------------------------


@dataclass(frozen=True)
class Invoice:
    invoice_id: str
    carrier: str
    version: int
    period_from: datetime | None
    period_to: datetime | None
    currency: str | None
    lines: int
    stated_total: Decimal | None
    lines_total: Decimal | None
    matched: Decimal | None
    disputed: Decimal | None
    open_mismatches: int
    closed: bool

    @property
    def stated_minus_lines(self) -> Decimal | None:
        if self.stated_total is None or self.lines_total is None:
            return None
        return self.stated_total - self.lines_total


#: ``v_invoices``'s rows, computed as the view does but with the open invoice mismatches
#: read once as a set to join each line with (the view asks for each line, twice: 1.6 s on
#: 100,000 lines against 0.27 s, docs/benchmarks.md). The browser tests hold the two equal.
INVOICES_SQL = """
SELECT i.invoice_id, i.carrier, i.version, i.period_from, i.period_to, i.currency,
  COALESCE(l.lines, 0) AS lines, i.stated_total_nano, l.lines_total_nano,
  l.matched_nano AS matched_amount_nano, l.disputed_nano AS disputed_amount_nano,
  COALESCE(o.open_mismatches, 0) AS open_mismatches, i.closed
FROM invoices i
LEFT JOIN (
  SELECT x.invoice_id, x.version, count(*) AS lines,
    CASE WHEN count(x.cost_nano) = count(*) THEN CAST(sum(x.cost_nano) AS BIGINT) END
      AS lines_total_nano,
    CASE WHEN count(x.cost_nano) = count(*)
      THEN CAST(sum(CASE WHEN x.disputed = 0 THEN x.cost_nano ELSE 0 END) AS BIGINT) END
      AS matched_nano,
    CASE WHEN count(x.cost_nano) = count(*)
      THEN CAST(sum(CASE WHEN x.disputed = 1 THEN x.cost_nano ELSE 0 END) AS BIGINT) END
      AS disputed_nano
  FROM (
    SELECT li.invoice_id, li.version, li.cost_nano,
      CASE WHEN li.message_id IS NULL OR d.message_id IS NOT NULL THEN 1 ELSE 0 END AS disputed
    FROM invoice_lines li
    LEFT JOIN (SELECT DISTINCT message_id FROM mismatches
               WHERE origin = 'invoice' AND status = 'open' AND message_id IS NOT NULL) d
      ON d.message_id = li.message_id
  ) x
  GROUP BY x.invoice_id, x.version
) l ON l.invoice_id = i.invoice_id AND l.version = i.version
LEFT JOIN (
  SELECT invoice_id, count(*) AS open_mismatches FROM mismatches
  WHERE status = 'open' AND invoice_id IS NOT NULL GROUP BY invoice_id
) o ON o.invoice_id = i.invoice_id
WHERE (i.period_from IS NULL OR i.period_from < :end)
  AND (i.period_to IS NULL OR i.period_to > :start)"""


def invoices(conn: Connection, f: Filters) -> list[Invoice]:
    """Invoices whose period overlaps the filter's (or that state none)."""
    backend = backend_of(conn)
    start = datetime(f.first.year, f.first.month, f.first.day, tzinfo=UTC)
    end = datetime(f.after.year, f.after.month, f.after.day, tzinfo=UTC)
    params: dict[str, Any] = {"start": backend.bind_time(start), "end": backend.bind_time(end)}
    sql = INVOICES_SQL
    for name in ("carrier", "currency"):
        value = getattr(f, name)
        if value is not None:
            sql += f" AND i.{name} = :{name}"
            params[name] = value
    sql += " ORDER BY i.carrier, i.invoice_id"

    def when(value: Any) -> datetime | None:
        return None if value is None else backend.load_time(value)

    return [
        Invoice(
            r.invoice_id,
            r.carrier,
            r.version,
            when(r.period_from),
            when(r.period_to),
            r.currency,
            int(r.lines),
            nano(r.stated_total_nano),
            nano(r.lines_total_nano),
            nano(r.matched_amount_nano),
            nano(r.disputed_amount_nano),
            int(r.open_mismatches),
            bool(r.closed),
        )
        for r in conn.execute(text(sql), params)
    ]


# -- one message (v_message_status) ----------------------------------------------------


def message_status(conn: Connection, message_id: str) -> dict[str, Any] | None:
    """The message's row of ``v_message_status`` with exact amounts, or None."""
    row = conn.execute(
        text(
            "SELECT partner, carrier, country, status, status_name, is_final, parts_amount, "
            "payment_sum_minor, currency_exponent, currency_iso, "
            "expected_cost_nano, expected_cost_currency, reported_cost_nano, "
            "reported_cost_currency, invoiced_cost_nano, invoiced_cost_currency, "
            "carrier_cost_nano, carrier_cost_currency, carrier_cost_source, "
            "acked_revenue_minor, acked_currency_exponent, acked_currency, margin_nano, "
            "margin_currency, margin_reporting_nano, fx_missing, accepted_at, final_at, "
            "delivery_state FROM v_message_status WHERE message_id = :message_id"
        ),
        {"message_id": message_id},
    ).first()
    if row is None:
        return None
    backend = backend_of(conn)
    r = row._mapping
    return {
        "partner": r["partner"],
        "carrier": r["carrier"],
        "country": r["country"],
        "status": r["status"],
        "status_name": r["status_name"],
        "is_final": bool(r["is_final"]),
        "parts": r["parts_amount"],
        "price": (minor(r["payment_sum_minor"], r["currency_exponent"]), r["currency_iso"]),
        "expected": (nano(r["expected_cost_nano"]), r["expected_cost_currency"]),
        "reported": (nano(r["reported_cost_nano"]), r["reported_cost_currency"]),
        "invoiced": (nano(r["invoiced_cost_nano"]), r["invoiced_cost_currency"]),
        "cost": (nano(r["carrier_cost_nano"]), r["carrier_cost_currency"]),
        "cost_source": r["carrier_cost_source"],
        "revenue": (
            minor(r["acked_revenue_minor"], r["acked_currency_exponent"]),
            r["acked_currency"],
        ),
        "margin": (nano(r["margin_nano"]), r["margin_currency"]),
        "margin_reporting": nano(r["margin_reporting_nano"]),
        "fx_missing": bool(r["fx_missing"]),
        "accepted_at": None if r["accepted_at"] is None else backend.load_time(r["accepted_at"]),
        "final_at": None if r["final_at"] is None else backend.load_time(r["final_at"]),
        "delivery_state": r["delivery_state"],
    }


def pretty_json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, indent=1, sort_keys=True, default=str)


def distinct(values: Iterable[str | None]) -> list[str]:
    return sorted({v for v in values if v is not None})
