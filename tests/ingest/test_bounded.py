"""The pure bounds of ``adapters.bounded`` and the quarantine's ``keepsafe`` encoding."""

from __future__ import annotations

import json
import re
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline.ingest import keepsafe
from pipeline.ingest.adapters import bounded
from pipeline.ingest.adapters.base import ParseError


@pytest.mark.parametrize(
    ("text", "value"),
    [("1", 1), (" 42 ", 42), ("-7", -7), ("+3", 3), ("000000000000000000000001", 1)],
)
def test_integers_within_bounds_are_read(text: str, value: int) -> None:
    assert bounded.integer(text, "n") == value


@pytest.mark.parametrize(
    "text", ["", "1.0", "1e3", "\u0661", "\uff11", "\u00b2", "9" * 19, "9" * 5000, "0x10", "1_0"]
)
def test_integers_past_bounds_or_not_ascii_are_refused(text: str) -> None:
    with pytest.raises(ParseError):
        bounded.integer(text, "n")


@pytest.mark.parametrize(
    ("number", "value"), [(Decimal("1.0"), 1), (Decimal("1E+2"), 100), (Decimal("-0"), 0)]
)
def test_whole_decimals_are_integers(number: Decimal, value: int) -> None:
    assert bounded.integral(number, "n") == value


@pytest.mark.parametrize("number", ["1E+300000", "1E+99999999", "1.5", "NaN", "1E+18"])
def test_decimals_that_are_not_small_integers_are_refused(number: str) -> None:
    with pytest.raises(ParseError):
        bounded.integral(Decimal(number), "n")


@pytest.mark.parametrize(
    ("text", "stored"),
    [
        ("0.0333", "0.0333"),
        ("0.03330000", "0.03330000"),
        ("1.5E+2", "150"),
        ("1E+17", "100000000000000000"),
        ("0E+5000000", "0"),
        ("0.1000000000000000055511", "0.1000000000000000055511"),
    ],
)
def test_decimals_are_read_exactly_and_written_in_fixed_point(text: str, stored: str) -> None:
    assert format(bounded.decimal(text, "cost"), "f") == stored


@pytest.mark.parametrize(
    "text",
    ["1E+5000000", "1E-5000000", "1E+18", "0." + "0" * 24 + "1", "1." + "1" * 25, "\u0661", "inf"],
)
def test_absurd_decimals_are_refused(text: str) -> None:
    with pytest.raises(ParseError):
        bounded.decimal(text, "cost")


@pytest.mark.parametrize(
    "text",
    [
        '{"a": ' + "9" * 41 + "}",
        '{"a": 1E+9999999999999999999999999999999999999}',
        '{"a": NaN}',
        '{"a": -Infinity}',
        "[" * 17 + "]" * 17,
        "[" * 100_000 + "]" * 100_000,
        '{"a": "\\u0000"}',
        '{"a": "\\ud800"}',
        '{"\\udc00": 1}',
    ],
    ids=["long", "long-exp", "nan", "inf", "deep-17", "deep-100k", "nul", "surrogate", "key"],
)
def test_json_past_a_bound_is_refused(text: str) -> None:
    with pytest.raises(bounded.Refused):
        bounded.load_json(text)


def test_json_within_bounds_keeps_decimals_exact() -> None:
    document = bounded.load_json(
        '{"a": [1, 0.10, "\\ud83d\\ude00"], "b": ' + "[" * 15 + "]" * 15 + "}"
    )
    assert document["a"] == [1, Decimal("0.10"), "\U0001f600"]


def test_json_for_re_encoding_refuses_floats_out_of_range() -> None:
    assert bounded.load_json("[0.5, 1e300]", exact=False) == [0.5, 1e300]
    for text in ("[1e400]", "[-1e400]", "[1e-400]"):
        with pytest.raises(bounded.Refused):
            bounded.load_json(text, exact=False)


@given(st.text())
def test_any_string_is_stored_as_text_a_database_keeps_and_read_back(value: str) -> None:
    stored = keepsafe.storable_text(value)
    encoded = json.dumps(stored, ensure_ascii=False)
    assert "\x00" not in encoded
    encoded.encode("utf-8")  # no lone surrogate
    assert keepsafe.loaded_text(json.loads(encoded)) == value


#: Texts rich in what the check looks for: NULs, lone surrogates of either half (so two may
#: stand side by side once joined), ASCII and other text.
_FIELD_TEXT = st.text(
    st.sampled_from(["a", "=", "\x00", "\ud800", "\udbff", "\udc00", "\udfff", "é", "✓"])
    | st.characters(),
    max_size=6,
)


def _storable_by_the_plain_rule(pairs: list[tuple[str, str]]) -> bool:
    unstorable = re.compile("[\x00\ud800-\udfff]")
    return not any(unstorable.search(name) or unstorable.search(value) for name, value in pairs)


@given(st.lists(st.tuples(_FIELD_TEXT, _FIELD_TEXT), max_size=5))
def test_storable_pairs_agree_with_one_search_per_name_and_value(
    pairs: list[tuple[str, str]],
) -> None:
    expected = _storable_by_the_plain_rule(pairs)
    assert bounded.storable(pairs) is expected
    assert bounded.storable(iter(pairs)) is expected
    if expected:
        bounded.check_pairs(pairs, "query")
    else:
        with pytest.raises(ParseError, match="NUL or a lone surrogate"):
            bounded.check_pairs(pairs, "query")


def test_surrogates_side_by_side_in_the_joined_text_are_still_found() -> None:
    # A high and a low half in separate texts: joined they sit side by side, and are still
    # two lone surrogates (Python strings never pair them).
    assert not bounded.storable([("a\ud83d", "\ude00b")])
    assert not bounded.storable([("a", "\x00")])
    assert bounded.storable([("name", "value"), ("é", "✓")])
    assert bounded.storable([])


def test_lone_surrogates_are_stored_and_read_back() -> None:
    for value in ("\ud800", "a\udfffb", "caf\udce9", "\x00"):
        assert keepsafe.loaded_text(keepsafe.storable_text(value)) == value


@pytest.mark.parametrize(
    ("body", "scrubbed"),
    [
        (b"a=1&api-key=K&sig=S&b=2", b"a=1&b=2"),
        (b"Token=K&password=P&x=%FF\xff", b"x=%FF\xff"),
        (b"api%2Dkey=K&a=1", b"a=1"),
        (b'{"api-key": "K", "n": 1}', b'{"api-key": "[removed]", "n": 1}'),
        (b'{"r": {"SECRET": 123, "ok": "x"}}', b'{"r": {"SECRET": "[removed]", "ok": "x"}}'),
        (b'{"api\\u005fkey": "K"', b'{"api\\u005fkey": "[removed]"'),
        (b"id:1 stat:DELIVRD text:password=1", b"id:1 stat:DELIVRD text:password=1"),
    ],
)
def test_credentials_are_removed_from_any_body(body: bytes, scrubbed: bytes) -> None:
    assert keepsafe.scrub_body(body) == scrubbed
