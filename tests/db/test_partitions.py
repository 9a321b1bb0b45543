"""The log partitioned by month on PostgreSQL keeps every promise of the unpartitioned one:
recorded once across all months, never changed through the parent or any partition, never
skipped by a reader; no time, however hostile, fails an append; conversion loses nothing."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import insert, text
from sqlalchemy.exc import DBAPIError, IntegrityError

from jobs.partitions import run_partitions_job
from pipeline.cli.main import cli
from pipeline.config import Settings
from pipeline.db.engine import Database
from pipeline.db.partitions import PartitionError, add_months, month_name, this_month
from pipeline.db.tables import events
from pipeline.eventlog import NewEvent, append, read
from pipeline.eventlog.model import utc_now
from tests.pg_roles import as_role, run_grant, throwaway_role

AHEAD = 2


def accepted(i: int, *, occurred: datetime | None = None, key: str | None = None) -> NewEvent:
    return NewEvent(
        "message.accepted",
        occurred or utc_now(),
        "test",
        {"partner": "default", "phone": "+79161234567", "channel": "sms", "free": False},
        message_id=f"m{i}",
        dedup_key=key or f"accepted:m{i}",
    )


def raw_insert(db: Database, recorded_at: datetime, key: str, position: int | None = None) -> None:
    """An event written by raw SQL with a recorded time of our choosing (the app always
    records now), as the owner."""
    values: dict[str, Any] = {
        "type": "message.accepted",
        "message_id": key,
        "occurred_at": recorded_at,
        "recorded_at": recorded_at,
        "source": "raw",
        "payload": {"partner": "default", "phone": "+79161234567", "channel": "sms"},
        "dedup_key": key,
    }
    if position is not None:
        values["position"] = position
    with db.write() as conn:
        conn.execute(insert(events).values(**values))


def convert(db: Database) -> list[str]:
    with db.write() as conn:
        return db.backend.partition_events(conn, AHEAD).partitions


def rows_of(db: Database) -> list[tuple[Any, ...]]:
    with db.read() as conn:
        return [
            tuple(r)
            for r in conn.execute(
                text(
                    "SELECT position, type, message_id, occurred_at, recorded_at, source, "
                    "payload, dedup_key FROM events ORDER BY position"
                )
            )
        ]


def partition_of(db: Database, key: str) -> str:
    with db.read() as conn:
        return str(
            conn.execute(
                text("SELECT tableoid::regclass::text FROM events WHERE dedup_key = :k"), {"k": key}
            ).scalar_one()
        )


def months_ago(n: int) -> datetime:
    month = add_months(this_month(), -n)
    return datetime(month.year, month.month, 10, 12, 0, tzinfo=UTC)


# -- conversion ---------------------------------------------------------------------------


def test_conversion_keeps_every_event_position_and_the_sequence(pg_db: Database) -> None:
    raw_insert(pg_db, months_ago(14), "old:1")
    raw_insert(pg_db, months_ago(3), "old:2")
    append(pg_db, [accepted(1), accepted(2)])
    before = rows_of(pg_db)

    made = convert(pg_db)

    assert rows_of(pg_db) == before
    current = this_month()
    expected = {month_name(add_months(current, -n)) for n in range(-AHEAD, 15)}
    assert expected | {"events_default"} == set(made)
    assert partition_of(pg_db, "old:1") == month_name(add_months(current, -14))
    assert partition_of(pg_db, "accepted:m1") == month_name(current)
    again = append(pg_db, [accepted(2), accepted(3)])
    assert [e.message_id for e in again.duplicates] == ["m2"]
    assert again.positions[0] > before[-1][0]  # the sequence carried on
    with pytest.raises(PartitionError, match="partitioned already"), pg_db.write() as conn:
        pg_db.backend.partition_events(conn, AHEAD)


def test_the_cli_converts_lists_and_creates_ahead(pg_db: Database, tmp_path: Path) -> None:
    url = pg_db.engine.url.render_as_string(hide_password=False)
    config = tmp_path / "config.yaml"
    config.write_text(f"growth: {{partitions_ahead: {AHEAD}}}\n")
    base = ["--config", str(config), "--database-url", url, "db"]
    runner = CliRunner()
    listed = runner.invoke(cli, [*base, "partitions"])
    assert listed.exit_code == 0, listed.output
    assert "events is one table" in listed.output
    converted = runner.invoke(cli, [*base, "partition-events", "--yes"])
    assert converted.exit_code == 0, converted.output
    assert "events is partitioned by month" in converted.output
    config.write_text(f"growth: {{partitions_ahead: {AHEAD + 2}}}\n")
    upgraded = runner.invoke(cli, [*base, "upgrade"])
    assert upgraded.exit_code == 0, upgraded.output
    assert month_name(add_months(this_month(), AHEAD + 2)) in upgraded.output
    listed = runner.invoke(cli, [*base, "partitions"])
    assert "DEFAULT" in listed.output and month_name(this_month()) in listed.output


# -- recorded once, across all months -------------------------------------------------------


def test_a_key_is_stored_once_across_months_and_positions_stay_unique(pg_db: Database) -> None:
    convert(pg_db)
    raw_insert(pg_db, months_ago(0), "k:1")
    raw_insert(pg_db, months_ago(-1), "k:1")  # next month: another partition, same key
    raw_insert(pg_db, datetime(999, 1, 1, tzinfo=UTC), "k:1")  # the DEFAULT partition
    with pg_db.read() as conn:
        count = conn.execute(text("SELECT count(*) FROM events WHERE dedup_key = 'k:1'"))
        assert count.scalar() == 1
    stored = rows_of(pg_db)[0][0]
    with pytest.raises(IntegrityError, match="uq_event_keys_position"):
        raw_insert(pg_db, months_ago(-1), "k:2", position=stored)
    assert append(pg_db, [accepted(1, key="k:1")]).duplicates


def test_no_time_fails_an_append(pg_db: Database) -> None:
    convert(pg_db)
    hostile = [
        accepted(1, occurred=datetime(999, 6, 1, tzinfo=UTC)),
        accepted(2, occurred=datetime(9999, 12, 31, 23, 59, tzinfo=UTC)),
        accepted(3, occurred=datetime(1, 1, 1, tzinfo=UTC)),
    ]
    assert len(append(pg_db, hostile).appended) == 3
    # Times of our own clock gone wrong (or written by hand) land in DEFAULT.
    raw_insert(pg_db, datetime(999, 1, 1, tzinfo=UTC), "year-999")
    raw_insert(pg_db, datetime(9999, 12, 1, tzinfo=UTC), "year-9999")
    raw_insert(pg_db, utc_now() + timedelta(days=3650), "far-future")
    for key in ("year-999", "year-9999", "far-future"):
        assert partition_of(pg_db, key) == "events_default"
    assert partition_of(pg_db, "accepted:m1") == month_name(this_month())
    assert len(read(pg_db).events) == 6


def test_rows_in_default_leave_their_month_to_it_and_the_rest_are_made(
    pg_db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    convert(pg_db)
    blocked = add_months(this_month(), AHEAD + 2)
    raw_insert(pg_db, datetime(blocked.year, blocked.month, 5, tzinfo=UTC), "early")
    with pg_db.write() as conn:
        made = pg_db.backend.create_event_partitions(conn, AHEAD + 3)
    assert made == [month_name(add_months(this_month(), AHEAD + n)) for n in (1, 3)]
    assert partition_of(pg_db, "early") == "events_default"
    assert f"events of {blocked.isoformat()[:7]} are in the DEFAULT partition" in caplog.text


# -- never changed ------------------------------------------------------------------------


STATEMENTS = [
    "UPDATE events SET source = 'forged'",
    "DELETE FROM events",
    "TRUNCATE events",
    "UPDATE {month} SET source = 'forged'",
    "DELETE FROM {month}",
    "TRUNCATE {month}",
    "DELETE FROM events_default",
    "TRUNCATE events_default",
    "UPDATE event_keys SET dedup_key = 'forged'",
    "DELETE FROM event_keys",
    "TRUNCATE event_keys",
]


@pytest.mark.parametrize("statement", STATEMENTS)
def test_no_statement_changes_the_partitioned_log_even_as_its_owner(
    pg_db: Database, statement: str
) -> None:
    convert(pg_db)
    append(pg_db, [accepted(1)])
    raw_insert(pg_db, datetime(999, 1, 1, tzinfo=UTC), "default:1")
    before = rows_of(pg_db)
    sql = statement.format(month=month_name(this_month()))
    with pytest.raises(DBAPIError, match="append-only"), pg_db.write() as conn:
        conn.execute(text(sql))
    assert rows_of(pg_db) == before


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE {month} SET source = 'forged'",
        "DELETE FROM {month}",
        "TRUNCATE {month}",
        "SELECT * FROM {month}",
        "INSERT INTO event_keys VALUES ('suppressed', 999999)",
        "SELECT * FROM event_keys",
        "ALTER TABLE events DETACH PARTITION {month}",
        "ALTER TABLE {month} DISABLE TRIGGER ALL",
        "DROP TABLE {month}",
        "CREATE TABLE forged PARTITION OF events FOR VALUES FROM ('3000-01-01') TO ('3000-02-01')",
        "SELECT smsrecon_event_partition('3000-01-01')",
    ],
)
def test_the_runtime_role_has_no_right_on_partitions_or_keys(
    pg_db: Database, runtime_role: str, tmp_path: Path, statement: str
) -> None:
    convert(pg_db)
    append(pg_db, [accepted(1)])
    grant(pg_db, tmp_path, runtime_role)
    before = rows_of(pg_db)
    runtime = as_role(pg_db, runtime_role)
    try:
        sql = statement.format(month=month_name(this_month()))
        with pytest.raises(DBAPIError), runtime.write() as conn:
            conn.execute(text(sql))
    finally:
        runtime.dispose()
    assert rows_of(pg_db) == before


def test_the_runtime_role_appends_and_creates_partitions_ahead(
    pg_db: Database, runtime_role: str, tmp_path: Path
) -> None:
    convert(pg_db)
    grant(pg_db, tmp_path, runtime_role)
    runtime = as_role(pg_db, runtime_role)
    try:
        assert len(append(runtime, [accepted(1), accepted(2)]).appended) == 2
        assert append(runtime, [accepted(2)]).duplicates
        settings = Settings.model_validate({"growth": {"partitions_ahead": AHEAD + 2}})
        made = run_partitions_job(settings, runtime)
        assert made == [month_name(add_months(this_month(), AHEAD + n)) for n in (1, 2)]
        assert run_partitions_job(settings, runtime) == []
    finally:
        runtime.dispose()


# -- never skipped by a reader ------------------------------------------------------------

WRITERS = 6
PER_WRITER = 1000
SHARED_KEYS = 200


def test_a_reader_sees_every_position_once_in_order_under_concurrent_writers(
    pg_db: Database,
) -> None:
    """As tests/test_eventlog_concurrency.py, on the partitioned log, with every writer also
    racing the others to store the same keys (the key trigger must keep one of each)."""
    convert(pg_db)
    errors: list[BaseException] = []

    def writer(w: int) -> None:
        rng = random.Random(w)
        try:
            n = 0
            while n < PER_WRITER:
                size = min(rng.randint(1, 50), PER_WRITER - n)
                batch = [
                    NewEvent("carrier.status", utc_now(), f"writer-{w}", {"w": w, "n": n + i})
                    for i in range(size)
                ]
                batch.append(accepted(rng.randrange(SHARED_KEYS), key=f"shared:{n % SHARED_KEYS}"))
                append(pg_db, batch)
                n += size
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(WRITERS)]
    seen: list[int] = []
    after = 0

    def drain() -> int:
        nonlocal after
        batch = read(pg_db, after=after, limit=500)
        seen.extend(e.position for e in batch.events)
        after = batch.next_checkpoint
        return len(batch.events)

    for t in threads:
        t.start()
    while any(t.is_alive() for t in threads):
        if not drain():
            time.sleep(0.001)  # a polling reader, as the projector is; not a synchronisation
    for t in threads:
        t.join()
    assert not errors, errors
    while drain():
        pass
    with pg_db.read() as conn:
        stored = [p for (p,) in conn.execute(text("SELECT position FROM events ORDER BY 1"))]
        keys = conn.execute(text("SELECT count(*) FROM event_keys")).scalar()
        shared = conn.execute(
            text("SELECT count(*) FROM events WHERE dedup_key LIKE 'shared:%'")
        ).scalar()
    assert seen == stored
    assert len(stored) == keys == WRITERS * PER_WRITER + shared
    assert shared <= SHARED_KEYS


# -- the runtime role (as tests/hostile/test_immutability.py) --------------------------------


@pytest.fixture
def runtime_role(pg_db: Database, pg_admin_url: str) -> Iterator[str]:
    with throwaway_role(pg_db, pg_admin_url, "smsrecon_rt") as role:
        yield role


def grant(db: Database, tmp_path: Path, role: str) -> None:
    url = db.engine.url.render_as_string(hide_password=False)
    result = run_grant(url, tmp_path, role)
    assert result.exit_code == 0, result.output
    assert "granted EXECUTE on FUNCTION" in result.output


def test_an_infinite_recorded_time_is_converted_into_default(pg_db: Database) -> None:
    with pg_db.write() as conn:
        conn.execute(
            text(
                "INSERT INTO events (type, occurred_at, recorded_at, source, payload, dedup_key) "
                "VALUES ('message.accepted', now(), 'infinity', 'raw', '{}', 'inf:1')"
            )
        )
    append(pg_db, [accepted(1)])
    convert(pg_db)
    assert partition_of(pg_db, "inf:1") == "events_default"
    assert partition_of(pg_db, "accepted:m1") == month_name(this_month())


def test_a_partitioned_log_backs_up_and_restores_with_its_guarantees(
    pg_db: Database, pg_admin_url: str, tmp_path: Path
) -> None:
    import subprocess
    import sys

    from sqlalchemy.engine import make_url

    from pipeline.db.pgdump import find_tool, libpq_url
    from tests.conftest import create_pg_database, drop_pg_database

    raw_insert(pg_db, months_ago(2), "old:1")
    append(pg_db, [accepted(1), accepted(2)])
    convert(pg_db)
    url = pg_db.engine.url.render_as_string(hide_password=False)
    target = tmp_path / "partitioned.backup"
    backup = subprocess.run(
        [sys.executable, "-m", "pipeline", "--database-url", url, "db", "backup", str(target)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert backup.returncode == 0, backup.stderr
    fresh = create_pg_database(pg_admin_url)
    restored = Database.from_url(fresh)
    try:
        restore = subprocess.run(
            [find_tool("pg_restore"), "-d", libpq_url(make_url(fresh)), str(target)],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert restore.returncode == 0, restore.stderr
        assert rows_of(restored) == rows_of(pg_db)
        assert partition_of(restored, "old:1") == month_name(add_months(this_month(), -2))
        again = append(restored, [accepted(2), accepted(3)])
        assert [e.message_id for e in again.duplicates] == ["m2"] and len(again.appended) == 1
        with pytest.raises(DBAPIError, match="append-only"), restored.write() as conn:
            conn.execute(text(f"DELETE FROM {month_name(this_month())}"))
    finally:
        restored.dispose()
        drop_pg_database(pg_admin_url, fresh)
