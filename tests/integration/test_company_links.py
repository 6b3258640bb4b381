"""Contacts linked to their account's companies by ``company_domain`` (application.links),
on every entity store: found as the company normalises its domain, created once per
domain with ``link_companies`` however many chunks meet it at once, never another
account's, and the same again when a chunk is decided again."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from application.chunk_processing import ChunkDecider, ChunkProcessor
from application.event_store import BulkActionLog
from application.ports.entities import NewEntity
from domain.bulk_action import BulkAction, BulkChunk, Outcome, RecordResult
from infrastructure.bootstrap import SystemClock, event_store_env, fault_policy
from infrastructure.settings import Settings
from tests.contract import adapters
from tests.waiting import run_in_threads

pytestmark = pytest.mark.integration

ACCOUNT, OTHER = "acme-corp", "other-corp"
FAULTS = fault_policy(Settings())


@pytest.fixture(params=sorted(adapters.ENTITY_STORES))
def stores(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[], Any]]:
    yield from adapters.several(adapters.ENTITY_STORES, request, tmp_path)


def _company(store: Any, account: str, domain: str) -> str:
    entity_id = str(uuid.uuid4())
    [done] = store.insert_many(account, "company", [NewEntity(entity_id, domain, {"domain": domain}, "seed", 1)])
    assert done.inserted
    return entity_id


def _records(domains: list[str | None], first_row: int = 1) -> list[dict[str, Any]]:
    records = []
    for row, domain in enumerate(domains, start=first_row):
        data = {"email": f"p{row}@people.org"} | ({} if domain is None else {"company_domain": domain})
        records.append({"row": row, "line": row + 1, "data": data})
    return records


def _decide(
    store: Any, records: list[dict[str, Any]], *, create: bool, action_id: uuid.UUID, action: str = "insert"
) -> list[RecordResult]:
    decider = ChunkDecider(
        store,
        ACCOUNT,
        action_id,
        "contact",
        action,
        None,
        is_infrastructure=FAULTS.is_infrastructure,
        create_links=create,
    )
    return decider.decide(records)


def _link(result: RecordResult) -> tuple[str | None, str] | None:
    if result.links is None:
        return None
    link = result.links["company_domain"]
    return link["entity_id"], link["status"]


def test_contacts_link_to_their_accounts_company_and_name_a_missing_one_without_creating_it(
    stores: Callable[[], Any],
) -> None:
    store = stores()
    acme = _company(store, ACCOUNT, "acme.com")
    theirs = _company(store, OTHER, "beta.com")
    domains = ["HTTPS://www.Acme.com/about", "beta.com", "not a domain", None]
    results = _decide(store, _records(domains), create=False, action_id=uuid.uuid4())
    assert [r.outcome for r in results] == [Outcome.SUCCEEDED] * 4  # a link never fails a record
    # A domain with no company of the account is no link: nothing is recorded for it.
    assert [_link(r) for r in results] == [(acme, "linked"), None, (None, "invalid"), None]
    assert all(r.created == [] for r in results)
    assert store.count(ACCOUNT, "company") == 1
    assert store.id_of(OTHER, "company", "beta.com") == theirs


def test_link_companies_creates_one_company_per_new_domain_by_its_first_row_in_the_account_only(
    stores: Callable[[], Any],
) -> None:
    store = stores()
    acme = _company(store, ACCOUNT, "acme.com")
    theirs = _company(store, OTHER, "beta.com")
    results = _decide(
        store, _records(["beta.com", "acme.com", "www.BETA.com", "gamma.io"]), create=True, action_id=uuid.uuid4()
    )
    beta = store.id_of(ACCOUNT, "company", "beta.com")
    gamma = store.id_of(ACCOUNT, "company", "gamma.io")
    assert beta not in (None, theirs) and gamma is not None
    assert [_link(r) for r in results] == [(beta, "created"), (acme, "linked"), (beta, "linked"), (gamma, "created")]
    assert [[(c.entity_type, c.entity_id, c.values) for c in r.created] for r in results] == [
        [("company", beta, {"domain": "beta.com"})],
        [],
        [],
        [("company", gamma, {"domain": "gamma.io"})],
    ]
    assert store.count(ACCOUNT, "company") == 3
    assert store.count(OTHER, "company") == 1 and store.get(OTHER, "company", theirs) == {"domain": "beta.com"}


def test_parallel_chunks_that_meet_the_same_new_domains_create_each_company_once(stores: Callable[[], Any]) -> None:
    domains = [f"co{i}.example.com" for i in range(20)]
    action_id = uuid.uuid4()
    chunks = [_records(domains * 2, first_row=1 + n * 40) for n in range(4)]
    decided: list[list[RecordResult]] = []
    lock = threading.Lock()

    def work(store: Any, records: list[dict[str, Any]]) -> None:
        results = _decide(store, records, create=True, action_id=action_id)
        with lock:
            decided.append(results)

    run_in_threads(work, ((stores(), chunk) for chunk in chunks))
    store = stores()
    assert store.count(ACCOUNT, "company") == len(domains)
    results = [r for chunk in decided for r in chunk]
    assert len(results) == 160 and all(r.outcome is Outcome.SUCCEEDED for r in results)
    for domain in domains:
        mine = [r for r in results if r.links and r.links["company_domain"]["key"] == domain]
        stored = store.id_of(ACCOUNT, "company", domain)
        assert {_link(r)[0] for r in mine} == {stored}  # type: ignore[index]
        assert sum(len(r.created) for r in mine) == 1
        assert [_link(r)[1] for r in mine].count("created") == 1  # type: ignore[index]


def test_a_chunk_decided_again_says_it_created_its_companies_with_the_same_ids(stores: Callable[[], Any]) -> None:
    store = stores()
    action_id = uuid.uuid4()
    records = _records(["new.example.com", "new.example.com", "other.example.com"])
    first = _decide(store, records, create=True, action_id=action_id)
    again = _decide(stores(), records, create=True, action_id=action_id)
    assert [_link(r) for r in again] == [_link(r) for r in first]
    assert [r.created for r in again] == [r.created for r in first]
    assert store.count(ACCOUNT, "company") == 2


def test_an_upsert_links_the_contacts_it_updates_and_a_delete_links_nothing(stores: Callable[[], Any]) -> None:
    store = stores()
    _decide(store, _records(["a.com"]), create=False, action_id=uuid.uuid4())
    updated = _decide(store, _records(["b.com"]), create=True, action_id=uuid.uuid4(), action="upsert")
    assert updated[0].op == "updated" and _link(updated[0]) == (store.id_of(ACCOUNT, "company", "b.com"), "created")
    deleted = _decide(store, _records(["b.com"]), create=False, action_id=uuid.uuid4(), action="delete")
    assert deleted[0].op == "deleted" and deleted[0].links is None


def test_a_chunk_stores_its_companies_creations_with_its_outcomes_once_and_a_dry_run_creates_none(
    tmp_path: Path,
) -> None:
    from infrastructure.sqlite.entities import SQLiteEntityStore

    entities = SQLiteEntityStore(tmp_path / "entities.db")
    events = BulkActionLog(env=event_store_env(Settings(data_dir=tmp_path)))
    processor = ChunkProcessor(events, entities, SystemClock(), FAULTS)
    try:
        for dry_run in (True, False):
            action = BulkAction.submit(
                uuid.uuid4(), ACCOUNT, "contact", "insert", None, {}, 10, 3, dry_run=dry_run, link_companies=True
            )
            events.create_action(action)
            records = _records(["x.com", "x.com", "y.com"])
            events.store_chunks([BulkChunk.queue(action.id, 0, 1, records)])
            assert processor.process(action.id, 0) == "processed"
            assert entities.count(ACCOUNT, "company") == (0 if dry_run else 2)
            stream = events.chunk_events(action.id, 0)
            made = [e for e in stream if isinstance(e, BulkChunk.LinkedEntityCreated)]
            assert len(made) == (0 if dry_run else 2)  # a dry run says what it would create, creates nothing
            assert [e.links["company_domain"]["status"] for e in stream[1:4]] == ["created", "linked", "created"]
        assert processor.process(action.id, 0) == "duplicate"
        stream = events.chunk_events(action.id, 0)
        assert [type(e).__name__ for e in stream] == ["ChunkQueued"] + ["RecordSucceeded"] * 3 + [
            "LinkedEntityCreated"
        ] * 2 + ["ChunkProcessed"]
        assert [(e.row, e.entity_id) for e in stream if isinstance(e, BulkChunk.LinkedEntityCreated)] == [
            (1, entities.id_of(ACCOUNT, "company", "x.com")),
            (3, entities.id_of(ACCOUNT, "company", "y.com")),
        ]
        assert entities.count(ACCOUNT, "company") == 2
    finally:
        events.close()
        entities.close()


def test_an_embedded_read_model_written_before_links_gets_the_column_and_keeps_its_lines(tmp_path: Path) -> None:
    import sqlite3

    from application.ports.read_models import ActionView, LogLine, ViewChanges
    from infrastructure.sqlite.read_models import SQLiteReadModelStore

    path = tmp_path / "readmodels.db"
    view = ActionView(str(uuid.uuid4()), ACCOUNT, "contact", "insert", None, "c.csv", 2, 2, "2026-01-01T00:00:00+00:00")
    store = SQLiteReadModelStore(path)
    old_line = LogLine(view.action_id, 1, 2, 0, "succeeded", "e1", "created", [], None, None, 5)
    store.apply("actions", 5, ViewChanges(new_actions=[view], log_lines=[old_line]))
    store.close()
    with sqlite3.connect(path) as conn:  # as main wrote it: no links column
        conn.execute("ALTER TABLE record_logs DROP COLUMN links")
    store = SQLiteReadModelStore(path)
    try:
        link = {"company_domain": {"entity": "company", "key": "a.com", "entity_id": "c1", "status": "linked"}}
        new_line = LogLine(view.action_id, 2, 3, 0, "succeeded", "e2", "created", [], None, None, 6, link)
        store.apply("actions", 6, ViewChanges(log_lines=[new_line]))
        assert store.logs(view.action_id) == [old_line, new_line]
    finally:
        store.close()
