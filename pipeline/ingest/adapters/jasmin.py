"""``jasmin``: Jasmin's HTTP DLR (DLRThrower), a form POST by default or a GET.

Fields (jasmin/managers/content.py, DLRContentForHttpapi): ``id`` (Jasmin's message id, the
one /send answered with), ``level``, ``message_status``, ``connector``, ``id_smsc``,
``sub``, ``dlvrd``, ``subdate``, ``donedate``, ``err``, ``text``; a receipt field the SMSC
did not send arrives as ``ND``. ``level`` is the level of THIS report (1: the submit_sm_resp,
``message_status`` an ``ESME_*`` command status; 2: the deliver_sm receipt, ``message_status``
its stat) even when level 3 was requested. For level 2, ``connector`` holds the receipt id
(jasmin/managers/dlr.py passes ``dlr_connector=pdu_dlr_id``), not the connector's name.
Jasmin resends until the body is exactly ``ACK/Jasmin``.
"""

from __future__ import annotations

from datetime import datetime

from pipeline.ingest.adapters import statuses
from pipeline.ingest.adapters.base import CarrierContext, Parsed, ParseError, RawRequest
from pipeline.ingest.adapters.fields import (
    first,
    first_values,
    parse_int,
    query_and_form,
    require,
)
from pipeline.ingest.adapters.ids import normalise_carrier_message_id
from pipeline.ingest.adapters.report import Report, to_event
from pipeline.ingest.adapters.smpp import Receipt

FORMAT = "jasmin"
REPLY = "ACK/Jasmin"
NOT_DEFINED = "ND"


def parse(request: RawRequest, carrier: CarrierContext) -> Parsed:
    pairs = query_and_form(request)
    jasmin_id = normalise_carrier_message_id(require(pairs, "id"), field="id")
    level = parse_int(require(pairs, "level"), "level")
    if level not in (1, 2):
        raise ParseError("level", f"{level}: a report is level 1 or 2")
    message_status = require(pairs, "message_status")
    message_id = _defined(first(pairs, "message_id"))

    if level == 1:
        if not message_status.startswith("ESME_"):
            raise ParseError(
                "message_status", f"level 1 expects an ESME_* status: {message_status[:24]!r}"
            )
        accepted = message_status == "ESME_ROK"
        report = Report(
            format=FORMAT,
            raw_status=message_status,
            status=statuses.TRANSFERRED if accepted else statuses.REJECTED,
            raw=first_values(pairs),
            message_id=message_id,
            carrier_message_id=jasmin_id,
            error_code=None if accepted else message_status,
        )
    else:
        receipt = Receipt(
            stat=message_status.upper(),
            id=_defined(first(pairs, "id_smsc")),
            sub=_defined(first(pairs, "sub")),
            dlvrd=_defined(first(pairs, "dlvrd")),
            submit_date=_defined(first(pairs, "subdate")),
            done_date=_defined(first(pairs, "donedate")),
            err=_defined(first(pairs, "err")),
            text=_defined(first(pairs, "text")),
        )
        if receipt.status is None:
            raise ParseError("message_status", f"unknown receipt status {message_status[:24]!r}")
        report = Report(
            format=FORMAT,
            raw_status=receipt.stat,
            status=receipt.status,
            raw=first_values(pairs),
            message_id=message_id,
            carrier_message_id=jasmin_id,
            error_code=receipt.err,
            done_at=_done_at(receipt, carrier),
            raw_done=receipt.done_date,
        )
    return Parsed(events=[to_event(report, request, carrier)], reply_body=REPLY)


def _defined(value: str | None) -> str | None:
    """Jasmin writes ``ND`` for a receipt field the SMSC did not send."""
    if value is None or not value.strip() or value.strip() == NOT_DEFINED:
        return None
    return value.strip()


def _done_at(receipt: Receipt, carrier: CarrierContext) -> datetime | None:
    try:
        return receipt.done_at(carrier.timezone)
    except ParseError as exc:
        raise ParseError("donedate", exc.reason) from None
