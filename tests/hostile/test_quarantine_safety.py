"""The quarantine keeps any refused request safely, without credentials, within its caps.

A NUL (``%00`` in a Kannel parameter) once could not be quarantined on PostgreSQL, and a
lone surrogate or a 4,300-digit integer failed the commit of the good requests beside it.
Such requests are now refused at parse time and kept, byte for byte, on both engines; the
fields events drop as credentials are dropped from what quarantine keeps too; an entry too
large, or one beyond the cap of open entries, is answered 400 but not kept; and a request
refused for its credentials is never kept.
"""

from __future__ import annotations

import asyncio
import gzip
import json

import pytest

from pipeline.db.engine import Database
from pipeline.ingest import quarantine as store
from tests.hostile.ingest_hostile import (
    CARRIERS,
    GENERIC,
    MESSAGE,
    assert_quarantined,
    raw_http,
)
from tests.ingest.server_fixtures import (
    event_count,
    live_server,
    make_settings,
    quarantine_rows,
)

SECRET = "s3cr3t-VALUE-42"


async def test_a_nul_in_a_kannel_parameter_is_quarantined_and_kept_exactly(db: Database) -> None:
    async with live_server(make_settings(CARRIERS), db) as client:
        response = await client.get("/v1/dlr/kannel?message_id=4%002&type=1&answer=ACK%2F")
        answer = await assert_quarantined(response, db)
    entry = store.get(db, answer["quarantine_id"])
    assert entry is not None
    assert ("message_id", "4\x002") in entry.request.query
    assert event_count(db) == 0


async def test_a_nul_or_non_utf8_byte_in_a_body_is_kept_byte_for_byte(db: Database) -> None:
    bodies = [b"id=j-1&level=2&message_status=DELIVRD&text=a\x00b", b"id=j-1&level=\xff\xfe"]
    async with live_server(make_settings(CARRIERS), db) as client:
        ids = []
        for body in bodies:
            response = await client.post(
                "/v1/dlr/jasmin",
                data=body,
                headers={"Content-Type": "application/x-www-form-urlencoded"},
            )
            ids.append((await assert_quarantined(response, db))["quarantine_id"])
    assert [store.get(db, i).request.body for i in ids] == bodies  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "body",
    [
        '{"id": "m-1", "phone": "79161234567", "text": "\\ud800"}',
        '{"id": "m-1", "phone": "79161234567", "text": "a\\u0000b"}',
        '{"id": "m-1", "phone": "79161234567", "\\udfff": 1}',
        "[" * 5000 + "]" * 5000,
        "[" * 17 + "]" * 17,
        '{"id": "m-1", "phone": "79161234567", "text": "x", "parts": NaN}',
    ],
    ids=["surrogate", "nul", "surrogate-key", "nested-5000", "nested-17", "nan"],
)
async def test_unstorable_or_deep_json_is_refused_at_parse_time(db: Database, body: str) -> None:
    async with live_server(make_settings(CARRIERS), db) as client:
        response = await client.post("/v1/messages", data=body)
        answer = await assert_quarantined(response, db)
        generic = await client.post("/v1/dlr/generic", data=body)
        await assert_quarantined(generic, db)
    entry = store.get(db, answer["quarantine_id"])
    assert entry is not None and entry.request.body == body.encode()
    assert event_count(db) == 0


async def test_good_requests_beside_unstorable_ones_are_all_stored(db: Database) -> None:
    bad = [
        '{"id": "bad-1", "phone": "79161234567", "text": "\\ud800"}',
        '{"id": "bad-2", "phone": "79161234567", "text": "a\\u0000b"}',
        '{"id": "bad-3", "phone": "79161234567", "parts": ' + "7" * 4400 + "}",
    ]
    async with live_server(make_settings(CARRIERS, commit_interval_ms=20), db) as client:
        goods = [
            client.post("/v1/messages", json={**MESSAGE, "id": f"good-{n}"}) for n in range(60)
        ]
        bads = [client.post("/v1/messages", data=body) for body in bad]
        responses = await asyncio.gather(*goods[:30], *bads, *goods[30:])
        statuses = [response.status for response in responses]
    assert statuses == [200] * 30 + [400] * 3 + [200] * 30
    assert event_count(db) == 60
    assert len(quarantine_rows(db)) == 3


async def test_a_header_that_is_not_utf8_is_kept_and_read_back(db: Database) -> None:
    async with live_server(make_settings(CARRIERS), db) as client:
        port = client.server.port
        assert port is not None
        status, body = await raw_http(
            port,
            b"POST /v1/messages HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"X-Trace: caf\xe9\xff",
            b"{}",
        )
    assert status == 400
    entry = store.get(db, json.loads(body)["quarantine_id"])
    assert entry is not None
    assert entry.request.headers["x-trace"].encode("utf-8", "surrogateescape") == b"caf\xe9\xff"


async def test_an_auth_header_that_is_not_utf8_is_refused_401_not_500(db: Database) -> None:
    carriers = {"secured": {"format": "generic", "auth": {"type": "basic", "secret_env": "K"}}}
    settings = make_settings(carriers, auth={"type": "token", "secret_env": "K"})
    settings = settings.model_copy(update={"environ": {"K": SECRET}})
    async with _server_with_secret(settings, db) as client:
        port = client.server.port
        assert port is not None
        for head in (
            b"POST /v1/messages HTTP/1.1\r\nHost: x\r\nX-Smsrecon-Token: \xff\xfe",
            b"POST /v1/dlr/secured HTTP/1.1\r\nHost: x\r\nAuthorization: Basic \xff\xfe",
        ):
            status, _ = await raw_http(port, head, b"{}")
            assert status == 401
    assert quarantine_rows(db) == []


def _server_with_secret(settings, db):  # type: ignore[no-untyped-def]
    import os
    from contextlib import asynccontextmanager

    @asynccontextmanager
    async def serve():  # type: ignore[no-untyped-def]
        previous = os.environ.get("K")
        os.environ["K"] = SECRET
        try:
            async with live_server(settings, db) as client:
                yield client
        finally:
            if previous is None:
                os.environ.pop("K", None)
            else:
                os.environ["K"] = previous

    return serve()


async def test_a_request_refused_for_its_credentials_is_not_kept(db: Database) -> None:
    carriers = {"secured": {"format": "generic", "auth": {"type": "token", "secret_env": "K"}}}
    async with _server_with_secret(make_settings(carriers), db) as client:
        wrong = await client.post("/v1/dlr/secured?token=wrong", data="not json at all")
        missing = await client.post("/v1/dlr/secured", data="not json at all")
        assert (wrong.status, missing.status) == (401, 401)
        right = await client.post(f"/v1/dlr/secured?token={SECRET}", data="not json at all")
        await assert_quarantined(right, db)
    [row] = quarantine_rows(db)
    assert SECRET not in repr(tuple(row))


async def test_quarantine_drops_the_credential_fields_events_drop(db: Database) -> None:
    async with live_server(make_settings(CARRIERS), db) as client:
        vonage_get = await client.get(
            "/v1/dlr/vonage",
            params={"messageId": "v-1", "status": "bogus", "api-key": SECRET, "sig": SECRET},
            headers={"X-Api-Key": SECRET},
        )
        await assert_quarantined(vonage_get, db)
        vonage_json = await client.post(
            "/v1/dlr/vonage",
            json={"messageId": "v-1", "status": "bogus", "api-key": SECRET, "sig": SECRET},
        )
        await assert_quarantined(vonage_json, db)
        form = await client.post(
            "/v1/dlr/jasmin", data={"id": "j-1", "level": "9", "password": SECRET, "Token": SECRET}
        )
        await assert_quarantined(form, db)
        broken_json = await client.post(
            "/v1/dlr/generic", data='{"api_key": "' + SECRET + '", "status": '
        )
        await assert_quarantined(broken_json, db)
    rows = quarantine_rows(db)
    assert len(rows) == 4
    for row in rows:
        assert SECRET not in repr(tuple(row))
    vonage = store.get(db, rows[0].id)
    assert vonage is not None
    assert [name for name, _ in vonage.request.query] == ["messageId", "status"]
    assert "x-api-key" not in vonage.request.headers


async def test_an_entry_over_the_size_cap_is_answered_400_and_not_kept(db: Database) -> None:
    settings = make_settings(CARRIERS, quarantine_max_entry_bytes=2048)
    async with live_server(settings, db) as client:
        big = await client.post("/v1/messages", data='{"text": "' + "x" * 4000 + '"')
        assert big.status == 400
        assert (await big.json())["quarantine_id"] is None
        small = await client.post("/v1/messages", data="{")
        await assert_quarantined(small, db)
        metrics = await (await client.get("/metrics")).text()
    assert len(quarantine_rows(db)) == 1
    assert (
        'smsrecon_ingest_quarantine_not_kept_total{reason="too_large",route="/v1/messages"} 1.0'
        in metrics
    )


async def test_a_full_quarantine_still_answers_400_and_keeps_no_more(db: Database) -> None:
    settings = make_settings(CARRIERS, quarantine_max_open_entries=2)
    async with live_server(settings, db) as client:
        answers = []
        for _ in range(4):
            response = await client.post("/v1/dlr/generic", json={**GENERIC, "status": "NOPE"})
            assert response.status == 400
            answers.append((await response.json())["quarantine_id"])
        good = await client.post("/v1/dlr/generic", json=GENERIC)
        assert good.status == 200
        metrics = await (await client.get("/metrics")).text()
    assert [a is not None for a in answers] == [True, True, False, False]
    assert len(quarantine_rows(db)) == 2
    assert 'reason="full",route="/v1/dlr/{carrier}"} 2.0' in metrics


async def test_a_corrupt_gzip_body_is_answered_400_and_quarantined(db: Database) -> None:
    async with live_server(make_settings(CARRIERS), db) as client:
        corrupt = await client.post(
            "/v1/dlr/generic",
            data=b"\x1f\x8b\x08garbage",
            headers={"Content-Encoding": "gzip", "Content-Type": "application/json"},
        )
        answer = await assert_quarantined(corrupt, db)
        honest = await client.post(
            "/v1/dlr/generic",
            data=gzip.compress(json.dumps(GENERIC).encode()),
            headers={"Content-Encoding": "gzip", "Content-Type": "application/json"},
        )
        assert honest.status == 200
    assert answer["error"] == "unreadable body"
    assert event_count(db) == 1


async def test_an_entry_with_a_nul_and_a_surrogate_can_be_shown_and_replayed(
    db: Database, db_url: str, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    from click.testing import CliRunner

    from pipeline.cli.main import cli

    async with live_server(make_settings(CARRIERS), db) as client:
        port = client.server.port
        assert port is not None
        status, body = await raw_http(
            port, b"GET /v1/dlr/kannel?message_id=4%002&type=1 HTTP/1.1\r\nHost: x\r\nX-Trace: \xff"
        )
    assert status == 400
    entry_id = json.loads(body)["quarantine_id"]
    config = tmp_path / "config.yaml"
    config.write_text("carriers:\n  kannel:\n    format: kannel\n")
    base = ["--config", str(config), "--database-url", db_url, "quarantine"]
    shown = CliRunner().invoke(cli, [*base, "show", str(entry_id)], catch_exceptions=False)
    assert shown.exit_code == 0, shown.output
    document = json.loads(shown.output)
    assert ["message_id", "4\x002"] in document["request"]["query"]
    assert document["request"]["headers"]["x-trace"] == "\udcff"
    replayed = CliRunner().invoke(cli, [*base, "replay", str(entry_id)], catch_exceptions=False)
    assert replayed.exit_code == 3, replayed.output
    assert event_count(db) == 0
