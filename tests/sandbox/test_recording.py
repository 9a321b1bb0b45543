"""What the sandbox remembers: accepted items in arrival order, request outcomes, overlaps;
``/_sandbox/reset`` forgets them and keeps the configuration."""

from __future__ import annotations

import asyncio
import logging

import aiohttp
import pytest

from pipeline.sandbox import SandboxConfig, running_sandbox
from tests.sandbox.helpers import FORBIDDEN, TOKEN, item, post_statuses, received


async def test_items_are_recorded_in_arrival_order_with_request_numbers(
    session: aiohttp.ClientSession, sandbox_url: str
) -> None:
    await post_statuses(session, sandbox_url, [item(id="a", status=8), item(id="b", status=8)])
    await post_statuses(session, sandbox_url, [item(id="a", status=5)])  # refused: not recorded
    await post_statuses(session, sandbox_url, [item(id="a", status=1)])
    seen = await received(session, sandbox_url)
    assert [(i["id"], i["status"], i["request"], i["seq"]) for i in seen["items"]] == [
        ("a", 8, 1, 1),
        ("b", 8, 1, 2),
        ("a", 1, 3, 3),
    ]
    assert all(i["received_at"].endswith("+00:00") for i in seen["items"])
    assert [(r["request"], r["outcome"], r["items"]) for r in seen["requests"]] == [
        (1, "200", 2),
        (2, "400", None),
        (3, "200", 1),
    ]
    assert seen["stats"]["requests"] == 3
    assert seen["stats"]["outcomes"] == {"200": 2, "400": 1}


async def test_reset_clears_the_record_and_keeps_the_configuration(
    session: aiohttp.ClientSession, sandbox_url: str
) -> None:
    await post_statuses(session, sandbox_url, [item()])
    async with session.post(f"{sandbox_url}/_sandbox/reset") as response:
        assert response.status == 200
    seen = await received(session, sandbox_url)
    assert seen["count"] == 0 and seen["items"] == [] and seen["stats"]["requests"] == 0
    # Same tokens and refusals as before the reset.
    assert (await post_statuses(session, sandbox_url, [item()])).status == 200
    assert (await post_statuses(session, sandbox_url, [item()], token=FORBIDDEN)).status == 403
    seen = await received(session, sandbox_url)
    assert seen["count"] == 1 and seen["items"][0]["request"] == 1


async def test_two_requests_in_flight_for_one_message_are_reported() -> None:
    config = SandboxConfig(tokens=(TOKEN,), latency_ms=300)
    async with running_sandbox(config) as url, aiohttp.ClientSession() as session:
        answers = await asyncio.gather(
            post_statuses(session, url, [item(id="x", status=8), item(id="y")]),
            post_statuses(session, url, [item(id="x", status=1)]),
        )
        assert [a.status for a in answers] == [200, 200]
        await post_statuses(session, url, [item(id="x", status=1)])  # alone: no overlap
        stats = (await received(session, url))["stats"]
    assert stats["max_in_flight_requests"] == 2
    assert [o["id"] for o in stats["overlapping_ids"]] == ["x"]


async def test_the_log_never_shows_a_token(caplog: pytest.LogCaptureFixture) -> None:
    config = SandboxConfig(tokens=(TOKEN,), forbidden_tokens=(FORBIDDEN,), faults={})
    with caplog.at_level(logging.DEBUG):
        async with running_sandbox(config) as url, aiohttp.ClientSession() as session:
            await post_statuses(session, url, [item()])
            await post_statuses(session, url, [item(status=3)])
            await post_statuses(session, url, [item()], token=FORBIDDEN)
            await post_statuses(session, url, [item()], token="unknown-token-abc")
            async with session.get(f"{url}/smsprovider/status/{TOKEN}") as response:
                assert response.status == 404
    text = "\n".join(record.getMessage() for record in caplog.records)
    assert "POST /smsprovider/status/callback/*** 200" in text
    assert "refused: 400 code 10" in text
    for secret in (TOKEN, FORBIDDEN, "unknown-token-abc"):
        assert secret not in text
