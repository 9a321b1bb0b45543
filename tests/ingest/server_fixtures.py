"""Helpers for the ingest server tests: settings, a live server on 127.0.0.1, DB queries."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import func, select

from pipeline.config import Settings
from pipeline.db.engine import Database
from pipeline.db.tables import events
from pipeline.ingest.server import build_ingest_app
from pipeline.ingest.tables import quarantine


def make_settings(carriers: dict[str, Any] | None = None, **ingest: Any) -> Settings:
    return Settings.model_validate({"carriers": carriers or {}, "ingest": ingest})


@asynccontextmanager
async def live_server(settings: Settings, db: Database) -> AsyncIterator[TestClient]:
    """The real app on a real socket (127.0.0.1, a free port), started and cleaned up."""
    app = build_ingest_app(settings, db)
    async with TestClient(TestServer(app, host="127.0.0.1", port=0)) as client:
        yield client


def stored_events(db: Database, event_type: str | None = None) -> list[Any]:
    stmt = select(events).order_by(events.c.position)
    if event_type:
        stmt = stmt.where(events.c.type == event_type)
    with db.read() as conn:
        return list(conn.execute(stmt))


def event_count(db: Database) -> int:
    with db.read() as conn:
        return int(conn.scalar(select(func.count()).select_from(events)) or 0)


def quarantine_rows(db: Database) -> list[Any]:
    with db.read() as conn:
        return list(conn.execute(select(quarantine).order_by(quarantine.c.id)))
