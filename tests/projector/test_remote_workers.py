"""Workers on other machines: ``--local-workers`` and ``smsrecon replay-worker``.

The "other machine" is a separate ``smsrecon replay-worker`` process against the same
database: everything it shares with the coordinator goes through the database, as it would
from another host. On SQLite both sides refuse (one machine, one writer). Nothing here waits
on time: processes are awaited with generous timeouts, and state is polled for.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import inspect

from pipeline.cli.main import cli
from pipeline.config import load_settings
from pipeline.db.engine import Database
from pipeline.eventlog import append
from pipeline.projector import board as boards
from pipeline.projector.board import Board, Remote, RoundSpec
from pipeline.projector.derive import FoldRules
from pipeline.projector.runner import fold_rules, head_position
from pipeline.projector.shard import ShardResult
from pipeline.projector.store import LIVE
from tests.projector.events import accepted, report, submitted
from tests.projector.test_parallel import snapshot
from tests.projector.traffic import traffic

ROOT = Path(__file__).resolve().parents[2]
CONFIG = """
billing:
  tariffs:
    - {prefix: "+7", price_per_part: "2.27", currency: RUB}
"""
#: Generous: a loaded machine must not fail these tests (a timeout is never the verdict).
PATIENCE = 300


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(CONFIG)
    return path


def run(config: Path, db_url: str, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--config", str(config), "--database-url", db_url, *args])


def start(config: Path, db_url: str, *args: str) -> subprocess.Popen[str]:
    """``smsrecon ARGS`` in a process of its own, as on another machine."""
    return subprocess.Popen(
        [sys.executable, "-m", "pipeline", "--config", str(config), "--database-url", db_url,
         *args],
        cwd=ROOT, env=dict(os.environ), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip


def worker(config: Path, db_url: str, shard: str) -> subprocess.Popen[str]:
    return start(config, db_url, "replay-worker", "--shard", shard, "--timeout", str(PATIENCE))


def finished(process: subprocess.Popen[str]) -> tuple[int, str, str]:
    out, err = process.communicate(timeout=PATIENCE)
    return process.returncode, out, err


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[str]]]:
    """Processes a test starts; any still running when it ends (a failed test) is killed."""
    started: list[subprocess.Popen[str]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
            process.communicate()


def scratch_tables(db: Database) -> list[str]:
    """Tables a parallel fold makes and must drop: the board, the claims, the shards'."""
    names = inspect(db.engine).get_table_names()
    return sorted(n for n in names if "__shard" in n or n.startswith("projector_shard_"))


def with_a_failing_event() -> list:  # type: ignore[type-arg]
    """Traffic, and a report its message's worker cannot fold (no plausible part count):
    the other worker folds past it, so a second round must skip it everywhere."""
    return [*traffic(seed=11, messages=30), accepted("bad", 1), submitted("bad", "bad-c0", 1.2),
            report("bad-c0", 4, 1.5, parts=20_000)]  # fmt: skip


# -- the commands -------------------------------------------------------------------------


def test_a_shard_folded_by_another_process_gives_one_folds_rows(
    db: Database, db_url: str, backend: str, config: Path, processes: list
) -> None:
    append(db, traffic(seed=11, messages=40))
    assert run(config, db_url, "project").exit_code == 0
    if backend == "sqlite":
        refused = run(config, db_url, "replay", "--verify", "--workers", "2",
                      "--local-workers", "1")  # fmt: skip
        assert refused.exit_code == 2 and "needs PostgreSQL" in refused.output
        alone = run(config, db_url, "replay-worker", "--shard", "1/2", "--timeout", "1")
        assert alone.exit_code == 2 and "needs PostgreSQL" in alone.output
        return
    processes.append(remote := worker(config, db_url, "1/2"))
    rebuilt = run(config, db_url, "replay", "--rebuild", "--workers", "2", "--local-workers",
                  "1", "--worker-timeout", str(PATIENCE))  # fmt: skip
    assert rebuilt.exit_code == 0, rebuilt.output
    code, out, err = finished(remote)
    assert code == 0, err
    assert "round 1 claimed" in out and "done;" in out
    by_two_machines = snapshot(db, LIVE)
    # One process rebuilds the same rows, in every table.
    assert run(config, db_url, "replay", "--rebuild").exit_code == 0
    assert snapshot(db, LIVE) == by_two_machines
    assert scratch_tables(db) == []


def test_every_shard_on_other_processes_and_report_verify(
    db: Database, db_url: str, backend: str, config: Path, processes: list
) -> None:
    if backend == "sqlite":
        return  # refused, as the test above shows
    append(db, traffic(seed=12, messages=40))
    assert run(config, db_url, "project").exit_code == 0
    processes += [worker(config, db_url, "0/2"), worker(config, db_url, "1/2")]
    verified = run(config, db_url, "replay", "--verify", "--workers", "2", "--local-workers",
                   "0", "--worker-timeout", str(PATIENCE))  # fmt: skip
    assert verified.exit_code == 0, verified.output
    assert "replay matches message_state" in verified.output
    for process in processes:
        code, _out, err = finished(process)
        assert code == 0, err
    saved = run(config, db_url, "report", "delivery", "--from", "2026-01-01", "--to",
                "2026-02-01", "--format", "csv", "--save")  # fmt: skip
    assert saved.exit_code == 0, saved.output
    processes.append(remote := worker(config, db_url, "2/3"))
    pinned = run(config, db_url, "report", "verify", "1", "--workers", "3", "--local-workers",
                 "2", "--worker-timeout", str(PATIENCE))  # fmt: skip
    assert pinned.exit_code == 0, pinned.output
    assert "verified" in pinned.output
    assert finished(remote)[0] == 0
    assert scratch_tables(db) == []


def test_an_event_that_fails_to_fold_takes_a_second_round_across_machines(
    db: Database, db_url: str, backend: str, config: Path, processes: list
) -> None:
    if backend == "sqlite":
        return
    append(db, with_a_failing_event())
    assert run(config, db_url, "project").exit_code == 0
    processes.append(remote := worker(config, db_url, "1/2"))
    verified = run(config, db_url, "replay", "--verify", "--workers", "2", "--local-workers",
                   "1", "--worker-timeout", str(PATIENCE))  # fmt: skip
    assert verified.exit_code == 0, verified.output
    assert "replay matches message_state" in verified.output
    code, out, err = finished(remote)
    assert code == 0, err
    assert "round 2 claimed" in out and "done;" in out


def test_a_worker_with_other_fold_rules_is_refused(
    db: Database, db_url: str, backend: str, config: Path
) -> None:
    if backend == "sqlite":
        with pytest.raises(boards.RemoteShardError, match="need PostgreSQL"):
            Board.open(db, FoldRules(), 2, Remote(1))
        return
    append(db, traffic(seed=3, messages=5))
    board = Board.open(db, FoldRules(), 2, Remote(1))  # no tariffs: not this config's rules
    try:
        board.publish(1, RoundSpec(head_position(db), 100, 600.0, {}))
        result = run(config, db_url, "replay-worker", "--shard", "1/2", "--timeout", "60")
        assert result.exit_code == 2, result.output
        assert "fold rules" in result.output and "differ from the coordinator's" in result.output
    finally:
        board.close()


def test_a_second_worker_for_a_shard_is_refused(
    db: Database, db_url: str, backend: str, config: Path
) -> None:
    if backend == "sqlite":
        return
    append(db, traffic(seed=3, messages=5))
    rules = fold_rules(load_settings(config, environ={}))
    board = Board.open(db, rules, 2, Remote(1))
    try:
        board.publish(1, RoundSpec(head_position(db), 100, 600.0, {}))
        assert boards.claim(db, board.token, 1, 1, "elsewhere:1").won
        again = boards.claim(db, board.token, 1, 1, "elsewhere:2")
        assert not again.won and again.holder == "elsewhere:1"
        second = run(config, db_url, "replay-worker", "--shard", "1/2", "--timeout", "60")
        assert second.exit_code == 4, second.output
        assert "already claimed by elsewhere:1" in second.output
        ours = run(config, db_url, "replay-worker", "--shard", "0/2", "--timeout", "60")
        assert ours.exit_code == 2 and "folds shards 0..0 itself" in ours.output
        other_n = run(config, db_url, "replay-worker", "--shard", "1/3", "--timeout", "60")
        assert other_n.exit_code == 2 and "folds 2 shards, not 3" in other_n.output
    finally:
        board.close()


def test_the_coordinator_gives_up_on_a_shard_nobody_folds(
    db: Database, db_url: str, backend: str, config: Path
) -> None:
    if backend == "sqlite":
        return
    append(db, traffic(seed=4, messages=20))
    assert run(config, db_url, "project").exit_code == 0
    before = snapshot(db, LIVE)
    result = run(config, db_url, "replay", "--rebuild", "--workers", "2", "--local-workers", "1",
                 "--worker-timeout", "1")  # fmt: skip
    assert result.exit_code == 4, result.output
    assert "shard 1/2: no worker claimed it within 1s" in result.output
    assert "smsrecon replay-worker --shard 1/2" in result.output
    assert snapshot(db, LIVE) == before
    assert scratch_tables(db) == []


def test_a_worker_that_fails_fails_the_command_and_changes_nothing(
    db: Database, db_url: str, backend: str, config: Path, processes: list
) -> None:
    if backend == "sqlite":
        return
    append(db, traffic(seed=5, messages=20))
    assert run(config, db_url, "project").exit_code == 0
    before = snapshot(db, LIVE)
    processes.append(coordinator := start(config, db_url, "replay", "--rebuild", "--workers",
                                          "2", "--local-workers", "1", "--worker-timeout",
                                          str(PATIENCE)))  # fmt: skip
    published = poll(lambda: boards.latest_round(db))
    assert boards.claim(db, published.token, published.round, 1, "test:1").won
    boards.Slot(db, published.token, published.round, 1, "test:1").fail("RuntimeError: disk gone")
    code, _out, err = finished(coordinator)
    assert code == 1, err
    assert "shard 1/2 failed on test:1: RuntimeError: disk gone; nothing changed" in err
    assert snapshot(db, LIVE) == before
    assert scratch_tables(db) == []


def test_a_worker_without_a_coordinator_stops_after_its_timeout(
    db_url: str, backend: str, config: Path
) -> None:
    if backend == "sqlite":
        return
    result = run(config, db_url, "replay-worker", "--shard", "1/2", "--timeout", "1")
    assert result.exit_code == 4, result.output
    assert "no live coordinator offered a round within 1s" in result.output


def test_local_workers_cannot_exceed_workers(db_url: str, config: Path) -> None:
    result = run(config, db_url, "replay", "--verify", "--workers", "2", "--local-workers", "3")
    assert result.exit_code == 2
    assert "--local-workers 3 is more than --workers 2" in result.output


def poll(look):  # type: ignore[no-untyped-def]
    """``look()`` once it is not None (state, polled; the deadline only stops a hang)."""
    deadline = time.monotonic() + PATIENCE
    while (found := look()) is None:
        assert time.monotonic() < deadline, "timed out waiting for the coordinator's round"
        time.sleep(0.05)
    return found


# -- the board's pieces -------------------------------------------------------------------


def test_a_round_and_a_result_survive_their_json() -> None:
    from datetime import UTC, datetime

    spec = RoundSpec(42, 500, 600.5, {7: ("parts: not a count", True), 3: ("fx", False)})
    assert RoundSpec.from_json(spec.to_json()) == spec
    result = ShardResult(1, {7: ("parts: not a count", True)}, {3, 9}, {11}, 42,
                         datetime(2026, 1, 15, 10, 0, 30, 123456, tzinfo=UTC))  # fmt: skip
    assert boards.result_from_json(boards.result_to_json(result)) == result
    empty = ShardResult(0, {}, set(), set(), 0, None)
    assert boards.result_from_json(boards.result_to_json(empty)) == empty


def test_the_rules_digest_follows_the_configuration(config: Path, tmp_path: Path) -> None:
    same = [fold_rules(load_settings(config, environ={})) for _ in range(2)]
    assert boards.rules_digest(same[0]) == boards.rules_digest(same[1])
    other = tmp_path / "other.yaml"
    other.write_text(CONFIG.replace("2.27", "2.28"))
    changed = fold_rules(load_settings(other, environ={}))
    assert boards.rules_digest(changed) != boards.rules_digest(same[0])
    stale = fold_rules(load_settings(config, {"projector.stale_after": 60}, environ={}))
    assert boards.rules_digest(stale) != boards.rules_digest(same[0])


# -- the same rows as one fold, for random logs -------------------------------------------


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_fold_with_remote_shards_equals_one_fold(db: Database, db_url: str, backend: str,
                                                   seed: int) -> None:  # fmt: skip
    """Random logs (held and unclaimed reports, failing events, invoices, FX, prices): the
    coordinator folds shard 0 and workers on threads of their own, each with its own
    engine, fold the others through the board; the tables are one fold's, row for row.
    Seeds 2 and 3 have events that fail to fold, so their folds take a second round."""
    import random
    import threading

    from pipeline.projector.remote import serve_shard
    from pipeline.projector.replay import _drop_shadow
    from tests.projector.shard_logs import price_tables, random_log
    from tests.projector.test_parallel import RULES, fold_both

    if backend == "sqlite":
        return
    rng = random.Random(seed)
    for chunk in range(3):
        append(db, random_log(rng, f"r{seed}-{chunk}", start=chunk * 40.0))
    append(db, price_tables(db, rng))
    workers = rng.randint(2, 4)
    failures: list[BaseException] = []

    def remote(index: int) -> None:
        own = Database.from_url(db_url)
        try:
            serve_shard(own, RULES, index, workers, timeout=PATIENCE)
        except BaseException as exc:  # reported to the test below
            failures.append(exc)
        finally:
            own.dispose()

    threads = [threading.Thread(target=remote, args=(k,)) for k in range(1, workers)]
    for thread in threads:
        thread.start()
    try:
        expected, got, many = fold_both(db, workers, rng.choice([3, 20, 500]),
                                        remote=Remote(1, PATIENCE))  # fmt: skip
    finally:
        for thread in threads:
            thread.join(PATIENCE)
    assert failures == []
    assert got == expected
    _drop_shadow(db, many)


def test_a_worker_left_behind_by_its_run_stops_at_its_next_batch(
    db: Database, backend: str
) -> None:
    """The guard every remote batch runs in its transaction: the claim must stand in the
    live run, not in a run given up (board dropped) nor in a later one (board made anew)."""
    if backend == "sqlite":
        return
    board = Board.open(db, FoldRules(), 2, Remote(1))
    try:
        board.publish(1, RoundSpec(0, 100, 600.0, {}))
        slot = boards.Slot(db, board.token, 1, 1, "w:1")
        assert not slot.alive()  # not claimed yet
        assert boards.claim(db, board.token, 1, 1, "w:1").won
        assert slot.alive()
        with db.read() as conn:
            slot.guard(conn)
        later = Board.open(db, FoldRules(), 2, Remote(1))  # a new run: the old claim is gone
        later.publish(1, RoundSpec(0, 100, 600.0, {}))
        assert not slot.alive()
        later.close()
        with pytest.raises(boards.RunEnded), db.read() as conn:
            slot.guard(conn)
    finally:
        board.close()


def test_the_coordinator_hears_a_worker_by_its_heartbeat_not_by_the_clocks(
    db: Database, backend: str
) -> None:
    if backend == "sqlite":
        return
    now = [0.0]
    board = Board.open(db, FoldRules(), 3, Remote(1, timeout=10))
    try:
        board.publish(1, RoundSpec(0, 100, 600.0, {}))
        waiting = boards.Waiting(db, board.token, 1, 3, [1, 2], 10, clock=lambda: now[0])
        assert boards.claim(db, board.token, 1, 1, "w:1").won
        assert boards.claim(db, board.token, 1, 2, "w:2").won
        slots = [boards.Slot(db, board.token, 1, k, f"w:{k}") for k in (1, 2)]
        assert waiting.poll() == (0, None)
        now[0] = 9.0
        slots[0].beat()
        slots[1].progress = 5
        slots[1].beat()
        assert waiting.poll() == (5, None)
        slots[0].finish(ShardResult(1, {}, set(), set(), 0, None))
        now[0] = 18.0  # shard 2 silent for 9s: still within the timeout
        assert waiting.poll() == (5, None)
        now[0] = 19.5
        with pytest.raises(boards.RemoteShardTimeout, match="shard 2/3: its worker w:2 was not"):
            waiting.poll()
        slots[1].finish(ShardResult(2, {}, set(), set(), 0, None))
        assert waiting.poll()[1] == [ShardResult(i, {}, set(), set(), 0, None) for i in (1, 2)]
    finally:
        board.close()


def test_a_board_left_by_a_crashed_coordinator_is_not_joined(
    db: Database, db_url: str, backend: str, config: Path
) -> None:
    if backend == "sqlite":
        return
    rules = fold_rules(load_settings(config, environ={}))
    board = Board.open(db, rules, 2, Remote(1))
    try:
        board.publish(1, RoundSpec(0, 100, 600.0, {}))
        board._heartbeat.stop()  # the coordinator is gone: its heartbeat never moves again
        result = run(config, db_url, "replay-worker", "--shard", "1/2", "--timeout", "3")
        assert result.exit_code == 4, result.output
        assert "no live coordinator offered a round" in result.output
        assert boards.claim(db, board.token, 1, 1, "w:1").won  # the worker left it free
    finally:
        board.close()
