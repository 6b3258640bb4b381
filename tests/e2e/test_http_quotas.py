"""Per-account rate limits and quotas over HTTP: 429 with Retry-After, the IETF
RateLimit headers and a problem naming the limit; nothing created; and atomic even
when two API processes share the store."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from tests.e2e.http_server import ApiServer, create_account, fresh_window, spool_is_empty, wait_finished

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ApiServer, ApiServer]]:
    """Two API processes on one data dir: the first with the embedded workers, the
    second API only (as a second replica would be)."""
    data_dir = tmp_path_factory.mktemp("http-quotas")
    first = ApiServer(data_dir).start()
    second = ApiServer(data_dir, {"BULK_LOG_LEVEL": "WARNING"})
    second.extra_args = ["--no-runtime"]
    second.start()
    yield first, second
    second.stop()
    first.stop()


def records(n: int) -> list[dict[str, Any]]:
    tag = uuid.uuid4().hex[:10]
    return [{"email": f"q{i}.{tag}@example.com"} for i in range(n)]


def submit(client: httpx.Client, n: int) -> httpx.Response:
    return client.post("/v1/bulk-actions", json={"entity": "contact", "action": "insert", "records": records(n)})


def test_requests_over_the_per_minute_limit_get_429_with_ratelimit_headers(servers: Any) -> None:
    first, _ = servers
    with first.client(create_account(first.data_dir, f"rpm-{uuid.uuid4().hex[:6]}", "--requests-per-minute", "3")) as c:
        fresh_window()
        answers = [c.get("/v1/bulk-actions") for _ in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert [a.headers["ratelimit"].split(";r=")[1].split(";")[0] for a in answers] == [
        "2",
        "1",
        "0",
        "0",
    ]
    refused = answers[-1]
    assert refused.headers["ratelimit-policy"] == '"requests";q=3;w=60'
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert refused.json()["limit"] == "requests_per_minute"


def test_records_over_the_daily_quota_get_429_and_create_nothing(servers: Any) -> None:
    first, _ = servers
    with first.client(create_account(first.data_dir, f"rpd-{uuid.uuid4().hex[:6]}", "--records-per-day", "10")) as c:
        accepted = submit(c, 6)
        assert accepted.status_code == 202
        refused = submit(c, 6)
        assert refused.status_code == 429
        assert refused.json()["limit"] == "records_per_day"
        assert refused.headers["ratelimit-policy"] == '"records";q=10;w=86400'
        assert refused.headers["ratelimit"].startswith('"records";r=0;t=')
        assert int(refused.headers["retry-after"]) > 0
        wait_finished(c, accepted.json()["id"])
        assert [a["id"] for a in c.get("/v1/bulk-actions").json()["items"]] == [accepted.json()["id"]]
        assert submit(c, 4).status_code == 202


def test_an_input_larger_than_the_daily_quota_is_refused_as_one_that_can_never_fit(servers: Any) -> None:
    first, _ = servers
    with first.client(create_account(first.data_dir, f"never-{uuid.uuid4().hex[:6]}", "--records-per-day", "10")) as c:
        csv = b"email\n" + b"".join(b"n%d@example.com\n" % i for i in range(11))
        for refused in (
            submit(c, 11),
            c.post("/v1/bulk-actions", data={"entity": "contact", "action": "insert"}, files={"file": ("a.csv", csv)}),
        ):
            assert refused.status_code == 429
            assert refused.headers["content-type"].startswith("application/problem+json")
            assert refused.json()["limit"] == "records_per_day"
            assert "can never" in refused.json()["detail"] and "at most 10" in refused.json()["detail"]
            assert "retry-after" not in refused.headers  # no retry can succeed
            assert refused.headers["ratelimit-policy"] == '"records";q=10;w=86400'
            assert "ratelimit" not in refused.headers  # no state: nothing to wait for
        assert c.get("/v1/bulk-actions").json()["items"] == []
        assert submit(c, 10).status_code == 202  # the quota itself was not spent
    assert spool_is_empty(first.data_dir)


def test_concurrently_active_actions_are_limited_per_account(servers: Any) -> None:
    first, _ = servers
    with first.client(create_account(first.data_dir, f"act-{uuid.uuid4().hex[:6]}", "--max-active", "1")) as c:
        busy = c.post(
            "/v1/bulk-actions",
            json={
                "entity": "contact",
                "action": "insert",
                "records": records(5000),
                "options": {"chunk_size": 10},
            },
        )
        assert busy.status_code == 202
        refused = submit(c, 1)
        assert refused.status_code == 429 and refused.json()["limit"] == "max_active_actions"
        assert refused.headers["ratelimit-policy"] == '"active";q=1'
        wait_finished(c, busy.json()["id"])
        assert submit(c, 1).status_code == 202


def test_two_api_processes_never_both_spend_the_last_request(servers: Any) -> None:
    first, second = servers
    key = create_account(first.data_dir, f"race-{uuid.uuid4().hex[:6]}", "--requests-per-minute", "20")
    clients = [first.client(key), second.client(key)]
    fresh_window()
    try:
        with ThreadPoolExecutor(16) as pool:
            codes = list(pool.map(lambda i: clients[i % 2].get("/v1/bulk-actions").status_code, range(60)))
    finally:
        for c in clients:
            c.close()
    assert codes.count(200) == 20 and codes.count(429) == 40


def test_two_api_processes_never_both_spend_the_last_records_of_the_daily_quota(
    servers: Any,
) -> None:
    first, second = servers
    key = create_account(first.data_dir, f"quota-race-{uuid.uuid4().hex[:6]}", "--records-per-day", "10")
    clients = [first.client(key), second.client(key)]
    try:
        with ThreadPoolExecutor(12) as pool:
            answers = list(pool.map(lambda i: submit(clients[i % 2], 2), range(12)))
        codes = [a.status_code for a in answers]
        assert codes.count(202) == 5 and codes.count(429) == 7
        accepted = {a.json()["id"] for a in answers if a.status_code == 202}
        for action_id in accepted:  # queued by either process, processed by the first's workers
            assert wait_finished(clients[0], action_id)["counts"]["succeeded"] == 2
        assert {a["id"] for a in clients[0].get("/v1/bulk-actions").json()["items"]} == accepted
    finally:
        for c in clients:
            c.close()
