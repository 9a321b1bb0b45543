"""``/readyz``: 503 until the parts this process runs have started, and from shutdown on."""

from __future__ import annotations

from aiohttp.test_utils import TestClient, TestServer

from pipeline.db.engine import Database
from pipeline.health.routes import readiness_of
from pipeline.ingest.server import build_ingest_app
from tests.health.helpers import health_settings


async def test_ready_once_started_and_not_ready_from_shutdown_on(db: Database) -> None:
    app = build_ingest_app(health_settings(), db)
    async with TestClient(TestServer(app, host="127.0.0.1", port=0)) as client:
        response = await client.get("/readyz")
        assert (response.status, (await response.json())["reasons"]) == (200, [])
        # What the runner does on SIGTERM before it drains the requests in flight.
        await app.shutdown()
        response = await client.get("/readyz")
        body = await response.json()
    assert response.status == 503
    assert [r["code"] for r in body["reasons"]] == ["shutting_down"]


async def test_not_ready_while_a_part_has_not_started(db: Database) -> None:
    app = build_ingest_app(health_settings(), db)
    # As `smsrecon run` does: the scheduler is a part, started by its own startup hook.
    readiness_of(app).expect("scheduler")
    async with TestClient(TestServer(app, host="127.0.0.1", port=0)) as client:
        response = await client.get("/readyz")
        body = await response.json()
        assert response.status == 503
        assert body["reasons"] == [
            {"code": "starting", "message": "scheduler has not started yet", "part": "scheduler"}
        ]
        readiness_of(app).started("scheduler")
        assert (await client.get("/readyz")).status == 200


async def test_readiness_is_not_health(db: Database) -> None:
    # Unwell (a lag over the limit) yet ready: restarting would not help, routing away would.
    from pipeline.eventlog.append import append
    from tests.projector.events import accepted

    append(db, [accepted("a"), accepted("b")])
    app = build_ingest_app(health_settings(max_lag_events=1), db)
    async with TestClient(TestServer(app, host="127.0.0.1", port=0)) as client:
        assert (await client.get("/healthz")).status == 503
        assert (await client.get("/readyz")).status == 200
