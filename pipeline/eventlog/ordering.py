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

from sqlalchemy import Connection, text

#: Arbitrary but fixed: "smsr" in ASCII.
APPEND_LOCK_KEY = 0x736D7372


def serialise_appends(conn: Connection) -> None:
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": APPEND_LOCK_KEY})
