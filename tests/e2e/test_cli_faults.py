"""Infrastructure faults on the embedded default, as they happen: a disk that fills up
under an import. Nothing is lost and nothing is made up: the import waits, says so
once, and ends with the counts of a clean run once there is space again."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from infrastructure.files.sample import write_contacts_csv
from tests.e2e.cli import bulkactions, command, import_args
from tests.waiting import wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A real filesystem of a few MB (tmpfs; the tests run as root), grown on demand."""
    disk = tmp_path / "disk"
    disk.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=6m", "tmpfs", str(disk)], check=True)
    yield disk
    subprocess.run(["umount", "--lazy", str(disk)], check=True)


def _free_bytes(disk: Path) -> int:
    stat = os.statvfs(disk)
    return stat.f_bavail * stat.f_frsize


def _grow(disk: Path) -> None:
    subprocess.run(["mount", "-o", "remount,size=1g", str(disk)], check=True)


def test_a_disk_that_fills_up_during_an_import_is_waited_out_and_the_counts_are_exact(
    tmp_path: Path, small_disk: Path
) -> None:
    source = tmp_path / "contacts.csv"
    expected = write_contacts_csv(source, 20_000)
    data, errors = small_disk / "data", tmp_path / "stderr.log"
    with errors.open("wb") as stderr:
        importing = subprocess.Popen(
            command(data, *import_args(source, "--batch-size", "500")), stdout=subprocess.PIPE, stderr=stderr
        )
        try:
            wait_for(lambda: _free_bytes(small_disk) < 64 * 1024, timeout=120, what="the disk to fill up")
            wait_for(errors.read_bytes, timeout=60, what="a word about the full disk")
            _grow(small_disk)
            out, _ = importing.communicate(timeout=240)
        finally:
            importing.kill()
    assert importing.returncode == 0, errors.read_text()[-3000:]
    summary = json.loads(out.decode().splitlines()[-1])
    assert (summary["status"], summary["succeeded"], summary["failed"], summary["skipped"]) == (
        "COMPLETED",
        expected.valid,
        expected.invalid,
        expected.duplicates,
    )
    failed = [json.loads(line) for line in bulkactions(data, "logs", summary["action_id"], "--outcome", "failed").lines]
    assert not [line for line in failed if any(e["code"] == "system_error" for e in line["errors"])]
    # One line when the fault starts and one when it ends, per place that waited: not one per record.
    assert len(errors.read_text().splitlines()) < 40, errors.read_text()[-3000:]
    assert bulkactions(data, "verify").code == 0
