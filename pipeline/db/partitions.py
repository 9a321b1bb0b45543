"""PostgreSQL: the log partitioned by month of ``recorded_at``, and its conversion.

Why ``recorded_at`` and not ``occurred_at``: ``recorded_at`` is our own clock at append, so
a month fills once and then closes, and a month's events are (clock skew aside) one run of
positions. ``occurred_at`` comes from outside: a late report of last year, or a hostile
year 999, would land in a month long archived. Anything outside the month partitions goes
to the DEFAULT partition, so no append ever fails for want of a partition.

Every guarantee of the unpartitioned log holds (docs/operations.md):

* immutability: the parent's statement triggers, row triggers that PostgreSQL clones to
  every partition (even one attached by hand), and statement triggers on each partition
  (``TRUNCATE`` has no row triggers); the runtime role has no right on any partition;
* dedup across all months: a unique index of a partitioned table must include the
  partition key, so keys (and positions) are entered in the unpartitioned ``event_keys`` by
  a row trigger in the same transaction; a row whose key is stored is skipped. The keys of a
  detached month stay, so a resent old event is still a duplicate;
* gap-free reads: unchanged. Positions come from the one sequence under the append lock;
  readers read ``position > n`` across all partitions.

The functions the conversion and the scheduler call are created by migration
``0011_event_partitions``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime

from sqlalchemy import Connection

#: Months of history given partitions of their own at conversion; older rows go to DEFAULT.
MAX_HISTORY_MONTHS = 240
#: Rows copied per statement while converting (each advances the progress bar).
COPY_BATCH = 50_000
log = logging.getLogger("smsrecon.db.partitions")

#: The log's columns, in the order of migration 0001.
COLUMNS = (
    "position", "type", "message_id", "carrier", "carrier_message_id", "occurred_at",
    "recorded_at", "source", "payload", "dedup_key",
)  # fmt: skip


class PartitionError(RuntimeError):
    """A partitioning step that cannot be done; the message says why and what to do."""


@dataclass(frozen=True, slots=True)
class Partition:
    name: str
    #: ``YYYY-MM``, or None for the DEFAULT partition.
    month: str | None
    bytes: int


@dataclass(frozen=True, slots=True)
class Conversion:
    rows: int
    partitions: list[str]


def month_name(month: date) -> str:
    return f"events_{month.year:04d}_{month.month:02d}"


def add_months(month: date, n: int) -> date:
    index = month.year * 12 + month.month - 1 + n
    return date(index // 12, index % 12 + 1, 1)


def this_month(now: datetime | None = None) -> date:
    now = (now or datetime.now(UTC)).astimezone(UTC)
    return date(now.year, now.month, 1)


def is_partitioned(conn: Connection) -> bool:
    found = conn.exec_driver_sql(
        "SELECT 1 FROM pg_partitioned_table WHERE partrelid = to_regclass('events')"
    ).first()
    return found is not None


def create_ahead(conn: Connection, ahead: int, *, lock_timeout_ms: int | None = None) -> list[str]:
    """This month's and the next ``ahead`` months' partitions that were missing; none when
    the log is not partitioned. With a lock timeout, a creation that would wait longer for
    the log's lock (a long report holding it) fails instead of queueing every append
    behind it; the next run tries again."""
    if lock_timeout_ms is not None:
        conn.exec_driver_sql(f"SET LOCAL lock_timeout = {int(lock_timeout_ms)}")
    rows = conn.exec_driver_sql(
        "SELECT smsrecon_event_partitions_ahead(%(ahead)s)", {"ahead": ahead}
    ).all()
    made = [name for (name,) in rows]
    if made or is_partitioned(conn):
        current = this_month()
        for n in range(ahead + 1):
            name = month_name(add_months(current, n))
            if conn.exec_driver_sql(f"SELECT to_regclass('{name}')").scalar() is None:
                log.warning(
                    "events of %s are in the DEFAULT partition, so that month has no "
                    "partition of its own (docs/operations.md)",
                    name[7:].replace("_", "-"),
                )
    return made


def partitions(conn: Connection) -> list[Partition]:
    rows = conn.exec_driver_sql(
        "SELECT c.relname, pg_total_relation_size(c.oid), "
        "pg_get_expr(c.relpartbound, c.oid) = 'DEFAULT' "
        "FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = to_regclass('events') ORDER BY c.relname"
    ).all()
    out = []
    for name, size, is_default in rows:
        month = None if is_default else f"{name[7:11]}-{name[12:14]}"
        out.append(Partition(name, month, int(size)))
    return out


def detach(
    conn: Connection,
    month: date,
    check: Callable[[], None],
    *,
    lock_timeout_ms: int = 10_000,
) -> str:
    """Detach one month's partition: it stays as a table of its own, out of the log.

    The partition is locked against inserts first, then ``check`` runs (it raises to
    refuse): so no row recorded late can slip in between the check and the detach."""
    name = month_name(month)
    attached = {p.name for p in partitions(conn)}
    if name not in attached:
        if conn.exec_driver_sql(f"SELECT to_regclass('{name}')").scalar() is not None:
            raise PartitionError(f"{name} is detached already")
        raise PartitionError(
            f"{month.year:04d}-{month.month:02d} has no partition of its own: its events are "
            "in events_default, which stays attached"
        )
    conn.exec_driver_sql(f"SET LOCAL lock_timeout = {int(lock_timeout_ms)}")
    conn.exec_driver_sql(f'LOCK TABLE "{name}" IN SHARE MODE')
    check()
    conn.exec_driver_sql(f'ALTER TABLE events DETACH PARTITION "{name}"')
    return name


def convert(
    conn: Connection,
    ahead: int,
    *,
    now: datetime | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> Conversion:
    """Rewrite ``events`` as a table partitioned by month, in the caller's transaction.

    Holds ``ACCESS EXCLUSIVE`` on the log from the first statement to the commit: appends
    and reads wait meanwhile (docs/operations.md gives the time per million events). Needs
    the schema's owner. Failure policy: any error rolls the whole conversion back.
    """
    if is_partitioned(conn):
        raise PartitionError("events is partitioned already")
    run = conn.exec_driver_sql
    run("LOCK TABLE events IN ACCESS EXCLUSIVE MODE")
    if run("SELECT to_regclass('event_keys')").scalar() is not None:
        raise PartitionError("a table event_keys exists already; it is the partitioned log's")
    grants = run(
        "SELECT CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(a.grantee)) "
        "END, a.privilege_type FROM pg_class c, aclexplode(c.relacl) a "
        "WHERE c.oid = to_regclass('events') AND a.grantee <> c.relowner"
    ).all()
    sequence = run("SELECT pg_get_serial_sequence('events', 'position')").scalar()
    if sequence is None:
        raise PartitionError("events.position has no sequence of its own: not smsrecon's log")
    # Only finite times: a hand-written 'infinity' goes to DEFAULT like any other outlier.
    first, top = run(
        "SELECT min(recorded_at) FILTER (WHERE isfinite(recorded_at)), max(position) FROM events"
    ).one()
    total = int(run("SELECT count(*) FROM events").scalar() or 0)

    run(f"ALTER SEQUENCE {sequence} OWNED BY NONE")
    run("ALTER TABLE events RENAME TO events_unpartitioned")
    run(
        f"CREATE TABLE events (position bigint NOT NULL DEFAULT nextval('{sequence}'::regclass), "
        "type varchar(64) NOT NULL, message_id varchar(128), carrier varchar(64), "
        "carrier_message_id varchar(128), occurred_at timestamptz NOT NULL, "
        "recorded_at timestamptz NOT NULL, source varchar(128) NOT NULL, payload jsonb NOT NULL, "
        "dedup_key varchar(128) NOT NULL) PARTITION BY RANGE (recorded_at)"
    )
    made = [run("SELECT smsrecon_event_partition(NULL)").scalar()]
    current = this_month(now)
    start = current
    if first is not None:
        oldest = add_months(current, -MAX_HISTORY_MONTHS)
        start = max(oldest, min(current, this_month(first)))
    month = start
    while month <= add_months(current, ahead):
        made.append(run("SELECT smsrecon_event_partition(%(m)s)", {"m": month}).scalar())
        month = add_months(month, 1)
    # Rows later than the partitions made go to DEFAULT.

    columns = ", ".join(COLUMNS)
    done = 0
    upto = int(top or 0)
    low = 0
    while low < upto:
        high = low + COPY_BATCH
        copied = run(
            f"INSERT INTO events ({columns}) SELECT {columns} FROM events_unpartitioned "
            "WHERE position > %(low)s AND position <= %(high)s",
            {"low": low, "high": high},
        ).rowcount
        done += copied
        if on_progress is not None and copied:
            on_progress(copied)
        low = high
    run(
        "CREATE TABLE event_keys (dedup_key varchar(128) NOT NULL, position bigint NOT NULL, "
        "CONSTRAINT pk_event_keys PRIMARY KEY (dedup_key), "
        "CONSTRAINT uq_event_keys_position UNIQUE (position))"
    )
    run("INSERT INTO event_keys (dedup_key, position) SELECT dedup_key, position FROM events")
    run("DROP TABLE events_unpartitioned")
    run(f"ALTER SEQUENCE {sequence} OWNED BY events.position")

    run("ALTER TABLE events ADD CONSTRAINT pk_events PRIMARY KEY (position, recorded_at)")
    run("CREATE INDEX ix_events_message_id ON events (message_id)")
    run("CREATE INDEX ix_events_carrier_message ON events (carrier, carrier_message_id)")
    run("CREATE INDEX ix_events_type_position ON events (type, position)")
    run("CREATE INDEX ix_events_dedup_key ON events (dedup_key)")
    for table in ("events", "event_keys"):
        for guarded in ("UPDATE", "DELETE", "TRUNCATE"):
            run(
                f"CREATE TRIGGER events_no_{guarded.lower()} BEFORE {guarded} ON {table} "
                "FOR EACH STATEMENT EXECUTE FUNCTION smsrecon_events_append_only()"
            )
    for guarded in ("UPDATE", "DELETE"):
        # Cloned to every partition, present and future, including one attached by hand.
        run(
            f"CREATE TRIGGER events_no_{guarded.lower()}_row BEFORE {guarded} ON events "
            "FOR EACH ROW EXECUTE FUNCTION smsrecon_events_append_only()"
        )
    run(
        "CREATE TRIGGER events_key_once BEFORE INSERT ON events "
        "FOR EACH ROW EXECUTE FUNCTION smsrecon_events_key_once()"
    )
    for grantee, privilege in grants:
        run(f"GRANT {privilege} ON events TO {grantee}")
    if done != total:
        raise PartitionError(f"copied {done} of {total} events; nothing was changed")
    return Conversion(done, [name for name in made if name])
