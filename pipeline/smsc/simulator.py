"""An SMPP 3.4 SMSC just big enough to drive a real Kannel bearerbox, in tests and by hand
(``python -m pipeline.smsc``, see docs/kannel.md).

Kannel only produces delivery reports when an SMSC answers it, and a real operator is not
something a test can call. This simulator speaks the handful of PDUs Kannel's `smsc = smpp`
driver uses (binds, enquire_link, unbind, submit_sm, deliver_sm) and lets the test decide,
per destination number, what the "network" does with each message: accept it and report
DELIVRD / UNDELIV / REJECTD (optionally after intermediate ENROUTE or ACCEPTD receipts), or
refuse the submit_sm outright with an error command_status. Everything it receives and sends
is recorded so a test can tell "Kannel never asked" from "smsrecon never stored".

The PDU layout follows the SMPP v3.4 specification (sections 4.1-4.7 and 5.3 for the
receipted_message_id and message_state TLVs); only the fields Kannel sends or reads are
interpreted, the rest are carried as the spec's defaults.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import struct
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import IntEnum
from types import TracebackType

log = logging.getLogger("smsrecon.smsc")

HEADER = struct.Struct(">IIII")
#: A PDU longer than this is a framing error, not a message (Kannel's own limit is similar).
MAX_PDU_LENGTH = 64 * 1024


class Command(IntEnum):
    GENERIC_NACK = 0x80000000
    BIND_RECEIVER = 0x00000001
    BIND_RECEIVER_RESP = 0x80000001
    BIND_TRANSMITTER = 0x00000002
    BIND_TRANSMITTER_RESP = 0x80000002
    SUBMIT_SM = 0x00000004
    SUBMIT_SM_RESP = 0x80000004
    DELIVER_SM = 0x00000005
    DELIVER_SM_RESP = 0x80000005
    UNBIND = 0x00000006
    UNBIND_RESP = 0x80000006
    BIND_TRANSCEIVER = 0x00000009
    BIND_TRANSCEIVER_RESP = 0x80000009
    ENQUIRE_LINK = 0x00000015
    ENQUIRE_LINK_RESP = 0x80000015


class Status(IntEnum):
    """The command_status values this simulator answers with (SMPP v3.4 section 5.1.3)."""

    ROK = 0x00000000
    RINVCMDLEN = 0x00000002
    RINVCMDID = 0x00000003
    RINVBNDSTS = 0x00000004
    RSYSERR = 0x00000008
    RINVDSTADR = 0x0000000B
    RINVPASWD = 0x0000000E


BINDS = {
    Command.BIND_RECEIVER: ("receiver", Command.BIND_RECEIVER_RESP),
    Command.BIND_TRANSMITTER: ("transmitter", Command.BIND_TRANSMITTER_RESP),
    Command.BIND_TRANSCEIVER: ("transceiver", Command.BIND_TRANSCEIVER_RESP),
}

#: The receipt `stat:` words and the message_state TLV value each one carries (spec 5.2.28).
MESSAGE_STATES = {
    "ENROUTE": 1,
    "DELIVRD": 2,
    "EXPIRED": 3,
    "DELETED": 4,
    "UNDELIV": 5,
    "ACCEPTD": 6,
    "UNKNOWN": 7,
    "REJECTD": 8,
}
FINAL_STATS = frozenset({"DELIVRD", "EXPIRED", "DELETED", "UNDELIV", "UNKNOWN", "REJECTD"})

TAG_RECEIPTED_MESSAGE_ID = 0x001E
TAG_MESSAGE_STATE = 0x0427
ESM_CLASS_DELIVERY_RECEIPT = 0x04


@dataclass(frozen=True)
class Outcome:
    """What the simulated network does with a message sent to one destination.

    ``submit_status`` other than ROK refuses the submit_sm (no receipt follows). Otherwise
    each stat in ``intermediate`` is reported first, in order (repeat one to make Kannel
    call twice with the same report), then ``final`` (None: no final receipt).
    """

    final: str | None = "DELIVRD"
    intermediate: tuple[str, ...] = ()
    submit_status: int = Status.ROK
    err: str = "000"

    def __post_init__(self) -> None:
        for stat in (*self.intermediate, *([self.final] if self.final else [])):
            if stat not in MESSAGE_STATES:
                raise ValueError(f"unknown receipt stat {stat!r}")
        if self.final is not None and self.final not in FINAL_STATS:
            raise ValueError(f"{self.final!r} is not a final stat")


@dataclass(frozen=True)
class Pdu:
    command_id: int
    command_status: int
    sequence: int
    body: bytes = b""

    def pack(self) -> bytes:
        return HEADER.pack(HEADER.size + len(self.body), *self.fields) + self.body

    @property
    def fields(self) -> tuple[int, int, int]:
        return self.command_id, self.command_status, self.sequence


@dataclass(frozen=True)
class Bind:
    mode: str
    system_id: str
    system_type: str
    interface_version: int


@dataclass(frozen=True)
class Submission:
    """One submit_sm as received, and how it was answered."""

    source: str
    destination: str
    text: bytes
    registered_delivery: int
    command_status: int
    message_id: str | None


@dataclass(frozen=True)
class Receipt:
    """One deliver_sm receipt as sent to the ESME."""

    message_id: str
    destination: str
    stat: str
    text: str


@dataclass
class Record:
    binds: list[Bind] = field(default_factory=list)
    submissions: list[Submission] = field(default_factory=list)
    receipts: list[Receipt] = field(default_factory=list)
    #: command_status of every deliver_sm_resp, in arrival order.
    receipt_acks: list[int] = field(default_factory=list)
    #: command ids answered with generic_nack.
    unknown_commands: list[int] = field(default_factory=list)
    unbinds: int = 0


class Malformed(ValueError):
    """A PDU body that does not hold the fields its command promises."""


class _Body:
    """A cursor over a PDU body: C-octet strings and big-endian integers."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.at = 0

    def cstring(self, limit: int = 256) -> str:
        end = self.data.find(b"\0", self.at, self.at + limit + 1)
        if end < 0:
            raise Malformed(f"unterminated C-octet string at byte {self.at}")
        value = self.data[self.at : end].decode("latin-1")
        self.at = end + 1
        return value

    def u8(self) -> int:
        if self.at >= len(self.data):
            raise Malformed(f"body ends at byte {self.at}")
        self.at += 1
        return self.data[self.at - 1]

    def octets(self, length: int) -> bytes:
        if self.at + length > len(self.data):
            raise Malformed(f"{length} octets announced, {len(self.data) - self.at} present")
        self.at += length
        return self.data[self.at - length : self.at]


def cstring(value: str) -> bytes:
    return value.encode("latin-1") + b"\0"


def tlv(tag: int, value: bytes) -> bytes:
    return struct.pack(">HH", tag, len(value)) + value


def parse_bind(body: bytes, mode: str) -> Bind:
    cursor = _Body(body)
    system_id = cursor.cstring(16)
    cursor.cstring(9)  # password: checked by nothing here, and never recorded
    system_type = cursor.cstring(13)
    return Bind(mode, system_id, system_type, cursor.u8())


def parse_submit_sm(body: bytes) -> tuple[str, str, int, bytes]:
    """(source_addr, destination_addr, registered_delivery, short_message)."""
    cursor = _Body(body)
    cursor.cstring(6)  # service_type
    cursor.u8(), cursor.u8()  # source ton, npi
    source = cursor.cstring(21)
    cursor.u8(), cursor.u8()  # dest ton, npi
    destination = cursor.cstring(21)
    cursor.u8(), cursor.u8(), cursor.u8()  # esm_class, protocol_id, priority_flag
    cursor.cstring(17), cursor.cstring(17)  # schedule_delivery_time, validity_period
    registered_delivery = cursor.u8()
    cursor.u8(), cursor.u8(), cursor.u8()  # replace_if_present, data_coding, sm_default_msg_id
    text = cursor.octets(cursor.u8())
    return source, destination, registered_delivery, text


def smpp_date(moment: datetime) -> str:
    """YYMMDDhhmm, the receipt date format of SMPP v3.4 Appendix B."""
    return moment.astimezone(UTC).strftime("%y%m%d%H%M")


def receipt_text(message_id: str, stat: str, err: str, submitted: datetime, text: bytes) -> str:
    """The Appendix B receipt text; `text:` carries the first 20 octets of the message."""
    delivered = "001" if stat == "DELIVRD" else "000"
    return (
        f"id:{message_id} sub:001 dlvrd:{delivered} submit date:{smpp_date(submitted)} "
        f"done date:{smpp_date(submitted)} stat:{stat} err:{err} "
        f"text:{text[:20].decode('latin-1')}"
    )


def deliver_sm_body(handset: str, sender: str, message_id: str, stat: str, text: str) -> bytes:
    """A receipt: from the handset back to the original sender, esm_class 0x04."""
    short_message = text.encode("latin-1")
    return b"".join(
        [
            cstring(""),  # service_type
            bytes([1, 1]) + cstring(handset),  # source: international / E.164
            bytes([5, 0]) + cstring(sender),  # destination: alphanumeric sender id
            bytes([ESM_CLASS_DELIVERY_RECEIPT, 0, 0]),  # esm_class, protocol_id, priority
            cstring("") + cstring(""),  # schedule_delivery_time, validity_period
            bytes([0, 0, 0, 0]),  # registered_delivery, replace, data_coding, default msg
            bytes([len(short_message)]) + short_message,
            tlv(TAG_RECEIPTED_MESSAGE_ID, cstring(message_id)),
            tlv(TAG_MESSAGE_STATE, bytes([MESSAGE_STATES[stat]])),
        ]
    )


async def read_pdu(reader: asyncio.StreamReader) -> Pdu | None:
    """The next PDU, or None when the peer closed the connection between PDUs."""
    try:
        header = await reader.readexactly(HEADER.size)
    except asyncio.IncompleteReadError as exc:
        if exc.partial:
            raise Malformed("connection closed inside a PDU header") from None
        return None
    length, command_id, status, sequence = HEADER.unpack(header)
    if not HEADER.size <= length <= MAX_PDU_LENGTH:
        raise Malformed(f"command_length {length} out of range")
    body = await reader.readexactly(length - HEADER.size)
    return Pdu(command_id, status, sequence, body)


class SmscSimulator:
    """Listens on ``host``:``port`` (127.0.0.1, a free port) until closed; use ``async with``.

    ``outcomes`` maps a destination as Kannel submits it (digits, without the '+') to its
    Outcome; other destinations get ``default``. Message ids are decimal in receipts and
    the same number in hex in submit_sm_resp, which is what Kannel's ``msg-id-type = 0x01``
    describes (and what many real SMSCs do).
    """

    def __init__(
        self,
        outcomes: dict[str, Outcome] | None = None,
        default: Outcome = Outcome(),
        system_id: str = "smsrecon",
        first_message_id: int = 1_000_000_000,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.outcomes = dict(outcomes or {})
        self.default = default
        self.system_id = system_id
        self.record = Record()
        self.bound = asyncio.Event()
        self._ids = itertools.count(first_message_id)
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()
        self.host = host
        self.port = port

    async def __aenter__(self) -> SmscSimulator:
        self._server = await asyncio.start_server(self._serve, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            for task in list(self._connections):
                task.cancel()
            await asyncio.gather(*self._connections, return_exceptions=True)
            await self._server.wait_closed()
            self._server = None

    def outcome_for(self, destination: str) -> Outcome:
        return self.outcomes.get(destination.lstrip("+"), self.default)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        try:
            await _Session(self, reader, writer).run()
        except (Malformed, ConnectionError, asyncio.IncompleteReadError):
            pass  # a broken peer ends its own session, never the simulator
        finally:
            self._connections.discard(task)
            writer.close()
            with contextlib.suppress(ConnectionError, asyncio.CancelledError):
                await writer.wait_closed()

    def next_message_id(self) -> int:
        return next(self._ids)


class _Session:
    """One ESME connection: answers its PDUs in order until unbind or EOF."""

    def __init__(
        self, smsc: SmscSimulator, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.smsc = smsc
        self.reader = reader
        self.writer = writer
        self.mode: str | None = None
        self._sequence = itertools.count(1)

    async def run(self) -> None:
        while (pdu := await read_pdu(self.reader)) is not None:
            if not await self.handle(pdu):
                return

    async def send(self, pdu: Pdu) -> None:
        self.writer.write(pdu.pack())
        await self.writer.drain()

    async def handle(self, pdu: Pdu) -> bool:
        """Answer one PDU; False ends the session."""
        command = pdu.command_id
        record = self.smsc.record
        if command in BINDS:
            mode, resp = BINDS[Command(command)]
            bind = parse_bind(pdu.body, mode)
            record.binds.append(bind)
            status = Status.RINVBNDSTS if self.mode else Status.ROK
            log.info("bind_%s from system_id %r: status 0x%08X", mode, bind.system_id, status)
            self.mode = self.mode or mode
            await self.send(Pdu(resp, status, pdu.sequence, cstring(self.smsc.system_id)))
            self.smsc.bound.set()
        elif command == Command.ENQUIRE_LINK:
            await self.send(Pdu(Command.ENQUIRE_LINK_RESP, Status.ROK, pdu.sequence))
        elif command == Command.UNBIND:
            record.unbinds += 1
            await self.send(Pdu(Command.UNBIND_RESP, Status.ROK, pdu.sequence))
            return False
        elif command == Command.SUBMIT_SM:
            await self.submit(pdu)
        elif command == Command.DELIVER_SM_RESP:
            record.receipt_acks.append(pdu.command_status)
        elif command in (Command.ENQUIRE_LINK_RESP, Command.UNBIND_RESP, Command.GENERIC_NACK):
            pass  # answers to what we sent; nothing to do
        else:
            record.unknown_commands.append(command)
            await self.send(Pdu(Command.GENERIC_NACK, Status.RINVCMDID, pdu.sequence))
        return True

    async def submit(self, pdu: Pdu) -> None:
        if self.mode not in ("transmitter", "transceiver"):
            await self.send(Pdu(Command.SUBMIT_SM_RESP, Status.RINVBNDSTS, pdu.sequence))
            return
        try:
            source, destination, registered, text = parse_submit_sm(pdu.body)
        except Malformed:
            await self.send(Pdu(Command.SUBMIT_SM_RESP, Status.RSYSERR, pdu.sequence))
            return
        outcome = self.smsc.outcome_for(destination)
        if outcome.submit_status != Status.ROK:
            self.smsc.record.submissions.append(
                Submission(source, destination, text, registered, outcome.submit_status, None)
            )
            log.info(
                "submit_sm to %s refused: command_status 0x%08X",
                destination,
                outcome.submit_status,
            )
            await self.send(Pdu(Command.SUBMIT_SM_RESP, outcome.submit_status, pdu.sequence))
            return
        number = self.smsc.next_message_id()
        message_id = str(number)
        self.smsc.record.submissions.append(
            Submission(source, destination, text, registered, Status.ROK, message_id)
        )
        await self.send(
            Pdu(Command.SUBMIT_SM_RESP, Status.ROK, pdu.sequence, cstring(f"{number:x}"))
        )
        log.info(
            "submit_sm to %s accepted: id %s (hex %x), registered_delivery 0x%02X",
            destination,
            message_id,
            number,
            registered,
        )
        if registered & 0x03 == 0 or self.mode == "transmitter":
            return  # no receipt asked for, or nowhere to deliver it on this bind
        # Receipts follow the submit_sm_resp on the same connection, so Kannel has stored
        # the message's DLR entry before it reads the first receipt.
        stats = [*outcome.intermediate] if registered & 0x10 else []
        stats += [outcome.final] if outcome.final else []
        submitted = datetime.now(UTC)
        for stat in stats:
            body = receipt_text(message_id, stat, outcome.err, submitted, text)
            self.smsc.record.receipts.append(Receipt(message_id, destination, stat, body))
            deliver = deliver_sm_body(destination, source, message_id, stat, body)
            await self.send(Pdu(Command.DELIVER_SM, Status.ROK, next(self._sequence), deliver))
            log.info("deliver_sm receipt for id %s: stat:%s", message_id, stat)
