"""Marking a database as the demo's own, and telling whether a database holds anything.

``smsrecon demo`` deletes and re-creates its SQLite file, so it must be sure a file is one
it made; a mark inside the database says so more reliably than a name or a path. SQLite
files carry it in their header as the ``application_id`` (the field SQLite reserves for
telling which application a file belongs to; any connection can read it without running
SQL against the schema), and PostgreSQL databases as the comment on ``events``.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from sqlalchemy import Engine, inspect, text

from pipeline.db.tables import all_tables

#: "smDm" in ASCII; a signed 32-bit value, as SQLite stores it.
DEMO_APPLICATION_ID = 0x736D446D
DEMO_COMMENT = "smsrecon demo database: smsrecon demo may fill it again"


def mark_demo(engine: Engine) -> None:
    """Mark the database ``engine`` points at as the demo's (its schema must exist)."""
    with engine.begin() as conn:
        if conn.dialect.name == "sqlite":
            conn.exec_driver_sql(f"PRAGMA application_id = {DEMO_APPLICATION_ID}")
        else:
            # COMMENT takes no bound parameter; the mark is a constant without quotes.
            conn.exec_driver_sql(f"COMMENT ON TABLE events IS '{DEMO_COMMENT}'")


def is_demo(engine: Engine) -> bool:
    with engine.connect() as conn:
        if conn.dialect.name == "sqlite":
            return conn.exec_driver_sql("PRAGMA application_id").scalar() == DEMO_APPLICATION_ID
        found = conn.execute(
            text("SELECT obj_description(to_regclass('events'), 'pg_class')")
        ).scalar()
        return found == DEMO_COMMENT


#: The first 16 bytes of every SQLite database file.
_SQLITE_MAGIC = b"SQLite format 3\x00"


def create_demo_sqlite(path: Path) -> None:
    """Create ``path`` as an empty SQLite database already marked as the demo's.

    Written in rollback-journal mode, so the mark is in the file's header at once (not in
    a write-ahead log waiting for a checkpoint) and survives a demo that dies midway.
    """
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute(f"PRAGMA application_id = {DEMO_APPLICATION_ID}")
    finally:
        conn.close()


def sqlite_file_is_demo(path: Path) -> bool:
    """True when ``path`` is a SQLite file whose header carries the demo's mark; False for
    any other file (another SQLite database, or not a database at all). Only the header is
    read, through a plain file read: nothing about the file changes."""
    with path.open("rb") as file:
        header = file.read(100)
    if len(header) < 72 or not header.startswith(_SQLITE_MAGIC):
        return False
    return int.from_bytes(header[68:72], "big", signed=True) == DEMO_APPLICATION_ID


def holds_data(engine: Engine) -> bool:
    """Whether any of smsrecon's tables that exist in this database has a row."""
    existing = set(inspect(engine).get_table_names())
    names = [table.name for table in all_tables().sorted_tables if table.name in existing]
    with engine.connect() as conn:
        return any(
            conn.execute(text(f"SELECT 1 FROM {name} LIMIT 1")).first() is not None
            for name in names
        )
