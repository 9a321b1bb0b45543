"""``/healthz`` on a live server: 200 when well, 503 with the right reason in each case.

Every case runs on both engines where the engine has it. What is simulated, and how:
- SQLite locked: a second connection really holds the write lock (BEGIN IMMEDIATE).
- SQLite read-only: the file (or its directory) really is read-only (chmod, and chattr +i
  when the tests run as root).
- PostgreSQL read-only: a throwaway database really set default_transaction_read_only, and
  a session started read-only through its connect options.
- PostgreSQL locked: a second session really holds a lock on events that appends wait for.
- Disk full: the threshold health.min_free_bytes set above the disk's real free space (no
  disk is filled). PostgreSQL's server disk is not visible to the client: see
  test_postgresql_does_not_judge_free_space.
- PostgreSQL in recovery: no standby is started here; the rule is tested in
  test_decide.py and the recovery query runs (answering false) in every PostgreSQL case.
"""

from __future__ import annotations

import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from pipeline.db.engine import Database
from pipeline.dispatch.circuits import upsert_open
from pipeline.eventlog.append import append
from pipeline.eventlog.model import utc_now
from pipeline.health.decide import Thresholds, health_reasons
from pipeline.health.measure import measure
from pipeline.projector.runner import run_project
from tests.health.helpers import (
    get_health,
    health_settings,
    read_only,
    reason_codes,
    waiting_delivery,
)
from tests.ingest.server_fixtures import live_server, stored_events
from tests.projector.events import accepted


def sqlite_file(db: Database) -> Path:
    return Path(str(db.engine.url.database))


async def test_a_well_pipeline_answers_200_with_no_reasons(db: Database) -> None:
    async with live_server(health_settings(), db) as client:
        status, body = await get_health(client)
    assert status == 200
    assert body["status"] == "ok" and body["reasons"] == []
    assert body["checked_at"].endswith("Z")


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_sqlite_locked_by_another_connection(db: Database) -> None:
    holder = sqlite3.connect(sqlite_file(db), isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        async with live_server(health_settings(), db) as client:
            status, body = await get_health(client)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert status == 503
    assert reason_codes(body) == ["database_locked"]
    assert "SQLITE_BUSY" in body["reasons"][0]["engine_said"]


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_sqlite_read_only_file(db: Database) -> None:
    async with live_server(health_settings(), db) as client:
        with read_only(sqlite_file(db)):
            status, body = await get_health(client)
    assert status == 503
    assert reason_codes(body) == ["database_read_only"]


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_sqlite_read_only_directory(db: Database) -> None:
    # With no connection open there is no WAL file; one cannot be created in the directory.
    db.dispose()
    async with live_server(health_settings(), db) as client:
        with read_only(sqlite_file(db).parent):
            status, body = await get_health(client)
        db.dispose()
    assert status == 503
    assert reason_codes(body) == ["database_read_only"]


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
async def test_postgresql_database_set_read_only(db: Database, db_url: str) -> None:
    name = make_url(db_url).database
    admin = create_engine(db_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"ALTER DATABASE {name} SET default_transaction_read_only = on"))
    admin.dispose()
    db.dispose()  # new sessions take the database's new default
    async with live_server(health_settings(), db) as client:
        status, body = await get_health(client)
    assert status == 503
    assert reason_codes(body) == ["database_read_only"]


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
async def test_postgresql_session_started_read_only(db_url: str) -> None:
    url = make_url(db_url).update_query_dict({"options": "-c default_transaction_read_only=on"})
    read_only_db = Database.from_url(url.render_as_string(hide_password=False))
    try:
        async with live_server(health_settings(), read_only_db) as client:
            status, body = await get_health(client)
    finally:
        read_only_db.dispose()
    assert status == 503
    assert reason_codes(body) == ["database_read_only"]


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
async def test_postgresql_events_locked_by_another_session(db: Database) -> None:
    with db.engine.connect() as holder:
        holder.execute(text("BEGIN"))
        holder.execute(text("LOCK TABLE events IN SHARE MODE"))
        async with live_server(health_settings(), db) as client:
            status, body = await get_health(client)
        holder.execute(text("ROLLBACK"))
    assert status == 503
    assert reason_codes(body) == ["database_locked"]
    assert "55P03" in body["reasons"][0]["engine_said"]


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_sqlite_disk_full_by_threshold(db: Database) -> None:
    # Simulated: the threshold is set above any real free space; no disk is filled.
    async with live_server(health_settings(min_free_bytes=2**62), db) as client:
        status, body = await get_health(client)
    assert status == 503
    assert reason_codes(body) == ["disk_full"]
    assert body["reasons"][0]["free_bytes"] < 2**62


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
async def test_postgresql_does_not_judge_free_space(db: Database) -> None:
    # The server's disk is not visible from a client: the threshold does not apply, and a
    # full disk shows only when the probe's write fails with SQLSTATE 53100.
    async with live_server(health_settings(min_free_bytes=2**62), db) as client:
        status, _body = await get_health(client)
    assert status == 200


async def test_projector_lag_in_events(db: Database) -> None:
    append(db, [accepted(f"lag{n}") for n in range(3)])
    settings = health_settings(max_lag_events=2, cache_seconds=0)
    async with live_server(settings, db) as client:
        status, body = await get_health(client)
        assert status == 503
        assert reason_codes(body) == ["projector_lag_events"]
        assert body["reasons"][0]["lag_events"] == 3
        run_project(db, settings)
        status, body = await get_health(client)
    assert (status, body["reasons"]) == (200, [])


async def test_projector_lag_in_seconds_is_the_oldest_unprojected_event(db: Database) -> None:
    append(db, [accepted("old")])
    [stored] = stored_events(db)
    later = stored.recorded_at + timedelta(minutes=10)
    found = measure(db, probe_timeout=0.2, clock=lambda: later)
    limits = Thresholds(
        max_lag_events=100, max_lag_seconds=300, max_dispatch_age=3600, min_free_bytes=0
    )
    [reason] = health_reasons(found, limits)
    assert reason.code == "projector_lag_seconds"
    assert reason.detail["lag_seconds"] == 600.0


async def test_dispatch_backlog_older_than_max_dispatch_age(db: Database) -> None:
    waiting_delivery(db, "slow", since=utc_now() - timedelta(hours=2))
    waiting_delivery(db, "recent", since=utc_now() - timedelta(minutes=1))
    async with live_server(health_settings(max_dispatch_age=3600), db) as client:
        status, body = await get_health(client)
    assert status == 503
    assert reason_codes(body) == ["dispatch_backlog"]
    assert body["reasons"][0]["oldest_seconds"] >= 7200


async def test_an_open_circuit_names_its_partner(db: Database) -> None:
    now = utc_now()
    with db.write() as conn:
        upsert_open(
            conn,
            partner="acme",
            reason="partner_token_invalid",
            probe_at=now + timedelta(minutes=10),
            status=401,
            error="401 Unauthorized",
            now=now,
        )
    async with live_server(health_settings(), db) as client:
        status, body = await get_health(client)
    assert status == 503
    assert reason_codes(body) == ["circuit_open"]
    assert body["reasons"][0]["partner"] == "acme"
    assert body["reasons"][0]["circuit_reason"] == "partner_token_invalid"


async def test_an_answer_is_reused_within_cache_seconds(db: Database) -> None:
    async with live_server(health_settings(cache_seconds=3600), db) as client:
        _, first = await get_health(client)
        append(db, [accepted("after")])
        _, second = await get_health(client)
    assert second["checked_at"] == first["checked_at"]
