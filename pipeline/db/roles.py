"""The runtime role: what the app may do on PostgreSQL when it does not own the schema.

Triggers (migration 0001) refuse UPDATE, DELETE and TRUNCATE on ``events``, but the role
that owns a table may drop or disable its triggers, or drop the table. So the schema is
created and migrated by an owner role, and the app runs as another role that is granted
only what it uses: on ``events`` INSERT and SELECT (and the position sequence), on the
projection, dispatch and quarantine tables the statements the app runs on them, and on
``alembic_version`` SELECT (the schema check). It owns nothing and has no TRUNCATE,
TRIGGER or REFERENCES rights, so it cannot alter, disable, drop or empty the log.

``smsrecon replay --verify|--rebuild`` folds into shadow tables it creates and drops, which
needs CREATE on the schema; the runtime role does not get it, so replay runs as the owner.

A third role reads for BI tools (docs/reporting.md): ``grant_reporting`` gives it SELECT on
the public ``v_*`` views and nothing else. A view reads its tables with its owner's rights,
so the role needs no right on the tables, and cannot read the log or write anywhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, text

from pipeline.db.tables import all_tables

#: Table -> privileges of the runtime role. A table of the schema missing here gets
#: ``DEFAULT_PRIVILEGES``: the app reads and writes its own state tables freely.
TABLE_PRIVILEGES: dict[str, tuple[str, ...]] = {
    "events": ("SELECT", "INSERT"),
    # Entries are resolved, never deleted.
    "quarantine": ("SELECT", "INSERT", "UPDATE"),
}
DEFAULT_PRIVILEGES = ("SELECT", "INSERT", "UPDATE", "DELETE")
#: Read-only: the app checks the schema revision, migrations (as the owner) change it.
SCHEMA_VERSION_TABLE = "alembic_version"
#: Creates the log's monthly partitions ahead, with its owner's rights (migration 0011).
PARTITIONS_AHEAD = "smsrecon_event_partitions_ahead(integer)"


class RoleError(Exception):
    """The role cannot be granted the privileges asked for; the message says why."""


@dataclass(frozen=True, slots=True)
class Grant:
    """What was granted: (object, privileges) pairs, in order."""

    items: list[tuple[str, str]]


def grant_runtime(conn: Connection, role: str) -> Grant:
    """Make ``role`` the app's runtime role on this database (PostgreSQL only).

    Run as the schema's owner. Every privilege the role held on the app's tables and
    sequences is revoked first, so the result is exactly the runtime set whatever was
    granted before. Refuses a role that could bypass privileges (a superuser, the owner or
    a member of the owner's role).
    """
    owner = _checked_owner(conn, role)
    quote = conn.dialect.identifier_preparer.quote
    grantee = quote(role)
    schema_name = quote(owner.schemaname)
    database = conn.execute(text("SELECT current_database()")).scalar_one()
    granted: list[tuple[str, str]] = []

    def run(privileges: str, on: str) -> None:
        conn.execute(text(f"GRANT {privileges} ON {on} TO {grantee}"))
        granted.append((on, privileges))

    run("CONNECT", f"DATABASE {quote(database)}")
    run("USAGE", f"SCHEMA {schema_name}")
    tables = {table.name: table for table in all_tables().sorted_tables}
    for name in [*sorted(tables), SCHEMA_VERSION_TABLE]:
        qualified = f"{schema_name}.{quote(name)}"
        conn.execute(text(f"REVOKE ALL ON TABLE {qualified} FROM {grantee}"))
        if name == SCHEMA_VERSION_TABLE:
            run("SELECT", f"TABLE {qualified}")
            continue
        run(", ".join(TABLE_PRIVILEGES.get(name, DEFAULT_PRIVILEGES)), f"TABLE {qualified}")
        column = tables[name].autoincrement_column
        if column is None:
            continue
        sequence = conn.execute(
            text("SELECT pg_get_serial_sequence(:table, :column)"),
            {"table": f"{schema_name}.{quote(name)}", "column": column.name},
        ).scalar()
        if sequence:
            conn.execute(text(f"REVOKE ALL ON SEQUENCE {sequence} FROM {grantee}"))
            run("USAGE", f"SEQUENCE {sequence}")
    # The scheduler's partition check runs with its definer's rights (migration 0011).
    run("EXECUTE", f"FUNCTION {schema_name}.{PARTITIONS_AHEAD}")
    return Grant(granted)


#: The public views' names start with this (migration 0008_reporting and later ones).
VIEW_PREFIX = "v_"


def grant_reporting(conn: Connection, role: str) -> Grant:
    """Make ``role`` a read-only reporting role: SELECT on the public views, nothing else
    (PostgreSQL only; run as the schema's owner).

    Every privilege the role held on the app's tables, their sequences and the views is
    revoked first, so a role that was the runtime role before keeps no write right. The
    views are the schema owner's ``v_*`` views found in the catalogue, so a view a later
    migration adds is granted by running this again after ``db upgrade``. Refuses what
    ``grant_runtime`` refuses.
    """
    owner = _checked_owner(conn, role)
    quote = conn.dialect.identifier_preparer.quote
    grantee = quote(role)
    schema_name = quote(owner.schemaname)
    database = conn.execute(text("SELECT current_database()")).scalar_one()
    views = list(
        conn.execute(
            text(
                "SELECT viewname FROM pg_views WHERE schemaname = :schema AND viewowner = :owner "
                "AND starts_with(viewname, :prefix) ORDER BY viewname"
            ),
            {"schema": owner.schemaname, "owner": owner.tableowner, "prefix": VIEW_PREFIX},
        ).scalars()
    )
    if not views:
        raise RoleError("no reporting views in the current schema: run `smsrecon db upgrade`")

    tables = {table.name: table for table in all_tables().sorted_tables}
    for name in [*sorted(tables), SCHEMA_VERSION_TABLE]:
        conn.execute(text(f"REVOKE ALL ON TABLE {schema_name}.{quote(name)} FROM {grantee}"))
        column = tables[name].autoincrement_column if name in tables else None
        if column is None:
            continue
        sequence = conn.execute(
            text("SELECT pg_get_serial_sequence(:table, :column)"),
            {"table": f"{schema_name}.{quote(name)}", "column": column.name},
        ).scalar()
        if sequence:
            conn.execute(text(f"REVOKE ALL ON SEQUENCE {sequence} FROM {grantee}"))

    conn.execute(text(f"REVOKE ALL ON FUNCTION {schema_name}.{PARTITIONS_AHEAD} FROM {grantee}"))

    granted: list[tuple[str, str]] = []

    def run(privileges: str, on: str) -> None:
        conn.execute(text(f"GRANT {privileges} ON {on} TO {grantee}"))
        granted.append((on, privileges))

    run("CONNECT", f"DATABASE {quote(database)}")
    run("USAGE", f"SCHEMA {schema_name}")
    for view in views:
        qualified = f"{schema_name}.{quote(view)}"
        conn.execute(text(f"REVOKE ALL ON TABLE {qualified} FROM {grantee}"))
        run("SELECT", f"TABLE {qualified}")
    return Grant(granted)


def _checked_owner(conn: Connection, role: str) -> Any:
    """The schema owner's (tableowner, schemaname), after checking that ``role`` may be
    granted anything: PostgreSQL, an existing role that is neither a superuser nor the
    owner or a member of its role (either could bypass every privilege)."""
    if conn.dialect.name != "postgresql":
        raise RoleError(
            f"roles are a PostgreSQL feature; {conn.dialect.name} has none "
            "(protect the database file with file permissions instead)"
        )
    found = conn.execute(
        text("SELECT rolsuper FROM pg_roles WHERE rolname = :role"), {"role": role}
    ).first()
    if found is None:
        raise RoleError(f"no role {role!r}: create it first (CREATE ROLE ... LOGIN PASSWORD ...)")
    if found.rolsuper:
        raise RoleError(f"role {role!r} is a superuser, which bypasses every privilege")
    owner = conn.execute(
        text(
            "SELECT tableowner, schemaname FROM pg_tables "
            "WHERE tablename = 'events' AND schemaname = current_schema()"
        )
    ).first()
    if owner is None:
        raise RoleError("no events table in the current schema: run `smsrecon db upgrade` first")
    owns = conn.execute(
        text("SELECT pg_has_role(:role, :owner, 'MEMBER')"),
        {"role": role, "owner": owner.tableowner},
    ).scalar()
    if owns:
        raise RoleError(
            f"role {role!r} owns the schema (or is a member of its owner {owner.tableowner!r}),"
            " so it could drop the log's triggers: grant a role of its own"
        )
    return owner
