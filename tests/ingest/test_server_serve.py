"""``smsrecon serve`` as a process, and gateways answered the way they expect."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

from pipeline.db.engine import Database
from tests.ingest.server_fixtures import live_server, make_settings, stored_events

JASMIN_FORM = (
    "id=16fd2706-8baf-433b-82eb-8c7fada847da&level=2&message_status=DELIVRD&connector=3e8f2b1c"
    "&id_smsc=3e8f2b1c&sub=001&dlvrd=001&subdate=2401151030&donedate=2401151031&err=000"
    "&text=Hello+Anna%2C+your+ap"
)


async def test_jasmin_gets_exactly_ack_jasmin(db: Database) -> None:
    settings = make_settings({"jasmin": {"format": "jasmin", "timezone": "Europe/Moscow"}})
    async with live_server(settings, db) as client:
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        first = await client.post("/v1/dlr/jasmin", data=JASMIN_FORM, headers=headers)
        assert (first.status, await first.read()) == (200, b"ACK/Jasmin")
        resent = await client.post("/v1/dlr/jasmin", data=JASMIN_FORM, headers=headers)
        assert (resent.status, await resent.read()) == (200, b"ACK/Jasmin")
    [row] = stored_events(db, "carrier.status")
    assert (row.carrier, row.payload["status"], row.payload["format"]) == ("jasmin", 1, "jasmin")


def test_serve_prints_its_address_serves_and_exits_0_on_sigterm(
    db: Database, db_url: str, tmp_path: Path
) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("carriers: {}\n")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pipeline",
            "--config",
            str(config),
            "--database-url",
            db_url,
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()  # blocks until the server is listening
        match = re.match(r"listening on (http://127\.0\.0\.1:\d+)", line)
        assert match, (line, process.stderr.read() if process.poll() is not None else "")
        request = urllib.request.Request(
            match.group(1) + "/v1/messages",
            data=b'{"id": "1", "phone": "+79161234567", "text": "hi"}',
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            assert response.status == 200
        process.send_signal(signal.SIGTERM)
        out, _ = process.communicate(timeout=60)
        assert process.returncode == 0
        assert "stopped" in out
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert [row.message_id for row in stored_events(db)] == ["1"]
