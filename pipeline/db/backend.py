"""The backend seam: every way SQLite and PostgreSQL differ, behind one interface.

As in pyeventsourcing's persistence module, the rest of the pipeline writes against an
abstract ``Backend`` and one implementation per engine (``pipeline.db.sqlite``,
``pipeline.db.postgresql``) is chosen once, when the database is opened
(``Database.backend``; ``backend_of(conn)`` for code that holds only a connection). No
module outside ``pipeline/db/`` asks which engine it is talking to.

Statements are written once with named parameters (``:name``); ``driver_sql`` renders them
in the driver's own style for the fast paths that bypass SQLAlchemy's compiler.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import date, datetime
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from sqlalchemy import Connection, Select, Table
from sqlalchemy.sql.elements import ColumnElement

if TYPE_CHECKING:
    from pipeline.db.engine import Database
    from pipeline.db.partitions import Conversion, Partition

#: Arbitrary but fixed: "smsr" in ASCII. Serialises appends to the log.
APPEND_LOCK_KEY = 0x736D7372
#: "smsp" in ASCII: distinct from the append lock. One projector per database.
PROJECTOR_LOCK_KEY = 0x736D7370
#: The dashboard's daily rollup refresh (one at a time, whichever process serves pages).
ROLLUP_LOCK_KEY = 0x736D7364

#: Decimal places the exact money sum keeps (carrier prices are quoted to 8).
MONEY_SUM_SCALE = 8

#: The currency exponents ISO 4217 knows (``units_as_decimal_sql`` with an exponent column).
CURRENCY_EXPONENTS = (0, 2, 3, 4)

#: A ``:name`` parameter (not a ``::type`` cast).
NAMED_PARAMETER = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")


@dataclass(frozen=True, slots=True)
class WriteProbe:
    """Whether the database took a probe write: ``problem`` is None, or one of
    ``WRITE_PROBLEMS``; ``detail`` says what the engine answered (never a password)."""

    problem: str | None
    detail: str = ""


#: The reasons a write probe fails, as ``/healthz`` names them.
WRITE_PROBLEMS = (
    "database_unreachable",
    "database_locked",
    "database_read_only",
    "database_in_recovery",
    "disk_full",
    "database_write_failed",
)


class Backend(ABC):
    """What differs between the engines; one instance per engine, without state."""

    #: SQLAlchemy's name for the engine.
    name: ClassVar[str]
    #: Whether processes on other machines can work on this database at once (a server
    #: they all reach), as the workers of a parallel fold on several machines do. A SQLite
    #: file belongs to one machine and has one writer.
    networked: ClassVar[bool]
    #: Whether the server itself keeps every stored JSON document valid (a ``jsonb``
    #: column), so that a reader may leave a payload it does not use undecoded without
    #: missing one no reader can decode.
    validates_json: ClassVar[bool]

    @abstractmethod
    def json_text_sql(self, column: str, key: str) -> str:
        """SQL for the text of the top-level field ``key`` (a constant) of the JSON document
        in ``column``; NULL when it is absent or the document is no object."""

    def shard_sql(self, key: str, count: str) -> str | None:
        """SQL for ``pipeline.projector.shard.shard_of`` of the SQL expression ``key`` and
        ``count`` (the first 32 bits of its MD5, modulo), so the server can tell one
        worker's events from another's; None where the engine has no such hash."""
        return None

    # -- parameters and binding -------------------------------------------------------

    @abstractmethod
    def driver_sql(self, sql: str) -> str:
        """A statement written with ``:name`` parameters in the driver's own style."""

    @abstractmethod
    def bind_time(self, value: datetime) -> Any:
        """An aware time as a time column binds it; ValueError for a naive one."""

    @abstractmethod
    def bind_json(self, value: Any) -> Any:
        """A JSON document as a JSON column binds it."""

    @abstractmethod
    def load_time(self, value: Any) -> datetime:
        """A time column's value as the driver hands it over, as an aware UTC time; a
        value in any other form than the one this backend writes raises ValueError."""

    @abstractmethod
    def load_json(self, value: Any) -> Any:
        """A JSON column's value as the driver hands it over, decoded."""

    # -- bulk writes ------------------------------------------------------------------

    @abstractmethod
    def insert(self, table: Table) -> Any:
        """The engine's INSERT construct (it has ``on_conflict_do_nothing/_update``)."""

    @abstractmethod
    def insert_new(
        self, conn: Connection, table: Table, rows: Sequence[Mapping[str, Any]], key: str
    ) -> None:
        """Insert the encoded ``rows`` (one driver executemany) except those whose ``key``
        is already stored, which are skipped without error."""

    def upsert(
        self,
        conn: Connection,
        table: Table,
        rows: Sequence[Mapping[str, Any]],
        key: str | Sequence[str],
    ) -> None:
        """Insert the encoded ``rows``, or overwrite every other column of a stored row
        with the same ``key`` (one column or several: the primary key or a unique index;
        ``INSERT ... ON CONFLICT DO UPDATE``, one executemany)."""
        if not rows:
            return
        keys = [key] if isinstance(key, str) else list(key)
        names = list(rows[0])
        updates = ", ".join(f"{c} = excluded.{c}" for c in names if c not in keys)
        sql = (
            f"INSERT INTO {table.name} ({', '.join(names)}) "
            f"VALUES ({', '.join(':' + c for c in names)}) "
            f"ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {updates}"
        )
        cursor = conn.connection.cursor()
        try:
            cursor.executemany(self.driver_sql(sql), list(rows))
        finally:
            cursor.close()

    def insert_or_skip(
        self,
        conn: Connection,
        table: Table,
        rows: Sequence[Mapping[str, Any]],
        key: Sequence[str],
    ) -> None:
        """Insert the encoded ``rows``, skipping those whose ``key`` (a primary key or a
        unique index) is already stored (``INSERT ... ON CONFLICT DO NOTHING``, one driver
        executemany: SQLAlchemy's per-row parameter processing cost more than the insert)."""
        if not rows:
            return
        names = list(rows[0])
        sql = (
            f"INSERT INTO {table.name} ({', '.join(names)}) "
            f"VALUES ({', '.join(':' + c for c in names)}) "
            f"ON CONFLICT ({', '.join(key)}) DO NOTHING"
        )
        cursor = conn.connection.cursor()
        try:
            cursor.executemany(self.driver_sql(sql), list(rows))
        finally:
            cursor.close()

    @abstractmethod
    def update_many(
        self,
        conn: Connection,
        table: str,
        *,
        set_sql: str,
        where_sql: str,
        rows: Sequence[Mapping[str, Any]],
        array_types: Mapping[str, str],
        shared: Mapping[str, Any] | None = None,
    ) -> int:
        """One UPDATE per row of ``rows`` as the engine runs it fastest; rows changed.

        ``set_sql`` and ``where_sql`` name per-row values (the keys of ``array_types``,
        with their SQL types) and ``shared`` values as ``:name``; the table's columns are
        named bare and must not share a name with a parameter.
        """

    @abstractmethod
    def update_keys(
        self, conn: Connection, sql: str, params: Mapping[str, Any], column: str, keys: list[Any]
    ) -> None:
        """Run ``sql`` (an UPDATE without WHERE, ``:name`` parameters) for the rows whose
        ``column`` is one of ``keys``."""

    # -- concurrency ------------------------------------------------------------------

    @abstractmethod
    def serialise_appends(self, conn: Connection) -> None:
        """Make this write transaction the only one appending until it ends."""

    def serialise_rollup(self, conn: Connection) -> None:
        """Make this write transaction the only one refreshing the dashboard's rollup until
        it ends, so pages served at once by several processes do not rebuild the same days
        twice. SQLite's BEGIN IMMEDIATE already serialises every writer."""
        return None

    @abstractmethod
    def projector_lock(self, db: Database, *, wait: bool) -> AbstractContextManager[bool]:
        """Yield True while this process holds the projector lock, False if another does."""

    @abstractmethod
    def lock_for_claim(self, stmt: Select[Any], of: Table) -> Select[Any]:
        """``stmt`` made to lock the rows of ``of`` it selects, skipping rows another
        transaction holds (within the claim's write transaction)."""

    # -- reading ----------------------------------------------------------------------

    def snapshot_options(self) -> dict[str, Any]:
        """Execution options that make one read transaction see one snapshot throughout
        (a report reads the checkpoint and then many pages; all must agree). SQLite's
        deferred read transaction already does, from its first read on."""
        return {}

    def bound_lock_wait(self, conn: Connection, milliseconds: int) -> None:
        """Make a read in ``conn``'s transaction fail, not wait, when a lock (a migration
        rewriting a table or a view) is held longer than ``milliseconds``. SQLite's readers
        never wait for a writer under WAL."""
        return None

    def interactive_read(self, conn: Connection) -> None:
        """Tune ``conn``'s transaction for a person waiting on a page rather than for a
        batch job (nothing to tune on SQLite)."""
        return None

    def refresh_planner_statistics(self, conn: Connection, tables: Sequence[Table]) -> None:
        """Give the query planner fresh statistics of ``tables``, which a long fold has just
        filled (``pipeline.projector.statistics``). SQLite needs none: without
        ``sqlite_stat1`` its planner takes every index as selective, which the projector's
        look-ups by key are."""
        return None

    def refresh_log_statistics(self, conn: Connection, log: Table) -> bool:
        """Give the planner statistics of the event log when it has none or they are stale
        and this role owns it (a long fold as the owner: ``replay``, ``report verify``);
        whether it did. SQLite needs none (see ``refresh_planner_statistics``)."""
        return False

    @abstractmethod
    def database_size(self, conn: Connection) -> int:
        """Bytes the database takes on disk."""

    @abstractmethod
    def money_sum(self, column: Any, scale: int = MONEY_SUM_SCALE) -> ColumnElement[Any]:
        """``SUM`` of a money column, exact (a ``Decimal``; None over no rows).

        Amounts are summed to ``scale`` decimal places; digits beyond it are dropped.
        """

    # -- view SQL (the public reporting views are written once, with these pieces) --------

    @abstractmethod
    def units_as_decimal_sql(self, units: str, scale: int | str) -> str:
        """SQL showing the integer ``units`` (an expression counting 10^-``scale``) as an
        exact decimal, never through a float: NUMERIC on PostgreSQL, decimal text on
        SQLite, both rendering the same digits (``scale`` of them after the point).
        ``scale`` is a number, or an SQL expression of a currency exponent (0 to 4)."""

    @abstractmethod
    def utc_day_sql(self, column: str) -> str:
        """SQL of a time column's UTC day as ``YYYY-MM-DD`` text (the same on both)."""

    @abstractmethod
    def hours_since_sql(self, column: str) -> str:
        """SQL of the whole hours from a time column to now (an integer)."""

    @abstractmethod
    def now_sql(self) -> str:
        """SQL of the current time, comparable with a time column."""

    # -- backups (``pipeline.db.backup`` does the file handling around these) ------------

    @abstractmethod
    def copy_database(self, db: Database, path: Path) -> int:
        """Write a consistent copy of ``db`` to the new file ``path`` while others keep
        writing; the highest log position in the copy. Raises BackupError."""

    @abstractmethod
    def restore_hint(self, db: Database, path: Path) -> str:
        """How to restore the copy at ``path`` over ``db`` (never with a password)."""

    # -- health (``pipeline.health`` judges what these find) ------------------------------

    @abstractmethod
    def probe_write(self, db: Database, *, timeout: float) -> WriteProbe:
        """Whether the database would take a write now, found by starting one and rolling
        it back: nothing is stored, and the event log is never touched. Waits at most
        about ``timeout`` seconds for a lock."""

    def free_bytes(self, db: Database) -> int | None:
        """Free bytes where the database's files live, or None when this process cannot
        see that disk (a database server elsewhere)."""
        return None

    # -- growth: the log in monthly partitions (docs/operations.md) ---------------------

    @abstractmethod
    def events_partitioned(self, conn: Connection) -> bool:
        """Whether ``events`` is partitioned by month (PostgreSQL, after conversion)."""

    @abstractmethod
    def create_event_partitions(
        self, conn: Connection, ahead: int, *, lock_timeout_ms: int | None = None
    ) -> list[str]:
        """Create this month's and the next ``ahead`` months' missing partitions; their
        names (none where the log is not partitioned). Needs no ownership."""

    @abstractmethod
    def event_partitions(self, conn: Connection) -> list[Partition]:
        """The log's partitions, oldest first (none where it is not partitioned)."""

    @abstractmethod
    def partition_events(
        self,
        conn: Connection,
        ahead: int,
        *,
        on_progress: Callable[[int], None] | None = None,
    ) -> Conversion:
        """Rewrite the log as monthly partitions in the caller's transaction (the owner's);
        raises PartitionError where there are no partitions or it is partitioned already."""

    @abstractmethod
    def detach_event_partition(
        self, conn: Connection, month: date, check: Callable[[], None]
    ) -> str:
        """Detach the partition of ``month`` (the first of it) from the log; its name.
        ``check`` runs once the partition takes no more inserts, and raises to refuse.
        Raises PartitionError where there is no such partition."""

    def driver_errors(self, conn: Connection) -> tuple[type[BaseException], ...]:
        """What the driver raises for a stored value it cannot load."""
        return (conn.dialect.loaded_dbapi.DataError,)


@lru_cache(maxsize=256)
def render_pyformat(sql: str) -> str:
    """``:name`` → ``%(name)s`` (``::type`` casts untouched)."""
    return NAMED_PARAMETER.sub(lambda m: f"%({m.group(1)})s", sql.replace("%", "%%"))


@lru_cache(maxsize=4)
def backend_named(name: str) -> Backend:
    """The backend of an engine, by SQLAlchemy's name for it (the one place it is read)."""
    from pipeline.db.postgresql import PostgreSQLBackend
    from pipeline.db.sqlite import SQLiteBackend

    for backend in (SQLiteBackend.instance, PostgreSQLBackend.instance):
        if backend.name == name:
            return backend
    raise ValueError(f"unsupported database {name!r} (sqlite or postgresql)")


def backend_of(conn: Connection) -> Backend:
    """The backend of the database ``conn`` belongs to."""
    return backend_named(conn.dialect.name)


def iter_chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
