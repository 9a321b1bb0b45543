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
from sqlalchemy import delete, select

from pipeline.config import load_settings
from pipeline.db.engine import Database
from pipeline.eventlog import append
from pipeline.projector.derive import FoldRules
from pipeline.projector.lock import projector_lock
from pipeline.projector.replay import verify
from pipeline.projector.runner import catch_up, head_position, run_project
from pipeline.projector.store import CHECKPOINT, LIVE
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


def _wait_for(condition: Callable[[], bool], timeout: float = 120.0) -> bool:
    """Poll ``condition`` until it holds; ``timeout`` only bounds a broken run."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.005)
    return False


def _reset(db: Database) -> None:
    """Forget the projection (not the log), so that every trial projects the same log."""
    with db.write() as conn:
        for table in (LIVE.state, LIVE.mismatches, LIVE.correlations, LIVE.held, LIVE.checkpoints):
            conn.execute(delete(table))


def test_sigkill_at_random_moments_never_loses_or_doubles_anything(
    db: Database, db_url: str
) -> None:
    """``smsrecon project`` is killed at random moments inside its run, then a new run
    catches up and a replay from scratch finds no difference.

    The exact points between a batch's writes are covered deterministically by
    ``test_crash_points.py``; these kills land wherever the process happens to be (inside
    the driver, a commit, the lock), as a real kill would. Each trial's process is started
    while the test holds the projector lock (it waits with ``--wait``), so its start-up
    overlaps the previous trial's checks; releasing the lock sets it going. The kill comes
    as soon as the checkpoint is seen at or past a random position of the log. A busy
    machine may let a run go further, or even finish, before the kill lands: every trial
    still checks what it finds, and nothing is asserted about where the kills fell.
    """
    rng = random.Random(20260115)
    rules = FoldRules()
    append(db, traffic(seed=3, messages=100))
    head = head_position(db)

    started: list[subprocess.Popen[str]] = []

    def start() -> subprocess.Popen[str]:
        started.append(_smsrecon(db_url, "project", "--batch-size", "3", "--wait"))
        return started[-1]

    def complete_and_verify(label: str) -> None:
        # What `smsrecon project --wait` and `smsrecon replay --verify` run, in-process.
        catch_up(db, rules, grace_seconds=600, batch_size=200)
        assert _checkpoint(db) == head, label
        _upto, differences = verify(db, rules, grace_seconds=600, batch_size=1000)
        assert differences == 0, f"{label}: replay differs"
        _reset(db)

    try:
        _trials(db, rng, head, start, complete_and_verify)
    finally:
        for proc in started:
            if proc.poll() is None:
                proc.kill()
                proc.communicate(timeout=20)


def _trials(
    db: Database,
    rng: random.Random,
    head: int,
    start: Callable[[], subprocess.Popen[str]],
    complete_and_verify: Callable[[str], None],
) -> None:
    lock = projector_lock(db, wait=True)
    assert lock.__enter__()
    proc = start()
    for trial in range(TRIALS):
        target = rng.randrange(1, head)
        lock.__exit__(None, None, None)  # the waiting process starts projecting
        assert _wait_for(lambda: _checkpoint(db) >= target or proc.poll() is not None)  # noqa: B023
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=60)
        lock = projector_lock(db, wait=True)
        assert lock.__enter__()  # dead processes hold no lock
        if trial + 1 < TRIALS:
            next_proc = start()  # imports while this trial is checked; waits for the lock
        complete_and_verify(f"trial {trial} (killed at or after {target} of {head})")
        if trial + 1 < TRIALS:
            proc = next_proc
    lock.__exit__(None, None, None)


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
            release.wait()

    thread = threading.Thread(target=holder)
    thread.start()
    results: list[object] = []
    waiter = threading.Thread(target=lambda: results.append(run_project(db, settings, wait=True)))
    try:
        assert holding.wait(60)
        assert run_project(db, settings) is None  # skips while the other holds the lock
        waiter.start()
        # However long the waiter is given, it cannot finish while the lock is held.
        waiter.join(0.3)
        assert waiter.is_alive() and results == []
    finally:
        release.set()  # held until here, whatever the machine's load
        thread.join(60)
    waiter.join(60)
    assert results and results[0] is not None and results[0].events > 0  # type: ignore[union-attr]


def test_postgres_advisory_lock_lets_one_projector_run_and_the_other_wait(pg_db: Database) -> None:
    _second_projector_waits(pg_db)


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_sqlite_file_lock_lets_one_projector_run_and_the_other_wait(db: Database) -> None:
    _second_projector_waits(db)
