"""The dashboard application: its routes under ``/dashboard``, sign-in, and the pages
that stand in for a traceback (a database not migrated yet, or being migrated, or gone).

``dashboard_app`` is mounted as a sub-application: by ``smsrecon dashboard`` on a root of
its own (``standalone_app``), and by ``smsrecon run`` on the ingest application
(``mount``). It only reads.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp_jinja2
import jinja2
from aiohttp import web
from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError, OperationalError, ProgrammingError

from pipeline.config import Settings
from pipeline.dashboard import auth, rollup
from pipeline.dashboard.filters import FilterError
from pipeline.db.backend import backend_of
from pipeline.db.engine import Database
from pipeline.db.schema import current_revision, head_revision

log = logging.getLogger("smsrecon.dashboard")

PREFIX = "/dashboard"
HERE = Path(__file__).resolve().parent
#: A read that waits longer than this for a lock (a migration at work) is answered 503.
LOCK_WAIT_MS = 3000
#: Same-origin only: nothing on any page may make the browser ask another machine.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; font-src 'self'; object-src 'none'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


class Unavailable(Exception):
    """The database cannot answer the dashboard's questions now; the text says why."""


@dataclass
class PageCache:
    """A page's figures, reused while the projection's checkpoint has not moved and for at
    most ``seconds``: the views are sums over the whole period, and a page is often
    reloaded or shared while nothing changed."""

    seconds: float
    entries: dict[tuple[Any, ...], tuple[int, float, Any]] = field(default_factory=dict)

    def get(self, key: tuple[Any, ...], position: int) -> Any:
        found = self.entries.get(key)
        if found is None or found[0] != position or found[1] < time.monotonic():
            return None
        return found[2]

    def put(self, key: tuple[Any, ...], position: int, value: Any) -> None:
        if self.seconds <= 0:
            return
        if len(self.entries) > 256:
            self.entries.clear()
        self.entries[key] = (position, time.monotonic() + self.seconds, value)


@dataclass
class Dashboard:
    settings: Settings
    database: Database
    gate: auth.Gate
    cache: PageCache
    head: str = field(default_factory=head_revision)
    #: Reads tuned for a person waiting (``Backend.interactive_read``); off only to measure.
    interactive: bool = True
    #: One rollup refresh at a time in this process (the database lock covers the others).
    refreshing: threading.Lock = field(default_factory=threading.Lock)

    def check_schema(self) -> None:
        try:
            current = current_revision(self.database.engine)
        except OperationalError as exc:
            raise Unavailable("the database cannot be reached") from exc
        if current is None:
            raise Unavailable(
                "the database has no smsrecon schema yet: run `smsrecon db upgrade` "
                "(this page will work as soon as it is done)"
            )
        if current != self.head:
            raise Unavailable(
                f"the database is being migrated or needs migrating: it is at revision "
                f"{current}, this version reads {self.head}; run `smsrecon db upgrade` "
                "(this page will work as soon as it is done)"
            )

    def read(self, work: Callable[[Connection], Any]) -> Any:
        """``work(conn)`` in one read transaction that never waits long for a lock."""
        with self.database.read() as conn:
            backend = backend_of(conn)
            backend.bound_lock_wait(conn, LOCK_WAIT_MS)
            if self.interactive:
                backend.interactive_read(conn)
            return work(conn)

    def refresh_rollup(self) -> rollup.Refreshed:
        """Bring ``dashboard_daily`` up to the projection before a page reads it: the days
        whose messages changed since the last refresh, in one write transaction."""
        with self.refreshing, self.database.write() as conn:
            return rollup.refresh(conn)

    def warm(self) -> None:
        """The first refresh at start-up (a whole build right after the migration), so the
        first person to open a page does not wait for it. Any trouble is left to the pages,
        which say what it is."""
        try:
            self.check_schema()
            self.refresh_rollup()
        except Exception as exc:
            log.info("dashboard rollup not refreshed at start-up: %s", type(exc).__name__)

    async def fetch(self, *works: Callable[[Connection], Any]) -> list[Any]:
        """Several reads at once, each in its own thread and transaction."""
        return list(await asyncio.gather(*(asyncio.to_thread(self.read, w) for w in works)))


DASHBOARD = web.AppKey("dashboard", Dashboard)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def _guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Sign-in first; then every known trouble is a page that says what it is."""
    dash = request.app[DASHBOARD]
    refused = auth.admit(dash.gate, request)
    if isinstance(refused, web.HTTPException):
        raise refused
    if refused is not None:
        return refused
    if request.path.startswith(f"{PREFIX}/static/"):
        return await handler(request)
    try:
        await asyncio.to_thread(dash.check_schema)
        response = await handler(request)
    except FilterError as exc:
        response = _problem(request, 400, "That filter cannot be read", str(exc))
    except Unavailable as exc:
        response = _problem(request, 503, "Not available right now", str(exc))
    except (OperationalError, ProgrammingError) as exc:
        # A lock held past LOCK_WAIT_MS, a view dropped mid-migration, a server gone.
        log.warning("dashboard read failed on %s: %s", request.path, type(exc).__name__)
        response = _problem(
            request, 503, "Not available right now",
            "the database did not answer in time, or is being migrated; try again shortly",
        )  # fmt: skip
    except web.HTTPException:
        raise
    except DBAPIError as exc:
        log.error("dashboard database error on %s: %s", request.path, type(exc).__name__)
        response = _problem(request, 500, "Something went wrong", "a database error")
    except Exception as exc:
        # Logged by type only (a message could carry data); the page never shows a trace.
        log.error(
            "dashboard error on %s: %s", request.path, type(exc).__name__,
            exc_info=log.isEnabledFor(logging.DEBUG),
        )  # fmt: skip
        response = _problem(request, 500, "Something went wrong", "see the server's log")
    response.headers.setdefault("Content-Security-Policy", CSP)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    response.headers.setdefault("Cache-Control", "no-store")
    return response


def _problem(request: web.Request, status: int, title: str, detail: str) -> web.Response:
    response = aiohttp_jinja2.render_template(
        "problem.html", request, {"title": title, "detail": detail, "status": status}
    )
    response.set_status(status)
    if status == 503:
        response.headers["Retry-After"] = "10"
    return response


def _money(value: Any, places: int = 2) -> str:
    """An exact amount for reading: thousands grouped, at least ``places`` decimals, every
    significant digit kept (0.0165 stays 0.0165; nothing is rounded away)."""
    if value is None:
        return "—"
    text = format(value.normalize() if value else value.quantize(1), "f")
    whole, _, decimals = text.partition(".")
    decimals = decimals.ljust(places, "0")
    sign = "−" if whole.startswith("-") else ""
    whole = f"{int(whole.lstrip('-') or '0'):,}"
    return f"{sign}{whole}.{decimals}" if decimals else f"{sign}{whole}"


def _exact(value: Any) -> str:
    """The machine-readable form of an amount (``data-value``): plain, exact."""
    if value is None:
        return ""
    return format(value.normalize(), "f") if value else "0"


def _percent(value: Any) -> str:
    return "—" if value is None else f"{value * 100:.2f} %"


def dashboard_app(settings: Settings, database: Database) -> web.Application:
    """The dashboard as a sub-application, to mount at ``PREFIX``. Its secret is read
    now, so a missing one fails at start-up."""
    from pipeline.dashboard import pages

    app = web.Application(middlewares=[_guard])
    app[DASHBOARD] = Dashboard(
        settings, database, auth.gate_for(settings), PageCache(settings.dashboard.cache_seconds)
    )
    env = aiohttp_jinja2.setup(
        app,
        loader=jinja2.FileSystemLoader(str(HERE / "templates")),
        autoescape=True,
    )
    env.filters.update(money=_money, exact=_exact, percent=_percent,
                       urlpart=lambda v: quote(str(v), safe=""))  # fmt: skip
    env.globals["prefix"] = PREFIX
    pages.add_routes(app)
    app.router.add_static("/static", HERE / "static", name="static")
    app.on_startup.append(_start_warming)
    app.on_cleanup.append(_finish_warming)
    return app


WARMING = web.AppKey("warming", asyncio.Task)


async def _start_warming(app: web.Application) -> None:
    app[WARMING] = asyncio.create_task(asyncio.to_thread(app[DASHBOARD].warm))


async def _finish_warming(app: web.Application) -> None:
    await app[WARMING]


def mount(root: web.Application, settings: Settings, database: Database) -> None:
    """Serve the dashboard under ``PREFIX`` on ``root`` (the ingest app of ``run``)."""

    async def with_slash(request: web.Request) -> web.StreamResponse:
        query = f"?{request.query_string}" if request.query_string else ""
        raise web.HTTPFound(f"{PREFIX}/{query}")

    root.router.add_get(PREFIX, with_slash)
    root.add_subapp(PREFIX, dashboard_app(settings, database))


def standalone_app(settings: Settings, database: Database) -> web.Application:
    """``smsrecon dashboard``: the dashboard alone, ``/`` leading to it."""
    root = web.Application()

    async def to_dashboard(_request: web.Request) -> web.StreamResponse:
        raise web.HTTPFound(f"{PREFIX}/")

    root.router.add_get("/", to_dashboard)
    mount(root, settings, database)
    return root
