"""``smsrecon ingest`` files get the bounds the server applies: a year-999 time, a huge
number, deep nesting or an unstorable string in a file is quarantined on its own, and the
rest of the file is imported, instead of the run crashing or the log taking the record."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from pipeline.cli.main import cli
from pipeline.db.engine import Database
from pipeline.ingest import quarantine as store
from tests.ingest.server_fixtures import event_count, quarantine_rows

CONFIG = "carriers:\n  acme:\n    format: generic\n"

GOOD = '{"id": "m-%d", "phone": "79161234567", "text": "Hi", "accepted_at": "2026-01-15T10:00:00Z"}'
HOSTILE = [
    '{"id": "bad-1", "phone": "79161234567", "text": "Hi", "accepted_at": "0999-06-01T00:00:00Z"}',
    '{"id": "bad-2", "phone": "79161234567", "parts": 1E+99999999}',
    '{"id": "bad-3", "phone": "79161234567", "parts": ' + "9" * 5000 + "}",
    '{"id": "bad-4", "phone": "79161234567", "text": "\\ud800"}',
    '{"id": "bad-5", "phone": "79161234567", "text": "a\\u0000b"}',
    "[" * 3000 + "]" * 3000,
]


def _ingest(db_url: str, tmp_path: Path, name: str, text: str, fmt: str) -> str:
    config = tmp_path / "config.yaml"
    config.write_text(CONFIG)
    data = tmp_path / name
    data.write_text(text, encoding="utf-8")
    result = CliRunner().invoke(
        cli,
        ["--config", str(config), "--database-url", db_url, "ingest", str(data), "--format", fmt],
        catch_exceptions=False,
    )
    assert result.exit_code == 3, result.output
    return result.output


def test_hostile_json_lines_are_quarantined_one_by_one(
    db: Database, db_url: str, tmp_path: Path
) -> None:
    lines = [GOOD % 1, *HOSTILE, GOOD % 2]
    output = _ingest(db_url, tmp_path, "messages.jsonl", "\n".join(lines) + "\n", "messages")
    assert "read 8, appended 2, duplicates 0, quarantined 6" in output
    assert event_count(db) == 2
    assert len(store.entries(db)) == len(quarantine_rows(db)) == 6


def test_a_hostile_json_document_is_quarantined_whole(
    db: Database, db_url: str, tmp_path: Path
) -> None:
    # A number literal past the parser's bound: the document cannot be read at all.
    document = '[{"carrier_message_id": "c-1", "status": "DELIVRD", "cost": 1%s}]' % ("0" * 60)
    output = _ingest(db_url, tmp_path, "dlr.json", document, "generic")
    assert "read 1, appended 0, duplicates 0, quarantined 1" in output
    [entry] = store.entries(db)
    assert entry.request.body == document.encode()


def test_a_hostile_element_of_a_json_document_is_quarantined_as_written(
    db: Database, db_url: str, tmp_path: Path
) -> None:
    """A cost the adapter refuses (far over any bound) costs only its own element."""
    bad = '{"carrier_message_id": "c-1", "status": "DELIVRD", "cost": 1E+5000000}'
    good = '{"carrier_message_id": "c-2", "status": "DELIVRD", "cost": 0.0333, "currency": "EUR"}'
    output = _ingest(db_url, tmp_path, "dlr.json", f"[{bad}, {good}]", "generic")
    assert "read 2, appended 1, duplicates 0, quarantined 1" in output
    [entry] = store.entries(db)
    assert entry.request.body == bad.encode()
