"""``smsrecon events archive`` on both engines, and ``events detach`` with the rebuild that
needs a detached month on PostgreSQL: the file holds every column exactly, its hash is the
one recorded, open months and existing files are refused."""

from __future__ import annotations

import hashlib
import json
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner, Result
from sqlalchemy import Text, cast, insert, select

from pipeline.cli.main import cli
from pipeline.db.engine import Database
from pipeline.db.partitions import add_months, month_name, this_month
from pipeline.db.tables import events
from pipeline.eventlog import NewEvent, append
from pipeline.eventlog.archive import ARCHIVED, archive_records, month_text
from pipeline.eventlog.model import utc_now

PAYLOADS = [
    {"partner": "default", "phone": "+79161234567", "channel": "sms", "free": False},
    {"partner": "p1", "phone": "+14155550100", "channel": "sms", "price": "0.03330000",
     "text": "Привет, мир ✓ \"quoted\" \\ back", "nested": {"a": [1, "2", None, True]}},
]  # fmt: skip


def month_of(n: int, day: int = 10, *, micro: int = 123456) -> datetime:
    """A time ``n`` months before this one (negative: ahead)."""
    month = add_months(this_month(), -n)
    return datetime(month.year, month.month, day, 13, 14, 15, micro, tzinfo=UTC)


def raw_event(
    db: Database, recorded_at: datetime, i: int, occurred_at: datetime | None = None
) -> None:
    """An event recorded at a time of our choosing (the app always records now)."""
    with db.write() as conn:
        conn.execute(
            insert(events).values(
                type="message.accepted",
                message_id=f"m{i}",
                occurred_at=occurred_at or recorded_at,
                recorded_at=recorded_at,
                source="test",
                payload=PAYLOADS[i % len(PAYLOADS)],
                dedup_key=f"accepted:m{i}",
            )
        )


def invoke(db: Database, tmp_path: Path, *args: str) -> Result:
    config = tmp_path / "config.yaml"
    if not config.exists():
        config.write_text("carriers: {}\n")
    url = db.engine.url.render_as_string(hide_password=False)
    return CliRunner().invoke(cli, ["--config", str(config), "--database-url", url, *args])


def stored(db: Database, before: datetime) -> list[dict[str, Any]]:
    with db.read() as conn:
        rows = conn.execute(
            select(
                events.c.position, events.c.type, events.c.message_id, events.c.carrier,
                events.c.carrier_message_id, events.c.occurred_at, events.c.recorded_at,
                events.c.source, cast(events.c.payload, Text).label("payload"),
                events.c.dedup_key, events.c.payload.label("decoded"),
            ).where(events.c.recorded_at < before).order_by(events.c.position)
        )  # fmt: skip
        return [dict(row._mapping) for row in rows]


def fill(db: Database) -> None:
    raw_event(db, month_of(3, day=1, micro=0), 1, occurred_at=datetime(999, 6, 1, tzinfo=UTC))
    raw_event(db, month_of(3, day=28), 2)
    raw_event(db, month_of(2), 3, occurred_at=datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC))
    raw_event(db, month_of(1), 4)
    append(db, [NewEvent("message.accepted", utc_now(), "test", PAYLOADS[0], message_id="m5")])


def test_archive_round_trips_every_column_and_records_the_file_hash(
    db: Database, tmp_path: Path
) -> None:
    fill(db)
    target = tmp_path / "out" / "closed.parquet"
    current = month_text(this_month())
    result = invoke(db, tmp_path, "events", "archive", "--before", current, "--to", str(target))
    assert result.exit_code == 0, result.output
    assert "archived 4 events" in result.output

    expected = stored(db, month_of(0, day=1, micro=0))
    assert len(expected) == 4
    table = pq.read_table(target)
    assert table.schema.metadata[b"smsrecon.before"] == current.encode()
    got = table.to_pylist()
    assert [r["position"] for r in got] == [r["position"] for r in expected]
    for row, want in zip(got, expected, strict=True):
        for name in ("type", "message_id", "carrier", "carrier_message_id", "source", "dedup_key"):
            assert row[name] == want[name]
        assert row["payload"] == want["payload"]  # the stored JSON text, byte for byte
        assert json.loads(row["payload"]) == want["decoded"]
        for name in ("occurred_at", "recorded_at"):
            assert row[name] == want[name]
            assert row[name].utcoffset().total_seconds() == 0
            assert row[f"{name}_stored"] is None
    assert got[0]["occurred_at"].year == 999 and got[2]["occurred_at"].year == 9999
    assert got[1]["recorded_at"].microsecond == 123456

    with db.read() as conn:
        [record] = archive_records(conn)
    assert record.sha256 == hashlib.sha256(target.read_bytes()).hexdigest()
    assert record.size == target.stat().st_size
    assert record.path == str(target.resolve()) and record.file == "closed.parquet"
    assert record.count == 4 and record.before == current and record.start is None
    assert [(m.month, m.count) for m in record.months] == [
        (month_text(add_months(this_month(), -n)), c) for n, c in ((3, 2), (2, 1), (1, 1))
    ]
    assert not Path(f"{target}.partial").exists()

    # The next archive starts where this one stopped: nothing is left before this month.
    again = invoke(
        db, tmp_path, "events", "archive", "--before", current, "--to", str(tmp_path / "b.parquet")
    )
    assert again.exit_code == 2
    assert "nothing to archive" in again.output


def test_an_open_month_is_refused(db: Database, tmp_path: Path) -> None:
    fill(db)
    target = tmp_path / "open.parquet"
    for month in (this_month(), add_months(this_month(), 1), add_months(this_month(), 24)):
        before = month_text(add_months(month, 1))
        result = invoke(db, tmp_path, "events", "archive", "--before", before, "--to", str(target))
        assert result.exit_code == 2
        assert "is not closed" in result.output
        assert month_text(this_month()) in result.output
    assert not target.exists()
    with db.read() as conn:
        assert archive_records(conn) == []


def test_an_existing_file_is_refused_without_force(db: Database, tmp_path: Path) -> None:
    fill(db)
    target = tmp_path / "kept.parquet"
    target.write_bytes(b"something precious")
    current = month_text(this_month())
    args = ["events", "archive", "--before", current, "--to", str(target)]
    refused = invoke(db, tmp_path, *args)
    assert refused.exit_code == 2
    assert "exists; pass --force" in refused.output
    assert target.read_bytes() == b"something precious"
    forced = invoke(db, tmp_path, *args, "--force")
    assert forced.exit_code == 0, forced.output
    assert pq.read_table(target).num_rows == 4


@pytest.mark.parametrize("bad", ["2026-13", "2026-1", "January", "0000-01"])
def test_a_month_that_is_not_one_is_refused(db: Database, tmp_path: Path, bad: str) -> None:
    result = invoke(db, tmp_path, "events", "archive", "--before", bad, "--to", str(tmp_path / "x"))
    assert result.exit_code == 2
    assert "YYYY-MM" in result.output


def test_sqlite_archives_as_an_export_only(sqlite_template: Path, tmp_path: Path) -> None:
    path = tmp_path / "log.db"
    shutil.copyfile(sqlite_template, path)
    db = Database.from_url(f"sqlite:///{path}")
    try:
        export_only(db, tmp_path)
    finally:
        db.dispose()


def export_only(db: Database, tmp_path: Path) -> None:
    fill(db)
    target = tmp_path / "a.parquet"
    current = month_text(this_month())
    assert (
        invoke(
            db, tmp_path, "events", "archive", "--before", current, "--to", str(target)
        ).exit_code
        == 0
    )
    old = month_text(add_months(this_month(), -3))
    result = invoke(db, tmp_path, "events", "detach", old, "--archive", str(target))
    assert result.exit_code == 2
    assert "SQLite has no partitions" in result.output and "export only" in result.output
    converted = invoke(db, tmp_path, "db", "partition-events", "--yes")
    assert converted.exit_code == 2
    assert "SQLite has no partitions" in converted.output
    listed = invoke(db, tmp_path, "db", "partitions")
    assert listed.exit_code == 0 and "events is one table" in listed.output
    assert len(stored(db, month_of(-1))) == 6  # every event is still in the log, and the record


# -- PostgreSQL: detaching an archived month, and the rebuild that needs it ----------------


def test_a_detached_month_is_named_with_its_file_by_replay(pg_db: Database, tmp_path: Path) -> None:
    fill(pg_db)
    with pg_db.write() as conn:
        pg_db.backend.partition_events(conn, 1)
    assert invoke(pg_db, tmp_path, "project").exit_code == 0
    target = tmp_path / "closed.parquet"
    current = month_text(this_month())
    made = invoke(pg_db, tmp_path, "events", "archive", "--before", current, "--to", str(target))
    assert made.exit_code == 0, made.output
    old = add_months(this_month(), -3)

    other = tmp_path / "other.parquet"
    other.write_bytes(b"not the archive")
    wrong = invoke(pg_db, tmp_path, "events", "detach", month_text(old), "--archive", str(other))
    assert wrong.exit_code == 2
    assert "no events.archived event records other.parquet" in wrong.output

    detached = invoke(
        pg_db, tmp_path, "events", "detach", month_text(old), "--archive", str(target)
    )
    assert detached.exit_code == 0, detached.output
    assert f"detached {month_name(old)}" in detached.output
    with pg_db.read() as conn:
        assert month_name(old) not in {p.name for p in pg_db.backend.event_partitions(conn)}

    for mode in ("--verify", "--rebuild"):
        replay = invoke(pg_db, tmp_path, "replay", mode)
        assert replay.exit_code == 2, replay.output
        assert f"{month_text(old)}: positions" in replay.output
        assert str(target.resolve()) in replay.output
        assert "ATTACH PARTITION" in replay.output

    verify = invoke(pg_db, tmp_path, "report", "verify", "1")
    assert verify.exit_code == 2 and str(target.resolve()) in verify.output

    # Attached again (as the docs say), the log is whole and replay runs.
    start, end = old, add_months(old, 1)
    with pg_db.write() as conn:
        conn.exec_driver_sql(
            f"ALTER TABLE events ATTACH PARTITION {month_name(old)} FOR VALUES "
            f"FROM ('{start.isoformat()} 00:00+00') TO ('{end.isoformat()} 00:00+00')"
        )
    assert invoke(pg_db, tmp_path, "replay", "--verify").exit_code == 0


def test_detach_refuses_a_month_that_changed_since_its_archive(
    pg_db: Database, tmp_path: Path
) -> None:
    fill(pg_db)
    with pg_db.write() as conn:
        pg_db.backend.partition_events(conn, 1)
    assert invoke(pg_db, tmp_path, "project").exit_code == 0
    target = tmp_path / "closed.parquet"
    current = month_text(this_month())
    assert (
        invoke(
            pg_db, tmp_path, "events", "archive", "--before", current, "--to", str(target)
        ).exit_code
        == 0
    )
    raw_event(pg_db, month_of(2, day=20), 40)  # a late row (a clock behind) after the archive
    month = month_text(add_months(this_month(), -2))
    result = invoke(pg_db, tmp_path, "events", "detach", month, "--archive", str(target))
    assert result.exit_code == 2
    assert "archive the month again" in result.output
    with pg_db.read() as conn:
        names = {p.name for p in pg_db.backend.event_partitions(conn)}
        assert ARCHIVED in {r.type for r in conn.execute(select(events.c.type))}
    assert month_name(add_months(this_month(), -2)) in names
