"""Read models on MongoDB: action views, per-record logs, the audit trail and positions.

Two ways to make ``apply`` atomic, chosen by what the server has (``transactions``,
asked of the server unless given):

- A replica set or sharded cluster: the batch and its position are committed in one
  multi-document transaction (``projection_transactions``), with the very writes
  listed below.
- A standalone server has no multi-document transactions (and the wire-protocol test
  server's do not isolate, see docs/mongodb-gaps.md #6). There ``apply`` is made safe
  to interrupt at any point and to run again, by the order and the shape of its writes:

1. The projection is claimed (``projection_claims``): one compare-and-set on its
   position document that also checks the batch is beyond the stored position and,
   if given, computed from ``expected_position``. One projector writes at a time;
   any other is refused, as SQLite refuses it.
2. What a batch that never committed (a projector that died holding its claim) did
   to action documents is put back (see 4).
3. New actions, log lines and the audit trail are inserted under deterministic ids
   (action id, "<action>:<row>", the event's position) with unordered inserts that
   ignore duplicate-key errors: a second insert of the same thing is a no-op.
4. Each action's delta is a compare-and-set on the action document that also stores
   the batch's position (``pos``) and every field a delta can change as it was before
   that batch (``base``). A ``pos`` above the committed position marks a change by a
   batch that never committed; step 2 restores ``base`` for those (unless it is this
   very batch, re-applied: then it is already written). So re-applying the batch, or
   a longer or shorter batch from the same start, counts every event exactly once.
5. The commit moves the position and drops the claim in one compare-and-set.

Log lines and new actions written by a batch that never committed stay (they are
what those events say, and are never duplicated); counters and status never show an
event above the committed position.
"""

from __future__ import annotations

from dataclasses import asdict, fields
from typing import Any

from pymongo import ASCENDING, DESCENDING, MongoClient
from pymongo.client_session import ClientSession
from pymongo.collection import Collection
from pymongo.database import Database

from application.ports.read_models import (
    ActionDelta,
    ActionFilter,
    ActionView,
    EntityHistoryEntry,
    EntityKey,
    LogLine,
    ViewChanges,
)
from domain.bulk_action import ActionStatus
from infrastructure.mongo.client import Connection, Document, insert_ignoring_duplicates
from infrastructure.mongo.projection_claims import Claim, ProjectionClaims
from infrastructure.mongo.projection_transactions import ProjectionTransactions, has_transactions
from infrastructure.mongo.stand_in import before_cursor, copy_collection, exactly, sort_key, within
from projections.actions import READ_MODEL_VERSION
from projections.merge import MUTABLE, merged

_SCHEMA_ID = "__schema__"
KINDS = ("actions", "record_logs", "positions", "entity_history", "entity_keys")
VIEW_FIELDS = tuple(f.name for f in fields(ActionView))
LOG_FIELDS = tuple(f.name for f in fields(LogLine))
KEY_FIELDS = tuple(f.name for f in fields(EntityKey))
_MAX_ATTEMPTS = 100


def collection_name(prefix: str, kind: str) -> str:
    """The live read models use bare names; a set built aside lives under its label."""
    return f"{prefix}__{kind}" if prefix else kind


def _collections(db: Database[Document], prefix: str) -> dict[str, Collection[Document]]:
    return {kind: db[collection_name(prefix, kind)] for kind in KINDS}


def _limited(limit: int) -> int | None:
    """SQLite's LIMIT: negative means no limit, zero means no rows."""
    return None if limit < 0 else limit


class MongoReadModelStore:
    def __init__(
        self,
        client: str | MongoClient[Document],
        database: str,
        *,
        prefix: str = "",
        claim_seconds: float = 30.0,
        claim_wait_seconds: float = 5.0,
        transactions: bool | None = None,
    ) -> None:
        self._connection = Connection(client)
        self._client = self._connection.client
        c = _collections(self._client[database], prefix)
        self._actions, self._logs, self._positions, self._history, self._keys = (c[k] for k in KINDS)
        with self._connection.prepared():
            self._record_schema_version()
            self._actions.create_index([("account_id", ASCENDING), ("created_key", DESCENDING), ("id_key", DESCENDING)])
            self._actions.create_index([("created_key", DESCENDING), ("id_key", DESCENDING)])
            self._claims = ProjectionClaims(self._positions, claim_seconds, claim_wait_seconds)
            self.transactions = has_transactions(self._client) if transactions is None else transactions
            self._transactions = ProjectionTransactions(self._client, self._positions)
            self._actions.create_index("pos")
            self._logs.create_index([("action_id", ASCENDING), ("row", ASCENDING)], unique=True)
            self._logs.create_index([("action_id", ASCENDING), ("outcome", ASCENDING), ("row", ASCENDING)])
            # By the position field, not _id: the test server refuses inserts into a
            # collection with a compound index on _id (docs/mongodb-gaps.md).
            self._history.create_index([("entity_id", ASCENDING), ("position", ASCENDING)])
            self._keys.create_index([("account_id", ASCENDING), ("entity_type", ASCENDING), ("key", ASCENDING)])

    def _record_schema_version(self) -> None:
        """A new set of read models is of this release; one with actions and no version
        was written by a release before versions were kept (1)."""
        if self._positions.find_one({"_id": _SCHEMA_ID}) is None:
            version = 1 if self._actions.find_one({}, {"_id": 1}) is not None else READ_MODEL_VERSION
            insert_ignoring_duplicates(self._positions, [{"_id": _SCHEMA_ID, "version": version}])

    def schema_version(self) -> int:
        found = self._positions.find_one({"_id": _SCHEMA_ID})
        return int(found["version"]) if found is not None else READ_MODEL_VERSION

    # ------------------------------------------------------------------ writes

    def position(self, projection: str) -> int:
        return self._claims.position(projection)

    def ping(self) -> None:
        self._client.admin.command("ping")

    def count_by_status(self) -> dict[str, int]:
        # One count per status rather than a $group: the statuses are few and known, and
        # a count is what the stand-in and a real server answer alike. Action documents
        # are one per action (not per record): a scan per scrape is small.
        counts = {s.value: self._actions.count_documents({"status": exactly(s.value)}) for s in ActionStatus}
        return {status: n for status, n in counts.items() if n}

    def apply(
        self,
        projection: str,
        position: int,
        changes: ViewChanges,
        *,
        expected_position: int | None = None,
    ) -> bool:
        if self.transactions:
            return self._apply_in_transaction(projection, position, changes, expected_position)
        claim = self._claims.claim(projection, position, expected_position)
        if claim is None:
            return False
        try:
            self._write(changes, claim.committed, position, None)
            return self._commit(claim, position)
        except BaseException:
            self._claims.release(claim)
            raise

    def _apply_in_transaction(
        self, projection: str, position: int, changes: ViewChanges, expected_position: int | None
    ) -> bool:
        def write(session: ClientSession, committed: int) -> bool:
            self._write(changes, committed, position, session)
            return self._commit(Claim(projection, None, committed), position, session)

        return self._transactions.run(projection, position, expected_position, write)

    def _write(
        self,
        changes: ViewChanges,
        committed: int,
        position: int,
        session: ClientSession | None,
    ) -> None:
        """The batch's writes, in an order that is safe to interrupt and repeat."""
        self._roll_back_uncommitted(committed, position, session)
        self._insert_actions(changes.new_actions, session)
        self._insert_log_lines(changes.log_lines, session)
        self._insert_entity_history(changes, session)
        self._apply_deltas(changes.deltas, committed, position, session)

    def _roll_back_uncommitted(self, committed: int, position: int, session: ClientSession | None) -> None:
        """Put back what a batch that never committed did to action counters and status
        (unless it was this very batch), so that a shorter batch from the same start
        shows no more than its own events. (Only claimed batches leave such changes;
        an aborted transaction leaves none.)"""
        for doc in self._actions.find({"pos": {"$gt": committed}}, session=session):
            if doc["pos"] != position:
                self._actions.update_one(
                    {"_id": exactly(doc["_id"]), "pos": doc["pos"]},
                    {"$set": {**doc["base"], "pos": committed, "base": None}},
                    session=session,
                )

    def _insert_actions(self, views: list[ActionView], session: ClientSession | None) -> None:
        insert_new(self._actions, [self._action_document(v) for v in views], session)

    @staticmethod
    def _action_document(view: ActionView) -> Document:
        doc: Document = {"_id": view.action_id, **asdict(view)}
        doc.update(
            created_key=sort_key("t", view.created_at),
            id_key=sort_key("i", view.action_id),
            pos=0,
            base=None,
        )
        return doc

    def _insert_log_lines(self, lines: list[LogLine], session: ClientSession | None) -> None:
        insert_new(self._logs, [{"_id": f"{line.action_id}:{line.row}", **asdict(line)} for line in lines], session)

    def _insert_entity_history(self, changes: ViewChanges, session: ClientSession | None) -> None:
        """Index entries under their event's position, keys under (account, type, key,
        entity): a second insert of either is a no-op."""
        history = [
            {"_id": h.position, "entity_id": h.entity_id, "position": h.position} for h in changes.entity_history
        ]
        insert_new(self._history, history, session)
        keys = [
            {"_id": f"{k.account_id}\x00{k.entity_type}\x00{k.key}\x00{k.entity_id}", **asdict(k)}
            for k in changes.entity_keys
        ]
        insert_new(self._keys, keys, session)

    def _apply_deltas(
        self, deltas: dict[str, ActionDelta], committed: int, position: int, session: ClientSession | None
    ) -> None:
        if not deltas:
            return
        stored = {doc["_id"]: doc for doc in self._actions.find({"_id": {"$in": list(deltas)}}, session=session)}
        for action_id, delta in deltas.items():
            self._apply_delta(stored.get(action_id), delta, committed, position, session)

    def _apply_delta(
        self, doc: Document | None, delta: ActionDelta, committed: int, position: int, session: ClientSession | None
    ) -> None:
        for _ in range(_MAX_ATTEMPTS):
            if doc is None:
                return  # like an UPDATE of a missing row: the action was never created here
            fields_to_set = _delta_fields(doc, delta, committed, position)
            if fields_to_set is None:
                return
            done = self._actions.update_one(
                {"_id": exactly(doc["_id"]), "pos": doc["pos"]}, {"$set": fields_to_set}, session=session
            )
            if done.matched_count:
                return
            doc = self._actions.find_one({"_id": exactly(doc["_id"])}, session=session)
        raise RuntimeError(f"action {doc and doc['_id']}: gave up after {_MAX_ATTEMPTS} concurrent changes")

    def _commit(self, claim: Claim, position: int, session: ClientSession | None = None) -> bool:
        """Move the position: under the claim, or as the transaction's last write."""
        if session is None:
            return self._claims.commit(claim, position)
        return self._transactions.commit(session, claim.projection, claim.committed, position)

    # ------------------------------------------------------------------ reads

    def get_action(self, action_id: str) -> ActionView | None:
        doc = self._actions.find_one({"_id": exactly(action_id)})
        return None if doc is None else _view(doc)

    def list_actions(
        self, filt: ActionFilter, *, before: tuple[str, str] | None = None, limit: int = 50
    ) -> list[ActionView]:
        """Newest first by (created_at, action_id), compared and sorted on tagged copies
        of both (``sort_key``); a page after a cursor is two plain queries, not one
        ``$or`` (``before_cursor``)."""
        cap = _limited(limit)
        if cap == 0:
            return []
        match: Document = {}
        for name in ("account_id", "status", "entity_type"):
            value = getattr(filt, name)
            if value is not None:
                match[name] = exactly(value)
        low = sort_key("t", filt.created_from) if filt.created_from else None
        high = sort_key("t", filt.created_to) if filt.created_to else None
        if before is None:
            return self._find(within(match, "created_key", low, high), cap)
        cursor = (sort_key("t", before[0]), sort_key("i", before[1]))
        found: list[ActionView] = []
        for query in before_cursor(match, "created_key", "id_key", (low, high), cursor):
            found += self._find(query, None if cap is None else cap - len(found))
            if cap is not None and len(found) >= cap:
                break
        return found

    def _find(self, query: Document, cap: int | None) -> list[ActionView]:
        cursor = self._actions.find(query).sort([("created_key", DESCENDING), ("id_key", DESCENDING)])
        if cap is not None:
            cursor = cursor.limit(cap)
        return [_view(doc) for doc in cursor]

    def logs(
        self, action_id: str, *, outcome: str | None = None, after_row: int = 0, limit: int = 1000
    ) -> list[LogLine]:
        cap = _limited(limit)
        if cap == 0:
            return []
        query: Document = {"action_id": exactly(action_id), "row": {"$gt": after_row}}
        if outcome is not None:
            query["outcome"] = exactly(outcome)
        cursor = self._logs.find(query).sort("row", ASCENDING)
        if cap is not None:
            cursor = cursor.limit(cap)
        # doc.get: lines stored before a field was added (links) lack it.
        return [LogLine(**{name: doc.get(name) for name in LOG_FIELDS}) for doc in cursor]  # type: ignore[arg-type]

    def entity_positions(self, entity_id: str) -> list[int]:
        found = self._history.find({"entity_id": exactly(entity_id)}, {"position": 1}).sort("position", ASCENDING)
        return [int(doc["position"]) for doc in found]

    def entities_holding(self, account_id: str, entity_type: str, key: str) -> list[EntityKey]:
        query = {"account_id": exactly(account_id), "entity_type": exactly(entity_type), "key": exactly(key)}
        found = [EntityKey(**{name: doc[name] for name in KEY_FIELDS}) for doc in self._keys.find(query)]
        return sorted(found, key=lambda k: k.position)

    def entity_history_by_entity(self, after: tuple[str, int] | None, limit: int) -> list[EntityHistoryEntry]:
        # Two index ranges: the rest of the entity the last page ended in, then the
        # entities after it.
        found: list[Document] = []
        query: Document = {}
        if after is not None:
            entity_id, position = after
            rest = {"entity_id": exactly(entity_id), "position": {"$gt": position}}
            found += self._history.find(rest).sort("position", ASCENDING).limit(limit)
            query = {"entity_id": {"$gt": entity_id}}
        if len(found) < limit:
            order = [("entity_id", ASCENDING), ("position", ASCENDING)]
            found += self._history.find(query).sort(order).limit(limit - len(found))
        return [_history_entry(doc) for doc in found]

    def close(self) -> None:
        self._connection.close()


def insert_new(collection: Collection[Document], documents: list[Document], session: ClientSession | None) -> None:
    """Insert the documents whose ``_id`` is not stored yet (SQLite's INSERT OR IGNORE).

    Outside a transaction: unordered inserts that ignore duplicate-key errors. Inside
    one, a duplicate-key error would abort the whole transaction, so the stored ids are
    read first (a concurrent insert of the same id is a write conflict: the transaction
    runs again)."""
    if session is None:
        insert_ignoring_duplicates(collection, documents)
        return
    unique = list({doc["_id"]: doc for doc in reversed(documents)}.values())[::-1]  # the first of each id
    if not unique:
        return
    ids = [doc["_id"] for doc in unique]
    stored = {doc["_id"] for doc in collection.find({"_id": {"$in": ids}}, {"_id": 1}, session=session)}
    new = [doc for doc in unique if doc["_id"] not in stored]
    if new:
        collection.insert_many(new, session=session)


def _view(doc: Document) -> ActionView:
    # Documents written before a field existed (actor, revert links) lack it: its default.
    values: dict[str, Any] = {name: doc[name] for name in VIEW_FIELDS if name in doc}
    return ActionView(**values)


def _history_entry(doc: Document) -> EntityHistoryEntry:
    return EntityHistoryEntry(doc["entity_id"], int(doc["position"]))


def _delta_fields(doc: Document, delta: ActionDelta, committed: int, position: int) -> Document | None:
    """The fields one batch's delta sets on an action document, or None if this very
    batch is already written there."""
    changed_at = int(doc["pos"])
    if changed_at == position:
        return None
    # Changed above the committed position: by a batch that never committed (from the
    # same start, longer or shorter than this one). Start again from before it.
    # ``base``: what a delta can change, kept as it was before the batch that changed it.
    base = doc["base"] if changed_at > committed else {name: doc.get(name) for name in MUTABLE}
    return {**merged(base, delta), "base": base, "pos": position}


# ---------------------------------------------------------------------- replay support


def drop_read_models(client: MongoClient[Document], database: str, *, prefix: str) -> None:
    """Delete a set of read models built aside (never the live one)."""
    assert prefix, "refusing to drop the live read models"
    for collection in _collections(client[database], prefix).values():
        collection.drop()


def promote_read_models(client: MongoClient[Document], database: str, *, prefix: str) -> None:
    """Make the set built aside under ``prefix`` the live one (projectors stopped).

    Documents are copied, not renamed (``stand_in.copy_collection``): ``renameCollection``
    is a silent no-op on the wire-protocol test server. The live positions go first and come back last, so an
    interrupted promote leaves live read models at position 0 with partial data: run
    the replay again (it rebuilds and promotes from scratch).
    """
    assert prefix, "the live read models cannot be promoted onto themselves"
    db = client[database]
    staged, live = _collections(db, prefix), _collections(db, "")
    live["positions"].drop()
    for kind in KINDS:
        if kind != "positions":
            live[kind].drop()
            copy_collection(staged[kind], live[kind])
    copy_collection(staged["positions"], live["positions"])
    for collection in staged.values():
        collection.drop()
    MongoReadModelStore(client, database).close()  # the live indexes, made again after the drops
