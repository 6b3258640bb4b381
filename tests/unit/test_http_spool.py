"""The spool folders: one per process, locked while it lives; a sweep removes only what
processes that are gone left, and never an input an unfinished action needs."""

from __future__ import annotations

from pathlib import Path

import pytest

from api.http.spool import LOCK_NAME, SpoolFolder, spool_path, sweep

pytestmark = pytest.mark.unit


def abandoned(root: Path, *names: str) -> Path:
    """A folder as a killed server leaves it: its lock file, free, and its files."""
    folder = root / f"gone-{len(list(root.glob('gone-*')))}"
    folder.mkdir(parents=True)
    (folder / LOCK_NAME).touch()
    for name in names:
        (folder / name).write_bytes(b"x")
    return folder


def test_a_sweep_removes_what_gone_processes_left_but_the_inputs_still_needed(tmp_path: Path) -> None:
    root = tmp_path / "spool"
    cut_off = abandoned(root, "a.upload", "b.json")
    queueing = abandoned(root, "needed.upload", "c.jsonl")
    assert sweep(root, lambda: [queueing / "needed.upload"]) == 3
    assert not cut_off.exists()
    assert sorted(p.name for p in queueing.iterdir()) == sorted([LOCK_NAME, "needed.upload"])


def test_a_sweep_never_touches_the_folder_of_a_live_process(tmp_path: Path) -> None:
    live = SpoolFolder(tmp_path)
    uploading = spool_path(live.path, "upload")
    uploading.write_bytes(b"half an upload")
    asked: list[bool] = []
    assert sweep(tmp_path / "spool", lambda: asked.append(True) or []) == 0
    assert uploading.exists()
    assert asked == []  # no folder to sweep: the stores are not even asked
    live.close()


def test_a_released_folder_is_removed_when_empty_and_swept_later_otherwise(tmp_path: Path) -> None:
    first = SpoolFolder(tmp_path)
    empty = first.path
    first.close()
    assert not empty.exists()
    second = SpoolFolder(tmp_path)
    left = spool_path(second.path, "upload")
    left.write_bytes(b"x")
    second.close()  # as at shutdown, with an input still waiting to be stored
    assert left.exists()
    assert sweep(tmp_path / "spool", lambda: []) == 1
    assert not (tmp_path / "spool").exists() or not any((tmp_path / "spool").iterdir())


def test_a_folder_in_use_again_after_close_is_a_new_one(tmp_path: Path) -> None:
    folder = SpoolFolder(tmp_path)
    before = folder.path
    folder.close()
    after = folder.path
    assert after != before and after.is_dir()
    folder.close()
