"""Ingest tests. The helpers below build adapter inputs the way the server does: a
RawRequest from a sample or from fields, and a carrier context with a fixed receive time,
so every parse is deterministic."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from pipeline.ingest.adapters import CarrierContext, RawRequest

SAMPLES = Path(__file__).parent / "samples"
RECEIVED_AT = datetime(2024, 1, 20, 9, 0, tzinfo=UTC)


def sample_text(name: str) -> str:
    return (SAMPLES / name).read_text(encoding="utf-8")


def carrier_context(
    name: str = "mts", zone: str = "UTC", received_at: datetime = RECEIVED_AT
) -> CarrierContext:
    return CarrierContext(name=name, timezone=ZoneInfo(zone), received_at=received_at)


def get_request(path: str, **fields: str) -> RawRequest:
    return RawRequest("GET", path, list(fields.items()), {}, b"")


def form_request(
    path: str, fields: dict[str, str], query: dict[str, str] | None = None
) -> RawRequest:
    return RawRequest(
        "POST",
        path,
        list((query or {}).items()),
        {"content-type": "application/x-www-form-urlencoded"},
        urlencode(fields).encode(),
    )


def json_request(path: str, body: str | bytes, query: dict[str, str] | None = None) -> RawRequest:
    data = body.encode() if isinstance(body, str) else body
    return RawRequest(
        "POST", path, list((query or {}).items()), {"content-type": "application/json"}, data
    )
