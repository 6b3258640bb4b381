"""The link rule (domain.links) and how a record's links and the entities it created
for them are recorded (domain.bulk_action)."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime

import orjson
import pytest
from eventsourcing.persistence import JSONTranscoder

from domain.bulk_action import (
    BulkAction,
    BulkChunk,
    CreatedEntity,
    Outcome,
    RecordResult,
    entity_id_for,
    entity_id_prefix,
    linked_entity_id,
    record_outcomes,
)
from domain.entities.company import Company
from domain.entities.contact import Contact
from domain.entities.product import Product
from domain.links import LinkRequest, LinkStatus, link_record, link_requests, new_linked_values
from infrastructure.events.mapper import FastMapper
from infrastructure.stored_json import unpacked
from projections.actions import PROJECTED_KINDS, project

pytestmark = pytest.mark.unit


def test_a_contacts_company_domain_names_the_company_as_the_company_normalises_its_domain() -> None:
    [request] = link_requests(Contact, {"email": "a@x.com", "company_domain": " HTTPS://www.Acme.COM/about "})
    assert request == LinkRequest("company_domain", "company", " HTTPS://www.Acme.COM/about ", "acme.com")
    assert request.key == Company.normalise_unique("acme.com")


def test_an_empty_or_absent_company_domain_names_nothing_and_an_invalid_one_names_no_key() -> None:
    assert link_requests(Contact, {"email": "a@x.com"}) == []
    assert link_requests(Contact, {"email": "a@x.com", "company_domain": "  "}) == []
    [invalid] = link_requests(Contact, {"company_domain": "not a domain"})
    assert invalid.key is None


def test_entity_types_without_link_fields_link_nothing() -> None:
    assert Company.links == {} and Product.links == {}
    assert link_requests(Company, {"domain": "acme.com"}) == []


def test_a_company_made_for_a_link_holds_its_domain_alone() -> None:
    assert new_linked_values("company", "acme.com") == {"domain": "acme.com"}


def test_a_link_record_says_which_entity_and_how_it_was_found() -> None:
    request = LinkRequest("company_domain", "company", "Acme.com", "acme.com")
    assert link_record(request, "c1", LinkStatus.CREATED) == {
        "entity": "company",
        "key": "acme.com",
        "entity_id": "c1",
        "status": "created",
    }


def test_an_entity_made_for_a_rows_link_has_an_id_of_its_own_that_still_names_the_action() -> None:
    action_id = uuid.uuid4()
    made = linked_entity_id(action_id, 7)
    assert made != entity_id_for(action_id, 7)
    assert made == linked_entity_id(action_id, 7)  # a re-run finds its own
    assert made.int >> 64 == entity_id_prefix(action_id)
    assert {linked_entity_id(action_id, row) for row in range(1, 1001)}.isdisjoint(
        {entity_id_for(action_id, row) for row in range(1, 1001)}
    )


def _linked_chunk(action_id: uuid.UUID) -> list[object]:
    first = RecordResult(1, 2, Outcome.SUCCEEDED, entity_id="p1", op="created", changes={}, version=1)
    first.links = {"company_domain": {"entity": "company", "key": "a.com", "entity_id": "c1", "status": "created"}}
    first.created = [CreatedEntity("company", "c1", {"domain": "a.com"})]
    second = RecordResult(2, 3, Outcome.SUCCEEDED, entity_id="p2", op="created", changes={}, version=1)
    second.links = {"company_domain": {"entity": "company", "key": "a.com", "entity_id": "c1", "status": "linked"}}
    failed = RecordResult(3, 4, Outcome.FAILED, errors=[{"field": "email", "code": "missing", "message": "m"}])
    return record_outcomes(action_id, 0, [first, second, failed], datetime.now(UTC))


def test_an_entity_a_record_created_is_its_own_event_after_the_outcomes_and_before_the_summary() -> None:
    events = _linked_chunk(uuid.uuid4())
    assert [type(e).__name__ for e in events] == [
        "RecordSucceeded",
        "RecordSucceeded",
        "RecordFailed",
        "LinkedEntityCreated",
        "ChunkProcessed",
    ]
    assert [e.originator_version for e in events] == [2, 3, 4, 5, 6]  # type: ignore[attr-defined]
    created = events[3]
    assert isinstance(created, BulkChunk.LinkedEntityCreated)
    assert (created.row, created.entity_type, created.entity_id, created.entity_version) == (1, "company", "c1", 1)
    assert created.changes == {"domain": [None, "a.com"]}
    summary = events[-1]
    assert isinstance(summary, BulkChunk.ChunkProcessed)
    assert (summary.succeeded, summary.failed, summary.skipped) == (2, 1, 0)  # counts are the records'
    assert events[1].links["company_domain"]["status"] == "linked"  # type: ignore[attr-defined]


def test_the_created_entity_is_a_line_of_its_own_audit_trail_and_a_dry_runs_is_not() -> None:
    for dry_run, expected in ((False, [("p1", 2), ("p2", 3), ("c1", 5)]), (True, [])):
        action = BulkAction.submit(uuid.uuid4(), "acme", "contact", "insert", None, {}, 10, 3, dry_run=dry_run)
        events = list(enumerate([*action.collect_events(), *_linked_chunk(action.id)], start=1))
        assert [(h.entity_id, h.position) for h in project(events).entity_history] == expected
    assert BulkChunk.LinkedEntityCreated in PROJECTED_KINDS  # the projector reads only these


def test_events_recorded_before_links_read_as_linking_nothing_and_not_creating() -> None:
    mapper = FastMapper(JSONTranscoder())
    outcome = mapper.to_stored_event(_linked_chunk(uuid.uuid4())[0])
    state = orjson.loads(unpacked(outcome.state))
    assert state["class_version"] == 3
    del state["links"]
    state["class_version"] = 2
    assert mapper.to_domain_event(replace(outcome, state=orjson.dumps(state))).links is None
    action = BulkAction.submit(uuid.uuid4(), "acme", "contact", "insert", None, {}, 10, 3, link_companies=True)
    created = mapper.to_stored_event(action.collect_events()[0])
    assert mapper.to_domain_event(created).link_companies is True
    state = orjson.loads(unpacked(created.state))
    del state["link_companies"]
    state["class_version"] = 5
    assert mapper.to_domain_event(replace(created, state=orjson.dumps(state))).link_companies is False
