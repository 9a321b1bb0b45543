"""When a long fold refreshes the planner's statistics of the tables it is filling.

A rebuild, a parallel worker or the first catch-up of a backfilled log fills projection
tables from empty within seconds, long before autovacuum looks at them. Without statistics
PostgreSQL planned the correlations' look-up by carrier alone and compared every stored row
with a batch's ids, so each batch cost in proportion to the log (docs/benchmarks.md). The
fold refreshes them as the events it has applied double from ``FIRST`` on: a handful of
cheap ``ANALYZE`` runs however long the log, and none for the live projector's small runs.
The log itself is analysed too where it has no statistics yet or they are stale
(``Backend.refresh_log_statistics``): without them a batch's read may scan the whole log.
"""

from __future__ import annotations

from pipeline.db.engine import Database
from pipeline.db.tables import events
from pipeline.projector.store import ProjectionTables

#: Events applied before the first refresh: below this a table is small enough for any plan.
FIRST = 20_000


class StatisticsSchedule:
    """Refresh the statistics of ``tables`` after the batches that cross 20k, 40k, 80k, ...
    events applied in one fold."""

    def __init__(self, db: Database, tables: ProjectionTables) -> None:
        self.db = db
        self.tables = tables
        self.next_at = FIRST

    def applied(self, total: int) -> bool:
        """Called after each committed batch with the fold's running total; whether it
        refreshed the statistics."""
        if total < self.next_at:
            return False
        while self.next_at <= total:
            self.next_at *= 2
        with self.db.write() as conn:
            self.db.backend.refresh_planner_statistics(conn, self.tables.all())
            self.db.backend.refresh_log_statistics(conn, events)
        return True
