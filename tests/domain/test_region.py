from __future__ import annotations

from pipeline.domain.region import country_of


def test_a_number_is_placed_in_its_region() -> None:
    assert country_of("+79161234567") == "RU"
    assert country_of("+14155550100") == "US"
    assert country_of("+4915112345678") == "DE"


def test_an_unplaceable_number_has_no_country() -> None:
    assert country_of(None) is None
    assert country_of("") is None
    assert country_of("not a number") is None
    assert country_of("12345") is None  # no + and no default region
