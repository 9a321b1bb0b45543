"""``smsrecon ingest`` and ``smsrecon quarantine`` through the real command line."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner, Result

from pipeline.cli.main import cli
from pipeline.db.engine import Database
from tests.ingest.server_fixtures import quarantine_rows, stored_events

CONFIG = """
carriers:
  mts:
    format: kannel
    timezone: Europe/Moscow
  acme:
    format: generic
"""

_RECEIPT = (
    "id%3A3e8f2b1c+sub%3A001+dlvrd%3A001+submit+date%3A2401151030+done+date%3A2401151031"
    "+stat%3ADELIVRD+err%3A000+text%3A"
)
KANNEL_CAPTURED = (
    "# two callbacks for message 42, one for 43 (the dlr-url template of docs/carriers.md)\n"
    "GET /kannel?message_id=42&type=8&answer=ACK%2F&smsc=smpp_mts&smsc_id=3e8f2b1c"
    "&ts=1705314600 HTTP/1.1\n"
    "GET /kannel?message_id=42&type=1&smsc=smpp_mts&smsc_id=3e8f2b1c&ts=1705314662"
    f"&answer={_RECEIPT} HTTP/1.1\n"
    "GET /kannel?message_id=43&type=99&smsc=smpp_mts HTTP/1.1\n"
)


def run(db_url: str, tmp_path: Path, *args: str, config: str = CONFIG) -> Result:
    config_file = tmp_path / "config.yaml"
    config_file.write_text(config)
    return CliRunner().invoke(
        cli, ["--config", str(config_file), "--database-url", db_url, *args], catch_exceptions=False
    )


def test_messages_csv_bad_row_is_quarantined_and_the_rest_imported(
    db: Database, db_url: str, tmp_path: Path
) -> None:
    csv_file = tmp_path / "messages.csv"
    csv_file.write_text(
        "id,phone,text,free,partner\n"
        "1,79161234567,Hello,false,\n"
        "2,+7916,Hello,,\n"
        "3,+79161234568,Hi,true,salon-7\n"
    )
    first = run(db_url, tmp_path, "ingest", str(csv_file), "--format", "messages")
    assert first.exit_code == 3, first.output
    assert "read 3, appended 2, duplicates 0, quarantined 1" in first.output
    again = run(db_url, tmp_path, "ingest", str(csv_file), "--format", "messages")
    assert "read 3, appended 0, duplicates 2, quarantined 1" in again.output
    rows = stored_events(db, "message.accepted")
    assert [(r.message_id, r.payload["free"], r.payload["partner"]) for r in rows] == [
        ("1", False, "default"),
        ("3", True, "salon-7"),
    ]
    assert {r.source for r in rows} == {"file:messages.csv"}
    entry = quarantine_rows(db)[0]
    assert entry.error == "invalid message (messages.csv, line 3)"
    assert entry.detail == [
        {"index": 0, "field": "phone", "reason": "not a possible phone number: '+7916'"}
    ]


def test_json_lines_and_json_array_of_refusals(db: Database, db_url: str, tmp_path: Path) -> None:
    lines = tmp_path / "refusals.jsonl"
    lines.write_text(
        '{"message_id": "1", "reason": "insufficient_funds"}\n\n'
        '{"message_id": "2", "reason": "x"}\n'
    )
    array = tmp_path / "refusals.json"
    array.write_text(
        json.dumps([{"message_id": "2", "reason": "x"}, {"message_id": "3", "reason": "x"}])
    )
    result = run(db_url, tmp_path, "ingest", str(lines), str(array), "--format", "refusals")
    assert result.exit_code == 0, result.output
    assert "read 4, appended 3, duplicates 1, quarantined 0" in result.output


def test_captured_kannel_requests_become_reports_of_the_carrier(
    db: Database, db_url: str, tmp_path: Path
) -> None:
    captured = tmp_path / "kannel.txt"
    captured.write_text(KANNEL_CAPTURED)
    result = run(db_url, tmp_path, "ingest", str(captured), "--format", "kannel")
    assert result.exit_code == 3, result.output
    assert "read 3, appended 2, duplicates 0, quarantined 1" in result.output
    rows = stored_events(db, "carrier.status")
    assert [(r.carrier, r.message_id, r.payload["status"]) for r in rows] == [
        ("mts", "42", 8),
        ("mts", "42", 1),
    ]
    [entry] = quarantine_rows(db)
    assert (entry.path, entry.carrier, entry.format) == ("/v1/dlr/mts", "mts", "kannel")
    assert ["type", "99"] in entry.query


def test_generic_reports_from_csv(db: Database, db_url: str, tmp_path: Path) -> None:
    csv_file = tmp_path / "reports.csv"
    csv_file.write_text(
        "carrier_message_id,status,cost,currency\nAB1,DELIVRD,0.0333,EUR\nAB2,UNDELIV,,\n"
    )
    result = run(
        db_url, tmp_path, "ingest", str(csv_file), "--format", "generic", "--carrier", "acme"
    )
    assert result.exit_code == 0, result.output
    rows = stored_events(db, "carrier.status")
    assert [(r.carrier_message_id, r.payload.get("cost")) for r in rows] == [
        ("ab1", "0.0333"),
        ("ab2", None),
    ]


def test_json_file_numbers_keep_every_digit_of_a_cost(
    db: Database, db_url: str, tmp_path: Path
) -> None:
    """A cost in a JSON file is never read through a float, as lines or as one array."""
    lines = tmp_path / "reports.jsonl"
    lines.write_text(
        '{"carrier_message_id": "L1", "status": 1, "cost": 0.1000000000000000055511, '
        '"currency": "EUR"}\n'
    )
    array = tmp_path / "reports.json"
    array.write_text(
        '[{"carrier_message_id": "A1", "status": 1, "cost": 1E-7, "currency": "EUR"}, '
        '{"carrier_message_id": "A2", "status": 1, "cost": 0.30000000000000004441, '
        '"currency": "EUR"}]'
    )
    for file in (lines, array):
        result = run(
            db_url, tmp_path, "ingest", str(file), "--format", "generic", "--carrier", "acme"
        )
        assert result.exit_code == 0, result.output
    rows = stored_events(db, "carrier.status")
    assert sorted((r.carrier_message_id, r.payload.get("cost")) for r in rows) == [
        ("a1", "0.0000001"),
        ("a2", "0.30000000000000004441"),
        ("l1", "0.1000000000000000055511"),
    ]


def test_usage_errors_exit_2_with_one_line(db_url: str, tmp_path: Path) -> None:
    data = tmp_path / "x.json"
    data.write_text("{}")
    wrong_format = run(db_url, tmp_path, "ingest", str(data), "--format", "jasmin")
    assert wrong_format.exit_code == 2
    assert "--carrier is required: carriers with format jasmin: none" in wrong_format.output
    mismatch = run(db_url, tmp_path, "ingest", str(data), "--format", "generic", "--carrier", "mts")
    assert mismatch.exit_code == 2
    assert "has format kannel, not generic" in mismatch.output


def test_quarantine_list_show_and_replay_after_the_config_is_fixed(
    db: Database, db_url: str, tmp_path: Path
) -> None:
    submissions = tmp_path / "submissions.jsonl"
    submissions.write_text(
        '{"message_id": "1", "carrier": "beeline", "carrier_message_id": "X1"}\n'
        '{"message_id": "2", "carrier": "mts", "carrier_message_id": "X2"}\n'
    )
    imported = run(db_url, tmp_path, "ingest", str(submissions), "--format", "submissions")
    assert imported.exit_code == 3
    [entry] = quarantine_rows(db)

    listed = run(db_url, tmp_path, "quarantine", "list")
    assert "invalid submission (submissions.jsonl, line 1)" in listed.output
    assert "open 1, resolved 0" in listed.output
    shown = json.loads(run(db_url, tmp_path, "quarantine", "show", str(entry.id)).stdout)
    assert shown["request"]["path"] == "/v1/submissions"
    assert shown["detail"][0]["field"] == "carrier"

    still = run(db_url, tmp_path, "quarantine", "replay", str(entry.id))
    assert still.exit_code == 3
    assert (
        "still quarantined: invalid submission: [0].carrier: not a configured carrier"
        in still.output
    )

    fixed = CONFIG + "  beeline:\n    format: smpp\n"
    replayed = run(db_url, tmp_path, "quarantine", "replay", "--all", config=fixed)
    assert replayed.exit_code == 0, replayed.output
    assert "replayed 1, resolved 1, still open 0, appended 1, duplicates 0" in replayed.output
    [row] = quarantine_rows(db)
    assert row.status == "resolved" and row.resolved_at is not None
    beeline = [r for r in stored_events(db, "carrier.submitted") if r.carrier == "beeline"]
    assert [r.position for r in beeline] == row.resolved_positions
    assert beeline[0].source == "file:submissions.jsonl"
    again = run(db_url, tmp_path, "quarantine", "replay", str(entry.id), config=fixed)
    assert again.exit_code == 0
    assert "already resolved" in again.output
