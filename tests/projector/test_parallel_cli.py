"""``--workers N`` through the commands, with real worker processes, on both engines."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from pipeline.cli.main import cli
from pipeline.db.engine import Database
from pipeline.eventlog import append
from tests.projector.traffic import traffic

CONFIG = """
billing:
  tariffs:
    - {prefix: "+7", price_per_part: "2.27", currency: RUB}
"""


def _run(tmp_path: Path, db_url: str, *args: str):  # type: ignore[no-untyped-def]
    path = tmp_path / "config.yaml"
    path.write_text(CONFIG)
    return CliRunner().invoke(cli, ["--config", str(path), "--database-url", db_url, *args])


def test_replay_and_report_verify_with_two_worker_processes(
    db: Database, db_url: str, tmp_path: Path
) -> None:
    append(db, traffic(seed=11, messages=40))
    assert _run(tmp_path, db_url, "project").exit_code == 0
    result = _run(tmp_path, db_url, "replay", "--verify", "--workers", "2")
    assert result.exit_code == 0, result.output
    assert "replay matches message_state" in result.output
    saved = _run(tmp_path, db_url, "report", "delivery", "--from", "2026-01-01",
                 "--to", "2026-02-01", "--format", "csv", "--save")  # fmt: skip
    assert saved.exit_code == 0, saved.output
    verified = _run(tmp_path, db_url, "report", "verify", "1", "--workers", "2")
    assert verified.exit_code == 0, verified.output
    assert "verified" in verified.output
    rebuilt = _run(tmp_path, db_url, "replay", "--rebuild", "--workers", "2")
    assert rebuilt.exit_code == 0, rebuilt.output
    # The rows two processes rebuilt are the rows one process folds.
    result = _run(tmp_path, db_url, "replay", "--verify")
    assert result.exit_code == 0, result.output
    assert "replay matches message_state" in result.output


def test_workers_must_be_at_least_one(db_url: str, tmp_path: Path) -> None:
    result = _run(tmp_path, db_url, "replay", "--verify", "--workers", "0")
    assert result.exit_code == 2
