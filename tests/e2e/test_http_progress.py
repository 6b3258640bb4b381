"""GET /v1/bulk-actions/{id}/progress: Server-Sent Events read by a real HTTP client
from a real `bulkactions serve`, while an import runs."""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from infrastructure.files.sample import write_contacts_csv
from tests.e2e.http_server import ApiServer, create_account, runtime_in_bursts, wait_finished
from tests.waiting import wait_for

pytestmark = pytest.mark.e2e
ROWS = 10_000


@dataclass(frozen=True)
class Event:
    type: str
    data: dict[str, Any]
    at: float  # when it arrived (time.monotonic)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    api = ApiServer(tmp_path_factory.mktemp("progress"), workers=1).start()
    yield api
    api.stop()


def read_events(client: httpx.Client, action_id: str, events: list[Event] | None = None) -> list[Event]:
    """Every event of the stream, as a browser's EventSource parses them, until it ends
    (appended to ``events`` as they come)."""
    events = [] if events is None else events
    kind, data = "message", []
    with client.stream("GET", f"/v1/bulk-actions/{action_id}/progress", timeout=120) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            if line.startswith("event:"):
                kind = line.partition(":")[2].strip()
            elif line.startswith("data:"):
                data.append(line.partition(":")[2].strip())
            elif not line and data:
                events.append(Event(kind, json.loads("\n".join(data)), time.monotonic()))
                kind, data = "message", []
    return events


def start_import(server: ApiServer, client: httpx.Client, rows: int, chunk_size: int) -> tuple[str, Any]:
    path = server.data_dir / f"contacts-{rows}.csv"
    expected = write_contacts_csv(path, rows)
    form = {"entity": "contact", "action": "insert", "chunk_size": str(chunk_size)}
    response = client.post("/v1/bulk-actions", data=form, files={"file": (path.name, path.read_bytes(), "text/csv")})
    assert response.status_code == 202, response.text
    return str(response.json()["id"]), expected


def test_progress_is_pushed_while_the_import_runs_at_most_every_half_second_then_the_exact_final_counts(
    server: ApiServer,
) -> None:
    with server.client(create_account(server.data_dir, "watcher")) as client, runtime_in_bursts(server):
        action_id, expected = start_import(server, client, ROWS, chunk_size=100)
        events = read_events(client, action_id)
        detail = client.get(f"/v1/bulk-actions/{action_id}").json()

    assert [e.type for e in events[:-1]] == ["progress"] * (len(events) - 1) and events[-1].type == "final"
    running = [e for e in events[:-1] if 0 < e.data["counts"]["processed"] < ROWS]
    assert len(running) >= 2, [e.data["counts"] for e in events]  # pushed while it runs, not only at the end
    gaps = [round(later.at - earlier.at, 3) for earlier, later in itertools.pairwise(events)]
    assert min(gaps) >= 0.45, gaps  # at most one event per 500 ms (arrival jitter allowed)
    processed = [e.data["counts"]["processed"] for e in events]
    assert processed == sorted(processed)
    final = events[-1].data
    assert final["status"] == "COMPLETED"
    assert (
        final["counts"]
        == detail["counts"]
        == {
            "total": ROWS,
            "processed": ROWS,
            "succeeded": expected.valid,
            "failed": expected.invalid,
            "skipped": expected.duplicates,
        }
    )


def test_a_finished_action_streams_its_final_event_at_once(server: ApiServer) -> None:
    with server.client(create_account(server.data_dir, "late")) as client:
        action_id, expected = start_import(server, client, 300, chunk_size=100)
        wait_finished(client, action_id)
        started = time.monotonic()
        events = read_events(client, action_id)
    assert [e.type for e in events] == ["final"]
    assert events[0].at - started < 2
    assert events[0].data["counts"]["succeeded"] == expected.valid


def test_the_stream_needs_a_key_and_another_accounts_action_is_not_found(server: ApiServer, tmp_path: Path) -> None:
    with server.client(create_account(server.data_dir, "owner")) as owner:
        action_id, _ = start_import(server, owner, 300, chunk_size=100)
    path = f"/v1/bulk-actions/{action_id}/progress"
    with server.client(None) as anonymous:
        refused = anonymous.get(path)
    assert refused.status_code == 401 and refused.headers["content-type"].startswith("application/problem+json")
    with server.client(create_account(server.data_dir, "other")) as other:
        hidden = other.get(path)
        unknown = other.get("/v1/bulk-actions/00000000-0000-4000-8000-000000000000/progress")
    assert hidden.status_code == 404 and hidden.headers["content-type"].startswith("application/problem+json")
    assert unknown.status_code == 404


def test_an_open_stream_ends_cleanly_when_the_server_shuts_down(tmp_path: Path) -> None:
    api = ApiServer(tmp_path, workers=1).start()
    try:
        with api.client(create_account(tmp_path, "leaving")) as client:
            # Large enough to be still running when the server is stopped: 20,000 rows
            # could finish between the first progress event and the signal.
            action_id, _ = start_import(api, client, 200_000, chunk_size=100)
            events: list[Event] = []
            ended: list[float] = []

            def read() -> None:
                read_events(client, action_id, events)
                ended.append(time.monotonic())

            reader = threading.Thread(target=read, daemon=True)
            reader.start()
            wait_for(lambda: any(e.data["counts"]["processed"] for e in events), 60, "progress while it runs")
            signalled = time.monotonic()
            api.stop()
            reader.join(10)
    finally:
        api.stop()
    assert ended and ended[0] - signalled < 3  # the stream does not hold the shutdown
    assert events and "final" not in [e.type for e in events]  # it ended early: the client reconnects
    log = (tmp_path / "serve.log").read_text()
    assert "ASGI callable returned without completing response" not in log and "Traceback" not in log, log
