"""DELETE over HTTP: by unique value (JSON records) or by id (a file), exact counts, a
missing target failed (not_found), the deleted values in the entity's history."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.e2e.http_server import ApiServer, create_account, wait_finished

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    api = ApiServer(tmp_path_factory.mktemp("http-delete")).start()
    yield api
    api.stop()


def _counts(action: dict[str, Any]) -> tuple[int, int, int, int]:
    c = action["counts"]
    return c["total"], c["succeeded"], c["failed"], c["skipped"]


def _sent(client: httpx.Client, response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 202, response.text
    return wait_finished(client, response.json()["id"])


def test_deletes_by_unique_value_and_by_id_with_the_deleted_values_in_the_history(server: ApiServer) -> None:
    key = create_account(server.data_dir, "acme")
    with server.client(key) as client:
        records = [{"email": f"d{n}@x.com", "first_name": f"D{n}"} for n in range(4)]
        inserted = _sent(
            client, client.post("/v1/bulk-actions", json={"entity": "contact", "action": "insert", "records": records})
        )
        ids = [line["entity_id"] for line in client.get(f"/v1/bulk-actions/{inserted['id']}/logs").json()["items"]]

        gone = [{"email": "D0@x.com"}, {"email": "d1@x.com"}, {"email": "nobody@x.com"}]
        deleted = _sent(
            client, client.post("/v1/bulk-actions", json={"entity": "contact", "action": "delete", "records": gone})
        )
        assert (deleted["action"], _counts(deleted)) == ("delete", (3, 2, 1, 0))
        [failed] = client.get(f"/v1/bulk-actions/{deleted['id']}/logs", params={"outcome": "failed"}).json()["items"]
        assert (failed["row"], failed["errors"][0]["code"]) == (3, "not_found")

        upload = f"id\n{ids[2]}\n{ids[0]}\n".encode()
        by_id = _sent(
            client,
            client.post(
                "/v1/bulk-actions",
                data={"entity": "contact", "action": "delete", "match_by": "id"},
                files={"file": ("ids.csv", upload, "text/csv")},
            ),
        )
        assert _counts(by_id) == (2, 1, 1, 0)  # d0 was deleted already: not found

        history = client.get("/v1/entities/contact/d0@x.com/history").json()
        assert history["current"] is None
        assert [(c["op"], c["action_id"]) for c in history["changes"]][1] == ("deleted", deleted["id"])
        assert history["changes"][1]["fields"] == {
            "email": {"before": "d0@x.com", "after": None},
            "first_name": {"before": "D0", "after": None},
        }
        assert client.get("/v1/entities/contact/d3@x.com/history").json()["current"] == {
            "email": "d3@x.com",
            "first_name": "D3",
        }
