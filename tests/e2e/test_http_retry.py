"""Retry of failed rows over HTTP: the failed rows' CSV (the same file as the CLI's
`results`), a fixed copy posted as a file or as JSON records, a child action linked
both ways, the chain of retries in the first action's detail, and the refusals."""

from __future__ import annotations

import csv
import io
import subprocess
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.e2e.cli import command
from tests.e2e.http_server import ApiServer, create_account, wait_finished

pytestmark = pytest.mark.e2e

RECORDS = [
    {"email": "a@x.com", "first_name": "A"},
    {"email": "bad-1", "first_name": "B"},
    {"email": "c@x.com", "first_name": "C"},
    {"email": "bad-2", "first_name": "D"},
    {"email": "a@x.com", "first_name": "E"},
    {"email": "bad-3", "first_name": "F"},
]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    api = ApiServer(tmp_path_factory.mktemp("http-retry")).start()
    yield api
    api.stop()


def _inserted(client: httpx.Client) -> dict[str, Any]:
    sent = client.post("/v1/bulk-actions", json={"entity": "contact", "action": "insert", "records": RECORDS})
    assert sent.status_code == 202, sent.text
    done = wait_finished(client, sent.json()["id"])
    assert (done["counts"]["succeeded"], done["counts"]["failed"], done["counts"]["skipped"]) == (2, 3, 1)
    return done


def _counts(action: dict[str, Any]) -> tuple[int, int, int, int]:
    counts = action["counts"]
    return counts["total"], counts["succeeded"], counts["failed"], counts["skipped"]


def test_a_fixed_failed_csv_and_then_json_records_make_a_chain_of_retries(server: ApiServer) -> None:
    key = create_account(server.data_dir, "acme")
    with server.client(key) as client:
        parent = _inserted(client)
        exported = client.get(f"/v1/bulk-actions/{parent['id']}/results/failed.csv")
        assert exported.status_code == 200
        # One use case behind both: the CLI writes the very same file.
        cli = subprocess.run(
            command(server.data_dir, "results", parent["id"], "failed"), capture_output=True, check=True
        )
        assert cli.stdout == exported.content
        rows = list(csv.DictReader(io.StringIO(exported.text)))
        assert [(r["row"], r["email"]) for r in rows] == [("2", "bad-1"), ("4", "bad-2"), ("6", "bad-3")]

        fixed = exported.text.replace("bad-1", "b@x.com").replace("bad-2", "d@x.com")
        sent = client.post(
            f"/v1/bulk-actions/{parent['id']}/retry", files={"file": ("failed.csv", fixed.encode(), "text/csv")}
        )
        assert sent.status_code == 202, sent.text
        assert sent.headers["Location"] == f"/v1/bulk-actions/{sent.json()['id']}"
        child = wait_finished(client, sent.json()["id"])
        assert _counts(child) == (3, 2, 1, 0)
        assert (child["action"], child["retry_of"], child["source"]) == ("insert", parent["id"], "failed.csv")
        detail = client.get(f"/v1/bulk-actions/{parent['id']}").json()
        assert detail["retried_by"] == {
            "action_id": child["id"],
            "status": "COMPLETED",
            "total": 3,
            "succeeded": 2,
            "failed": 1,
            "skipped": 0,
            "retried_by": None,
        }

        # The child's last failed row, sent back as JSON records (its row kept).
        sent = client.post(
            f"/v1/bulk-actions/{child['id']}/retry",
            json={"records": [{"row": 3, "email": "f@x.com", "first_name": "F"}]},
        )
        assert sent.status_code == 202, sent.text
        grandchild = wait_finished(client, sent.json()["id"])
        assert _counts(grandchild) == (1, 1, 0, 0)
        chain = client.get(f"/v1/bulk-actions/{parent['id']}").json()["retried_by"]
        assert chain["action_id"] == child["id"]
        assert (chain["retried_by"]["action_id"], chain["retried_by"]["succeeded"]) == (grandchild["id"], 1)
        listed = {a["id"]: a for a in client.get("/v1/bulk-actions").json()["items"]}
        assert listed[parent["id"]]["retried_by"]["action_id"] == child["id"]
        assert listed[grandchild["id"]]["retry_of"] == child["id"]


def test_retries_of_rows_that_did_not_fail_twice_or_of_another_accounts_action_are_refused(
    server: ApiServer,
) -> None:
    key, other_key = create_account(server.data_dir, "refused"), create_account(server.data_dir, "stranger")
    with server.client(key) as client, server.client(other_key) as other:
        parent = _inserted(client)
        url = f"/v1/bulk-actions/{parent['id']}/retry"
        refused = client.post(url, json={"records": [{"row": 1, "email": "x@x.com"}, {"row": 5, "email": "y@x.com"}]})
        assert refused.status_code == 400
        problem = refused.json()
        assert problem["type"].endswith("/rows-not-failed")
        assert f"row(s) 1, 5 of action {parent['id']} did not fail there" in problem["detail"]
        twice = client.post(url, json={"records": [{"row": 2, "email": "b@x.com"}, {"row": 2, "email": "c@x.com"}]})
        assert twice.status_code == 400 and "more than once" in twice.json()["detail"]
        no_row = client.post(url, json={"records": [{"email": "b@x.com"}]})
        assert no_row.status_code == 422 and "has no 'row'" in no_row.json()["detail"]
        assert client.post(url, json={"records": []}).status_code == 422
        assert other.post(url, json={"records": [{"row": 2, "email": "b@x.com"}]}).status_code == 404
        assert client.get(f"/v1/bulk-actions/{parent['id']}").json()["retried_by"] is None
        assert len(client.get("/v1/bulk-actions").json()["items"]) == 1

        first = client.post(url, json={"records": [{"row": 2, "email": "b@x.com"}]})
        assert first.status_code == 202
        second = client.post(url, json={"records": [{"row": 4, "email": "d@x.com"}]})
        assert second.status_code == 409
        assert second.json()["type"].endswith("/already-retried")
        wait_finished(client, first.json()["id"])
        assert len(client.get("/v1/bulk-actions").json()["items"]) == 2
