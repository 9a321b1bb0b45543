"""carriers.<name>.tolerance, .rates, .charge_on and finance.reporting_currency."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from pipeline.config import ConfigError, load_settings


def settings_from(tmp_path: Path, text: str):  # type: ignore[no-untyped-def]
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return load_settings(path, environ={})


def test_defaults_are_exact_tolerance_no_rates_charge_on_submitted_and_eur(tmp_path: Path) -> None:
    s = settings_from(tmp_path, "carriers:\n  mts: {format: kannel}\n")
    mts = s.carriers["mts"]
    assert (mts.tolerance.abs, mts.tolerance.rel) == (Decimal(0), Decimal(0))
    assert mts.rates == []
    assert mts.charge_on == "submitted"
    assert s.finance.reporting_currency == "EUR"


def test_quoted_tolerance_and_rates_are_read_exactly(tmp_path: Path) -> None:
    s = settings_from(
        tmp_path,
        "carriers:\n"
        "  mts:\n"
        "    format: kannel\n"
        "    tolerance: {abs: '0.01', rel: '0.005'}\n"
        "    charge_on: delivered\n"
        "    rates:\n"
        "      - {prefix: '+7', price_per_part: '0.0333', currency: RUB,"
        " valid_from: '2026-01-01T00:00:00Z'}\n"
        "finance: {reporting_currency: RUB}\n",
    )
    mts = s.carriers["mts"]
    assert mts.tolerance.abs == Decimal("0.01") and mts.tolerance.rel == Decimal("0.005")
    assert mts.charge_on == "delivered"
    assert mts.rates[0].price_per_part == Decimal("0.0333")
    assert s.finance.reporting_currency == "RUB"


@pytest.mark.parametrize(
    ("snippet", "key"),
    [
        ("tolerance: {abs: 0.01}", "carriers.mts.tolerance.abs"),
        ("tolerance: {rel: '-0.1'}", "carriers.mts.tolerance.rel"),
        ("tolerance: {rel: 'lots'}", "carriers.mts.tolerance.rel"),
        ("charge_on: billed", "carriers.mts.charge_on"),
        ("rates: [{prefix: '+7', price_per_part: 0.1, currency: RUB}]", "carriers.mts.rates.0"),
        ("rates: [{prefix: '7', price_per_part: '0.1', currency: RUB}]", "carriers.mts.rates.0"),
        ("rates: [{prefix: '+7', price_per_part: '0.1', currency: XXY}]", "carriers.mts.rates.0"),
        ("rates: [{prefix: '+7', price_per_part: '1', currency: RUB, partner: x}]", "carriers.mts"),
    ],
)
def test_bad_values_are_refused_naming_the_key(tmp_path: Path, snippet: str, key: str) -> None:
    with pytest.raises(ConfigError) as err:
        settings_from(tmp_path, f"carriers:\n  mts:\n    format: kannel\n    {snippet}\n")
    assert key in str(err.value)


def test_an_unknown_reporting_currency_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        settings_from(tmp_path, "finance: {reporting_currency: EURO}\n")
    assert "finance.reporting_currency" in str(err.value)
