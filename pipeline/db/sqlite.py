"""The SQLite backend: one writer at a time, times as naive UTC text, JSON as text.

``BEGIN IMMEDIATE`` (``pipeline.db.engine``) already serialises every writer, so appends
and claims need no lock of their own; the projector's lock is a file lock beside the
database, which the operating system releases when the process dies.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from filelock import FileLock, Timeout
from sqlalchemy import Connection, Select, String, Table, case, cast, func, literal, type_coerce
from sqlalchemy.dialects import sqlite
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.types import Integer, TypeDecorator

from pipeline.db.backend import (
    CURRENCY_EXPONENTS,
    MONEY_SUM_SCALE,
    Backend,
    WriteProbe,
    iter_chunks,
)
from pipeline.db.codec import json_text
from pipeline.db.driver import driver_rows
from pipeline.times import sqlite_time_text

if TYPE_CHECKING:
    from pipeline.db.engine import Database
    from pipeline.db.partitions import Conversion, Partition

_PARSE = datetime.fromisoformat
_LOADS = json.loads

#: Keys per ``IN (...)`` lookup, well under SQLite's limit on bound parameters.
KEYS_PER_LOOKUP = 500


class _MinorUnits(TypeDecorator[Any]):
    """An integer count of 10**-scale units read back as the exact Decimal."""

    impl = Integer
    cache_ok = True

    def __init__(self, scale: int) -> None:
        super().__init__()
        self.scale = scale

    def process_result_value(self, value: Any, dialect: Any) -> Any:
        from decimal import Decimal

        return None if value is None else Decimal(int(value)).scaleb(-self.scale)


def database_file(db: Database) -> Path:
    database = db.engine.url.database
    if not database or database == ":memory:":
        raise ValueError("this needs an SQLite database file, not :memory:")
    return Path(database)


def lock_file_for(db: Database) -> Path:
    return Path(f"{database_file(db)}.projector.lock")


class SQLiteBackend(Backend):
    name: ClassVar[str] = "sqlite"
    networked: ClassVar[bool] = False
    validates_json: ClassVar[bool] = False
    instance: ClassVar[SQLiteBackend]

    def driver_sql(self, sql: str) -> str:
        return sql  # sqlite3 takes ``:name`` itself

    def json_text_sql(self, column: str, key: str) -> str:
        # json_extract raises for a text that is no JSON; only an object has fields.
        return (
            f"(CASE WHEN json_valid({column}) AND json_type({column}) = 'object' "
            f"THEN CAST(json_extract({column}, '$.\"{key}\"') AS TEXT) END)"
        )

    def bind_time(self, value: datetime) -> str:
        return sqlite_time_text(value)

    def bind_json(self, value: Any) -> str:
        return json_text(value)

    def load_time(self, value: Any) -> datetime:
        # Naive UTC text: stating the offset in the text parses straight to an aware UTC
        # time, several times cheaper than ``replace``. Other forms (a short year an older
        # version wrote, an offset of its own) raise; ``parse_sqlite_time`` reads them.
        return _PARSE(value + "+00:00")

    def load_json(self, value: Any) -> Any:
        return _LOADS(value)

    def insert(self, table: Table) -> Any:
        return sqlite.insert(table)

    def insert_new(
        self, conn: Connection, table: Table, rows: Sequence[Mapping[str, Any]], key: str
    ) -> None:
        # The log refuses any insert of a stored key (migration 0005: that is how it stops
        # REPLACE), so stored keys are left out first. The caller's BEGIN IMMEDIATE keeps
        # anyone from storing one between this look and the insert.
        if not rows:
            return
        stored: set[Any] = set()
        keys = [row[key] for row in rows]
        for chunk in iter_chunks(keys, KEYS_PER_LOOKUP):
            marks = ", ".join(["?"] * len(chunk))
            sql = f"SELECT {key} FROM {table.name} WHERE {key} IN ({marks})"
            stored.update(k for (k,) in driver_rows(conn, sql, tuple(chunk)))
        new = [row for row in rows if row[key] not in stored]
        if not new:
            return
        names = list(new[0])
        sql = (
            f"INSERT INTO {table.name} ({', '.join(names)}) "
            f"VALUES ({', '.join(':' + c for c in names)}) ON CONFLICT ({key}) DO NOTHING"
        )
        conn.exec_driver_sql(sql, new)

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
        if not rows:
            return 0
        params = [{**(shared or {}), **row} for row in rows]
        sql = f"UPDATE {table} SET {set_sql} WHERE {where_sql}"
        return conn.exec_driver_sql(sql, params).rowcount

    def update_keys(
        self, conn: Connection, sql: str, params: Mapping[str, Any], column: str, keys: list[Any]
    ) -> None:
        # One writer at a time: an executemany by primary key is the cheapest form.
        if keys:
            statement = f"{sql} WHERE {column} = :_key"
            conn.exec_driver_sql(statement, [{**params, "_key": key} for key in keys])

    def serialise_appends(self, conn: Connection) -> None:
        return None  # BEGIN IMMEDIATE already serialises every writer

    def projector_lock(self, db: Database, *, wait: bool) -> AbstractContextManager[bool]:
        return _file_lock(lock_file_for(db), wait)

    def lock_for_claim(self, stmt: Select[Any], of: Table) -> Select[Any]:
        return stmt  # the claim's BEGIN IMMEDIATE already excludes every other writer

    def database_size(self, conn: Connection) -> int:
        pages = conn.exec_driver_sql("PRAGMA page_count").scalar() or 0
        page_size = conn.exec_driver_sql("PRAGMA page_size").scalar() or 0
        return int(pages) * int(page_size)

    def copy_database(self, db: Database, path: Path) -> int:
        # One step of the backup API (all pages at once) copies within one read
        # transaction: under WAL that is a snapshot, and writers carry on beside it.
        from pipeline.db.backup import BackupError

        try:
            return _copy_file(database_file(db), path)
        except sqlite3.Error as exc:
            raise BackupError(f"SQLite backup failed: {exc}") from exc

    def restore_hint(self, db: Database, path: Path) -> str:
        return (
            f"restore: stop smsrecon, remove {database_file(db)}-wal and -shm if present, "
            f"then copy {path} to {database_file(db)}"
        )

    # SQLite has no partitions: the log is one table, archived by export only.

    def events_partitioned(self, conn: Connection) -> bool:
        return False

    def create_event_partitions(
        self, conn: Connection, ahead: int, *, lock_timeout_ms: int | None = None
    ) -> list[str]:
        return []

    def event_partitions(self, conn: Connection) -> list[Partition]:
        return []

    def partition_events(
        self,
        conn: Connection,
        ahead: int,
        *,
        on_progress: Callable[[int], None] | None = None,
    ) -> Conversion:
        from pipeline.db.partitions import PartitionError

        raise PartitionError("SQLite has no partitions: the log stays one table")

    def detach_event_partition(
        self, conn: Connection, month: date, check: Callable[[], None]
    ) -> str:
        from pipeline.db.partitions import PartitionError

        raise PartitionError(
            "SQLite has no partitions: an archive is an export only, the events stay"
        )

    def units_as_decimal_sql(self, units: str, scale: int | str) -> str:
        # Integer division and modulo of the absolute value, the sign put back as text:
        # exact for every 64-bit sum, and -0.05 keeps its sign (-5 / 100 is 0).
        if isinstance(scale, int):
            return _units_text(units, scale)
        branches = " ".join(f"WHEN {e} THEN {_units_text(units, e)}" for e in CURRENCY_EXPONENTS)
        return f"(CASE {scale} {branches} END)"

    def utc_day_sql(self, column: str) -> str:
        return f"substr({column}, 1, 10)"  # storage text is naive UTC, 'YYYY-MM-DD ...'

    def hours_since_sql(self, column: str) -> str:
        return (
            f"((CAST(strftime('%s', 'now') AS INTEGER) - CAST(strftime('%s', {column}) "
            "AS INTEGER)) / 3600)"
        )

    def now_sql(self) -> str:
        # The storage text's own form, so that text order is time order.
        return "strftime('%Y-%m-%d %H:%M:%f000', 'now')"

    def money_sum(self, column: Any, scale: int = MONEY_SUM_SCALE) -> ColumnElement[Any]:
        # SQLite has no decimal type (a REAL sum of 0.1 and 0.2 is not 0.3): each amount's
        # text becomes an integer of 10**-scale units by string surgery, and those are
        # summed exactly (SQLite raises on integer overflow rather than rounding).
        text = type_coerce(column, String())
        dot = func.instr(text, ".")
        zeros = literal("0" * scale, String())
        whole = func.substr(text, 1, dot - 1)
        fraction = func.substr(func.substr(text, dot + 1).op("||")(zeros), 1, scale)
        units = case((dot == 0, text.op("||")(zeros)), else_=whole.op("||")(fraction))
        return type_coerce(func.sum(cast(units, Integer)), _MinorUnits(scale))

    def probe_write(self, db: Database, *, timeout: float) -> WriteProbe:
        # BEGIN IMMEDIATE alone succeeds even on a read-only file, so the probe also writes
        # the header's user_version (to the value it has) and rolls back: SQLite must then
        # take the write lock and open the file (and its WAL) for writing, yet nothing
        # reaches the disk. A connection of its own, so the wait is ``timeout``, not the
        # pool's busy_timeout; ``mode=rw`` so a missing file is an error, not a new one.
        try:
            path = database_file(db)
        except ValueError:
            return WriteProbe(None, "an in-memory database lives in this process")
        try:
            conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=rw", uri=True, timeout=timeout)
        except sqlite3.Error as exc:
            return _sqlite_problem(exc, path)
        conn.isolation_level = None
        try:
            conn.execute("BEGIN IMMEDIATE")
            version = int(conn.execute("PRAGMA user_version").fetchone()[0])
            conn.execute(f"PRAGMA user_version = {version}")
        except sqlite3.Error as exc:
            return _sqlite_problem(exc, path)
        finally:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            conn.close()
        return WriteProbe(None)

    def free_bytes(self, db: Database) -> int | None:
        try:
            path = database_file(db)
        except ValueError:
            return None
        return shutil.disk_usage(path.resolve().parent).free


def _sqlite_problem(exc: sqlite3.Error, path: Path) -> WriteProbe:
    """A probe's SQLite error as a write problem, by its primary result code."""
    code = getattr(exc, "sqlite_errorcode", 0) & 0xFF
    detail = f"{getattr(exc, 'sqlite_errorname', type(exc).__name__)}: {exc}"
    if code in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
        return WriteProbe("database_locked", detail)
    if code == sqlite3.SQLITE_READONLY:
        return WriteProbe("database_read_only", detail)
    if code == sqlite3.SQLITE_FULL:
        return WriteProbe("disk_full", detail)
    if code == sqlite3.SQLITE_CANTOPEN and path.exists():
        # The file is there but cannot be opened for writing, or its WAL or journal cannot
        # be created beside it: a read-only file or directory.
        return WriteProbe("database_read_only", detail)
    if code == sqlite3.SQLITE_CANTOPEN:
        return WriteProbe("database_unreachable", detail)
    return WriteProbe("database_write_failed", detail)


def _units_text(units: str, scale: int) -> str:
    if scale == 0:
        return f"CAST({units} AS TEXT)"
    unit = 10**scale
    return (
        f"(CASE WHEN {units} IS NULL THEN NULL ELSE printf('%s%d.%0{scale}d', "
        f"CASE WHEN {units} < 0 THEN '-' ELSE '' END, abs({units}) / {unit}, "
        f"abs({units}) % {unit}) END)"
    )


def _copy_file(source_file: Path, path: Path) -> int:
    source = sqlite3.connect(source_file, timeout=30)
    try:
        target = sqlite3.connect(path)
        try:
            source.backup(target)
            # The copy is one self-contained file: no -wal beside it to go missing.
            target.execute("PRAGMA journal_mode=DELETE")
            return int(target.execute("SELECT max(position) FROM events").fetchone()[0] or 0)
        finally:
            target.close()
    finally:
        source.close()


@contextmanager
def _file_lock(path: Path, wait: bool) -> Iterator[bool]:
    lock = FileLock(str(path))
    try:
        lock.acquire(timeout=-1 if wait else 0)
    except Timeout:
        yield False
        return
    try:
        yield True
    finally:
        lock.release()


SQLiteBackend.instance = SQLiteBackend()
