"""From an (already authenticated, scrubbed) request to events: the one parse path.

The HTTP server, ``smsrecon ingest`` and quarantine replay all come through here, so a
request parses to the same events (and dedup keys) however it arrives. Pure apart from
reading settings: the receive time comes in, the clock is never read.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pipeline.config import Settings
from pipeline.eventlog import NewEvent
from pipeline.ingest.adapters import bounded
from pipeline.ingest.adapters.base import CarrierContext, Limits, ParseError, RawRequest
from pipeline.ingest.adapters.registry import parse_report
from pipeline.ingest.requests import KINDS, RequestError, parse_items

DLR_PREFIX = "/v1/dlr/"


@dataclass(frozen=True, slots=True)
class Target:
    """What a path names: one of our own routes, or a carrier's DLR webhook."""

    kind: str  # "messages" | "submissions" | "refusals" | "dlr"
    carrier: str | None = None

    @property
    def path(self) -> str:
        return f"{DLR_PREFIX}{self.carrier}" if self.kind == "dlr" else f"/v1/{self.kind}"


@dataclass(frozen=True, slots=True)
class Outcome:
    events: list[NewEvent]
    #: For DLR routes, the exact answer the gateway expects; None for our own JSON routes.
    reply_status: int | None = None
    reply_body: str | None = None
    reply_content_type: str | None = None


class InputError(ValueError):
    """Bad input: answered 400 and quarantined. ``detail`` is a JSON list of problems."""

    def __init__(self, error: str, detail: list[dict[str, Any]]) -> None:
        super().__init__(error)
        self.error = error
        self.detail = detail


class UnknownCarrier(LookupError):
    """The path names no configured carrier (404, not quarantined: it is not input)."""


def target_of(path: str) -> Target | None:
    if path.startswith(DLR_PREFIX) and "/" not in path[len(DLR_PREFIX) :]:
        carrier = path[len(DLR_PREFIX) :]
        return Target("dlr", carrier) if carrier else None
    for kind in KINDS:
        if path == f"/v1/{kind}":
            return Target(kind)
    return None


def format_of(settings: Settings, target: Target) -> str:
    if target.kind != "dlr":
        return target.kind
    carrier = settings.carriers.get(target.carrier or "")
    if carrier is None:
        raise UnknownCarrier(target.carrier)
    return carrier.format


def carrier_context(settings: Settings, name: str, received_at: datetime) -> CarrierContext:
    carrier = settings.carriers.get(name)
    if carrier is None:
        raise UnknownCarrier(name)
    try:
        zone = _zone(carrier.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"carriers.{name}.timezone: unknown zone {carrier.timezone!r}") from None
    return CarrierContext(
        name=name, timezone=zone, received_at=received_at, limits=limits_of(settings)
    )


def limits_of(settings: Settings) -> Limits:
    """The plausible times and amounts the ingest settings allow."""
    ingest = settings.ingest
    return Limits(min_year=ingest.min_year, max_year=ingest.max_year, max_amount=ingest.max_amount)


@lru_cache(maxsize=64)
def _zone(key: str) -> ZoneInfo:
    """A zone read once per name: every report of a carrier uses its configured zone."""
    return ZoneInfo(key)


def interpret(
    settings: Settings,
    target: Target,
    request: RawRequest,
    *,
    received_at: datetime,
    source: str,
) -> Outcome:
    """Events for ``request``; InputError for bad input, UnknownCarrier for a bad path."""
    if target.kind == "dlr":
        assert target.carrier is not None
        fmt = format_of(settings, target)
        context = carrier_context(settings, target.carrier, received_at)
        try:
            bounded.check_pairs(request.query, "query")
            parsed = parse_report(fmt, request, context)
        except ParseError as exc:
            raise InputError(
                f"invalid {fmt} report", [{"field": exc.field, "reason": exc.reason}]
            ) from None
        # replace() re-validates the payload; skip it when the adapter named the same source.
        events = [e if e.source == source else replace(e, source=source) for e in parsed.events]
        return Outcome(events, parsed.reply_status, parsed.reply_body, parsed.reply_content_type)
    document = decode_json(request.body)
    try:
        events = parse_items(
            target.kind,
            document,
            now=received_at,
            source=source,
            carriers=settings.carriers.keys(),
            normalise_id=_normaliser(settings),
            limits=limits_of(settings),
        )
    except RequestError as exc:
        noun = {"messages": "message", "submissions": "submission", "refusals": "refusal"}
        raise InputError(
            f"invalid {noun[target.kind]}", [p.as_json() for p in exc.problems]
        ) from None
    return Outcome(events)


def decode_json(body: bytes) -> Any:
    """JSON with decimals kept exact; a fraction where a number is expected is an error
    downstream, never a silently rounded float. Bounded like every carrier's JSON
    (``bounded.load_json``): long number literals, deep nesting, NULs and lone surrogates
    are refused before anything reads the document."""
    if not body.strip():
        raise InputError("empty body", [{"field": "body", "reason": "a JSON body is required"}])
    try:
        return bounded.load_json(body.decode("utf-8"))
    except UnicodeDecodeError:
        raise InputError("invalid JSON", [{"field": "body", "reason": "not UTF-8"}]) from None
    except json.JSONDecodeError as exc:
        reason = f"{exc.msg} (line {exc.lineno}, column {exc.colno})"
        raise InputError("invalid JSON", [{"field": "body", "reason": reason}]) from None
    except bounded.Refused as exc:
        raise InputError("invalid JSON", [{"field": "body", "reason": exc.reason}]) from None


def _normaliser(settings: Settings) -> Callable[[str, str, int | None], str]:
    """``(carrier, id, base) -> id`` spelt as that carrier's reports will spell it, so that
    a submission and its reports correlate (docs/carriers.md): a numeric id written in
    ``base`` becomes decimal, as an ``smpp`` callback with ``id_base`` makes its receipts'."""
    from pipeline.ingest.adapters import normalise_carrier_message_id

    def normalise(carrier: str, carrier_message_id: str, base: int | None = None) -> str:
        return normalise_carrier_message_id(carrier_message_id, base=base)

    return normalise
