"""Starting a sandbox: in-process for tests and the demo, or in the foreground for the CLI."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime

from pipeline import serving
from pipeline.sandbox.app import MaskedAccessLogger, build_sandbox_app
from pipeline.sandbox.config import SandboxConfig

#: How long shutdown waits for requests still being answered. Hangs end at shutdown, so
#: only a request in its latency sleep can still be running.
SHUTDOWN_TIMEOUT = 2.0


def runner_options() -> dict[str, object]:
    return {"access_log_class": MaskedAccessLogger, "shutdown_timeout": SHUTDOWN_TIMEOUT}


@asynccontextmanager
async def running_sandbox(
    config: SandboxConfig,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    clock: Callable[[], datetime] | None = None,
) -> AsyncIterator[str]:
    """``async with running_sandbox(config) as url:`` a sandbox listening on ``url``.

    ``url`` is the base (``http://127.0.0.1:54321``); the callback for token ``T`` is
    ``f"{url}/smsprovider/status/callback/{T}"``. Port 0 picks a free port. The server stops,
    hanging requests included, when the block ends. ``clock`` (aware UTC datetimes) is the
    sandbox's now, e.g. the dispatcher's injected clock, for the date form of ``Retry-After``.
    """
    app = build_sandbox_app(config, clock=clock)
    async with serving.running_app(app, host=host, port=port, **runner_options()) as url:
        yield url
