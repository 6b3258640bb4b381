"""Contacts and companies together through the HTTP API: ``link_companies`` in a JSON
submission's options and as a multipart form field; the links in the outcome events
and the record history; each account's contacts linked to its own companies only."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.e2e.http_server import ApiServer, create_account, wait_finished

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    api = ApiServer(tmp_path_factory.mktemp("http-links"), workers=3).start()
    yield api
    api.stop()


def _done(client: httpx.Client, body: dict[str, Any]) -> str:
    response = client.post("/v1/bulk-actions", json=body)
    assert response.status_code == 202, response.text
    action_id: str = response.json()["id"]
    assert wait_finished(client, action_id)["status"] == "COMPLETED"
    return action_id


def _events(client: httpx.Client, action_id: str, kind: str) -> list[dict[str, Any]]:
    with client.stream("GET", f"/v1/bulk-actions/{action_id}/events") as streamed:
        events = [json.loads(line) for line in streamed.iter_lines() if line]
    return [e for e in events if e["type"] == kind]


def _company(client: httpx.Client, domain: str) -> str:
    action_id = _done(client, {"entity": "company", "action": "insert", "records": [{"domain": domain}]})
    [outcome] = _events(client, action_id, "RecordSucceeded")
    entity_id: str = outcome["entity_id"]
    return entity_id


def test_json_and_multipart_submissions_link_contacts_to_their_accounts_companies_creating_missing_ones(
    server: ApiServer,
) -> None:
    with (
        server.client(create_account(server.data_dir, "main")) as main,
        server.client(create_account(server.data_dir, "rival")) as rival,
    ):
        known = _company(main, "known.example.com")
        theirs = _company(rival, "shared.example.com")
        domains = ["Known.example.com", "https://shared.example.com", "n1.example.com", "www.n2.example.com"]
        records = [{"email": f"p{n}@people.org", "company_domain": domains[n % 4]} for n in range(60)] + [
            {"email": "nodomain@people.org"}
        ]
        options = {"link_companies": True, "chunk_size": 5}
        action_id = _done(main, {"entity": "contact", "action": "insert", "records": records, "options": options})
        counts = main.get(f"/v1/bulk-actions/{action_id}").json()["counts"]
        assert counts == {"total": 61, "processed": 61, "succeeded": 61, "failed": 0, "skipped": 0}

        created = {e["changes"]["domain"][1]: e["entity_id"] for e in _events(main, action_id, "LinkedEntityCreated")}
        assert sorted(created) == ["n1.example.com", "n2.example.com", "shared.example.com"]
        assert theirs not in created.values()
        ids = created | {"known.example.com": known}
        outcomes = _events(main, action_id, "RecordSucceeded")
        links = {o["row"]: o["links"] for o in outcomes}
        assert links.pop(61) is None
        for row, link in links.items():
            key = ["known.example.com", "shared.example.com", "n1.example.com", "n2.example.com"][(row - 1) % 4]
            assert (link["company_domain"]["key"], link["company_domain"]["entity_id"]) == (key, ids[key])
        logged = main.get(f"/v1/bulk-actions/{action_id}/logs", params={"limit": 100}).json()["items"]
        assert {line["row"]: line.get("links") for line in logged} == links | {61: None}
        history = main.get(f"/v1/bulk-actions/{action_id}/records/1/history").json()
        assert history["events"][-1]["links"]["company_domain"] == {
            "entity": "company",
            "key": "known.example.com",
            "entity_id": known,
            "status": "linked",
        }

        csv = b"email,company_domain\nq1@people.org,n1.example.com\nq2@people.org,N3.example.com\n"
        form = {"entity": "contact", "action": "upsert", "link_companies": "true"}
        response = main.post("/v1/bulk-actions", data=form, files={"file": ("c.csv", csv, "text/csv")})
        assert response.status_code == 202, response.text
        upload = response.json()["id"]
        assert wait_finished(main, upload)["counts"]["succeeded"] == 2
        statuses = [o["links"]["company_domain"]["status"] for o in _events(main, upload, "RecordSucceeded")]
        assert statuses == ["linked", "created"]
        [n3] = _events(main, upload, "LinkedEntityCreated")
        audit = main.get("/v1/entities/company/n3.example.com/history").json()
        assert (audit["entity_id"], audit["changes"][0]["action_id"]) == (n3["entity_id"], upload)
        contact = main.get("/v1/entities/contact/q2@people.org/history").json()
        assert contact["changes"][0]["links"]["company_domain"]["entity_id"] == n3["entity_id"]
        assert rival.get("/v1/entities/company/n3.example.com/history").status_code == 404


def test_link_companies_on_an_entity_without_links_is_a_422_problem(server: ApiServer) -> None:
    with server.client(create_account(server.data_dir, "third")) as client:
        body = {"entity": "company", "action": "insert", "records": [{"domain": "a.com"}]}
        refused = client.post("/v1/bulk-actions", json=body | {"options": {"link_companies": True}})
        assert refused.status_code == 422 and "link_companies" in refused.json()["detail"]
        files = {"file": ("c.csv", b"domain\na.com\n", "text/csv")}
        form = {"entity": "contact", "action": "insert", "link_companies": "maybe"}
        refused = client.post("/v1/bulk-actions", data=form, files=files)
        assert refused.status_code == 422 and "link_companies must be true or false" in refused.json()["detail"]
