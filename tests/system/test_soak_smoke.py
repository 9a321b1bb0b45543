"""bench/soak.py end to end, for a few seconds: the driver works and its checks are right.

The real soak (ten minutes, figures in docs/benchmarks.md) is not part of the suite. Here
only the correctness checks are asserted: a few seconds cannot say whether memory is flat,
and nothing is judged by speed.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
CORRECTNESS = (
    "clean restarts",
    "logs",
    "every 2xx stored",
    "every change delivered",
    "every message finished",
)


def test_a_short_soak_stores_every_2xx_and_delivers_every_change(
    db_url: str, tmp_path: Path
) -> None:
    checks_file = tmp_path / "checks.json"
    samples_file = tmp_path / "samples.csv"
    command = [sys.executable, str(ROOT / "bench" / "soak.py"), "--seconds", "6"]
    command += ["--rate", "20", "--sample-every", "1", "--database-url", db_url]
    command += ["--project-interval", "1s", "--dispatch-interval", "500ms"]
    command += ["--json", str(checks_file), "--csv", str(samples_file)]
    # The timeout only stops a hung driver; the run itself is not timed.
    done = subprocess.run(command, capture_output=True, text=True, timeout=240, cwd=ROOT)
    assert done.returncode in (0, 1), done.stderr[-2000:]
    checks = {c["name"]: c for c in json.loads(checks_file.read_text())}
    for name in CORRECTNESS:
        assert checks[name]["ok"] is True, (checks[name], done.stderr[-2000:])
    assert "0 missing from the log" in checks["every 2xx stored"]["detail"]
    assert {"RSS flat, run #1", "fds flat, run #2", "lag bounded"} <= checks.keys()
    # The restart happened, and both processes were sampled.
    rows = samples_file.read_text().splitlines()
    lifetimes = {row.split(",")[2] for row in rows[1:]}
    assert {"1", "2"} <= lifetimes
    assert "verdict:" in done.stdout
    assert "soak-partner-token" not in done.stdout + done.stderr
