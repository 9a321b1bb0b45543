"""Both engines at once: the views must agree across them row for row."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.db.engine import Database
from tests.conftest import create_pg_database, drop_pg_database


@pytest.fixture
def both(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Database, Database]]:
    """(a fresh SQLite database, a fresh PostgreSQL one), both at the head revision."""
    path = tmp_path / "smsrecon.db"
    shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
    admin = request.getfixturevalue("pg_admin_url")
    url = create_pg_database(admin, template=request.getfixturevalue("pg_template"))
    lite, pg = Database.from_url(f"sqlite:///{path}"), Database.from_url(url)
    yield lite, pg
    lite.dispose()
    pg.dispose()
    drop_pg_database(admin, url)
