"""Carrier DLR adapters: one pure parser per gateway dialect (docs/carriers.md)."""

from pipeline.ingest.adapters.base import (
    FORMATS,
    CarrierContext,
    Parsed,
    ParseError,
    RawRequest,
    parse_report,
)
from pipeline.ingest.adapters.ids import normalise_carrier_message_id

__all__ = [
    "FORMATS",
    "CarrierContext",
    "ParseError",
    "Parsed",
    "RawRequest",
    "normalise_carrier_message_id",
    "parse_report",
]
