"""PostgreSQL adapters on a real server: the event store's environment and tables,
and the single-active lock that relays and projectors stand by on."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest

from application.event_store import BulkActionLog
from domain.bulk_action import BulkAction, BulkChunk, Outcome, RecordResult, record_outcomes
from infrastructure.bootstrap import event_store_env
from infrastructure.postgres.event_store import parse_dsn
from infrastructure.postgres.positions import SingleActiveLock
from infrastructure.settings import Settings
from tests.conftest import require_server
from tests.integration.production_stack import drop_schema, new_schema, postgres_error, schema_dsn

pytestmark = pytest.mark.integration


@pytest.fixture
def dsn() -> Iterator[str]:
    problem = postgres_error()
    if problem:
        require_server("PostgreSQL", problem)
    schema, dsn = new_schema("bulk_p")
    yield dsn
    drop_schema(schema)


def test_the_dsn_gives_the_event_store_its_database_and_schema() -> None:
    parsed = parse_dsn("postgresql://bulk:s%40cret@db.example:6543/events?options=-csearch_path%3Dtenant_a")
    assert parsed == {
        "dbname": "events",
        "host": "db.example",
        "port": "6543",
        "user": "bulk",
        "password": "s@cret",
        "schema": "tenant_a",
    }
    env = event_store_env(Settings(event_store="postgres", postgres_dsn="postgresql://u@h/d", postgres_pool_size=7))
    assert env["PERSISTENCE_MODULE"] == "eventsourcing.postgres"
    assert env["APPLICATION_RECORDER_TOPIC"].endswith(":BulkPostgresApplicationRecorder")
    assert env["POSTGRES_SCHEMA"] == "public" and env["POSTGRES_POOL_SIZE"] == "7"
    assert int(env["POSTGRES_LOCK_TIMEOUT"]) > 0
    assert "POSTGRES_ENABLE_DB_FUNCTIONS" not in env
    assert env["MAPPER_TOPIC"] == "infrastructure.events.mapper:FastMapper"


def test_events_go_to_the_bulkactions_events_table_and_a_chunk_of_outcomes_is_one_save(
    dsn: str, tmp_path: Path
) -> None:
    app = BulkActionLog(env=event_store_env(Settings(data_dir=tmp_path, event_store="postgres", postgres_dsn=dsn)))
    try:
        action_id = uuid.uuid4()
        app.create_action(BulkAction.submit(action_id, "acc", "contact", "insert", None, {}, 1000, 1000))
        app.store_chunks([BulkChunk.queue(action_id, 0, 1, [{"row": r} for r in range(1, 1001)])])
        results = [RecordResult(r, r, Outcome.SUCCEEDED, entity_id=f"e{r}", op="created") for r in range(1, 1001)]
        before = app.head()
        assert app.record_outcomes(record_outcomes(action_id, 0, results, datetime.now(UTC)))
        assert app.head() == before + 1001
        followed = app.follow(before, 5000)
        assert [position for position, _ in followed] == list(range(before + 1, before + 1002))
        # The recorder's COPY path reports the ids it stored under.
        more = record_outcomes(action_id, 1, results[:10], datetime.now(UTC))
        recordings = app.events.put(more)
        stored = app.follow(before + 1001, 100)
        assert [r.notification.id for r in recordings] == [position for position, _ in stored]
        assert [(e.originator_id, e.originator_version) for _, e in stored] == [
            (e.originator_id, e.originator_version) for e in more
        ]
        with psycopg.connect(dsn) as conn:
            tables = {
                row[0]
                for row in conn.execute(
                    "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()"
                )
            }
        assert "bulkactions_events" in tables
    finally:
        app.close()


def test_only_one_process_holds_a_single_active_lock_and_another_takes_over_when_it_dies(dsn: str) -> None:
    active, standby = SingleActiveLock(dsn, "relay"), SingleActiveLock(dsn, "relay")
    other_role = SingleActiveLock(dsn, "projector:actions")
    try:
        assert active.try_acquire()
        assert not standby.try_acquire()
        assert other_role.try_acquire()  # locks are per role
        # The holder's session is killed (as when its process or machine dies).
        with psycopg.connect(dsn, autocommit=True) as admin:
            pid = active._conn.info.backend_pid if active._conn else None
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        assert not active.still_held()
        assert standby.try_acquire() and standby.still_held()
    finally:
        for lock in (active, standby, other_role):
            lock.release()


def test_locks_in_different_schemas_do_not_exclude_each_other(dsn: str) -> None:
    other_schema = schema_dsn(f"bulk_x{uuid.uuid4().hex[:10]}")
    here, elsewhere = SingleActiveLock(dsn, "relay"), SingleActiveLock(other_schema, "relay")
    try:
        assert here.try_acquire()
        assert elsewhere.try_acquire()
    finally:
        here.release()
        elsewhere.release()
