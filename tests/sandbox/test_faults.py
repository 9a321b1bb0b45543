"""Staged faults: each configured class happens, the client sees it as such, and a seed
replays the same sequence."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import aiohttp

from pipeline.dispatch.backoff import parse_retry_after
from pipeline.sandbox import SandboxConfig, parse_fault_spec, running_sandbox
from tests.sandbox.helpers import TOKEN, item, post_statuses, received

ALL_FAULTS = "500=0.12,502=0.12,503=0.12,429=0.16,hang=0.08,reset=0.1"
#: A hang lasts this long, then ends in the gateway's 504 (a hang's only answer).
HANG_MS = 300
#: Bounds a broken run only: every answer here comes within milliseconds or HANG_MS.
CLIENT_TIMEOUT = 60


async def _observe(session: aiohttp.ClientSession, url: str, number: int) -> tuple[str, dict]:
    """How the client experienced one request: a status (429 split by its Retry-After form),
    ``reset`` for a dropped connection, ``hang`` for no answer until the hang's 504.

    A hang is told apart by its 504 after at least ``HANG_MS``, not by a short client
    timeout, which a slow machine would also trip on honest answers.
    """
    loop = asyncio.get_running_loop()
    started = loop.time()
    try:
        answer = await post_statuses(session, url, [item(id=f"m{number}")])
    except aiohttp.ClientConnectionError:
        return "reset", {}
    if answer.status == 504:
        assert loop.time() - started >= HANG_MS / 1000 - 0.01, "a 504 came before the hang ended"
        return "hang", {}
    if answer.status == 429:
        value = answer.headers.get("Retry-After", "")
        return ("429s" if value.isdigit() else "429date"), answer.headers
    return str(answer.status), answer.headers


async def test_every_fault_class_is_seen_by_the_client_as_the_sandbox_logged_it() -> None:
    config = SandboxConfig(
        tokens=(TOKEN,), faults=parse_fault_spec(ALL_FAULTS), hang_ms=HANG_MS, seed=11
    )
    timeout = aiohttp.ClientTimeout(total=CLIENT_TIMEOUT)
    async with running_sandbox(config) as url, aiohttp.ClientSession(timeout=timeout) as session:
        observed = []
        retry_afters = []
        for number in range(60):
            kind, headers = await _observe(session, url, number)
            observed.append(kind)
            if kind.startswith("429"):
                retry_afters.append(headers["Retry-After"])
        async with aiohttp.ClientSession() as inspector:
            seen = await received(inspector, url)

    logged = [entry["outcome"] for entry in seen["requests"]]
    assert observed == logged
    assert set(observed) == {"200", "500", "502", "503", "429s", "429date", "hang", "reset"}
    # Only honest answers are recorded.
    assert seen["count"] == observed.count("200")
    accepted_ids = [i["id"] for i in seen["items"]]
    assert accepted_ids == [f"m{n}" for n, kind in enumerate(observed) if kind == "200"]
    # Both Retry-After forms, each readable; the date form is rounded up to a whole second,
    # so it asks for at most one second more than the configured one.
    now = datetime.now(UTC)
    delays = [parse_retry_after(value, now) for value in retry_afters]
    assert all(d is not None and 0.0 <= d <= 2.0 for d in delays), retry_afters
    assert any(v.isdigit() for v in retry_afters)
    assert any(v.endswith(" GMT") for v in retry_afters)


async def test_429_alternates_seconds_and_date_forms() -> None:
    config = SandboxConfig(tokens=(TOKEN,), faults={"429": 1.0}, retry_after_s=7)
    answers, received_at = [], []
    async with running_sandbox(config) as url, aiohttp.ClientSession() as session:
        for _ in range(4):
            answers.append(await post_statuses(session, url, [item()]))
            received_at.append(datetime.now(UTC))  # each date is read as its answer arrived
    values = [a.headers["Retry-After"] for a in answers]
    assert [a.status for a in answers] == [429] * 4
    assert values[0] == values[2] == "7"
    for value, now in ((values[1], received_at[1]), (values[3], received_at[3])):
        assert value.endswith(" GMT")
        delay = parse_retry_after(value, now)
        assert delay is not None and 5.0 <= delay <= 8.0
    assert answers[0].json()["success"] is False


async def test_502_and_503_answer_html_like_a_proxy_and_500_answers_json() -> None:
    async with aiohttp.ClientSession() as session:
        for kind, content_type in (("502", "text/html"), ("503", "text/html")):
            config = SandboxConfig(tokens=(TOKEN,), faults={kind: 1.0})
            async with running_sandbox(config) as url:
                answer = await post_statuses(session, url, [item()])
            assert answer.status == int(kind)
            assert answer.headers["Content-Type"].startswith(content_type)
        async with running_sandbox(SandboxConfig(tokens=(TOKEN,), faults={"500": 1.0})) as url:
            answer = await post_statuses(session, url, [item()])
        assert answer.status == 500 and answer.json()["success"] is False


async def test_a_hang_outlasts_a_short_client_timeout_and_ends_in_504_after_hang_ms() -> None:
    config = SandboxConfig(tokens=(TOKEN,), faults={"hang": 1.0}, hang_ms=400)
    async with running_sandbox(config) as url:
        short = aiohttp.ClientTimeout(total=0.1)
        async with aiohttp.ClientSession(timeout=short) as impatient:
            timed_out = False
            try:
                await post_statuses(impatient, url, [item()])
            except TimeoutError:
                timed_out = True
            assert timed_out
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as patient:
            answer = await post_statuses(patient, url, [item()])
            assert answer.status == 504
            assert (await received(patient, url))["count"] == 0


async def test_a_reset_drops_the_connection_without_an_answer() -> None:
    config = SandboxConfig(tokens=(TOKEN,), faults={"reset": 1.0})
    async with running_sandbox(config) as url, aiohttp.ClientSession() as session:
        try:
            await post_statuses(session, url, [item()])
        except aiohttp.ClientConnectionError as exc:
            error: Exception | None = exc
        else:
            error = None
        assert isinstance(error, aiohttp.ClientOSError | aiohttp.ServerDisconnectedError)
        seen = await received(session, url)
    assert seen["count"] == 0
    assert seen["stats"]["outcomes"] == {"reset": 1}


async def test_shutdown_releases_hanging_requests() -> None:
    config = SandboxConfig(tokens=(TOKEN,), faults={"hang": 1.0}, hang_ms=600_000)
    loop = asyncio.get_running_loop()
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120)) as session:
        started = loop.time()
        async with running_sandbox(config) as url:
            pending = asyncio.create_task(post_statuses(session, url, [item()]))
            # The sandbox logs the hang as it begins: from then on the request is held.
            while (await received(session, url))["stats"]["outcomes"].get("hang") != 1:
                assert not pending.done()
                await asyncio.sleep(0.01)
            assert not pending.done()
        answer = await asyncio.wait_for(pending, timeout=60)
        # Let go long before the ten-minute hang: shutdown ended it.
        assert answer.status == 504
        assert loop.time() - started < 60


async def test_the_same_seed_replays_the_same_faults_and_reset_restarts_them() -> None:
    spec = parse_fault_spec("500=0.3,503=0.2,429=0.2")

    async def outcomes(url: str, session: aiohttp.ClientSession) -> list[str]:
        for number in range(25):
            await post_statuses(session, url, [item(id=f"m{number}")])
        return [entry["outcome"] for entry in (await received(session, url))["requests"]]

    async with aiohttp.ClientSession() as session:
        async with running_sandbox(SandboxConfig(tokens=(TOKEN,), faults=spec, seed=5)) as url:
            first = await outcomes(url, session)
            async with session.post(f"{url}/_sandbox/reset") as response:
                assert response.status == 200
            after_reset = await outcomes(url, session)
        async with running_sandbox(SandboxConfig(tokens=(TOKEN,), faults=spec, seed=5)) as url:
            again = await outcomes(url, session)
        async with running_sandbox(SandboxConfig(tokens=(TOKEN,), faults=spec, seed=6)) as url:
            other_seed = await outcomes(url, session)
    assert first == after_reset == again
    assert other_seed != first
    assert {"200", "500", "503"} <= set(first)


async def test_latency_delays_every_answer() -> None:
    config = SandboxConfig(tokens=(TOKEN,), latency_ms=200)
    loop = asyncio.get_running_loop()
    async with running_sandbox(config) as url, aiohttp.ClientSession() as session:
        for body in ([item()], []):
            started = loop.time()
            await post_statuses(session, url, body)
            assert loop.time() - started >= 0.19
