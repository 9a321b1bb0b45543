"""Carrier DLR adapters: one pure parser per gateway format (docs/carriers.md)."""

from pipeline.ingest.adapters.base import CarrierContext, Parsed, ParseError, RawRequest
from pipeline.ingest.adapters.ids import normalise_carrier_message_id
from pipeline.ingest.adapters.registry import ADAPTERS, FORMATS, parse_report

__all__ = [
    "ADAPTERS",
    "FORMATS",
    "CarrierContext",
    "ParseError",
    "Parsed",
    "RawRequest",
    "normalise_carrier_message_id",
    "parse_report",
]
