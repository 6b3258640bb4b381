"""The eventsourcing library's PostgreSQL environment, built from our settings.

The application (``BulkActionLog``, named "BulkActions") then stores its events in
``<schema>.bulkactions_events``. ``POSTGRES_ENABLE_DB_FUNCTIONS`` is deliberately
never set: that path skips the table lock that makes notification ids commit in
order, and the relay and projectors rely on a log reader never skipping an event.
"""

from __future__ import annotations

from urllib.parse import parse_qs, unquote, urlsplit

from infrastructure.settings import Settings

EVENTS_TABLE = "bulkactions_events"
RECORDER_TOPIC = "infrastructure.postgres.recorder:BulkPostgresApplicationRecorder"
# Seconds a writer waits for the events table lock before failing (and being retried
# by redelivery) instead of hanging behind a stuck transaction.
LOCK_TIMEOUT_SECONDS = 10
CONNECT_TIMEOUT_SECONDS = 5


class PostgresDsnError(ValueError):
    pass


def parse_dsn(dsn: str) -> dict[str, str]:
    """Host, port, database, user, password and schema of a ``postgresql://`` URL.

    The schema comes from ``?options=-csearch_path=NAME`` (libpq's own way of naming
    it), so one DSN means the same place to psycopg and to the event store.
    """
    parts = urlsplit(dsn)
    if parts.scheme not in ("postgresql", "postgres"):
        raise PostgresDsnError(f"BULK_POSTGRES_DSN must be a postgresql:// URL, not {dsn!r}")
    dbname = unquote(parts.path.lstrip("/"))
    if not dbname:
        raise PostgresDsnError("BULK_POSTGRES_DSN names no database (postgresql://user@host:5432/DBNAME)")
    return {
        "dbname": dbname,
        "host": parts.hostname or "localhost",
        "port": str(parts.port or 5432),
        "user": unquote(parts.username or "postgres"),
        "password": unquote(parts.password or ""),
        "schema": schema_of(dsn),
    }


def schema_of(dsn: str) -> str:
    for option in parse_qs(urlsplit(dsn).query).get("options", []):
        for word in option.split():
            name, _, value = word.removeprefix("-c").partition("=")
            if name.strip() == "search_path":
                return value.split(",")[0].strip()
    return "public"


def postgres_env(settings: Settings) -> dict[str, str]:
    if not settings.postgres_dsn:
        raise PostgresDsnError("BULK_EVENT_STORE=postgres needs BULK_POSTGRES_DSN")
    dsn = parse_dsn(settings.postgres_dsn)
    return {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "APPLICATION_RECORDER_TOPIC": RECORDER_TOPIC,
        "POSTGRES_DBNAME": dsn["dbname"],
        "POSTGRES_HOST": dsn["host"],
        "POSTGRES_PORT": dsn["port"],
        "POSTGRES_USER": dsn["user"],
        "POSTGRES_PASSWORD": dsn["password"],
        "POSTGRES_SCHEMA": dsn["schema"],
        "POSTGRES_POOL_SIZE": str(settings.postgres_pool_size),
        "POSTGRES_MAX_OVERFLOW": str(settings.postgres_pool_size),
        "POSTGRES_LOCK_TIMEOUT": str(LOCK_TIMEOUT_SECONDS),
        # No POSTGRES_PRE_PING: it costs a round trip per statement (three per chunk);
        # the recorder retries a statement that meets a dropped connection instead.
        # Seconds to wait for a pooled connection: with PostgreSQL down a statement
        # fails after 2 x this (recorder.py), and the caller's fault policy takes over.
        "POSTGRES_CONNECT_TIMEOUT": str(CONNECT_TIMEOUT_SECONDS),
    }
