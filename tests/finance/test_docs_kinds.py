"""docs/reconciliation.md's kind table names every mismatch kind, with the origin that opens it.

A kind added to ``pipeline.mismatches.kinds`` without a row saying when it opens, when it
resolves, what money it names and what a person does about it fails here.
"""

from __future__ import annotations

import re
from pathlib import Path

from pipeline.mismatches.kinds import (
    DISPATCH_KINDS,
    INVOICE_KINDS,
    ORIGIN_DISPATCHER,
    ORIGIN_INVOICE,
    ORIGIN_PROJECTOR,
    PROJECTOR_KINDS,
)

DOC = Path(__file__).resolve().parents[2] / "docs" / "reconciliation.md"
HEADING = "## Every mismatch kind"


def documented_kinds() -> set[tuple[str, str]]:
    """(kind, origin) of every row of the kind table: the kinds in backticks in its first
    cell, the origin in its second."""
    text = DOC.read_text(encoding="utf-8")
    assert HEADING in text, f"{DOC.name} has no section {HEADING!r}"
    section = text.split(HEADING, 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    found: set[tuple[str, str]] = set()
    for row in rows:
        cells = [cell.strip() for cell in row.strip("|").split("|")]
        for kind in re.findall(r"`([a-z_]+)`", cells[0]):
            found.add((kind, cells[1]))
    return found


def test_every_kind_has_a_row_with_its_origin() -> None:
    expected = (
        {(kind, ORIGIN_PROJECTOR) for kind in PROJECTOR_KINDS}
        | {(kind, ORIGIN_INVOICE) for kind in INVOICE_KINDS}
        | {(kind, ORIGIN_DISPATCHER) for kind in DISPATCH_KINDS}
    )
    missing = sorted(expected - documented_kinds())
    assert missing == [], f"kinds without a row in {DOC.name}'s table: {missing}"


def test_the_table_names_no_kind_the_code_does_not_open() -> None:
    known = {*PROJECTOR_KINDS, *INVOICE_KINDS, *DISPATCH_KINDS}
    unknown = sorted({kind for kind, _origin in documented_kinds()} - known)
    assert unknown == [], f"rows for kinds no code opens: {unknown}"
