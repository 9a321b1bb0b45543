"""``twilio``: Twilio's outbound-message status callback (form POST to StatusCallback).

Fields: ``MessageSid`` (Twilio's id; ``SmsSid`` in old callbacks), ``MessageStatus``
(``SmsStatus``), ``ErrorCode`` (only on failure), ``RawDlrDoneDate`` (the carrier receipt's
done date, ``YYMMDDhhmm`` with no zone; only on delivered/undelivered), ``NumSegments`` when
Twilio includes it; no price. Callbacks may arrive out of order (``sent`` after
``delivered``); ordering is the projector's job, each callback here is one fact.

Twilio signs every callback with ``X-Twilio-Signature``; the server checks it with
``twilio_signature`` (authentication is not a parser's job, so ``parse`` does not).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable, Mapping

from pipeline.ingest.adapters import statuses
from pipeline.ingest.adapters.base import CarrierContext, Parsed, ParseError, RawRequest
from pipeline.ingest.adapters.fields import first, first_values, parse_int, query_and_form
from pipeline.ingest.adapters.ids import normalise_carrier_message_id
from pipeline.ingest.adapters.report import Report, to_event
from pipeline.ingest.adapters.times import parse_smpp_date

FORMAT = "twilio"
INBOUND = frozenset({"receiving", "received"})


def twilio_signature(
    url: str, params: Mapping[str, str] | Iterable[tuple[str, str]], auth_token: str
) -> str:
    """Twilio's request signature: base64 HMAC-SHA1, keyed with the auth token, of the full
    URL Twilio called followed by every POST parameter, sorted by name, as name + value.

    Compare it with the header in constant time (``hmac.compare_digest``).
    """
    pairs = list(params.items()) if isinstance(params, Mapping) else list(params)
    data = url + "".join(name + value for name, value in sorted(pairs))
    digest = hmac.new(auth_token.encode("utf-8"), data.encode("utf-8"), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


def parse(request: RawRequest, carrier: CarrierContext) -> Parsed:
    pairs = query_and_form(request)
    sid = _either(pairs, "MessageSid", "SmsSid")
    if sid is None:
        raise ParseError("MessageSid", "required")
    raw_status = _either(pairs, "MessageStatus", "SmsStatus")
    if raw_status is None:
        raise ParseError("MessageStatus", "required")
    if raw_status.lower() in INBOUND:
        raise ParseError("MessageStatus", f"{raw_status!r} is an inbound message, not a report")
    status = statuses.TWILIO_STATUSES.get(raw_status.lower())
    if status is None:
        raise ParseError("MessageStatus", f"unknown status {raw_status[:20]!r} (docs/carriers.md)")
    segments = _either(pairs, "NumSegments")
    done = _either(pairs, "RawDlrDoneDate")
    report = Report(
        format=FORMAT,
        raw_status=raw_status,
        status=status,
        raw=first_values(pairs),
        message_id=_either(pairs, "message_id"),
        carrier_message_id=normalise_carrier_message_id(sid, field="MessageSid"),
        error_code=_either(pairs, "ErrorCode"),
        parts=None if segments is None else parse_int(segments, "NumSegments", minimum=1),
        done_at=None if done is None else parse_smpp_date(done, carrier.timezone, "RawDlrDoneDate"),
        raw_done=done,
    )
    return Parsed(events=[to_event(report, request, carrier)])


def _either(pairs: list[tuple[str, str]], *names: str) -> str | None:
    for name in names:
        value = first(pairs, name)
        if value is not None and value.strip():
            return value.strip()
    return None
