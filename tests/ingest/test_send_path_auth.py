"""The provider's own routes (/v1/messages, /v1/submissions, /v1/refusals) can demand
credentials, like a carrier's webhook; nothing unauthenticated is stored."""

from __future__ import annotations

import json
import time

import pytest

from pipeline.config import Settings
from pipeline.db.engine import Database
from pipeline.ingest.signing import signed_headers
from tests.ingest.server_fixtures import event_count, live_server, quarantine_rows

SECRET = "send-path-secret-5d1e"
MESSAGE = {"id": "m1", "phone": "+79161234567", "text": "Hello"}


def settings(auth_type: str) -> Settings:
    return Settings.model_validate(
        {"ingest": {"auth": {"type": auth_type, "secret_env": "SMSRECON_TEST_SEND_SECRET"}}}
    )


@pytest.fixture(autouse=True)
def secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMSRECON_TEST_SEND_SECRET", SECRET)


async def test_a_token_is_required_and_checked(db: Database) -> None:
    async with live_server(settings("token"), db) as client:
        missing = await client.post("/v1/messages", json=MESSAGE)
        wrong = await client.post("/v1/messages", json=MESSAGE,
                                  headers={"X-Smsrecon-Token": "not-it"})  # fmt: skip
        assert (missing.status, wrong.status) == (401, 401)
        assert event_count(db) == 0 and quarantine_rows(db) == []
        good = await client.post("/v1/messages", json=MESSAGE,
                                 headers={"X-Smsrecon-Token": SECRET})  # fmt: skip
        assert good.status == 200, await good.text()
        metrics = await (await client.get("/metrics")).text()
    assert event_count(db) == 1
    assert "/send-path" in metrics and SECRET not in metrics


async def test_an_hmac_signature_covers_the_body(db: Database) -> None:
    body = json.dumps({"message_id": "m1", "reason": "insufficient_funds"}).encode()
    async with live_server(settings("hmac"), db) as client:
        signature = signed_headers(SECRET, method="POST", path="/v1/refusals", body=body,
                                   timestamp=int(time.time()))  # fmt: skip
        headers = {"Content-Type": "application/json", **signature}
        good = await client.post("/v1/refusals", data=body, headers=headers)
        assert good.status == 200, await good.text()
        tampered = body.replace(b"m1", b"m2")
        bad = await client.post("/v1/refusals", data=tampered, headers=headers)
        assert bad.status == 401
    assert event_count(db) == 1


def test_a_missing_secret_fails_at_startup_naming_the_key(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pipeline.config import ConfigError
    from pipeline.ingest.server import build_ingest_app

    monkeypatch.delenv("SMSRECON_TEST_SEND_SECRET")
    with pytest.raises(ConfigError, match=r"ingest\.auth\.secret_env"):
        build_ingest_app(settings("token"), db)
