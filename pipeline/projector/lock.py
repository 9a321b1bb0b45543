"""One active projector per database.

PostgreSQL: a session-level advisory lock, taken on a connection of its own that is held
(outside any transaction) for the whole run. If the process dies, the server ends the
session and the lock goes with it, so a crash never leaves the projection locked.

SQLite: a file lock (``filelock``) on ``<database file>.projector.lock`` beside the database.
The operating system releases it when the process dies, for the same reason.

The lock decides who projects; the checkpoint's compare-and-set is the second line of
defence should two projectors ever run at once (the later commit is refused).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, Timeout
from sqlalchemy import text

from pipeline.db.engine import Database

#: "smsp" in ASCII: distinct from the append lock ("smsr").
PROJECTOR_LOCK_KEY = 0x736D7370


def lock_file_for(db: Database) -> Path:
    database = db.engine.url.database
    if not database or database == ":memory:":
        raise ValueError("the projector lock needs an SQLite database file, not :memory:")
    return Path(f"{database}.projector.lock")


@contextmanager
def projector_lock(db: Database, *, wait: bool = False) -> Iterator[bool]:
    """Yield True while this process holds the projector lock, False if another does.

    With ``wait`` it blocks until the lock is free instead of yielding False.
    """
    if db.is_postgres:
        with db.engine.connect() as conn:
            conn = conn.execution_options(isolation_level="AUTOCOMMIT")
            if wait:
                conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": PROJECTOR_LOCK_KEY})
                got = True
            else:
                got = bool(
                    conn.execute(
                        text("SELECT pg_try_advisory_lock(:k)"), {"k": PROJECTOR_LOCK_KEY}
                    ).scalar()
                )
            try:
                yield got
            finally:
                if got:
                    conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": PROJECTOR_LOCK_KEY})
        return
    lock = FileLock(str(lock_file_for(db)))
    try:
        lock.acquire(timeout=-1 if wait else 0)
    except Timeout:
        yield False
        return
    try:
        yield True
    finally:
        lock.release()
