"""Mismatches: problems found in the data, each with a lifecycle a person can follow.

The one home of the concept: the table (``table``), the kinds (``kinds``), every write
(``write``: open, update detail, resolve, acknowledge) and the reads (``read``). The
projector and the dispatcher call these inside their own write transactions and write no
mismatch SQL themselves. This package imports neither of them.
"""

from __future__ import annotations

from pipeline.mismatches.kinds import ACKNOWLEDGED, OPEN, ORIGINS, RESOLVED
from pipeline.mismatches.read import (
    Mismatch,
    MismatchError,
    get_mismatch,
    list_mismatches,
    mismatches_for,
    open_mismatches,
    row_to_mismatch,
)
from pipeline.mismatches.table import mismatches
from pipeline.mismatches.write import (
    acknowledge_mismatch,
    apply_acknowledgement,
    open_mismatch,
    replace_rebuilt,
    resolve_for_messages,
    resolve_mismatch,
    update_detail,
)

__all__ = [
    "ACKNOWLEDGED",
    "OPEN",
    "ORIGINS",
    "RESOLVED",
    "Mismatch",
    "MismatchError",
    "acknowledge_mismatch",
    "apply_acknowledgement",
    "get_mismatch",
    "list_mismatches",
    "mismatches",
    "mismatches_for",
    "open_mismatch",
    "open_mismatches",
    "replace_rebuilt",
    "resolve_for_messages",
    "resolve_mismatch",
    "row_to_mismatch",
    "update_detail",
]
