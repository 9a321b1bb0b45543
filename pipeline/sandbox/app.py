"""The sandbox's HTTP face: Altegio's status callback, strictly, plus its own inspection API.

Order of checks for ``POST /smsprovider/status/callback/{partner_token}``, as a real API
gateway would do them: the fault plan first (an overloaded or broken server answers before
it looks at anything), then authentication (401 code 20), permission (403 code 15), headers
and body (400 codes 5 and 10), and last the ids (404 code 30). Only a request that passes
everything is recorded.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import socket
import struct
from collections.abc import Callable
from datetime import datetime
from typing import Any

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from aiohttp.web_request import BaseRequest
from aiohttp.web_response import StreamResponse

from pipeline.dispatch.urls import mask_token
from pipeline.logsafe import mask_url
from pipeline.sandbox.config import SandboxConfig
from pipeline.sandbox.faults import FaultPlan, retry_after_value
from pipeline.sandbox.recorder import Recorder
from pipeline.sandbox.validation import (
    ACCESS_FORBIDDEN,
    INVALID_PARTNER_TOKEN,
    RESOURCE_NOT_FOUND,
    Rejection,
    StatusItem,
    check_headers,
    parse_body,
)

CALLBACK_ROUTE = "/smsprovider/status/callback/{partner_token}"
log = logging.getLogger("smsrecon.sandbox")


class SandboxState:
    """The one mutable thing per app: the recorder, the fault plan, the clock, and the
    shutdown flag."""

    def __init__(self, config: SandboxConfig, clock: Callable[[], datetime] | None = None) -> None:
        self.config = config
        #: What ``now`` is for the date form of ``Retry-After``: the real clock, or the one a
        #: test shares with the dispatcher so the wait it reads can be checked exactly.
        self.clock = clock
        self.recorder = Recorder()
        self.plan = FaultPlan(config.faults, config.seed)
        # Set on shutdown so hanging requests end at once instead of holding the server.
        self.closing = asyncio.Event()

    def reset(self) -> None:
        self.recorder.reset()
        self.plan.reset()

    def now(self) -> float | None:
        """The injected clock's time as a POSIX timestamp, or None for the real clock."""
        return None if self.clock is None else self.clock().timestamp()

    def mask(self, text: str) -> str:
        for token in (*self.config.tokens, *self.config.forbidden_tokens):
            text = mask_token(text, token)
        return mask_url(text)


STATE = web.AppKey("sandbox_state", SandboxState)


def error_body(message: str, code: int | None = None) -> dict[str, Any]:
    """Altegio's error envelope: ``{"success": false, "data": null, "meta": {...}}``."""
    meta: dict[str, Any] = {"message": message}
    if code is not None:
        meta["code"] = code
    return {"success": False, "data": None, "meta": meta}


def _refuse(rejection: Rejection) -> web.Response:
    return web.json_response(error_body(rejection.message, rejection.code), status=rejection.status)


def authorise(
    config: SandboxConfig, path_token: str, authorization: str | None
) -> Rejection | None:
    """401 (code 20) unless ``Authorization: Bearer <t>`` names the path's token and it is
    known; 403 (code 15) for a known token without the permission. Never echoes a token."""
    scheme, _, credential = (authorization or "").strip().partition(" ")
    credential = credential.strip()
    if scheme.lower() != "bearer" or not credential:
        return Rejection(
            401, INVALID_PARTNER_TOKEN, "Authorization: Bearer <partner_token> required"
        )
    if not hmac.compare_digest(credential.encode(), path_token.encode()):
        return Rejection(
            401, INVALID_PARTNER_TOKEN, "the Bearer token differs from the partner_token in the URL"
        )
    if any(hmac.compare_digest(path_token.encode(), t.encode()) for t in config.forbidden_tokens):
        return Rejection(
            403, ACCESS_FORBIDDEN, "the application lacks the permission to report statuses"
        )
    if not any(hmac.compare_digest(path_token.encode(), t.encode()) for t in config.tokens):
        return Rejection(401, INVALID_PARTNER_TOKEN, "partner_token is invalid")
    return None


async def receive_statuses(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    config = state.config
    # Numbered and drawn before the first await: arrival order decides, reproducibly.
    number = state.recorder.next_request_number()
    fault = state.plan.draw()
    body = await request.read()
    if fault is not None:
        return await _fault(request, state, number, fault)

    token = request.match_info["partner_token"]
    result = authorise(config, token, request.headers.get("Authorization")) or check_headers(
        request.headers
    )
    items: list[StatusItem] | Rejection = (
        result if result is not None else parse_body(body, shape=config.shape)
    )
    if isinstance(items, list):
        unknown = [item.id for item in items if item.id in config.unknown_ids]
        if unknown:
            items = Rejection(
                404, RESOURCE_NOT_FOUND, f"message(s) not found: {', '.join(map(repr, unknown))}"
            )
    if isinstance(items, Rejection):
        await _latency(config)
        state.recorder.outcome(number, str(items.status), None)
        log.info(
            "request %d refused: %d code %d: %s",
            number,
            items.status,
            items.code,
            state.mask(items.message),
        )
        return _refuse(items)

    ids = [item.id for item in items]
    state.recorder.accept(number, config.token_label(token), items)
    state.recorder.enter(number, ids)
    try:
        await _latency(config)
    finally:
        state.recorder.leave(ids)
    state.recorder.outcome(number, "200", len(items))
    return web.json_response({"success": True, "data": {"accepted": len(items)}, "meta": []})


async def _latency(config: SandboxConfig) -> None:
    if config.latency_ms:
        await asyncio.sleep(config.latency_ms / 1000)


async def _fault(
    request: web.Request, state: SandboxState, number: int, fault: str
) -> web.StreamResponse:
    """Answer as a broken or overloaded server would; never records the items."""
    config = state.config
    state.recorder.outcome(number, fault, None)
    log.info("request %d: injected fault %s", number, fault)
    await _latency(config)
    if fault == "reset":
        _reset_connection(request)
        # Nothing can be written any more; the empty response is discarded by aiohttp.
        return web.Response(status=500)
    if fault == "hang":
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(state.closing.wait(), config.hang_ms / 1000)
        return web.json_response(error_body("upstream timed out"), status=504)
    if fault in ("429s", "429date"):
        return web.json_response(
            error_body("Too many requests"),
            status=429,
            headers={"Retry-After": retry_after_value(fault, config.retry_after_s, state.now())},
        )
    if fault == "500":
        return web.json_response(error_body("An error has occurred"), status=500)
    # 502 and 503 come from the proxy in front of the API in real life: HTML, not JSON.
    reason = {"502": "Bad Gateway", "503": "Service Temporarily Unavailable"}[fault]
    return web.Response(
        status=int(fault),
        text=f"<html><head><title>{fault} {reason}</title></head>"
        f"<body><center><h1>{fault} {reason}</h1></center></body></html>",
        content_type="text/html",
    )


def _reset_connection(request: web.Request) -> None:
    """Close the TCP connection with RST (SO_LINGER 0), the way a crashed peer looks."""
    transport = request.transport
    if transport is None:
        return
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()


async def missing_token(request: web.Request) -> web.Response:
    return web.json_response(error_body("partner_token missing", INVALID_PARTNER_TOKEN), status=401)


async def not_found(request: web.Request) -> web.Response:
    return web.json_response(
        error_body("the resource at the requested path does not exist", RESOURCE_NOT_FOUND),
        status=404,
    )


async def received(request: web.Request) -> web.Response:
    return web.json_response(request.app[STATE].recorder.snapshot())


async def reset(request: web.Request) -> web.Response:
    request.app[STATE].reset()
    return web.json_response({"success": True, "data": None, "meta": []})


class MaskedAccessLogger(AbstractAccessLogger):
    """The access log, with the partner token masked out of every path."""

    def log(self, request: BaseRequest, response: StreamResponse, time: float) -> None:
        state = request.app[STATE] if isinstance(request, web.Request) else None
        target = f"{request.method} {request.path_qs}"
        target = state.mask(target) if state is not None else mask_url(target)
        self.logger.info("%s %s %d %.1fms", request.remote, target, response.status, time * 1000)


def build_sandbox_app(
    config: SandboxConfig, *, clock: Callable[[], datetime] | None = None
) -> web.Application:
    """The aiohttp application of a sandbox configured by ``config``; ``clock`` (aware UTC
    datetimes) replaces the real clock where the sandbox tells time."""
    app = web.Application()
    state = SandboxState(config, clock)
    app[STATE] = state

    async def release_hangs(app: web.Application) -> None:
        state.closing.set()

    app.on_shutdown.append(release_hangs)
    app.router.add_post(CALLBACK_ROUTE, receive_statuses)
    app.router.add_post("/smsprovider/status/callback/", missing_token)
    app.router.add_post("/smsprovider/status/callback", missing_token)
    app.router.add_get("/_sandbox/received", received)
    app.router.add_post("/_sandbox/reset", reset)
    app.router.add_route("*", "/{tail:.*}", not_found)
    return app
