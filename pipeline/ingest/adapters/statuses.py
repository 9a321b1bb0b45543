"""Gateway status words → Altegio status codes, one table per gateway format (docs/carriers.md).

The tables are data, not logic, so docs/carriers.md can list them row for row and a test can
prove every row is there. Altegio's codes (seeds/altegio-delivery-status.md): 1 delivered,
2 not delivered, 4 sent to phone, 8 transferred to the operator, 16 rejected by operator,
52 not enough funds.
"""

from __future__ import annotations

from pipeline.domain.status import (
    DELIVERED,
    KNOWN_STATUSES,
    NOT_DELIVERED,
    NOT_ENOUGH_FUNDS,
    REJECTED,
    SENT_TO_PHONE,
    TRANSFERRED,
)

ALTEGIO_CODES = KNOWN_STATUSES

#: SMPP 3.4 Appendix B receipt ``stat:`` values, plus the non-standard ones SMSCs send.
#: Kannel (gw/smsc/smsc_smpp.c, handle_dlr) reads DELIVRD as delivered; ACCEPTD, ACKED,
#: BUFFRED, BUFFERD and ENROUTE as buffered; everything else as failed. We follow it, except
#: that REJECTD keeps Altegio's own code for a rejection instead of Kannel's "failed".
SMPP_STATS: dict[str, int] = {
    "DELIVRD": DELIVERED,
    "ENROUTE": SENT_TO_PHONE,
    "ACCEPTD": SENT_TO_PHONE,
    "ACKED": SENT_TO_PHONE,
    "BUFFRED": SENT_TO_PHONE,
    "BUFFERD": SENT_TO_PHONE,
    "SCHEDULED": SENT_TO_PHONE,
    "EXPIRED": NOT_DELIVERED,
    "DELETED": NOT_DELIVERED,
    "UNDELIV": NOT_DELIVERED,
    "UNKNOWN": NOT_DELIVERED,
    "FAILED": NOT_DELIVERED,
    "NACK": NOT_DELIVERED,
    "SKIPPED": NOT_DELIVERED,
    "REJECTD": REJECTED,
    "REJECTED": REJECTED,
}

#: SMPP message_state TLV (0x0427) values, SMPP 3.4 §5.2.28 (v5.0 adds 0 and 9).
SMPP_MESSAGE_STATES: dict[int, str] = {
    0: "SCHEDULED",
    1: "ENROUTE",
    2: "DELIVRD",
    3: "EXPIRED",
    4: "DELETED",
    5: "UNDELIV",
    6: "ACCEPTD",
    7: "UNKNOWN",
    8: "REJECTD",
    9: "SKIPPED",
}

#: Kannel DLR types (gw/dlr.h), the ``%d`` of a dlr-url; the same numbers as Altegio's codes.
KANNEL_TYPES: dict[int, int] = {
    1: DELIVERED,  # DLR_SUCCESS: delivered to phone
    2: NOT_DELIVERED,  # DLR_FAIL: not delivered to phone
    4: SENT_TO_PHONE,  # DLR_BUFFERED: queued on the SMSC
    8: TRANSFERRED,  # DLR_SMSC_SUCCESS: the SMSC accepted the submit
    16: REJECTED,  # DLR_SMSC_FAIL: the SMSC refused the submit
}

#: Infobip status groups (groupName / groupId), "Message status codes".
INFOBIP_GROUPS: dict[str, int] = {
    "PENDING": TRANSFERRED,
    "UNDELIVERABLE": NOT_DELIVERED,
    "DELIVERED": DELIVERED,
    "EXPIRED": NOT_DELIVERED,
    "REJECTED": REJECTED,
}
INFOBIP_GROUP_IDS: dict[int, str] = {
    1: "PENDING",
    2: "UNDELIVERABLE",
    3: "DELIVERED",
    4: "EXPIRED",
    5: "REJECTED",
}
#: Infobip status names that decide over their group.
INFOBIP_NAMES: dict[str, int] = {
    # group PENDING: "en route", the SMPP ENROUTE of the operator.
    "PENDING_ENROUTE": SENT_TO_PHONE,
    # group DELIVERED, but intermediate: "reached the operator, not yet the handset".
    "DELIVERED_TO_OPERATOR": TRANSFERRED,
    "DELIVERED_TO_HANDSET": DELIVERED,
    # group UNDELIVERABLE, but the operator refused it: Altegio's "rejected by operator".
    "UNDELIVERABLE_REJECTED_OPERATOR": REJECTED,
    # group REJECTED, but the cause is the account's balance, not the operator.
    "REJECTED_NOT_ENOUGH_CREDITS": NOT_ENOUGH_FUNDS,
}

#: Vonage SMS API delivery receipt ``status`` values.
VONAGE_STATUSES: dict[str, int] = {
    "delivered": DELIVERED,
    "accepted": SENT_TO_PHONE,
    "buffered": SENT_TO_PHONE,
    "expired": NOT_DELIVERED,
    "failed": NOT_DELIVERED,
    "unknown": NOT_DELIVERED,
    "rejected": REJECTED,
}

#: Twilio ``MessageStatus`` values of an outbound message's status callback.
TWILIO_STATUSES: dict[str, int] = {
    "accepted": TRANSFERRED,
    "scheduled": TRANSFERRED,
    "queued": TRANSFERRED,
    "sending": TRANSFERRED,
    "sent": SENT_TO_PHONE,
    "delivered": DELIVERED,
    "read": DELIVERED,
    "undelivered": NOT_DELIVERED,
    "failed": NOT_DELIVERED,
    "canceled": REJECTED,
}
