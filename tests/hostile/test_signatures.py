"""HMAC signatures cover method, path, query, body and a timestamp held to a replay window:
a signature cannot be moved to another request, and an old one expires."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from pathlib import Path

import pytest

from pipeline.db.engine import Database
from pipeline.ingest import signing
from tests.hostile.auth_helpers import (
    NOW,
    Clock,
    hmac_carriers,
    kannel_report,
    raw_request,
    server_at,
)
from tests.ingest.server_fixtures import (
    event_count,
    make_settings,
    quarantine_rows,
    stored_events,
)

SECRET = "carrier-hmac-secret-81f3"
ENV = "SMSRECON_TEST_HMAC_SECRET"
DOC = Path(__file__).resolve().parents[2] / "docs" / "ingest.md"


@pytest.fixture(autouse=True)
def _secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV, SECRET)


def _settings(**auth: object):  # type: ignore[no-untyped-def]
    return make_settings(hmac_carriers("mts", "beeline", secret_env=ENV, **auth))


def _sign(method: str, path: str, query=(), body: bytes = b"", at: int = NOW) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return signing.signed_headers(
        SECRET, method=method, path=path, query=query, body=body, timestamp=at
    )


async def test_get_signed_with_the_hmac_of_an_empty_body_is_401_and_nothing_stored(
    db: Database,
) -> None:
    empty_body_hmac = hmac.new(SECRET.encode(), b"", hashlib.sha256).hexdigest()
    forged = {"X-Smsrecon-Signature": f"sha256={empty_body_hmac}"}
    async with server_at(_settings(), db) as client:
        without_stamp = await client.get(
            "/v1/dlr/mts", params=kannel_report("VICTIM"), headers=forged
        )
        with_stamp = await client.get(
            "/v1/dlr/mts",
            params=kannel_report("VICTIM"),
            headers={**forged, "X-Smsrecon-Timestamp": str(NOW)},
        )
    assert (without_stamp.status, with_stamp.status) == (401, 401)
    assert event_count(db) == 0 and quarantine_rows(db) == []


async def test_a_signed_get_replayed_for_another_message_is_401(db: Database) -> None:
    query = kannel_report("M1")
    headers = _sign("GET", "/v1/dlr/mts", query)
    async with server_at(_settings(), db) as client:
        honest = await client.get("/v1/dlr/mts", params=query, headers=headers)
        assert honest.status == 200, await honest.text()
        forged = await client.get("/v1/dlr/mts", params=kannel_report("VICTIM"), headers=headers)
        assert forged.status == 401
    assert [row.message_id for row in stored_events(db)] == ["M1"]
    assert quarantine_rows(db) == []


async def test_a_signed_post_replayed_with_another_message_id_in_the_query_is_401(
    db: Database,
) -> None:
    body = b"type=1&smsc_id=3e8f2b1c&answer=id%3A3e8f2b1c+stat%3ADELIVRD+err%3A000"
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    query = [("message_id", "M1")]
    headers = {**form, **_sign("POST", "/v1/dlr/mts", query, body)}
    async with server_at(_settings(), db) as client:
        honest = await client.post("/v1/dlr/mts", params=query, data=body, headers=headers)
        assert honest.status == 200, await honest.text()
        replayed = await client.post(
            "/v1/dlr/mts", params=[("message_id", "OTHER")], data=body, headers=headers
        )
        added = await client.post(
            "/v1/dlr/mts",
            params=[*query, ("message_id", "OTHER")],
            data=body,
            headers=headers,
        )
    assert (replayed.status, added.status) == (401, 401)
    assert [row.message_id for row in stored_events(db)] == ["M1"]


async def test_a_signature_does_not_move_to_another_method_path_or_body(db: Database) -> None:
    query = kannel_report("M1")
    get_headers = _sign("GET", "/v1/dlr/mts", query)
    async with server_at(_settings(), db) as client:
        as_post = await client.post("/v1/dlr/mts", params=query, headers=get_headers)
        other_carrier = await client.get("/v1/dlr/beeline", params=query, headers=get_headers)
        with_a_body = await client.post(
            "/v1/dlr/mts", params=query, data=b"type=2", headers=_sign("POST", "/v1/dlr/mts", query)
        )
    assert [r.status for r in (as_post, other_carrier, with_a_body)] == [401, 401, 401]
    assert event_count(db) == 0


async def test_an_identical_replay_inside_the_window_succeeds_and_is_stored_once(
    db: Database,
) -> None:
    query = kannel_report("M1")
    headers = _sign("GET", "/v1/dlr/mts", query)
    clock = Clock(NOW)
    async with server_at(_settings(), db, clock) as client:
        first = await client.get("/v1/dlr/mts", params=query, headers=headers)
        clock.now = NOW + 299  # the gateway's retry, just inside the default 5 minutes
        retry = await client.get("/v1/dlr/mts", params=query, headers=headers)
        assert (first.status, retry.status) == (200, 200), await retry.text()
    assert event_count(db) == 1


@pytest.mark.parametrize("skew", [-301, 301, -3600, 10**9])
async def test_a_timestamp_outside_the_window_is_401_and_not_stored(
    db: Database, skew: int
) -> None:
    query = kannel_report("M1")
    headers = _sign("GET", "/v1/dlr/mts", query, at=max(NOW + skew, 0))
    async with server_at(_settings(), db, Clock(NOW)) as client:
        response = await client.get("/v1/dlr/mts", params=query, headers=headers)
        assert response.status == 401
        assert (await response.json())["detail"]["reason"] == (
            "X-Smsrecon-Timestamp outside the replay window"
        )
    assert event_count(db) == 0 and quarantine_rows(db) == []


async def test_the_window_is_configurable(db: Database) -> None:
    query = kannel_report("M1")
    headers = _sign("GET", "/v1/dlr/mts", query, at=NOW - 30)
    settings = make_settings(hmac_carriers("mts", secret_env=ENV), signature_window="10s")
    async with server_at(settings, db, Clock(NOW)) as client:
        late = await client.get("/v1/dlr/mts", params=query, headers=headers)
    async with server_at(settings, db, Clock(NOW - 25)) as client:
        in_time = await client.get("/v1/dlr/mts", params=query, headers=headers)
    assert (late.status, in_time.status) == (401, 200)


@pytest.mark.parametrize(
    "stamp", ["", "soon", "１７６８４７３０００", "1768473000.5", "-1768473000", "9" * 40]
)
async def test_a_malformed_timestamp_is_401(db: Database, stamp: str) -> None:
    query = kannel_report("M1")
    headers = {**_sign("GET", "/v1/dlr/mts", query), "X-Smsrecon-Timestamp": stamp}
    async with server_at(_settings(), db) as client:
        response = await client.get("/v1/dlr/mts", params=query, headers=headers)
    assert response.status == 401
    assert event_count(db) == 0


async def test_how_the_client_encodes_its_query_does_not_matter(db: Database) -> None:
    query = kannel_report("M 1/ü")
    headers = _sign("GET", "/v1/dlr/mts", query)
    from urllib.parse import quote, urlencode

    plus = urlencode(query)  # spaces as "+", "/" as %2F
    percent = urlencode(query, quote_via=quote, safe="/:")  # spaces as %20, "/" and ":" raw
    async with server_at(_settings(), db) as client:
        first = await client.get(f"/v1/dlr/mts?{plus}", headers=headers)
        second = await client.get(f"/v1/dlr/mts?{percent}", headers=headers)
        assert (first.status, second.status) == (200, 200), await second.text()
    assert [row.message_id for row in stored_events(db)] == ["M 1/ü"]


async def test_a_bad_body_with_a_bad_signature_is_401_and_not_quarantined(db: Database) -> None:
    query = [("message_id", "M1"), ("type", "99")]  # an unparseable report
    async with server_at(_settings(), db) as client:
        unsigned = await client.get("/v1/dlr/mts", params=query)
        wrong = await client.get(
            "/v1/dlr/mts", params=query, headers=_sign("GET", "/v1/dlr/mts", [("x", "y")])
        )
        assert (unsigned.status, wrong.status) == (401, 401)
        assert quarantine_rows(db) == []
        signed = await client.get(
            "/v1/dlr/mts", params=query, headers=_sign("GET", "/v1/dlr/mts", query)
        )
    assert signed.status == 400  # the same content, authenticated: bad input, kept
    assert len(quarantine_rows(db)) == 1


@pytest.mark.parametrize(
    "header",
    [
        b"X-Smsrecon-Signature: sha256=\xff\xfe",
        b"X-Smsrecon-Timestamp: \xd9\xa1\xd9\xa2",
        b"Authorization: Basic \xc3\xa9\xc3\xa9==",
        b"X-Smsrecon-Token: \xff",
    ],
)
async def test_non_utf8_auth_headers_are_401_never_500(
    db: Database, header: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    carriers = {
        **hmac_carriers("mts", secret_env=ENV),
        "basic": {"format": "kannel", "auth": {"type": "basic", "secret_env": ENV}},
        "token": {"format": "kannel", "auth": {"type": "token", "secret_env": ENV}},
    }
    async with server_at(make_settings(carriers), db) as client:
        statuses = [
            await raw_request(
                client,
                b"GET /v1/dlr/" + name + b"?message_id=1&type=1 HTTP/1.1\r\nHost: x\r\n"
                b"Connection: close\r\n" + header + b"\r\n",
            )
            for name in (b"mts", b"basic", b"token")
        ]
    assert statuses == [401, 401, 401]
    assert event_count(db) == 0


def _doc_example() -> dict[str, str]:
    """The worked example of docs/ingest.md, read from the document itself."""
    text = DOC.read_text(encoding="utf-8")
    section = text[text.index("#### Worked example") :]
    section = section[: section.index("\n### ")]
    fields = dict(re.findall(r"^- (\w[\w ]*\w): `([^`]*)`$", section, re.MULTILINE))
    blocks = re.findall(r"```(?:\w*)\n(.*?)\n```", section, re.DOTALL)
    return {**fields, "request": blocks[0], "string": blocks[1]}


def test_the_documented_worked_example_is_what_the_server_computes() -> None:
    example = _doc_example()
    request_line, *header_lines, _, body = example["request"].split("\n")
    method, target, _ = request_line.split(" ")
    path, _, query_text = target.partition("?")
    from urllib.parse import parse_qsl

    query = parse_qsl(query_text, keep_blank_values=True)
    headers = dict(line.split(": ", 1) for line in header_lines)
    text = signing.string_to_sign(
        headers["X-Smsrecon-Timestamp"], method, path, query, body.encode()
    )
    assert text == example["string"]
    assert hashlib.sha256(body.encode()).hexdigest() == text.split("\n")[-1]
    digest = signing.signature(example["secret"], text)
    assert digest == example["signature"]
    assert headers["X-Smsrecon-Signature"] == f"sha256={digest}"


async def test_the_documented_example_request_is_accepted_by_the_server(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    example = _doc_example()
    request_line, *header_lines, _, body = example["request"].split("\n")
    method, target, _ = request_line.split(" ")
    headers = dict(line.split(": ", 1) for line in header_lines)
    monkeypatch.setenv("SMSRECON_TEST_DOC_SECRET", example["secret"])
    carrier = target.split("?")[0].rsplit("/", 1)[1]
    settings = make_settings(
        {
            carrier: {
                "format": "generic",
                "auth": {"type": "hmac", "secret_env": "SMSRECON_TEST_DOC_SECRET"},
            }
        }
    )
    clock = Clock(int(headers["X-Smsrecon-Timestamp"]) + 60)
    async with server_at(settings, db, clock) as client:
        from yarl import URL

        response = await client.request(
            method,
            URL(target, encoded=True),
            data=body.encode(),
            headers={k: v for k, v in headers.items() if k != "Host"},
        )
        assert response.status == 200, await response.text()
    [event] = stored_events(db)
    assert json.loads(body)["carrier_message_id"] in json.dumps(event.payload)
