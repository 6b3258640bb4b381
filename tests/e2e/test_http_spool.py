"""Where a `bulkactions serve` keeps request bodies (the spool folder under its data
dir): never shown to a client, and never left behind, whether an upload is refused,
cut off by a killed server, or belongs to an action cancelled before it was stored."""

from __future__ import annotations

import json
import os
import signal
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.cli import bulkactions
from tests.e2e.http_server import ApiServer, create_account, descendants, spool_files, spool_is_empty, wait_finished
from tests.e2e.raw_http import connect, head, read_response
from tests.waiting import wait_for

pytestmark = pytest.mark.e2e
CSV = b"email,first_name\n" + b"".join(b"s%d@example.com,N%d\n" % (i, i) for i in range(40))


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def server(data_dir: Path) -> Iterator[ApiServer]:
    data_dir.mkdir()
    api = ApiServer(data_dir).start()
    yield api
    api.stop()


def test_no_answer_shows_a_path_on_the_server(server: ApiServer) -> None:
    key = create_account(server.data_dir, "paths")
    answers: list[str] = []
    with server.client(key) as c:
        uploaded = c.post(
            "/v1/bulk-actions", data={"entity": "contact", "action": "insert"}, files={"file": ("c.csv", CSV)}
        )
        body = {"entity": "contact", "action": "insert", "records": [{"email": "j@example.com"}, {"email": "x"}]}
        posted = c.post("/v1/bulk-actions", json=body)
        answers += [uploaded.text, posted.text]
        for action_id in (uploaded.json()["id"], posted.json()["id"]):
            wait_finished(c, action_id)
            base = f"/v1/bulk-actions/{action_id}"
            for path in ("", "/logs", "/events", "/records/1/history", "/records/2/history", "/results/failed.csv"):
                answers.append(c.get(base + path).text)
        answers.append(c.get("/v1/bulk-actions").text)
        refused = c.post(
            "/v1/bulk-actions", data={"entity": "contact", "action": "insert"}, files={"file": ("c.csv", b"e\n1\n")}
        )
        answers.append(refused.text)
    assert json.loads(answers[4].splitlines()[0])["source"]["name"] == "c.csv"  # the export names the upload
    for where in {str(server.data_dir), str(server.data_dir.resolve())}:
        assert not [a for a in answers if where in a]


UPLOAD = (
    b'--b\r\nContent-Disposition: form-data; name="entity"\r\n\r\ncontact\r\n'
    b'--b\r\nContent-Disposition: form-data; name="action"\r\n\r\ninsert\r\n'
    b'--b\r\nContent-Disposition: form-data; name="file"; filename="c.csv"\r\n\r\n' + CSV + b"\r\n--b--\r\n"
)


def begin_upload(server: ApiServer, key: str) -> socket.socket:
    """An upload sent all but its last 20 bytes; its socket, once the server has
    spooled what came."""
    sock = connect(server.base_url)
    request = head(
        "POST",
        "/v1/bulk-actions",
        {
            "Authorization": f"Bearer {key}",
            "Content-Type": "multipart/form-data; boundary=b",
            "Content-Length": str(len(UPLOAD)),
        },
    )
    sock.sendall(request + UPLOAD[:-20])
    wait_for(lambda: spool_files(server.data_dir), 15, "the upload to reach the spool")
    return sock


def test_uploads_cut_off_by_a_killed_server_are_removed_when_it_starts_again(server: ApiServer) -> None:
    key = create_account(server.data_dir, "killed")
    sock = begin_upload(server, key)
    server.kill()
    assert spool_files(server.data_dir)  # left behind
    sock.close()
    restarted = ApiServer(server.data_dir).start()
    try:
        assert spool_is_empty(server.data_dir, timeout=30)
        with restarted.client(key) as c:
            assert c.get("/v1/bulk-actions").json()["items"] == []
    finally:
        restarted.stop()


def test_the_input_of_an_action_cancelled_before_it_was_stored_is_removed(server: ApiServer) -> None:
    key = create_account(server.data_dir, "cancelled")
    assert server.process is not None
    helpers = descendants(server.process.pid)
    for pid in helpers:  # nothing is stored as chunks: the input stays on disk
        os.kill(pid, signal.SIGSTOP)
    with server.client(key) as c:
        accepted = c.post(
            "/v1/bulk-actions", data={"entity": "contact", "action": "insert"}, files={"file": ("c.csv", CSV)}
        )
    assert accepted.status_code == 202, accepted.text
    server.kill()
    for pid in helpers:
        os.kill(pid, signal.SIGKILL)
    action_id = accepted.json()["id"]
    assert bulkactions(server.data_dir, "cancel", action_id).code == 0
    assert spool_files(server.data_dir)
    restarted = ApiServer(server.data_dir).start()
    try:
        assert spool_is_empty(server.data_dir, timeout=30)
        with restarted.client(key) as c:
            assert c.get(f"/v1/bulk-actions/{action_id}").json()["status"] == "CANCELLED"
    finally:
        restarted.stop()


def test_a_starting_server_leaves_a_running_servers_uploads_alone(server: ApiServer) -> None:
    key = create_account(server.data_dir, "replicas")
    with begin_upload(server, key) as sock:
        abandoned = server.data_dir / "spool" / uuid.uuid4().hex  # as a killed server leaves its folder
        abandoned.mkdir()
        (abandoned / "serve.lock").touch()
        (abandoned / "cut-off.upload").write_bytes(b"email\n")
        second = ApiServer(server.data_dir)
        second.extra_args = ["--no-runtime"]
        second.start()
        try:
            wait_for(lambda: not abandoned.exists(), 30, "the second server to sweep the spool")
            sock.sendall(UPLOAD[-20:])
            accepted = read_response(sock)
        finally:
            second.stop()
    assert accepted.status == 202, accepted.body
    with server.client(key) as c:
        assert wait_finished(c, accepted.json()["id"])["counts"]["succeeded"] == 40
