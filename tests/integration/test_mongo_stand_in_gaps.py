"""What real MongoDB does where the nx-27017 stand-in does not (docs/mongodb-gaps.md).

One test per documented defect, run only against a real server (``real_mongodb``, or
``mongodb_replica_set`` for transactions): each fails on nx-27017 0.8.1 and passes on
MongoDB. Where the adapters work around the defect, the test also shows the
workaround means the same thing there as the plain operation would, so the first run
against a real server proves the workarounds harmless.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from pymongo import ASCENDING, DESCENDING, MongoClient, ReturnDocument
from pymongo.database import Database

from application.ports.read_models import ActionFilter, ActionView, ViewChanges
from infrastructure.mongo.read_models import MongoReadModelStore
from infrastructure.mongo.stand_in import copy_collection, create_once, exactly, sort_key

pytestmark = [pytest.mark.integration, pytest.mark.real_mongodb]

Document = dict[str, Any]


@pytest.fixture
def db(database: tuple[str, str]) -> Iterator[Database[Document]]:
    client: MongoClient[Document] = MongoClient(database[0], tz_aware=False)
    yield client[database[1]]
    client.close()


DATE_LIKE = ["2024-01-01", "2024-01-01T00:00:00+00:00", "2024-01-01T00:00:00Z", "2024-01-01 00:00:00"]


def _values(db: Database[Document], query: Document, field: str = "c") -> list[Any]:
    return sorted(doc[field] for doc in db.c.find(query))


def test_1_equality_with_a_date_like_string_matches_that_string_only_as_exactly_does(db: Database[Document]) -> None:
    db.c.insert_many([{"c": value} for value in DATE_LIKE])
    assert _values(db, {"c": "2024-01-01"}) == ["2024-01-01"]
    assert _values(db, {"c": exactly("2024-01-01")}) == ["2024-01-01"]


def test_2_ranges_on_date_like_strings_compare_strings_in_the_order_the_tagged_keys_keep(
    db: Database[Document],
) -> None:
    values = ["abc", "9", "2023-12-31", "2024-01-02", "2024-01-01T10:00:00+00:00"]
    db.c.insert_many([{"c": value, "k": sort_key("t", value)} for value in values])
    for operator, operand in (("$lt", "2024-01-01"), ("$gte", "2024-01-01"), ("$lt", "2024-13-01")):
        plain = _values(db, {"c": {operator: operand}})
        assert plain == sorted(v for v in values if (v < operand if operator == "$lt" else v >= operand))
        assert _values(db, {"k": {operator: sort_key("t", operand)}}) == plain


def test_3_ne_on_an_array_field_leaves_out_the_arrays_that_hold_the_value(db: Database[Document]) -> None:
    db.c.insert_many([{"c": "a", "tags": ["p", "q"]}, {"c": "b", "tags": ["q"]}, {"c": "c", "tags": []}])
    assert _values(db, {"tags": {"$ne": "p"}}) == ["b", "c"]


def test_4_find_one_and_update_with_upsert_keeps_set_on_insert_as_insert_one_does(db: Database[Document]) -> None:
    upserted = db.c.find_one_and_update(
        {"_id": "k1"},
        {"$setOnInsert": {"created": "first"}, "$set": {"seen": 1}},
        upsert=True,
        return_document=ReturnDocument.AFTER,
    )
    assert upserted == {"_id": "k1", "created": "first", "seen": 1}
    assert create_once(db.c, {"_id": "k2", "created": "first", "seen": 1})  # what the adapters do instead
    assert db.c.find_one({"_id": "k2"}) == {**upserted, "_id": "k2"}
    assert not create_once(db.c, {"_id": "k2", "created": "second"})


def test_5_rename_moves_the_documents_as_the_promote_copy_does(db: Database[Document]) -> None:
    db.a.insert_many([{"_id": n, "v": f"doc {n}"} for n in range(3)])
    copy_collection(db.a, db.copied)  # what the adapters do instead
    db.b.insert_one({"_id": "stale"})
    db.a.rename("b", dropTarget=True)
    assert list(db.b.find().sort("_id")) == list(db.copied.find().sort("_id"))
    assert sorted(doc["_id"] for doc in db.b.find()) == [0, 1, 2]
    assert "a" not in db.list_collection_names()


@pytest.mark.mongodb_replica_set
def test_6_a_transaction_is_invisible_until_it_commits_and_its_abort_touches_no_one_else(
    database: tuple[str, str],
) -> None:
    uri, name = database
    mine: MongoClient[Document] = MongoClient(uri)
    other: MongoClient[Document] = MongoClient(uri)
    try:
        mine[name].c.insert_one({"_id": "before"})  # the collection exists before the transactions
        with mine.start_session() as session:
            session.start_transaction()
            mine[name].c.insert_one({"_id": "in-transaction"}, session=session)
            assert other[name].c.find_one({"_id": "in-transaction"}) is None
            other[name].c.insert_one({"_id": "outside"})
            session.abort_transaction()
        assert other[name].c.find_one({"_id": "outside"}) == {"_id": "outside"}
        assert mine[name].c.find_one({"_id": "in-transaction"}) is None
    finally:
        mine.close()
        other.close()


def test_7_an_index_keeps_the_name_it_was_given(db: Database[Document]) -> None:
    db.c.create_index([("a", ASCENDING), ("b", DESCENDING)], name="u", unique=True)
    assert "u" in db.c.index_information()


def test_8_the_server_reports_its_version(db: Database[Document]) -> None:
    version = db.client.server_info()["version"]
    assert isinstance(version, str) and version.split(".")[0].isdigit()


def test_9_one_or_query_over_date_like_strings_pages_as_the_two_query_cursor_does(
    database: tuple[str, str], db: Database[Document]
) -> None:
    # The last two are one instant spelt two ways: different strings, as SQLite orders them.
    instants = ["2026-01-01T00:00:00+00:00", "2026-01-01T00:00:01+00:00", "2026-01-01T01:00:01+01:00"]
    views = [
        ActionView(str(uuid.UUID(int=n)), "acc", "contact", "insert", None, None, 10, None, instants[n % 3])
        for n in range(12)
    ]
    store = MongoReadModelStore(*database, transactions=False)
    try:
        store.apply("actions", 1, ViewChanges(new_actions=views))
        cursor = (instants[1], views[4].action_id)
        two_queries = [v.action_id for v in store.list_actions(ActionFilter(), before=cursor, limit=-1)]
    finally:
        store.close()
    one_or = {
        "$or": [
            {"created_at": cursor[0], "action_id": {"$lt": cursor[1]}},
            {"created_at": {"$lt": cursor[0]}},
        ]
    }
    found = db.actions.find(one_or).sort([("created_at", DESCENDING), ("action_id", DESCENDING)])
    assert [doc["action_id"] for doc in found] == two_queries
    assert len(two_queries) > 0


def test_10_a_compound_index_on_id_leaves_inserts_working(db: Database[Document]) -> None:
    db.c.create_index([("g", ASCENDING), ("_id", ASCENDING)])
    db.c.insert_many([{"_id": 2, "g": "a"}, {"_id": 1, "g": "a"}])
    assert [d["_id"] for d in db.c.find({"g": "a"}).sort([("g", ASCENDING), ("_id", ASCENDING)])] == [1, 2]
