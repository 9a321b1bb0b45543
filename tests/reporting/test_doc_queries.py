"""Every example query of docs/reporting.md, run on both engines over the October of
tests/reporting/october.py: its rows must equal the figures worked out here by hand, and the
table the page shows under it must be those rows. The SQL is taken from the page's fenced
``sql`` blocks, so the page cannot drift from the views.

A block is named by the HTML comment above it (``<!-- query: NAME [postgresql|sqlite] -->``);
an engine after the name runs it on that engine alone. PostgreSQL runs the queries in a
session whose time zone is not UTC, proving ``day`` and the ``+00`` bounds do not depend on it.
"""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from pipeline.db.engine import Database
from pipeline.eventlog import append
from tests.finance.money_events import project
from tests.reporting.october import october_log, october_rules

DOC = Path(__file__).resolve().parents[2] / "docs" / "reporting.md"
BLOCK = re.compile(
    r"<!-- query: (?P<name>\w+)(?: (?P<engine>postgresql|sqlite))? -->\n"
    r"```sql\n(?P<sql>.*?)\n```\n(?P<after>.*?)(?=<!-- query:|^#|\Z)",
    re.DOTALL | re.MULTILINE,
)

N = 10**9
#: Hand-computed from the October's table (tests/reporting/october.py).
EXPECTED: dict[str, list[tuple[Any, ...]]] = {
    # acme: a1 2.27 + a2 2 parts x 2.27 + a3 3.00 + a4 free 0 (a5 is September, a6
    # November); globex: g1 rejected, priced 0. Charged = payment_sum > 0.
    "month_bill": [
        ("acme", "RUB", 4, 5, 3, 4, 227 + 454 + 300 + 0, 2),
        ("globex", "RUB", 1, 1, 0, 0, 0, 2),
    ],
    "month_bill_numeric": [("acme", "RUB", "9.81"), ("globex", "RUB", "0.00")],
    "partner_owes": [("RUB", 4, 3, 981, 2)],
    # a3 beeline rate card 0.80; a4 mts rate card 0.50; a1 invoiced 0.62; a2 DLR 0.90.
    "carriers_charged": [
        ("beeline", "RUB", "expected", 1, 1, 800_000_000),
        ("mts", "RUB", "expected", 1, 1, 500_000_000),
        ("mts", "RUB", "invoiced", 1, 1, 620_000_000),
        ("mts", "RUB", "reported", 1, 2, 900_000_000),
    ],
    # At EUR,RUB,100 on 10-01. beeline/AM: a3 revenue 3.00/100, cost 0.80/100.
    # mts/RU: revenue a1 2.27/100; cost a1 0.62/100 + a2 0.90/100 + g1 0.50/100; margin a1
    # alone (the only one with both); a4 (10-31, no rate) is fx_missing.
    "margin_by_carrier_country": [
        ("beeline", "AM", 1, 30_000_000, 8_000_000, 22_000_000, 0),
        ("mts", "RU", 4, 22_700_000, 6_200_000 + 9_000_000 + 5_000_000, 16_500_000, 1),
    ],
    # g1 rejected yet invoiced 0.50; a1 invoiced 0.62 against the rate card's 0.50.
    "open_disputes": [
        ("g1", "billed_but_rejected", "RUB", "0.500000000", 500_000_000, "INV-10"),
        ("a1", "cost_mismatch", "RUB", "0.120000000", 120_000_000, "INV-10"),
    ],
    "open_disputes_total": [("INV-10", "RUB", 2, 620_000_000)],
    # mts 10-01: a1 delivered, a2 not delivered, g1 rejected: 1 of 3 final = 0.3333.
    "delivery_rate_daily": [
        ("2026-10-01", "beeline", 1, 1, 0, 0, 0, 0, "1.0000"),
        ("2026-10-01", "mts", 3, 1, 1, 1, 0, 0, "0.3333"),
        ("2026-10-31", "mts", 1, 0, 0, 0, 0, 1, None),
    ],
    "delivery_month": [("beeline", 1, 1), ("mts", 1, 3)],
}


def doc_queries() -> dict[str, dict[str, Any]]:
    page = DOC.read_text(encoding="utf-8")
    found = {m["name"]: m.groupdict() for m in BLOCK.finditer(page)}
    assert len(found) == page.count("```sql"), "a ```sql block of the page has no name"
    return found


QUERIES = doc_queries()


def plain(value: Any) -> Any:
    """A value as both engines can be compared on: a whole number as an int (PostgreSQL's
    SUM of BIGINT is NUMERIC), any other decimal by its text (SQLite's is text)."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, Decimal):
        if value == value.to_integral_value() and value.as_tuple().exponent == 0:
            return int(value)
        return format(value, "f")
    return value


def shown(after: str) -> list[tuple[str, ...]]:
    """The rows of the first markdown table after a query, as text (NULL is None)."""
    lines = [ln for ln in after.splitlines() if ln.startswith("|")]
    cells = [[c.strip() for c in ln.strip("|").split("|")] for ln in lines[2:]]
    return [tuple(None if c == "NULL" else c for c in row) for row in cells]


def test_every_query_of_the_page_is_checked_here() -> None:
    assert set(QUERIES) == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_the_table_under_each_query_shows_its_expected_rows(name: str) -> None:
    want = [tuple(None if v is None else str(v) for v in row) for row in EXPECTED[name]]
    assert shown(QUERIES[name]["after"]) == want


#: Each query on each engine it is written for (a PostgreSQL-only form runs there only).
RUNS = [
    (name, engine)
    for name in sorted(EXPECTED)
    for engine in ("sqlite", "postgresql")
    if not QUERIES[name]["engine"] or QUERIES[name]["engine"] == engine
]


@pytest.mark.parametrize(("name", "backend"), RUNS)
def test_each_query_of_the_page_gives_the_hand_computed_rows(db: Database, name: str) -> None:
    query = QUERIES[name]
    append(db, october_log())
    project(db, october_rules())
    with db.read() as conn:
        if db.backend.name == "postgresql":
            conn.execute(text("SET LOCAL TIME ZONE 'America/New_York'"))
            assert conn.execute(text("SHOW TimeZone")).scalar() == "America/New_York"
        got = [tuple(plain(v) for v in row) for row in conn.execute(text(query["sql"]))]
    assert got == EXPECTED[name]
