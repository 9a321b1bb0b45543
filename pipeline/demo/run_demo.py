"""The demo: the whole pipeline on a throwaway database with bundled traffic.

It starts a local Altegio sandbox and the ingest server in this process, sends the bundled
traffic the way the provider's send path and the carriers' gateways would (over HTTP), runs
the projector and the dispatcher once each, and prints what Altegio received and what
finance would look at. Its settings are its own: the configured database is never touched.
"""

from __future__ import annotations

import asyncio
import json
import os
import shlex
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import click
import yaml
from sqlalchemy import select

from pipeline.config import Settings
from pipeline.db import marks, schema
from pipeline.db.engine import Database
from pipeline.demo.finance import (
    INVOICE_FILE,
    INVOICE_ID,
    RATES_FILE,
    FinanceLoaded,
    load_finance,
)
from pipeline.demo.report import print_results
from pipeline.dispatch.dispatcher import dispatch_once
from pipeline.ingest.captured import read_captured_requests
from pipeline.ingest.server import build_ingest_app
from pipeline.projector.runner import run_project
from pipeline.sandbox.config import SandboxConfig
from pipeline.sandbox.runner import running_sandbox
from pipeline.serving import running_app

DATA = Path(__file__).resolve().parent / "data"
DEFAULT_DATABASE = Path("var/demo.db")
#: Where ``demo --serve`` and the printed hint put the dashboard (``dashboard.port``).
DASHBOARD_PORT = 8090

#: Demo-only credentials, set in this process's environment and nowhere else.
PARTNER_TOKEN = "demo-partner-token-0c5e"
GATEWAY_SECRET = "demo-mts-gateway-secret"
ENV = {"SMSRECON_DEMO_PARTNER_TOKEN": PARTNER_TOKEN, "SMSRECON_DEMO_MTS_SECRET": GATEWAY_SECRET}


def demo_settings(database_url: str, sandbox_url: str) -> Settings:
    return Settings.model_validate(
        {
            "database": {"url": database_url},
            "ingest": {"host": "127.0.0.1", "port": 0},
            "carriers": {
                # Rate cards (what each carrier charges us per part) are made-up demo
                # figures; mts's invoice layout is that of data/mts-invoice-2026-01.csv.
                "mts": {
                    "format": "kannel",
                    "auth": {"type": "token", "secret_env": "SMSRECON_DEMO_MTS_SECRET"},
                    "timezone": "Europe/Moscow",
                    "rates": [{"prefix": "+7", "price_per_part": "1.05", "currency": "RUB"}],
                    "tolerance": {"abs": "0.01"},
                    "invoice": {
                        "columns": {"invoice_id": "Счёт", "carrier_message_id": "SMSC ID",
                                    "billed_at": "Отправлено", "destination": "Абонент",
                                    "parts": "Частей", "cost": "Сумма, руб."},
                        "delimiter": ";",
                        "decimal_separator": ",",
                        "date_format": "%d.%m.%Y %H:%M:%S",
                        "timezone": "Europe/Moscow",
                        "currency": "RUB",
                    },
                },
                "jasmin": {
                    "format": "jasmin",
                    "timezone": "UTC",
                    "rates": [{"prefix": "+7", "price_per_part": "0.98", "currency": "RUB"}],
                },
                "infobip": {
                    "format": "infobip",
                    "rates": [
                        {"prefix": "+41", "price_per_part": "0.01", "currency": "EUR"},
                        {"prefix": "+33", "price_per_part": "0.045", "currency": "EUR"},
                    ],
                },
                "vonage": {
                    "format": "vonage",
                    "rates": [{"prefix": "+44", "price_per_part": "0.0333", "currency": "EUR"}],
                },
                "twilio": {
                    "format": "twilio",
                    "rates": [{"prefix": "+1", "price_per_part": "0.0055", "currency": "USD"}],
                },
            },
            "billing": {
                "tariffs": [
                    {"prefix": "+7", "price_per_part": "2.45", "currency": "RUB"},
                    {"prefix": "+7", "dispatch_type": "adds", "price_per_part": "3.10",
                     "currency": "RUB"},
                    {"prefix": "+44", "price_per_part": "0.045", "currency": "GBP"},
                    {"prefix": "+41", "price_per_part": "0.09", "currency": "CHF"},
                    {"prefix": "+1", "price_per_part": "0.0079", "currency": "USD"},
                ]
            },
            "altegio": {
                "base_url": sandbox_url,
                "allowed_hosts": [],
                "insecure_hosts": ["127.0.0.1"],
                "partners": {"default": {"token_env": "SMSRECON_DEMO_PARTNER_TOKEN"}},
            },
        }
    )  # fmt: skip


#: The first line of every settings file the demo writes: how it knows the file is its own.
CONFIG_HEADER = "# Written by `smsrecon demo`: the settings its database was built with.\n"


class DemoRefused(Exception):
    """The demo would delete or overwrite something it did not create; nothing was touched."""


def write_config(settings: Settings, path: Path) -> None:
    """Keep the demo's settings beside its database, so that follow-up commands
    (``explain``, ``events tail``, ``dispatch``) see the same carriers and tariffs."""
    document = settings.model_dump(mode="json", exclude={"source_file"})
    path.write_text(CONFIG_HEADER + yaml.safe_dump(document, sort_keys=False), encoding="utf-8")


def check_config_is_ours(path: Path) -> None:
    """Refuse to overwrite a settings file the demo did not write (its first line says)."""
    if not path.exists():
        return
    with path.open("rb") as file:
        first = file.readline()
    if first != CONFIG_HEADER.encode("utf-8"):
        raise DemoRefused(
            f"{path} exists and was not written by `smsrecon demo`: left untouched "
            "(give --database a path whose .yaml is free)"
        )


def check_file_is_ours(path: Path) -> None:
    """Refuse to delete an existing file that is not a demo database (its header says)."""
    if not path.exists() or (path.is_file() and path.stat().st_size == 0):
        return
    if not path.is_file() or not marks.sqlite_file_is_demo(path):
        raise DemoRefused(
            f"{path} exists and is not a demo database: left untouched (give --database a new file)"
        )


def check_database_is_ours(database: Database) -> None:
    """Refuse a database that holds data and is not marked as the demo's."""
    if not marks.is_demo(database.engine) and marks.holds_data(database.engine):
        raise DemoRefused(
            "the database at --url holds data and is not a demo database: left untouched "
            "(give --url an empty database)"
        )


def fresh_sqlite(path: Path) -> Database:
    """The demo starts from an empty database file of its own, marked as the demo's, and
    deletes only a file that carries that mark (``check_file_is_ours``)."""
    check_file_is_ours(path)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    marks.create_demo_sqlite(path)
    database = Database.from_url(f"sqlite:///{path}")
    schema.upgrade(database.engine)
    return database


@dataclass
class Sent:
    requests: int = 0
    appended: int = 0
    duplicates: int = 0


async def _post_json(http: aiohttp.ClientSession, url: str, body: Any, sent: Sent) -> None:
    async with http.post(url, json=body) as response:
        answer = await response.json()
        if response.status != 200:
            raise click.ClickException(f"{url} answered {response.status}: {answer}")
    sent.requests += 1
    sent.appended += answer["appended"]
    sent.duplicates += answer["duplicates"]


async def send_traffic(ingest_url: str, database: Database) -> tuple[Sent, Sent]:
    """Altegio's send requests, then the gateways' delivery reports, over HTTP."""
    ours, reports = Sent(), Sent()
    async with aiohttp.ClientSession() as http:
        for route, name in (("messages", "messages"), ("submissions", "submissions"),
                            ("refusals", "refusals")):  # fmt: skip
            body = json.loads((DATA / f"{name}.json").read_text(encoding="utf-8"))
            await _post_json(http, f"{ingest_url}/v1/{route}", body, ours)
        captured = read_captured_requests((DATA / "dlr_requests.txt").read_text("utf-8"))
        before = _event_count(database)
        for request in captured:
            url = f"{ingest_url}{request.path}"
            async with http.request(
                request.method, url, params=request.query, data=request.body or None,
                headers={k: v for k, v in request.headers.items() if k != "host"},
            ) as response:  # fmt: skip
                text = await response.text()
                if response.status != 200:
                    raise click.ClickException(f"{request.path} answered {response.status}: {text}")
            reports.requests += 1
        reports.appended = _event_count(database) - before
        reports.duplicates = reports.requests - reports.appended
    return ours, reports


def _event_count(database: Database) -> int:
    from sqlalchemy import func

    from pipeline.db.tables import events

    with database.read() as conn:
        return int(conn.scalar(select(func.count()).select_from(events)) or 0)


async def _run(database: Database, database_url: str, config_path: Path) -> None:
    config = SandboxConfig(tokens=(PARTNER_TOKEN,))
    async with running_sandbox(config) as sandbox_url:
        settings = demo_settings(database_url, sandbox_url)
        write_config(settings, config_path)
        click.echo(f"Altegio sandbox listening on {sandbox_url}")
        async with running_app(build_ingest_app(settings, database)) as ingest_url:
            click.echo(f"ingest server listening on {ingest_url}\n")
            ours, reports = await send_traffic(ingest_url, database)
        click.echo(
            f"1. Altegio's send requests: {ours.requests} requests to /v1/messages, "
            f"/v1/submissions, /v1/refusals -> {ours.appended} events"
        )
        click.echo(
            f"2. Delivery reports from Kannel, Jasmin, Infobip, Vonage and Twilio: "
            f"{reports.requests} requests -> {reports.appended} events "
            f"({reports.duplicates} resent report stored once)"
        )
        finance = await asyncio.to_thread(load_finance, database, settings)
        click.echo(
            f"3. Exchange rates to EUR ({RATES_FILE.name}, as `fx import`): appended "
            f"{finance.rates.appended}, duplicates {finance.rates.duplicates}"
        )
        click.echo(
            f"4. Carrier invoice {INVOICE_ID} from mts ({INVOICE_FILE.name}, as `reconcile "
            f"import-invoice` and `close-invoice`): {_invoice_line(finance)}"
        )
        summary = await asyncio.to_thread(run_project, database, settings)
        click.echo(f"5. Projector: {summary.line() if summary else 'another projector is active'}")
        dispatched = await asyncio.to_thread(dispatch_once, database, settings, until_idle=True)
        click.echo(f"6. Dispatcher: {dispatched.line()}")
        async with (
            aiohttp.ClientSession() as http,
            http.get(f"{sandbox_url}/_sandbox/received") as response,
        ):
            received = await response.json()
        click.echo(
            f"7. Altegio (sandbox) accepted {received['count']} status objects in "
            f"{received['stats']['requests']} requests"
        )
        # Altegio's acknowledgements are events too: revenue (and so margin) is what Altegio
        # acknowledged, so the projector folds them before finance's figures are read.
        summary = await asyncio.to_thread(run_project, database, settings)
        click.echo(
            f"8. Projector again (Altegio's acknowledgements: revenue and margins): "
            f"{summary.line() if summary else 'another projector is active'}\n"
        )
        print_results(database, received["items"])


def _invoice_line(finance: FinanceLoaded) -> str:
    imported = finance.invoice
    if imported is None:
        read = f"version {finance.version} already imported"
    else:
        read = (
            f"version {finance.version}: read {imported.read}, appended {imported.appended}, "
            f"quarantined {imported.quarantined}"
        )
    return read + (", closed" if finance.closed else ", already closed")


def run_demo(path: Path = DEFAULT_DATABASE, database_url: str | None = None) -> None:
    """Run the demo; DemoRefused (before anything is touched) when ``path``, its ``.yaml``
    or the database at ``database_url`` holds something the demo did not create."""
    config_path = path.with_suffix(".yaml")
    if database_url is None:
        check_file_is_ours(path)
        check_config_is_ours(config_path)
        path.parent.mkdir(parents=True, exist_ok=True)
        database = fresh_sqlite(path)
        database_url = f"sqlite:///{path}"
        click.echo(f"demo database: {path} (created afresh)")
    else:
        database = Database.from_url(database_url)
        try:
            check_database_is_ours(database)
            check_config_is_ours(config_path)
            schema.upgrade(database.engine)
            marks.mark_demo(database.engine)
        except BaseException:
            database.dispose()
            raise
        click.echo("demo database: the given URL")
    os.environ.update(ENV)
    config_path.parent.mkdir(parents=True, exist_ok=True)
    try:
        asyncio.run(_run(database, database_url, config_path))
    finally:
        database.dispose()
    command = f"{smsrecon_command()} --config {shlex.quote(str(config_path))}"
    click.echo(
        f"\nNext: `{command} explain 232681` shows the audit trail of one message;"
        f" `{command} events tail --after 0` the raw log."
    )
    click.echo(dashboard_hint(config_path))


def dashboard_hint(config_path: Path, port: int = DASHBOARD_PORT) -> str:
    """Where the demo's dashboard is, and the command that serves it."""
    return (
        f"\nDashboard for this database: http://127.0.0.1:{port}/dashboard/ once served by\n"
        f"  {smsrecon_command()} --config {shlex.quote(str(config_path))} dashboard --port {port}\n"
        f"(or run `{smsrecon_command()} demo --serve`, which keeps it up until Ctrl-C)."
    )


def smsrecon_command() -> str:
    """How to run this installation's ``smsrecon`` from the current directory.

    ``make demo`` installs into ``.venv`` without activating it, so a bare ``smsrecon`` is
    usually not on PATH: the follow-ups name the script beside this interpreter
    (``.venv/bin/smsrecon``), or ``python -m pipeline`` when there is no script.
    """
    script = Path(sys.executable).parent / "smsrecon"
    if not script.exists():
        return f"{shlex.quote(sys.executable)} -m pipeline"
    on_path = shutil.which("smsrecon")
    if on_path and Path(on_path).resolve() == script.resolve():
        return "smsrecon"
    try:
        return shlex.quote(str(script.absolute().relative_to(Path.cwd())))
    except ValueError:
        return shlex.quote(str(script))
