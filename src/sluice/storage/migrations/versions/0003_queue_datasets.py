"""queue datasets: append-only routing status, partitioned queue tables on PostgreSQL

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28 19:45:00.000000

On PostgreSQL, events and deliveries become tables partitioned by ranges of ``seq``
("datasets", as RudderStack's job datasets): new datasets are created ahead of the
sequences and drained ones are dropped whole, so vacuum never has to catch up with the
queue (``sluice.storage.datasets``). Events are no longer updated: routing appends the
event's seq to ``event_routes``. Both sequences become 64-bit. Existing rows move into
one dataset of their own; a default partition catches rows should no dataset be ready.

SQLite (one process, no vacuum) keeps its tables and its ``routed`` flag; the two new
tables exist there too, so that both backends share one schema, and stay empty.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

# Also in sluice.storage.datasets (migrations do not import the package's modules).
EVENT_INSERT_LOCK = 0x51CE0001

_EVENT_COLUMNS = "seq, id, profile_id, received_at, payload, visitor_id, routed"
_DELIVERY_COLUMNS = (
    "seq, event_seq, event_id, profile_id, connector_id, action_id, attempts, next_at,"
    " lease_until, lease_owner, created_at, data, last_error"
)


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        op.create_table(
            "event_routes",
            sa.Column("event_seq", sa.BigInteger(), nullable=False),
            sa.PrimaryKeyConstraint("event_seq", name=op.f("pk_event_routes")),
        )
        op.create_table(
            "queue_marks",
            sa.Column("name", sa.String(length=40), nullable=False),
            sa.Column("value", sa.BigInteger(), nullable=False),
            sa.PrimaryKeyConstraint("name", name=op.f("pk_queue_marks")),
        )
        return
    conn = op.get_bind()

    def top(table: str) -> int:
        row = conn.exec_driver_sql(
            f"SELECT greatest((SELECT last_value FROM {table}_seq_seq),"
            f" (SELECT coalesce(max(seq), 0) FROM {table}))"
        ).scalar()
        return int(row or 0)

    events_top, deliveries_top = top("events"), top("deliveries")
    op.execute(
        """
        ALTER SEQUENCE events_seq_seq OWNED BY NONE;
        ALTER SEQUENCE events_seq_seq AS bigint;
        CREATE TABLE events_new (
            seq bigint NOT NULL DEFAULT nextval('events_seq_seq'),
            id varchar(36) NOT NULL,
            profile_id varchar(40) NOT NULL,
            received_at double precision NOT NULL,
            payload text NOT NULL,
            visitor_id varchar(200),
            routed boolean NOT NULL DEFAULT false
        ) PARTITION BY RANGE (seq);
        """
    )
    op.execute(
        f"CREATE TABLE events_p0 PARTITION OF events_new"
        f" FOR VALUES FROM (MINVALUE) TO ({events_top + 1})"
    )
    op.execute(
        f"""
        CREATE TABLE events_default PARTITION OF events_new DEFAULT;
        INSERT INTO events_new ({_EVENT_COLUMNS}) SELECT {_EVENT_COLUMNS} FROM events;
        DROP TABLE events;
        ALTER TABLE events_new RENAME TO events;
        ALTER TABLE events ADD CONSTRAINT pk_events PRIMARY KEY (seq);
        CREATE INDEX ix_events_id ON events (id);
        CREATE INDEX ix_events_received_at ON events (received_at);
        CREATE INDEX ix_events_profile_id_visitor_id ON events (profile_id, visitor_id);
        ALTER SEQUENCE events_seq_seq OWNED BY events.seq;

        CREATE TABLE event_routes (
            event_seq bigint NOT NULL,
            CONSTRAINT pk_event_routes PRIMARY KEY (event_seq)
        ) PARTITION BY RANGE (event_seq);
        CREATE TABLE event_routes_default PARTITION OF event_routes DEFAULT;

        CREATE TABLE queue_marks (
            name varchar(40) NOT NULL,
            value bigint NOT NULL,
            CONSTRAINT pk_queue_marks PRIMARY KEY (name)
        );

        -- Every statement inserting events holds this lock (shared) until its transaction
        -- ends, so the route mark can wait for every seq handed out to be committed or
        -- rolled back (sluice.storage.datasets.advance_route_mark).
        CREATE FUNCTION sluice_event_insert_lock() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_advisory_xact_lock_shared({EVENT_INSERT_LOCK});
            RETURN NULL;
        END $$;
        CREATE TRIGGER events_insert_lock BEFORE INSERT ON events
            FOR EACH STATEMENT EXECUTE FUNCTION sluice_event_insert_lock();
        """
    )
    op.execute(
        f"CREATE TABLE event_routes_p0 PARTITION OF event_routes"
        f" FOR VALUES FROM (MINVALUE) TO ({events_top + 1})"
    )
    op.execute(
        """
        ALTER SEQUENCE deliveries_seq_seq OWNED BY NONE;
        ALTER SEQUENCE deliveries_seq_seq AS bigint;
        CREATE TABLE deliveries_new (
            seq bigint NOT NULL DEFAULT nextval('deliveries_seq_seq'),
            event_seq bigint NOT NULL,
            event_id varchar(36) NOT NULL,
            profile_id varchar(40) NOT NULL,
            connector_id varchar(40) NOT NULL,
            action_id varchar(40) NOT NULL,
            attempts integer NOT NULL,
            next_at double precision NOT NULL,
            lease_until double precision,
            lease_owner varchar(120),
            created_at double precision NOT NULL,
            data text,
            last_error text
        ) PARTITION BY RANGE (seq);
        """
    )
    op.execute(
        f"CREATE TABLE deliveries_p0 PARTITION OF deliveries_new"
        f" FOR VALUES FROM (MINVALUE) TO ({deliveries_top + 1})"
    )
    op.execute(
        f"""
        CREATE TABLE deliveries_default PARTITION OF deliveries_new DEFAULT;
        INSERT INTO deliveries_new ({_DELIVERY_COLUMNS})
            SELECT {_DELIVERY_COLUMNS} FROM deliveries;
        DROP TABLE deliveries;
        ALTER TABLE deliveries_new RENAME TO deliveries;
        ALTER TABLE deliveries ADD CONSTRAINT pk_deliveries PRIMARY KEY (seq);
        CREATE INDEX ix_deliveries_connector_id_next_at ON deliveries (connector_id, next_at);
        CREATE INDEX ix_deliveries_next_at ON deliveries (next_at);
        CREATE INDEX ix_deliveries_event_seq ON deliveries (event_seq);
        ALTER SEQUENCE deliveries_seq_seq OWNED BY deliveries.seq;
        """
    )


def downgrade() -> None:
    # The datasets stay (a partitioned table serves every query the plain one did).
    op.drop_table("queue_marks")
    op.drop_table("event_routes")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS events_insert_lock ON events")
        op.execute("DROP FUNCTION IF EXISTS sluice_event_insert_lock()")
