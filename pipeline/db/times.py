"""SQLite's storage text of a time, under its older import path: the formats themselves,
all four with their names, are in ``pipeline.times``."""

from __future__ import annotations

from pipeline.times import parse_sqlite_time, parse_stored_time, sqlite_time_text

__all__ = ["parse_sqlite_time", "parse_stored_time", "sqlite_time_text"]
