"""Reads through the driver's own cursor, for the few queries every append runs.

A commit of a handful of events runs the same small reads every time (the highest
position, the stored keys among the new ones, the positions just taken), and
SQLAlchemy's statement and result set-up costs more than each of those queries. Writes
keep going through SQLAlchemy.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError


def driver_rows(
    conn: Connection, sql: str, params: Mapping[str, Any] | Sequence[Any] | None = None
) -> list[tuple[Any, ...]]:
    """The rows of ``sql`` (in the driver's own parameter style) in ``conn``'s transaction.

    A driver error is raised as the ``sqlalchemy.exc.DBAPIError`` subclass
    ``exec_driver_sql`` would raise (callers tell a locked or unavailable database by it),
    with the parameters left out of its text.
    """
    dbapi_error = conn.dialect.loaded_dbapi.Error
    cursor = conn.connection.cursor()
    try:
        cursor.execute(sql, {} if params is None else params)
        return list(cursor.fetchall())
    except dbapi_error as exc:
        raise DBAPIError.instance(sql, params, exc, dbapi_error, hide_parameters=True) from exc
    finally:
        cursor.close()
