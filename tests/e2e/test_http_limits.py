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

from tests.e2e.http_server import ApiServer, create_account, spool_is_empty
from tests.e2e.raw_http import RawResponse, connect, exchange, head, read_response, send_until_answered

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
        sent = send_until_answered(sock, (b"a" * (256 * KIB) for _ in range(256)))  # up to 64 MiB
        assert_problem(read_response(sock), 431)
    assert sent < 64 * 1024 * KIB  # answered while the header was still coming
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
