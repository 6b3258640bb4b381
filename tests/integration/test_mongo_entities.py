"""The MongoDB entity store against the SQLite one, and under concurrent writers."""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from application.ports.entities import EntityChange, EntityStore, NewEntity
from infrastructure.mongo.entities import MongoEntityStore
from infrastructure.sqlite.entities import SQLiteEntityStore
from tests.waiting import run_in_threads

pytestmark = pytest.mark.integration

ACCOUNT = "acme"


@pytest.fixture
def mongo(database: tuple[str, str]) -> Iterator[MongoEntityStore]:
    store = MongoEntityStore(*database)
    yield store
    store.close()


@pytest.fixture
def sqlite(tmp_path: Path) -> Iterator[SQLiteEntityStore]:
    store = SQLiteEntityStore(tmp_path / "entities.db")
    yield store
    store.close()


def _operations(seed: int) -> list[tuple[str, list[Any]]]:
    """Random insert and update batches over a few keys (some of which look like dates),
    with redelivered batches, key changes and matches by id and by key."""
    rng = random.Random(seed)
    keys = ["a@x.com", "b@x.com", "2026-01-01", "2026-01-01T00:00:00+00:00", "c@x.com", "d@x.com"]
    ids: list[str] = []
    done: list[tuple[str, list[Any]]] = []
    for batch_no in range(30):
        action = f"act-{batch_no % 4}"
        if done and rng.random() < 0.15:
            # A redelivered batch: any update batch, or the insert batch just before.
            # (An insert redelivered after its entity moved to another key fails in both
            # stores; see the test of that below.)
            updates = [op for op in done if op[0] == "update"]
            done.append(done[-1] if done[-1][0] == "insert" or not updates else rng.choice(updates))
            continue
        if not ids or rng.random() < 0.4:
            items = [
                NewEntity(f"{action}-{batch_no}-{row}", rng.choice(keys), {"n": row, "k": batch_no}, action, row)
                for row in range(1, rng.randint(2, 5))
            ]
            ids += [i.entity_id for i in items]
            done.append(("insert", items))
            continue
        changes = []
        for row in range(1, rng.randint(2, 5)):
            new_key = rng.choice([None, None, *keys])
            values = {"v": f"{batch_no}.{row}", **({"email": new_key} if new_key else {})}
            if rng.random() < 0.5:
                changes.append(EntityChange("id", rng.choice([*ids, "missing"]), values, new_key, action, row))
            else:
                changes.append(EntityChange("unique", rng.choice(keys), values, new_key, action, row))
        done.append(("update", changes))
    return done


def _run(store: EntityStore, operations: list[tuple[str, list[Any]]]) -> tuple[list[Any], dict[str, Any], int]:
    results: list[Any] = []
    for kind, items in operations:
        results.append(
            store.insert_many(ACCOUNT, "contact", items)
            if kind == "insert"
            else store.update_many(ACCOUNT, "contact", items)
        )
    ids = {i.entity_id for kind, items in operations if kind == "insert" for i in items}
    return results, {i: store.get(ACCOUNT, "contact", i) for i in sorted(ids)}, store.count(ACCOUNT, "contact")


@pytest.mark.parametrize("seed", range(15))
def test_random_batches_give_the_same_results_and_entities_as_sqlite(
    mongo: MongoEntityStore, sqlite: SQLiteEntityStore, seed: int
) -> None:
    operations = _operations(seed)
    expected = _run(sqlite, operations)
    assert expected[2] > 0
    assert _run(mongo, operations) == expected


def test_keys_that_look_like_the_same_date_are_different_keys(mongo: MongoEntityStore) -> None:
    spellings = ["2026-01-01", "2026-01-01T00:00:00+00:00", "2026-01-01T00:00:00Z", "2026-01-01 00:00:00"]
    items = [NewEntity(f"p{n}", key, {"sku": key}, "act", n) for n, key in enumerate(spellings)]
    assert [r.inserted for r in mongo.insert_many(ACCOUNT, "product", items)] == [True] * 4
    [found] = mongo.update_many(
        ACCOUNT, "product", [EntityChange("unique", "2026-01-01T00:00:00Z", {"name": "z"}, None, "b", 1)]
    )
    assert (found.status, found.entity_id) == ("updated", "p2")
    assert mongo.get(ACCOUNT, "product", "p0") == {"sku": "2026-01-01"}


def test_a_redelivered_insert_batch_names_each_rows_own_entity_as_the_holder(mongo: MongoEntityStore) -> None:
    items = [NewEntity(f"e{n}", f"k{n}@x.com", {"email": f"k{n}@x.com"}, "act", n) for n in range(1, 4)]
    mongo.insert_many(ACCOUNT, "contact", items)
    again = mongo.insert_many(ACCOUNT, "contact", items)
    assert [(r.inserted, r.existing and r.existing.entity_id) for r in again] == [
        (False, "e1"),
        (False, "e2"),
        (False, "e3"),
    ]
    assert mongo.count(ACCOUNT, "contact") == 3


def test_concurrent_updates_of_one_entity_lose_no_field(database: tuple[str, str], mongo: MongoEntityStore) -> None:
    mongo.insert_many(ACCOUNT, "contact", [NewEntity("e1", "a@x.com", {"email": "a@x.com"}, "seed", 1)])
    stores = [MongoEntityStore(*database) for _ in range(6)]
    barrier = threading.Barrier(len(stores))

    def write(n: int, store: MongoEntityStore) -> None:
        barrier.wait()
        for row in range(1, 11):
            [result] = store.update_many(
                ACCOUNT, "contact", [EntityChange("id", "e1", {f"w{n}_{row}": row}, None, f"w{n}", row)]
            )
            assert result.status == "updated"

    run_in_threads(write, enumerate(stores))
    for store in stores:
        store.close()
    stored = mongo.get(ACCOUNT, "contact", "e1")
    assert stored is not None
    assert {k for k in stored if k.startswith("w")} == {f"w{n}_{row}" for n in range(6) for row in range(1, 11)}


def test_concurrent_moves_to_one_key_give_it_to_exactly_one_entity(
    database: tuple[str, str], mongo: MongoEntityStore
) -> None:
    movers = [NewEntity(f"e{n}", f"old{n}@x.com", {"email": f"old{n}@x.com"}, "seed", n) for n in range(8)]
    mongo.insert_many(ACCOUNT, "contact", movers)
    stores = [MongoEntityStore(*database) for _ in movers]
    barrier = threading.Barrier(len(stores))
    statuses: list[str] = []
    lock = threading.Lock()

    def move(n: int, store: MongoEntityStore) -> None:
        barrier.wait()
        change = EntityChange("id", f"e{n}", {"email": "taken@x.com"}, "taken@x.com", "move", n)
        [result] = store.update_many(ACCOUNT, "contact", [change])
        with lock:
            statuses.append(result.status)

    run_in_threads(move, enumerate(stores))
    for store in stores:
        store.close()
    assert sorted(statuses) == ["duplicate"] * 7 + ["updated"]
    holders = [n for n in range(8) if mongo.get(ACCOUNT, "contact", f"e{n}") == {"email": "taken@x.com"}]
    assert len(holders) == 1
    [taken] = mongo.insert_many(ACCOUNT, "contact", [NewEntity("late", "taken@x.com", {}, "late", 1)])
    assert taken.existing is not None and taken.existing.entity_id == f"e{holders[0]}"


def test_an_insert_whose_id_moved_to_another_key_fails_as_in_sqlite(
    mongo: MongoEntityStore, sqlite: SQLiteEntityStore
) -> None:
    item = NewEntity("e1", "a@x.com", {"email": "a@x.com"}, "act", 1)
    moved = EntityChange("id", "e1", {"email": "b@x.com"}, "b@x.com", "other", 1)
    for store in (mongo, sqlite):
        store.insert_many(ACCOUNT, "contact", [item])
        store.update_many(ACCOUNT, "contact", [moved])
        with pytest.raises(Exception) as failed:
            store.insert_many(ACCOUNT, "contact", [item])
        assert type(failed.value).__name__ in ("EntityIdConflictError", "IntegrityError")
        assert store.get(ACCOUNT, "contact", "e1") == {"email": "b@x.com"}
