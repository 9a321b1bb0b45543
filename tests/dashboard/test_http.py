"""The dashboard over HTTP, without a browser: sign-in, where it may listen, an empty or
unmigrated database, bad filters, ``smsrecon run`` serving it, and no token on any page.
Real servers on 127.0.0.1 over real databases on both engines.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from pipeline.config import Settings
from pipeline.dashboard.app import mount, standalone_app
from pipeline.db import schema
from pipeline.db.engine import Database
from pipeline.eventlog import append
from pipeline.ingest.server import build_ingest_app
from pipeline.projector.runner import run_project
from pipeline.serving import running_app
from tests.dashboard.conftest import StartFailed, start_dashboard, stop, write_config
from tests.projector.events import accepted, report, submitted

SECRET = "dashboard-secret-7f3a91"
PARTNER_TOKEN = "partner-token-b41c77e2"
PAGES = ("", "margin", "disputes", "invoices", "downloads")


def settings(url: str, **dashboard: Any) -> Settings:
    return Settings.model_validate(
        {"database": {"url": url}, "dashboard": {"cache_seconds": 0, **dashboard}}
    )


async def fetch(url: str, **kwargs: Any) -> tuple[int, str, Any]:
    async with aiohttp.ClientSession() as http, http.get(url, **kwargs) as response:
        return response.status, await response.text(), response


async def test_an_empty_database_shows_empty_pages(db: Database, db_url: str) -> None:
    async with running_app(standalone_app(settings(db_url), db)) as url:
        for page in PAGES:
            status, body, _ = await fetch(f"{url}/dashboard/{page}")
            assert status == 200, (page, body)
            assert "Traceback" not in body
        _, body, _ = await fetch(f"{url}/dashboard/")
        assert "No messages in this period." in body
        status, body, _ = await fetch(f"{url}/dashboard/message/nobody")
        assert status == 404 and "knows nothing of message" in body
        status, body, response = await fetch(f"{url}/dashboard/download/billing.csv")
        assert status == 200 and body.startswith("day,partner,currency_iso,")
        status, _, response = await fetch(f"{url}/", allow_redirects=False)
        assert status == 302 and response.headers["Location"] == "/dashboard/"
        status, _, response = await fetch(f"{url}/dashboard?period=day", allow_redirects=False)
        assert status == 302 and response.headers["Location"] == "/dashboard/?period=day"


async def test_a_database_without_the_schema_is_a_503_page_that_says_so(
    empty_db_url: str,
) -> None:
    database = Database.from_url(empty_db_url)
    try:
        async with running_app(standalone_app(settings(empty_db_url), database)) as url:
            for page in (*PAGES, "message/a1", "download/billing.csv"):
                status, body, response = await fetch(f"{url}/dashboard/{page}")
                assert status == 503, page
                assert "no smsrecon schema yet" in body and "smsrecon db upgrade" in body
                assert response.headers["Retry-After"]
            # Migrated meanwhile: the same server answers.
            schema.upgrade(database.engine)
            status, _, _ = await fetch(f"{url}/dashboard/")
            assert status == 200
    finally:
        database.dispose()


async def test_a_database_being_migrated_is_a_503_page_that_says_so(
    db: Database, db_url: str
) -> None:
    schema.downgrade(db.engine, "0009_report_runs")
    async with running_app(standalone_app(settings(db_url), db)) as url:
        status, body, _ = await fetch(f"{url}/dashboard/margin")
        assert status == 503
        assert "being migrated or needs migrating" in body and "0009_report_runs" in body


async def test_a_bad_filter_is_a_400_page(db: Database, db_url: str) -> None:
    async with running_app(standalone_app(settings(db_url), db)) as url:
        for query, words in (("period=year", "period: one of"),
                             ("date=2026-13-01", "not a day"),
                             ("currency=rub", "three capital letters"),
                             ("period=custom&from=2026-10-05&to=2026-10-01", "must not be before"),
                             ("period=custom&from=2026-10-05", "needs from and to")):  # fmt: skip
            status, body, _ = await fetch(f"{url}/dashboard/?{query}")
            assert status == 400 and words in body, (query, body)


async def test_basic_auth(db: Database, db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMSRECON_TEST_DASHBOARD_SECRET", SECRET)
    conf = settings(db_url, auth={"type": "basic", "secret_env": "SMSRECON_TEST_DASHBOARD_SECRET"})
    good = "Basic " + base64.b64encode(f"finance:{SECRET}".encode()).decode()
    bad = "Basic " + base64.b64encode(b"finance:guess-guess").decode()
    async with running_app(standalone_app(conf, db)) as url:
        status, body, response = await fetch(f"{url}/dashboard/")
        assert status == 401 and response.headers["WWW-Authenticate"].startswith("Basic")
        for path in ("margin", "static/dashboard.js", "download/billing.csv"):
            assert (await fetch(f"{url}/dashboard/{path}"))[0] == 401
        assert (await fetch(f"{url}/dashboard/", headers={"Authorization": bad}))[0] == 401
        status, body, _ = await fetch(f"{url}/dashboard/", headers={"Authorization": good})
        assert status == 200 and SECRET not in body


async def test_token_auth_sets_a_cookie_and_drops_the_token_from_the_address(
    db: Database, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SMSRECON_TEST_DASHBOARD_SECRET", SECRET)
    conf = settings(db_url, auth={"type": "token", "secret_env": "SMSRECON_TEST_DASHBOARD_SECRET"})
    async with running_app(standalone_app(conf, db)) as url:
        assert (await fetch(f"{url}/dashboard/margin"))[0] == 401
        assert (await fetch(f"{url}/dashboard/margin?token=wrong-token-1"))[0] == 401
        bearer = {"Authorization": f"Bearer {SECRET}"}
        assert (await fetch(f"{url}/dashboard/margin", headers=bearer))[0] == 200
        # unsafe: keep cookies for an IP address (127.0.0.1), as a browser does.
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
            async with http.get(
                f"{url}/dashboard/margin?period=day&token={SECRET}", allow_redirects=False
            ) as response:
                assert response.status == 303
                assert response.headers["Location"] == "/dashboard/margin?period=day"
                cookie = response.cookies["smsrecon_dashboard"]
                assert SECRET not in cookie.value and cookie["httponly"]
            async with http.get(f"{url}/dashboard/margin?period=day") as response:
                assert response.status == 200
                assert SECRET not in await response.text()


def test_without_auth_it_refuses_a_non_loopback_address(db_url: str, tmp_path: Path) -> None:
    config = write_config(tmp_path)
    with pytest.raises(StartFailed) as failed:
        process, _url = start_dashboard(config, db_url, "--host", "0.0.0.0")
        stop(process)
    assert failed.value.code == 2
    assert "refusing to serve the dashboard on 0.0.0.0: dashboard.auth is type none" in (
        failed.value.output
    )


def test_with_auth_it_listens_anywhere_and_the_secret_stays_out_of_its_output(
    db_url: str, tmp_path: Path
) -> None:
    extra = "  auth: {type: basic, secret_env: SMSRECON_TEST_DASHBOARD_SECRET}\n"
    config = write_config(tmp_path, extra)
    process, url = start_dashboard(
        config, db_url, "--host", "0.0.0.0",
        env={"SMSRECON_TEST_DASHBOARD_SECRET": SECRET},
    )  # fmt: skip
    stop(process)
    assert url.startswith("http://0.0.0.0:")


async def test_run_serves_the_dashboard_beside_ingest(db: Database, db_url: str) -> None:
    conf = settings(db_url)
    app = build_ingest_app(conf, db)
    mount(app, conf, db)
    async with running_app(app) as url:
        status, body, _ = await fetch(f"{url}/dashboard/disputes")
        assert status == 200 and "Open disputes" in body
        status, _, _ = await fetch(f"{url}/dashboard/static/vendor/uplot/uPlot.iife.min.js")
        assert status == 200
        assert (await fetch(f"{url}/healthz"))[0] == 200


async def test_no_partner_token_on_the_message_page(
    db: Database, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SMSRECON_TEST_PARTNER_TOKEN", PARTNER_TOKEN)
    callback = f"https://app.alteg.io/smsprovider/status/callback/{PARTNER_TOKEN}"
    append(db, [
        accepted("t1", delivery_callback_url=callback, note=f"token {PARTNER_TOKEN} inside"),
        submitted("t1", "ct1"), report("ct1", 1, 3),
    ])  # fmt: skip
    conf = Settings.model_validate({
        "database": {"url": db_url},
        "altegio": {"partners": {"default": {"token_env": "SMSRECON_TEST_PARTNER_TOKEN"}}},
    })  # fmt: skip
    run_project(db, conf)
    async with running_app(standalone_app(conf, db)) as url:
        status, body, _ = await fetch(f"{url}/dashboard/message/t1")
        assert status == 200
        assert "callback/***" in body
        assert PARTNER_TOKEN not in body


async def test_an_address_allow_list_keeps_others_out(db: Database, db_url: str) -> None:
    outside = settings(db_url, auth={"type": "ip", "allow_ips": ["10.0.0.0/8"]})
    inside = settings(db_url, auth={"type": "ip", "allow_ips": ["127.0.0.0/8"]})
    async with running_app(standalone_app(outside, db)) as url:
        assert (await fetch(f"{url}/dashboard/"))[0] == 403
    async with running_app(standalone_app(inside, db)) as url:
        assert (await fetch(f"{url}/dashboard/"))[0] == 200
