"""Shared fixtures: every database test runs on SQLite and on a real PostgreSQL server.

PostgreSQL is the server named by SMSRECON_TEST_DATABASE_URL, else a throwaway server this
session starts from the installed binaries. Each test gets a fresh database cloned from a
migrated template (CREATE DATABASE ... TEMPLATE on PostgreSQL, a file copy on SQLite), so
tests are isolated and the migrations run once per session. When PostgreSQL cannot be had,
its tests fail with the reason under CI=true, and are skipped loudly otherwise.
"""

from __future__ import annotations

import copy
import logging
import os
import re
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import hypothesis
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from pipeline.db import schema
from pipeline.db.engine import Database, make_engine
from tests.pg_server import PostgresUnavailable, start_throwaway

BACKENDS = ["sqlite", "postgresql"]

# Property tests judge results, never speed: on a loaded machine a slow example or slow data
# generation is no failure.
hypothesis.settings.register_profile(
    "smsrecon", deadline=None, suppress_health_check=[hypothesis.HealthCheck.too_slow]
)
hypothesis.settings.load_profile("smsrecon")


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """Undo whatever a test did to logging, so that no test passes thanks to another.

    Commands run in-process configure logging for the whole process, and ``logsafe.install``
    wraps the process's log-record factory: left in place, one test's masking made another
    test's masking look like its own. Restored after each test: the record factory, the
    registered secrets and installed flag of ``pipeline.logsafe``, every logger's level,
    handlers, filters and propagation, every handler's level, filters and formatter, and
    ``logging.disable``. pytest's own capture handlers come and go per test phase and are
    left to pytest.
    """
    saved = _logging_state()
    yield
    _restore_logging_state(saved)


def _pytest_handler(handler: logging.Handler) -> bool:
    return type(handler).__module__.startswith("_pytest")


def _loggers() -> dict[str, logging.Logger]:
    manager = logging.Logger.manager
    named = {n: lg for n, lg in manager.loggerDict.items() if isinstance(lg, logging.Logger)}
    return {"": logging.getLogger(), **named}


def _logging_state() -> dict[str, Any]:
    from pipeline import logsafe

    for name in ("aiohttp.access", "alembic"):  # configure_logging sets their levels
        logging.getLogger(name)
    loggers = {
        name: (lg.level, lg.propagate, lg.disabled, list(lg.handlers), list(lg.filters))
        for name, lg in _loggers().items()
    }
    handlers = {
        h: (h.level, list(h.filters), h.formatter)
        for _level, _propagate, _disabled, hs, _filters in loggers.values()
        for h in hs
    }
    kept = (bool, int, str, tuple, frozenset, set, dict, list, re.Pattern, type(None))
    masking = {
        name: copy.copy(value)
        for name, value in vars(logsafe).items()
        if not name.startswith("__") and isinstance(value, kept)
    }
    return {
        "factory": logging.getLogRecordFactory(),
        "disable": logging.root.manager.disable,
        "loggers": loggers,
        "handlers": handlers,
        "logsafe": masking,
    }


def _restore_logging_state(saved: dict[str, Any]) -> None:
    from pipeline import logsafe

    logging.setLogRecordFactory(saved["factory"])
    logging.disable(saved["disable"])
    for name, value in saved["logsafe"].items():
        setattr(logsafe, name, value)
    for name, logger in _loggers().items():
        ours = [h for h in logger.handlers if _pytest_handler(h)]
        if name not in saved["loggers"]:  # made during the test: leave it as it was made
            logger.handlers[:] = ours
            logger.filters[:] = []
            continue
        level, propagate, disabled, handlers, filters = saved["loggers"][name]
        logger.setLevel(level)
        logger.propagate, logger.disabled = propagate, disabled
        logger.handlers[:] = [h for h in handlers if not _pytest_handler(h)] + ours
        logger.filters[:] = filters
    for handler, (level, filters, formatter) in saved["handlers"].items():
        handler.setLevel(level)
        handler.filters[:] = filters
        handler.setFormatter(formatter)


def _url_for(database_url: str, name: str) -> str:
    return make_url(database_url).set(database=name).render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def pg_admin_url() -> Iterator[str]:
    """A URL to a PostgreSQL database we may CREATE DATABASE from."""
    configured = os.environ.get("SMSRECON_TEST_DATABASE_URL")
    if configured:
        from pipeline.db.engine import normalise_url

        yield normalise_url(configured)
        return
    try:
        server = start_throwaway()
    except PostgresUnavailable as exc:
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL is required under CI and could not be had: {exc}")
        pytest.skip(f"PostgreSQL NOT TESTED: {exc}")
    try:
        yield server.url
    finally:
        server.stop()


def _admin(url: str):  # type: ignore[no-untyped-def]
    return create_engine(url, isolation_level="AUTOCOMMIT", poolclass=None)


def create_pg_database(admin_url: str, template: str | None = None) -> str:
    name = f"smsrecon_{uuid.uuid4().hex[:12]}"
    engine = _admin(admin_url)
    with engine.connect() as conn:
        clause = f" TEMPLATE {template}" if template else ""
        conn.execute(text(f"CREATE DATABASE {name}{clause}"))
    engine.dispose()
    return _url_for(admin_url, name)


def drop_pg_database(admin_url: str, url: str) -> None:
    name = make_url(url).database
    engine = _admin(admin_url)
    with engine.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
    engine.dispose()


@pytest.fixture(scope="session")
def pg_template(pg_admin_url: str) -> Iterator[str]:
    url = create_pg_database(pg_admin_url)
    engine = make_engine(url)
    schema.upgrade(engine)
    engine.dispose()
    yield make_url(url).database  # type: ignore[misc]
    drop_pg_database(pg_admin_url, url)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.db"
    engine = make_engine(f"sqlite:///{path}")
    schema.upgrade(engine)
    engine.dispose()  # the last connection to close checkpoints the WAL into the file
    assert not Path(f"{path}-wal").exists()
    return path


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def db_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A URL to a fresh database at the head revision, on each backend in turn."""
    if backend == "sqlite":
        template = request.getfixturevalue("sqlite_template")
        path = tmp_path / "smsrecon.db"
        shutil.copyfile(template, path)
        yield f"sqlite:///{path}"
        return
    admin = request.getfixturevalue("pg_admin_url")
    template = request.getfixturevalue("pg_template")
    url = create_pg_database(admin, template=template)
    yield url
    drop_pg_database(admin, url)


@pytest.fixture
def db(db_url: str) -> Iterator[Database]:
    database = Database.from_url(db_url)
    yield database
    database.dispose()


@pytest.fixture
def pg_db(request: pytest.FixtureRequest) -> Iterator[Database]:
    """A fresh PostgreSQL database, for the few behaviours only PostgreSQL has."""
    admin = request.getfixturevalue("pg_admin_url")
    url = create_pg_database(admin, template=request.getfixturevalue("pg_template"))
    database = Database.from_url(url)
    yield database
    database.dispose()
    drop_pg_database(admin, url)


@pytest.fixture
def empty_db_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A URL to an empty database (no schema), for migration tests."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.db'}"
        return
    admin = request.getfixturevalue("pg_admin_url")
    url = create_pg_database(admin)
    yield url
    drop_pg_database(admin, url)
