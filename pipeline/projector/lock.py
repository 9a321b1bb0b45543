"""One active projector per database.

PostgreSQL: a session-level advisory lock, taken on a connection of its own that is held
(outside any transaction) for the whole run. If the process dies, the server ends the
session and the lock goes with it, so a crash never leaves the projection locked.

SQLite: a file lock (``filelock``) on ``<database file>.projector.lock`` beside the database.
The operating system releases it when the process dies, for the same reason.

Both are the backend's (``Backend.projector_lock``). The lock decides who projects; the
checkpoint's compare-and-set is the second line of defence should two projectors ever run
at once (the later commit is refused).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from pipeline.db.backend import PROJECTOR_LOCK_KEY
from pipeline.db.engine import Database
from pipeline.db.sqlite import lock_file_for

__all__ = ["PROJECTOR_LOCK_KEY", "lock_file_for", "projector_lock"]


@contextmanager
def projector_lock(db: Database, *, wait: bool = False) -> Iterator[bool]:
    """Yield True while this process holds the projector lock, False if another does.

    With ``wait`` it blocks until the lock is free instead of yielding False.
    """
    with db.backend.projector_lock(db, wait=wait) as got:
        yield got
