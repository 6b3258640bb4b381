"""--dry-run over HTTP: options.dry_run (JSON) or the dry_run form field (a file): the
counts and outcomes an action would have, no entity written, marked in detail and list."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.e2e.http_server import ApiServer, create_account, wait_finished

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    api = ApiServer(tmp_path_factory.mktemp("http-dry-run")).start()
    yield api
    api.stop()


def _done(client: httpx.Client, response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 202, response.text
    return wait_finished(client, response.json()["id"])


def _counts(action: dict[str, Any]) -> tuple[int, int, int, int]:
    c = action["counts"]
    return c["total"], c["succeeded"], c["failed"], c["skipped"]


def test_dry_runs_report_the_outcomes_and_write_no_entity(server: ApiServer) -> None:
    key = create_account(server.data_dir, "acme")
    with server.client(key) as client:
        records = [{"email": "a@x.com", "first_name": "A"}, {"email": "b@x.com"}]
        _done(
            client, client.post("/v1/bulk-actions", json={"entity": "contact", "action": "insert", "records": records})
        )

        upsert = [{"email": "a@x.com", "first_name": "A2"}, {"email": "new@x.com"}, {"email": "bad"}]
        body = {"entity": "contact", "action": "upsert", "records": upsert, "options": {"dry_run": True}}
        dry = _done(client, client.post("/v1/bulk-actions", json=body))
        assert (_counts(dry), dry["dry_run"]) == ((3, 2, 1, 0), True)
        ops = [x.get("op") for x in client.get(f"/v1/bulk-actions/{dry['id']}/logs").json()["items"]]
        assert ops == ["updated", "created", None]

        deleted = _done(
            client,
            client.post(
                "/v1/bulk-actions",
                data={"entity": "contact", "action": "delete", "dry_run": "true"},
                files={"file": ("gone.csv", b"email\nb@x.com\nnobody@x.com\n", "text/csv")},
            ),
        )
        assert (_counts(deleted), deleted["dry_run"]) == ((2, 1, 1, 0), True)

        assert client.get("/v1/entities/contact/new@x.com/history").status_code == 404
        a = client.get("/v1/entities/contact/a@x.com/history").json()
        assert (a["current"]["first_name"], len(a["changes"])) == ("A", 1)
        assert client.get("/v1/entities/contact/b@x.com/history").json()["current"] == {"email": "b@x.com"}
        listed = client.get("/v1/bulk-actions").json()["items"]
        assert [x["dry_run"] for x in listed] == [True, True, False]
        bad_flag = client.post(
            "/v1/bulk-actions",
            data={"entity": "contact", "action": "delete", "dry_run": "maybe"},
            files={"file": ("gone.csv", b"email\nb@x.com\n", "text/csv")},
        )
        assert bad_flag.status_code == 422 and "dry_run must be true or false" in bad_flag.text
        assert client.post(f"/v1/bulk-actions/{dry['id']}/revert").status_code == 409
