"""Process-wide logging: level and format from settings, secrets masked in every record."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

from pipeline import logsafe
from pipeline.config import LoggingSettings

#: Libraries logged at WARNING and above only, unless ``logging.level`` is DEBUG.
QUIET_LOGGERS = ("aiohttp.access", "alembic", "apscheduler")

#: The one text format of every smsrecon process (``run``, the one-shot commands and
#: ``sandbox``): UTC, ISO 8601 with a ``Z``.
TEXT_FORMAT = "%(asctime)sZ %(levelname)s %(name)s: %(message)s"
TEXT_DATEFMT = "%Y-%m-%dT%H:%M:%S"


class JsonFormatter(logging.Formatter):
    """One JSON object per line, for log collectors; times in UTC."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat().replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_text:
            entry["exception"] = record.exc_text
        return json.dumps(entry, ensure_ascii=False)


class UtcFormatter(logging.Formatter):
    converter = staticmethod(lambda t: datetime.fromtimestamp(t, UTC).timetuple())  # type: ignore[assignment]


class StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is at the time of the record, not at creation.

    Test runners and click's CliRunner swap ``sys.stderr``; a handler that kept the stream
    it was created with would write to a closed capture buffer afterwards.
    """

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property  # type: ignore[override]
    def stream(self):  # type: ignore[no-untyped-def]
        return sys.stderr

    @stream.setter
    def stream(self, _value) -> None:  # type: ignore[no-untyped-def]
        pass


def configure_logging(settings: LoggingSettings) -> None:
    """Log to stderr; idempotent, so every command may call it."""
    logsafe.install()
    handler = StderrHandler()
    if settings.format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(UtcFormatter(TEXT_FORMAT, TEXT_DATEFMT))
    root = logging.getLogger()
    for existing in list(root.handlers):
        if getattr(existing, "_smsrecon", False):
            root.removeHandler(existing)
    handler._smsrecon = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(settings.level)
    # Per-request access lines, alembic's chatter on every schema check and APScheduler's
    # line for every job run (every few seconds inside ``run``) are noise unless debugging:
    # they would bury the jobs' own summaries. Their warnings and errors still show.
    quiet = logging.WARNING if settings.level != "DEBUG" else logging.DEBUG
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(quiet)
