"""``smsrecon db grant --reporting``: a role that logs in and reads the views, and nothing
else (PostgreSQL; on SQLite access control is the file's, and the command says so)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ProgrammingError

from pipeline.cli.main import cli
from pipeline.db.engine import Database
from pipeline.eventlog import append
from tests.finance.money_events import project
from tests.pg_roles import throwaway_role
from tests.reporting.october import october_log, october_rules

VIEWS = (
    "v_billing_daily",
    "v_carrier_costs",
    "v_delivery_daily",
    "v_invoices",
    "v_margin_daily",
    "v_message_status",
    "v_open_mismatches",
)
PASSWORD = "reporting-test-password"


def _url(db: Database) -> str:
    return db.engine.url.render_as_string(hide_password=False)


@pytest.fixture
def reporting_role(pg_db: Database, pg_admin_url: str) -> Iterator[str]:
    """A role that can log in."""
    with throwaway_role(pg_db, pg_admin_url, "smsrecon_bi", f"LOGIN PASSWORD '{PASSWORD}'") as role:
        yield role


def _grant(url: str, tmp_path: Path, *args: str) -> Result:
    config = tmp_path / "config.yaml"
    config.write_text("carriers: {}\n")
    return CliRunner().invoke(
        cli, ["--config", str(config), "--database-url", url, "db", "grant", *args]
    )


def _login(db: Database, role: str) -> Database:
    """The same database, logged in as ``role`` with its password (not SET ROLE)."""
    url = make_url(_url(db)).set(username=role, password=PASSWORD)
    return Database(create_engine(url))


@pytest.fixture
def loaded(pg_db: Database) -> Database:
    append(pg_db, october_log())
    project(pg_db, october_rules())
    return pg_db


def test_the_reporting_role_logs_in_and_selects_every_view(
    loaded: Database, reporting_role: str, tmp_path: Path
) -> None:
    result = _grant(_url(loaded), tmp_path, "--reporting", reporting_role)
    assert result.exit_code == 0, result.output
    for view in VIEWS:
        assert f"granted SELECT on TABLE public.{view}" in result.output
    assert "events" not in result.output
    reader = _login(loaded, reporting_role)
    try:
        with reader.read() as conn:
            assert conn.execute(text("SELECT current_user")).scalar() == reporting_role
            for view in VIEWS:
                assert conn.execute(text(f"SELECT count(*) FROM {view}")).scalar() > 0
            bill = conn.execute(
                text("SELECT sum(payment_sum_minor) FROM v_billing_daily WHERE partner = 'acme'")
            ).scalar()
        assert bill == 981 + 227 + 227  # October, plus a5 (September) and a6 (November)
    finally:
        reader.dispose()


@pytest.mark.parametrize(
    "statement",
    [
        "INSERT INTO events (type, occurred_at, recorded_at, source, payload, dedup_key) "
        "VALUES ('message.accepted', now(), now(), 'bi', '{}', 'forged')",
        "SELECT count(*) FROM events",
        "SELECT count(*) FROM message_state",
        "UPDATE message_state SET payment_sum_minor = 0",
        "DELETE FROM mismatches",
        "CREATE TABLE scratch (x int)",
    ],
)
def test_the_reporting_role_cannot_write_or_read_the_tables(
    loaded: Database, reporting_role: str, tmp_path: Path, statement: str
) -> None:
    assert _grant(_url(loaded), tmp_path, "--reporting", reporting_role).exit_code == 0
    reader = _login(loaded, reporting_role)
    try:
        with pytest.raises(ProgrammingError, match="permission denied"), reader.write() as conn:
            conn.execute(text(statement))
    finally:
        reader.dispose()


def test_a_runtime_role_made_reporting_keeps_no_write_right(
    loaded: Database, reporting_role: str, tmp_path: Path
) -> None:
    assert _grant(_url(loaded), tmp_path, reporting_role).exit_code == 0
    assert _grant(_url(loaded), tmp_path, "--reporting", reporting_role).exit_code == 0
    with loaded.read() as conn:
        held = conn.execute(
            text(
                "SELECT table_name, privilege_type FROM information_schema.role_table_grants "
                "WHERE grantee = :role ORDER BY table_name"
            ),
            {"role": reporting_role},
        ).all()
    assert [tuple(r) for r in held] == [(view, "SELECT") for view in VIEWS]


def test_reporting_grant_refuses_sqlite(tmp_path: Path, sqlite_template: Path) -> None:
    path = tmp_path / "smsrecon.db"
    shutil.copyfile(sqlite_template, path)
    refused = _grant(f"sqlite:///{path}", tmp_path, "--reporting", "anyone")
    assert refused.exit_code == 2
    assert "PostgreSQL" in refused.output
