"""The PostgreSQL backend: advisory locks, ``SKIP LOCKED`` claims, arrays, NUMERIC sums.

Concurrent transactions take sequence values in one order and commit in another, so
appends are serialised by a transaction-scoped advisory lock taken before a position is
allocated (see ``pipeline.eventlog.ordering``). The projector's lock is a session-level
advisory lock on a connection of its own: if the process dies, the server ends the session
and the lock goes with it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from sqlalchemy import (
    Column,
    Connection,
    Numeric,
    Select,
    Table,
    UniqueConstraint,
    cast,
    func,
    select,
    text,
    type_coerce,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.sql.elements import ColumnElement

from pipeline.db.backend import (
    APPEND_LOCK_KEY,
    CURRENCY_EXPONENTS,
    MONEY_SUM_SCALE,
    NAMED_PARAMETER,
    PROJECTOR_LOCK_KEY,
    ROLLUP_LOCK_KEY,
    Backend,
    WriteProbe,
    render_pyformat,
)

if TYPE_CHECKING:
    from pipeline.db.engine import Database
    from pipeline.db.partitions import Conversion, Partition


class PostgreSQLBackend(Backend):
    name: ClassVar[str] = "postgresql"
    networked: ClassVar[bool] = True
    validates_json: ClassVar[bool] = True
    instance: ClassVar[PostgreSQLBackend]

    def driver_sql(self, sql: str) -> str:
        return render_pyformat(sql)

    def json_text_sql(self, column: str, key: str) -> str:
        return f"({column} ->> '{key}')"

    def shard_sql(self, key: str, count: str) -> str:
        # The key's UTF-8 bytes whatever the database's encoding, as Python hashes them.
        digest = f"md5(convert_to({key}, 'UTF8'))"
        return f"((('x' || substr({digest}, 1, 8))::bit(32)::bigint) % {count})"

    def bind_time(self, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("naive datetime: every stored time must be timezone-aware UTC")
        return value if value.tzinfo is UTC else value.astimezone(UTC)

    def bind_json(self, value: Any) -> Any:
        from psycopg.types.json import Jsonb

        return Jsonb(value)

    def load_time(self, value: Any) -> datetime:
        if type(value) is not datetime:
            raise ValueError(f"not a loaded time: a {type(value).__name__}")
        return value if value.tzinfo is UTC else value.astimezone(UTC)

    def load_json(self, value: Any) -> Any:
        return value  # psycopg decodes JSONB itself

    def insert(self, table: Table) -> Any:
        return postgresql.insert(table)

    def insert_new(
        self, conn: Connection, table: Table, rows: Sequence[Mapping[str, Any]], key: str
    ) -> None:
        if not rows:
            return
        # No conflict target: the log partitioned by month has no unique index on ``key``
        # alone (PostgreSQL wants the partition key in it), so there its key trigger skips
        # stored keys (pipeline.db.partitions); unpartitioned, the unique index does.
        names = list(rows[0])
        sql = (
            f"INSERT INTO {table.name} ({', '.join(names)}) "
            f"VALUES ({', '.join(':' + c for c in names)}) ON CONFLICT DO NOTHING"
        )
        conn.exec_driver_sql(self.driver_sql(sql), list(rows))

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
        # One statement over arrays: the server runs one UPDATE for all the rows instead
        # of one per row. Per-row parameters become columns of ``unnest(...) AS _v``.
        if not rows:
            return 0
        names = list(array_types)

        def rendered(sql: str) -> str:
            def param(match: re.Match[str]) -> str:
                name = match.group(1)
                return f"_v._{name}" if name in array_types else f"%({name})s"

            return NAMED_PARAMETER.sub(param, sql.replace("%", "%%"))

        arrays = ", ".join(f"%({n})s::{array_types[n]}[]" for n in names)
        columns = ", ".join(f"_{n}" for n in names)
        sql = (
            f"UPDATE {table} SET {rendered(set_sql)} FROM unnest({arrays}) AS _v({columns}) "
            f"WHERE {rendered(where_sql)}"
        )
        params: dict[str, Any] = dict(shared or {})
        for n in names:
            params[n] = [row[n] for row in rows]
        return conn.exec_driver_sql(sql, params).rowcount

    def update_keys(
        self, conn: Connection, sql: str, params: Mapping[str, Any], column: str, keys: list[Any]
    ) -> None:
        if keys:
            statement = self.driver_sql(f"{sql} WHERE {column} = ANY(:_keys)")
            conn.exec_driver_sql(statement, {**params, "_keys": keys})

    def serialise_appends(self, conn: Connection) -> None:
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": APPEND_LOCK_KEY})

    def serialise_rollup(self, conn: Connection) -> None:
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": ROLLUP_LOCK_KEY})

    def projector_lock(self, db: Database, *, wait: bool) -> AbstractContextManager[bool]:
        return _advisory_lock(db, wait)

    def lock_for_claim(self, stmt: Select[Any], of: Table) -> Select[Any]:
        return stmt.with_for_update(of=of, skip_locked=True)

    def snapshot_options(self) -> dict[str, Any]:
        # READ COMMITTED takes a new snapshot per statement: a projector commit between two
        # pages would mix two positions into one report.
        return {"isolation_level": "REPEATABLE READ"}

    def bound_lock_wait(self, conn: Connection, milliseconds: int) -> None:
        # SET LOCAL: for this transaction only, so a pooled connection keeps its default.
        conn.exec_driver_sql(f"SET LOCAL lock_timeout = {int(milliseconds)}")

    def interactive_read(self, conn: Connection) -> None:
        # JIT compiles a big query's expressions before running it: for v_invoices it took
        # about 0.4 s that the run never won back. The daily views filter on ``day``, an
        # expression the planner cannot estimate: it expects a few thousand rows, plans a
        # sort of the whole month and a single-process GroupAggregate; hash aggregation in
        # each parallel worker is what a month needs (about 40 % faster, docs/benchmarks.md).
        # A sort an ORDER BY needs still happens; these hold for this transaction only.
        conn.exec_driver_sql("SET LOCAL jit = off")
        conn.exec_driver_sql("SET LOCAL enable_sort = off")

    def refresh_planner_statistics(self, conn: Connection, tables: Sequence[Table]) -> None:
        # Until a table is analysed the planner knows no column's statistics: it took
        # ``carrier = :c`` for a selective condition and searched the correlations' index
        # by carrier alone, comparing every row with a batch's thousand ids (two thirds of
        # a 200,000-event fold; docs/benchmarks.md). Autovacuum comes too late for a fold
        # that fills fresh tables within a minute.
        # Only the tables this role owns: the runtime role owns none (pipeline.db.roles),
        # and ANALYZE would warn for each; autovacuum keeps the live tables' statistics.
        format_table = conn.dialect.identifier_preparer.format_table
        owned = conn.scalars(
            text(
                "SELECT c.relname FROM pg_class c WHERE c.oid = ANY(CAST(:names AS regclass[])) "
                "AND pg_has_role(current_user, c.relowner, 'USAGE')"
            ),
            {"names": [format_table(t) for t in tables]},
        ).all()
        owned_names = set(owned)
        quote = conn.dialect.identifier_preparer.quote
        # The columns an index searches by, not every column: the planner's choices here
        # are between indexes, and the statistics of a large JSON column (the fold state)
        # took two thirds of the time (0.63 s against 0.20 s for a 200,000-event fold's
        # four refreshes; docs/benchmarks.md).
        mine = [
            f"{format_table(t)} ({', '.join(quote(c) for c in columns)})"
            for t in tables
            if t.name in owned_names and (columns := _indexed_columns(t))
        ]
        if mine:
            conn.execute(text(f"ANALYZE {', '.join(mine)}"))

    def refresh_log_statistics(self, conn: Connection, log: Table) -> bool:
        # Autovacuum keeps the log's statistics. Without it (a server run with autovacuum
        # off, as some are) or before it comes (a database restored from a dump, which
        # carries none), the planner can misjudge the log's size and read a batch,
        # ``position > :after ORDER BY position LIMIT n``, by scanning and sorting the
        # whole log (PostgreSQL 15 did at 200,000 events, not at 1,000,000: see
        # bench/log_read_plan.py and docs/benchmarks.md). Analysed when it
        # has none, or has changed by more than half since (autovacuum's own rule is a
        # tenth); only the owner can, and the runtime role is not asked.
        format_table = conn.dialect.identifier_preparer.format_table
        row = conn.execute(
            text(
                "SELECT c.reltuples, coalesce(s.n_mod_since_analyze, 0) FROM pg_class c "
                "LEFT JOIN pg_stat_all_tables s ON s.relid = c.oid "
                "WHERE c.oid = CAST(:name AS regclass) "
                "AND pg_has_role(current_user, c.relowner, 'USAGE')"
            ),
            {"name": format_table(log)},
        ).first()
        if row is None:
            return False
        rows, changed = float(row[0]), int(row[1])
        if rows >= 0 and changed <= rows / 2:
            return False
        quote = conn.dialect.identifier_preparer.quote
        columns = ", ".join(quote(c) for c in _indexed_columns(log))
        conn.execute(text(f"ANALYZE {format_table(log)} ({columns})"))
        return True

    def database_size(self, conn: Connection) -> int:
        return int(conn.scalar(text("SELECT pg_database_size(current_database())")) or 0)

    def copy_database(self, db: Database, path: Path) -> int:
        # The head is read in the very snapshot pg_dump then copies (exported from this
        # transaction, which stays open until the dump is done), so it is the copy's own.
        from pipeline.db.pgdump import dump
        from pipeline.db.tables import events

        with db.engine.connect() as conn:
            conn = conn.execution_options(isolation_level="REPEATABLE READ")
            with conn.begin():
                snapshot = str(conn.scalar(text("SELECT pg_export_snapshot()")))
                head = int(conn.scalar(select(func.max(events.c.position))) or 0)
                dump(db.engine.url, path, snapshot=snapshot)
        return head

    def restore_hint(self, db: Database, path: Path) -> str:
        from pipeline.db.pgdump import libpq_url

        return f"restore: pg_restore --clean --if-exists -d {libpq_url(db.engine.url)} {path}"

    def events_partitioned(self, conn: Connection) -> bool:
        from pipeline.db import partitions

        return partitions.is_partitioned(conn)

    def create_event_partitions(
        self, conn: Connection, ahead: int, *, lock_timeout_ms: int | None = None
    ) -> list[str]:
        from pipeline.db import partitions

        return partitions.create_ahead(conn, ahead, lock_timeout_ms=lock_timeout_ms)

    def event_partitions(self, conn: Connection) -> list[Partition]:
        from pipeline.db import partitions

        return partitions.partitions(conn)

    def partition_events(
        self,
        conn: Connection,
        ahead: int,
        *,
        on_progress: Callable[[int], None] | None = None,
    ) -> Conversion:
        from pipeline.db import partitions

        return partitions.convert(conn, ahead, on_progress=on_progress)

    def detach_event_partition(
        self, conn: Connection, month: date, check: Callable[[], None]
    ) -> str:
        from pipeline.db import partitions

        if not partitions.is_partitioned(conn):
            raise partitions.PartitionError(
                "events is not partitioned: there is nothing to detach "
                "(`smsrecon db partition-events` converts it)"
            )
        return partitions.detach(conn, month, check)

    def units_as_decimal_sql(self, units: str, scale: int | str) -> str:
        # NUMERIC division rounds to a scale of its own choosing (about 16 significant
        # digits), never fewer decimals than the dividend's: the dividend is given the
        # scale first, so every 64-bit sum divides exactly. A fixed scale in the type, so
        # the text has exactly ``scale`` decimals (as on SQLite) and a BI tool sees
        # NUMERIC(38, scale).
        if isinstance(scale, int):
            return (
                f"CAST(CAST({units} AS NUMERIC(38, {scale})) / {10**scale} AS NUMERIC(38, {scale}))"
            )
        top = max(CURRENCY_EXPONENTS)
        return f"round(CAST({units} AS NUMERIC(38, {top})) / (10::numeric ^ {scale}), {scale})"

    def utc_day_sql(self, column: str) -> str:
        return f"to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD')"

    def hours_since_sql(self, column: str) -> str:
        return f"CAST(floor(extract(epoch FROM (now() - {column})) / 3600) AS BIGINT)"

    def now_sql(self) -> str:
        return "now()"

    def money_sum(self, column: Any, scale: int = MONEY_SUM_SCALE) -> ColumnElement[Any]:
        from pipeline.db.types import Money

        exact = func.sum(cast(func.trunc(cast(column, Numeric()), scale), Numeric()))
        return type_coerce(cast(exact, postgresql.TEXT()), Money())

    def probe_write(self, db: Database, *, timeout: float) -> WriteProbe:
        # Read-only and recovery are asked outright (a standby, default_transaction_read_only,
        # SET SESSION CHARACTERISTICS all show in transaction_read_only). Then the lock every
        # append takes, without waiting (a migration or a LOCK TABLE holding events shows as
        # locked), and a transaction id (refused near wraparound). Rolled back: nothing is
        # stored. A full disk shows only when one of these has to write (see
        # docs/operations.md): the server's free space is not visible from here.
        from sqlalchemy.exc import DBAPIError

        millis = max(1, int(timeout * 1000))
        try:
            with db.engine.connect() as conn, conn.begin() as transaction:
                try:
                    return _probe_in(conn, millis)
                finally:
                    transaction.rollback()
        except DBAPIError as exc:
            return _pg_problem(exc)


def _probe_in(conn: Connection, millis: int) -> WriteProbe:
    """The probe's statements, in a transaction the caller rolls back."""
    conn.exec_driver_sql(f"SET LOCAL lock_timeout = {int(millis)}")
    conn.exec_driver_sql(f"SET LOCAL statement_timeout = {int(millis)}")
    recovery, read_only = conn.execute(
        text("SELECT pg_is_in_recovery(), current_setting('transaction_read_only')")
    ).one()
    if recovery:
        return WriteProbe("database_in_recovery", "pg_is_in_recovery() is true")
    if read_only == "on":
        return WriteProbe("database_read_only", "transaction_read_only is on for new sessions")
    conn.exec_driver_sql("LOCK TABLE events IN ROW EXCLUSIVE MODE NOWAIT")
    conn.exec_driver_sql("SELECT pg_current_xact_id()")
    return WriteProbe(None)


#: SQLSTATE (or its class, two characters) -> write problem.
_PG_PROBLEMS = {
    "55P03": "database_locked",  # lock_not_available
    "57014": "database_locked",  # query_canceled: statement_timeout while waiting
    "25006": "database_read_only",  # read_only_sql_transaction
    "53100": "disk_full",
    "57P03": "database_unreachable",  # cannot_connect_now (starting up, shutting down)
    "08": "database_unreachable",  # connection exceptions
}


def _pg_problem(exc: Exception) -> WriteProbe:
    orig = getattr(exc, "orig", None)
    sqlstate = getattr(orig, "sqlstate", None) or ""
    # The server's message only (no URL, no password); its first line.
    detail = f"{sqlstate or type(orig or exc).__name__}: {str(orig or exc).splitlines()[0]}"
    problem = _PG_PROBLEMS.get(sqlstate) or _PG_PROBLEMS.get(sqlstate[:2])
    if problem is None:
        problem = "database_unreachable" if not sqlstate else "database_write_failed"
    return WriteProbe(problem, detail[:300])


@contextmanager
def _advisory_lock(db: Database, wait: bool) -> Iterator[bool]:
    with db.engine.connect() as conn:
        conn = conn.execution_options(isolation_level="AUTOCOMMIT")
        key = {"k": PROJECTOR_LOCK_KEY}
        if wait:
            conn.execute(text("SELECT pg_advisory_lock(:k)"), key)
            got = True
        else:
            got = bool(conn.execute(text("SELECT pg_try_advisory_lock(:k)"), key).scalar())
        try:
            yield got
        finally:
            if got:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), key)


PostgreSQLBackend.instance = PostgreSQLBackend()


def _indexed_columns(table: Table) -> list[str]:
    """The columns of ``table``'s primary key, unique constraints and indexes, each once."""
    names = [c.name for c in table.primary_key.columns]
    for constraint in table.constraints:
        if isinstance(constraint, UniqueConstraint):
            names += [c.name for c in constraint.columns]
    for index in sorted(table.indexes, key=lambda i: i.name or ""):
        names += [c.name for c in index.columns if isinstance(c, Column)]
    return list(dict.fromkeys(names))
