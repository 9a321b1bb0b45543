"""The demo never deletes data it did not create.

``smsrecon demo --database FILE`` deletes and re-creates FILE, and writes FILE's ``.yaml``:
it does so only for a database its own earlier run marked, and a settings file whose first
line it wrote. Anything else is left byte for byte as it was, with exit 2 and one line.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select

from pipeline.db.engine import Database
from pipeline.db.tables import events
from pipeline.eventlog import NewEvent, append
from pipeline.eventlog.model import utc_now

FOREIGN_YAML = "# production settings\ndatabase:\n  url: sqlite:///var/existing.db\n"


def _demo(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pipeline", "demo", *args],
        capture_output=True,
        text=True,
        timeout=180,
    )


def _fill(db: Database, count: int = 1869) -> None:
    batch = [
        NewEvent(
            type="message.refused",
            message_id=str(i),
            occurred_at=utc_now(),
            source="production",
            payload={"reason": "insufficient_funds"},
            dedup_key=f"refused:{i}",
        )
        for i in range(count)
    ]
    append(db, batch)


def _digest(directory: Path) -> dict[str, str]:
    """Every file in ``directory`` and a hash of its bytes."""
    return {
        path.name: hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(directory.iterdir())
    }


def _log(db: Database) -> tuple[int, int]:
    with db.read() as conn:
        row = conn.execute(select(func.count(), func.max(events.c.position))).one()
    return int(row[0]), int(row[1] or 0)


@pytest.fixture
def existing_db(sqlite_template: Path, tmp_path: Path) -> Path:
    """``var/existing.db``: someone's database with 1,869 events, and its own settings."""
    folder = tmp_path / "var"
    folder.mkdir()
    path = folder / "existing.db"
    shutil.copyfile(sqlite_template, path)
    db = Database.from_url(f"sqlite:///{path}")
    try:
        _fill(db)
    finally:
        db.dispose()  # checkpoints the WAL into the file: the file alone is the database
    return path


def test_an_existing_database_with_1869_events_is_left_untouched_and_the_demo_exits_2(
    existing_db: Path,
) -> None:
    (existing_db.with_suffix(".yaml")).write_text(FOREIGN_YAML)
    before = _digest(existing_db.parent)

    result = _demo("--database", str(existing_db))

    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.strip() == (
        f"smsrecon: {existing_db} exists and is not a demo database: left untouched "
        "(give --database a new file)"
    )
    assert _digest(existing_db.parent) == before
    db = Database.from_url(f"sqlite:///{existing_db}")
    try:
        assert _log(db) == (1869, 1869)
    finally:
        db.dispose()


def test_a_file_that_is_not_a_database_is_left_untouched(tmp_path: Path) -> None:
    notes = tmp_path / "notes.db"
    notes.write_text("not a database, but precious\n")
    before = _digest(tmp_path)
    result = _demo("--database", str(notes))
    assert result.returncode == 2
    assert "is not a demo database: left untouched" in result.stderr
    assert _digest(tmp_path) == before


def test_a_settings_file_the_demo_did_not_write_is_never_overwritten(tmp_path: Path) -> None:
    config = tmp_path / "fresh.yaml"
    config.write_text(FOREIGN_YAML)
    result = _demo("--database", str(tmp_path / "fresh.db"))
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"smsrecon: {config} exists and was not written by `smsrecon demo`: left untouched "
        "(give --database a path whose .yaml is free)"
    )
    assert config.read_text() == FOREIGN_YAML
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fresh.yaml"]


def test_the_demo_runs_again_over_its_own_database_and_settings(tmp_path: Path) -> None:
    path = tmp_path / "demo.db"
    first = _demo("--database", str(path))
    assert first.returncode == 0, first.stderr
    second = _demo("--database", str(path))
    assert second.returncode == 0, second.stderr
    assert "created afresh" in second.stdout
    assert "14 requests -> 13 events" in second.stdout  # a fresh log, not the first run's


def test_a_url_database_holding_events_is_left_untouched_and_the_demo_exits_2(
    db: Database, db_url: str, tmp_path: Path
) -> None:
    _fill(db)
    before = _log(db)
    result = _demo("--url", db_url, "--database", str(tmp_path / "demo.db"))
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.strip() == (
        "smsrecon: the database at --url holds data and is not a demo database: left "
        "untouched (give --url an empty database)"
    )
    assert _log(db) == before
    assert not (tmp_path / "demo.yaml").exists()


def test_a_url_database_the_demo_filled_may_take_the_demo_again(
    db_url: str, tmp_path: Path
) -> None:
    first = _demo("--url", db_url, "--database", str(tmp_path / "demo.db"))
    assert first.returncode == 0, first.stderr
    second = _demo("--url", db_url, "--database", str(tmp_path / "demo.db"))
    assert second.returncode == 0, second.stderr
    # The same traffic again: every report is a duplicate, stored once.
    assert "14 requests -> 0 events" in second.stdout
    # The same rates and invoice file again: nothing appended, as the commands would do.
    assert "appended 0, duplicates 8" in second.stdout
    assert "MTS-2026-01 from mts" in second.stdout
    assert "version 1 already imported, already closed" in second.stdout
