"""``smsrecon demo`` ends by saying where the dashboard is; ``--serve`` keeps it up."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

from tests.dashboard.conftest import ROOT


def test_demo_serve_keeps_the_dashboard_up_until_signalled(tmp_path: Path) -> None:
    database = tmp_path / "demo.db"
    process = subprocess.Popen(
        [sys.executable, "-m", "pipeline", "demo", "--database", str(database),
         "--serve", "--port", "0"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={k: v for k, v in os.environ.items() if not k.startswith("SMSRECON_")},
    )  # fmt: skip
    assert process.stdout is not None
    seen = []
    try:
        for line in process.stdout:
            seen.append(line)
            found = re.search(r"demo dashboard on (http://\S+/dashboard/)", line)
            if found:
                break
        else:
            raise AssertionError("".join(seen))
        output = "".join(seen)
        assert "Dashboard for this database: http://127.0.0.1:8090/dashboard/" in output
        assert f"--config {tmp_path / 'demo.yaml'} dashboard --port 8090" in output
        with urllib.request.urlopen(found.group(1), timeout=120) as response:
            page = response.read().decode()
        assert response.status == 200 and "<h1>Overview</h1>" in page
        with urllib.request.urlopen(found.group(1) + "message/232681", timeout=120) as response:
            assert "232681" in response.read().decode()
        # Issue 13's path: Disputes -> the top row's message -> the month's billing CSV.
        with urllib.request.urlopen(found.group(1) + "disputes", timeout=120) as response:
            first = re.search(r'class="message-link" href="([^"]+)"', response.read().decode())
        assert first is not None and first.group(1).endswith("/message/232675")
        with urllib.request.urlopen(found.group(1) + "message/232675", timeout=120) as response:
            assert "duplicate_charge" in response.read().decode()
        with urllib.request.urlopen(found.group(1) + "download/billing.csv", timeout=120) as got:
            assert got.read().decode().startswith("day,")
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=60)
        assert process.returncode == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
