"""Contract of the EntityStore port, run against every adapter."""

from __future__ import annotations

import threading
import uuid
from pathlib import Path
from typing import Any

import pytest

from application.ports.entities import EntityChange, EntityDelete, EntityRevert, NewEntity, StoredChange
from domain.bulk_action import entity_id_for
from tests.contract.adapters import ENTITY_STORES
from tests.contract.legacy_entities import LEGACY_WRITERS
from tests.waiting import run_in_threads

ACCOUNT = "acme"


def _new(key: str, row: int, action: str = "a1", **values: Any) -> NewEntity:
    return NewEntity(str(uuid.uuid4()), key, {"email": key, **values}, action, row)


def test_insert_stores_entities_and_reports_each_as_inserted(entity_store: Any) -> None:
    items = [_new("a@x.com", 1), _new("b@x.com", 2)]
    results = entity_store.insert_many(ACCOUNT, "contact", items)
    assert [r.inserted for r in results] == [True, True]
    assert entity_store.get(ACCOUNT, "contact", items[0].entity_id) == {"email": "a@x.com"}
    assert entity_store.count(ACCOUNT, "contact") == 2


def test_second_insert_of_a_taken_unique_key_is_refused_with_the_holder(entity_store: Any) -> None:
    first = _new("a@x.com", 1, action="act-1")
    entity_store.insert_many(ACCOUNT, "contact", [first])
    [result] = entity_store.insert_many(ACCOUNT, "contact", [_new("a@x.com", 9, action="act-2")])
    assert not result.inserted
    assert result.existing.entity_id == first.entity_id
    assert (result.existing.action_id, result.existing.row) == ("act-1", 1)
    assert entity_store.count(ACCOUNT, "contact") == 1


def test_duplicate_keys_within_one_batch_keep_the_first_row(entity_store: Any) -> None:
    first, second = _new("dup@x.com", 1), _new("dup@x.com", 2)
    results = entity_store.insert_many(ACCOUNT, "contact", [first, second])
    assert [r.inserted for r in results] == [True, False]
    assert results[1].existing.entity_id == first.entity_id
    assert results[1].existing.row == 1


def test_unique_keys_are_per_entity_type(entity_store: Any) -> None:
    entity_store.insert_many(ACCOUNT, "contact", [_new("same", 1)])
    [result] = entity_store.insert_many(ACCOUNT, "company", [_new("same", 1)])
    assert result.inserted


def test_update_by_id_merges_fields_and_records_the_writer(entity_store: Any) -> None:
    item = _new("a@x.com", 1, first_name="Ann")
    entity_store.insert_many(ACCOUNT, "contact", [item])
    [result] = entity_store.update_many(
        ACCOUNT, "contact", [EntityChange("id", item.entity_id, {"last_name": "Lee"}, None, "act-2", 5)]
    )
    assert (result.status, result.entity_id) == ("updated", item.entity_id)
    assert entity_store.get(ACCOUNT, "contact", item.entity_id) == {
        "email": "a@x.com",
        "first_name": "Ann",
        "last_name": "Lee",
    }


def test_update_by_unique_key_finds_the_entity(entity_store: Any) -> None:
    item = _new("a@x.com", 1)
    entity_store.insert_many(ACCOUNT, "contact", [item])
    [result] = entity_store.update_many(
        ACCOUNT, "contact", [EntityChange("unique", "a@x.com", {"phone": "1"}, None, "act-2", 1)]
    )
    assert result.status == "updated"
    assert entity_store.get(ACCOUNT, "contact", item.entity_id)["phone"] == "1"


def test_update_of_a_missing_entity_is_not_found(entity_store: Any) -> None:
    results = entity_store.update_many(
        ACCOUNT,
        "contact",
        [
            EntityChange("id", str(uuid.uuid4()), {}, None, "a", 1),
            EntityChange("unique", "nobody@x.com", {}, None, "a", 2),
        ],
    )
    assert [r.status for r in results] == ["not_found", "not_found"]


def test_changing_the_unique_key_to_one_taken_is_a_duplicate_and_changes_nothing(entity_store: Any) -> None:
    a, b = _new("a@x.com", 1), _new("b@x.com", 2)
    entity_store.insert_many(ACCOUNT, "contact", [a, b])
    [result] = entity_store.update_many(
        ACCOUNT, "contact", [EntityChange("id", a.entity_id, {"email": "b@x.com"}, "b@x.com", "act-2", 1)]
    )
    assert result.status == "duplicate"
    assert result.existing.entity_id == b.entity_id
    assert entity_store.get(ACCOUNT, "contact", a.entity_id) == {"email": "a@x.com"}


def test_changing_the_unique_key_to_a_free_one_moves_the_key(entity_store: Any) -> None:
    a = _new("a@x.com", 1)
    entity_store.insert_many(ACCOUNT, "contact", [a])
    entity_store.update_many(
        ACCOUNT, "contact", [EntityChange("id", a.entity_id, {"email": "new@x.com"}, "new@x.com", "act-2", 1)]
    )
    [reinsert] = entity_store.insert_many(ACCOUNT, "contact", [_new("a@x.com", 3, action="act-3")])
    [taken] = entity_store.insert_many(ACCOUNT, "contact", [_new("new@x.com", 4, action="act-3")])
    assert reinsert.inserted
    assert not taken.inserted and taken.existing.entity_id == a.entity_id


def _change(entity_id: str, action: str, row: int, **values: Any) -> EntityChange:
    return EntityChange("id", entity_id, values, None, action, row)


def test_an_update_reports_before_and_after_of_the_fields_it_changed_and_a_new_version(entity_store: Any) -> None:
    a = _new("a@x.com", 1, first_name="Ann", last_name="Lee")
    entity_store.insert_many(ACCOUNT, "contact", [a])
    assert entity_store.version(ACCOUNT, "contact", a.entity_id) == 1

    [result] = entity_store.update_many(
        ACCOUNT, "contact", [_change(a.entity_id, "act-2", 1, first_name="Anne", last_name="Lee", phone="123")]
    )

    assert (result.status, result.version) == ("updated", 2)
    assert result.changes == {"first_name": ["Ann", "Anne"], "phone": [None, "123"]}
    assert entity_store.version(ACCOUNT, "contact", a.entity_id) == 2


def test_an_update_that_changes_nothing_is_unchanged_and_writes_nothing(entity_store: Any) -> None:
    a = _new("a@x.com", 1, first_name="Ann")
    entity_store.insert_many(ACCOUNT, "contact", [a])
    [result] = entity_store.update_many(ACCOUNT, "contact", [_change(a.entity_id, "act-2", 1, first_name="Ann")])
    assert (result.status, result.version, result.changes) == ("unchanged", 1, None)
    assert entity_store.version(ACCOUNT, "contact", a.entity_id) == 1


def test_a_row_run_again_after_its_write_gets_its_own_change_back_not_a_second_one(entity_store: Any) -> None:
    a = _new("a@x.com", 1, first_name="Ann")
    entity_store.insert_many(ACCOUNT, "contact", [a])
    change = _change(a.entity_id, "act-2", 7, first_name="Late")
    [first] = entity_store.update_many(ACCOUNT, "contact", [change])
    [again] = entity_store.update_many(ACCOUNT, "contact", [change])  # a crash before its events were stored
    assert (again.status, again.changes, again.version) == ("already_applied", first.changes, first.version)
    assert again.changes == {"first_name": ["Ann", "Late"]}
    assert entity_store.version(ACCOUNT, "contact", a.entity_id) == 2


def test_a_row_run_again_after_another_action_changed_the_entity_still_gets_its_exact_before(
    entity_store: Any,
) -> None:
    a = _new("a@x.com", 1, first_name="Ann")
    entity_store.insert_many(ACCOUNT, "contact", [a])
    mine = _change(a.entity_id, "act-x", 3, first_name="Xavier")
    entity_store.update_many(ACCOUNT, "contact", [mine])  # then the worker dies before storing its events
    [theirs] = entity_store.update_many(ACCOUNT, "contact", [_change(a.entity_id, "act-y", 1, first_name="Yan")])

    [again] = entity_store.update_many(ACCOUNT, "contact", [mine])

    assert (theirs.changes, theirs.version) == ({"first_name": ["Xavier", "Yan"]}, 3)
    assert (again.status, again.changes, again.version) == ("already_applied", {"first_name": ["Ann", "Xavier"]}, 2)
    assert entity_store.get(ACCOUNT, "contact", a.entity_id)["first_name"] == "Yan"


def test_a_confirmed_change_that_a_later_writer_moved_to_the_journal_is_forgotten(entity_store: Any) -> None:
    a, b = _new("a@x.com", 1, first_name="Ann"), _new("b@x.com", 2, first_name="Bo")
    entity_store.insert_many(ACCOUNT, "contact", [a, b])
    mine = _change(a.entity_id, "act-x", 3, first_name="Xavier")
    other = _change(b.entity_id, "act-x", 4, first_name="Bea")
    entity_store.update_many(ACCOUNT, "contact", [mine, other])
    entity_store.update_many(ACCOUNT, "contact", [_change(a.entity_id, "act-y", 1, first_name="Yan")])  # journals mine

    entity_store.confirm(ACCOUNT, "contact", [StoredChange(a.entity_id, "act-x", 3)])

    # Confirmed: run again, the row is decided afresh against today's value; the row
    # not confirmed still finds its own change.
    [again, kept] = entity_store.update_many(ACCOUNT, "contact", [mine, other])
    assert (again.status, again.changes) == ("updated", {"first_name": ["Yan", "Xavier"]})
    assert (kept.status, kept.changes) == ("already_applied", {"first_name": ["Bo", "Bea"]})


def test_confirmed_changes_are_forgotten_and_a_finished_actions_journal_is_dropped(entity_store: Any) -> None:
    a, b = _new("a@x.com", 1, first_name="Ann"), _new("b@x.com", 2, first_name="Bo")
    entity_store.insert_many(ACCOUNT, "contact", [a, b])
    first = [_change(a.entity_id, "act-x", 1, first_name="A2"), _change(b.entity_id, "act-x", 2, first_name="B2")]
    entity_store.update_many(ACCOUNT, "contact", first)
    entity_store.confirm(ACCOUNT, "contact", [StoredChange(a.entity_id, "act-x", 1)])
    entity_store.update_many(ACCOUNT, "contact", [_change(b.entity_id, "act-y", 1, first_name="B3")])
    entity_store.forget_changes(ACCOUNT, "act-x")

    again = entity_store.update_many(ACCOUNT, "contact", first)

    # Nothing kept of act-x any more: its rows are decided afresh against today's values.
    assert [(r.status, r.changes) for r in again] == [("unchanged", None), ("updated", {"first_name": ["B3", "B2"]})]


def test_updates_in_one_batch_apply_in_order(entity_store: Any) -> None:
    a = _new("a@x.com", 1)
    entity_store.insert_many(ACCOUNT, "contact", [a])
    entity_store.update_many(
        ACCOUNT,
        "contact",
        [
            EntityChange("unique", "a@x.com", {"first_name": "One"}, None, "act-2", 1),
            EntityChange("unique", "a@x.com", {"first_name": "Two"}, None, "act-2", 2),
        ],
    )
    assert entity_store.get(ACCOUNT, "contact", a.entity_id)["first_name"] == "Two"


def test_concurrent_inserts_of_the_same_keys_never_store_a_key_twice(entity_store_factory: Any) -> None:
    stores = [entity_store_factory() for _ in range(4)]
    keys = [f"k{i}@x.com" for i in range(200)]
    inserted: list[int] = []
    lock = threading.Lock()

    def run(store: Any, n: int) -> None:
        results = store.insert_many(ACCOUNT, "contact", [_new(k, i, action=f"w{n}") for i, k in enumerate(keys)])
        with lock:
            inserted.append(sum(r.inserted for r in results))

    run_in_threads(run, ((s, n) for n, s in enumerate(stores)))
    assert sum(inserted) == len(keys)
    assert stores[0].count(ACCOUNT, "contact") == len(keys)


def test_concurrent_inserts_of_one_new_key_answer_every_loser_with_the_one_winner(entity_store_factory: Any) -> None:
    """Insert-or-get, as linking relies on (application.links): workers that meet the
    same new key at once store one entity, and each of the others is told its id."""
    stores = [entity_store_factory() for _ in range(4)]
    keys = [f"co{i}.example.com" for i in range(50)]
    answers: list[tuple[str, str, bool]] = []  # (key, id of the holder, inserted)
    lock = threading.Lock()

    def run(store: Any, n: int) -> None:
        items = [NewEntity(f"w{n}-{key}", key, {"domain": key}, f"w{n}", i) for i, key in enumerate(keys)]
        results = store.insert_many(ACCOUNT, "company", items)
        with lock:
            for item, result in zip(items, results, strict=True):
                holder = item.entity_id if result.inserted else result.existing.entity_id
                answers.append((item.unique_key, holder, result.inserted))

    run_in_threads(run, ((s, n) for n, s in enumerate(stores)))
    for key in keys:
        mine = [(holder, inserted) for k, holder, inserted in answers if k == key]
        assert sum(inserted for _, inserted in mine) == 1
        assert len({holder for holder, _ in mine}) == 1
        assert stores[0].id_of(ACCOUNT, "company", key) == mine[0][0]
    assert stores[0].count(ACCOUNT, "company") == len(keys)


def test_the_ids_of_the_entities_holding_unique_keys_are_found_in_the_account_and_type_only(
    entity_store: Any,
) -> None:
    mine = [NewEntity(f"c{i}", f"co{i}.com", {"domain": f"co{i}.com"}, "a1", i) for i in range(3)]
    entity_store.insert_many(ACCOUNT, "company", mine)
    entity_store.insert_many("other-account", "company", [NewEntity("x", "co9.com", {"domain": "co9.com"}, "a2", 1)])
    entity_store.insert_many(ACCOUNT, "contact", [NewEntity("p", "co8.com", {"email": "co8.com"}, "a3", 1)])
    asked = ["co0.com", "co2.com", "co2.com", "co8.com", "co9.com", "none.com"]
    assert entity_store.ids_of(ACCOUNT, "company", asked) == {"co0.com": "c0", "co2.com": "c2"}
    assert entity_store.ids_of(ACCOUNT, "company", []) == {}
    many = [f"k{i}.com" for i in range(1200)]  # more than one batch of bound parameters
    entity_store.insert_many(ACCOUNT, "company", [NewEntity(k, k, {"domain": k}, "a4", 1) for k in many])
    assert entity_store.ids_of(ACCOUNT, "company", many) == {k: k for k in many}


# --------------------------------------------------------------------------- tenancy

OTHER = "other-account"


def test_two_accounts_may_each_hold_the_same_unique_value(entity_store: Any) -> None:
    mine, theirs = _new("a@x.org", 1), _new("a@x.org", 1, action="act-other")
    assert entity_store.insert_many(ACCOUNT, "contact", [mine])[0].inserted
    assert entity_store.insert_many(OTHER, "contact", [theirs])[0].inserted
    assert entity_store.count(ACCOUNT, "contact") == entity_store.count(OTHER, "contact") == 1


def test_another_accounts_entity_is_never_read_matched_or_changed(entity_store: Any) -> None:
    mine = _new("a@x.org", 1, first_name="Ann")
    entity_store.insert_many(ACCOUNT, "contact", [mine])

    assert entity_store.get(OTHER, "contact", mine.entity_id) is None
    results = entity_store.update_many(
        OTHER,
        "contact",
        [
            EntityChange("id", mine.entity_id, {"first_name": "Mallory"}, None, "act-other", 1),
            EntityChange("unique", "a@x.org", {"first_name": "Eve"}, None, "act-other", 2),
        ],
    )

    assert [r.status for r in results] == ["not_found", "not_found"]
    assert entity_store.get(ACCOUNT, "contact", mine.entity_id) == {"email": "a@x.org", "first_name": "Ann"}
    assert entity_store.count(OTHER, "contact") == 0


def test_a_key_change_may_take_a_value_only_another_account_holds(entity_store: Any) -> None:
    mine, theirs = _new("a@x.org", 1), _new("b@x.org", 1, action="act-other")
    entity_store.insert_many(ACCOUNT, "contact", [mine])
    entity_store.insert_many(OTHER, "contact", [theirs])
    [result] = entity_store.update_many(
        ACCOUNT, "contact", [EntityChange("id", mine.entity_id, {"email": "b@x.org"}, "b@x.org", "act-2", 1)]
    )
    assert result.status == "updated"
    assert entity_store.get(OTHER, "contact", theirs.entity_id) == {"email": "b@x.org"}


# --------------------------------------------------------------------------- migration


def test_a_store_from_before_accounts_is_migrated_to_the_owners_the_rule_names(
    request: pytest.FixtureRequest, tmp_path: Path, entity_store_name: str
) -> None:
    acme_action, other_action = uuid.uuid4(), uuid.uuid4()
    acme_entity, other_entity = str(entity_id_for(acme_action, 1)), str(entity_id_for(other_action, 1))
    LEGACY_WRITERS[entity_store_name](
        request,
        tmp_path,
        [
            (acme_entity, "contact", "a@x.org", '{"email": "a@x.org"}', str(acme_action), 1),
            (other_entity, "contact", "b@x.org", '{"email": "b@x.org"}', str(acme_action), 9),
        ],
    )
    owners = {acme_entity: ACCOUNT, other_entity: OTHER}
    store = ENTITY_STORES[entity_store_name](request, tmp_path)
    try:
        assert store.needs_owner_migration()
        seen: list[tuple[str, str | None]] = []
        moved = store.assign_owners(lambda entity_id, last: seen.append((entity_id, last)) or owners[entity_id])
        assert moved == 2
        assert sorted(seen) == sorted([(acme_entity, str(acme_action)), (other_entity, str(acme_action))])
        assert not store.needs_owner_migration()
        assert store.get(ACCOUNT, "contact", acme_entity) == {"email": "a@x.org"}
        assert store.get(OTHER, "contact", acme_entity) is None
        assert store.insert_many(ACCOUNT, "contact", [_new("b@x.org", 2)])[0].inserted
    finally:
        store.close()
    reopened = ENTITY_STORES[entity_store_name](request, tmp_path)
    try:
        assert not reopened.needs_owner_migration()
        assert reopened.get(OTHER, "contact", other_entity) == {"email": "b@x.org"}
    finally:
        reopened.close()


def test_a_current_store_needs_no_migration(entity_store: Any) -> None:
    assert not entity_store.needs_owner_migration()
    assert entity_store.assign_owners(lambda entity_id, last: "nobody") == 0


# --------------------------------------------------------------------------- revert


def _restore(entity_id: str, changes: dict[str, list[Any]], row: int = 1) -> EntityRevert:
    return EntityRevert("restore", entity_id, changes, "act-revert", row)


def _remove(item: NewEntity, row: int = 1) -> EntityRevert:
    return EntityRevert("remove", item.entity_id, {k: [None, v] for k, v in item.values.items()}, "act-revert", row)


def test_a_revert_restores_the_fields_a_change_made_and_drops_fields_it_added(entity_store: Any) -> None:
    a = _new("a@x.com", 1, first_name="Ann")
    entity_store.insert_many(ACCOUNT, "contact", [a])
    [changed] = entity_store.update_many(
        ACCOUNT, "contact", [_change(a.entity_id, "act-x", 1, first_name="Xav", phone="123")]
    )

    [reverted] = entity_store.revert_many(ACCOUNT, "contact", [_restore(a.entity_id, changed.changes)])

    assert (reverted.status, reverted.version) == ("updated", 3)
    assert reverted.changes == {"first_name": ["Xav", "Ann"], "phone": ["123", None]}
    assert entity_store.get(ACCOUNT, "contact", a.entity_id) == {"email": "a@x.com", "first_name": "Ann"}


def test_a_revert_leaves_an_entity_changed_since_alone_and_names_who_changed_it(entity_store: Any) -> None:
    a = _new("a@x.com", 1, first_name="Ann")
    entity_store.insert_many(ACCOUNT, "contact", [a])
    [changed] = entity_store.update_many(ACCOUNT, "contact", [_change(a.entity_id, "act-x", 1, first_name="Xav")])
    entity_store.update_many(ACCOUNT, "contact", [_change(a.entity_id, "act-y", 4, first_name="Yan")])

    [refused] = entity_store.revert_many(ACCOUNT, "contact", [_restore(a.entity_id, changed.changes)])

    assert refused.status == "changed_since"
    assert (refused.existing.action_id, refused.existing.row) == ("act-y", 4)
    assert entity_store.get(ACCOUNT, "contact", a.entity_id)["first_name"] == "Yan"


def test_a_revert_removes_an_inserted_entity_that_holds_what_the_insert_set_and_frees_its_key(
    entity_store: Any,
) -> None:
    kept, changed = _new("kept@x.com", 1, first_name="K"), _new("changed@x.com", 2, first_name="C")
    entity_store.insert_many(ACCOUNT, "contact", [kept, changed])
    entity_store.update_many(ACCOUNT, "contact", [_change(changed.entity_id, "act-y", 1, first_name="C2")])

    results = entity_store.revert_many(ACCOUNT, "contact", [_remove(kept, 1), _remove(changed, 2)])

    assert [r.status for r in results] == ["removed", "changed_since"]
    assert results[0].changes == {"email": ["kept@x.com", None], "first_name": ["K", None]}
    assert entity_store.get(ACCOUNT, "contact", kept.entity_id) is None
    assert entity_store.insert_many(ACCOUNT, "contact", [_new("kept@x.com", 3, action="act-z")])[0].inserted


def test_a_revert_run_again_after_a_crash_reports_what_it_did_the_first_time(entity_store: Any) -> None:
    a, b = _new("a@x.com", 1, first_name="Ann"), _new("b@x.com", 2)
    entity_store.insert_many(ACCOUNT, "contact", [a, b])
    [changed] = entity_store.update_many(ACCOUNT, "contact", [_change(a.entity_id, "act-x", 1, first_name="Xav")])
    reverts = [_restore(a.entity_id, changed.changes, 1), _remove(b, 2)]
    first = entity_store.revert_many(ACCOUNT, "contact", reverts)

    again = entity_store.revert_many(ACCOUNT, "contact", reverts)

    assert [r.status for r in again] == ["already_applied", "already_applied"]
    assert [(r.changes, r.version) for r in again] == [(r.changes, r.version) for r in first]
    assert entity_store.get(ACCOUNT, "contact", a.entity_id)["first_name"] == "Ann"


def test_a_revert_of_an_entity_that_is_gone_is_not_found(entity_store: Any) -> None:
    a = _new("a@x.com", 1)
    [missing] = entity_store.revert_many(ACCOUNT, "contact", [_restore(a.entity_id, {"first_name": [None, "X"]})])
    assert missing.status == "not_found"


def _delete(match: str, value: str, row: int) -> EntityDelete:
    return EntityDelete(match, value, "act-del", row)  # type: ignore[arg-type]


def test_a_delete_removes_the_entity_by_key_or_id_reports_what_it_held_and_frees_its_key(entity_store: Any) -> None:
    a, b = _new("a@x.com", 1, first_name="Ann"), _new("b@x.com", 2)
    theirs = _new("a@x.com", 1, action="act-other")
    entity_store.insert_many(ACCOUNT, "contact", [a, b])
    entity_store.insert_many(OTHER, "contact", [theirs])
    entity_store.update_many(ACCOUNT, "contact", [_change(a.entity_id, "act-x", 1, phone="1")])

    results = entity_store.delete_many(
        ACCOUNT,
        "contact",
        [_delete("unique", "a@x.com", 1), _delete("id", b.entity_id, 2), _delete("unique", "nobody@x.com", 3)],
    )

    assert [(r.status, r.entity_id) for r in results] == [
        ("removed", a.entity_id),
        ("removed", b.entity_id),
        ("not_found", None),
    ]
    assert results[0].changes == {"email": ["a@x.com", None], "first_name": ["Ann", None], "phone": ["1", None]}
    assert (results[0].version, results[1].version) == (3, 2)
    assert entity_store.count(ACCOUNT, "contact") == 0
    assert entity_store.get(OTHER, "contact", theirs.entity_id) == {"email": "a@x.com"}  # not another account's
    assert entity_store.insert_many(ACCOUNT, "contact", [_new("a@x.com", 9, action="act-z")])[0].inserted


def test_a_delete_run_again_before_it_was_confirmed_reports_what_it_did(entity_store: Any) -> None:
    a = _new("a@x.com", 1, first_name="Ann")
    entity_store.insert_many(ACCOUNT, "contact", [a])
    [first] = entity_store.delete_many(ACCOUNT, "contact", [_delete("unique", "a@x.com", 1)])

    [again] = entity_store.delete_many(ACCOUNT, "contact", [_delete("unique", "a@x.com", 1)])

    assert (again.status, again.entity_id, again.changes, again.version) == (
        "already_applied",
        a.entity_id,
        first.changes,
        first.version,
    )
    entity_store.confirm(ACCOUNT, "contact", [StoredChange(a.entity_id, "act-del", 1)])
    [after] = entity_store.delete_many(ACCOUNT, "contact", [_delete("unique", "a@x.com", 1)])
    assert after.status == "not_found"


def test_a_revert_recreates_a_deleted_entity_with_its_id_and_values_unless_its_key_was_taken(
    entity_store: Any,
) -> None:
    a, b = _new("a@x.com", 1, first_name="Ann"), _new("b@x.com", 2)
    entity_store.insert_many(ACCOUNT, "contact", [a, b])
    deleted = entity_store.delete_many(
        ACCOUNT, "contact", [_delete("id", a.entity_id, 1), _delete("id", b.entity_id, 2)]
    )
    taker = _new("b@x.com", 5, action="act-later")
    entity_store.insert_many(ACCOUNT, "contact", [taker])

    reverts = [
        EntityRevert("recreate", e.entity_id, r.changes, "act-revert", row, r.version, key)
        for row, (e, r, key) in enumerate(zip([a, b], deleted, ["a@x.com", "b@x.com"], strict=True), start=1)
    ]
    results = entity_store.revert_many(ACCOUNT, "contact", reverts)

    assert [r.status for r in results] == ["recreated", "changed_since"]
    assert (results[0].changes, results[0].version) == ({"email": [None, "a@x.com"], "first_name": [None, "Ann"]}, 3)
    assert results[1].entity_id == taker.entity_id
    assert entity_store.get(ACCOUNT, "contact", a.entity_id) == {"email": "a@x.com", "first_name": "Ann"}
    assert entity_store.id_of(ACCOUNT, "contact", "a@x.com") == a.entity_id
    assert entity_store.version(ACCOUNT, "contact", a.entity_id) == 3
    assert entity_store.get(ACCOUNT, "contact", b.entity_id) is None
    again = entity_store.revert_many(ACCOUNT, "contact", reverts[:1])
    assert (again[0].status, again[0].version) == ("already_applied", 3)


def test_entities_are_loaded_for_a_decision_by_id_or_key_in_their_account_only(entity_store: Any) -> None:
    a, b, c = _new("a@x.com", 1, first_name="A"), _new("b@x.com", 2), _new("c@x.com", 3)
    entity_store.insert_many(ACCOUNT, "contact", [a, b, c])
    entity_store.insert_many(OTHER, "contact", [_new("b@x.com", 1, action="act-other")])
    entity_store.update_many(ACCOUNT, "contact", [_change(a.entity_id, "act-x", 7, first_name="A2")])

    loaded = entity_store.load(ACCOUNT, "contact", [a.entity_id], ["b@x.com", "nobody@x.com"])

    by_id = {e.id: e for e in loaded}
    assert sorted(by_id) == sorted([a.entity_id, b.entity_id])
    first = by_id[a.entity_id]
    assert (first.key, first.values, first.version) == ("a@x.com", {"email": "a@x.com", "first_name": "A2"}, 2)
    assert (first.last_action, first.last_row, first.last_change.row) == ("act-x", 7, 7)
    assert entity_store.load(OTHER, "contact", [a.entity_id], []) == []


def test_every_entity_of_every_account_is_read_in_id_order_a_page_at_a_time(entity_store: Any) -> None:
    mine = [_new(f"m{n}@x.com", n) for n in range(5)]
    theirs = [_new(f"t{n}@x.com", n, action="act-other") for n in range(4)]
    entity_store.insert_many(ACCOUNT, "contact", mine)
    entity_store.insert_many(OTHER, "contact", theirs)
    read, after = [], None
    while page := entity_store.entities_page(after, 3):
        read += page
        after = page[-1].entity_id
    assert [r.entity_id for r in read] == sorted(e.entity_id for e in [*mine, *theirs])
    first = next(r for r in read if r.entity_id == mine[0].entity_id)
    assert (first.account_id, first.entity_type, first.key, first.values) == (
        ACCOUNT,
        "contact",
        "m0@x.com",
        mine[0].values,
    )


def test_the_id_of_the_entity_holding_a_unique_value_is_found_in_its_account_only(entity_store: Any) -> None:
    mine = _new("a@x.org", 1)
    entity_store.insert_many(ACCOUNT, "contact", [mine])
    assert entity_store.id_of(ACCOUNT, "contact", "a@x.org") == mine.entity_id
    assert entity_store.id_of(OTHER, "contact", "a@x.org") is None
    assert entity_store.id_of(ACCOUNT, "company", "a@x.org") is None


def test_ids_of_any_form_read_back_exactly_and_page_in_text_order(entity_store: Any) -> None:
    ids = [
        "e1",
        "ffffffff-0000-4000-8000-000000000000",
        "00000000-0000-4000-8000-000000000001",
        "E1",
        "A2345678-0000-4000-8000-000000000000",  # not lowercase: a text, not a UUID's bytes
        "f",
        "zz",
        "0",
        "e1000000-0000-4000-8000-000000000000",
    ]
    items = [NewEntity(entity_id, f"k{n}@x.com", {"n": n}, "a1", n) for n, entity_id in enumerate(ids)]
    entity_store.insert_many(ACCOUNT, "contact", items)
    read, after = [], None
    while page := entity_store.entities_page(after, 2):
        read += [r.entity_id for r in page]
        after = page[-1].entity_id
    assert read == sorted(ids)
    assert [entity_store.get(ACCOUNT, "contact", entity_id)["n"] for entity_id in ids] == list(range(len(ids)))
    assert entity_store.get(ACCOUNT, "contact", "a2345678-0000-4000-8000-000000000000") is None
    assert entity_store.ids_of(ACCOUNT, "contact", ["k1@x.com", "k4@x.com"]) == {"k1@x.com": ids[1], "k4@x.com": ids[4]}
