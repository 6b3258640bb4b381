"""The PostgreSQL application recorder, with table creation serialised across processes.

Every process of the stack builds the event store when it starts, and the library
creates its tables (``CREATE TYPE`` / ``CREATE TABLE IF NOT EXISTS``) each time. Run
at the same moment by several processes on a fresh database, all but one fail with
"tuple concurrently updated" (PostgreSQL's catalog DDL is not concurrency-safe even
with IF NOT EXISTS). A transaction-independent advisory lock makes them take turns.
"""

from __future__ import annotations

from eventsourcing.postgres import PostgresApplicationRecorder

# Any fixed 64-bit number; only table creation uses it.
DDL_LOCK_KEY = 0x62756C6B5F646471  # "bulk_ddq"


class SerialisedDDLApplicationRecorder(PostgresApplicationRecorder):
    def create_table(self) -> None:
        with self.datastore.get_connection() as conn:
            conn.execute("SELECT pg_advisory_lock(%s)", (DDL_LOCK_KEY,))
            try:
                super().create_table()  # on another pooled connection
            finally:
                conn.execute("SELECT pg_advisory_unlock(%s)", (DDL_LOCK_KEY,))
                conn.commit()
