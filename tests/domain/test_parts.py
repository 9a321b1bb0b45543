"""Part counting against hand-checked vectors and the segmentation's invariants."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline.domain.parts import (
    GSM7_BASIC,
    GSM7_EXTENSION,
    PartCount,
    count_parts,
    segment,
)

# The ETSI table by Unicode character name, code 0x00..0x7F (0x1B ESCAPE left out).
ETSI_BASIC_NAMES = [
    "COMMERCIAL AT", "POUND SIGN", "DOLLAR SIGN", "YEN SIGN",
    "LATIN SMALL LETTER E WITH GRAVE", "LATIN SMALL LETTER E WITH ACUTE",
    "LATIN SMALL LETTER U WITH GRAVE", "LATIN SMALL LETTER I WITH GRAVE",
    "LATIN SMALL LETTER O WITH GRAVE", "LATIN CAPITAL LETTER C WITH CEDILLA", "LINE FEED",
    "LATIN CAPITAL LETTER O WITH STROKE", "LATIN SMALL LETTER O WITH STROKE", "CARRIAGE RETURN",
    "LATIN CAPITAL LETTER A WITH RING ABOVE", "LATIN SMALL LETTER A WITH RING ABOVE",
    "GREEK CAPITAL LETTER DELTA", "LOW LINE", "GREEK CAPITAL LETTER PHI",
    "GREEK CAPITAL LETTER GAMMA", "GREEK CAPITAL LETTER LAMDA", "GREEK CAPITAL LETTER OMEGA",
    "GREEK CAPITAL LETTER PI", "GREEK CAPITAL LETTER PSI", "GREEK CAPITAL LETTER SIGMA",
    "GREEK CAPITAL LETTER THETA", "GREEK CAPITAL LETTER XI", "LATIN CAPITAL LETTER AE",
    "LATIN SMALL LETTER AE", "LATIN SMALL LETTER SHARP S", "LATIN CAPITAL LETTER E WITH ACUTE",
    "SPACE", "EXCLAMATION MARK", "QUOTATION MARK", "NUMBER SIGN", "CURRENCY SIGN",
    "PERCENT SIGN", "AMPERSAND", "APOSTROPHE", "LEFT PARENTHESIS", "RIGHT PARENTHESIS",
    "ASTERISK", "PLUS SIGN", "COMMA", "HYPHEN-MINUS", "FULL STOP", "SOLIDUS",
    *(f"DIGIT {d}" for d in ("ZERO", "ONE", "TWO", "THREE", "FOUR", "FIVE", "SIX", "SEVEN",
                             "EIGHT", "NINE")),
    "COLON", "SEMICOLON", "LESS-THAN SIGN", "EQUALS SIGN", "GREATER-THAN SIGN", "QUESTION MARK",
    "INVERTED EXCLAMATION MARK",
    *(f"LATIN CAPITAL LETTER {c}" for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZ"),
    "LATIN CAPITAL LETTER A WITH DIAERESIS", "LATIN CAPITAL LETTER O WITH DIAERESIS",
    "LATIN CAPITAL LETTER N WITH TILDE", "LATIN CAPITAL LETTER U WITH DIAERESIS",
    "SECTION SIGN", "INVERTED QUESTION MARK",
    *(f"LATIN SMALL LETTER {c}" for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZ"),
    "LATIN SMALL LETTER A WITH DIAERESIS", "LATIN SMALL LETTER O WITH DIAERESIS",
    "LATIN SMALL LETTER N WITH TILDE", "LATIN SMALL LETTER U WITH DIAERESIS",
    "LATIN SMALL LETTER A WITH GRAVE",
]  # fmt: skip
ETSI_EXTENSION_NAMES = [
    "FORM FEED", "CIRCUMFLEX ACCENT", "LEFT CURLY BRACKET", "RIGHT CURLY BRACKET",
    "REVERSE SOLIDUS", "LEFT SQUARE BRACKET", "TILDE", "RIGHT SQUARE BRACKET", "VERTICAL LINE",
    "EURO SIGN",
]  # fmt: skip
_CONTROL_NAMES = {"\n": "LINE FEED", "\r": "CARRIAGE RETURN", "\f": "FORM FEED"}


def _name(char: str) -> str:
    return _CONTROL_NAMES.get(char) or unicodedata.name(char)


def test_basic_alphabet_is_the_etsi_table() -> None:
    assert len(ETSI_BASIC_NAMES) == 127
    assert sorted(_name(c) for c in GSM7_BASIC) == sorted(ETSI_BASIC_NAMES)


def test_extension_table_is_the_etsi_table() -> None:
    assert sorted(_name(c) for c in GSM7_EXTENSION) == sorted(ETSI_EXTENSION_NAMES)


def test_empty_text_is_one_gsm_part() -> None:
    assert count_parts("") == PartCount(parts=1, encoding="gsm7", units=0)


def test_160_gsm_characters_fit_one_part_161_need_two() -> None:
    assert count_parts("a" * 160) == PartCount(1, "gsm7", 160)
    assert count_parts("a" * 161) == PartCount(2, "gsm7", 161)


def test_gsm_concatenated_parts_hold_153() -> None:
    assert count_parts("a" * 306).parts == 2
    assert count_parts("a" * 307).parts == 3
    assert count_parts("a" * 459).parts == 3
    assert count_parts("a" * 460).parts == 4


def test_whole_basic_alphabet_stays_gsm7() -> None:
    text = "".join(sorted(GSM7_BASIC))
    assert count_parts(text) == PartCount(1, "gsm7", 127)


@pytest.mark.parametrize("char", list("^{}[]~|\\€\f"))
def test_each_extension_character_costs_two_septets(char: str) -> None:
    assert count_parts(char) == PartCount(1, "gsm7", 2)
    assert count_parts(char * 80) == PartCount(1, "gsm7", 160)
    assert count_parts(char * 81).parts == 2  # 162 septets


def test_euro_alone_is_one_part_of_two_septets() -> None:
    assert count_parts("€") == PartCount(1, "gsm7", 2)


def test_escape_pair_is_not_split_across_parts() -> None:
    # 152 + 2 would straddle the 153 boundary: "€" moves to part 2 (2 + 152 = 154 > 153).
    assert count_parts("a" * 152 + "€" + "a" * 152) == PartCount(3, "gsm7", 306)
    # Without the rule 306 septets would be exactly two parts.
    assert count_parts("a" * 153 + "a" * 153) == PartCount(2, "gsm7", 306)
    # An escape pair that ends exactly on the boundary does fit.
    assert count_parts("a" * 151 + "€" + "a" * 153) == PartCount(2, "gsm7", 306)


def test_text_of_160_septets_with_extensions_is_one_part() -> None:
    assert count_parts("a" * 158 + "{") == PartCount(1, "gsm7", 160)
    assert count_parts("a" * 159 + "{") == PartCount(2, "gsm7", 161)


def test_cyrillic_is_ucs2() -> None:
    assert count_parts("Привет") == PartCount(1, "ucs2", 6)
    assert count_parts("Ж" * 70) == PartCount(1, "ucs2", 70)
    assert count_parts("Ж" * 71) == PartCount(2, "ucs2", 71)
    assert count_parts("Ж" * 134) == PartCount(2, "ucs2", 134)
    assert count_parts("Ж" * 135) == PartCount(3, "ucs2", 135)


def test_one_non_gsm_character_turns_the_whole_text_ucs2() -> None:
    # 100 Latin letters fit one GSM part, but with a "ж" the text is 101 UCS-2 units.
    assert count_parts("a" * 100 + "ж") == PartCount(2, "ucs2", 101)
    # In UCS-2 the extension characters are one unit like any other.
    assert count_parts("€ж") == PartCount(1, "ucs2", 2)


@pytest.mark.parametrize("char", ["`", "ç", "á", "\t", "\x1b", "\u00a0"])
def test_characters_outside_the_default_alphabet_are_ucs2(char: str) -> None:
    assert count_parts(char).encoding == "ucs2"


def test_emoji_is_a_surrogate_pair_of_two_units() -> None:
    assert count_parts("😀") == PartCount(1, "ucs2", 2)
    assert count_parts("😀" * 35) == PartCount(1, "ucs2", 70)
    assert count_parts("😀" * 36) == PartCount(2, "ucs2", 72)


def test_surrogate_pair_is_not_split_at_the_67_boundary() -> None:
    # 66 units + a pair would straddle 67: the emoji starts part 2.
    assert count_parts("ж" * 66 + "😀" + "ж" * 66) == PartCount(3, "ucs2", 134)
    assert count_parts("ж" * 67 + "ж" * 67) == PartCount(2, "ucs2", 134)
    # A pair ending exactly on the boundary fits.
    assert count_parts("ж" * 65 + "😀" + "ж" * 67) == PartCount(2, "ucs2", 134)


def test_whatsapp_is_always_one_part() -> None:
    assert count_parts("a" * 1000, channel="whatsapp") == PartCount(1, "gsm7", 1000)
    assert count_parts("Ж" * 500, channel="whatsapp") == PartCount(1, "ucs2", 500)
    assert count_parts("", channel="whatsapp").parts == 1


def test_unknown_channel_and_non_text_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown channel"):
        count_parts("hi", channel="telegram")
    with pytest.raises(TypeError):
        count_parts(None)  # type: ignore[arg-type]


# Alphabets for the properties: one-septet, two-septet, BMP UCS-2 and astral characters.
_GSM_TEXT = st.text(alphabet=st.sampled_from(sorted(GSM7_BASIC | GSM7_EXTENSION)), max_size=700)
_ANY_TEXT = st.text(alphabet=st.sampled_from([*"aZ0 @€{|", "ж", "Ж", "é", "😀", "𝄞"]), max_size=400)


@given(_ANY_TEXT, st.sampled_from([*"a€ж😀"]))
def test_appending_a_character_never_lowers_the_part_count(text: str, char: str) -> None:
    # Same alphabet on both sides: appending cannot switch UCS-2 back to GSM.
    if count_parts(text).encoding == "gsm7" and count_parts(text + char).encoding == "ucs2":
        return
    assert count_parts(text + char).parts >= count_parts(text).parts


@given(st.lists(st.sampled_from([1, 2]), max_size=600), st.sampled_from([153, 67]))
def test_segmentation_never_splits_a_pair_and_wastes_at_most_one_unit(
    costs: list[int], capacity: int
) -> None:
    parts = segment(costs, capacity)
    assert sum(parts) == sum(costs)
    assert all(part <= capacity for part in parts)
    # Each part but the last is full or one short: it is short only when a pair moved on.
    assert all(part >= capacity - 1 for part in parts[:-1])
    # Rebuilding the boundaries from the costs lands on character boundaries.
    boundaries = {0}
    running = 0
    for cost in costs:
        running += cost
        boundaries.add(running)
    cut = 0
    for part in parts:
        cut += part
        assert cut in boundaries


@given(_ANY_TEXT)
def test_parts_are_bounded_by_the_capacity(text: str) -> None:
    count = count_parts(text)
    single, multi = (160, 153) if count.encoding == "gsm7" else (70, 67)
    if count.units <= single:
        assert count.parts == 1
    else:
        # At least the ideal packing, and at most one unit lost per part to a moved pair.
        assert count.parts * multi >= count.units
        assert count.parts * (multi - 1) < count.units + multi


@given(_GSM_TEXT)
def test_gsm_text_is_counted_in_septets(text: str) -> None:
    count = count_parts(text)
    assert count.encoding == "gsm7"
    assert count.units == len(text) + sum(c in GSM7_EXTENSION for c in text)


@given(st.text(max_size=300))
def test_any_text_units_are_its_utf16_length_when_ucs2(text: str) -> None:
    count = count_parts(text)
    assert count.parts >= 1
    if count.encoding == "ucs2":
        assert count.units == len(text.encode("utf-16-le", "surrogatepass")) // 2
