"""The pages: each reads its figures (``pipeline.dashboard.queries``) and renders a template.

Every figure is an exact ``Decimal``; the charts get the same figures as decimal text and
only the browser turns them into pixel positions.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp_jinja2
from aiohttp import web
from sqlalchemy import Connection

from pipeline.dashboard import downloads, queries
from pipeline.dashboard.app import DASHBOARD, PREFIX, Dashboard
from pipeline.dashboard.filters import Filters, parse_filters
from pipeline.reports.catalog import REPORTS

NAV = (("overview", "Overview"), ("margin", "Margin"), ("disputes", "Disputes"),
       ("invoices", "Invoices"), ("downloads", "Downloads"))  # fmt: skip
#: Rows shown per dispute kind (largest first); the rest are counted, and downloadable.
DISPUTE_ROWS = 100


def add_routes(app: web.Application) -> None:
    app.router.add_get("/", overview, name="overview")
    app.router.add_get("/margin", margin, name="margin")
    app.router.add_get("/disputes", disputes, name="disputes")
    app.router.add_get("/invoices", invoices, name="invoices")
    app.router.add_get("/downloads", downloads_page, name="downloads")
    app.router.add_get("/download/{report}.{fmt}", download, name="download")
    app.router.add_get("/message", find_message, name="find_message")
    app.router.add_get("/message/{message_id}", message, name="message")


def _dash(request: web.Request) -> Dashboard:
    return request.app[DASHBOARD]


async def _filters(request: web.Request) -> Filters:
    dash = _dash(request)
    query = dict(request.query)
    if query.get("date") or query.get("period") == "custom":
        return parse_filters(query, date.today())
    newest = await asyncio.to_thread(dash.read, queries.last_day)
    default = date.fromisoformat(newest) if newest else datetime.now(UTC).date()
    return parse_filters(query, default)


async def _cached(
    request: web.Request, name: str, f: Filters, *works: Any, daily: bool = False
) -> list[Any]:
    """The page's reads, reused while the projection has not moved (PageCache). ``daily``:
    they read the rollup, refreshed first."""
    dash = _dash(request)
    position = await asyncio.to_thread(dash.read, queries.checkpoint)
    key = (name, f)
    found = dash.cache.get(key, position)
    if found is None:
        if daily:
            await asyncio.to_thread(dash.refresh_rollup)
        found = await dash.fetch(*works)
        dash.cache.put(key, position, found)
    return found


def _page(request: web.Request, template: str, f: Filters | None, **context: Any) -> web.Response:
    base = {
        "nav": NAV,
        "page": template.removesuffix(".html"),
        "f": f,
        "reporting_currency": _dash(request).settings.finance.reporting_currency,
        "partners": [],
        "carriers": [],
        "currencies": [],
    }
    return aiohttp_jinja2.render_template(template, request, {**base, **context})


def _series(values: list[Decimal | None]) -> list[str | None]:
    """Decimal text for the chart (JSON has no decimal; the browser parses it to plot)."""
    return [None if v is None else format(v, "f") for v in values]


async def overview(request: web.Request) -> web.StreamResponse:
    f = await _filters(request)
    margin_data, delivery, billing, ops = await _cached(
        request, "overview", f,
        lambda c: queries.margin_data(c, f, ("day",)), lambda c: queries.delivery_data(c, f),
        lambda c: queries.billing_data(c, f), queries.operations, daily=True,
    )  # fmt: skip
    days = [d.isoformat() for d in f.days]
    per_day = {key[0]: money for key, money in margin_data.by("day")}
    series = (("revenue", "revenue_amount"), ("carrier cost", "cost_amount"),
              ("margin", "margin_amount"))  # fmt: skip
    money_chart = {
        "title": f"Revenue, carrier cost and margin per day ({_reporting(request)})",
        "x": days,
        "series": [
            {"label": label, "values": _series([_get(per_day, d, attr) for d in days])}
            for label, attr in series
        ],
    }
    delivery_chart = {
        "title": "Delivery rate per carrier per day (delivered among final messages)",
        "x": days,
        "percent": True,
        "series": [
            {"label": carrier,
             "values": _series([(delivery.cells.get((d, carrier)) or (0, 0, 0, None))[3]
                                for d in days])}
            for carrier in delivery.carriers
        ],
    }  # fmt: skip
    return _page(
        request, "overview.html", f,
        total=margin_data.total(), per_day=[(d, per_day.get(d)) for d in days],
        billing=billing.rows, delivery=delivery, ops=ops,
        money_chart=json.dumps(money_chart), delivery_chart=json.dumps(delivery_chart),
        partners=margin_data.partners, carriers=margin_data.carriers,
        currencies=billing.currencies,
    )  # fmt: skip


def _get(per_day: dict[str, queries.Money3], day: str, attr: str) -> Decimal | None:
    money = per_day.get(day)
    return None if money is None else getattr(money, attr)


def _reporting(request: web.Request) -> str:
    return _dash(request).settings.finance.reporting_currency


SORTS = ("name", "messages", "revenue", "cost", "margin", "fx_missing")


def _sorted(
    groups: list[tuple[tuple[Any, ...], queries.Money3]], key: str, desc: bool
) -> list[Any]:
    def value(item: tuple[tuple[Any, ...], queries.Money3]) -> tuple[Any, ...]:
        names, money = item
        if key == "name":
            return tuple((n is None, n or "") for n in names)
        figure = money.messages if key == "messages" else getattr(money, key)
        # Rows without the figure go last whichever way the column is sorted.
        return (figure is None) != desc, figure or 0

    return sorted(groups, key=value, reverse=desc)


async def margin(request: web.Request) -> web.StreamResponse:
    f = await _filters(request)
    sort = request.query.get("sort", "margin")
    if sort not in SORTS:
        sort = "margin"
    desc = request.query.get("dir", "asc" if sort == "name" else "desc") == "desc"
    (data,) = await _cached(
        request, "margin", f,
        lambda c: queries.margin_data(c, f, ("carrier", "country"), ("partner",)), daily=True,
    )  # fmt: skip
    return _page(
        request, "margin.html", f,
        by_route=_sorted(data.by("carrier", "country"), sort, desc),
        by_partner=_sorted(data.by("partner"), sort, desc),
        total=data.total(), sort=sort, desc=desc, sorts=SORTS,
        partners=data.partners, carriers=data.carriers,
    )  # fmt: skip


async def disputes(request: web.Request) -> web.StreamResponse:
    f = await _filters(request)
    (groups,) = await _cached(
        request, "disputes", f, lambda c: queries.disputes(c, f, DISPUTE_ROWS)
    )
    return _page(request, "disputes.html", f, groups=groups, shown=DISPUTE_ROWS,
                 currencies=sorted({g.currency for g in groups if g.currency}))  # fmt: skip


async def invoices(request: web.Request) -> web.StreamResponse:
    f = await _filters(request)
    (rows,) = await _cached(request, "invoices", f, lambda c: queries.invoices(c, f))
    return _page(request, "invoices.html", f, invoices=rows,
                 carriers=sorted({i.carrier for i in rows}),
                 currencies=sorted({i.currency for i in rows if i.currency}))  # fmt: skip


async def downloads_page(request: web.Request) -> web.StreamResponse:
    f = await _filters(request)
    reports = [
        {"name": name, "grain": r.grain,
         "commands": {fmt: downloads.cli_command(name, f, fmt) for fmt in downloads.FORMATS}}
        for name, r in REPORTS.items()
    ]  # fmt: skip
    return _page(request, "downloads.html", f, reports=reports, formats=list(downloads.FORMATS))


async def download(request: web.Request) -> web.StreamResponse:
    name, fmt = request.match_info["report"], request.match_info["fmt"]
    if name not in REPORTS or fmt not in downloads.FORMATS:
        raise web.HTTPNotFound(text=f"no such download: {name[:40]}.{fmt[:10]}\n")
    f = await _filters(request)
    dash = _dash(request)
    scratch = downloads.scratch_directory()
    try:
        path: Path = await asyncio.to_thread(
            downloads.write_report, dash.database, name, fmt, f, _reporting(request),
            Path(scratch.name),
        )  # fmt: skip
        response = web.StreamResponse(
            headers={
                "Content-Type": downloads.FORMATS[fmt],
                "Content-Disposition": f'attachment; filename="{path.name}"',
                "Content-Length": str(path.stat().st_size),
            }
        )
        await response.prepare(request)
        with path.open("rb") as file:
            while chunk := await asyncio.to_thread(file.read, 1 << 20):
                await response.write(chunk)
        await response.write_eof()
        return response
    finally:
        await asyncio.to_thread(shutil.rmtree, scratch.name, True)


async def find_message(request: web.Request) -> web.StreamResponse:
    wanted = request.query.get("id", "").strip()
    if not wanted:
        raise web.HTTPFound(f"{PREFIX}/disputes")
    from urllib.parse import quote

    raise web.HTTPFound(f"{PREFIX}/message/{quote(wanted, safe='')}")


def _explain(dash: Dashboard, message_id: str) -> Any:
    from pipeline.cli.explain_command import SECTIONS
    from pipeline.projector.explain import explain_message
    from pipeline.projector.runner import fold_rules

    rules = fold_rules(dash.settings)

    def work(conn: Connection) -> tuple[Any, Any]:
        return (explain_message(conn, message_id, rules, sections=SECTIONS),
                queries.message_status(conn, message_id))  # fmt: skip

    doc, status = dash.read(work)
    return _scrubbed(doc), status


def _scrubbed(value: Any) -> Any:
    """Every text of the trail with secrets and callback tokens masked: an accepted
    message's payload holds its callback URL, whose last segment is the partner's token."""
    from pipeline.logsafe import mask_secrets

    if isinstance(value, str):
        return mask_secrets(value)
    if isinstance(value, dict):
        return {k: _scrubbed(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_scrubbed(v) for v in value]
    return value


async def message(request: web.Request) -> web.StreamResponse:
    message_id = request.match_info["message_id"]
    doc, status = await asyncio.to_thread(_explain, _dash(request), message_id)
    if doc is None:
        response = _page(request, "problem.html", None, title="No such message",
                         detail=f"the log knows nothing of message {message_id!r}",
                         status=404)  # fmt: skip
        response.set_status(404)
        return response
    sections = {s["title"]: s for s in doc["sections"]}
    return _page(
        request, "message.html", None, doc=doc, status=status,
        money=(sections.get("Money") or {"rows": [{}]})["rows"][0],
        mismatches=(sections.get("Mismatches") or {"rows": []})["rows"],
        attempts=(sections.get("Dispatch attempts") or {"rows": []})["rows"],
        others=[s for t, s in sections.items()
                if t not in ("Money", "Mismatches", "Dispatch attempts")],
        pretty=queries.pretty_json,
    )  # fmt: skip
