"""The tables of pinned report runs and closed periods.

Neither is a projection: a run is a person's act (``report --save``, ``period close``)
recorded with its ``report.generated`` event in the same transaction, and the pinned
canonical output is kept here so that a closed report can be shown and compared long after
the read model has moved on.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Integer, LargeBinary, String, Table, Text

from pipeline.db.tables import BigId, metadata
from pipeline.db.types import JSONDocument, UTCDateTime

#: One row per saved run: what was asked, as of which log position, and what came out.
report_runs = Table(
    "report_runs",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("report", String(32), nullable=False),
    # The definition's version: a changed definition is a new version, never a silent change.
    Column("version", Integer(), nullable=False),
    Column("params", JSONDocument, nullable=False),
    # The projector checkpoint the rows were read at: the run is the log up to here.
    Column("as_of_position", BigInteger(), nullable=False),
    Column("rows", BigInteger(), nullable=False),
    Column("sha256", String(64), nullable=False),
    # The canonical CSV, gzip-compressed: what ``verify`` and ``corrections`` compare with.
    Column("canonical_gz", LargeBinary(), nullable=False),
    # The month a ``period close`` saved the run for, else NULL.
    Column("period", String(7), nullable=True),
    Column("created_at", UTCDateTime(), nullable=False),
    # The position of the run's ``report.generated`` event.
    Column("event_position", BigInteger(), nullable=True),
    sqlite_autoincrement=True,
)

#: One row per month ever closed: its state now (closed / reopened) and the runs of its
#: last close. The ``period.closed`` / ``period.reopened`` events are the record; this row
#: makes "is it closed?" one indexed read and a close race a refused UPDATE.
report_periods = Table(
    "report_periods",
    metadata,
    Column("period", String(7), primary_key=True),
    Column("status", String(16), nullable=False),
    Column("runs", JSONDocument, nullable=False),
    Column("note", Text(), nullable=True),
    Column("position", BigInteger(), nullable=False),
    Column("changed_at", UTCDateTime(), nullable=False),
)
