"""The pure rules of one invoice row: money, times, parts and the layout's separators."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from pipeline.config import InvoiceSettings
from pipeline.ingest.adapters.base import Limits, ParseError
from pipeline.reconcile.lines import day_period, missing_columns, parse_amount, parse_line

DEFAULT = InvoiceSettings()
COMMA = InvoiceSettings(decimal_separator=",", delimiter=";")
LIMITS = Limits()


def row(**fields: object) -> dict[str, object]:
    base = {"invoice_id": "I", "carrier_message_id": "c1", "billed_at": "2026-01-15T10:00:00Z"}
    return {**base, "cost": "0.35", "currency": "RUB", **fields}


def test_money_is_the_exact_decimal_of_its_text() -> None:
    assert parse_amount("0.1", "cost", DEFAULT, LIMITS) == Decimal("0.1")
    assert str(parse_amount("0,30", "cost", COMMA, LIMITS)) == "0.30"
    assert parse_amount("-2.27", "cost", DEFAULT, LIMITS) == Decimal("-2.27")


@pytest.mark.parametrize(
    ("text", "layout"),
    [
        ("0.3.5", DEFAULT),
        ("1E+400", DEFAULT),
        ("0,35", DEFAULT),
        ("1.000,35", COMMA),
        ("abc", DEFAULT),
    ],
)
def test_a_bad_amount_is_refused(text: str, layout: InvoiceSettings) -> None:
    with pytest.raises(ParseError) as caught:
        parse_amount(text, "cost", layout, LIMITS)
    assert caught.value.field == "cost"


def test_an_amount_beyond_max_amount_is_refused_in_either_direction() -> None:
    assert parse_amount("100000", "cost", DEFAULT, LIMITS) == Decimal(100000)
    for text in ("100000.01", "-100000.01"):
        with pytest.raises(ParseError, match="max_amount"):
            parse_amount(text, "cost", DEFAULT, LIMITS)


def test_a_zoneless_time_is_read_in_the_layouts_zone_and_stored_in_utc() -> None:
    moscow = InvoiceSettings(date_format="%d.%m.%Y %H:%M", timezone="Europe/Moscow")
    line = parse_line(1, row(billed_at="15.01.2026 13:00"), moscow, LIMITS)
    assert line.billed_at == datetime(2026, 1, 15, 10, 0, tzinfo=UTC)
    naive = parse_line(1, row(billed_at="2026-01-15T10:00:00"), DEFAULT, LIMITS)
    assert naive.billed_at == datetime(2026, 1, 15, 10, 0, tzinfo=UTC)


@pytest.mark.parametrize("when", ["0999-01-01T00:00:00Z", "2101-01-01T00:00:00Z", "yesterday"])
def test_an_implausible_or_unreadable_time_is_refused(when: str) -> None:
    with pytest.raises(ParseError) as caught:
        parse_line(1, row(billed_at=when), DEFAULT, LIMITS)
    assert caught.value.field == "billed_at"


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"parts": "0"}, "parts"),
        ({"parts": "256"}, "parts"),
        ({"currency": "rub"}, "currency"),
        ({"carrier_message_id": ""}, "message_id"),
        ({"carrier_message_id": "c\x001"}, "carrier_message_id"),
        ({"invoice_id": "I" * 81}, "invoice_id"),
    ],
)
def test_a_bad_field_is_named(fields: dict[str, str], field: str) -> None:
    with pytest.raises(ParseError) as caught:
        parse_line(1, row(**fields), DEFAULT, LIMITS)
    assert caught.value.field == field


def test_parts_default_to_one_and_the_layouts_currency_fills_a_missing_one() -> None:
    rub = InvoiceSettings(currency="RUB")
    line = parse_line(7, row(currency=""), rub, LIMITS)
    assert (line.number, line.parts, line.currency, line.cost) == (7, 1, "RUB", Decimal("0.35"))


def test_the_period_is_the_utc_days_of_the_lines_the_day_after_the_last_excluded() -> None:
    first = datetime(2026, 1, 1, 0, 0, tzinfo=UTC)
    last = datetime(2026, 1, 31, 23, 59, 59, tzinfo=UTC)
    assert day_period(first, last) == (first, datetime(2026, 2, 1, tzinfo=UTC))


def test_missing_columns_name_what_the_layout_needs() -> None:
    header = ["invoice_id", "message_id", "billed_at", "cost", "currency"]
    assert missing_columns(header, DEFAULT, have_id=False) == []
    assert missing_columns(["cost"], InvoiceSettings(currency="EUR"), have_id=True) == [
        "billed_at",
        "message_id or carrier_message_id",
    ]


def test_a_number_is_a_number_whatever_the_decimal_separator() -> None:
    """A JSON number or a numeric cell arrives as a Decimal: the separator is about text."""
    line = parse_line(1, row(cost=Decimal("0.035"), total=Decimal("1.5")), COMMA, LIMITS)
    assert (line.cost, line.total) == (Decimal("0.035"), Decimal("1.5"))
    with pytest.raises(ParseError, match=r"ingest\.max_amount"):
        parse_line(1, row(cost=Decimal("999999")), COMMA, LIMITS)


def test_a_date_cell_is_read_in_the_layouts_zone() -> None:
    moscow = InvoiceSettings(timezone="Europe/Moscow")
    line = parse_line(1, row(billed_at=datetime(2026, 1, 15, 13)), moscow, LIMITS)
    assert line.billed_at == datetime(2026, 1, 15, 10, tzinfo=UTC)
    with pytest.raises(ParseError, match="year outside"):
        parse_line(1, row(billed_at=datetime(1899, 12, 31)), moscow, LIMITS)
