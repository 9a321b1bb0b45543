"""`smsrecon mismatches`: finance lists what needs an eye and closes it with a note."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from click.testing import CliRunner

from pipeline.cli.main import cli
from pipeline.config import load_settings
from pipeline.db.engine import Database
from pipeline.eventlog import NewEvent, append, read
from pipeline.mismatches import open_mismatch
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


def _open_rows(db: Database) -> dict[str, int]:
    """Four open rows: a message's, an invoice's, a partner's in two currencies, no money."""
    now = datetime(2026, 1, 15, 10, 30, tzinfo=UTC)
    rows = {
        "m1": ("altegio_forbidden", "dispatcher", {"amount_at_stake": "4.50", "currency": "RUB"}),
        "m2": ("cost_mismatch", "invoice",
               {"amount_at_stake": "0.125", "currency": "BHD", "invoice_id": "INV-7"}),
        "partner:default": ("partner_token_invalid", "dispatcher",
                            {"at_stake_by_currency": {"EUR": "3.35", "RUB": "0.30"}}),
        "m4": ("no_tariff", "projector", {}),
    }  # fmt: skip
    ids = {}
    with db.write() as conn:
        for subject, (kind, origin, detail) in rows.items():
            ids[subject] = open_mismatch(
                conn,
                message_id=None if subject.startswith("partner:") else subject,
                subject=subject,
                kind=kind,
                origin=origin,
                detail=detail,
                now=now,
            )
    return ids


def test_list_shows_the_money_at_stake_with_its_currency_and_the_invoice(
    db: Database, db_url: str
) -> None:
    _open_rows(db)
    table = smsrecon(db_url, "mismatches", "list")
    assert table.exit_code == 0, table.output
    lines = {line.split()[3]: line for line in table.output.splitlines() if line.startswith("#")}
    assert "at stake 4.50 RUB" in lines["m1"] and "invoice" not in lines["m1"]
    assert "at stake 0.125 BHD  invoice INV-7" in lines["m2"]
    assert "at stake 3.35 EUR + 0.30 RUB" in lines["partner:default"]
    assert "at stake" not in lines["m4"]

    listed = smsrecon(db_url, "mismatches", "list", "--format", "json")
    assert listed.exit_code == 0, listed.output
    got = {
        row["subject"]: (row["amount_at_stake"], row["amount_currency"], row["invoice_id"])
        for row in map(json.loads, listed.output.splitlines())
    }
    assert got == {
        "m1": ("4.50", "RUB", None),
        "m2": ("0.125", "BHD", "INV-7"),
        "partner:default": (None, None, None),
        "m4": (None, None, None),
    }


def test_show_gives_one_mismatch_in_full_with_its_money_as_text(db: Database, db_url: str) -> None:
    ids = _open_rows(db)
    shown = smsrecon(db_url, "mismatches", "show", str(ids["m2"]))
    assert shown.exit_code == 0, shown.output
    fields = dict(line.split(":", 1) for line in shown.output.splitlines() if ":" in line[:10])
    assert fields["at stake"].strip() == "0.125 BHD"
    assert fields["invoice"].strip() == "INV-7"
    assert fields["kind"].strip() == "cost_mismatch" and fields["origin"].strip() == "invoice"

    as_json = smsrecon(db_url, "mismatches", "show", str(ids["m1"]), "--format", "json")
    assert as_json.exit_code == 0, as_json.output
    row = json.loads(as_json.output)
    assert (row["amount_at_stake"], row["amount_currency"]) == ("4.50", "RUB")
    assert row["detail"] == {"amount_at_stake": "4.50", "currency": "RUB"}

    unknown = smsrecon(db_url, "mismatches", "show", "999")
    assert unknown.exit_code == 1
    assert unknown.output.strip() == "smsrecon: no mismatch with id 999"


def test_list_has_a_header_and_cuts_a_long_detail_between_whole_members(
    db: Database, db_url: str
) -> None:
    detail = {
        "conflict": "DELIVRD then UNDELIV",
        "first": {"carrier": "mts", "position": 17, "raw_status": "DELIVRD"},
        "second": {"carrier": "mts", "position": 42, "raw_status": "UNDELIV"},
        "reports": ["a" * 30, "b" * 30, "c" * 30],
    }
    with db.write() as conn:
        open_mismatch(conn, message_id="m-long", subject="m-long", kind="conflicting_final",
                      origin="projector", detail=detail,
                      now=datetime(2026, 1, 15, 10, 30, 5, tzinfo=UTC))  # fmt: skip
    table = smsrecon(db_url, "mismatches", "list")
    assert table.exit_code == 0, table.output
    header, row, footer = table.output.splitlines()
    assert header.split()[:4] == ["id", "status", "kind", "subject"]
    assert footer == "1 mismatch(es)"
    assert row.index("conflicting_final") == header.index("kind")
    assert row.index("2026-01-15T10:30:05Z") == header.index("opened (UTC)")
    shown = row[header.index("detail") :]
    assert shown.endswith(", …}") and len(shown) <= 80
    # What is shown is whole members: closing the cut gives valid JSON with the same values.
    kept = json.loads(shown.removesuffix(", …}") + "}")
    assert kept and all(detail[key] == value for key, value in kept.items())

    wide = smsrecon(db_url, "mismatches", "list", "--wide")
    assert wide.exit_code == 0, wide.output
    wide_row = wide.output.splitlines()[1]
    assert json.loads(wide_row[wide_row.index("{") :]) == detail
