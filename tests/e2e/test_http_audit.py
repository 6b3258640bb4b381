"""The audit trail over HTTP: an entity's history (account-scoped), and the revert of a
whole action (202 + Location, once, linked both ways)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.http_server import ApiServer, create_account, wait_finished

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    api = ApiServer(tmp_path_factory.mktemp("http-audit")).start()
    yield api
    api.stop()


def _run(client: httpx.Client, action: str, records: list[dict[str, Any]]) -> dict[str, Any]:
    sent = client.post("/v1/bulk-actions", json={"entity": "contact", "action": action, "records": records})
    assert sent.status_code == 202, sent.text
    return wait_finished(client, sent.json()["id"])


def test_an_entitys_history_and_the_revert_of_an_update(server: ApiServer, tmp_path: Path) -> None:
    key, other_key = create_account(server.data_dir, "acme"), create_account(server.data_dir, "other")
    with server.client(key) as acme, server.client(other_key) as other:
        _run(acme, "insert", [{"email": f"p{n}@x.com", "first_name": f"P{n}", "last_name": "L"} for n in range(20)])
        update = _run(
            acme, "update", [{"email": f"p{n}@x.com", "first_name": f"New{n}", "last_name": "L"} for n in range(10)]
        )
        _run(acme, "update", [{"email": f"p{n}@x.com", "first_name": f"Later{n}"} for n in range(8, 10)])

        history = acme.get("/v1/entities/contact/P3@x.com/history")
        assert history.status_code == 200, history.text
        body = history.json()
        assert body["key"] == "p3@x.com" and body["current"]["first_name"] == "New3"
        assert [(c["op"], c["fields"]) for c in body["changes"]][1] == (
            "updated",
            {"first_name": {"before": "P3", "after": "New3"}},
        )
        actor = body["changes"][1]["actor"]
        assert actor["kind"] == "api_key" and actor["key_id"].startswith("key_") and key not in str(body)
        assert other.get("/v1/entities/contact/p3@x.com/history").status_code == 404
        assert other.post(f"/v1/bulk-actions/{update['id']}/revert").status_code == 404

        started = acme.post(f"/v1/bulk-actions/{update['id']}/revert")
        assert started.status_code == 202, started.text
        assert started.headers["Location"] == f"/v1/bulk-actions/{started.json()['id']}"
        revert = wait_finished(acme, started.json()["id"])
        assert (revert["action"], revert["reverts"]) == ("revert", update["id"])
        assert (revert["counts"]["succeeded"], revert["counts"]["skipped"]) == (8, 2)
        assert acme.get(f"/v1/bulk-actions/{update['id']}").json()["reverted_by"] == revert["id"]
        assert acme.get("/v1/entities/contact/p3@x.com/history").json()["current"]["first_name"] == "P3"
        assert acme.get("/v1/entities/contact/p9@x.com/history").json()["current"]["first_name"] == "Later9"

        again = acme.post(f"/v1/bulk-actions/{update['id']}/revert")
        assert again.status_code == 409 and again.json()["type"].endswith("already-reverted")
