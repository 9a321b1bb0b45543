"""The projector's commands: one-line summaries, exit codes, explain."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from pipeline.cli.main import cli
from pipeline.db.engine import Database
from pipeline.eventlog import append
from tests.projector.events import accepted, report, submitted

TARIFFS = """
billing:
  tariffs:
    - {prefix: "+7", price_per_part: "2.27", currency: RUB}
"""


def _run(tmp_path: Path, db_url: str, *args: str, config: str = TARIFFS):  # type: ignore[no-untyped-def]
    path = tmp_path / "config.yaml"
    path.write_text(config)
    return CliRunner().invoke(cli, ["--config", str(path), "--database-url", db_url, *args])


def test_project_prints_one_summary_line_and_replay_verify_agrees(
    db: Database, db_url: str, tmp_path: Path
) -> None:
    append(db, [report("c1", 1, 3), accepted("m1"), submitted("m1", "c1")])
    result = _run(tmp_path, db_url, "project")
    assert result.exit_code == 0, result.output
    # The three events and the billing table recorded before projecting.
    assert "projected 4 events, 1 messages changed" in result.output
    assert "lag 0" in result.output
    result = _run(tmp_path, db_url, "replay", "--verify")
    assert result.exit_code == 0 and "replay matches" in result.output


def test_replay_after_a_tariff_edit_keeps_the_price_the_log_recorded(
    db: Database, db_url: str, tmp_path: Path
) -> None:
    append(db, [accepted("m1"), submitted("m1", "c1")])
    assert _run(tmp_path, db_url, "project").exit_code == 0
    cheaper = TARIFFS.replace("2.27", "1.50")
    # The edit is recorded as a new table, for messages accepted after it: m1 keeps 2.27.
    result = _run(tmp_path, db_url, "replay", "--verify", config=cheaper)
    assert result.exit_code == 0, result.output
    assert _run(tmp_path, db_url, "replay", "--rebuild", config=cheaper).exit_code == 0
    assert "payment_sum: 2.27" in _run(tmp_path, db_url, "explain", "m1", config=cheaper).output


def test_a_bad_tariff_is_one_line_and_exit_2(db_url: str, tmp_path: Path) -> None:
    bad = "billing:\n  tariffs:\n    - {prefix: '7', price_per_part: '1', currency: RUB}\n"
    result = _run(tmp_path, db_url, "project", config=bad)
    assert result.exit_code == 2
    assert "tariffs" in result.output and "Traceback" not in result.output


def test_explain_shows_each_events_effect_and_time_travels(
    db: Database, db_url: str, tmp_path: Path
) -> None:
    append(db, [accepted("m1"), submitted("m1", "c1"), report("c1", 1, 3), report("c1", 4, 4)])
    _run(tmp_path, db_url, "project")
    result = _run(tmp_path, db_url, "explain", "m1")
    assert result.exit_code == 0, result.output
    assert "status 8 -> 1" in result.output
    assert "no change" in result.output  # the late 4
    result = _run(tmp_path, db_url, "explain", "m1", "--as-of", "2", "--format", "json")
    doc = json.loads(result.output)
    assert [e["position"] for e in doc["events"]] == [1, 2]
    assert doc["state"]["status"] == 8
    assert _run(tmp_path, db_url, "explain", "nope").exit_code == 1
