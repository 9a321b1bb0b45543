"""Engines for SQLite and PostgreSQL, and the two kinds of transaction smsrecon opens.

Every SQLite-versus-PostgreSQL difference in connection handling lives here; every other
one is the backend's (``pipeline.db.backend``), chosen here once, when the database is
opened.
SQLite writers start with ``BEGIN IMMEDIATE``: a deferred transaction that reads first and
writes later can fail with SQLITE_BUSY at its first write no matter how long busy_timeout
is, because SQLite cannot upgrade a read lock while another writer waits. Taking the write
lock up front makes writers queue instead. Readers use plain deferred transactions, which
WAL lets run beside a writer.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url

from pipeline.db.backend import Backend, backend_named

_READONLY = "smsrecon_readonly"


def normalise_url(url: str) -> str:
    """Accept ``postgresql://`` and ``postgres://`` and use psycopg 3 for them."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return url


def make_engine(url: str, *, busy_timeout_ms: int = 30_000, pool_size: int = 5) -> Engine:
    url = normalise_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url,
            connect_args={"timeout": busy_timeout_ms / 1000, "check_same_thread": False},
        )
        _configure_sqlite(engine, busy_timeout_ms)
        return engine
    if parsed.get_backend_name() == "postgresql":
        return create_engine(url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True)
    raise ValueError(f"unsupported database {parsed.get_backend_name()!r} (sqlite or postgresql)")


def _configure_sqlite(engine: Engine, busy_timeout_ms: int) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event below issue BEGIN itself (pysqlite would
        # otherwise begin lazily, and always DEFERRED).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        if conn.get_execution_options().get(_READONLY):
            conn.exec_driver_sql("BEGIN")
        else:
            conn.exec_driver_sql("BEGIN IMMEDIATE")


class Database:
    """An engine plus the transaction shapes the pipeline uses."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        #: Everything that differs between the engines, chosen once for this database.
        self.backend: Backend = backend_named(engine.dialect.name)
        # SQLite admits one writer at a time. Threads of one process queue on this lock
        # instead of in SQLite's busy handler, which polls with sleeps of up to 100 ms and
        # so wastes most of the time under contention. Other processes still wait in
        # busy_timeout.
        self._sqlite_writer = threading.Lock() if engine.dialect.name == "sqlite" else None

    @classmethod
    def from_url(cls, url: str, **kwargs: Any) -> Database:
        return cls(make_engine(url, **kwargs))

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @property
    def is_postgres(self) -> bool:
        return self.dialect == "postgresql"

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """One write transaction: commits on success, rolls back on any exception."""
        if self._sqlite_writer is None:
            with self.engine.begin() as conn:
                yield conn
            return
        with self._sqlite_writer, self.engine.begin() as conn:
            yield conn

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """One read transaction (deferred on SQLite, so it never blocks a writer)."""
        with self.engine.connect() as conn:
            conn = conn.execution_options(**{_READONLY: True})
            with conn.begin():
                yield conn

    @contextmanager
    def snapshot(self) -> Iterator[Connection]:
        """One read transaction in which every statement sees the same snapshot."""
        with self.engine.connect() as conn:
            options = {_READONLY: True, **self.backend.snapshot_options()}
            conn = conn.execution_options(**options)
            with conn.begin():
                yield conn

    def dispose(self) -> None:
        self.engine.dispose()
