"""The `smsrecon db` and `smsrecon events` commands, run as a user runs them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from pipeline.cli.main import cli


def run(*args: str, url: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pipeline", "--database-url", url, *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def jsonl(tmp_path: Path, lines: list[object], name: str = "events.jsonl") -> Path:
    path = tmp_path / name
    path.write_text("\n".join(json.dumps(x, ensure_ascii=False) for x in lines) + "\n")
    return path


EVENTS = [
    {
        "type": "message.accepted",
        "message_id": "232674",
        "occurred_at": "2026-01-15T10:30:00Z",
        "source": "test",
        "payload": {"partner": "default", "phone": "+79161234567", "text": "Привет"},
    },
    {
        "type": "carrier.status",
        "carrier": "mts",
        "carrier_message_id": "3e8f2b1c",
        "occurred_at": "2026-01-15T13:31:00+03:00",
        "source": "test",
        "payload": {"raw_status": "DELIVRD", "status": 1, "cost": "0.0333"},
        "dedup_key": "dlr:mts:3e8f2b1c:-:DELIVRD:2401151031",
    },
]


def test_append_then_append_again_reports_duplicates(db_url: str, tmp_path: Path) -> None:
    path = jsonl(tmp_path, EVENTS)
    first = run("events", "append", str(path), url=db_url)
    assert first.returncode == 0, first.stderr
    assert "appended 2, duplicates 0" in first.stdout
    again = run("events", "append", str(path), url=db_url)
    assert again.returncode == 0
    assert "appended 0, duplicates 2" in again.stdout


def test_tail_jsonl_prints_every_column_in_utc(db_url: str, tmp_path: Path) -> None:
    run("events", "append", str(jsonl(tmp_path, EVENTS)), url=db_url)
    result = run("events", "tail", "--format", "jsonl", url=db_url)
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["type"] for r in rows] == ["message.accepted", "carrier.status"]
    assert rows[1]["occurred_at"] == "2026-01-15T10:31:00Z"
    assert rows[1]["dedup_key"] == "dlr:mts:3e8f2b1c:-:DELIVRD:2401151031"
    assert rows[0]["payload"]["text"] == "Привет"
    assert set(rows[0]) == {
        "position", "type", "message_id", "carrier", "carrier_message_id",
        "occurred_at", "recorded_at", "source", "payload", "dedup_key",
    }  # fmt: skip


def test_tail_after_and_limit_page_through(db_url: str, tmp_path: Path) -> None:
    run("events", "append", str(jsonl(tmp_path, EVENTS)), url=db_url)
    first = run("events", "tail", "--after", "0", "--limit", "1", "--format", "jsonl", url=db_url)
    position = json.loads(first.stdout)["position"]
    rest = run("events", "tail", "--after", str(position), "--format", "jsonl", url=db_url)
    assert [json.loads(x)["type"] for x in rest.stdout.splitlines()] == ["carrier.status"]


def test_stats_counts_by_type(db_url: str, tmp_path: Path) -> None:
    run("events", "append", str(jsonl(tmp_path, EVENTS)), url=db_url)
    result = run("events", "stats", url=db_url)
    assert result.returncode == 0
    assert "message.accepted" in result.stdout and "total" in result.stdout
    assert "last position:" in result.stdout and "database size:" in result.stdout


def test_a_bad_line_appends_nothing_and_names_every_problem(db_url: str, tmp_path: Path) -> None:
    bad = [EVENTS[0], {"type": "x", "source": "s"}, {"type": "x", "occurred_at": "2026-01-01",
           "source": "s"}, {**EVENTS[1], "payload": {"cost": 0.1}}]  # fmt: skip
    path = jsonl(tmp_path, bad)
    result = run("events", "append", str(path), url=db_url)
    assert result.returncode == 2
    assert f"{path}:2: occurred_at: required" in result.stderr
    assert f"{path}:3: occurred_at: has no time zone" in result.stderr
    assert f"{path}:4: payload: the number 0.1 has a fraction" in result.stderr
    assert "nothing appended" in result.stderr
    stats = run("events", "stats", url=db_url)
    assert "total                                  0" in stats.stdout


def test_db_upgrade_and_current_on_an_empty_database(empty_db_url: str) -> None:
    before = run("db", "current", url=empty_db_url)
    assert before.returncode == 0 and "empty" in before.stdout
    up = run("db", "upgrade", url=empty_db_url)
    assert up.returncode == 0 and "schema upgraded from empty" in up.stdout
    assert "up to date" in run("db", "current", url=empty_db_url).stdout
    assert "already at" in run("db", "upgrade", url=empty_db_url).stdout


def test_commands_on_a_missing_schema_say_what_to_run(empty_db_url: str) -> None:
    result = run("events", "stats", url=empty_db_url)
    assert result.returncode == 2
    assert "run `smsrecon db upgrade`" in result.stderr
    assert "Traceback" not in result.stderr


def test_config_errors_exit_2_with_one_line(tmp_path: Path) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text("dispatcher:\n  concurency: 3\n")
    result = CliRunner().invoke(cli, ["--config", str(config), "events", "stats"])
    assert result.exit_code == 2
    assert result.output.strip() == f"smsrecon: {config}: dispatcher.concurency: unknown key"


def test_an_unreachable_database_is_one_line_not_a_traceback() -> None:
    import socket

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"postgresql://nobody:pw-not-shown@127.0.0.1:{port}/x"
    for args, code in ((("events", "stats"), 2), (("db", "upgrade"), 1)):
        result = run(*args, url=url)
        assert result.returncode == code, result.stderr
        assert "Traceback" not in result.stderr and "pw-not-shown" not in result.stderr
        assert result.stderr.startswith("smsrecon: ") and "Connection refused" in result.stderr


def test_tail_table_has_a_header_aligned_columns_and_one_utc_time_format(
    db_url: str, tmp_path: Path
) -> None:
    events = [
        {**EVENTS[0], "occurred_at": "2026-01-15T10:30:00.250Z"},
        EVENTS[1],
        {**EVENTS[1], "carrier_message_id": "a-much-longer-carrier-message-id-0001",
         "dedup_key": "dlr:mts:long:1"},
    ]  # fmt: skip
    run("events", "append", str(jsonl(tmp_path, events)), url=db_url)
    result = run("events", "tail", url=db_url)
    assert result.returncode == 0, result.stderr
    header, *rows = result.stdout.splitlines()
    assert header.split()[:3] == ["position", "occurred_at", "(UTC)"]
    assert len(rows) == 3
    # Every column starts where its header does, whatever the width of the values.
    starts = [header.index(name) for name in ("type", "message_id", "carrier/id", "payload")]
    for row in rows:
        for start in starts:
            assert row[start - 2 : start] == "  " and row[start] != " ", (row, start)
    times = [row.split()[1] for row in rows]
    assert times == ["2026-01-15T10:30:00Z", "2026-01-15T10:31:00Z", "2026-01-15T10:31:00Z"]


def test_tail_says_in_its_help_that_it_shows_only_the_last_events_without_after() -> None:
    result = CliRunner().invoke(cli, ["events", "tail", "--help"])
    assert result.exit_code == 0
    assert "only the last LIMIT events (20)" in " ".join(result.output.split())
