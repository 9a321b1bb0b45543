"""Monthly partitions of the log on PostgreSQL: the functions that make and guard them.

This migration changes no table, so ``smsrecon db upgrade`` stays quick and takes no lock
on ``events`` whatever its size. Converting ``events`` to a table partitioned by month of
``recorded_at`` is the operator's explicit step, ``smsrecon db partition-events``
(``pipeline/db/partitions.py``, docs/operations.md), which rewrites the table under an
exclusive lock. What both need lives here, owned by the schema's owner:

* ``smsrecon_events_key_once()``: the BEFORE INSERT row trigger of the partitioned log.
  PostgreSQL wants every unique index of a partitioned table to include the partition key,
  so ``dedup_key`` cannot be unique on ``events`` itself; each key (and position) is instead
  entered in the unpartitioned ``event_keys`` in the same transaction, and a row whose key is
  stored is skipped, as ``ON CONFLICT DO NOTHING`` skips it on the unpartitioned log.
* ``smsrecon_event_partition(month)``: one month's partition (NULL: the DEFAULT one), with
  the append-only triggers of its own (statement triggers on the parent do not fire for a
  statement naming a partition).
* ``smsrecon_event_partitions_ahead(n)``: this month's and the next n months' partitions,
  for the ``run`` scheduler. SECURITY DEFINER, so the runtime role, which owns nothing, can
  create them; no one else may call it (``smsrecon db grant`` gives the runtime role
  EXECUTE).

On SQLite this migration does nothing: SQLite has no partitions.

Revision ID: 0011_event_partitions
Revises: 0010_costs_per_currency
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011_event_partitions"
down_revision = "0010_costs_per_currency"
branch_labels = None
depends_on = None

KEY_ONCE = """
CREATE FUNCTION smsrecon_events_key_once() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER AS $$
BEGIN
    -- A position stored before raises (unique); a stored key skips the row.
    INSERT INTO event_keys (dedup_key, position) VALUES (NEW.dedup_key, NEW.position)
        ON CONFLICT (dedup_key) DO NOTHING;
    IF FOUND THEN
        RETURN NEW;
    END IF;
    RETURN NULL;
END
$$
"""

PARTITION = """
CREATE FUNCTION smsrecon_event_partition(month date) RETURNS text
LANGUAGE plpgsql SECURITY DEFINER AS $$
DECLARE
    name text;
    guarded text;
BEGIN
    IF month IS NULL THEN
        name := 'events_default';
        IF to_regclass(name) IS NOT NULL THEN
            RETURN NULL;
        END IF;
        EXECUTE format('CREATE TABLE %I PARTITION OF events DEFAULT', name);
    ELSE
        month := date_trunc('month', month)::date;
        name := 'events_' || to_char(month, 'YYYY_MM');
        IF to_regclass(name) IS NOT NULL THEN
            RETURN NULL;
        END IF;
        EXECUTE format(
            'CREATE TABLE %I PARTITION OF events FOR VALUES FROM (%L) TO (%L)',
            name,
            month::timestamp AT TIME ZONE 'UTC',
            (month + interval '1 month')::timestamp AT TIME ZONE 'UTC'
        );
    END IF;
    FOREACH guarded IN ARRAY ARRAY['UPDATE', 'DELETE', 'TRUNCATE'] LOOP
        EXECUTE format(
            'CREATE TRIGGER %I BEFORE %s ON %I FOR EACH STATEMENT '
            'EXECUTE FUNCTION smsrecon_events_append_only()',
            'events_no_' || lower(guarded), guarded, name
        );
    END LOOP;
    RETURN name;
END
$$
"""

AHEAD = """
CREATE FUNCTION smsrecon_event_partitions_ahead(ahead integer) RETURNS SETOF text
LANGUAGE plpgsql SECURITY DEFINER AS $$
DECLARE
    this_month date := date_trunc('month', now() AT TIME ZONE 'UTC')::date;
    month date;
    made text;
BEGIN
    IF ahead IS NULL OR ahead < 0 OR ahead > 120 THEN
        RAISE EXCEPTION 'partitions ahead must be 0 to 120, not %', ahead
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_partitioned_table WHERE partrelid = to_regclass('events')) THEN
        RETURN;
    END IF;
    FOR i IN 0..ahead LOOP
        month := (this_month + make_interval(months => i))::date;
        BEGIN
            made := smsrecon_event_partition(month);
        EXCEPTION WHEN check_violation THEN
            -- The DEFAULT partition already holds rows of that month (docs/operations.md).
            RAISE WARNING 'events: the default partition holds rows of %, so that month has '
                'no partition of its own', to_char(month, 'YYYY-MM');
            made := NULL;
        END;
        IF made IS NOT NULL THEN
            RETURN NEXT made;
        END IF;
    END LOOP;
END
$$
"""

FUNCTIONS = (
    ("smsrecon_events_key_once()", KEY_ONCE),
    ("smsrecon_event_partition(date)", PARTITION),
    ("smsrecon_event_partitions_ahead(integer)", AHEAD),
)


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    schema = bind.execute(sa.text("SELECT current_schema()")).scalar_one()
    quoted = bind.dialect.identifier_preparer.quote(schema)
    for signature, body in FUNCTIONS:
        op.execute(body)
        # Definer's rights: the search path is pinned to the log's schema (where partitions
        # are created; only its owner may create objects there) so that no caller's objects
        # are found, and times are written and read in UTC whatever the session's settings.
        op.execute(f"ALTER FUNCTION {signature} SET search_path = {quoted}, pg_catalog, pg_temp")
        op.execute(f"ALTER FUNCTION {signature} SET TimeZone = 'UTC'")
        op.execute(f"ALTER FUNCTION {signature} SET DateStyle = 'ISO, YMD'")
        op.execute(f"REVOKE ALL ON FUNCTION {signature} FROM PUBLIC")


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    partitioned = bind.execute(
        sa.text("SELECT 1 FROM pg_partitioned_table WHERE partrelid = to_regclass('events')")
    ).first()
    if partitioned:
        raise RuntimeError(
            f"refusing to downgrade below {revision}: events is partitioned, and older "
            "versions know only the unpartitioned log (there is no way back but a restore)"
        )
    for signature, _body in reversed(FUNCTIONS):
        op.execute(f"DROP FUNCTION IF EXISTS {signature}")
