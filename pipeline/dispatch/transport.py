"""The HTTP edge: one pooled aiohttp session and one function that posts a body.

Everything about the wire is here (headers, limits, timeouts, reading error bodies), and it
returns the typed ``Outcome`` from ``outcome.py``, never raises for a network fault.
Redirects are not followed: a redirect could lead to a host that is not on the allow-list.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import aiohttp

from pipeline.config import DispatcherSettings
from pipeline.dispatch.model import Outcome
from pipeline.dispatch.outcome import classify_network_error, classify_response

ACCEPT = "application/vnd.api.v2+json"
CONTENT_TYPE = "application/json"
#: Error bodies are read up to this many bytes (they are quoted in one line anyway).
MAX_ERROR_BODY = 16_384


def make_session(settings: DispatcherSettings) -> aiohttp.ClientSession:
    """The one pooled session: bounded connections overall and per host, a total timeout."""
    connector = aiohttp.TCPConnector(
        limit=settings.concurrency, limit_per_host=settings.per_host_concurrency
    )
    return aiohttp.ClientSession(
        connector=connector,
        timeout=aiohttp.ClientTimeout(total=settings.timeout),
        # No cookies: each request stands alone, as Altegio's API expects.
        cookie_jar=aiohttp.DummyCookieJar(),
    )


def request_headers(token: str) -> dict[str, str]:
    """Exactly the headers the contract requires."""
    return {
        "Accept": ACCEPT,
        "Content-Type": CONTENT_TYPE,
        "Authorization": f"Bearer {token}",
    }


async def post_statuses(
    session: aiohttp.ClientSession,
    url: str,
    *,
    token: str,
    body: bytes,
    clock: Callable[[], datetime],
) -> Outcome:
    """POST one body; the answer (or the lack of one) as an Outcome."""
    try:
        async with session.post(
            url, data=body, headers=request_headers(token), allow_redirects=False
        ) as response:
            raw = bytearray()
            if response.status >= 300:
                async for chunk in response.content.iter_chunked(4096):
                    raw.extend(chunk)
                    if len(raw) >= MAX_ERROR_BODY:
                        break
            else:
                await response.read()
            return classify_response(response.status, response.headers, bytes(raw), clock())
    except (TimeoutError, aiohttp.ClientError, OSError) as exc:
        return classify_network_error(exc)
