"""An SMSC that writes the same numeric id in hex at submission and in decimal in its
receipts (Kannel's msg-id-type): both sides are brought to decimal, so they correlate."""

from __future__ import annotations

from pipeline.config import Settings
from pipeline.db.engine import Database
from pipeline.projector.runner import run_project
from pipeline.projector.tables import message_state
from tests.ingest.server_fixtures import live_server, stored_events

RECEIPT = (
    "id:1049570076 sub:001 dlvrd:001 submit date:2401151030 done date:2401151031 "
    "stat:DELIVRD err:000 text:Hello"
)


def settings() -> Settings:
    return Settings.model_validate(
        {
            "carriers": {"smsc": {"format": "smpp"}},
            "billing": {"tariffs": [{"prefix": "+7", "price_per_part": "2.45",
                                     "currency": "RUB"}]},
        }
    )  # fmt: skip


async def test_a_hex_submission_meets_its_decimal_receipt(db: Database) -> None:
    config = settings()
    async with live_server(config, db) as client:
        message = {"id": "m1", "phone": "+79161234567", "text": "Hello",
                   "accepted_at": "2024-01-15T10:30:00Z"}  # fmt: skip
        assert (await client.post("/v1/messages", json=message)).status == 200
        submission = {"message_id": "m1", "carrier": "smsc", "carrier_message_id": "3E8F2B1C",
                      "id_base": "hex"}  # fmt: skip
        answer = await client.post("/v1/submissions", json=submission)
        assert answer.status == 200, await answer.text()
        dlr = await client.get("/v1/dlr/smsc", params={"receipt": RECEIPT, "id_base": "decimal"})
        assert dlr.status == 200, await dlr.text()

    [submitted] = stored_events(db, "carrier.submitted")
    assert submitted.carrier_message_id == str(0x3E8F2B1C) == "1049570076"
    assert submitted.payload["submitted_id"] == "3E8F2B1C"
    run_project(db, config)
    with db.read() as conn:
        row = conn.execute(message_state.select()).one()
    assert (row.message_id, row.status, row.carrier_message_id) == ("m1", 1, "1049570076")


async def test_an_unknown_id_base_is_a_400_naming_the_field(db: Database) -> None:
    async with live_server(settings(), db) as client:
        bad = {"message_id": "m1", "carrier": "smsc", "carrier_message_id": "1",
               "id_base": "octal"}  # fmt: skip
        answer = await client.post("/v1/submissions", json=bad)
        body = await answer.json()
    assert answer.status == 400
    assert "id_base" in str(body["detail"]) and "hex or decimal" in str(body["detail"])
