"""Who may write a projection's next batch, where the server has transactions: the batch
and its position are committed in one multi-document transaction.

A replica set (or a sharded cluster) runs transactions with snapshot isolation: a
batch's writes are invisible until it commits and are all gone if it aborts, so a
projector that dies mid-batch leaves nothing to undo. Two projectors that read the
same committed position both move the position document; the second gets a write
conflict, ``with_transaction`` runs it again, it reads the moved position and is
refused, as SQLite refuses it in its write transaction. No lease and no claim: a
stalled projector cannot write over its successor (its commit conflicts instead).

A standalone server has no transactions: there ``projection_claims`` decides.
"""

from __future__ import annotations

from collections.abc import Callable

from pymongo import MongoClient
from pymongo.client_session import ClientSession
from pymongo.collection import Collection
from pymongo.read_concern import ReadConcern
from pymongo.write_concern import WriteConcern

from infrastructure.mongo.client import Document, exactly
from infrastructure.mongo.stand_in import create_once
from projections.merge import refuses_batch

# Every read of the batch from one majority-committed snapshot, the commit durable on
# a majority: a batch is never decided from, or committed into, what can roll back.
_SNAPSHOT = ReadConcern("snapshot")
_MAJORITY = WriteConcern("majority")

# Writes one batch inside the transaction, given the committed position it follows;
# returns whether the position moved.
BatchWrite = Callable[[ClientSession, int], bool]


def has_transactions(client: MongoClient[Document]) -> bool:
    """Whether the server runs multi-document transactions: a replica set member or a
    ``mongos`` does, a standalone ``mongod`` does not."""
    hello = client.admin.command("hello")
    return hello.get("setName") is not None or hello.get("msg") == "isdbgrid"


class ProjectionTransactions:
    def __init__(self, client: MongoClient[Document], positions: Collection[Document]) -> None:
        self._client = client
        self._positions = positions

    def run(self, projection: str, position: int, expected: int | None, write: BatchWrite) -> bool:
        """Write the batch ending at ``position`` in one transaction, unless it is at or
        below the stored position or was computed from another position than ``expected``."""
        # The position document exists before any transaction: creating it inside two
        # concurrent ones would make one fail with a duplicate key, not a conflict.
        create_once(self._positions, {"_id": projection, "position": 0, "claim": None, "claim_expires": 0.0})

        def batch(session: ClientSession) -> bool:
            committed = self.position(projection, session)
            if refuses_batch(committed, position, expected):
                return False
            return write(session, committed)

        with self._client.start_session() as session:
            return session.with_transaction(batch, read_concern=_SNAPSHOT, write_concern=_MAJORITY)

    def position(self, projection: str, session: ClientSession | None = None) -> int:
        doc = self._positions.find_one({"_id": exactly(projection)}, session=session)
        return 0 if doc is None else int(doc["position"])

    def commit(self, session: ClientSession, projection: str, committed: int, position: int) -> bool:
        """Move the position, inside the batch's transaction (its last write)."""
        done = self._positions.update_one(
            {"_id": exactly(projection), "position": committed}, {"$set": {"position": position}}, session=session
        )
        if done.matched_count != 1:  # the snapshot said ``committed``: never commit the batch without its position
            raise RuntimeError(f"projection {projection}: position {committed} moved inside the transaction")
        return True
