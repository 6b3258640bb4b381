"""Run ``bulkactions serve`` as a real subprocess and talk to it over HTTP."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import httpx

from tests.e2e.cli import bulkactions
from tests.waiting import served_url, wait_for


def create_account(data_dir: Path, name: str, *options: str) -> str:
    run = bulkactions(data_dir, "accounts", "create", name, "--json", *options)
    assert run.code == 0, run.stderr
    key: str = run.json_last()["api_key"]
    return key


class ApiServer:
    def __init__(self, data_dir: Path, env: dict[str, str] | None = None, *, workers: int = 2) -> None:
        self.data_dir = data_dir
        self.env = {**os.environ, **(env or {})}
        self.workers = workers
        self.process: subprocess.Popen[bytes] | None = None
        self.extra_args: list[str] = []
        self._log_start = 0
        self.base_url = ""  # known once the server says where it listens

    def start(self) -> ApiServer:
        args = [
            sys.executable,
            "-m",
            "api.cli",
            "--data-dir",
            str(self.data_dir),
            "serve",
            "--port",
            "0",
            "--workers",
            str(self.workers),
            *self.extra_args,
        ]
        log_path = self.data_dir / "serve.log"
        # A restarted server appends to the same log: read only what this run writes.
        self._log_start = log_path.stat().st_size if log_path.exists() else 0
        self.base_url = ""
        log = log_path.open("ab")
        self.process = subprocess.Popen(args, env=self.env, stdout=log, stderr=log)
        wait_for(self._answers, 60, "the API")
        return self

    def _answers(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            log = (self.data_dir / "serve.log").read_text()
            raise AssertionError(f"serve exited with {self.process.returncode}:\n{log[-3000:]}")
        if not self.base_url:
            with (self.data_dir / "serve.log").open("rb") as log:
                log.seek(self._log_start)
                self.base_url = served_url(log.read().decode(errors="replace")) or ""
            if not self.base_url:
                return False
        try:
            # Ready, not only listening: the runtime has swept the spool folders of gone
            # processes (a test that kills the server before that races the sweep).
            return httpx.get(self.base_url + "/readyz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def client(self, api_key: str | None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        return httpx.Client(base_url=self.base_url, headers=headers, timeout=60)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait()


def wait_finished(client: httpx.Client, action_id: str, timeout: float = 120) -> dict[str, Any]:
    def finished() -> dict[str, Any] | None:
        body: dict[str, Any] = client.get(f"/v1/bulk-actions/{action_id}").json()
        return body if body["status"] in ("COMPLETED", "CANCELLED") else None

    found: dict[str, Any] = wait_for(finished, timeout, f"action {action_id} to finish")
    return found


def fresh_window() -> None:
    """Start where at least 20 s of the current minute window are left (no flaky rollover)."""
    left = 60 - int(time.time()) % 60
    if left < 20:
        time.sleep(left + 0.2)


def spool_files(data_dir: Path) -> list[Path]:
    """Inputs waiting on disk: every file under the spool folder but the servers' locks."""
    spool = data_dir / "spool"
    return [p for p in spool.rglob("*") if p.is_file() and p.name != "serve.lock"] if spool.exists() else []


def spool_is_empty(data_dir: Path, timeout: float = 15) -> bool:
    """No input left on disk (each is removed once stored as events, or refused)."""
    return bool(wait_for(lambda: not spool_files(data_dir), timeout, "the spool folder to be empty"))


def descendants(pid: int) -> list[int]:
    """Every process below ``pid``: the children of each of its threads (a process
    started from a thread is listed under that thread only), and theirs."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            children = (task / "children").read_text().split()
        except OSError:
            continue  # the thread ended meanwhile
        for child in children:
            found += [int(child), *descendants(int(child))]
    return found


@contextmanager
def runtime_in_bursts(server: ApiServer, running: float = 0.25, paused: float = 0.75) -> Iterator[None]:
    """The runtime (workers, projector: every descendant of ``serve``) let run for
    ``running`` seconds in every ``running + paused``: an import then takes several
    seconds on any machine, so a test that watches one while it runs (progress stream,
    dashboard) sees it running even where 10,000 rows take one second."""
    assert server.process is not None
    helpers = descendants(server.process.pid)
    done = threading.Event()

    def signal_all(sig: signal.Signals) -> None:
        for pid in helpers:
            with suppress(ProcessLookupError):
                os.kill(pid, sig)

    def toggle() -> None:
        while not done.is_set():
            signal_all(signal.SIGCONT)
            done.wait(running)
            if not done.is_set():
                signal_all(signal.SIGSTOP)
                done.wait(paused)

    toggler = threading.Thread(target=toggle, daemon=True)
    toggler.start()
    try:
        yield
    finally:
        done.set()
        toggler.join()
        signal_all(signal.SIGCONT)
