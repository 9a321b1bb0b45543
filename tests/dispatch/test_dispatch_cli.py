"""The commands: one summary line, exit codes, listing and resending deliveries."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from pipeline.cli.main import cli
from pipeline.db.engine import Database
from pipeline.sandbox.config import SandboxConfig
from pipeline.sandbox.runner import running_sandbox
from tests.dispatch.helpers import TOKEN, TOKEN_ENV, put_state


@pytest.fixture
def sandbox_url() -> Iterator[str]:
    """A sandbox on its own event loop in a thread, for commands that run their own loop."""
    ready = threading.Event()
    stop: dict[str, asyncio.Event] = {}
    found: dict[str, str] = {}
    loop = asyncio.new_event_loop()

    async def serve() -> None:
        stop["event"] = asyncio.Event()
        async with running_sandbox(SandboxConfig(tokens=(TOKEN,), unknown_ids={"lost"})) as url:
            found["url"] = url
            ready.set()
            await stop["event"].wait()

    thread = threading.Thread(target=loop.run_until_complete, args=(serve(),), daemon=True)
    thread.start()
    assert ready.wait(10)
    yield found["url"]
    loop.call_soon_threadsafe(stop["event"].set)
    thread.join(10)


@pytest.fixture
def invoke(db_url: str, sandbox_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    config = tmp_path / "config.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "altegio": {
                    "base_url": sandbox_url,
                    "insecure_hosts": ["127.0.0.1"],
                    "partners": {"default": {"token_env": TOKEN_ENV}},
                }
            }
        )
    )

    def run(*args: str):  # type: ignore[no-untyped-def]
        return CliRunner().invoke(
            cli, ["--config", str(config), "--database-url", db_url, *args], catch_exceptions=False
        )

    return run


def test_dispatch_prints_one_line_and_exits_1_when_something_is_parked(
    db_url: str,
    invoke,  # type: ignore[no-untyped-def]
) -> None:
    db = Database.from_url(db_url)
    try:
        for message_id in ("ok1", "ok2", "lost"):
            put_state(db, message_id)
    finally:
        db.dispose()
    result = invoke("dispatch", "--until-idle")
    assert result.exit_code == 1, result.output
    assert (
        result.stdout.strip()
        .splitlines()[-1]
        .startswith("dispatch: sent 3, acknowledged 2, retried 0, parked 1, expired 0")
    )
    assert TOKEN not in result.output

    listed = invoke("deliveries", "--format", "json")
    assert listed.exit_code == 0
    states = {row["message_id"]: row["state"] for row in json.loads(listed.stdout)}
    assert states == {"ok1": "acknowledged", "ok2": "acknowledged", "lost": "parked"}
    table = invoke("deliveries", "--state", "parked")
    assert "altegio_not_found" in table.output and "1 deliveries" in table.output

    requeued = invoke("resend", "--parked", "--kind", "altegio_not_found")
    assert requeued.stdout.strip() == "resend: 1 queued"
    pending = invoke("deliveries", "--state", "pending").stdout.splitlines()
    assert [line.split()[0] for line in pending[1:-1]] == ["lost"]
    again = invoke("resend", "ok1", "never-seen")
    assert again.exit_code == 1 and "never-seen" in again.output

    quiet = invoke("dispatch", "--limit", "1")
    assert quiet.stdout.startswith("dispatch: sent 1,")


def test_resend_needs_ids_or_parked(invoke) -> None:  # type: ignore[no-untyped-def]
    assert invoke("resend").exit_code == 2
    assert invoke("resend", "--kind", "x", "a").exit_code == 2
