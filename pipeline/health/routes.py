"""``/healthz`` and ``/readyz`` on an aiohttp app.

``/healthz``: 200 ``{"status": "ok", "reasons": []}``, or 503 with every reason (stable
``code``, human ``message``). ``/readyz``: 200, or 503 while this process starts or stops.
Neither needs credentials: they say nothing a probe could not see, and load balancers and
orchestrators call them without any.
"""

from __future__ import annotations

import functools

from aiohttp import web

from pipeline.config import Settings
from pipeline.db.engine import Database
from pipeline.health.check import AsyncHealth, HealthCheck
from pipeline.health.decide import Thresholds
from pipeline.health.measure import measure
from pipeline.health.readiness import Readiness

HEALTH = web.AppKey("health", AsyncHealth)
READINESS = web.AppKey("readiness", Readiness)

#: Seconds an answer may take beyond the probe's own lock wait before /healthz gives up.
ANSWER_MARGIN = 5.0


def health_check(settings: Settings, db: Database) -> HealthCheck:
    h = settings.health
    return HealthCheck(
        functools.partial(measure, db, probe_timeout=h.probe_timeout),
        Thresholds(
            max_lag_events=h.max_lag_events,
            max_lag_seconds=h.max_lag_seconds,
            max_dispatch_age=h.max_dispatch_age,
            min_free_bytes=h.min_free_bytes,
        ),
        ttl=h.cache_seconds,
    )


def install_health(app: web.Application, settings: Settings, db: Database) -> HealthCheck:
    """Add both routes; the app becomes not ready when it starts shutting down."""
    check = health_check(settings, db)
    app[HEALTH] = AsyncHealth(check, timeout=settings.health.probe_timeout + ANSWER_MARGIN)
    app[READINESS] = Readiness()
    app.router.add_get("/healthz", _healthz)
    app.router.add_get("/readyz", _readyz)

    async def not_ready(app: web.Application) -> None:
        app[READINESS].stopping()

    # on_shutdown runs after the listening sockets close and before in-flight requests are
    # waited for: a keep-alive connection asking now hears 503.
    app.on_shutdown.append(not_ready)
    return check


def readiness_of(app: web.Application) -> Readiness:
    return app[READINESS]


async def _healthz(request: web.Request) -> web.StreamResponse:
    report = await request.app[HEALTH].report()
    return web.json_response(report.as_json(), status=200 if report.healthy else 503)


async def _readyz(request: web.Request) -> web.StreamResponse:
    reasons = request.app[READINESS].reasons()
    if reasons:
        return web.json_response({"status": "not ready", "reasons": reasons}, status=503)
    return web.json_response({"status": "ready", "reasons": []})
