"""How each backend makes positions become visible in position order.

A reader that remembers "I have read up to position N" must never later find an event
below N. On PostgreSQL concurrent transactions take sequence values in one order and commit
in another, so we serialise appends: every append transaction takes one transaction-scoped
advisory lock before it allocates a position. The lock is released only after the commit is
visible (PostgreSQL releases locks after removing the transaction from the proc array), so
the next writer's positions are always above every committed one. Readers take no lock.
The cost is that appends are serialised; group commit (many events per transaction) keeps
throughput high. On SQLite, ``BEGIN IMMEDIATE`` already serialises writers.
"""

from __future__ import annotations

from sqlalchemy import Connection

from pipeline.db.backend import APPEND_LOCK_KEY, backend_of

__all__ = ["APPEND_LOCK_KEY", "serialise_appends"]


def serialise_appends(conn: Connection) -> None:
    """Take the append lock of ``conn``'s backend (see ``Backend.serialise_appends``)."""
    backend_of(conn).serialise_appends(conn)
