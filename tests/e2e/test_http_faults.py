"""The HTTP API on a disk that fills up: reads keep answering, writes that cannot be
stored are a 503 problem with Retry-After (never a 500), one log line per episode,
and the import accepted before the disk filled ends exact once there is space."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from infrastructure.files.sample import write_contacts_csv
from tests.e2e.http_server import ApiServer, create_account, wait_finished
from tests.waiting import wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A real filesystem of a few MB (tmpfs; the tests run as root), grown on demand."""
    disk = tmp_path / "disk"
    disk.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(disk)], check=True)
    yield disk
    subprocess.run(["umount", "--lazy", str(disk)], check=True)


def _free_bytes(disk: Path) -> int:
    stat = os.statvfs(disk)
    return stat.f_bavail * stat.f_frsize


def test_a_full_disk_refuses_writes_with_503_keeps_reads_and_loses_nothing(tmp_path: Path, small_disk: Path) -> None:
    data = small_disk / "data"
    key = create_account(data, "acme")
    source = tmp_path / "contacts.csv"
    expected = write_contacts_csv(source, 30_000)
    server = ApiServer(data).start()
    try:
        with server.client(key) as client:
            upload = {"file": ("contacts.csv", source.read_bytes(), "text/csv")}
            accepted = client.post("/v1/bulk-actions", files=upload, data={"entity": "contact", "action": "insert"})
            assert accepted.status_code == 202, accepted.text
            action_id = accepted.json()["id"]
            wait_for(lambda: _free_bytes(small_disk) < 64 * 1024, timeout=120, what="the disk to fill up")

            assert client.get(f"/v1/bulk-actions/{action_id}").status_code == 200
            assert client.get("/v1/bulk-actions").status_code == 200
            # About 1 MB: more than the space left, so its spool file cannot be written.
            records = [{"email": f"new{n}@example.com", "first_name": "N" * 20} for n in range(20_000)]
            refused = client.post(
                "/v1/bulk-actions", json={"entity": "contact", "action": "insert", "records": records}
            )
            assert refused.status_code == 503, refused.text
            assert refused.headers["content-type"] == "application/problem+json"
            assert int(refused.headers["Retry-After"]) > 0

            subprocess.run(["mount", "-o", "remount,size=1g", str(small_disk)], check=True)
            done = wait_finished(client, action_id, timeout=180)
            assert done["status"] == "COMPLETED"
            counts = done["counts"]
            assert (counts["succeeded"], counts["failed"], counts["skipped"]) == (
                expected.valid,
                expected.invalid,
                expected.duplicates,
            )
            again = client.post(
                "/v1/bulk-actions", json={"entity": "contact", "action": "insert", "records": [{"email": "late@x.com"}]}
            )
            assert again.status_code == 202, again.text
    finally:
        server.stop()
    log = (data / "serve.log").read_text()
    assert "Traceback" not in log, log[log.find("Traceback") - 500 :][:3000]
    assert len(log.splitlines()) < 40, log[-3000:]
