"""Immutability for every statement: SQLite refuses an insert over a stored event.

SQLite's ``REPLACE INTO`` / ``INSERT OR REPLACE`` resolves a conflict by deleting the
stored row and inserting the new one, and that delete fires no DELETE trigger unless the
connection turned ``recursive_triggers`` on. So the guard is a BEFORE INSERT trigger, which
every connection fires whatever its pragmas: an insert whose ``dedup_key`` or ``position``
is already stored is aborted. (The app never sends one: it skips stored keys itself.)
PostgreSQL has no REPLACE, and its ``ON CONFLICT DO UPDATE`` fires the UPDATE guard of
0001; there, what a role may do is a matter of privileges (``smsrecon db grant``).

Revision ID: 0005_immutability
Revises: 0004_dispatch
Create Date: 2026-11-30
"""

from __future__ import annotations

from alembic import op

revision = "0005_immutability"
down_revision = "0004_dispatch"
branch_labels = None
depends_on = None

SQLITE_NO_REPLACE = """
CREATE TRIGGER events_no_replace BEFORE INSERT ON events
WHEN EXISTS (SELECT 1 FROM events WHERE dedup_key = NEW.dedup_key)
  OR EXISTS (SELECT 1 FROM events WHERE position = NEW.position)
BEGIN
    SELECT RAISE(ABORT, 'events is append-only: an insert may not replace a stored event');
END
"""


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute(SQLITE_NO_REPLACE)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TRIGGER IF EXISTS events_no_replace")
