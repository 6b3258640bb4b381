"""What a request may send, against a real `bulkactions serve`: heads (request line and
headers) are capped and refused with a problem before they are buffered; a multipart
body is read only while it is well-formed (each form field once, bounded part
headers, a closing boundary); a body that is not complete creates nothing."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.http_server import ApiServer, create_account, spool_files, spool_is_empty
from tests.e2e.raw_http import RawResponse, connect, exchange, head, read_response, send_until_answered
from tests.waiting import wait_for

pytestmark = pytest.mark.e2e
KIB = 1024
BOUNDARY = "limits-boundary"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    api = ApiServer(tmp_path_factory.mktemp("http-limits")).start()
    yield api
    api.stop()


@pytest.fixture
def key(server: ApiServer) -> str:
    """A fresh account per test, so "nothing was created" is its empty list."""
    return create_account(server.data_dir, f"limits-{uuid.uuid4().hex[:8]}")


def assert_problem(response: RawResponse, status: int) -> dict[str, Any]:
    assert response.status == status, (response.status, response.body[:300])
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["status"] == status and body["title"] and body["detail"] and body["type"]
    return body


def nothing_created(server: ApiServer, key: str) -> bool:
    with server.client(key) as client:
        assert client.get("/v1/bulk-actions").json()["items"] == []
    return spool_is_empty(server.data_dir)


def peak_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


# --------------------------------------------------------------------------- heads


def test_a_header_over_16_kib_is_answered_431_with_a_problem(server: ApiServer) -> None:
    answer = exchange(server.base_url, head("GET", "/v1/bulk-actions", {"X-Filler": "a" * (20 * KIB)}))
    body = assert_problem(answer, 431)
    assert "16384" in body["detail"]
    assert answer.headers["connection"] == "close"


def test_an_endless_header_is_refused_before_it_is_buffered(server: ApiServer) -> None:
    """Measured before the cap: one 200 MB header took the server from 58 to 459 MB."""
    assert server.process is not None
    peak_before = peak_rss_kib(server.process.pid)
    with connect(server.base_url) as sock:
        sock.sendall(b"GET /v1/bulk-actions HTTP/1.1\r\nHost: test\r\nX-Filler: ")
        send_until_answered(sock, (b"a" * (256 * KIB) for _ in range(256)))  # up to 64 MiB
        assert_problem(read_response(sock), 431)  # the header never ends: answered while it came
    assert peak_rss_kib(server.process.pid) - peak_before < 32 * KIB


def test_heads_over_64_kib_in_all_are_answered_431(server: ApiServer) -> None:
    headers = [(f"X-Filler-{i}", "a" * (12 * KIB)) for i in range(6)]
    assert_problem(exchange(server.base_url, head("GET", "/v1/bulk-actions", headers)), 431)


def test_more_than_100_headers_are_answered_431(server: ApiServer) -> None:
    headers = [(f"X-H{i}", "1") for i in range(101)]
    body = assert_problem(exchange(server.base_url, head("GET", "/v1/bulk-actions", headers)), 431)
    assert "100" in body["detail"]


def test_a_request_target_over_16_kib_is_answered_414(server: ApiServer) -> None:
    answer = exchange(server.base_url, head("GET", "/v1/bulk-actions/" + "a" * (17 * KIB), {}))
    assert_problem(answer, 414)


def test_heads_within_the_limits_are_served(server: ApiServer, key: str) -> None:
    headers = [("Authorization", f"Bearer {key}"), ("X-Big", "b" * (15 * KIB))]
    headers += [(f"X-H{i}", "1") for i in range(97)]  # with Host: 100 headers
    answer = exchange(server.base_url, head("GET", "/v1/bulk-actions/" + "a" * (15 * KIB), headers))
    assert_problem(answer, 404)  # reached the app: authenticated, then no such action


def test_each_request_on_a_kept_alive_connection_has_its_own_head_budget(server: ApiServer, key: str) -> None:
    request = head("GET", "/v1/bulk-actions", [("Authorization", f"Bearer {key}"), ("X-Big", "b" * (15 * KIB))])
    with connect(server.base_url) as sock:
        for _ in range(6):  # 90 KiB of heads on one connection
            sock.sendall(request)
            assert read_response(sock).status == 200


def test_a_malformed_request_is_answered_400_with_a_problem(server: ApiServer) -> None:
    assert_problem(exchange(server.base_url, b"NOT HTTP AT ALL\r\n\r\n"), 400)


# --------------------------------------------------------------------------- multipart bodies


def part(name: str, content: bytes, filename: str | None = None) -> bytes:
    disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
    return f"--{BOUNDARY}\r\nContent-Disposition: {disposition}\r\n\r\n".encode() + content + b"\r\n"


def upload_body(rows: int = 50) -> bytes:
    csv = b"email,first_name\n" + b"".join(b"u%d@example.com,Name%d\n" % (i, i) for i in range(rows))
    return part("entity", b"contact") + part("action", b"insert") + part("file", csv, "c.csv") + closing()


def closing() -> bytes:
    return f"--{BOUNDARY}--\r\n".encode()


def post_head(key: str, length: int) -> bytes:
    return head(
        "POST",
        "/v1/bulk-actions",
        {
            "Authorization": f"Bearer {key}",
            "Content-Type": f"multipart/form-data; boundary={BOUNDARY}",
            "Content-Length": str(length),
        },
    )


def test_a_well_formed_raw_upload_is_accepted(server: ApiServer, key: str) -> None:
    body = upload_body()
    assert exchange(server.base_url, post_head(key, len(body)) + body).status == 202


@pytest.mark.parametrize("field", ["entity", "action", "chunk_size", "file"])
def test_a_form_field_given_twice_is_a_400_naming_it(server: ApiServer, key: str, field: str) -> None:
    fields: dict[str, Any] = {"entity": "contact", "action": "insert", "chunk_size": "10"}
    files: list[tuple[str, Any]] = [("file", ("a.csv", b"email\na@example.com\n", "text/csv"))]
    if field == "file":
        files.append(("file", ("b.csv", b"email\nb@example.com\n", "text/csv")))
    else:
        fields[field] = [fields[field], fields[field]]
    with server.client(key) as client:
        response = client.post("/v1/bulk-actions", data=fields, files=files)
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert repr(field) in response.json()["detail"]
    assert nothing_created(server, key)


def test_a_body_of_many_parts_is_refused_before_it_is_read_further(server: ApiServer, key: str) -> None:
    parts = [part("entity", b"contact") for _ in range(100_000)]
    length = sum(map(len, parts)) + len(closing())
    with connect(server.base_url) as sock:
        sock.sendall(post_head(key, length) + b"".join(parts[:1000]))  # 1% of the body, never the rest
        body = assert_problem(read_response(sock), 400)  # answered without waiting for it
    assert "'entity'" in body["detail"]
    assert nothing_created(server, key)


def test_a_part_with_oversized_headers_is_refused(server: ApiServer, key: str) -> None:
    big = f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="entity"; x="{"a" * (64 * KIB)}"\r\n\r\ncontact\r\n'
    body = big.encode() + upload_body()
    answer = exchange(server.base_url, post_head(key, len(body)) + body)
    assert_problem(answer, 400)
    assert nothing_created(server, key)


def test_a_multipart_body_without_its_closing_boundary_creates_nothing(server: ApiServer, key: str) -> None:
    body = upload_body()[: -len(closing()) - 8]  # the last row cut mid-field, no closing boundary
    answer = exchange(server.base_url, post_head(key, len(body)) + body)
    assert "closing boundary" in assert_problem(answer, 400)["detail"]
    assert nothing_created(server, key)


def test_a_content_length_shorter_than_the_body_creates_nothing(server: ApiServer, key: str) -> None:
    body = upload_body()
    answer = exchange(server.base_url, post_head(key, len(body) - 20) + body)
    # the app's answer to the body it was given, not the parser's to the leftover bytes
    assert "closing boundary" in assert_problem(answer, 400)["detail"]
    assert nothing_created(server, key)


@pytest.mark.parametrize("kind", ["multipart", "json"])
def test_a_client_that_disconnects_mid_upload_leaves_nothing(server: ApiServer, key: str, kind: str) -> None:
    if kind == "multipart":
        request_head, start = post_head(key, 10**8), part("entity", b"contact") + part("file", b"", "c.csv")[:-2]
        filler = b"email\n" + b"x@example.com\n" * 5000
    else:
        request_head = head(
            "POST",
            "/v1/bulk-actions",
            {"Authorization": f"Bearer {key}", "Content-Type": "application/json", "Content-Length": str(10**8)},
        )
        start = b'{"entity": "contact", "action": "insert", "records": ['
        filler = b'{"email": "x@example.com"},' * 5000
    with connect(server.base_url) as sock:
        sock.sendall(request_head + start + filler)
        wait_for(lambda: spool_files(server.data_dir), 15, "the upload to reach the spool")
    assert nothing_created(server, key)


def test_a_json_body_cut_by_its_content_length_creates_nothing(server: ApiServer, key: str) -> None:
    body = b'{"entity": "contact", "action": "insert", "records": [{"email": "a@example.com"}]}'
    request_head = head(
        "POST",
        "/v1/bulk-actions",
        {"Authorization": f"Bearer {key}", "Content-Type": "application/json", "Content-Length": str(len(body) - 3)},
    )
    assert "malformed JSON" in assert_problem(exchange(server.base_url, request_head + body), 400)["detail"]
    assert nothing_created(server, key)


def test_a_complete_request_followed_by_stray_bytes_gets_its_own_answer(server: ApiServer, key: str) -> None:
    """The client must not read the 400 meant for the stray bytes as the answer to an
    accepted upload (and retry it: two actions)."""
    body = upload_body()
    with connect(server.base_url) as sock:
        sock.sendall(post_head(key, len(body)) + body + b"stray bytes\r\n\r\n")
        assert read_response(sock).status == 202
        assert sock.recv(100) == b""  # then closed, without a second answer
