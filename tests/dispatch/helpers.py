"""Shared pieces of the dispatcher tests: settings for a sandbox, a clock, message states."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import yaml
from sqlalchemy import select, update

from pipeline.config import Settings
from pipeline.db.engine import Database
from pipeline.dispatch.tables import deliveries
from pipeline.projector.tables import message_state

TOKEN = "tok-Sup3rSecret-partner-0001"
TOKEN_ENV = "SMSRECON_TEST_PARTNER_TOKEN"
START = datetime(2026, 1, 15, 10, 0, tzinfo=UTC)


@dataclass
class Clock:
    """A hand-driven clock: the dispatcher's idea of now, advanced by the test."""

    now: datetime = START

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def make_settings(base_url: str, **dispatcher: Any) -> Settings:
    """Settings that point the default partner at a sandbox on 127.0.0.1."""
    return Settings.model_validate(
        {
            "dispatcher": {"backoff_base": 1, "backoff_cap": 4, "timeout": 5, **dispatcher},
            "altegio": {
                "base_url": base_url,
                "allowed_hosts": ["app.alteg.io"],
                "insecure_hosts": ["127.0.0.1"],
                "partners": {"default": {"token_env": TOKEN_ENV}},
            },
        }
    )


def _hash(status: int, amount: Decimal, currency: str, parts: int) -> str:
    text = json.dumps([status, str(amount), currency, parts])
    return hashlib.sha256(text.encode()).hexdigest()


def put_state(
    db: Database,
    message_id: str,
    *,
    status: int = 8,
    amount: str = "4.50",
    currency: str = "RUB",
    parts: int = 1,
    partner: str = "default",
    url: str | None = None,
    version: int | None = None,
) -> None:
    """Insert or change a message_state row as the projector would (version rises)."""
    values = {
        "status": status,
        "is_final": status in (1, 2, 16, 52),
        "payment_sum": Decimal(amount),
        "currency_iso": currency,
        "parts_amount": parts,
        "payload_hash": _hash(status, Decimal(amount), currency, parts),
        "updated_at": START,
    }
    with db.write() as conn:
        current = conn.execute(
            select(message_state.c.version).where(message_state.c.message_id == message_id)
        ).scalar()
        if current is None:
            conn.execute(
                message_state.insert().values(
                    message_id=message_id,
                    partner=partner,
                    delivery_callback_url=url,
                    free=False,
                    last_position=1,
                    version=version or 1,
                    fold_state={},
                    **values,
                )
            )
        else:
            conn.execute(
                update(message_state)
                .where(message_state.c.message_id == message_id)
                .values(version=version or current + 1, **values)
            )


def delivery(db: Database, message_id: str) -> Any:
    with db.read() as conn:
        return conn.execute(select(deliveries).where(deliveries.c.message_id == message_id)).one()


async def received(base_url: str) -> dict[str, Any]:
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{base_url}/_sandbox/received") as response,
    ):
        return await response.json()


def write_config(directory: Path, base_url: str, **dispatcher: Any) -> Path:
    """A config file for ``smsrecon dispatch`` processes against a sandbox on 127.0.0.1."""
    config = directory / "config.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "dispatcher": dispatcher,
                "altegio": {
                    "base_url": base_url,
                    "allowed_hosts": [],
                    "insecure_hosts": ["127.0.0.1"],
                    "partners": {"default": {"token_env": TOKEN_ENV}},
                },
            }
        )
    )
    return config


async def dispatch_process(
    config: Path, database_url: str, limit: int | None = None
) -> tuple[int, str]:
    """Run ``smsrecon dispatch --until-idle`` in its own process: (exit code, output)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "pipeline",
        "--config",
        str(config),
        "--database-url",
        database_url,
        "dispatch",
        "--until-idle",
        *(["--limit", str(limit)] if limit else []),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, TOKEN_ENV: TOKEN},
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), timeout=60)
    except TimeoutError:
        proc.kill()  # a hung dispatcher fails the test instead of outliving it
        await proc.wait()
        raise
    return proc.returncode or 0, out.decode()
