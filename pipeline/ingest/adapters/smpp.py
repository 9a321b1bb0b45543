"""``smpp``: SMPP 3.4 delivery receipts (Appendix B), the text inside a deliver_sm.

``id:IIII sub:SSS dlvrd:DDD submit date:YYMMDDhhmm done date:YYMMDDhhmm stat:DDDDDDD
err:E text:...`` is the spec; SMSCs vary it (seconds in the dates, ``Text:`` capitalised,
sub/dlvrd missing, err with 3 or 4 digits, stats outside the spec such as FAILED or ACKED),
so ``parse_receipt`` reads the fields by name wherever they are and keeps them verbatim.
Kannel and Jasmin pass the same receipt on; their adapters use this module for it.

Over HTTP a receipt arrives as a ``receipt`` (or ``short_message``) query/form field, or as a
text body: one receipt per line, or a deliver_sm dump with ``short_message="..."`` and
``TLV name (0xTAG) = value`` lines, as in the SMPP sample.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from pipeline.ingest.adapters import statuses
from pipeline.ingest.adapters.base import CarrierContext, Parsed, ParseError, RawRequest
from pipeline.ingest.adapters.fields import body_text, content_type, first, parse_form
from pipeline.ingest.adapters.ids import normalise_carrier_message_id
from pipeline.ingest.adapters.report import Report, to_event
from pipeline.ingest.adapters.times import parse_smpp_date

FORMAT = "smpp"

# A field name where one can start: at the beginning or after a blank.
_KEY = re.compile(
    r"(?:^|(?<=\s))(id|sub|dlvrd|submit[ _]?date|done[ _]?date|stat|err|text)\s*:",
    re.IGNORECASE,
)
_STAT = re.compile(r"^[A-Z_]{1,16}$")
#: The spec's layout exactly (Appendix B, single blanks, lower-case keys), which almost every
#: receipt follows: read with one match. Blank-free values cannot hide a key, so this reads
#: exactly what the general scan below would; anything else takes the general scan.
_SPEC_LAYOUT = re.compile(
    r"id:(\S*) sub:(\S*) dlvrd:(\S*) submit date:(\S*) done date:(\S*) stat:(\S*) err:(\S*)"
    r" text:(.*)",
    re.DOTALL,
)
_TLV = re.compile(r"^TLV\s+(\w+)\s*(?:\((0x[0-9A-Fa-f]+)\))?\s*=\s*(.*)$")
_HEADER_PAIR = re.compile(r'(\w+)=("[^"]*"|\S*)')
MAX_RECEIPTS = 1000


@dataclass(frozen=True, slots=True)
class Receipt:
    """One SMPP delivery receipt's fields, verbatim (stat upper-cased)."""

    stat: str
    id: str | None = None
    sub: str | None = None
    dlvrd: str | None = None
    submit_date: str | None = None
    done_date: str | None = None
    err: str | None = None
    text: str | None = None

    @property
    def status(self) -> int | None:
        """The Altegio code of ``stat``; None for a stat no table knows."""
        return statuses.SMPP_STATS.get(self.stat)

    def done_at(self, zone: ZoneInfo) -> datetime | None:
        """The done date in UTC, the zone-less date read in the carrier's zone."""
        if self.done_date is None:
            return None
        return parse_smpp_date(self.done_date, zone, "done date")

    def as_raw(self) -> dict[str, str]:
        fields = {
            "id": self.id,
            "sub": self.sub,
            "dlvrd": self.dlvrd,
            "submit date": self.submit_date,
            "done date": self.done_date,
            "stat": self.stat,
            "err": self.err,
            "text": self.text,
        }
        return {key: value for key, value in fields.items() if value is not None}


def is_receipt(text: str) -> bool:
    """Whether ``text`` reads as a delivery receipt (it names a ``stat:``)."""
    return _names_stat(_KEY.finditer(text)) if "stat" in text.lower() else False


def scan_receipt(text: str) -> Receipt | None:
    """``parse_receipt(text)`` when ``is_receipt(text)``, else None: both in one scan of the
    text, for gateways whose field holds either a receipt or something else (``ACK/``)."""
    spec = _SPEC_LAYOUT.fullmatch(text)
    if spec is not None:
        return _spec_receipt(spec)
    if "stat" not in text.lower():
        return None
    matches = list(_KEY.finditer(text))
    if not _names_stat(matches):
        return None
    return _receipt(text, matches)


def parse_receipt(text: str) -> Receipt:
    """The fields of a receipt text; ParseError naming the field when it is not one.

    ``text:`` is the message's first characters and may hold anything, so it ends the
    parse: keys are only looked for before it.
    """
    if not isinstance(text, str) or not text.strip():
        raise ParseError("receipt", "empty")
    spec = _SPEC_LAYOUT.fullmatch(text)
    if spec is not None:
        return _spec_receipt(spec)
    return _receipt(text, list(_KEY.finditer(text)))


def _spec_receipt(match: re.Match[str]) -> Receipt:
    ident, sub, dlvrd, submit_date, done_date, raw_stat, err, text = match.groups()
    stat = raw_stat.upper()
    if not _STAT.match(stat):
        raise ParseError("stat", f"not a receipt status: {raw_stat[:20]!r}")
    return Receipt(
        stat=stat,
        id=ident or None,
        sub=sub or None,
        dlvrd=dlvrd or None,
        submit_date=submit_date or None,
        done_date=done_date or None,
        err=err or None,
        text=text,
    )


def _names_stat(matches: Iterable[re.Match[str]]) -> bool:
    return any(match.group(1).lower() == "stat" for match in matches)


def _receipt(text: str, matches: list[re.Match[str]]) -> Receipt:
    if not text.strip():
        raise ParseError("receipt", "empty")
    found: dict[str, str] = {}
    for index, match in enumerate(matches):
        key = match.group(1).lower().replace(" ", "").replace("_", "")
        if key == "text":
            found.setdefault("text", text[match.end() :])
            break
        end = matches[index + 1].start() if index + 1 < len(matches) else len(text)
        found.setdefault(key, text[match.end() : end].strip())
    if "stat" not in found:
        raise ParseError("stat", "missing: not a delivery receipt")
    stat = found["stat"].upper()
    if not _STAT.match(stat):
        raise ParseError("stat", f"not a receipt status: {found['stat'][:20]!r}")
    return Receipt(
        stat=stat,
        id=found.get("id") or None,
        sub=found.get("sub") or None,
        dlvrd=found.get("dlvrd") or None,
        submit_date=found.get("submitdate") or None,
        done_date=found.get("donedate") or None,
        err=found.get("err") or None,
        text=found.get("text"),
    )


def parse_id_base(value: str | None) -> int | None:
    """The number base an SMSC quotes receipt ids in (like Kannel's ``msg-id-type``)."""
    if value is None or not value.strip():
        return None
    bases = {"hex": 16, "16": 16, "dec": 10, "decimal": 10, "10": 10}
    base = bases.get(value.strip().lower())
    if base is None:
        raise ParseError("id_base", f"must be hex or decimal, got {value[:10]!r}")
    return base


@dataclass(frozen=True, slots=True)
class _Pdu:
    """A receipt with what the deliver_sm carried around it."""

    receipt_text: str
    tlv: dict[str, str]
    header: dict[str, str]


def parse(request: RawRequest, carrier: CarrierContext) -> Parsed:
    query = list(request.query)
    pdus = _pdus(request)
    if not pdus:
        raise ParseError("receipt", "the request carries no receipt")
    if len(pdus) > MAX_RECEIPTS:
        raise ParseError("body", f"more than {MAX_RECEIPTS} receipts in one request")
    message_id = (first(query, "message_id") or "").strip() or None
    if message_id is not None and len(pdus) > 1:
        raise ParseError("message_id", "names one message but the request has several receipts")
    base = parse_id_base(first(query, "id_base"))
    events = []
    for index, pdu in enumerate(pdus):
        try:
            report = receipt_report(pdu, carrier, message_id=message_id, base=base)
            events.append(to_event(report, request, carrier))
        except ParseError as exc:
            where = f"[{index}]." if len(pdus) > 1 else ""
            raise ParseError(where + exc.field, exc.reason) from None
    return Parsed(events=events)


def receipt_report(
    pdu: _Pdu, carrier: CarrierContext, *, message_id: str | None, base: int | None
) -> Report:
    receipt = _receipt_with_tlv(pdu)
    status = receipt.status
    if status is None:
        raise ParseError("stat", f"unknown receipt status {receipt.stat!r} (docs/carriers.md)")
    # SMPP 3.4 §5.3.2.12: receipted_message_id is the id the receipt is about; Kannel prefers
    # it over the text's ``id:`` as well.
    raw_id = pdu.tlv.get("receipted_message_id") or receipt.id
    carrier_id = None if raw_id is None else normalise_carrier_message_id(raw_id, base=base)
    raw: dict[str, Any] = {"receipt": pdu.receipt_text}
    if pdu.tlv:
        raw["tlv"] = pdu.tlv
    if pdu.header:
        raw["pdu"] = pdu.header
    return Report(
        format=FORMAT,
        raw_status=receipt.stat,
        status=status,
        raw=raw,
        message_id=message_id,
        carrier_message_id=carrier_id,
        error_code=receipt.err,
        done_at=receipt.done_at(carrier.timezone),
        raw_done=receipt.done_date,
    )


def _receipt_with_tlv(pdu: _Pdu) -> Receipt:
    """The receipt text, or the message_state TLV alone when the text names no stat."""
    state = pdu.tlv.get("message_state")
    if is_receipt(pdu.receipt_text) or state is None:
        return parse_receipt(pdu.receipt_text)
    try:
        code = state.split()[0]
        if not (code.isascii() and code.isdigit() and len(code) <= 3):
            raise ValueError(code)
        stat = statuses.SMPP_MESSAGE_STATES[int(code)]
    except (ValueError, KeyError, IndexError):
        raise ParseError("message_state", f"not an SMPP message state: {state[:10]!r}") from None
    return Receipt(stat=stat, id=None, text=pdu.receipt_text or None)


def _pdus(request: RawRequest) -> list[_Pdu]:
    fields = list(request.query)
    if content_type(request) == "application/x-www-form-urlencoded":
        fields += parse_form(request)
    elif request.body.strip():
        return _pdus_from_text(body_text(request))
    texts = [value for key, value in fields if key in ("receipt", "short_message")]
    return [_Pdu(text, {}, {}) for text in texts if text.strip()]


def _pdus_from_text(text: str) -> list[_Pdu]:
    """Receipt lines, or a deliver_sm dump (header pairs, short_message, TLV lines)."""
    pdus: list[_Pdu] = []
    header: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        tlv = _TLV.match(stripped)
        if tlv:
            if not pdus:
                raise ParseError("body", f"line {number}: a TLV before any short_message")
            value = tlv.group(3).split(" #", 1)[0].strip().strip('"')
            pdus[-1].tlv[tlv.group(1)] = value
        elif stripped.startswith("short_message="):
            receipt = stripped[len("short_message=") :].strip()
            if len(receipt) >= 2 and receipt[0] == receipt[-1] == '"':
                receipt = receipt[1:-1]
            pdus.append(_Pdu(receipt, {}, header))
            header = {}
        elif is_receipt(stripped):
            pdus.append(_Pdu(stripped, {}, {}))
        elif _HEADER_PAIR.match(stripped):
            header.update((key, value.strip('"')) for key, value in _HEADER_PAIR.findall(stripped))
        else:
            raise ParseError("body", f"line {number}: not a delivery receipt")
    return pdus
