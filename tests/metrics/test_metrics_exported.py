"""Every stage's metrics on the live /metrics, with the database's values, on both engines."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from pipeline.config import Settings
from pipeline.db.engine import Database
from pipeline.dispatch.circuits import upsert_open
from pipeline.eventlog.append import append
from pipeline.eventlog.model import utc_now
from pipeline.mismatches.table import mismatches
from pipeline.projector.runner import run_project
from tests.health.helpers import waiting_delivery
from tests.ingest.server_fixtures import live_server
from tests.metrics.scrape import exported_names, sample, scrape
from tests.projector.events import accepted

#: The metrics the operations issue asks for, by the name a query uses.
REQUIRED = (
    "smsrecon_events_appended_total",
    "smsrecon_projector_lag_events",
    "smsrecon_projector_lag_seconds",
    "smsrecon_projector_batch_seconds_bucket",
    "smsrecon_projector_last_success_timestamp",
    "smsrecon_dispatch_attempts_total",
    "smsrecon_dispatch_latency_seconds_bucket",
    "smsrecon_deliveries",
    "smsrecon_partner_circuit_open",
    "smsrecon_mismatches_open",
    "smsrecon_mismatches_at_stake",
    "smsrecon_quarantine_entries",
    "smsrecon_scheduler_job_runs_total",
    "smsrecon_scheduler_job_missed_total",
    "smsrecon_healthy",
    "smsrecon_health_reason",
    "smsrecon_metrics_database_up",
)


def settings() -> Settings:
    return Settings.model_validate(
        {"altegio": {"partners": {"acme": {"token_env": "X"}, "beta": {"token_env": "Y"}}}}
    )


async def test_every_stage_metric_is_exported(db: Database) -> None:
    async with live_server(settings(), db) as client:
        names = exported_names(await scrape(client))
    assert [name for name in REQUIRED if name not in names] == []


async def test_database_gauges_read_the_database(db: Database) -> None:
    now = utc_now()
    append(db, [accepted("m1"), accepted("m2")])
    run_project(db, settings())  # also records the price tables: all before the baseline
    waiting_delivery(db, "m1", since=now - timedelta(minutes=3))
    with db.write() as conn:
        upsert_open(
            conn,
            partner="acme",
            reason="partner_token_invalid",
            probe_at=now + timedelta(minutes=10),
            status=401,
            error="401",
            now=now,
        )
        for n, (amount, currency) in enumerate([("12.50", "EUR"), ("0.25", "EUR"), ("7", "RUB")]):
            conn.execute(
                mismatches.insert().values(
                    message_id=f"m{n}",
                    subject=f"m{n}",
                    kind="carrier_overcharge",
                    origin="invoice",
                    detail={},
                    status="open",
                    opened_at=now,
                    amount_at_stake=Decimal(amount),
                    amount_currency=currency,
                    amount_at_stake_nano=int(Decimal(amount) * 10**9),
                )
            )
    async with live_server(settings(), db) as client:
        refused = await client.post("/v1/messages", data=b"not json")
        assert refused.status == 400
        first = await scrape(client)
        append(db, [accepted("m3"), accepted("m4")])
        second = await scrape(client)

    assert sample(first, "smsrecon_projector_lag_events") == 0
    assert sample(second, "smsrecon_projector_lag_events") == 2
    assert sample(second, "smsrecon_projector_lag_seconds") > 0
    assert sample(first, "smsrecon_deliveries", state="pending") == 1
    assert sample(first, "smsrecon_deliveries", state="parked") == 0
    assert sample(first, "smsrecon_partner_circuit_open", partner="acme") == 1
    assert sample(first, "smsrecon_partner_circuit_open", partner="beta") == 0
    assert sample(first, "smsrecon_mismatches_open", kind="carrier_overcharge") == 3
    stake = {"kind": "carrier_overcharge"}
    assert sample(first, "smsrecon_mismatches_at_stake", currency="EUR", **stake) == 12.75
    assert sample(first, "smsrecon_mismatches_at_stake", currency="RUB", **stake) == 7
    assert sample(first, "smsrecon_quarantine_entries") == 1
    assert sample(first, "smsrecon_metrics_database_up") == 1
    # Health is judged at scrape time too: the open circuit makes it unwell.
    assert sample(first, "smsrecon_healthy") == 0
    assert sample(first, "smsrecon_health_reason", code="circuit_open") == 1
    # Counted from the first scrape on: the two appended between the scrapes.
    assert sample(first, "smsrecon_events_appended_total", type="message.accepted") is None
    assert sample(second, "smsrecon_events_appended_total", type="message.accepted") == 2


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_an_unreadable_database_leaves_its_gauges_out_and_says_so(db: Database) -> None:
    from pathlib import Path

    async with live_server(settings(), db) as client:
        db.dispose()
        Path(str(db.engine.url.database)).unlink()
        text = await scrape(client)
    assert sample(text, "smsrecon_metrics_database_up") == 0
    assert sample(text, "smsrecon_projector_lag_events") is None
    assert sample(text, "smsrecon_healthy") == 0
