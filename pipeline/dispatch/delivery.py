"""The delivery rules of one run: route → post → bisect → settle.

Given claimed messages, ``route`` decides where each goes (or refuses it without a request)
and groups the rest into batches; ``deliver`` posts a batch and, when Altegio refuses it
because of some of its items, splits it in halves to find them (with the 404 URL rule);
``settle`` turns each answer into one ``Resolution`` per message. No queue, task or
database here: ``pipeline.dispatch.dispatcher`` runs these rules with its claimer, senders
and record writer.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

import aiohttp

from pipeline.config import Settings
from pipeline.dispatch.model import Claim, DispatchSummary, Outcome, Refusal, Resolution, Routed
from pipeline.dispatch.payload import encode_body
from pipeline.dispatch.routes import PartnerTokens, Router
from pipeline.dispatch.settle import masked, settle, settle_refusal
from pipeline.dispatch.transport import post_statuses
from pipeline.mismatches.kinds import KIND_NOT_FOUND

log = logging.getLogger("smsrecon.dispatch")

#: A request is started only if it can finish (timeout) this long before the lease ends.
LEASE_MARGIN = 2.0


class Delivery:
    """The rules of one run; counts what it decides in ``summary``.

    ``opened`` remembers the partners whose circuit opened during the run: nothing more is
    sent for them.
    """

    def __init__(
        self,
        settings: Settings,
        tokens: PartnerTokens,
        *,
        clock: Callable[[], datetime],
        rng: random.Random,
        summary: DispatchSummary,
        on_request: Callable[[float], None] | None = None,
    ) -> None:
        self.config = settings.dispatcher
        #: Told each request's duration in seconds (the dispatch latency metric).
        self.on_request = on_request
        self.clock = clock
        self.rng = rng
        self.summary = summary
        self.opened: set[str] = set()
        self.router = Router(settings, tokens)

    def route(self, claim: Claim) -> tuple[list[Resolution], list[list[Routed]]]:
        """A claim's refusals (decided without a request) and its batches to send."""
        routed: list[Routed] = []
        refused: list[Resolution] = []
        for item in claim.items:
            decided = self.router.route(item)
            if isinstance(decided, Refusal):
                refused.append(self.refusal(decided))
            else:
                routed.append(decided)
        return refused, self.batches(routed)

    def batches(self, routed: Sequence[Routed]) -> list[list[Routed]]:
        """Group by (URL, token), in claim order, into batches of ``batch_size``."""
        size = 1 if self.config.body_shape == "object" else self.config.batch_size
        groups: dict[tuple[str, str], list[Routed]] = {}
        for r in routed:
            groups.setdefault((r.url, r.token), []).append(r)
        return [
            group[start : start + size]
            for group in groups.values()
            for start in range(0, len(group), size)
        ]

    async def deliver(
        self,
        session: aiohttp.ClientSession,
        batch: list[Routed],
        claim: Claim,
        outcome: Outcome | None = None,
    ) -> list[Resolution]:
        """Post a batch; on a refusal that names items (400/404/413) bisect to find them.

        404 rule: when a batch answered 404 and *both* of its halves answer 404 as well, the
        URL itself is wrong (unknown ids in both halves at once is far less likely): it is
        treated like 401, the partner's circuit opens, and the bisection stops there.
        """
        if outcome is None:
            outcome = await self.post(session, batch, claim)
            if outcome is None:
                return self.settle(batch, None)
        if outcome.action != "split":
            return self.settle(batch, outcome)
        if len(batch) == 1:
            return self.settle(batch, outcome)
        middle = len(batch) // 2
        halves = batch[:middle], batch[middle:]
        answers = await asyncio.gather(*(self.post(session, h, claim) for h in halves))
        if outcome.kind == KIND_NOT_FOUND and all(
            a is not None and a.action == "split" and a.kind == KIND_NOT_FOUND for a in answers
        ):
            return self.settle(batch, outcome, url_wrong=True)
        results: list[list[Resolution]] = await asyncio.gather(
            *(
                self.deliver(session, half, claim, answer)
                if answer is not None
                else _ready(self.settle(half, None))
                for half, answer in zip(halves, answers, strict=True)
            )
        )
        return [r for part in results for r in part]

    async def post(
        self, session: aiohttp.ClientSession, batch: list[Routed], claim: Claim
    ) -> Outcome | None:
        """Send one request, or None when it must not start (lease too short, circuit open)."""
        partner = batch[0].item.partner
        if partner in self.opened:
            return None
        deadline = claim.lease_until - timedelta(seconds=self.config.timeout + LEASE_MARGIN)
        if self.clock() > deadline:
            return None
        first = batch[0]
        body = encode_body([r.payload for r in batch], shape=self.config.body_shape)
        self.summary.requests += 1
        started = time.monotonic()
        outcome = await post_statuses(
            session, first.url, token=first.token, body=body, clock=self.clock
        )
        if self.on_request is not None:
            self.on_request(time.monotonic() - started)
        if outcome.action == "open_circuit":
            self.opened.add(partner)
        if outcome.action != "acknowledged":
            log.warning(
                "Altegio answered %s for %d status(es) to %s: %s",
                outcome.http_status or "no answer",
                len(batch),
                first.masked_url,
                masked(outcome.text, first.token),
            )
        return outcome

    def settle(
        self, batch: Sequence[Routed], outcome: Outcome | None, *, url_wrong: bool = False
    ) -> list[Resolution]:
        """One Resolution per message for the answer its request got."""
        out = settle(
            batch, outcome, now=self.clock(), config=self.config, rng=self.rng, url_wrong=url_wrong
        )
        self.summary.count(out)
        return out

    def refusal(self, refusal: Refusal) -> Resolution:
        """A message decided here, without a request."""
        res = settle_refusal(refusal, now=self.clock(), config=self.config)
        log.warning("status of %s not sent: %s", refusal.item.message_id, refusal.error)
        self.summary.count([res])
        return res


async def _ready(value: list[Resolution]) -> list[Resolution]:
    return value
