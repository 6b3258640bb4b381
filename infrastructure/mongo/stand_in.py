"""Workarounds for the defects of nx-27017, the MongoDB wire-protocol server the tests
run against where no real MongoDB can be had (docs/mongodb-gaps.md lists the defects).

Each one here means the same thing to real MongoDB as the plain operation it replaces
(same condition, same index, same result), and names the defect it answers (#N in
docs/mongodb-gaps.md). ``tests/integration/test_mongo_stand_in_gaps.py`` has one test
per defect that runs only on a real server: it fails on nx-27017 and shows there that
the workaround and the plain operation agree. Were the stand-in fixed (or gone), each
could be replaced by its plain operation without any other change.

Defects with no code here: #3 (``$ne`` on arrays): no adapter filters on an array
field; #6 (transactions that do not isolate): a standalone server has no transactions
either, so the claims path (``projection_claims``) is not a workaround but the way
for servers without them; #7 (index names ignored): the entity store finds its
indexes by their keys, never by name (``MongoEntityStore._index_named_by``); #8 (no
version): nothing reads the server's version.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pymongo import ASCENDING
from pymongo.collection import Collection
from pymongo.errors import DuplicateKeyError

Document = dict[str, Any]
_COPY_BATCH = 5000


def exactly(value: Any) -> Document:
    """#1: filter condition "equals ``value``, byte for byte".

    ``{"$in": [v]}`` means the same as ``v`` to MongoDB (and uses the same index), but
    the stand-in treats a plain string that looks like a date (say an account id
    "2026-01-01") as a date and matches other spellings of that date too; with ``$in``
    it compares exact strings. Never use it where an upsert must take the value from
    the filter.
    """
    return {"$in": [value]}


def sort_key(tag: str, text: str) -> str:
    """#2: a copy of ``text`` for range filters and sorting. String order is unchanged;
    the tag keeps the stand-in from reading an ISO timestamp as a date (it then compares
    dates, and drops every value that does not parse as one)."""
    return f"{tag}:{text}"


def before_cursor(
    match: Document, instant_key: str, id_key: str, window: tuple[str | None, str | None], cursor: tuple[str, str]
) -> list[Document]:
    """#9: the queries, in order, of a page that continues a newest-first listing after
    ``cursor`` = (instant, id), both as ``sort_key`` values: the rest of the cursor's own
    instant, then everything older. One ``{"$or": [...]}`` means the same to MongoDB; the
    stand-in answers ``$or`` mixed with range conditions on date-like strings wrongly.
    ``window`` is the listing's own [low, high) range of instants (None: open)."""
    low, high = window
    instant, item = cursor
    queries = []
    if (low is None or instant >= low) and (high is None or instant < high):
        queries.append({**match, instant_key: exactly(instant), id_key: {"$lt": item}})
    queries.append(within(match, instant_key, low, instant if high is None else min(high, instant)))
    return queries


def within(match: Document, key: str, low: str | None, high: str | None) -> Document:
    """``match`` with ``key`` in [low, high) (None: open on that side)."""
    window: Document = {}
    if low is not None:
        window["$gte"] = low
    if high is not None:
        window["$lt"] = high
    return {**match, key: window} if window else match


def create_once(collection: Collection[Document], document: Document) -> bool:
    """#4: insert a document that must not exist yet; False if its ``_id`` is taken.
    ``find_one_and_update`` with ``$setOnInsert`` and ``upsert`` would do it in one call,
    but the stand-in drops the ``$setOnInsert`` fields."""
    try:
        collection.insert_one(document)
    except DuplicateKeyError:
        return False
    return True


def copy_collection(source: Collection[Document], target: Collection[Document]) -> None:
    """#5: every document of ``source`` into ``target`` (empty), in batches. Used where
    ``source.rename(target.name, dropTarget=True)`` would do (atomically, per
    collection): the stand-in answers ``ok`` to a rename and does nothing."""
    for batch in _batches(source.find({}).sort("_id", ASCENDING)):
        target.insert_many(batch, ordered=False)


def _batches(cursor: Any) -> Iterator[list[Document]]:
    batch: list[Document] = []
    for doc in cursor:
        batch.append(doc)
        if len(batch) >= _COPY_BATCH:
            yield batch
            batch = []
    if batch:
        yield batch
