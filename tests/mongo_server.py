"""The MongoDB server the test session uses, and a fresh database per test.

In order (``tests/servers.py`` chooses): ``BULK_MONGODB_URI`` if set; else a
``mongo:7`` single-node replica set in a container (testcontainers), if a Docker
engine answers; else the ``nx-27017`` wire-protocol server (a dev dependency, backed
by SQLite) started as a subprocess on a free local port with its data in a temp dir,
and stopped when the session ends. If none can be had, the tests that need it fail
(``require_server``) with the reason; they are never skipped silently. The session's
summary names the server and whether it is a replica set.

nx-27017 is not MongoDB; what differs and how the adapters cope is in
``docs/mongodb-gaps.md``.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from importlib.metadata import version
from pathlib import Path

import pytest

from tests import containers
from tests.conftest import require_server
from tests.servers import (
    Candidate,
    Server,
    ServerUnavailableError,
    Stops,
    docker_engine_error,
    store,
    unset,
)
from tests.waiting import free_port

START_DEADLINE_S = 30.0


def _ping(uri: str, timeout_s: float = 2.0) -> str | None:
    """None if a server answers ``ping`` at ``uri``, else why not."""
    from pymongo import MongoClient

    client: MongoClient[dict[str, object]] = MongoClient(
        uri, serverSelectionTimeoutMS=int(timeout_s * 1000), connectTimeoutMS=int(timeout_s * 1000)
    )
    try:
        client.admin.command("ping")
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    finally:
        client.close()
    return None


# Linux: the server gets SIGTERM when the test session dies, even by SIGKILL (which
# skips every cleanup), instead of being left running. Set in a tiny launcher that then
# execs the server (the setting survives exec), not in preexec_fn (unsafe with threads).
_LAUNCHER = (
    "import ctypes, os, signal, sys\n"
    "ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG\n"
    "if os.getppid() != int(sys.argv[1]):\n"
    "    sys.exit('the test session ended before the server started')\n"
    "os.execv(sys.executable, [sys.executable, *sys.argv[2:]])\n"
)
_DIES_WITH_PARENT = (
    [sys.executable, "-c", _LAUNCHER, str(os.getpid()), "-u"] if sys.platform.startswith("linux") else [sys.executable]
)


class NxServer:
    """nx-27017 as a child process, its data in a temp dir removed on stop."""

    def __init__(self) -> None:
        self.data_dir = Path(tempfile.mkdtemp(prefix="bulk-nx27017-"))
        self.port = free_port()
        self.uri = f"mongodb://127.0.0.1:{self.port}/?directConnection=true"
        self.log_path = self.data_dir / "server.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        command = [
            *_DIES_WITH_PARENT, "-m", "nx_27017.nx_27017",
            "--host", "127.0.0.1", "--port", str(self.port),
            "--data-dir", str(self.data_dir / "db"),
            "--log-file", str(self.log_path), "--pid-file", str(self.data_dir / "server.pid"),
        ]  # fmt: skip
        with open(self.data_dir / "stdout.log", "wb") as out:
            self.process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + START_DEADLINE_S
        why = "not started"
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                code = self.process.returncode
                raise RuntimeError(f"nx-27017 exited with {code}: {self._tail()}")
            why = _ping(self.uri, timeout_s=0.5) or ""
            if not why:
                return
        self.stop()
        raise RuntimeError(f"nx-27017 did not answer within {START_DEADLINE_S:.0f}s: {why}")

    def _tail(self) -> str:
        text = ""
        for path in (self.data_dir / "stdout.log", self.log_path):
            with contextlib.suppress(OSError):
                text += path.read_text(errors="replace")[-2000:]
        return text.strip() or "(no output)"

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        shutil.rmtree(self.data_dir, ignore_errors=True)


def _given(stops: Stops) -> Server:
    uri = os.environ["BULK_MONGODB_URI"]
    why = _ping(uri, timeout_s=10)
    if why is not None:
        raise RuntimeError(f"{uri}: {why}")
    return Server(f"BULK_MONGODB_URI ({_topology(uri)})", uri)


def _nx(stops: Stops) -> Server:
    # The port is picked before the server binds it, so another socket can take it
    # first: a server that fails to start gets a new port, three tries in all.
    for attempt in range(3):
        server = NxServer()
        try:
            server.start()
            break
        except Exception:
            server.stop()
            if attempt == 2:
                raise
    stops.append(server.stop)
    return Server(f"nx-27017 {version('nx-27017')} ({_topology(server.uri)})", server.uri)


def _nx_missing() -> str | None:
    return None if importlib.util.find_spec("nx_27017") else "not installed (pip install -e '.[dev]')"


def _topology(uri: str) -> str:
    name = replica_set_name(uri)
    return "standalone" if name is None else f"replica set {name}"


def replica_set_name(uri: str) -> str | None:
    """The replica set the server at ``uri`` belongs to, or None for a standalone one."""
    from pymongo import MongoClient

    client: MongoClient[dict[str, object]] = MongoClient(uri, serverSelectionTimeoutMS=10_000)
    try:
        name = client.admin.command("hello").get("setName")
    finally:
        client.close()
    return None if name is None else str(name)


def candidates() -> list[Candidate]:
    given = os.environ.get("BULK_MONGODB_URI")
    return [
        Candidate("BULK_MONGODB_URI", unset("BULK_MONGODB_URI", given), _given, binding=True),
        Candidate(f"{containers.MONGO_IMAGE} container", docker_engine_error, containers.mongo_replica_set),
        Candidate("nx-27017", _nx_missing, _nx),
    ]


MONGODB = store("MongoDB", candidates)


def mongodb_uri() -> str:
    """The session's server URI, found or started on first use (stopped at session end)."""
    try:
        return MONGODB.get().uri
    except ServerUnavailableError as exc:
        require_server("MongoDB", str(exc))
        raise


@functools.cache
def session_replica_set() -> str | None:
    """The replica set of the session's server (None: standalone, no transactions)."""
    return replica_set_name(mongodb_uri())


def is_stand_in() -> bool:
    """Whether the session's MongoDB is nx-27017, the wire-protocol stand-in."""
    mongodb_uri()
    return MONGODB.get().label.startswith("nx-27017")


def real_mongodb_missing() -> str | None:
    """None where the session runs on a real MongoDB server, else why this test does not run."""
    if not is_stand_in():
        return None
    return (
        "needs a real MongoDB server; this session's is nx-27017, the stand-in (it runs where a Docker "
        "engine answers, for the mongo:7 container, or against BULK_MONGODB_URI)"
    )


def replica_set_missing() -> str | None:
    """None where the session's MongoDB is a replica set (isolated transactions), else why not."""
    if session_replica_set() is not None:
        return None
    if is_stand_in():
        return (
            "needs a MongoDB replica set: nx-27017 runs all clients' writes to a database in one shared "
            "SQLite transaction, so concurrent transactions are not isolated and an abort rolls back other "
            "clients' writes (docs/mongodb-gaps.md #6); runs with the mongo:7 container or BULK_MONGODB_URI"
        )
    return "needs a MongoDB replica set: this session's server is standalone (no multi-document transactions)"


def transactions_missing() -> str | None:
    """None where one writer's multi-document transactions work: a replica set, or nx-27017
    (atomic for a single writer: commit keeps, abort removes, see ``replica_set_missing``)."""
    if session_replica_set() is not None or is_stand_in():
        return None
    return "needs multi-document transactions: this session's MongoDB server is standalone (they need a replica set)"


def fresh_database(request: pytest.FixtureRequest) -> tuple[str, str]:
    """(uri, database) for the current test: the same database for every adapter the
    test builds (so several gates share storage), a new one per test, dropped after it.
    """
    uri = mongodb_uri()
    node = request.node
    name: str | None = getattr(node, "_bulk_mongo_database", None)
    if name is None:
        name = f"test_{uuid.uuid4().hex}"
        node._bulk_mongo_database = name
        request.addfinalizer(lambda: drop_database(uri, name))
    return uri, name


def drop_database(uri: str, name: str) -> None:
    from pymongo import MongoClient

    client: MongoClient[dict[str, object]] = MongoClient(uri, serverSelectionTimeoutMS=5000)
    try:
        client.drop_database(name)
    finally:
        client.close()
