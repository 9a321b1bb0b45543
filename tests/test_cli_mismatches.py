"""`smsrecon mismatches`: finance lists what needs an eye and closes it with a note."""

from __future__ import annotations

from datetime import UTC, datetime

from click.testing import CliRunner

from pipeline.cli.main import cli
from pipeline.config import load_settings
from pipeline.db.engine import Database
from pipeline.eventlog import NewEvent, append, read
from pipeline.projector.runner import run_project


def smsrecon(db_url: str, *args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(cli, ["--database-url", db_url, *args])


def test_a_mismatch_is_listed_acknowledged_once_and_survives_replay(
    db: Database, db_url: str
) -> None:
    accepted = NewEvent(
        type="message.accepted",
        message_id="m-no-tariff",
        occurred_at=datetime(2026, 1, 15, 10, 30, tzinfo=UTC),
        source="test",
        payload={"partner": "default", "phone": "+33612345678", "text": "Bonjour",
                 "channel": "sms", "free": False},
    )  # fmt: skip
    append(db, [accepted])
    run_project(db, load_settings(None, {"database.url": db_url}, environ={}))

    listed = smsrecon(db_url, "mismatches", "list", "--format", "json")
    assert listed.exit_code == 0, listed.output
    [line] = listed.output.splitlines()
    assert '"kind": "no_tariff"' in line and '"message_id": "m-no-tariff"' in line
    mismatch_id = line.split('"id": ')[1].split(",")[0]

    acked = smsrecon(db_url, "mismatches", "ack", mismatch_id, "--note", "FR not sold", "--who",
                     "finance")  # fmt: skip
    assert acked.exit_code == 0, acked.output
    assert f"mismatch {mismatch_id} acknowledged by finance" in acked.output
    assert smsrecon(db_url, "mismatches", "list").output.strip() == "0 mismatch(es)"
    closed = smsrecon(db_url, "mismatches", "list", "--status", "acknowledged")
    assert "no_tariff" in closed.output

    again = smsrecon(db_url, "mismatches", "ack", mismatch_id, "--note", "again")
    assert again.exit_code == 1
    assert "is acknowledged already" in again.output

    [event] = [e for e in read(db).events if e.type == "mismatch.acknowledged"]
    assert event.payload["who"] == "finance" and event.payload["note"] == "FR not sold"
    verified = smsrecon(db_url, "replay", "--verify")
    assert verified.exit_code == 0, verified.output


def test_acknowledging_an_unknown_mismatch_is_one_line_and_exit_1(db_url: str) -> None:
    result = smsrecon(db_url, "mismatches", "ack", "999", "--note", "x")
    assert result.exit_code == 1
    assert result.output.strip() == "smsrecon: no mismatch with id 999"
