"""A SIGKILL at each named point of a batch's commit path leaves exactly the committed batches.

``SMSRECON_CRASH_AT`` (``pipeline/projector/crashpoints.py``) makes ``smsrecon project`` kill
itself at a chosen point of a chosen batch, so each test knows which batches had committed
when the process died, however loaded the machine is. After every crash the projection must
be exactly those batches: the checkpoint at the last of them, no projected row from past it,
and ``replay --verify`` finding no difference. A new run then finishes the log, and a replay
from scratch agrees with it: nothing lost, nothing applied twice.

Two crashes per test: in the very first batch (whose transaction also creates the
checkpoint row) and in a later batch of a second run that starts from the first one's
checkpoint.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select

from pipeline.db.engine import Database
from pipeline.eventlog import append
from pipeline.projector import crashpoints
from pipeline.projector.derive import FoldRules
from pipeline.projector.lock import projector_lock
from pipeline.projector.replay import verify
from pipeline.projector.runner import catch_up
from pipeline.projector.store import CHECKPOINT, LIVE
from tests.projector.traffic import traffic

ROOT = Path(__file__).resolve().parents[2]
BATCH = 3
#: (passage of the point at which the run dies) for the first run, then for the second.
CRASHES = (1, 4)
#: A bound on a subprocess that should end within seconds, not a measurement.
PROCESS_TIMEOUT = 180


def _project(url: str, crash_at: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SMSRECON_CONFIG": os.devnull}
    env.pop(crashpoints.ENV, None)
    if crash_at is not None:
        env[crashpoints.ENV] = crash_at
    return subprocess.run(
        [sys.executable, "-m", "pipeline", "--database-url", url,
         "project", "--batch-size", str(BATCH), "--wait"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=PROCESS_TIMEOUT,
    )  # fmt: skip


def _committed_by_the_crash(point: str, nth: int) -> int:
    """How many events the run had committed when it died at the ``nth`` passage."""
    if point == "event_folded":
        return (nth - 1) // BATCH * BATCH  # the batches before the one holding event nth
    if point == "batch_committed":
        return nth * BATCH
    return (nth - 1) * BATCH  # died inside batch nth, before its commit


def _positions(db: Database) -> list[int]:
    with db.read() as conn:
        return [row[0] for row in conn.exec_driver_sql("SELECT position FROM events ORDER BY 1")]


def _assert_exactly_committed(db: Database, checkpoint: int, label: str) -> None:
    """The projection holds every event up to ``checkpoint`` once and nothing after it."""
    with projector_lock(db, wait=True) as acquired:  # a dead process holds no lock
        assert acquired
        with db.read() as conn:
            cp = LIVE.checkpoints
            stored = conn.scalar(select(cp.c.position).where(cp.c.name == CHECKPOINT))
            assert int(stored or 0) == checkpoint, label
            furthest = [
                conn.scalar(select(func.max(LIVE.state.c.last_position))),
                conn.scalar(select(func.max(LIVE.mismatches.c.last_position))),
                conn.scalar(select(func.max(LIVE.held.c.position))),
                conn.scalar(select(func.max(LIVE.correlations.c.position))),
            ]
            assert all(p is None or p <= checkpoint for p in furthest), (label, furthest)
        upto, differences = verify(db, FoldRules(), grace_seconds=600, batch_size=1000)
        assert (upto, differences) == (checkpoint, 0), f"{label}: replay differs"


@pytest.mark.parametrize("point", crashpoints.POINTS)
def test_a_sigkill_at_each_crash_point_leaves_exactly_the_committed_batches(
    db: Database, db_url: str, point: str
) -> None:
    append(db, traffic(seed=5, messages=20))
    positions = _positions(db)
    committed = 0
    for nth in CRASHES:
        run = _project(db_url, crash_at=f"{point}:{nth}")
        assert run.returncode == -signal.SIGKILL, (point, nth, run.stdout, run.stderr)
        committed += _committed_by_the_crash(point, nth)
        checkpoint = positions[committed - 1] if committed else 0
        _assert_exactly_committed(db, checkpoint, f"after a crash at {point}:{nth}")
    assert 0 < committed < len(positions)  # the crashes fell mid-log, not after it

    # What a new `smsrecon project` runs, in-process (the crashed runs were real ones).
    with projector_lock(db, wait=True):
        catch_up(db, FoldRules(), grace_seconds=600, batch_size=BATCH)
    _assert_exactly_committed(db, positions[-1], f"after resuming from {point}")


def test_an_unknown_crash_point_is_refused_rather_than_ignored(tmp_path: Path) -> None:
    run = _project(f"sqlite:///{tmp_path / 'never-opened.db'}", crash_at="between_the_lines")
    assert run.returncode != 0
    assert "SMSRECON_CRASH_AT='between_the_lines'" in run.stderr
