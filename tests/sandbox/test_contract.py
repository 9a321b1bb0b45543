"""The sandbox accepts exactly what Altegio's contract allows and refuses the rest with
Altegio's status, error code and a message saying what failed."""

from __future__ import annotations

import aiohttp
import pytest

from pipeline.sandbox import SandboxConfig, running_sandbox
from tests.sandbox.helpers import (
    FORBIDDEN,
    HEADERS,
    OTHER_TOKEN,
    TOKEN,
    item,
    post_statuses,
    received,
)


async def test_a_valid_array_is_accepted_and_recorded(
    session: aiohttp.ClientSession, sandbox_url: str
) -> None:
    answer = await post_statuses(
        session, sandbox_url, [item(), item(id="232675", status=8, payment_sum=0)]
    )
    assert answer.status == 200
    assert answer.json() == {"success": True, "data": {"accepted": 2}, "meta": []}
    seen = await received(session, sandbox_url)
    assert seen["count"] == 2
    first, second = seen["items"]
    assert first["id"] == "232674" and first["payment_sum"] == "4.54"
    assert first["status"] == 1 and first["currency_iso"] == "RUB" and first["parts_amount"] == 2
    assert second["id"] == "232675" and second["status"] == 8 and second["payment_sum"] == "0"
    assert (first["request"], first["index"], first["seq"]) == (1, 0, 1)
    assert (second["request"], second["index"], second["seq"]) == (1, 1, 2)
    assert first["token"] == "token#1"


async def test_the_object_shape_is_accepted_only_when_configured(
    session: aiohttp.ClientSession, sandbox_url: str
) -> None:
    config = SandboxConfig(tokens=(TOKEN,), shape="object")
    async with running_sandbox(config) as object_url:
        accepted = await post_statuses(session, object_url, item())
        refused = await post_statuses(session, object_url, [item()])
    assert accepted.status == 200
    assert (refused.status, refused.code) == (400, 5)
    assert "one JSON status object" in refused.message
    in_array_mode = await post_statuses(session, sandbox_url, item())
    assert (in_array_mode.status, in_array_mode.code) == (400, 5)
    assert "JSON array" in in_array_mode.message


async def test_error_bodies_use_altegios_envelope(
    session: aiohttp.ClientSession, sandbox_url: str
) -> None:
    answer = await post_statuses(session, sandbox_url, [])
    assert answer.headers["Content-Type"].startswith("application/json")
    assert answer.json() == {
        "success": False,
        "data": None,
        "meta": {"message": "body is an empty array", "code": 5},
    }


# -- authentication and permission ------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message_part"),
    [
        ({"omit_authorization": True}, "Bearer <partner_token> required"),
        ({"authorization": f"Basic {TOKEN}"}, "Bearer <partner_token> required"),
        ({"authorization": "Bearer"}, "Bearer <partner_token> required"),
        ({"authorization": f"Bearer {OTHER_TOKEN}"}, "differs from the partner_token"),
        ({"token": "not-a-known-token"}, "partner_token is invalid"),
    ],
)
async def test_bad_authorization_is_401_code_20(
    session: aiohttp.ClientSession, sandbox_url: str, kwargs: dict, message_part: str
) -> None:
    answer = await post_statuses(session, sandbox_url, [item()], **kwargs)
    assert (answer.status, answer.code) == (401, 20)
    assert message_part in answer.message
    assert TOKEN not in answer.text and OTHER_TOKEN not in answer.text


async def test_bearer_scheme_is_case_insensitive(
    session: aiohttp.ClientSession, sandbox_url: str
) -> None:
    answer = await post_statuses(session, sandbox_url, [item()], authorization=f"bearer {TOKEN}")
    assert answer.status == 200


async def test_a_second_known_token_is_accepted(
    session: aiohttp.ClientSession, sandbox_url: str
) -> None:
    answer = await post_statuses(session, sandbox_url, [item()], token=OTHER_TOKEN)
    assert answer.status == 200
    assert (await received(session, sandbox_url))["items"][0]["token"] == "token#2"


async def test_a_forbidden_token_is_403_code_15(
    session: aiohttp.ClientSession, sandbox_url: str
) -> None:
    answer = await post_statuses(session, sandbox_url, [item()], token=FORBIDDEN)
    assert (answer.status, answer.code) == (403, 15)
    assert (await received(session, sandbox_url))["count"] == 0


async def test_a_missing_token_in_the_path_is_401_code_20(
    session: aiohttp.ClientSession, sandbox_url: str
) -> None:
    async with session.post(
        f"{sandbox_url}/smsprovider/status/callback/", json=[item()], headers=HEADERS
    ) as response:
        assert response.status == 401
        assert (await response.json())["meta"]["code"] == 20


async def test_another_path_is_404_code_30(
    session: aiohttp.ClientSession, sandbox_url: str
) -> None:
    async with session.post(f"{sandbox_url}/delivery/status", json=[item()]) as response:
        assert response.status == 404
        assert (await response.json())["meta"]["code"] == 30


# -- headers ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "message_part"),
    [
        ({"Content-Type": "application/json"}, "missing Accept"),
        ({"Accept": "application/json", "Content-Type": "application/json"}, "Accept must be"),
        ({"Accept": "*/*", "Content-Type": "application/json"}, "Accept must be"),
        ({"Accept": "application/vnd.api.v2+json"}, "missing Content-Type"),
        (
            {"Accept": "application/vnd.api.v2+json", "Content-Type": "text/plain"},
            "Content-Type must be application/json",
        ),
        (
            {
                "Accept": "application/vnd.api.v2+json",
                "Content-Type": "application/json; charset=latin-1",
            },
            "charset must be utf-8",
        ),
    ],
)
async def test_wrong_headers_are_400_code_5(
    session: aiohttp.ClientSession, sandbox_url: str, headers: dict, message_part: str
) -> None:
    answer = await post_statuses(session, sandbox_url, [item()], headers=headers)
    assert (answer.status, answer.code) == (400, 5)
    assert message_part in answer.message


async def test_json_charset_and_accept_lists_are_fine(
    session: aiohttp.ClientSession, sandbox_url: str
) -> None:
    headers = {
        "Accept": "application/json, application/vnd.api.v2+json;q=0.9",
        "Content-Type": "application/json; charset=utf-8",
    }
    answer = await post_statuses(session, sandbox_url, [item()], headers=headers)
    assert answer.status == 200


# -- body -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "message_part"),
    [
        (b"", "body is empty"),
        (b"not json", "not valid JSON"),
        (b"\xff\xfe[]", "not UTF-8"),
        (b"[]", "empty array"),
        (b'"232674"', "JSON array"),
        (b"[1]", "item 0: must be an object, got a number"),
        (b'[{"id": "1", "id": "2"}]', "duplicate key 'id'"),
        (
            b'[{"id":"1","status":1,"payment_sum":NaN,"currency_iso":"RUB","parts_amount":1}]',
            "NaN",
        ),
    ],
)
async def test_malformed_bodies_are_400_code_5(
    session: aiohttp.ClientSession, sandbox_url: str, raw: bytes, message_part: str
) -> None:
    answer = await post_statuses(session, sandbox_url, raw=raw)
    assert (answer.status, answer.code) == (400, 5)
    assert message_part in answer.message


async def test_missing_and_extra_keys_are_code_5_naming_item_and_keys(
    session: aiohttp.ClientSession, sandbox_url: str
) -> None:
    without_parts = item()
    del without_parts["parts_amount"]
    body = [item(), without_parts, item(id="3", text="hello")]
    answer = await post_statuses(session, sandbox_url, body)
    assert (answer.status, answer.code) == (400, 5)
    assert "item 1: missing field(s) parts_amount" in answer.message
    assert "item 2: unexpected field(s) text" in answer.message
    assert (await received(session, sandbox_url))["count"] == 0


@pytest.mark.parametrize(
    ("overrides", "message_part"),
    [
        ({"id": 232674}, "item 1: id must be a string"),
        ({"id": ""}, "item 1: id must not be empty"),
        ({"status": 3}, "status 3 is not one of 1, 2, 4, 8, 16, 52"),
        ({"status": "1"}, "status must be an integer, got a string"),
        ({"status": 1.0}, "status must be an integer, got 1.0"),
        ({"status": True}, "status must be an integer, got a boolean"),
        ({"payment_sum": "4.54"}, "payment_sum must be a JSON number, got a string"),
        ({"payment_sum": -0.01}, "payment_sum must be >= 0"),
        ({"payment_sum": None}, "payment_sum must be a JSON number, got null"),
        ({"currency_iso": "rub"}, "currency_iso 'rub' is not an ISO 4217 code"),
        ({"currency_iso": "XYZ"}, "currency_iso 'XYZ' is not an ISO 4217 code"),
        ({"currency_iso": 643}, "currency_iso must be a string"),
        ({"parts_amount": 0}, "parts_amount must be >= 1"),
        ({"parts_amount": 1.5}, "parts_amount must be an integer"),
    ],
)
async def test_a_bad_field_value_is_400_code_10(
    session: aiohttp.ClientSession, sandbox_url: str, overrides: dict, message_part: str
) -> None:
    answer = await post_statuses(session, sandbox_url, [item(id="ok-1"), item(**overrides)])
    assert (answer.status, answer.code) == (400, 10)
    assert message_part in answer.message
    assert "item 0" not in answer.message  # the valid first item is not blamed
    assert (await received(session, sandbox_url))["count"] == 0


@pytest.mark.parametrize(
    ("amount", "currency", "accepted"),
    [
        ("4.54", "RUB", True),
        ("4.5", "RUB", True),
        ("0", "RUB", True),
        ("4.545", "RUB", False),
        ("4.540", "RUB", False),
        ("5", "JPY", True),
        ("5.5", "JPY", False),
        ("5.0", "JPY", False),
        ("1.234", "KWD", True),
        ("1.2345", "KWD", False),
        ("1E+2", "JPY", True),
    ],
)
async def test_payment_sum_decimals_follow_the_currency(
    session: aiohttp.ClientSession, sandbox_url: str, amount: str, currency: str, accepted: bool
) -> None:
    fields = f'"id": "m1", "status": 1, "payment_sum": {amount}, "currency_iso": "{currency}"'
    raw = f'[{{{fields}, "parts_amount": 1}}]'.encode()
    answer = await post_statuses(session, sandbox_url, raw=raw)
    if accepted:
        assert answer.status == 200, answer.text
        assert (await received(session, sandbox_url))["items"][0]["payment_sum"] == amount
    else:
        assert (answer.status, answer.code) == (400, 10)
        assert f"payment_sum {amount} has" in answer.message
        assert f"more than {currency}'s" in answer.message


async def test_an_unknown_id_is_404_code_30_and_nothing_is_recorded(
    session: aiohttp.ClientSession, sandbox_url: str
) -> None:
    answer = await post_statuses(session, sandbox_url, [item(), item(id="no-such-message")])
    assert (answer.status, answer.code) == (404, 30)
    assert "'no-such-message'" in answer.message
    assert (await received(session, sandbox_url))["count"] == 0


async def test_validation_comes_before_the_unknown_id_check(
    session: aiohttp.ClientSession, sandbox_url: str
) -> None:
    answer = await post_statuses(session, sandbox_url, [item(id="no-such-message", status=3)])
    assert (answer.status, answer.code) == (400, 10)
