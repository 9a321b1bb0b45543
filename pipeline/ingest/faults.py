"""Whose fault a failed append is: the request's content, or the database's availability.

The answer decides what the sender hears. A request whose own content the database refuses
(a NUL byte PostgreSQL cannot keep in text or JSON, a lone surrogate that cannot be encoded,
an integer too long to serialise, a value that violates a constraint) will be refused
however often it is sent: it is answered 400 and quarantined, like any other bad input.
Anything else (connection lost, database locked or read-only, a timeout, a missing table,
permission denied) says nothing about the request: it is answered 503 and the sender sends
it again. An error we do not recognise counts as the database's, because a 503 loses
nothing (the sender resends) while a wrong 400 would drop a good request.

Pure: the exception is looked at, never the database.
"""

from __future__ import annotations

from typing import Literal

from sqlalchemy import exc as sa

from pipeline.ingest.routing import InputError

Fault = Literal["content", "database"]

#: SQLSTATE classes that blame the data: 22 data exception (NUL, bad JSON escapes, value
#: too long, out of range), 23 integrity constraint violation, 54 program limit exceeded
#: (a value too large for an index row).
_CONTENT_SQLSTATE_CLASSES = frozenset({"22", "23", "54"})

#: Python errors raised while a value is turned into what the driver sends: an unencodable
#: string, a number too long or too large to convert, a type the driver cannot bind, a
#: structure too deep to serialise.
_CONTENT_ERRORS: tuple[type[BaseException], ...] = (
    UnicodeError,
    ValueError,
    TypeError,
    OverflowError,
    RecursionError,
)


def classify_failure(exc: BaseException) -> Fault:
    """``content`` when this failure is the request's own doing, else ``database``."""
    if isinstance(exc, sa.DBAPIError):
        # The driver's own error class, then its SQLSTATE when it has one (psycopg).
        if isinstance(exc, (sa.DataError, sa.IntegrityError)):
            return "content"
        sqlstate = getattr(exc.orig, "sqlstate", None)
        if isinstance(sqlstate, str) and sqlstate[:2] in _CONTENT_SQLSTATE_CLASSES:
            return "content"
        return "database"
    if isinstance(exc, sa.StatementError):
        # Raised before the statement reached the database: a bind parameter could not be
        # processed. Its cause says which kind.
        cause = exc.orig
        return classify_failure(cause) if isinstance(cause, BaseException) else "database"
    if isinstance(exc, sa.SQLAlchemyError):
        # Pool timeouts, disconnections, closed connections.
        return "database"
    if isinstance(exc, _CONTENT_ERRORS):
        return "content"
    return "database"


def failure_text(exc: BaseException, limit: int = 200) -> str:
    """One safe line about ``exc``: its type and the driver's first line, never the SQL or
    its parameters (which hold phone numbers and texts).

    Encoding errors are described by their reason and position instead of their message,
    which would quote the offending character; whatever remains is made printable and
    storable (no lone surrogates, no NUL).
    """
    original = exc.orig if isinstance(exc, sa.StatementError) and exc.orig is not None else exc
    if isinstance(original, UnicodeError) and hasattr(original, "reason"):
        start = getattr(original, "start", None)
        where = f" at position {start}" if isinstance(start, int) else ""
        message = f"{original.reason}{where}"
    else:
        lines = str(original).strip().splitlines()
        message = lines[0] if lines else ""
    message = message.encode("utf-8", "backslashreplace").decode("utf-8").replace("\x00", r"\x00")
    name = type(original).__name__
    return (f"{name}: {message}" if message else name)[:limit]


def unparseable(exc: BaseException) -> InputError | None:
    """The InputError to quarantine a request with when parsing it raised ``exc`` instead
    of InputError; None when ``exc`` is not about the request's content (a bug elsewhere,
    which must stay a 500)."""
    if classify_failure(exc) != "content":
        return None
    return InputError(
        "the request could not be parsed", [{"field": "request", "reason": failure_text(exc)}]
    )
