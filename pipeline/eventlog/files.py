"""The JSON-lines event file format of ``smsrecon events append`` (docs/events.md)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from pipeline.eventlog.model import EventError, NewEvent
from pipeline.times import parse_rfc3339_text

ALLOWED = {
    "type",
    "message_id",
    "carrier",
    "carrier_message_id",
    "occurred_at",
    "source",
    "payload",
    "dedup_key",
}
REQUIRED = ("type", "occurred_at", "source")


class EventFileError(ValueError):
    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def parse_rfc3339(value: Any, field: str) -> datetime:
    if not isinstance(value, str):
        raise EventError(f"{field}: must be an RFC 3339 string")
    try:
        parsed = parse_rfc3339_text(value)
    except ValueError:
        raise EventError(f"{field}: not an RFC 3339 time: {value!r}") from None
    if parsed.tzinfo is None:
        raise EventError(f"{field}: has no time zone (add Z or an offset): {value!r}")
    return parsed


def event_from_json(obj: Any) -> NewEvent:
    if not isinstance(obj, dict):
        raise EventError("each line must be a JSON object")
    unknown = sorted(set(obj) - ALLOWED)
    if unknown:
        raise EventError(f"{unknown[0]}: unknown key")
    for key in REQUIRED:
        if key not in obj or obj[key] in (None, ""):
            raise EventError(f"{key}: required")
    return NewEvent(
        type=obj["type"],
        occurred_at=parse_rfc3339(obj["occurred_at"], "occurred_at"),
        source=obj["source"],
        payload=obj.get("payload") or {},
        message_id=obj.get("message_id"),
        carrier=obj.get("carrier"),
        carrier_message_id=obj.get("carrier_message_id"),
        dedup_key=obj.get("dedup_key"),
    )


def parse_event_lines(lines: Iterable[str]) -> list[NewEvent]:
    """Parse every line; collect every problem as ``LINE: field: reason`` before failing."""
    parsed: list[NewEvent] = []
    problems: list[str] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line, parse_float=_no_float)
            parsed.append(event_from_json(obj))
        except json.JSONDecodeError as exc:
            problems.append(f"{number}: not JSON: {exc.msg} (column {exc.colno})")
        except EventError as exc:
            problems.append(f"{number}: {exc}")
    if problems:
        raise EventFileError(problems)
    return parsed


def _no_float(text: str) -> Any:
    raise EventError(f"payload: the number {text} has a fraction; write decimals as strings")
