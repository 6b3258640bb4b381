"""The HTTP API on the embedded default, driven over real HTTP against `bulkactions serve`."""

from __future__ import annotations

import csv
import io
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.http_server import ApiServer, create_account, spool_is_empty, wait_finished
from tests.waiting import wait_for

pytestmark = pytest.mark.e2e
UPLOAD_CAP = 400_000


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    data_dir = tmp_path_factory.mktemp("http-api")
    api = ApiServer(data_dir, {"BULK_MAX_UPLOAD_BYTES": str(UPLOAD_CAP)}).start()
    yield api
    api.stop()


@pytest.fixture(scope="module")
def client(server: ApiServer) -> Iterator[httpx.Client]:
    with server.client(create_account(server.data_dir, "main")) as c:
        yield c


def contacts(n: int, *, bad_every: int = 0) -> list[dict[str, Any]]:
    tag = uuid.uuid4().hex[:10]
    rows = []
    for i in range(n):
        email = "not-an-email" if bad_every and i % bad_every == 0 else f"u{i}.{tag}@example.com"
        rows.append({"email": email, "first_name": f"First{i}", "last_name": "Last"})
    return rows


def as_csv(rows: list[dict[str, Any]]) -> bytes:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().encode()


def submit(client: httpx.Client, records: list[dict[str, Any]], **extra: Any) -> httpx.Response:
    return client.post(
        "/v1/bulk-actions",
        json={"entity": "contact", "action": "insert", "records": records},
        **extra,
    )


def upload(client: httpx.Client, name: str, content: bytes, *, mime: str = "text/csv", **fields: str) -> httpx.Response:
    data = {"entity": "contact", "action": "insert", **fields}
    return client.post("/v1/bulk-actions", data=data, files={"file": (name, content, mime)})


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["status"] == status and body["detail"] and body["type"] and body["title"]
    return body


def action_count(client: httpx.Client) -> int:
    return len(client.get("/v1/bulk-actions", params={"limit": 200}).json()["items"])


def test_json_submission_is_accepted_at_once_and_ends_with_exact_counts(
    client: httpx.Client,
) -> None:
    response = submit(client, contacts(30, bad_every=10))
    assert response.status_code == 202
    action_id = response.json()["id"]
    assert response.headers["location"] == f"/v1/bulk-actions/{action_id}"
    assert client.get(response.headers["location"]).status_code == 200  # readable at once
    done = wait_finished(client, action_id)
    assert done["status"] == "COMPLETED"
    assert done["counts"] == {
        "total": 30,
        "processed": 30,
        "succeeded": 27,
        "failed": 3,
        "skipped": 0,
    }
    assert done["progress"]["percent"] == 100.0
    assert done["timings"]["finished_at"] is not None


def test_csv_upload_completes_and_failed_results_csv_is_spreadsheet_safe(
    client: httpx.Client,
) -> None:
    rows = contacts(50, bad_every=25)
    rows[0]["first_name"] = '=HYPERLINK("http://evil")'
    rows[0]["email"] = "@evil"
    rows.append(dict(rows[1]))  # a duplicate of row 2
    response = upload(client, "contacts.csv", as_csv(rows))
    assert response.status_code == 202, response.text
    action_id = response.json()["id"]
    done = wait_finished(client, action_id)
    assert done["source"] == "contacts.csv"
    assert done["counts"] == {
        "total": 51,
        "processed": 51,
        "succeeded": 48,
        "failed": 2,
        "skipped": 1,
    }
    failed = client.get(f"/v1/bulk-actions/{action_id}/results/failed.csv")
    assert failed.status_code == 200 and failed.headers["content-type"].startswith("text/csv")
    table = list(csv.DictReader(io.StringIO(failed.text)))
    assert [r["row"] for r in table] == ["1", "26"]
    assert table[0]["outcome"] == "failed" and "email" in table[0]["errors"]
    assert table[0]["first_name"] == '\'=HYPERLINK("http://evil")'  # neutralised
    assert table[0]["email"] == "'@evil"
    assert table[1]["email"] == "not-an-email" and table[1]["first_name"] == "First25"
    skipped = list(csv.DictReader(io.StringIO(client.get(f"/v1/bulk-actions/{action_id}/results/skipped.csv").text)))
    assert [(r["row"], r["duplicate_of_row"]) for r in skipped] == [("51", "2")]
    succeeded = client.get(f"/v1/bulk-actions/{action_id}/results/succeeded.csv").text
    assert len(list(csv.DictReader(io.StringIO(succeeded)))) == 48


def test_line_breaks_inside_quoted_csv_cells_are_stored_and_exported_as_uploaded(client: httpx.Client) -> None:
    tag = uuid.uuid4().hex[:10]
    content = f'email,first_name\r\nok.{tag}@example.com,"Ann\r\nMarie"\r\nnot-an-email,"Bo\rB\nC"\r\n'.encode()
    action_id = upload(client, "crlf.csv", content).json()["id"]
    wait_finished(client, action_id)
    stored = [
        client.get(f"/v1/bulk-actions/{action_id}/records/{row}/history").json()["events"][0]["records"][0]["data"]
        for row in (1, 2)
    ]
    assert [s["first_name"] for s in stored] == ["Ann\r\nMarie", "Bo\rB\nC"]
    failed = client.get(f"/v1/bulk-actions/{action_id}/results/failed.csv").content.decode()
    assert [r["first_name"] for r in csv.DictReader(io.StringIO(failed, newline=""))] == ["Bo\rB\nC"]


@pytest.mark.parametrize(
    ("name", "mime", "encode"),
    [
        (
            "contacts.jsonl",
            "application/x-ndjson",
            lambda rows: b"".join(json.dumps(r).encode() + b"\n" for r in rows),
        ),
        ("contacts.json", "application/json", lambda rows: json.dumps(rows).encode()),
    ],
)
def test_json_lines_and_json_array_uploads_are_imported(
    client: httpx.Client, name: str, mime: str, encode: Any
) -> None:
    response = upload(client, name, encode(contacts(12)), mime=mime)
    assert response.status_code == 202, response.text
    assert wait_finished(client, response.json()["id"])["counts"]["succeeded"] == 12


def test_logs_are_paged_by_cursor_and_filtered_by_outcome(client: httpx.Client) -> None:
    action_id = submit(client, contacts(25, bad_every=5)).json()["id"]
    wait_finished(client, action_id)
    rows, cursor = [], None
    while True:
        params = {"limit": 7, **({"cursor": cursor} if cursor else {})}
        page = client.get(f"/v1/bulk-actions/{action_id}/logs", params=params).json()
        rows += [item["row"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert rows == list(range(1, 26))
    failed = client.get(f"/v1/bulk-actions/{action_id}/logs", params={"outcome": "failed"}).json()["items"]
    assert [f["row"] for f in failed] == [1, 6, 11, 16, 21]
    assert all(f["errors"][0]["field"] == "email" for f in failed)


def test_record_history_and_event_export_come_from_the_event_store(client: httpx.Client) -> None:
    action_id = submit(client, contacts(5, bad_every=3), params={}).json()["id"]
    wait_finished(client, action_id)
    history = client.get(f"/v1/bulk-actions/{action_id}/records/4/history").json()
    assert [e["type"] for e in history["events"]] == ["ChunkQueued", "RecordFailed"]
    assert history["events"][0]["records"][0]["row"] == 4
    assert client.get(f"/v1/bulk-actions/{action_id}/records/6/history").status_code == 404
    with client.stream("GET", f"/v1/bulk-actions/{action_id}/events") as streamed:
        assert streamed.headers["content-type"].startswith("application/x-ndjson")
        events = [json.loads(line) for line in streamed.iter_lines() if line]
    types = [e["type"] for e in events]
    assert types[0] == "Created" and "Completed" in types
    assert types.count("RecordSucceeded") == 3 and types.count("RecordFailed") == 2


def test_list_filters_by_status_entity_and_created_range_with_cursor_pages(
    client: httpx.Client,
) -> None:
    ids = [submit(client, contacts(2)).json()["id"] for _ in range(3)]
    for action_id in ids:
        wait_finished(client, action_id)
    newest = client.get(f"/v1/bulk-actions/{ids[-1]}").json()["timings"]["created_at"]
    first = client.get(f"/v1/bulk-actions/{ids[0]}").json()["timings"]["created_at"]
    params = {"status": "COMPLETED", "entity": "contact", "created_from": first, "limit": 2}
    page1 = client.get("/v1/bulk-actions", params=params).json()
    page2 = client.get("/v1/bulk-actions", params={**params, "cursor": page1["next_cursor"]}).json()
    assert [a["id"] for a in page1["items"] + page2["items"]] == ids[::-1]
    assert page2["next_cursor"] is None
    assert client.get("/v1/bulk-actions", params={"created_to": first}).json()["items"] == [] or all(
        a["timings"]["created_at"] < first
        for a in client.get("/v1/bulk-actions", params={"created_to": first}).json()["items"]
    )
    assert client.get("/v1/bulk-actions", params={"entity": "company", "created_from": first}).json()["items"] == []
    assert newest >= first


def test_idempotency_key_returns_the_same_action_and_refuses_a_different_body(
    client: httpx.Client,
) -> None:
    records = contacts(4)
    key = {"Idempotency-Key": uuid.uuid4().hex}
    first = submit(client, records, headers=key)
    again = submit(client, records, headers=key)
    assert first.status_code == again.status_code == 202
    assert first.json()["id"] == again.json()["id"] and again.json()["created"] is False
    assert wait_finished(client, first.json()["id"])["counts"]["succeeded"] == 4
    later = submit(client, records, headers=key).json()
    assert (later["id"], later["created"], later["status"]) == (first.json()["id"], False, "COMPLETED")
    before = action_count(client)
    body = assert_problem(submit(client, contacts(4), headers=key), 422)
    assert body["type"].endswith("idempotency-key-reused") and "different request" in body["detail"]
    assert action_count(client) == before


@pytest.mark.parametrize(
    ("send", "status", "says"),
    [
        (
            lambda c: c.post(
                "/v1/bulk-actions",
                content=b"{not json",
                headers={"content-type": "application/json"},
            ),
            400,
            "malformed JSON",
        ),
        (
            lambda c: c.post(
                "/v1/bulk-actions",
                json={"entity": "contact", "action": "insert", "records": [{}], "colour": "red"},
            ),
            422,
            "colour",
        ),
        (
            lambda c: c.post("/v1/bulk-actions", json={"entity": "contact", "action": "insert", "records": "x"}),
            422,
            "records",
        ),
        (
            lambda c: c.post(
                "/v1/bulk-actions",
                json={
                    "entity": "contact",
                    "action": "insert",
                    "records": [{}],
                    "options": {"chunk_size": "10"},
                },
            ),
            422,
            "chunk_size",
        ),
        (
            lambda c: c.post("/v1/bulk-actions", json={"entity": "dragon", "action": "insert", "records": [{}]}),
            422,
            "unknown entity type",
        ),
        (
            lambda c: c.post("/v1/bulk-actions", json={"entity": "contact", "action": "merge", "records": [{}]}),
            422,
            "unknown action",
        ),
        (
            lambda c: c.post("/v1/bulk-actions", json={"entity": "contact", "action": "insert", "records": []}),
            422,
            "records",
        ),
        (
            lambda c: upload(c, "contacts.xls", b"\xd0\xcf\x11\xe0", mime="application/vnd.ms-excel"),
            415,
            "xlsx",
        ),
        (
            lambda c: upload(c, "contacts.xlsx", b"PK\x03\x04"),
            422,
            "is not an Excel .xlsx workbook",
        ),
        (
            lambda c: upload(c, "contacts.csv", "email\nzoë@example.com\n".encode("utf-16") + b"\x00"),
            422,
            "not valid utf-16",
        ),
        (
            lambda c: upload(c, "contacts.csv", "email\nzo\xeb@example.com\n".encode("latin-1")),
            422,
            "UTF-8",
        ),
        (lambda c: upload(c, "contacts.csv", b"email,colour\na@example.com,red\n"), 422, "colour"),
        (
            lambda c: upload(c, "contacts.csv", b"email\n" + b"x@example.com\n" * (UPLOAD_CAP // 14 + 10)),
            413,
            "larger",
        ),
        (
            lambda c: c.post("/v1/bulk-actions", content=b"email\n", headers={"content-type": "text/csv"}),
            415,
            "multipart",
        ),
        (
            lambda c: c.post("/v1/bulk-actions", files={"entity": (None, "contact"), "action": (None, "insert")}),
            422,
            "file",
        ),
        (
            lambda c: c.post("/v1/bulk-actions", data={"entity": "contact", "action": "insert"}),
            415,
            "multipart",
        ),
        (
            lambda c: c.post(
                "/v1/bulk-actions",
                data={"entity": "contact", "action": "insert", "colour": "red"},
                files={"file": ("a.csv", b"email\na@example.com\n", "text/csv")},
            ),
            422,
            "colour",
        ),
    ],
)
def test_bad_input_is_a_4xx_problem_and_creates_nothing(
    server: ApiServer, client: httpx.Client, send: Any, status: int, says: str
) -> None:
    before = action_count(client)
    body = assert_problem(send(client), status)
    assert says.lower() in body["detail"].lower()
    assert action_count(client) == before
    assert spool_is_empty(server.data_dir)


def _body(records: bytes = b'[{"email": "a@example.com"}]', options: bytes = b"{}") -> bytes:
    return b'{"entity": "contact", "action": "insert", "options": ' + options + b', "records": ' + records + b"}"


_DEEP = b'{"a": ' * 10_000 + b"1" + b"}" * 10_000


@pytest.mark.parametrize(
    ("send", "status", "says"),
    [
        (lambda c: _post_json(c, _body(b'[{"email": "a@example.com"}, {"first_name": "\\ud800"}]')), 400, "surrogate"),
        (lambda c: _post_json(c, _body(options=b'{"match_by": "\\udfff"}')), 400, "surrogate"),
        (lambda c: _post_json(c, _body(b'[{"phone": ' + b"9" * 10_000 + b"}]")), 400, "10000 digits"),
        (lambda c: _post_json(c, _body(options=b'{"chunk_size": ' + b"9" * 10_000 + b"}")), 400, "10000 digits"),
        (lambda c: _post_json(c, _body(b"[" + _DEEP + b"]")), 400, "nested deeper than 32 levels"),
        (lambda c: _post_json(c, _body(options=_DEEP)), 400, "nested deeper than 32 levels"),
        (
            lambda c: _post_json(c, _body(b'[{"email": "a@example.com"}, {"email": "a@x.org", "email": "b@x.org"}]')),
            422,
            "records.1: the key 'email' is given twice",
        ),
        (
            lambda c: _post_json(c, _body(options=b'{"chunk_size": 5, "chunk_size": 6}')),
            422,
            "options: the key 'chunk_size' is given twice",
        ),
        (
            lambda c: upload(
                c, "c.json", b'[{"email": "a@example.com"}, {"first_name": "\\ud800"}]', mime="application/json"
            ),
            422,
            "c.json: the value at line 1 holds a lone UTF-16 surrogate",
        ),
        (lambda c: upload(c, "c.json", b"[" + _DEEP + b"]", mime="application/json"), 422, "nested deeper than 32"),
        (
            lambda c: upload(c, "c.json", b'[{"phone": ' + b"9" * 10_000 + b"}]", mime="application/json"),
            422,
            "10000 digits",
        ),
    ],
    ids=[
        "body-record-surrogate",
        "body-options-surrogate",
        "body-record-10000-digits",
        "body-options-10000-digits",
        "body-record-10000-deep",
        "body-options-10000-deep",
        "body-record-repeats-a-key",
        "body-options-repeat-a-key",
        "json-file-surrogate",
        "json-file-10000-deep",
        "json-file-10000-digits",
    ],
)
def test_json_the_event_store_cannot_hold_or_that_repeats_a_key_is_refused_and_creates_nothing(
    server: ApiServer, client: httpx.Client, send: Any, status: int, says: str
) -> None:
    before = action_count(client)
    body = assert_problem(send(client), status)
    assert says in body["detail"]
    assert action_count(client) == before
    assert spool_is_empty(server.data_dir)


def _post_json(client: httpx.Client, body: bytes) -> httpx.Response:
    return client.post("/v1/bulk-actions", content=body, headers={"content-type": "application/json"})


def test_a_json_lines_upload_fails_the_lines_that_repeat_a_key_or_nest_too_deep_alone(client: httpx.Client) -> None:
    lines = [
        b'{"email": "a@example.com"}',
        b'{"email": "b@example.com", "email": "c@example.com"}',
        b'{"email": "d@example.com", "tags": ' + b"[" * 300 + b"]" * 300 + b"}",
    ]
    response = upload(client, "c.jsonl", b"\n".join(lines) + b"\n", mime="application/x-ndjson")
    assert response.status_code == 202, response.text
    done = wait_finished(client, response.json()["id"])
    assert (done["counts"]["succeeded"], done["counts"]["failed"]) == (1, 2)
    failed = client.get(f"/v1/bulk-actions/{done['id']}/logs", params={"outcome": "failed"}).json()["items"]
    assert [(f["row"], f["errors"][0]["code"]) for f in failed] == [(2, "duplicate_field"), (3, "unparseable")]


def test_oversized_json_body_is_413(client: httpx.Client) -> None:
    records = [{"email": f"{'x' * 60}{i}@example.com"} for i in range(UPLOAD_CAP // 70 + 10)]
    assert_problem(submit(client, records), 413)


def test_requests_without_a_known_api_key_are_401(server: ApiServer) -> None:
    with server.client(None) as anonymous:
        assert_problem(anonymous.get("/v1/bulk-actions"), 401)
    with server.client("bap_" + "x" * 43) as wrong:
        response = wrong.get("/v1/bulk-actions")
        assert_problem(response, 401)
        assert response.headers["www-authenticate"].startswith("Bearer")


def test_one_account_never_sees_or_touches_another_accounts_actions(server: ApiServer, client: httpx.Client) -> None:
    action_id = submit(client, contacts(3)).json()["id"]
    wait_finished(client, action_id)
    with server.client(create_account(server.data_dir, "intruder")) as other:
        base = f"/v1/bulk-actions/{action_id}"
        for path in (
            base,
            f"{base}/logs",
            f"{base}/results/succeeded.csv",
            f"{base}/events",
            f"{base}/records/1/history",
        ):
            assert_problem(other.get(path), 404)
        assert_problem(other.post(f"{base}/cancel"), 404)
        assert other.get("/v1/bulk-actions").json()["items"] == []
        # The same Idempotency-Key in another account is another action.
        key = {"Idempotency-Key": "shared-key"}
        mine = submit(client, contacts(1), headers=key).json()["id"]
        theirs = submit(other, contacts(1), headers=key).json()["id"]
        assert mine != theirs
    assert client.get(base).json()["status"] == "COMPLETED"


def test_cancel_leaves_queued_chunks_unprocessed_and_reports_counts_so_far(
    server: ApiServer,
) -> None:
    with server.client(create_account(server.data_dir, "canceller")) as c:
        response = upload(c, "big.csv", as_csv(contacts(5000)), chunk_size="10")
        assert response.status_code == 202, response.text
        action_id = response.json()["id"]
        cancelled = c.post(f"/v1/bulk-actions/{action_id}/cancel")
        assert cancelled.status_code == 200, cancelled.text
        assert cancelled.json()["status"] == "CANCELLED"
        done = wait_finished(c, action_id)
        assert done["status"] == "CANCELLED"
        assert done["counts"]["processed"] < 5000
        assert_problem(c.post(f"/v1/bulk-actions/{action_id}/cancel"), 409)
        settled = wait_for(lambda: _stable_counts(c, action_id), 30, "counts to settle")
        assert settled["processed"] == settled["succeeded"] + settled["failed"] + settled["skipped"]
    assert spool_is_empty(server.data_dir)  # the cancelled action's input is not kept


def _stable_counts(c: httpx.Client, action_id: str) -> dict[str, int] | None:
    import time

    first = c.get(f"/v1/bulk-actions/{action_id}").json()["counts"]
    time.sleep(0.3)
    second: dict[str, int] = c.get(f"/v1/bulk-actions/{action_id}").json()["counts"]
    return second if first == second else None


def test_unknown_action_ids_and_query_parameters_are_problems(client: httpx.Client) -> None:
    assert_problem(client.get("/v1/bulk-actions/not-a-uuid"), 404)
    assert_problem(client.get(f"/v1/bulk-actions/{uuid.uuid4()}"), 404)
    assert_problem(client.get("/v1/bulk-actions", params={"statuss": "COMPLETED"}), 422)
    assert_problem(client.get("/v1/bulk-actions", params={"cursor": "garbage"}), 400)
    assert_problem(client.delete("/v1/bulk-actions"), 405)


def test_openapi_docs_are_served_with_examples(server: ApiServer) -> None:
    schema = httpx.get(server.base_url + "/openapi.json").json()
    assert "/v1/bulk-actions/{action_id}/results/{outcome}.csv" in schema["paths"]
    assert schema["components"]["schemas"]["BulkActionCreate"]["examples"]
    assert httpx.get(server.base_url + "/docs").status_code == 200


def test_a_restarted_server_finishes_what_a_killed_one_left(tmp_path: Path) -> None:
    api = ApiServer(tmp_path).start()
    key = create_account(tmp_path, "restart")
    rows = contacts(30_000)
    with api.client(key) as c:
        response = upload(
            c,
            "big.jsonl",
            b"".join(json.dumps(r).encode() + b"\n" for r in rows),
            mime="application/x-ndjson",
            chunk_size="100",
        )
        assert response.status_code == 202
        action_id = response.json()["id"]
        api.kill()  # right after the 202: the input is (at most) partly queued
    restarted = ApiServer(tmp_path).start()
    try:
        with restarted.client(key) as c:
            done = wait_finished(c, action_id, timeout=180)
            assert done["status"] == "COMPLETED"
            assert done["counts"] == {
                "total": 30_000,
                "processed": 30_000,
                "succeeded": 30_000,
                "failed": 0,
                "skipped": 0,
            }
    finally:
        restarted.stop()
