"""The SMSC simulator speaks SMPP 3.4 correctly, so a Kannel failure is Kannel's (or ours).

These talk to the simulator over a real socket, as a minimal ESME would.
"""

from __future__ import annotations

import asyncio
import re
import signal
import struct
import sys
from collections.abc import AsyncIterator

import pytest

from pipeline.smsc.command import parse_outcome
from pipeline.smsc.simulator import (
    TAG_MESSAGE_STATE,
    TAG_RECEIPTED_MESSAGE_ID,
    Command,
    Outcome,
    Pdu,
    SmscSimulator,
    Status,
    _Body,
    cstring,
    read_pdu,
)


def bind_body(system_id: str = "esme") -> bytes:
    return cstring(system_id) + cstring("pw") + cstring("") + bytes([0x34, 0, 0]) + cstring("")


def submit_body(destination: str, text: bytes = b"Hi", registered: int = 0x11) -> bytes:
    return b"".join(
        [
            cstring(""),
            bytes([5, 0]) + cstring("BeautySalon"),
            bytes([1, 1]) + cstring(destination),
            bytes([0, 0, 0]),
            cstring("") + cstring(""),
            bytes([registered, 0, 0, 0, len(text)]) + text,
        ]
    )


def tlvs(data: bytes) -> dict[int, bytes]:
    found, at = {}, 0
    while at < len(data):
        tag, length = struct.unpack_from(">HH", data, at)
        found[tag] = data[at + 4 : at + 4 + length]
        at += 4 + length
    return found


def parse_deliver_sm(body: bytes) -> tuple[int, str, dict[int, bytes]]:
    """(esm_class, short_message, TLVs) of a deliver_sm body."""
    cursor = _Body(body)
    cursor.cstring()
    cursor.u8(), cursor.u8(), cursor.cstring()
    cursor.u8(), cursor.u8(), cursor.cstring()
    esm_class = cursor.u8()
    cursor.u8(), cursor.u8(), cursor.cstring(), cursor.cstring()
    cursor.u8(), cursor.u8(), cursor.u8(), cursor.u8()
    text = cursor.octets(cursor.u8()).decode("latin-1")
    return esm_class, text, tlvs(body[cursor.at :])


class Esme:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    async def send(self, command: int, sequence: int, body: bytes = b"") -> None:
        self.writer.write(Pdu(command, 0, sequence, body).pack())
        await self.writer.drain()

    async def receive(self) -> Pdu:
        pdu = await asyncio.wait_for(read_pdu(self.reader), 5)
        assert pdu is not None, "the simulator closed the connection"
        return pdu


@pytest.fixture
async def smsc() -> AsyncIterator[SmscSimulator]:
    outcomes = {
        "79160000001": Outcome("DELIVRD", ("ENROUTE",)),
        "79160000003": Outcome(submit_status=Status.RINVDSTADR),
    }
    async with SmscSimulator(outcomes) as simulator:
        yield simulator


@pytest.fixture
async def esme(smsc: SmscSimulator) -> AsyncIterator[Esme]:
    reader, writer = await asyncio.open_connection("127.0.0.1", smsc.port)
    client = Esme(reader, writer)
    await client.send(Command.BIND_TRANSCEIVER, 1, bind_body())
    resp = await client.receive()
    assert resp.fields == (Command.BIND_TRANSCEIVER_RESP, Status.ROK, 1)
    yield client
    writer.close()


async def test_bind_is_recorded_and_answered(smsc: SmscSimulator, esme: Esme) -> None:
    assert smsc.bound.is_set()
    assert [(b.mode, b.system_id) for b in smsc.record.binds] == [("transceiver", "esme")]


async def test_submit_gets_a_hex_id_then_receipts_with_decimal_id_and_tlvs(
    smsc: SmscSimulator, esme: Esme
) -> None:
    await esme.send(Command.SUBMIT_SM, 2, submit_body("79160000001", b"Hello Anna"))
    resp = await esme.receive()
    assert resp.fields == (Command.SUBMIT_SM_RESP, Status.ROK, 2)
    hex_id = resp.body.rstrip(b"\0").decode()
    decimal_id = str(int(hex_id, 16))
    stats = []
    for expected_state in (1, 2):  # ENROUTE, then DELIVRD
        deliver = await esme.receive()
        assert deliver.command_id == Command.DELIVER_SM
        esm_class, text, fields = parse_deliver_sm(deliver.body)
        assert esm_class == 0x04
        assert text.startswith(f"id:{decimal_id} sub:001 dlvrd:")
        assert "text:Hello Anna" in text
        assert fields[TAG_RECEIPTED_MESSAGE_ID] == cstring(decimal_id)
        assert fields[TAG_MESSAGE_STATE] == bytes([expected_state])
        stats.append(text.split("stat:")[1].split()[0])
        await esme.send(Command.DELIVER_SM_RESP, deliver.sequence, b"\0")
    assert stats == ["ENROUTE", "DELIVRD"]
    assert smsc.record.submissions[0].message_id == decimal_id


async def test_refused_destination_gets_the_error_status_and_no_receipt(
    smsc: SmscSimulator, esme: Esme
) -> None:
    await esme.send(Command.SUBMIT_SM, 3, submit_body("79160000003"))
    resp = await esme.receive()
    assert resp.fields == (Command.SUBMIT_SM_RESP, Status.RINVDSTADR, 3)
    await esme.send(Command.ENQUIRE_LINK, 4)  # the next PDU is the answer, not a receipt
    assert (await esme.receive()).fields == (Command.ENQUIRE_LINK_RESP, Status.ROK, 4)
    assert smsc.record.receipts == []


async def test_unknown_command_gets_generic_nack(smsc: SmscSimulator, esme: Esme) -> None:
    await esme.send(0x00000103, 5)  # data_sm: not spoken here
    assert (await esme.receive()).fields == (Command.GENERIC_NACK, Status.RINVCMDID, 5)
    assert smsc.record.unknown_commands == [0x00000103]


async def test_unbind_is_answered_and_ends_the_session(smsc: SmscSimulator, esme: Esme) -> None:
    await esme.send(Command.UNBIND, 6)
    assert (await esme.receive()).fields == (Command.UNBIND_RESP, Status.ROK, 6)
    assert await asyncio.wait_for(read_pdu(esme.reader), 5) is None
    assert smsc.record.unbinds == 1


def test_an_unknown_stat_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown receipt stat"):
        Outcome("DELIVERED")


def test_outcomes_are_parsed_from_the_command_line_forms() -> None:
    assert parse_outcome("DELIVRD") == Outcome("DELIVRD")
    assert parse_outcome("enroute,ENROUTE,DELIVRD") == Outcome("DELIVRD", ("ENROUTE", "ENROUTE"))
    assert parse_outcome("ACCEPTD,none") == Outcome(None, ("ACCEPTD",))
    assert parse_outcome("refuse") == Outcome(None, submit_status=Status.RINVDSTADR)
    assert parse_outcome("refuse:0x45") == Outcome(None, submit_status=0x45)
    for bad in ("", "DELIVERED", "ENROUTE", "DELIVRD,,DELIVRD", "refuse:x", "refuse:0"):
        with pytest.raises(ValueError):
            parse_outcome(bad)


async def test_the_command_line_simulator_answers_an_esme_as_configured() -> None:
    """`python -m pipeline.smsc`, as docs/kannel.md runs it for trying Kannel by hand."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "pipeline.smsc", "--port", "0",
        "--outcome", "+79160000002=UNDELIV", "--outcome", "79160000003=refuse",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        assert process.stdout is not None and process.stderr is not None
        line = (await asyncio.wait_for(process.stdout.readline(), 60)).decode()
        match = re.search(r"listening on 127\.0\.0\.1:(\d+)", line)
        assert match, line
        reader, writer = await asyncio.open_connection("127.0.0.1", int(match.group(1)))
        esme = Esme(reader, writer)
        await esme.send(Command.BIND_TRANSCEIVER, 1, bind_body())
        assert (await esme.receive()).fields == (Command.BIND_TRANSCEIVER_RESP, Status.ROK, 1)
        await esme.send(Command.SUBMIT_SM, 2, submit_body("79160000002"))
        assert (await esme.receive()).fields[:2] == (Command.SUBMIT_SM_RESP, Status.ROK)
        receipt = await esme.receive()
        assert "stat:UNDELIV" in parse_deliver_sm(receipt.body)[1]
        await esme.send(Command.SUBMIT_SM, 3, submit_body("79160000003"))
        assert (await esme.receive()).fields == (Command.SUBMIT_SM_RESP, Status.RINVDSTADR, 3)
        writer.close()
        process.send_signal(signal.SIGTERM)
        out, err = await asyncio.wait_for(process.communicate(), 60)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode == 0, err
    assert b"SMSC simulator stopped" in out
    log = err.decode()
    assert "submit_sm to 79160000002 accepted" in log and "stat:UNDELIV" in log
    assert "submit_sm to 79160000003 refused: command_status 0x0000000B" in log
