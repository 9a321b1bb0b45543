"""The ingest HTTP app: our own records and carriers' DLR webhooks in, events out.

Each request goes: size check → (DLR) carrier lookup → authentication (the route's
``auth.Policy``: peer allow-list, then secret or signature) → scrub secrets → parse
(``routing.interpret``) → group commit (``writer``) → the answer its sender expects.
A 2xx is only ever sent after the request's events are committed. Bad input is answered
400 and the scrubbed raw request kept in ``quarantine``; nothing else is stored for it. That
includes a request that parsed but whose content the database refuses (the writer's
ContentRejected); a database that is down is 503, and the sender sends again.
A request refused for auth is answered 401 and stored nowhere, quarantine included.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from aiohttp import web
from aiohttp.web_protocol import RequestPayloadError

from pipeline.config import Settings
from pipeline.db.engine import Database
from pipeline.eventlog.model import utc_now
from pipeline.health.routes import install_health, readiness_of
from pipeline.ingest import auth
from pipeline.ingest import quarantine as quarantine_store
from pipeline.ingest.adapters.base import RawRequest
from pipeline.ingest.faults import unparseable
from pipeline.ingest.metrics import CONTENT_TYPE, IngestMetrics
from pipeline.ingest.routing import InputError, Target, UnknownCarrier, interpret
from pipeline.ingest.writer import ContentRejected, GroupCommitWriter, WriterUnavailable
from pipeline.metrics.collector import DatabaseCollector
from pipeline.metrics.stages import STAGES_KEY, StageMetrics

log = logging.getLogger(__name__)


@dataclass
class IngestState:
    settings: Settings
    db: Database
    writer: GroupCommitWriter
    metrics: IngestMetrics
    #: carrier name (or SEND_PATH, METRICS) -> its auth policy, secret included (resolved
    #: once at build time; never logged).
    policies: dict[str, auth.Policy]
    twilio_signer: Callable[..., str] | None
    #: Unix seconds now: the hmac replay window's clock (injectable for tests).
    clock: Callable[[], float]


STATE = web.AppKey("ingest_state", IngestState)


#: The policies key (and auth-failure metric label) of the provider's own routes and of
#: /metrics; not valid carrier names, so they cannot collide with one.
SEND_PATH = "/send-path"
METRICS = "/metrics"


def _policy(settings: Settings, auth_settings: Any, key: str) -> auth.Policy:
    secret = None
    if auth_settings.type in auth.SECRET_TYPES:
        if not auth_settings.secret_env:
            from pipeline.config import ConfigError

            raise ConfigError(
                f"{settings.source_file or 'defaults'}: {key}.secret_env: "
                f"required for auth type {auth_settings.type}"
            )
        secret = settings.secret(auth_settings.secret_env, f"{key}.secret_env")
    return auth.Policy(
        type=auth_settings.type,
        secret=secret,
        networks=auth.parse_networks(auth_settings.allow_ips),
        window=settings.ingest.signature_window,
    )


def build_ingest_app(
    settings: Settings, db: Database, *, clock: Callable[[], float] = time.time
) -> web.Application:
    """The ingest app. Secrets are resolved now, so a missing one fails at startup
    (ConfigError naming the key) rather than at the first report. ``clock`` (Unix seconds)
    is what hmac timestamps are held against."""
    from pipeline.prices.record import record_prices

    metrics = IngestMetrics()
    writer = GroupCommitWriter(
        db,
        interval_ms=settings.ingest.commit_interval_ms,
        max_events=settings.ingest.commit_max_events,
        on_commit=metrics.observe_commit,
        # Before the first request is appended: the price tables in force are in the log.
        before_first=lambda: record_prices(db, settings),
    )
    policies = {
        SEND_PATH: _policy(settings, settings.ingest.auth, "ingest.auth"),
        METRICS: _policy(settings, settings.ingest.metrics_auth, "ingest.metrics_auth"),
    }
    signer = None
    for name, carrier in settings.carriers.items():
        policies[name] = _policy(settings, carrier.auth, f"carriers.{name}.auth")
        if carrier.auth.type == "twilio":
            from pipeline.ingest.adapters.twilio import twilio_signature

            signer = twilio_signature

    # client_max_size makes aiohttp itself refuse to buffer more than the limit.
    app = web.Application(
        client_max_size=settings.ingest.max_body_bytes, middlewares=[_count_and_guard]
    )
    app[STATE] = IngestState(settings, db, writer, metrics, policies, signer, clock)
    for kind in ("messages", "submissions", "refusals"):
        app.router.add_post(f"/v1/{kind}", _own_route(kind))
    app.router.add_route("GET", "/v1/dlr/{carrier}", _dlr)
    app.router.add_route("POST", "/v1/dlr/{carrier}", _dlr)
    app.router.add_get("/metrics", _metrics)
    _install_health_and_stage_metrics(app, settings, db, metrics)

    async def start_writer(app: web.Application) -> None:
        await app[STATE].writer.start()
        readiness_of(app).started("writer")

    async def stop_writer(app: web.Application) -> None:
        # on_cleanup runs after in-flight handlers finished: everything they queued is
        # committed and answered before the writer stops.
        await app[STATE].writer.stop()

    app.on_startup.append(start_writer)
    app.on_cleanup.append(stop_writer)
    return app


def _error(status: int, error: str, detail: Any = None) -> web.Response:
    return web.json_response({"error": error, "detail": detail}, status=status)


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def _count_and_guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Count every answer by route template; turn anything unexpected into a 500.

    Logged with the path only: the query string may hold a carrier token.
    """
    state = request.app[STATE]
    resource = request.match_info.route.resource
    route = resource.canonical if resource is not None else "unmatched"
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        status = exc.status
        if status >= 400:
            response = _error(status, exc.reason)
        else:
            raise
    except Exception as exc:
        log.error(
            "unexpected error on %s %s: %s",
            request.method,
            request.path,
            type(exc).__name__,
            exc_info=log.isEnabledFor(logging.DEBUG),
        )
        response = _error(500, "internal error", None)
    state.metrics.request_counter(route, response.status).inc()
    return response


async def _read_body(request: web.Request) -> bytes | web.Response | InputError:
    """The body; a 413 answer past the size limit; an InputError (answered 400 and
    quarantined once the request is authenticated) for a body that cannot be decoded,
    such as a corrupt gzip ``Content-Encoding``."""
    limit = request.app[STATE].settings.ingest.max_body_bytes
    length = request.content_length
    if length is not None and length > limit:
        return _error(413, "body too large", {"max_body_bytes": limit})
    if length == 0 or (length is None and not request.body_exists):
        # A GET callback (Kannel's): nothing to read.
        return b""
    try:
        return await request.read()
    except web.HTTPRequestEntityTooLarge:
        return _error(413, "body too large", {"max_body_bytes": limit})
    except RequestPayloadError:
        encoding = request.headers.get("Content-Encoding", "none")[:40]
        return InputError(
            "unreadable body",
            [{"field": "body", "reason": f"cannot be decoded (Content-Encoding: {encoding})"}],
        )


def _raw(request: web.Request, body: bytes) -> RawRequest:
    return RawRequest(
        method=request.method,
        path=request.path,
        query=list(request.query.items()),
        headers={name.lower(): value for name, value in request.headers.items()},
        body=body,
    )


def _own_route(kind: str) -> Handler:
    async def handle(request: web.Request) -> web.StreamResponse:
        body = await _read_body(request)
        if isinstance(body, web.Response):
            return body
        raw = _raw(request, body if isinstance(body, bytes) else b"")
        refused = _authenticate(request, raw, SEND_PATH)
        if refused is not None:
            return refused
        unreadable = body if isinstance(body, InputError) else None
        return await _ingest(request, Target(kind), auth.scrub(raw), unreadable)

    handle.__name__ = f"post_{kind}"
    return handle


async def _dlr(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    name = request.match_info["carrier"]
    carrier = state.settings.carriers.get(name)
    if carrier is None:
        return _error(404, "unknown carrier", {"carrier": name})
    body = await _read_body(request)
    if isinstance(body, web.Response):
        return body
    raw = _raw(request, body if isinstance(body, bytes) else b"")
    refused = _authenticate(request, raw, name)
    if refused is not None:
        return refused
    unreadable = body if isinstance(body, InputError) else None
    return await _ingest(request, Target("dlr", name), auth.scrub(raw), unreadable)


def _authenticate(request: web.Request, raw: RawRequest, key: str) -> web.Response | None:
    """None when the request passes ``key``'s policy, else its 401 answer.

    A refused request is never stored, not even in quarantine (whatever its content): an
    unauthenticated body is not input we vouch for, and storing it would let anyone fill
    the database. It is counted, so a misconfigured gateway (or an attack) shows on the
    dashboard.
    """
    state = request.app[STATE]
    policy = state.policies[key]
    try:
        auth.check(
            policy,
            raw,
            # The TCP peer, never X-Forwarded-For: anyone can write that header.
            peer=request.remote,
            now=state.clock(),
            # Only Twilio signs the URL; building it costs more than the rest of the check.
            url=str(request.url) if policy.type == "twilio" else "",
            twilio_signature=state.twilio_signer,
        )
    except (auth.AuthError, ValueError) as exc:
        state.metrics.auth_failures.labels(key).inc()
        return _error(401, "unauthorized", {"reason": _auth_reason(exc)})
    return None


def _auth_reason(exc: Exception) -> str:
    """The AuthError's own text; a fixed one for credentials that are not even text (a
    header that is not UTF-8), whose decoding error would echo part of them."""
    return str(exc) if isinstance(exc, auth.AuthError) else "malformed credentials"


async def _ingest(
    request: web.Request,
    target: Target,
    raw: RawRequest,
    unreadable: InputError | None = None,
) -> web.StreamResponse:
    state = request.app[STATE]
    received_at = utc_now()
    source = f"http:{target.path}"
    if unreadable is not None:
        response = await _quarantine(request, target, raw, unreadable, received_at, source)
        # The rest of the body cannot be read, so this connection cannot carry another
        # request: say so, and the client opens a new one.
        response.force_close()
        return response
    try:
        outcome = interpret(state.settings, target, raw, received_at=received_at, source=source)
    except UnknownCarrier:
        return _error(404, "unknown carrier", {"carrier": target.carrier})
    except InputError as exc:
        return await _quarantine(request, target, raw, exc, received_at, source)
    except Exception as exc:
        # A value no parser check caught (a number too long to convert, a structure too
        # deep): still this request's content, so still 400 and quarantine, never a 500.
        refused = unparseable(exc)
        if refused is None:
            raise
        log.error("a parser let %s through on %s", type(exc).__name__, raw.path)
        return await _quarantine(request, target, raw, refused, received_at, source)
    try:
        committed = await state.writer.submit(outcome.events)
    except WriterUnavailable as exc:
        return _error(503, str(exc))
    except ContentRejected as exc:
        # Parsed, but the database refuses what it holds: bad input all the same.
        refused = InputError(exc.error, exc.detail)
        return await _quarantine(request, target, raw, refused, received_at, source)
    # A counter's inc(0) adds nothing but still takes its lock: skipped.
    if committed.appended:
        state.metrics.events_appended.inc(committed.appended)
    if committed.duplicates:
        state.metrics.duplicates.inc(committed.duplicates)
    if outcome.reply_status is None:
        return web.json_response(
            {"appended": committed.appended, "duplicates": committed.duplicates}
        )
    content_type, charset = _media_type(outcome.reply_content_type or "text/plain")
    return web.Response(
        status=outcome.reply_status,
        body=(outcome.reply_body or "").encode("utf-8"),
        content_type=content_type,
        charset=charset,
    )


@lru_cache(maxsize=16)
def _media_type(content_type: str) -> tuple[str, str | None]:
    """``text/plain; charset=utf-8`` -> ("text/plain", "utf-8"). Each adapter answers with
    one fixed content type, so it is split once per type rather than on every request."""
    media, _, charset = content_type.partition(";")
    return media.strip(), charset.partition("=")[2].strip() or None


async def _quarantine(
    request: web.Request,
    target: Target,
    raw: RawRequest,
    exc: InputError,
    received_at: Any,
    source: str,
) -> web.Response:
    state = request.app[STATE]
    fmt = (
        state.settings.carriers[target.carrier].format
        if target.carrier is not None
        else target.kind
    )
    route = target.path if target.kind != "dlr" else "/v1/dlr/{carrier}"
    try:
        entry_id = await asyncio.to_thread(
            quarantine_store.save,
            state.db,
            raw,
            received_at=received_at,
            source=source,
            error=exc.error,
            detail=exc.detail,
            carrier=target.carrier,
            fmt=fmt,
            caps=quarantine_caps(state.settings),
        )
    except quarantine_store.NotKept as full:
        # Still a refusal: the sender must fix the request, not resend it. Counted and
        # logged, so a flood of bad input (or too small a cap) shows.
        state.metrics.quarantine_not_kept.labels(route, full.reason).inc()
        log.warning("refused %s request not kept in quarantine: %s", raw.path, full.reason)
        return web.json_response(
            {"error": exc.error, "detail": exc.detail, "quarantine_id": None}, status=400
        )
    except Exception as db_exc:
        # Failure policy: the request could not be kept, so it must not look handled.
        log.error("could not quarantine a request to %s: %s", raw.path, type(db_exc).__name__)
        return _error(503, "the quarantine is unavailable; send again")
    state.metrics.quarantined.labels(route).inc()
    log.warning("quarantined %s request #%d: %s", raw.path, entry_id, exc.error)
    return web.json_response(
        {"error": exc.error, "detail": exc.detail, "quarantine_id": entry_id}, status=400
    )


def quarantine_caps(settings: Settings) -> quarantine_store.Caps:
    return quarantine_store.Caps(
        max_entry_bytes=settings.ingest.quarantine_max_entry_bytes,
        max_open_entries=settings.ingest.quarantine_max_open_entries,
    )


def _install_health_and_stage_metrics(
    app: web.Application, settings: Settings, db: Database, metrics: IngestMetrics
) -> None:
    """/healthz and /readyz (not ready until the writer has started), and every stage's
    metrics on this app's registry: the in-process ones (``stage_metrics_of(app)`` feeds
    the scheduler's jobs) and the database-backed collector."""
    check = install_health(app, settings, db)
    readiness_of(app).expect("writer")
    app[STAGES_KEY] = StageMetrics(metrics.registry)
    metrics.registry.register(DatabaseCollector(db, settings, check))


async def _metrics(request: web.Request) -> web.StreamResponse:
    refused = _authenticate(request, _raw(request, b""), METRICS)
    if refused is not None:
        return refused
    # The database-backed collector queries at scrape time: off the event loop.
    body = await asyncio.to_thread(request.app[STATE].metrics.render)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})
