"""The event log is immutable for every role and every statement.

SQLite: ``REPLACE INTO`` / ``INSERT OR REPLACE`` deletes the stored row without firing a
DELETE trigger (unless the connection turned ``recursive_triggers`` on), so it is refused by
an insert trigger instead: proved on a raw sqlite3 connection that set no pragma.
PostgreSQL: the owner could drop or disable the triggers, so the app runs as a role that
``smsrecon db grant`` gave only what it needs, and that role cannot alter, disable the
triggers of, drop, truncate, update or delete ``events``.
Downgrading below the event log refuses while it holds events.
"""

from __future__ import annotations

import shutil
import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, ProgrammingError

from pipeline.config import Settings
from pipeline.db import schema
from pipeline.db.engine import Database
from pipeline.eventlog import NewEvent, append
from pipeline.eventlog.model import utc_now
from pipeline.ingest import quarantine
from pipeline.ingest.adapters.base import RawRequest
from pipeline.projector.runner import run_project
from tests.ingest.server_fixtures import event_count, stored_events
from tests.pg_roles import as_role, run_grant, throwaway_role


def _accepted(i: int) -> NewEvent:
    return NewEvent(
        type="message.accepted",
        message_id=f"m{i}",
        occurred_at=utc_now(),
        source="test",
        payload={"partner": "default", "phone": "+79161234567", "channel": "sms", "free": False},
        dedup_key=f"accepted:m{i}",
    )


# --- SQLite: no statement replaces a stored event ------------------------------------------


@pytest.fixture
def sqlite_path(sqlite_template: Path, tmp_path: Path) -> Path:
    path = tmp_path / "log.db"
    shutil.copyfile(sqlite_template, path)
    return path


_COLUMNS = (
    "position, type, message_id, carrier, carrier_message_id, occurred_at, recorded_at, "
    "source, payload, dedup_key"
)


def _forged(position: int | None, dedup_key: str) -> tuple[object, ...]:
    return (
        position,
        "message.accepted",
        "m1",
        None,
        None,
        "2026-01-01 00:00:00.000000",
        "2026-01-01 00:00:00.000000",
        "forger",
        '{"phone": "+70000000000"}',
        dedup_key,
    )


@pytest.mark.parametrize(
    ("statement", "position", "dedup_key"),
    [
        ("REPLACE INTO", 1, "accepted:m1"),  # the same event, both keys
        ("REPLACE INTO", None, "accepted:m1"),  # a new position, the stored dedup key
        ("REPLACE INTO", 1, "forged:new-key"),  # the stored position, a new dedup key
        ("INSERT OR REPLACE INTO", 1, "accepted:m1"),
        ("INSERT OR REPLACE INTO", None, "accepted:m1"),
        ("INSERT OR IGNORE INTO", 1, "forged:new-key"),
    ],
)
def test_sqlite_refuses_replace_over_a_stored_event_from_a_raw_connection(
    sqlite_path: Path, statement: str, position: int | None, dedup_key: str
) -> None:
    db = Database.from_url(f"sqlite:///{sqlite_path}")
    try:
        append(db, [_accepted(1)])
    finally:
        db.dispose()
    before = _raw_rows(sqlite_path)

    # A plain sqlite3 connection: no pragma set, recursive_triggers off (the default).
    conn = sqlite3.connect(sqlite_path, isolation_level=None)
    try:
        assert conn.execute("PRAGMA recursive_triggers").fetchone() == (0,)
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            conn.execute(
                f"{statement} events ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                _forged(position, dedup_key),
            )
    finally:
        conn.close()
    assert _raw_rows(sqlite_path) == before


def test_sqlite_raw_connection_may_still_append_a_new_event(sqlite_path: Path) -> None:
    conn = sqlite3.connect(sqlite_path, isolation_level=None)
    try:
        conn.execute(
            f"INSERT INTO events ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            _forged(None, "new:1"),
        )
    finally:
        conn.close()
    assert [row[-1] for row in _raw_rows(sqlite_path)] == ["new:1"]


def _raw_rows(path: Path) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(f"SELECT {_COLUMNS} FROM events ORDER BY position").fetchall()
    finally:
        conn.close()


def test_an_upsert_over_a_stored_event_is_refused(db: Database) -> None:
    append(db, [_accepted(1)])
    before = [tuple(row) for row in stored_events(db)]
    upsert = (
        "INSERT INTO events (type, message_id, occurred_at, recorded_at, source, payload, "
        "dedup_key) VALUES ('message.accepted', 'm1', :t, :t, 'forger', :p, 'accepted:m1') "
        "ON CONFLICT (dedup_key) DO UPDATE SET payload = excluded.payload"
    )
    payload = '{"phone": "+70000000000"}'
    with pytest.raises(DBAPIError, match="append-only"), db.write() as conn:
        conn.execute(text(upsert), {"t": utc_now(), "p": payload})
    assert [tuple(row) for row in stored_events(db)] == before


def test_the_app_still_counts_a_resent_event_as_a_duplicate(db: Database) -> None:
    first = append(db, [_accepted(1), _accepted(2)])
    again = append(db, [_accepted(2), _accepted(3), _accepted(1)])
    assert len(first.appended) == 2
    assert [e.message_id for _, e in again.appended] == ["m3"]
    assert sorted(e.message_id for e in again.duplicates) == ["m1", "m2"]
    assert event_count(db) == 3


# --- downgrade ---------------------------------------------------------------------------


def test_downgrading_below_the_event_log_refuses_while_it_holds_events(db: Database) -> None:
    append(db, [_accepted(1)])
    with pytest.raises(RuntimeError, match=r"refusing to downgrade below 0001_event_log.*1 events"):
        schema.downgrade(db.engine, "base")
    # Nothing was undone: the whole downgrade ran in one transaction.
    assert schema.current_revision(db.engine) == schema.head_revision()
    assert "deliveries" in inspect(db.engine).get_table_names()
    assert event_count(db) == 1


# --- PostgreSQL: the runtime role ---------------------------------------------------------


@pytest.fixture
def runtime_role(pg_db: Database, pg_admin_url: str) -> Iterator[str]:
    with throwaway_role(pg_db, pg_admin_url, "smsrecon_rt") as role:
        yield role


def _url(db: Database) -> str:
    return db.engine.url.render_as_string(hide_password=False)


def test_the_runtime_role_can_append_project_and_quarantine(
    pg_db: Database, runtime_role: str, tmp_path: Path
) -> None:
    result = run_grant(_url(pg_db), tmp_path, runtime_role)
    assert result.exit_code == 0, result.output
    assert "granted SELECT, INSERT on TABLE public.events" in result.output
    runtime = as_role(pg_db, runtime_role)
    try:
        with runtime.read() as conn:
            assert conn.execute(text("SELECT current_user")).scalar() == runtime_role
        assert len(append(runtime, [_accepted(1), _accepted(2)]).appended) == 2
        assert append(runtime, [_accepted(1)]).duplicates  # a resend is still a duplicate
        summary = run_project(runtime, Settings.model_validate({}))
        assert summary is not None and summary.events == 2
        entry = quarantine.save(
            runtime,
            RawRequest("POST", "/v1/messages", [], {}, b"{}"),
            received_at=utc_now(),
            source="http:/v1/messages",
            error="bad",
            detail=[],
        )
        assert entry > 0
    finally:
        runtime.dispose()
    with pg_db.read() as conn:
        states = conn.execute(text("SELECT count(*) FROM message_state")).scalar()
    assert states == 2


@pytest.mark.parametrize(
    "statement",
    [
        "ALTER TABLE events DISABLE TRIGGER events_no_update",
        "ALTER TABLE events DISABLE TRIGGER ALL",
        "ALTER TABLE events ADD COLUMN forged text",
        "ALTER TABLE events OWNER TO CURRENT_USER",
        "DROP TRIGGER events_no_delete ON events",
        "DROP TABLE events",
        "TRUNCATE events",
        "UPDATE events SET source = 'forged'",
        "DELETE FROM events",
        "CREATE TRIGGER forged BEFORE INSERT ON events "
        "FOR EACH ROW EXECUTE FUNCTION smsrecon_events_append_only()",
    ],
)
def test_the_runtime_role_cannot_alter_disable_drop_truncate_or_rewrite_events(
    pg_db: Database, runtime_role: str, tmp_path: Path, statement: str
) -> None:
    assert run_grant(_url(pg_db), tmp_path, runtime_role).exit_code == 0
    append(pg_db, [_accepted(1)])
    runtime = as_role(pg_db, runtime_role)
    try:
        with (
            pytest.raises(ProgrammingError, match=r"permission denied|must be owner"),
            runtime.write() as conn,
        ):
            conn.execute(text(statement))
    finally:
        runtime.dispose()
    assert event_count(pg_db) == 1
    with pg_db.read() as conn:
        triggers = conn.execute(
            text(
                "SELECT tgname, tgenabled FROM pg_trigger "
                "WHERE tgrelid = 'events'::regclass ORDER BY tgname"
            )
        ).all()
    assert [tuple(t) for t in triggers] == [
        ("events_no_delete", "O"),
        ("events_no_truncate", "O"),
        ("events_no_update", "O"),
    ]


def test_grant_replaces_earlier_privileges_with_exactly_the_runtime_set(
    pg_db: Database, runtime_role: str, tmp_path: Path
) -> None:
    with pg_db.write() as conn:
        conn.execute(text(f"GRANT ALL ON events TO {runtime_role}"))
    assert run_grant(_url(pg_db), tmp_path, runtime_role).exit_code == 0
    with pg_db.read() as conn:
        privileges = conn.execute(
            text(
                "SELECT privilege_type FROM information_schema.role_table_grants "
                "WHERE table_name = 'events' AND grantee = :role ORDER BY privilege_type"
            ),
            {"role": runtime_role},
        ).scalars()
        assert list(privileges) == ["INSERT", "SELECT"]


def test_grant_refuses_a_superuser_a_missing_role_and_sqlite(
    pg_db: Database, tmp_path: Path, sqlite_path: Path
) -> None:
    superuser = make_url(_url(pg_db)).username or "postgres"
    refused = run_grant(_url(pg_db), tmp_path, superuser)
    assert refused.exit_code == 2
    assert "superuser" in refused.output
    missing = run_grant(_url(pg_db), tmp_path, f"smsrecon_missing_{uuid.uuid4().hex[:8]}")
    assert missing.exit_code == 2
    assert "create it first" in missing.output
    on_sqlite = run_grant(f"sqlite:///{sqlite_path}", tmp_path, "anyone")
    assert on_sqlite.exit_code == 2
    assert "PostgreSQL" in on_sqlite.output
