"""What the auth regression tests share: a server on a clock of the test's choosing, a
signed Kannel report, and raw bytes on a socket for headers no HTTP client would send."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from pipeline.config import Settings
from pipeline.db.engine import Database
from pipeline.ingest.server import build_ingest_app

#: 2026-01-15T10:30:00Z, the time every signed request of these tests is made at.
NOW = 1_768_473_000


class Clock:
    """A clock that moves only when told to: the replay window is tested without sleeping."""

    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@asynccontextmanager
async def server_at(
    settings: Settings, db: Database, clock: Callable[[], float] | None = None
) -> AsyncIterator[TestClient]:
    """The real ingest app on 127.0.0.1 (a free port), with its hmac clock injected
    (default: a clock stopped at NOW)."""
    app = build_ingest_app(settings, db, clock=clock or Clock())
    async with TestClient(TestServer(app, host="127.0.0.1", port=0)) as client:
        yield client


def kannel_report(message_id: str, stat: str = "DELIVRD") -> list[tuple[str, str]]:
    """A Kannel dlr-url callback's query (type 1), as decoded name/value pairs."""
    answer = (
        "id:3e8f2b1c sub:001 dlvrd:001 submit date:2401151030 done date:2401151031 "
        f"stat:{stat} err:000 text:Hello"
    )
    return [
        ("message_id", message_id),
        ("type", "1"),
        ("smsc", "smpp_mts"),
        ("smsc_id", "3e8f2b1c"),
        ("ts", "1705314662"),
        ("to", "+79161234567"),
        ("from", "BeautySalon"),
        ("answer", answer),
    ]


def hmac_carriers(*names: str, secret_env: str, **auth: Any) -> dict[str, Any]:
    return {
        name: {"format": "kannel", "auth": {"type": "hmac", "secret_env": secret_env, **auth}}
        for name in names
    }


async def raw_request(client: TestClient, head: bytes) -> int:
    """Send ``head`` (a request line and headers, bytes as given) and return the status."""
    assert client.server.port is not None
    reader, writer = await asyncio.open_connection("127.0.0.1", client.server.port)
    try:
        writer.write(head + b"\r\n")
        await writer.drain()
        status_line = await reader.readline()
    finally:
        writer.close()
        await writer.wait_closed()
    return int(status_line.split()[1])
