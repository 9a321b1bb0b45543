"""Tariff selection and the validation of billing.tariffs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from pipeline.config import BillingSettings, ConfigError, Tariff, load_settings
from pipeline.domain.tariffs import (
    TariffError,
    TariffRule,
    normalize_phone,
    rules_from_settings,
    select_tariff,
)

T0 = datetime(2026, 1, 15, 10, 30, tzinfo=UTC)
MOSCOW = "+79161234567"


def rule(prefix: str, price: str = "1", **qualifiers: object) -> TariffRule:
    return TariffRule(prefix=prefix, price_per_part=Decimal(price), currency="RUB", **qualifiers)  # type: ignore[arg-type]


def pick(
    rules: list[TariffRule],
    *,
    partner: str = "salon",
    channel: str = "sms",
    dispatch_type: str | None = "service",
    phone: str = MOSCOW,
    accepted_at: datetime = T0,
) -> TariffRule | None:
    return select_tariff(
        rules,
        partner=partner,
        channel=channel,
        dispatch_type=dispatch_type,
        phone=phone,
        accepted_at=accepted_at,
    )


# Selection


def test_longest_prefix_wins() -> None:
    rules = [rule("+7", "1"), rule("+7916", "2"), rule("+79", "3")]
    assert pick(rules) == rules[1]


def test_longest_prefix_beats_more_qualifiers() -> None:
    rules = [rule("+7", "1", partner="salon", channel="sms", dispatch_type="service"), rule("+791")]
    assert pick(rules) == rules[1]


def test_most_qualifiers_win_between_equal_prefixes() -> None:
    rules = [
        rule("+7", "1"),
        rule("+7", "2", channel="sms", partner="salon"),
        rule("+7", "3", channel="sms"),
    ]
    assert pick(rules) == rules[1]


def test_absent_qualifier_matches_anything_present_one_must_equal() -> None:
    rules = [rule("+7", "1", partner="other"), rule("+7", "2", channel="whatsapp")]
    assert pick(rules) is None
    assert pick(rules, partner="other") == rules[0]
    assert pick(rules, channel="whatsapp") == rules[1]


def test_dispatch_type_qualifier_does_not_match_a_message_without_one() -> None:
    rules = [rule("+7", "1", dispatch_type="adds")]
    assert pick(rules, dispatch_type=None) is None
    assert pick(rules, dispatch_type="adds") == rules[0]


def test_remaining_tie_goes_to_the_first_configured() -> None:
    rules = [rule("+7", "1", channel="sms"), rule("+7", "2", partner="salon")]
    assert pick(rules) == rules[0]
    assert pick(list(reversed(rules))) == rules[1]


def test_no_matching_prefix_is_no_tariff() -> None:
    assert pick([rule("+49")]) is None
    assert pick([]) is None


def test_bare_plus_is_a_catch_all_any_prefix_beats() -> None:
    rules = [rule("+", "9"), rule("+7", "1")]
    assert pick(rules) == rules[1]
    assert pick(rules, phone="+4915123456789") == rules[0]


def test_validity_is_half_open_from_inclusive_to_exclusive() -> None:
    change = datetime(2026, 2, 1, tzinfo=UTC)
    old, new = rule("+7", "1", valid_to=change), rule("+7", "2", valid_from=change)
    rules = [old, new]
    assert pick(rules, accepted_at=change - timedelta(microseconds=1)) == old
    assert pick(rules, accepted_at=change) == new


def test_price_change_never_reprices_messages_accepted_before_it() -> None:
    change = datetime(2026, 2, 1, tzinfo=UTC)
    accepted = change - timedelta(days=3)
    before = [rule("+7", "1.00")]
    first = pick(before, accepted_at=accepted)
    assert first is not None
    # The operator closes the old tariff and adds the new one. The same message, selected
    # again after the change (a late report, a replay), still gets the old price.
    after = [rule("+7", "1.00", valid_to=change), rule("+7", "1.50", valid_from=change)]
    again = pick(after, accepted_at=accepted)
    assert again is after[0]
    assert again.price_per_part == first.price_per_part == Decimal("1.00")
    # A message accepted after the change gets the new price.
    assert pick(after, accepted_at=change + timedelta(seconds=1)) is after[1]


def test_validity_compares_instants_across_zones() -> None:
    start = datetime(2026, 2, 1, 3, 0, tzinfo=timezone(timedelta(hours=3)))  # 00:00 UTC
    rules = [rule("+7", valid_from=start.astimezone(UTC))]
    assert pick(rules, accepted_at=start) == rules[0]
    assert pick(rules, accepted_at=datetime(2026, 1, 31, 23, 59, tzinfo=UTC)) is None


def test_naive_accepted_at_is_refused() -> None:
    with pytest.raises(ValueError, match="tz-aware"):
        pick([rule("+7")], accepted_at=datetime(2026, 1, 1))


@pytest.mark.parametrize(
    ("raw", "e164"),
    [
        ("+79161234567", "+79161234567"),
        ("79161234567", "+79161234567"),
        ("0079161234567", "+79161234567"),
        ("+7 (916) 123-45-67", "+79161234567"),
        ("+4915123456789", "+4915123456789"),
    ],
)
def test_phones_are_normalised_to_e164(raw: str, e164: str) -> None:
    assert normalize_phone(raw) == e164


@pytest.mark.parametrize("raw", ["", "+", "hello", "+7916", "+7 916 123 45 67 89 01 23", "+0123"])
def test_unparseable_phone_is_no_tariff(raw: str) -> None:
    assert normalize_phone(raw) is None
    assert pick([rule("+")], phone=raw) is None


def test_prefix_matches_the_normalised_phone() -> None:
    assert pick([rule("+7916")], phone="8-916") is None
    assert pick([rule("+7916")], phone="7 916 123 45 67") is not None


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["+", "+7", "+79", "+7916", "+49"]),
            st.sampled_from([None, "salon", "other"]),
            st.sampled_from([None, "sms", "whatsapp"]),
            st.sampled_from([None, "service", "adds"]),
        ),
        max_size=12,
    )
)
def test_selected_tariff_matches_and_no_candidate_ranks_higher(
    specs: list[tuple[str, str | None, str | None, str | None]],
) -> None:
    rules = [
        rule(p, str(i), partner=pa, channel=ch, dispatch_type=dt)
        for i, (p, pa, ch, dt) in enumerate(specs)
    ]

    def matches(r: TariffRule) -> bool:
        return (
            r.partner in (None, "salon")
            and r.channel in (None, "sms")
            and r.dispatch_type in (None, "service")
            and MOSCOW.startswith(r.prefix)
        )

    candidates = [r for r in rules if matches(r)]
    chosen = pick(rules)
    if not candidates:
        assert chosen is None
        return
    assert chosen in candidates
    rank = (len(chosen.prefix), chosen.qualifiers)
    assert all((len(r.prefix), r.qualifiers) <= rank for r in candidates)
    ties = [r for r in candidates if (len(r.prefix), r.qualifiers) == rank]
    assert chosen is ties[0]


# Validation of billing.tariffs


def tariff(**fields: object) -> Tariff:
    base: dict[str, object] = {"prefix": "+7", "price_per_part": "0.0333", "currency": "RUB"}
    return Tariff.model_validate(base | fields)


def test_rules_from_settings_keeps_order_and_converts_times_to_utc() -> None:
    tariffs = [
        tariff(),
        tariff(prefix="+7916", partner="salon", channel="sms", dispatch_type="adds",
               valid_from="2026-02-01T03:00:00+03:00", valid_to="2026-03-01T00:00:00Z"),
    ]  # fmt: skip
    rules = rules_from_settings(tariffs)
    assert rules[0] == TariffRule(prefix="+7", price_per_part=Decimal("0.0333"), currency="RUB")
    assert rules[1].valid_from == datetime(2026, 2, 1, tzinfo=UTC)
    assert rules[1].valid_from.tzinfo is UTC  # type: ignore[union-attr]
    assert rules[1].valid_to == datetime(2026, 3, 1, tzinfo=UTC)
    assert (rules[1].partner, rules[1].channel, rules[1].dispatch_type) == ("salon", "sms", "adds")


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("prefix", "7", "E.164 prefix"),
        ("prefix", "+7-916", "E.164 prefix"),
        ("prefix", "+07", "E.164 prefix"),
        ("price_per_part", 0.1, "write the price quoted"),
        ("price_per_part", "-1", "negative"),
        ("price_per_part", "abc", "not a decimal"),
        ("price_per_part", "NaN", "finite"),
        ("price_per_part", True, "not a price"),
        ("currency", "XYZ", "ISO 4217"),
        ("currency", "rub", "ISO 4217"),
        ("valid_from", "2026-02-01", "is a date"),
        ("valid_from", "2026-02-01T00:00:00", "no zone"),
        ("valid_to", "next tuesday", "RFC 3339"),
        ("valid_to", "soon", "RFC 3339"),
    ],
)
def test_bad_tariff_field_is_refused_naming_it(field: str, value: object, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        tariff(**{field: value})
    # rules_from_settings checks again (a Tariff built without validation) and names it.
    unchecked = Tariff.model_construct(**(tariff().model_dump() | {field: value}))
    with pytest.raises(TariffError, match=rf"^billing\.tariffs\[1\]\.{field}: .*{reason}"):
        rules_from_settings([tariff(), unchecked])


def test_empty_validity_window_is_refused() -> None:
    with pytest.raises(ValueError, match="after valid_from"):
        tariff(valid_from="2026-02-01T00:00:00Z", valid_to="2026-02-01T00:00:00Z")
    unchecked = Tariff.model_construct(
        **(
            tariff().model_dump()
            | {
                "valid_from": datetime(2026, 2, 1, tzinfo=UTC),
                "valid_to": datetime(2026, 1, 1, tzinfo=UTC),
            }
        )
    )
    with pytest.raises(TariffError, match=r"^billing\.tariffs\[0\]\.valid_to: must be after"):
        rules_from_settings([unchecked])


def test_int_price_and_decimal_strings_are_exact() -> None:
    assert tariff(price_per_part=2).price_per_part == Decimal(2)
    assert tariff(price_per_part="0.1").price_per_part == Decimal("0.1")
    assert tariff(price_per_part=" 1.5 ").price_per_part == Decimal("1.5")


CONFIG = """\
billing:
  rounding: half_even
  non_chargeable_statuses: [16]
  tariffs:
    - prefix: "+7"
      price_per_part: "0.1"
      currency: RUB
      valid_to: 2026-02-01T00:00:00Z
    - prefix: "+7"
      price_per_part: "0.12"
      currency: RUB
      valid_from: "2026-02-01T00:00:00Z"
"""


def test_config_file_tariffs_load_exactly(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(CONFIG, encoding="utf-8")
    billing = load_settings(path, environ={}).billing
    assert billing.rounding == "half_even"
    assert billing.non_chargeable_statuses == [16]
    rules = rules_from_settings(billing.tariffs)
    assert [r.price_per_part for r in rules] == [Decimal("0.1"), Decimal("0.12")]
    # An unquoted YAML time and a quoted one mean the same instant.
    assert rules[0].valid_to == rules[1].valid_from == datetime(2026, 2, 1, tzinfo=UTC)


def test_config_file_with_a_float_price_fails_naming_the_key(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(CONFIG.replace('"0.12"', "0.12"), encoding="utf-8")
    with pytest.raises(ConfigError, match=r"billing\.tariffs\.1\.price_per_part: .*quoted"):
        load_settings(path, environ={})


def test_unknown_non_chargeable_status_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("billing:\n  non_chargeable_statuses: [16, 61]\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"billing\.non_chargeable_statuses: .*\[61\]"):
        load_settings(path, environ={})


def test_worked_example_of_docs_billing_md() -> None:
    """The example tariffs of docs/billing.md choose what its table says."""
    doc = (Path(__file__).parents[2] / "docs" / "billing.md").read_text(encoding="utf-8")
    block = doc.split("### Worked example", 1)[1].split("```yaml", 1)[1].split("```", 1)[0]
    settings = BillingSettings.model_validate(yaml.safe_load(block)["billing"])
    rules = rules_from_settings(settings.tariffs)
    jan, feb = datetime(2026, 1, 20, tzinfo=UTC), datetime(2026, 2, 3, tzinfo=UTC)
    assert pick(rules, partner="salon", phone="+79161234567", accepted_at=jan) is rules[1]
    assert pick(rules, partner="salon", phone="+79161234567", accepted_at=feb) is rules[2]
    assert pick(rules, partner="salon", phone="+79031234567") is rules[3]
    assert pick(rules, partner="other", channel="whatsapp", phone="+79031234567") is rules[4]
    assert pick(rules, partner="salon", phone="+4915123456789") is None
