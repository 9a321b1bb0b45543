"""``/metrics`` can require credentials (``ingest.metrics_auth``), like any other route."""

from __future__ import annotations

import base64

import pytest

from pipeline.db.engine import Database
from tests.hostile.auth_helpers import server_at
from tests.ingest.server_fixtures import make_settings

SECRET = "scrape-token-5b0e91"
ENV = "SMSRECON_TEST_METRICS_TOKEN"


@pytest.fixture(autouse=True)
def _secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV, SECRET)


async def test_metrics_with_a_token_refuses_a_scrape_without_it(db: Database) -> None:
    settings = make_settings(metrics_auth={"type": "token", "secret_env": ENV})
    async with server_at(settings, db) as client:
        missing = await client.get("/metrics")
        wrong = await client.get("/metrics", headers={"Authorization": "Bearer nope-nope-nope"})
        bearer = await client.get("/metrics", headers={"Authorization": f"Bearer {SECRET}"})
        header = await client.get("/metrics", headers={"X-Smsrecon-Token": SECRET})
        body = await bearer.text()
        healthz = await client.get("/healthz")
    assert [r.status for r in (missing, wrong, bearer, header)] == [401, 401, 200, 200]
    assert 'smsrecon_ingest_auth_failures_total{carrier="/metrics"} 2.0' in body
    assert SECRET not in body
    assert healthz.status == 200  # the health check stays open for load balancers


async def test_metrics_with_basic_auth_and_an_allow_list(db: Database) -> None:
    basic = "Basic " + base64.b64encode(f"prometheus:{SECRET}".encode()).decode()
    settings = make_settings(
        metrics_auth={"type": "basic", "secret_env": ENV, "allow_ips": ["10.0.0.0/8"]}
    )
    async with server_at(settings, db) as client:
        from_outside = await client.get("/metrics", headers={"Authorization": basic})
    settings = make_settings(
        metrics_auth={"type": "basic", "secret_env": ENV, "allow_ips": ["127.0.0.1"]}
    )
    async with server_at(settings, db) as client:
        from_inside = await client.get("/metrics", headers={"Authorization": basic})
    assert (from_outside.status, from_inside.status) == (401, 200)


async def test_metrics_are_open_by_default(db: Database) -> None:
    async with server_at(make_settings(), db) as client:
        response = await client.get("/metrics")
    assert response.status == 200
