"""``smsrecon db backup`` on both engines: the copy restores into a database whose read
model replays without a difference, and the command never overwrites or shows a password."""

from __future__ import annotations

import re
import subprocess
import sys
import threading
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from pipeline.db.engine import Database
from pipeline.db.pgdump import find_tool, libpq_url
from pipeline.db.tables import events
from pipeline.domain.tariffs import TariffRule
from pipeline.eventlog import append
from pipeline.projector.derive import FoldRules
from pipeline.projector.replay import verify
from pipeline.projector.runner import catch_up
from tests.conftest import create_pg_database, drop_pg_database
from tests.projector.events import accepted, refused, report, submitted

RULES = FoldRules(tariffs=[TariffRule(prefix="+7", price_per_part=Decimal("2.27"), currency="RUB")])
GRACE = 600.0
PASSWORD = "pw-Never-Shown-7f3a"


def run_backup(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pipeline", "--database-url", url, "db", "backup", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def fill(db: Database) -> None:
    """Traffic with every kind of outcome, projected to the head of the log."""
    batch = []
    for i in range(20):
        mid = f"m{i}"
        batch.append(accepted(mid, minute=i))
        if i % 5 == 4:
            batch.append(refused(mid, minute=i))
            continue
        batch.append(submitted(mid, f"c{i}", minute=i + 1))
        batch.append(report(f"c{i}", 1 if i % 3 else 2, minute=i + 2, cost="0.0333"))
    append(db, batch)
    catch_up(db, RULES, grace_seconds=GRACE, batch_size=7)


def event_count(db: Database) -> int:
    with db.read() as conn:
        return int(conn.scalar(select(func.count()).select_from(events)) or 0)


def head_in(stdout: str) -> int:
    found = re.search(r"log head at position (\d+)", stdout)
    assert found, stdout
    return int(found.group(1))


def restore_and_check(original: Database, copy_url: str, head: int) -> None:
    restored = Database.from_url(copy_url)
    try:
        assert event_count(restored) == event_count(original)
        upto, differences = verify(restored, RULES, grace_seconds=GRACE, batch_size=100)
        assert differences == 0
        assert upto == head  # the projection came along, at the head of the log
    finally:
        restored.dispose()


def test_a_backup_restores_to_a_database_that_replays_without_difference(
    db: Database, db_url: str, backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    fill(db)
    target = tmp_path / "backup" / "smsrecon.backup"
    result = run_backup(db_url, str(target))
    assert result.returncode == 0, result.stderr
    head = head_in(result.stdout)
    with db.read() as conn:
        assert head == conn.scalar(select(func.max(events.c.position)))
    assert target.exists() and not (tmp_path / "backup" / "smsrecon.backup.partial").exists()
    assert f"{target.stat().st_size} bytes" in result.stdout

    if backend == "sqlite":
        assert "copy" in result.stdout
        assert not Path(f"{target}-wal").exists()  # one self-contained file
        restore_and_check(db, f"sqlite:///{target}", head)
        return
    assert "pg_restore --clean --if-exists -d" in result.stdout
    admin = request.getfixturevalue("pg_admin_url")
    fresh = create_pg_database(admin)
    try:
        restore = subprocess.run(
            [find_tool("pg_restore"), "--clean", "--if-exists", "-d", libpq_url(make_url(fresh)),
             str(target)],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert restore.returncode == 0, restore.stderr
        restore_and_check(db, fresh, head)
    finally:
        drop_pg_database(admin, fresh)


def test_a_backup_taken_while_appends_go_on_holds_whole_transactions(
    db: Database, db_url: str, backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    batch_size = 10
    done = threading.Event()
    appended = []

    def writer() -> None:
        n = 0
        while not done.is_set():
            append(db, [accepted(f"w{n}-{i}") for i in range(batch_size)])
            appended.append(n)
            n += 1

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        while len(appended) < 3 and thread.is_alive():  # the log is being written
            thread.join(0.01)
        target = tmp_path / "live.backup"
        result = run_backup(db_url, str(target))
    finally:
        done.set()
        thread.join()
    assert len(appended) >= 3  # the writer ran, and was still running at the start
    assert result.returncode == 0, result.stderr
    head = head_in(result.stdout)
    with db.read() as conn:
        before_head = conn.scalar(
            select(func.count()).select_from(events).where(events.c.position <= head)
        )

    if backend == "sqlite":
        copy_url, cleanup = f"sqlite:///{target}", None
    else:
        admin = request.getfixturevalue("pg_admin_url")
        copy_url = create_pg_database(admin)
        cleanup = admin
        restore = subprocess.run(
            [find_tool("pg_restore"), "-d", libpq_url(make_url(copy_url)), str(target)],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert restore.returncode == 0, restore.stderr
    copy = Database.from_url(copy_url)
    try:
        with copy.read() as conn:
            assert conn.scalar(select(func.max(events.c.position))) == head
        count = event_count(copy)
        assert count == before_head  # every event up to the head, and none after it
        assert count % batch_size == 0  # whole transactions only
    finally:
        copy.dispose()
        if cleanup is not None:
            drop_pg_database(cleanup, copy_url)


def test_an_existing_file_is_refused_unless_forced(db_url: str, tmp_path: Path) -> None:
    target = tmp_path / "kept.backup"
    target.write_text("an older backup")
    refused_run = run_backup(db_url, str(target))
    assert refused_run.returncode == 2
    assert "exists" in refused_run.stderr and "--force" in refused_run.stderr
    assert target.read_text() == "an older backup"

    forced = run_backup(db_url, str(target), "--force")
    assert forced.returncode == 0, forced.stderr
    assert target.read_bytes() != b"an older backup"


def test_the_password_never_appears_in_the_output(pg_db: Database, tmp_path: Path) -> None:
    url = pg_db.engine.url.set(password=PASSWORD).render_as_string(hide_password=False)
    result = run_backup(url, str(tmp_path / "pg.backup"))
    assert result.returncode == 0, result.stderr
    assert "pg_restore --clean --if-exists -d" in result.stdout
    assert PASSWORD not in result.stdout + result.stderr
    assert PASSWORD not in libpq_url(make_url(url))  # what pg_dump gets on its command line
