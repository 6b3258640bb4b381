"""Test helpers shared by every suite: wait on a condition with a deadline, run one
function in many threads at once, pick a free port, find where a ``bulkactions
serve`` started with ``--port 0`` listens."""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any


def wait_for(condition: Callable[[], Any], timeout: float, what: str, interval: float = 0.05) -> Any:
    """Poll ``condition`` until it returns something truthy, or fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        found = condition()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def run_in_threads(target: Callable[..., object], arguments: Iterable[tuple[Any, ...]], timeout: float = 120) -> None:
    """Call ``target`` once per argument tuple, each in its own thread, all started
    before any is waited for; fail if one is still running after ``timeout``."""
    threads = [threading.Thread(target=target, args=args) for args in arguments]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)
        assert not thread.is_alive(), f"a thread of {target.__name__} still runs after {timeout}s"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


SERVING = re.compile(r"serving on (http://\S+)")


def served_url(log: str) -> str | None:
    """The base URL ``bulkactions serve`` printed once it was listening, if it has yet.
    Servers are started with ``--port 0`` and read back: a port picked here and passed
    in can be taken by another socket before the server binds it."""
    found = SERVING.search(log)
    return found.group(1) if found else None
