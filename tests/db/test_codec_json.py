"""``json_text`` keeps one compact encoder: it must write what ``json.dumps`` with the same
options writes, for any document (the projector's fold state, an event's payload)."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.db.codec import json_text

documents = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text() | st.floats(allow_nan=False),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(document=documents)
def test_json_text_is_json_dumps_compact_and_unescaped(document: Any) -> None:
    assert json_text(document) == json.dumps(document, ensure_ascii=False, separators=(",", ":"))
