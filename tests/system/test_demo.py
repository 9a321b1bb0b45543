"""`smsrecon demo` runs the whole pipeline and shows what Altegio and finance would see."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path


def test_demo_runs_end_to_end_and_prints_the_results(db_url: str, tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pipeline", "demo", "--url", db_url,
         "--database", str(tmp_path / "demo.db")],
        capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "14 requests -> 13 events (1 resent report stored once)" in out
    assert "Altegio (sandbox) accepted 8 status objects" in out
    rows = {line.split()[0]: line for line in out.splitlines() if line[:6].isdigit()}
    assert "2 / 4.90 RUB / 2p" in rows["232675"]  # two-part Cyrillic text, expired
    assert "52 / 0.00 RUB / 1p" in rows["232679"]  # refused: not enough funds, free of charge
    assert "1 / 0.00 RUB / 1p" in rows["232680"]  # a free message is sent with a zero sum
    assert "nothing (not sendable)" in rows["232682"]  # no tariff: never sent without a price
    assert "conflicting_final  message 232681" in out
    assert "no_tariff          message 232682" in out
    assert "demo-partner-token" not in out + result.stderr
    config = tmp_path / "demo.yaml"
    explained = subprocess.run(
        [sys.executable, "-m", "pipeline", "--config", str(config), "explain", "232681"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert explained.returncode == 0, explained.stderr
    trail = explained.stdout
    assert trail.index("Events") < trail.index("State") < trail.index("Dispatch attempts")
    assert "conflicting_final" in trail
    assert "-> 200: acknowledged" in trail


def test_the_demo_s_printed_follow_ups_run_as_printed(tmp_path: Path) -> None:
    """`make demo` does not activate .venv: the commands it suggests must work without it."""
    database = tmp_path / "demo.db"
    result = subprocess.run(
        [sys.executable, "-m", "pipeline", "demo", "--database", str(database)],
        capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    follow_ups = result.stdout.split("Next:")[1].split("Dashboard for this database")[0]
    commands = re.findall(r"`([^`]+)`", follow_ups)
    assert len(commands) == 2 and all(" --config " in c for c in commands), commands
    for command in commands:
        argv = shlex.split(command)
        followed = subprocess.run(argv, capture_output=True, text=True, timeout=60)
        assert followed.returncode == 0, (command, followed.stderr)
        assert followed.stdout.strip()
