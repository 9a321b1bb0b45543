"""Per-carrier authentication on the DLR webhook: good, wrong and missing credentials."""

from __future__ import annotations

import base64
import json
import time

import pytest

from pipeline.db.engine import Database
from pipeline.ingest.signing import signed_headers
from tests.ingest.server_fixtures import event_count, live_server, make_settings, quarantine_rows

SECRET = "s3cret-Value"
REPORT = {"carrier_message_id": "id1", "status": "DELIVRD"}


def carriers(auth_type: str) -> dict[str, object]:
    return {
        "acme": {
            "format": "generic",
            "auth": {"type": auth_type, "secret_env": "SMSRECON_TEST_ACME_SECRET"},
        }
    }


@pytest.fixture(autouse=True)
def _secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMSRECON_TEST_ACME_SECRET", SECRET)


def _basic(password: str) -> str:
    return "Basic " + base64.b64encode(f"kannel:{password}".encode()).decode()


async def test_token_in_query_or_header(db: Database) -> None:
    async with live_server(make_settings(carriers("token")), db) as client:
        by_query = await client.post("/v1/dlr/acme", params={"token": SECRET}, json=REPORT)
        by_header = await client.post(
            "/v1/dlr/acme", headers={"X-Smsrecon-Token": SECRET}, json={**REPORT, "part": 2}
        )
        wrong = await client.post("/v1/dlr/acme", params={"token": "nope"}, json=REPORT)
        missing = await client.post("/v1/dlr/acme", json=REPORT)
        metrics = await (await client.get("/metrics")).text()
        assert (await wrong.json())["detail"] == {"reason": "wrong token"}
        assert SECRET not in await missing.text()
    assert [r.status for r in (by_query, by_header, wrong, missing)] == [200, 200, 401, 401]
    assert 'smsrecon_ingest_auth_failures_total{carrier="acme"} 2.0' in metrics
    assert event_count(db) == 2
    assert quarantine_rows(db) == []


async def test_basic_password_is_the_secret(db: Database) -> None:
    async with live_server(make_settings(carriers("basic")), db) as client:
        good = await client.post(
            "/v1/dlr/acme", headers={"Authorization": _basic(SECRET)}, json=REPORT
        )
        wrong = await client.post(
            "/v1/dlr/acme", headers={"Authorization": _basic("x")}, json=REPORT
        )
        missing = await client.post("/v1/dlr/acme", json=REPORT)
    assert [r.status for r in (good, wrong, missing)] == [200, 401, 401]
    assert event_count(db) == 1


async def test_hmac_signs_the_raw_body(db: Database) -> None:
    body = json.dumps(REPORT).encode()
    signature = signed_headers(
        SECRET, method="POST", path="/v1/dlr/acme", body=body, timestamp=int(time.time())
    )
    async with live_server(make_settings(carriers("hmac")), db) as client:
        good = await client.post("/v1/dlr/acme", data=body, headers=signature)
        tampered = await client.post(
            "/v1/dlr/acme", data=body.replace(b"DELIVRD", b"UNDELIV"), headers=signature
        )
        missing = await client.post("/v1/dlr/acme", data=body)
    assert [r.status for r in (good, tampered, missing)] == [200, 401, 401]
    assert event_count(db) == 1


async def test_credentials_never_reach_quarantine_or_events(db: Database) -> None:
    async with live_server(make_settings(carriers("token")), db) as client:
        bad = await client.get(
            "/v1/dlr/acme",
            params={"token": SECRET, "status": "NOPE", "message_id": "1"},
            headers={"X-Smsrecon-Token": SECRET, "Cookie": "a=b"},
        )
        good = await client.get(
            "/v1/dlr/acme", params={"token": SECRET, "status": "DELIVRD", "message_id": "1"}
        )
    assert (bad.status, good.status) == (400, 200)
    [row] = quarantine_rows(db)
    assert row.query == [["status", "NOPE"], ["message_id", "1"]]
    assert "x-smsrecon-token" not in row.headers and "cookie" not in row.headers
    from tests.ingest.server_fixtures import stored_events

    [event] = stored_events(db)
    assert SECRET not in json.dumps(event.payload)


async def test_missing_secret_fails_at_build_time_naming_the_key(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pipeline.config import ConfigError
    from pipeline.ingest.server import build_ingest_app

    monkeypatch.delenv("SMSRECON_TEST_ACME_SECRET")
    with pytest.raises(ConfigError, match=r"carriers\.acme\.auth\.secret_env"):
        build_ingest_app(make_settings(carriers("token")), db)


TWILIO_FORM = (
    "AccountSid=ACxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx&ApiVersion=2010-04-01&From=%2B15017250604"
    "&MessageSid=SM1342fe1b2c904d1ab04f0fc7a58abca9&MessageStatus=delivered"
    "&RawDlrDoneDate=2401151031&SmsSid=SM1342fe1b2c904d1ab04f0fc7a58abca9&SmsStatus=delivered"
    "&To=%2B15558675310"
)


async def test_twilio_signature_over_url_and_form(db: Database) -> None:
    from urllib.parse import parse_qsl

    from pipeline.ingest.adapters.twilio import twilio_signature

    settings = make_settings(
        {
            "tw": {
                "format": "twilio",
                "auth": {"type": "twilio", "secret_env": "SMSRECON_TEST_ACME_SECRET"},
            }
        }
    )
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    async with live_server(settings, db) as client:
        url = str(client.make_url("/v1/dlr/tw"))
        signature = twilio_signature(url, parse_qsl(TWILIO_FORM), SECRET)
        good = await client.post(
            "/v1/dlr/tw", data=TWILIO_FORM, headers={**form, "X-Twilio-Signature": signature}
        )
        forged = await client.post(
            "/v1/dlr/tw",
            data=TWILIO_FORM.replace("delivered", "failed"),
            headers={**form, "X-Twilio-Signature": signature},
        )
        missing = await client.post("/v1/dlr/tw", data=TWILIO_FORM, headers=form)
    assert [r.status for r in (good, forged, missing)] == [200, 401, 401]
    assert event_count(db) == 1
