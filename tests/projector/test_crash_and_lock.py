"""Crash safety (SIGKILL mid-projection) and one active projector per database."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import select

from pipeline.config import load_settings
from pipeline.db.engine import Database
from pipeline.eventlog import append
from pipeline.projector.derive import FoldRules
from pipeline.projector.lock import projector_lock
from pipeline.projector.replay import verify
from pipeline.projector.runner import run_project
from pipeline.projector.store import CHECKPOINT
from pipeline.projector.tables import projector_checkpoints
from tests.projector.traffic import traffic

ROOT = Path(__file__).resolve().parents[2]
TRIALS = 20


def _smsrecon(url: str, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "SMSRECON_CONFIG": os.devnull}
    return subprocess.Popen(
        [sys.executable, "-m", "pipeline", "--database-url", url, *args],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def _checkpoint(db: Database) -> int:
    with db.read() as conn:
        cp = projector_checkpoints
        value = conn.scalar(select(cp.c.position).where(cp.c.name == CHECKPOINT))
        return int(value or 0)


def _wait_for(condition: Callable[[], bool], timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.005)
    return False


def test_sigkill_at_random_moments_never_loses_or_doubles_anything(
    db: Database, db_url: str
) -> None:
    rng = random.Random(20260115)
    settings = load_settings(None, {"database.url": db_url}, environ={})
    rules = FoldRules()
    killed_mid_run = 0
    for trial in range(TRIALS):
        append(db, traffic(seed=trial, messages=30, start=trial * 30))
        before = _checkpoint(db)
        proc = _smsrecon(db_url, "project", "--batch-size", "3")
        # Kill once it is demonstrably working, at a random moment after that.
        _wait_for(lambda: _checkpoint(db) > before or proc.poll() is not None)  # noqa: B023
        time.sleep(rng.uniform(0, 0.05))
        if proc.poll() is None:
            killed_mid_run += 1
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=20)
        summary = run_project(db, settings, batch_size=50, wait=True)
        assert summary is not None and summary.lag == 0
        _upto, differences = verify(db, rules, grace_seconds=600, batch_size=1000)
        assert differences == 0, f"trial {trial}: replay differs"
    assert killed_mid_run >= TRIALS // 2, "too few kills landed while the projector ran"


def test_a_second_projector_says_another_is_active_and_exits_0(db: Database, db_url: str) -> None:
    append(db, traffic(seed=1, messages=5))
    with projector_lock(db) as acquired:
        assert acquired
        proc = _smsrecon(db_url, "project")
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "another projector is active" in out
    assert _checkpoint(db) == 0


def _second_projector_waits(db: Database) -> None:
    settings = load_settings(None, {}, environ={})
    append(db, traffic(seed=2, messages=5))
    release = threading.Event()
    holding = threading.Event()

    def holder() -> None:
        with projector_lock(db) as acquired:
            assert acquired
            holding.set()
            release.wait(10)

    thread = threading.Thread(target=holder)
    thread.start()
    assert holding.wait(10)
    assert run_project(db, settings) is None  # skips while the other holds the lock
    results: list[object] = []
    waiter = threading.Thread(target=lambda: results.append(run_project(db, settings, wait=True)))
    waiter.start()
    waiter.join(0.3)
    assert waiter.is_alive() and results == []  # still waiting: the lock is held
    release.set()
    thread.join(10)
    waiter.join(20)
    assert results and results[0] is not None and results[0].events > 0  # type: ignore[union-attr]


def test_postgres_advisory_lock_lets_one_projector_run_and_the_other_wait(pg_db: Database) -> None:
    _second_projector_waits(pg_db)


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_sqlite_file_lock_lets_one_projector_run_and_the_other_wait(db: Database) -> None:
    _second_projector_waits(db)
