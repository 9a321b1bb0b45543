"""`smsrecon run` as operations run it: one process, a real sandbox, a real database.

A message goes in through the ingest routes, its delivery report through a carrier
webhook; the scheduled projector and dispatcher must turn them into exactly the status,
price and parts Altegio receives, and SIGTERM must stop the process cleanly.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import aiohttp

from pipeline.sandbox.config import SandboxConfig
from pipeline.sandbox.runner import running_sandbox

TOKEN = "run-e2e-partner-token-4f1c"


def write_config(path: Path, db_url: str, sandbox_url: str) -> None:
    config = {
        "database": {"url": db_url},
        "ingest": {"host": "127.0.0.1", "port": 0, "commit_interval_ms": 2},
        "carriers": {"mts": {"format": "generic", "auth": {"type": "none"}}},
        "billing": {"tariffs": [{"prefix": "+7", "price_per_part": "2.45", "currency": "RUB"}]},
        "scheduler": {"project_interval": "200ms", "dispatch_interval": "200ms"},
        "dispatcher": {"backoff_base": "100ms", "backoff_cap": "1s"},
        "altegio": {
            "base_url": sandbox_url,
            "allowed_hosts": [],
            "insecure_hosts": ["127.0.0.1"],
            "partners": {"default": {"token_env": "SMSRECON_TEST_RUN_TOKEN"}},
        },
    }
    path.write_text(json.dumps(config))  # JSON is YAML


async def wait_for(predicate, timeout: float, what: str):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = await predicate()
        if result:
            return result
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


async def read_line(proc: subprocess.Popen[str], timeout: float) -> str:
    line = await asyncio.wait_for(asyncio.to_thread(proc.stdout.readline), timeout)  # type: ignore[union-attr]
    return line.strip()


async def test_run_ingests_projects_dispatches_and_stops_on_sigterm(
    db_url: str, tmp_path: Path
) -> None:
    async with running_sandbox(SandboxConfig(tokens=(TOKEN,))) as sandbox_url:
        config = tmp_path / "config.yaml"
        write_config(config, db_url, sandbox_url)
        env = {**os.environ, "SMSRECON_TEST_RUN_TOKEN": TOKEN}
        proc = subprocess.Popen(
            [sys.executable, "-m", "pipeline", "--config", str(config), "run"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        try:
            banner = await read_line(proc, 60)
            assert banner.startswith("smsrecon running: ingest on http://127.0.0.1:"), banner
            ingest = banner.split(" on ", 1)[1].split(",", 1)[0]
            async with aiohttp.ClientSession() as http:
                message = {"id": "7001", "phone": "+79161234567", "text": "Hello Anna"}
                async with http.post(f"{ingest}/v1/messages", json=message) as r:
                    assert r.status == 200, await r.text()
                submission = {"message_id": "7001", "carrier": "mts", "carrier_message_id": "c1"}
                async with http.post(f"{ingest}/v1/submissions", json=submission) as r:
                    assert r.status == 200, await r.text()
                report = {"carrier_message_id": "c1", "status": "DELIVRD",
                          "occurred_at": "2026-01-15T10:31:00Z"}  # fmt: skip
                async with http.post(f"{ingest}/v1/dlr/mts", json=report) as r:
                    assert r.status == 200, await r.text()

                async def delivered() -> list[dict] | None:
                    async with http.get(f"{sandbox_url}/_sandbox/received") as r:
                        items = (await r.json())["items"]
                    finals = [i for i in items if i["id"] == "7001" and i["status"] == 1]
                    return finals or None

                finals = await wait_for(delivered, 60, "the delivered status at the sandbox")
            fields = ("id", "status", "payment_sum", "currency_iso", "parts_amount")
            assert {k: finals[-1][k] for k in fields} == {
                "id": "7001",
                "status": 1,
                "payment_sum": "2.45",  # the JSON number as sent, recorded exactly
                "currency_iso": "RUB",
                "parts_amount": 1,
            }
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                out, err = await asyncio.to_thread(proc.communicate, timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                out, err = proc.communicate()
        assert proc.returncode == 0, err
        assert "smsrecon stopped cleanly" in out
        assert TOKEN not in out + err


def _run_once(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pipeline", "--config", str(config), "run", *args],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def test_run_without_a_carrier_secret_says_which_in_one_line(db_url: str, tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(json.dumps({
        "database": {"url": db_url},
        "carriers": {"mts": {"format": "kannel",
                             "auth": {"type": "token", "secret_env": "SMSRECON_TEST_UNSET_1"}}},
    }))  # fmt: skip
    result = _run_once(config, "--port", "0")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "SMSRECON_TEST_UNSET_1 is not set" in result.stderr.strip().splitlines()[-1]


def test_run_on_a_port_in_use_says_so_in_one_line(db_url: str, tmp_path: Path) -> None:
    import socket

    config = tmp_path / "config.yaml"
    config.write_text(json.dumps({"database": {"url": db_url}}))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = _run_once(config, "--host", "127.0.0.1", "--port", str(port))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr
