"""Where request bodies wait on disk: ``<data_dir>/spool/<run>/``, one folder per API
process, held under an exclusive lock (flock) for as long as the process lives.

Why a folder per process: a spool file is needed while its upload arrives, while the
request checks it, and, once the action exists, until its input is stored as chunks.
A server killed at any of those moments leaves files behind, and so does a client
gone mid-upload when the server dies before noticing. At start a server removes, in
the folders of processes that are gone (their lock is free), every file that no
unfinished action needs (``sweep``); the folder of a process still running (another
replica on the same data dir) is never touched, whatever its files' age.
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
from collections.abc import AsyncIterator, Callable, Iterable
from pathlib import Path
from uuid import uuid4

from api.http.problems import ProblemError

log = logging.getLogger(__name__)
LOCK_NAME = "serve.lock"


def too_large(cap: int) -> ProblemError:
    return ProblemError(413, "too-large", "Content Too Large", f"the request body is larger than {cap} bytes")


def spool_path(folder: Path, suffix: str) -> Path:
    """A new file name in ``folder`` (a process's spool folder)."""
    return folder / f"{uuid4().hex}.{suffix}"


async def spool_capped(chunks: AsyncIterator[bytes], path: Path, cap: int) -> None:
    """A request body written to ``path`` as it arrives, refused with 413 (and the file
    removed) as soon as it passes the cap."""
    size = 0
    try:
        with path.open("wb") as out:
            async for chunk in chunks:
                size += len(chunk)
                if size > cap:
                    raise too_large(cap)
                out.write(chunk)
    except BaseException:
        path.unlink(missing_ok=True)
        raise


class SpoolFolder:
    """This process's spool folder: made and locked when first needed, until ``close``
    (a later use makes a new one)."""

    def __init__(self, data_dir: Path) -> None:
        self.root = data_dir / "spool"
        self._held: tuple[Path, int] | None = None
        self._guard = threading.Lock()

    @property
    def path(self) -> Path:
        with self._guard:
            if self._held is None:
                self._held = _claim(self.root)
            return self._held[0]

    def close(self) -> None:
        """Release the folder; it is removed if nothing in it is still needed."""
        with self._guard:
            held, self._held = self._held, None
        if held is None:
            return
        folder, lock = held
        if [p.name for p in folder.iterdir()] == [LOCK_NAME]:
            (folder / LOCK_NAME).unlink()
            folder.rmdir()
        os.close(lock)


def _claim(root: Path) -> tuple[Path, int]:
    """A new folder, locked. A sweep may remove a folder between its creation and the
    lock: then the lock holds a file no longer linked, and another folder is made."""
    while True:
        folder = root / uuid4().hex
        folder.mkdir(parents=True)
        lock = os.open(folder / LOCK_NAME, os.O_CREAT | os.O_RDWR, 0o600)
        if _locked(lock) and _still_linked(lock, folder / LOCK_NAME):
            return folder, lock
        os.close(lock)


def sweep(root: Path, needed: Callable[[], Iterable[Path]]) -> int:
    """Remove the files of processes that are gone, but the inputs ``needed()`` names
    (those of unfinished actions). Returns how many were removed.

    The folders are locked before ``needed()`` is asked: from then on no action that
    could need their files can be created (their processes are gone), so what it
    answers is final for them."""
    locks = _lock_abandoned(root)
    if not locks:
        return 0
    try:
        keep = {path.resolve() for path in needed()}
        removed = sum(_remove_unneeded(folder, keep) for folder in locks)
    finally:
        for lock in locks.values():
            os.close(lock)
    if removed:
        log.warning("removed %d spool file(s) that no unfinished action needs", removed)
    return removed


def _lock_abandoned(root: Path) -> dict[Path, int]:
    """The folders whose process is gone, each with its lock, now held here."""
    held: dict[Path, int] = {}
    for folder in sorted(root.iterdir()) if root.is_dir() else []:
        try:
            lock = os.open(folder / LOCK_NAME, os.O_RDWR)
        except (FileNotFoundError, NotADirectoryError):  # not a folder, or its lock not made yet
            continue
        if _locked(lock) and _still_linked(lock, folder / LOCK_NAME):
            held[folder] = lock
        else:  # its process is alive (or another server is sweeping it)
            os.close(lock)
    return held


def _remove_unneeded(folder: Path, keep: set[Path]) -> int:
    stale = [p for p in folder.iterdir() if p.name != LOCK_NAME and p.resolve() not in keep]
    for path in stale:
        path.unlink(missing_ok=True)
    if [p.name for p in folder.iterdir()] == [LOCK_NAME]:
        (folder / LOCK_NAME).unlink()
        folder.rmdir()
    return len(stale)


def _locked(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _still_linked(fd: int, path: Path) -> bool:
    try:
        return os.stat(path).st_ino == os.fstat(fd).st_ino
    except FileNotFoundError:
        return False
