"""Serving an aiohttp application: in-process for tests, in the foreground for commands."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from aiohttp import web


def base_url(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


@asynccontextmanager
async def running_app(
    app: web.Application, *, host: str = "127.0.0.1", port: int = 0, **runner_options: Any
) -> AsyncIterator[str]:
    """``async with running_app(app) as url:`` the app listening on ``url`` (port 0: free).

    Leaving the block stops accepting connections, lets requests in progress finish (up to
    the runner's shutdown_timeout) and runs the app's cleanup hooks.
    """
    runner = web.AppRunner(app, handle_signals=False, **runner_options)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        bound_host, bound_port = runner.addresses[0][:2]
        yield base_url(bound_host, bound_port)
    finally:
        await runner.cleanup()


async def serve_until_signalled(
    app: web.Application,
    *,
    host: str,
    port: int,
    on_ready: Callable[[str], None],
    **runner_options: Any,
) -> None:
    """Serve until SIGTERM or SIGINT, calling ``on_ready(url)`` once listening."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        async with running_app(app, host=host, port=port, **runner_options) as url:
            on_ready(url)
            await stop.wait()
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
