"""``/healthz`` against a real PostgreSQL standby: 503, database_in_recovery.

A throwaway primary is started from the installed binaries, migrated, copied with
``pg_basebackup -R`` and the copy started as a hot standby: the health check talks to a
server that really is in recovery.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager

from pipeline.db import schema
from pipeline.db.engine import Database, make_engine
from tests.health.helpers import get_health, health_settings, reason_codes
from tests.ingest.server_fixtures import live_server
from tests.pg_server import free_port, start_throwaway


@contextmanager
def standby_url() -> Iterator[str]:
    primary = start_throwaway()
    try:
        engine = make_engine(primary.url)
        schema.upgrade(engine)
        with engine.connect() as conn:
            # The throwaway server runs without full-page writes, which an online base
            # backup needs (the standby would refuse to start from it).
            conn = conn.execution_options(isolation_level="AUTOCOMMIT")
            conn.exec_driver_sql("ALTER SYSTEM SET full_page_writes = on")
            conn.exec_driver_sql("SELECT pg_reload_conf()")
        engine.dispose()
        data, port = primary.root / "standby", free_port()
        subprocess.run(
            primary._cmd(
                str(primary.bindir / "pg_basebackup"), "-h", "127.0.0.1",
                "-p", str(primary.port), "-U", "postgres", "-D", str(data),
                "-R", "-X", "stream", "--no-sync",
            ),
            check=True, capture_output=True,
        )  # fmt: skip
        options = (
            f"-p {port} -k {primary.root} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c max_connections=300"
        )
        started = subprocess.run(
            primary._cmd(
                str(primary.bindir / "pg_ctl"), "-D", str(data), "-o", options,
                "-l", str(primary.root / "standby.log"), "-w", "-t", "60", "start",
            ),
            capture_output=True,
        )  # fmt: skip
        log = primary.root / "standby.log"
        if started.returncode != 0:
            raise AssertionError(f"the standby did not start: {log.read_text()[-2000:]}")
        try:
            yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
        finally:
            subprocess.run(
                primary._cmd(
                    str(primary.bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"
                ),
                capture_output=True,
            )
    finally:
        primary.stop()


async def test_a_standby_in_recovery_answers_503() -> None:
    with standby_url() as url:
        db = Database.from_url(url)
        try:
            async with live_server(health_settings(), db) as client:
                status, body = await get_health(client)
        finally:
            db.dispose()
    assert status == 503
    assert reason_codes(body) == ["database_in_recovery"]
