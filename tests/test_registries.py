"""The explicit lists (CLI commands, carrier adapters, tables, explain sections) are complete."""

from __future__ import annotations

import importlib
import pkgutil

import click

import pipeline.cli
import pipeline.ingest.adapters
from pipeline.cli.explain_command import SECTIONS
from pipeline.cli.main import COMMANDS, cli
from pipeline.db.tables import all_tables, part_tables
from pipeline.dispatch.explain import dispatch_section
from pipeline.ingest.adapters import ADAPTERS, FORMATS
from pipeline.projector.explain import mismatch_section


def test_every_command_loads_as_the_command_of_its_name() -> None:
    ctx = click.Context(cli)
    for name, load in COMMANDS.items():
        command = load()
        assert isinstance(command, click.Command)
        assert command.name == name
        assert cli.get_command(ctx, name) is command
    assert cli.get_command(ctx, "no-such-command") is None


def test_every_command_module_has_a_listed_command() -> None:
    loaded_from = {load().callback.__module__ for load in COMMANDS.values()}  # type: ignore[union-attr]
    command_modules = {
        f"pipeline.cli.{m.name}"
        for m in pkgutil.iter_modules(pipeline.cli.__path__)
        if m.name.endswith(("_commands", "_command"))
    }
    assert command_modules <= loaded_from


def test_every_adapter_module_is_registered_under_its_format() -> None:
    assert tuple(ADAPTERS) == FORMATS
    for fmt, parse in ADAPTERS.items():
        assert parse.__module__ == f"pipeline.ingest.adapters.{fmt}"
    parser_modules = {
        m.name
        for m in pkgutil.iter_modules(pipeline.ingest.adapters.__path__)
        if hasattr(importlib.import_module(f"pipeline.ingest.adapters.{m.name}"), "parse")
    }
    assert parser_modules == set(FORMATS)


def test_every_table_on_the_metadata_is_named_in_part_tables() -> None:
    listed = part_tables()
    assert len(set(listed)) == len(listed)
    assert set(all_tables().tables.values()) == set(listed)


def test_explain_shows_mismatches_then_dispatch_attempts() -> None:
    assert (mismatch_section, dispatch_section) == SECTIONS
