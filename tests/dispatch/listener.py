"""A real HTTP listener on 127.0.0.1 that notes every connection and every request.

Tests point messages (or redirects) at it to prove that the dispatcher never reached it: a
connection counts as well as a request, so even a TLS handshake that never became an HTTP
request is seen. A test may also give it a handler, to answer as Altegio's stand-in would
(a redirect, a held request).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from aiohttp import web
from aiohttp.web_request import BaseRequest
from aiohttp.web_server import Server

from pipeline.serving import base_url


@dataclass(frozen=True)
class Seen:
    """One request as it arrived."""

    method: str
    path_qs: str
    authorization: str | None
    body: bytes


Handler = Callable[[BaseRequest, "Listener"], Awaitable[web.StreamResponse]]


async def acknowledge(request: BaseRequest, listener: Listener) -> web.StreamResponse:
    """What a careless server answers: 200, so a request that leaked would look delivered."""
    return web.json_response({"success": True, "data": None, "meta": []})


@dataclass
class Listener:
    """What reached the listener; ``url`` is its base (``http://127.0.0.1:PORT``)."""

    handler: Handler = acknowledge
    url: str = ""
    connections: int = 0
    requests: list[Seen] = field(default_factory=list)
    #: Set whenever a request has arrived (before the handler answers it).
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    async def _handle(self, request: BaseRequest) -> web.StreamResponse:
        body = await request.read()
        self.requests.append(
            Seen(request.method, request.path_qs, request.headers.get("Authorization"), body)
        )
        self.arrived.set()
        return await self.handler(request, self)


class _CountingServer(Server):
    """aiohttp's low-level server, noting each accepted connection before any HTTP."""

    def __init__(self, listener: Listener) -> None:
        super().__init__(listener._handle)
        self._listener = listener

    def connection_made(self, handler, transport) -> None:  # type: ignore[no-untyped-def]
        self._listener.connections += 1
        super().connection_made(handler, transport)


@asynccontextmanager
async def listening(handler: Handler = acknowledge) -> AsyncIterator[Listener]:
    """``async with listening() as trap:`` a listener on a free port of 127.0.0.1."""
    listener = Listener(handler=handler)
    runner = web.ServerRunner(_CountingServer(listener), handle_signals=False, shutdown_timeout=2.0)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        host, port = runner.addresses[0][:2]
        listener.url = base_url(host, port)
        yield listener
    finally:
        await runner.cleanup()
