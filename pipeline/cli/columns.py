"""Plain-text tables for listings: a header row, aligned columns, one UTC time format, and
JSON cut only between whole members.

Listings are read by people scanning a terminal, so the columns must line up whatever the
row (an unreadable event included) and a long JSON detail must never end mid-token: a cut
``{"expected": "4.5`` reads as a value.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

#: Marks what a cut left out.
ELLIPSIS = "…"


def utc_text(moment: datetime | str | None) -> str:
    """``2026-01-15T10:31:00Z``: the one time format of every table (and of the logs).

    A stored text that is not a time (an unreadable event's) is shown as stored.
    """
    if moment is None:
        return "-"
    if isinstance(moment, str):
        return moment
    # isoformat, not strftime: strftime does not pad a year before 1000 to four digits.
    return moment.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def json_text(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


def json_summary(value: Any, width: int) -> str:
    """``value`` as compact JSON in at most ``width`` characters, cut between whole members.

    An object keeps its leading members that fit and ends ``, …}``; a member too long for
    the width on its own shows as ``{"key": …}``. Scalars and arrays that do not fit end
    with the ellipsis after a whole element or not at all.
    """
    full = json_text(value)
    if len(full) <= width:
        return full
    if isinstance(value, dict) and value:
        members = [f"{json_text(k)}: {json_text(value[k])}" for k in sorted(value, key=str)]
        kept: list[str] = []
        for member in members:
            candidate = "{" + ", ".join([*kept, member]) + ", " + ELLIPSIS + "}"
            if len(candidate) > width:
                break
            kept.append(member)
        if kept:
            return "{" + ", ".join(kept) + ", " + ELLIPSIS + "}"
        first_key = sorted(value, key=str)[0]
        return "{" + json_text(first_key) + ": " + ELLIPSIS + "}"
    if isinstance(value, list) and value:
        kept = []
        for item in value:
            candidate = "[" + ", ".join([*kept, json_text(item)]) + ", " + ELLIPSIS + "]"
            if len(candidate) > width:
                break
            kept.append(json_text(item))
        return "[" + ", ".join([*kept, ELLIPSIS]) + "]"
    return ELLIPSIS


class Columns:
    """Left- or right-aligned columns of at least a minimum width, wider to fit the rows.

    The last column is free text and never padded. ``fit`` widens the columns for a batch
    of rows before they are printed (a streamed listing keeps the widths it had).
    """

    def __init__(self, headers: Sequence[str], min_widths: Sequence[int], right: Sequence[bool]):
        self.headers = tuple(headers)
        self.widths = [max(w, len(h)) for w, h in zip(min_widths, headers, strict=False)]
        self.right = tuple(right)

    def fit(self, rows: Sequence[Sequence[str]]) -> None:
        for row in rows:
            for i, cell in enumerate(row[: len(self.widths)]):
                self.widths[i] = max(self.widths[i], len(cell))

    def line(self, row: Sequence[str]) -> str:
        cells = []
        for i, cell in enumerate(row):
            if i >= len(self.widths):
                cells.append(cell)
            elif self.right[i]:
                cells.append(cell.rjust(self.widths[i]))
            else:
                cells.append(cell.ljust(self.widths[i]))
        return "  ".join(cells).rstrip()

    def header(self) -> str:
        return self.line(self.headers)
