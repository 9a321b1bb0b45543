"""PostgreSQL roles for tests of what a role may do: one of its own per test, and the
`smsrecon db grant` call that gives it rights.

Roles are cluster-wide, so each gets a unique name and is dropped (with what it owns and
its database grants) when the test ends.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from click.testing import CliRunner, Result
from sqlalchemy import create_engine, text

from pipeline.cli.main import cli
from pipeline.db.engine import Database


@contextmanager
def throwaway_role(
    db: Database, admin_url: str, prefix: str, attributes: str = "NOLOGIN"
) -> Iterator[str]:
    role = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE ROLE {role} {attributes}"))
    try:
        yield role
    finally:
        with db.engine.connect() as conn:
            conn.execute(text(f"DROP OWNED BY {role}"))
            conn.commit()
        with admin.connect() as conn:
            conn.execute(text(f"REVOKE ALL ON DATABASE {db.engine.url.database} FROM {role}"))
            conn.execute(text(f"DROP ROLE {role}"))
        admin.dispose()


def run_grant(url: str, tmp_path: Path, role: str) -> Result:
    """`smsrecon db grant ROLE` against ``url``, with a config naming no carriers."""
    config = tmp_path / "config.yaml"
    config.write_text("carriers: {}\n")
    return CliRunner().invoke(
        cli, ["--config", str(config), "--database-url", url, "db", "grant", role]
    )


def as_role(db: Database, role: str) -> Database:
    """The same database, every session running as ``role`` (as if it had logged in)."""
    url = db.engine.url.render_as_string(hide_password=False)
    return Database(create_engine(url, connect_args={"options": f"-c role={role}"}))
