"""The schema, as SQLAlchemy Core tables shared by SQLite and PostgreSQL.

Conventions: ids are short prefixed strings (``con_…``), timestamps are float seconds
since the epoch (UTC; cheap to compare and portable), and JSON documents are stored as
text written by orjson, so both backends store and index the same way. Queue tables use
an integer ``seq`` primary key so workers can claim the oldest rows in order.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# --- control plane -------------------------------------------------------------------

profiles = Table(
    "profiles",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("account", String(100), nullable=False),
    Column("profile", String(100), nullable=False),
    Column("settings", Text, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    UniqueConstraint("account", "profile"),
)

data_sources = Table(
    "data_sources",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("profile_id", String(40), ForeignKey("profiles.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(200), nullable=False),
    Column("platform", String(40), nullable=False),
    Column("key", String(64), nullable=False, unique=True),
    Column("description", Text, nullable=False, default=""),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Index(None, "profile_id"),
)

attributes = Table(
    "attributes",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("profile_id", String(40), ForeignKey("profiles.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(300), nullable=False),
    Column("type", String(20), nullable=False),
    Column("sample", Text, nullable=True),
    Column("description", Text, nullable=False, default=""),
    Column("defined", Boolean, nullable=False, default=False),
    Column("first_seen", Float, nullable=True),
    Column("last_seen", Float, nullable=True),
    Column("created_at", Float, nullable=False),
    UniqueConstraint("profile_id", "name"),
)

event_feeds = Table(
    "event_feeds",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("profile_id", String(40), ForeignKey("profiles.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(200), nullable=False),
    Column("conditions", Text, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Index(None, "profile_id"),
)

connectors = Table(
    "connectors",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("profile_id", String(40), ForeignKey("profiles.id", ondelete="CASCADE"), nullable=False),
    Column("type", String(100), nullable=False),
    # The draft: name, configuration (secrets left out), enabled.
    Column("name", String(200), nullable=False),
    Column("configuration", Text, nullable=False),
    Column("secrets", LargeBinary, nullable=True),  # encrypted JSON object of secret fields
    Column("enabled", Boolean, nullable=False, default=False),
    Column("published_version", Integer, nullable=True),
    Column("has_unpublished_changes", Boolean, nullable=False, default=True),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Index(None, "profile_id"),
)

actions = Table(
    "actions",
    metadata,
    Column("id", String(40), primary_key=True),
    Column(
        "connector_id", String(40), ForeignKey("connectors.id", ondelete="CASCADE"), nullable=False
    ),
    Column("profile_id", String(40), nullable=False),
    Column("name", String(200), nullable=False),
    Column("type", String(100), nullable=False),
    Column("enabled", Boolean, nullable=False, default=False),
    Column("source", Text, nullable=False),
    Column("mappings", Text, nullable=False),
    Column("consent_categories", Text, nullable=False),
    Column("position", Integer, nullable=False, default=0),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Index(None, "connector_id"),
    Index(None, "profile_id"),
)

connector_versions = Table(
    "connector_versions",
    metadata,
    Column(
        "connector_id",
        String(40),
        ForeignKey("connectors.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("version", Integer, primary_key=True),
    Column("author", String(200), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("note", Text, nullable=False, default=""),
    Column("rolled_back_from", Integer, nullable=True),
    Column("snapshot", Text, nullable=False),  # the connector and its actions, no secrets
    Column("secrets", LargeBinary, nullable=True),  # encrypted; what this version runs with
)

# One row per kind of runtime configuration; bumped by every change the runtime must see,
# so that every process (also on other machines) rebuilds its compiled view within 2 s.
config_revisions = Table(
    "config_revisions",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("revision", BigInteger, nullable=False),
    Column("updated_at", Float, nullable=False),
)

tokens = Table(
    "tokens",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("role", String(20), nullable=False),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("profiles", Text, nullable=True),  # JSON list of "account/profile"; null means all
    Column("created_at", Float, nullable=False),
    Column("last_used_at", Float, nullable=True),
    Column("revoked_at", Float, nullable=True),
)

users = Table(
    "users",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("email", String(320), nullable=False, unique=True),
    Column("password_hash", String(200), nullable=False),
    Column("role", String(20), nullable=False),
    Column("profiles", Text, nullable=True),
    Column("disabled", Boolean, nullable=False, default=False),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("profile_id", String(40), nullable=True),
    Column("at", Float, nullable=False),
    Column("actor", String(320), nullable=False),
    Column("action", String(100), nullable=False),
    Column("object", String(200), nullable=False),
    Column("details", Text, nullable=False),
    Index(None, "profile_id", "at"),
)

# --- data plane ------------------------------------------------------------------------

events = Table(
    "events",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("id", String(36), nullable=False, unique=True),
    Column("profile_id", String(40), nullable=False),
    Column("received_at", Float, nullable=False),
    Column("payload", Text, nullable=False),
    Column("visitor_id", String(200), nullable=True),
    # True only for events stored already routed (AudienceStream's visits): events are
    # never updated, routing appends to ``event_routes`` (``sluice.storage.queue``).
    Column("routed", Boolean, nullable=False, default=False),
    # SQLite: lets claims skip the events of databases that set ``routed`` when routing
    # (before 2026-11-29). PostgreSQL: see sluice.storage.datasets.
    Index(None, "routed", "seq"),
    Index(None, "received_at"),
    Index(None, "profile_id", "visitor_id"),
    # Never reuse a seq, even after the newest events are erased: the router remembers
    # how far it has read, so a reused, lower seq would never be routed.
    sqlite_autoincrement=True,
)

deliveries = Table(
    "deliveries",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("event_seq", Integer, nullable=False),
    Column("event_id", String(36), nullable=False),
    Column("profile_id", String(40), nullable=False),
    Column("connector_id", String(40), nullable=False),
    Column("action_id", String(40), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_at", Float, nullable=False),
    Column("lease_until", Float, nullable=True),
    # The process holding the lease (``delivery.lease.process_owner``): only it may renew
    # the lease or record the delivery's outcome.
    Column("lease_owner", String(120), nullable=True),
    Column("created_at", Float, nullable=False),
    Column("data", Text, nullable=True),  # visitor context for audience-sourced deliveries
    Column("last_error", Text, nullable=True),
    Index(None, "connector_id", "next_at"),
    Index(None, "next_at"),
)

# The seq of every routed event at or above the route mark, appended by the routing (or
# outcome) transaction: the queue's status is append-only (sluice.storage.queue).
event_routes = Table(
    "event_routes",
    metadata,
    Column("event_seq", BigInteger, primary_key=True, autoincrement=False),
)

# ``route_low``, below which every event is routed (kept by one process).
queue_marks = Table(
    "queue_marks",
    metadata,
    Column("name", String(40), primary_key=True),
    Column("value", BigInteger, nullable=False),
)

error_records = Table(
    "error_records",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("id", String(40), nullable=False, unique=True),
    Column("profile_id", String(40), nullable=False),
    Column("timestamp", Float, nullable=False),
    Column("connector_id", String(40), nullable=False),
    Column("connector_name", String(200), nullable=False),
    Column("action_id", String(40), nullable=False),
    Column("action_name", String(200), nullable=False),
    Column("event_id", String(36), nullable=False),
    Column("visitor_id", String(200), nullable=True),
    Column("attempts", Integer, nullable=False),
    Column("category", String(20), nullable=False),
    Column("status_code", Integer, nullable=True),
    Column("message", Text, nullable=False),
    Column("request", Text, nullable=True),
    Column("response", Text, nullable=True),
    Column("event", Text, nullable=True),  # kept for replay
    Column("data", Text, nullable=True),
    Column("replayed_at", Float, nullable=True),
    Index(None, "profile_id", "timestamp"),
    Index(None, "connector_id", "timestamp"),
)

counters = Table(
    "counters",
    metadata,
    Column("action_id", String(40), primary_key=True),
    Column("minute", BigInteger, primary_key=True),  # epoch seconds // 60
    Column("profile_id", String(40), nullable=False),
    Column("connector_id", String(40), nullable=False),
    Column("triggered", BigInteger, nullable=False, default=0),
    Column("success", BigInteger, nullable=False, default=0),
    Column("error", BigInteger, nullable=False, default=0),
    Column("retried", BigInteger, nullable=False, default=0),
    Column("filtered_consent", BigInteger, nullable=False, default=0),
    Column("dropped", BigInteger, nullable=False, default=0),
    Index(None, "profile_id", "minute"),
    Index(None, "connector_id", "minute"),
)

traces = Table(
    "traces",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("profile_id", String(40), nullable=False),
    Column("trace_id", String(200), nullable=False),
    Column("event_id", String(36), nullable=True),
    Column("visitor_id", String(200), nullable=True),
    Column("at", Float, nullable=False),
    Column("step", String(40), nullable=False),
    Column("data", Text, nullable=False),
    Index(None, "profile_id", "trace_id"),
)

# Cluster-wide singletons (retention, visit-end scheduler) take a lease here.
leases = Table(
    "leases",
    metadata,
    Column("name", String(100), primary_key=True),
    Column("holder", String(100), nullable=False),
    Column("until", Float, nullable=False),
)

# Delivery health of each connector (SPEC §5 overload protection), shared by all workers.
connector_health = Table(
    "connector_health",
    metadata,
    Column("connector_id", String(40), primary_key=True),
    Column("state", String(20), nullable=False),  # ok | paused | unhealthy
    Column("since", Float, nullable=False),
    Column("reason", Text, nullable=True),
    Column("pauses", Integer, nullable=False, default=0),
    Column("updated_at", Float, nullable=False),
)

# --- AudienceStream ----------------------------------------------------------------------

visitor_attributes = Table(
    "visitor_attributes",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("profile_id", String(40), ForeignKey("profiles.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(300), nullable=False),
    Column("scope", String(10), nullable=False),
    Column("type", String(20), nullable=False),
    Column("rules", Text, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    UniqueConstraint("profile_id", "name"),
)

audiences = Table(
    "audiences",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("profile_id", String(40), ForeignKey("profiles.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(200), nullable=False),
    Column("conditions", Text, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Index(None, "profile_id"),
)

visitors = Table(
    "visitors",
    metadata,
    Column("profile_id", String(40), primary_key=True),
    Column("visitor_id", String(200), primary_key=True),
    Column("data", Text, nullable=False),
    Column("version", Integer, nullable=False, default=0),
    Column("visit_ends_at", Float, nullable=True),
    Column("updated_at", Float, nullable=False),
    Index(None, "visit_ends_at"),
)

# Durable timers: visit ends, delayed end-of-visit actions.
scheduled_jobs = Table(
    "scheduled_jobs",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("kind", String(40), nullable=False),
    Column("due_at", Float, nullable=False),
    Column("profile_id", String(40), nullable=False),
    Column("key", String(300), nullable=False),
    Column("payload", Text, nullable=False),
    Column("lease_until", Float, nullable=True),
    Index(None, "due_at"),
    Index(None, "kind", "key"),
)
