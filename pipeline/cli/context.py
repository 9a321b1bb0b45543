"""What every command shares: settings, the database, and the way errors reach the user.

Commands exit 0 on success, 1 when the work itself found a failure (a verify difference,
a failed run), 2 for a usage, configuration or schema problem, 3 when input was quarantined,
4 when a check did not run because another process held what it needs (``replay`` while
another projector is active) or never came (a shard of another machine that no worker
claimed in time): a scheduled check must never pass by doing nothing.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import wraps
from typing import Any, NoReturn, TypeVar

import click
from sqlalchemy.exc import ArgumentError, OperationalError

from pipeline.config import ConfigError, Settings, load_settings
from pipeline.db.engine import Database
from pipeline.db.schema import SchemaError, require_head
from pipeline.logs import configure_logging

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_QUARANTINED = 3
EXIT_NOT_RUN = 4

F = TypeVar("F", bound=Callable[..., Any])


def fail(message: str, code: int = EXIT_USAGE) -> NoReturn:
    click.echo(f"smsrecon: {message}", err=True)
    sys.exit(code)


@dataclass
class AppContext:
    config_path: str | None
    overrides: dict[str, Any] = field(default_factory=dict)
    _settings: Settings | None = None
    _database: Database | None = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            try:
                self._settings = load_settings(self.config_path, self.overrides)
            except ConfigError as exc:
                fail(str(exc))
            configure_logging(self._settings.logging)
        return self._settings

    def database(self, *, check_schema: bool = True) -> Database:
        if self._database is None:
            db_settings = self.settings.database
            try:
                self._database = Database.from_url(
                    db_settings.url,
                    busy_timeout_ms=db_settings.sqlite_busy_timeout_ms,
                    pool_size=db_settings.pool_size,
                )
            except ArgumentError:
                # Never the URL itself: it may hold a password.
                fail(
                    "database.url: not a database URL (such as sqlite:///./var/smsrecon.db "
                    "or postgresql+psycopg://user@host:5432/db)"
                )
            except (ValueError, ImportError) as exc:
                fail(f"database.url: {exc}")
        if check_schema:
            try:
                require_head(self._database.engine)
            except SchemaError as exc:
                fail(str(exc))
            except OperationalError as exc:
                fail(f"cannot reach the database: {database_error_text(exc)}")
        return self._database

    def close(self) -> None:
        if self._database is not None:
            self._database.dispose()


def database_error_text(exc: BaseException) -> str:
    """The driver's own first line (no SQL, no parameters, no URL with a password)."""
    original = getattr(exc, "orig", None) or exc
    text = str(original).strip().splitlines()
    return text[0] if text else type(original).__name__


def app_context() -> AppContext:
    ctx = click.get_current_context()
    return ctx.find_object(AppContext)  # type: ignore[return-value]


def friendly_errors(func: F) -> F:
    """Turn configuration errors raised deep inside a command into one line and exit 2."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except ConfigError as exc:
            fail(str(exc))
        except SchemaError as exc:
            fail(str(exc))

    return wrapper  # type: ignore[return-value]


@contextmanager
def progress(total: int | None, description: str, *, enabled: bool = True) -> Iterator[Any]:
    """A progress bar on stderr (quiet when stderr is not a terminal unless forced)."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    console = Console(stderr=True)
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        disable=not enabled,
        transient=False,
    ) as bar:
        task = bar.add_task(description, total=total)

        class _Advance:
            def advance(self, n: int = 1) -> None:
                bar.advance(task, n)

        yield _Advance()


def serve_in_foreground(
    app: Any, *, host: str, port: int, on_ready: Callable[[str], None], **runner_options: Any
) -> None:
    """Serve ``app`` until SIGTERM/SIGINT; a port that cannot be bound is one line, exit 2."""
    import asyncio

    from pipeline.serving import serve_until_signalled

    try:
        asyncio.run(
            serve_until_signalled(app, host=host, port=port, on_ready=on_ready, **runner_options)
        )
    except OSError as exc:
        fail(f"cannot listen on {host}:{port}: {exc.strerror or exc}", EXIT_USAGE)
