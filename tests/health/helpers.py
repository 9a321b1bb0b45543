"""Shared pieces of the health tests: settings, a live app, files made read-only."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient

from pipeline.config import Settings
from pipeline.db.engine import Database
from pipeline.dispatch.tables import deliveries
from pipeline.eventlog.model import utc_now


def health_settings(**health: Any) -> Settings:
    # A short lock wait keeps the locked cases quick; the cache is long enough that two
    # requests in one test see one answer unless the test says otherwise.
    return Settings.model_validate({"health": {"probe_timeout": 0.2, **health}})


async def get_health(client: TestClient) -> tuple[int, dict[str, Any]]:
    response = await client.get("/healthz")
    return response.status, await response.json()


def reason_codes(body: dict[str, Any]) -> list[str]:
    return [reason["code"] for reason in body["reasons"]]


@contextmanager
def read_only(path: Path) -> Iterator[None]:
    """``path`` (a file or a directory) made read-only for this process, then restored.

    chmod alone does not stop root, and these tests may run as root: then the file is also
    made immutable (``chattr +i``), which stops every writer, root included.
    """
    mode = path.stat().st_mode
    os.chmod(path, 0o555 if path.is_dir() else 0o444)
    immutable = os.geteuid() == 0
    if immutable:
        subprocess.run(["chattr", "+i", str(path)], check=True)
    try:
        yield
    finally:
        if immutable:
            subprocess.run(["chattr", "-i", str(path)], check=True)
        os.chmod(path, mode)


def waiting_delivery(db: Database, message_id: str, since: datetime) -> None:
    """A delivery row claimed at ``since`` and not acknowledged yet."""
    now = utc_now()
    with db.write() as conn:
        conn.execute(
            deliveries.insert().values(
                message_id=message_id,
                state="pending",
                attempts=1,
                failures=1,
                first_pending_at=since,
                next_attempt_at=now + timedelta(minutes=5),
                updated_at=now,
            )
        )
