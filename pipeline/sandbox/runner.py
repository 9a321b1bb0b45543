"""Starting a sandbox: in-process for tests and the demo, or in the foreground for the CLI."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from aiohttp import web

from pipeline.sandbox.app import MaskedAccessLogger, build_sandbox_app
from pipeline.sandbox.config import SandboxConfig

#: How long shutdown waits for requests still being answered. Hangs end at shutdown, so
#: only a request in its latency sleep can still be running.
SHUTDOWN_TIMEOUT = 2.0


def _url(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


@asynccontextmanager
async def running_sandbox(
    config: SandboxConfig, *, host: str = "127.0.0.1", port: int = 0
) -> AsyncIterator[str]:
    """``async with running_sandbox(config) as url:`` a sandbox listening on ``url``.

    ``url`` is the base (``http://127.0.0.1:54321``); the callback for token ``T`` is
    ``f"{url}/smsprovider/status/callback/{T}"``. Port 0 picks a free port. The server stops,
    hanging requests included, when the block ends.
    """
    runner = web.AppRunner(
        build_sandbox_app(config),
        access_log_class=MaskedAccessLogger,
        shutdown_timeout=SHUTDOWN_TIMEOUT,
    )
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        bound_host, bound_port = runner.addresses[0][:2]
        yield _url(bound_host, bound_port)
    finally:
        await runner.cleanup()


async def serve_until_signalled(
    config: SandboxConfig, *, host: str, port: int, on_ready: Callable[[str], None]
) -> None:
    """Run a sandbox until SIGTERM or SIGINT, calling ``on_ready(url)`` once it listens."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        async with running_sandbox(config, host=host, port=port) as url:
            on_ready(url)
            await stop.wait()
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
