"""The soak's traffic: the provider's send path and a carrier's gateway, at a steady rate.

Each message is one task, started on schedule: ``POST /v1/messages``, ``POST
/v1/submissions``, then the carrier's generic DLRs through ``/v1/dlr/soak`` (ENROUTE after
a second, the final DELIVRD or UNDELIV two seconds later; one final in twenty is sent
twice, as a gateway's retry). Messages start at half the DLR rate, so the DLR route sees
``rate`` reports a second.

Like a real sender, a request that gets no 2xx (connection refused while ``run`` restarts,
a reset keep-alive connection, a 503) is sent again until it gets one; a 4xx is a refusal,
never retried, and fails the verdict. For every 2xx the client keeps the dedup key the
request's event must have (docs/ingest.md, docs/carriers.md), so the log can be checked
for each one afterwards.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime

import aiohttp

CARRIER = "soak"
SHORT_TEXT = "Your appointment is tomorrow at 15:00."
#: 200 GSM characters: two parts.
LONG_TEXT = ("Your visit is confirmed; reply STOP to cancel. " * 5)[:200]
FIRST_ID = 700_000_000
ENROUTE_AFTER = 1.0
FINAL_AFTER = 2.0
RETRY_PAUSE = 0.2


@dataclass(frozen=True)
class Planned:
    """What one message is meant to end as: its final status and part count."""

    message_id: str
    carrier_message_id: str
    final_stat: str
    final_status: int
    parts: int


def plan(i: int) -> Planned:
    """Message ``i`` of the run, deterministic: one in ten undelivered, one in ten long."""
    undelivered = i % 10 == 3
    return Planned(
        message_id=str(FIRST_ID + i),
        carrier_message_id=f"{FIRST_ID + i:x}",
        final_stat="UNDELIV" if undelivered else "DELIVRD",
        final_status=2 if undelivered else 1,
        parts=2 if i % 10 == 7 else 1,
    )


@dataclass
class TrafficStats:
    """What the client saw; ``stored_keys`` are the dedup keys of every 2xx answer."""

    started_messages: int = 0
    finished_messages: list[Planned] = field(default_factory=list)
    unfinished: int = 0
    requests: int = 0
    answered_2xx: int = 0
    dlrs_2xx: int = 0
    retries: Counter[str] = field(default_factory=Counter)
    #: Seconds from sending to a 2xx, since the sampler last took them.
    latencies: list[float] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    stored_keys: set[str] = field(default_factory=set)
    max_launch_delay: float = 0.0
    #: Seconds from the last message's start to the end of the last one still running
    #: (nominally ENROUTE_AFTER + FINAL_AFTER plus the answers' time).
    tail_seconds: float = 0.0
    last_started: float = 0.0  # monotonic


class Traffic:
    def __init__(self, base_url: str, dlr_rate: float, stats: TrafficStats | None = None) -> None:
        self.base_url = base_url
        self.message_rate = dlr_rate / 2
        self.stats = stats or TrafficStats()
        #: Set when even retries must end (the soak's hard stop); unset, a request is sent
        #: again until it gets a 2xx.
        self.give_up = asyncio.Event()

    async def run(self, seconds: float, finish_within: float) -> TrafficStats:
        """Start messages on schedule for ``seconds``, then wait for every one to finish,
        for ``finish_within`` seconds at most (then the rest give up, counted unfinished)."""
        connector = aiohttp.TCPConnector(limit=32)
        # Time spent waiting for one of the client's own connections is not the server's:
        # only a connect or an answer that takes too long counts as a failure.
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=60)
        tasks: set[asyncio.Task[None]] = set()
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
            started = time.monotonic()
            i = 0
            while True:
                due = started + i / self.message_rate
                if due - started >= seconds:
                    break
                delay = due - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                else:
                    self.stats.max_launch_delay = max(self.stats.max_launch_delay, -delay)
                task = asyncio.create_task(self._message(session, plan(i), i))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
                self.stats.started_messages += 1
                i += 1
            last_started = self.stats.last_started = time.monotonic()
            if tasks:
                _, late = await asyncio.wait(set(tasks), timeout=finish_within)
                if late:
                    self.give_up.set()
                    await asyncio.gather(*late)
            self.stats.tail_seconds = time.monotonic() - last_started
        return self.stats

    async def _message(self, session: aiohttp.ClientSession, p: Planned, i: int) -> None:
        text = LONG_TEXT if p.parts == 2 else SHORT_TEXT
        message = {"id": p.message_id, "phone": f"+7916{i % 10_000_000:07d}", "text": text}
        submission = {
            "message_id": p.message_id,
            "carrier": CARRIER,
            "carrier_message_id": p.carrier_message_id,
            "parts": p.parts,
        }
        steps = [
            ("/v1/messages", message, f"accepted:{p.message_id}"),
            ("/v1/submissions", submission, f"submitted:{CARRIER}:{p.carrier_message_id}"),
        ]
        for path, body, key in steps:
            if not await self._post(session, path, body, key):
                self.stats.unfinished += 1
                return
        for pause, stat in ((ENROUTE_AFTER, "ENROUTE"), (FINAL_AFTER, p.final_stat)):
            await asyncio.sleep(pause)
            occurred = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            report = {
                "carrier_message_id": p.carrier_message_id,
                "status": stat,
                "occurred_at": occurred,
            }
            key = f"dlr:{CARRIER}:{p.carrier_message_id}:-:{stat}:{occurred}"
            if not await self._post(session, f"/v1/dlr/{CARRIER}", report, key):
                self.stats.unfinished += 1
                return
            self.stats.dlrs_2xx += 1
        if i % 20 == 11:  # the gateway's retry of the final report: a duplicate, still 2xx
            await self._post(session, f"/v1/dlr/{CARRIER}", report, key)
        self.stats.finished_messages.append(p)

    async def _post(
        self, session: aiohttp.ClientSession, path: str, body: object, key: str
    ) -> bool:
        """POST until a 2xx (True), a 4xx (False, recorded) or the hard stop (False)."""
        while not self.give_up.is_set():
            self.stats.requests += 1
            sent = time.monotonic()
            try:
                async with session.post(self.base_url + path, json=body) as response:
                    await response.read()
                    status = response.status
            except (aiohttp.ClientError, TimeoutError) as exc:
                self.stats.retries[type(exc).__name__] += 1
                await asyncio.sleep(RETRY_PAUSE)
                continue
            if 200 <= status < 300:
                self.stats.latencies.append(time.monotonic() - sent)
                self.stats.answered_2xx += 1
                self.stats.stored_keys.add(key)
                return True
            if 400 <= status < 500:
                self.stats.refused.append(f"{path} {status} for {key}")
                return False
            self.stats.retries[f"HTTP {status}"] += 1
            await asyncio.sleep(RETRY_PAUSE)
        return False
