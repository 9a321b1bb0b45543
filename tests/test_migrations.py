"""Migrations build exactly the schema the code declares, and run both ways."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from pipeline.db import schema
from pipeline.db.engine import make_engine
from pipeline.db.tables import all_tables


def test_empty_to_head_to_base_to_head(empty_db_url: str) -> None:
    engine = make_engine(empty_db_url)
    try:
        assert schema.current_revision(engine) is None
        schema.upgrade(engine)
        assert schema.current_revision(engine) == schema.head_revision()
        assert "events" in inspect(engine).get_table_names()
        schema.downgrade(engine, "base")
        assert schema.current_revision(engine) is None
        assert "events" not in inspect(engine).get_table_names()
        schema.upgrade(engine)
        assert schema.current_revision(engine) == schema.head_revision()
    finally:
        engine.dispose()


def test_tables_in_code_match_what_migrations_build(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            diff = compare_metadata(context, all_tables())
        assert diff == []
    finally:
        engine.dispose()


def test_commands_refuse_an_old_schema_and_say_what_to_run(empty_db_url: str) -> None:
    import pytest

    engine = make_engine(empty_db_url)
    try:
        with pytest.raises(schema.SchemaError, match="smsrecon db upgrade"):
            schema.require_head(engine)
        schema.upgrade(engine, "0001_event_log")
        with pytest.raises(schema.SchemaError, match="revision 0001_event_log"):
            schema.require_head(engine)
    finally:
        engine.dispose()
