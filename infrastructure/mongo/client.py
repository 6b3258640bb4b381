"""What every MongoDB adapter shares: the client, and duplicate-tolerant inserts.

The workarounds for the test server's defects (exact string matching and the rest)
are in ``stand_in``; ``exactly`` is also importable from here."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

from pymongo import MongoClient
from pymongo.collection import Collection
from pymongo.errors import BulkWriteError

from infrastructure.mongo.stand_in import exactly

__all__ = ["DUPLICATE_KEY", "Connection", "Document", "connect", "exactly", "insert_ignoring_duplicates"]

Document = dict[str, Any]

DUPLICATE_KEY = 11000


def connect(uri: str) -> MongoClient[Document]:
    """A client for ``uri``; server selection fails after 10 s instead of 30."""
    return MongoClient(uri, serverSelectionTimeoutMS=10_000, tz_aware=False)


@contextlib.contextmanager
def closed_on_error(client: MongoClient[Document]) -> Iterator[MongoClient[Document]]:
    """Close ``client`` if preparing an adapter with it fails (indexes cannot be made
    while the server is down): a process that waits for the server at start builds its
    adapters again and again, and must not leave a client and its threads each time."""
    try:
        yield client
    except BaseException:
        client.close()
        raise


class Connection:
    """The client an adapter works through: given a URI, its own (closed with the
    adapter); given a client, one shared by every adapter of the process (a client is
    a connection pool with monitor threads: one per process), closed by whoever made
    it (``MongoDocumentStores``)."""

    def __init__(self, target: str | MongoClient[Document]) -> None:
        self._owned = isinstance(target, str)
        self.client: MongoClient[Document] = connect(target) if isinstance(target, str) else target

    @contextlib.contextmanager
    def prepared(self) -> Iterator[MongoClient[Document]]:
        """Preparing an adapter (indexes) while the server is down fails: close an owned
        client then (a process that waits for the server at start builds its adapters
        again and again, and must not leave a client and its threads each time); a
        shared one is its maker's to close."""
        try:
            yield self.client
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        if self._owned:
            self.client.close()


def insert_ignoring_duplicates(collection: Collection[Document], documents: Sequence[Document]) -> set[int]:
    """Insert every document that does not collide with a unique index; return the
    indexes (into ``documents``) of those refused as duplicates. Any other error raises.
    """
    if not documents:
        return set()
    try:
        collection.insert_many(list(documents), ordered=False)
    except BulkWriteError as error:
        details = error.details
        others = [e for e in details.get("writeErrors", []) if e.get("code") != DUPLICATE_KEY]
        if others or details.get("writeConcernErrors"):
            raise
        return {int(e["index"]) for e in details["writeErrors"]}
    return set()
