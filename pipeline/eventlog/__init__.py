"""The append-only event log: every fact smsrecon learns, recorded once and never changed."""

from pipeline.eventlog.append import AppendResult, append, append_in
from pipeline.eventlog.model import NewEvent, StoredEvent, UnreadableEvent, derive_dedup_key
from pipeline.eventlog.read import Batch, read, read_in

__all__ = [
    "AppendResult",
    "Batch",
    "NewEvent",
    "StoredEvent",
    "UnreadableEvent",
    "append",
    "append_in",
    "derive_dedup_key",
    "read",
    "read_in",
]
