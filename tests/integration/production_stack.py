"""Run the production processes (relay, projector, workers) as real subprocesses.

Each ``ProductionStack`` gets its own PostgreSQL schema and RabbitMQ virtual host, so
tests (and several test runs) can share one server of each. Used by the fault tests
and by ``bench/production_import.py``.

The servers (``tests/servers.py`` chooses, once per session): ``BULK_TEST_POSTGRES`` /
``BULK_TEST_RABBITMQ`` if set; else the local servers (database ``test``, user
``postgres`` with trust; guest/guest); else a ``postgres:16`` / ``rabbitmq:3.13``
container if a Docker engine answers. The fault tests drive ``rabbitmqctl``: on this
machine, inside the container, or the command in ``BULK_TEST_RABBITMQCTL``.
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlparse

import httpx
import psycopg

from tests import containers
from tests.servers import Candidate, Server, docker_engine_error, store, unset
from tests.waiting import served_url, wait_for

LOCAL_POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"
LOCAL_RABBITMQ = "amqp://guest:guest@127.0.0.1:5672"
REPO = Path(__file__).resolve().parents[2]
BULKACTIONS = [sys.executable, "-m", "api.cli"]


def _postgres_unreachable(dsn: str) -> str | None:
    try:
        with psycopg.connect(dsn, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except Exception as exc:
        return f"{dsn}: {exc}"
    return None


def _rabbitmq_unreachable(url: str) -> str | None:
    import pika

    try:
        pika.BlockingConnection(pika.URLParameters(url + "/%2F?connection_attempts=1")).close()
    except Exception as exc:
        return f"{url}: {exc!r}"
    return None


def _reached(label: str, uri: str, unreachable: Callable[[str], str | None], **extra: Any) -> Server:
    why = unreachable(uri)
    if why is not None:
        raise RuntimeError(why)
    return Server(label, uri, **extra)


def _local_rabbitmqctl(args: Sequence[str]) -> str:
    """``rabbitmqctl`` on this machine, or the command in ``BULK_TEST_RABBITMQCTL`` (for a
    server elsewhere, e.g. ``docker exec <container> rabbitmqctl``)."""
    command = shlex.split(os.environ.get("BULK_TEST_RABBITMQCTL", "rabbitmqctl"))
    done = subprocess.run([*command, "-q", *args], capture_output=True, text=True, timeout=60, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"rabbitmqctl {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout


def _postgres_candidates() -> list[Candidate]:
    given = os.environ.get("BULK_TEST_POSTGRES")
    return [
        Candidate(
            "BULK_TEST_POSTGRES",
            unset("BULK_TEST_POSTGRES", given),
            lambda stops: _reached("BULK_TEST_POSTGRES", str(given), _postgres_unreachable),
            binding=True,
        ),
        Candidate(
            "local server",
            lambda: _postgres_unreachable(LOCAL_POSTGRES),
            lambda stops: Server("local server", LOCAL_POSTGRES),
        ),
        Candidate(f"{containers.POSTGRES_IMAGE} container", docker_engine_error, containers.postgres),
    ]


def _rabbitmq_candidates() -> list[Candidate]:
    given = os.environ.get("BULK_TEST_RABBITMQ")
    return [
        Candidate(
            "BULK_TEST_RABBITMQ",
            unset("BULK_TEST_RABBITMQ", given),
            lambda stops: _reached("BULK_TEST_RABBITMQ", str(given), _rabbitmq_unreachable, control=_local_rabbitmqctl),
            binding=True,
        ),
        Candidate(
            "local server",
            lambda: _rabbitmq_unreachable(LOCAL_RABBITMQ),
            lambda stops: Server("local server", LOCAL_RABBITMQ, _local_rabbitmqctl),
        ),
        Candidate(f"{containers.RABBITMQ_IMAGE} container", docker_engine_error, containers.rabbitmq),
    ]


POSTGRES = store("PostgreSQL", _postgres_candidates)
RABBITMQ = store("RabbitMQ", _rabbitmq_candidates)


def postgres_error() -> str | None:
    """None if the session has a PostgreSQL server (chosen on first call), else why not."""
    return POSTGRES.error()


def rabbitmq_error() -> str | None:
    """None if the session has a RabbitMQ server (chosen on first call), else why not."""
    return RABBITMQ.error()


def postgres_server() -> str:
    """The session's PostgreSQL server: a DSN of its database ``test``."""
    return POSTGRES.get().uri


def rabbitmq_server() -> str:
    """The session's RabbitMQ server: an AMQP URL without a virtual host."""
    return RABBITMQ.get().uri


def rabbitmqctl(*args: str) -> str:
    control = RABBITMQ.get().control
    assert control is not None
    return control(args)


def vhost_url(vhost: str, query: str = "") -> str:
    return f"{rabbitmq_server()}/{quote(vhost, safe='')}{query}"


def new_schema(prefix: str) -> tuple[str, str]:
    """A new, empty PostgreSQL schema: its name, and a DSN whose search_path selects it."""
    name = prefix + uuid.uuid4().hex[:10]
    with psycopg.connect(postgres_server(), autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{name}"')
    return name, schema_dsn(name)


def schema_dsn(schema: str) -> str:
    """A DSN of the session's server whose search_path selects ``schema``."""
    return f"{postgres_server()}?options=-csearch_path%3D{schema}"


def drop_schema(name: str) -> None:
    with psycopg.connect(postgres_server(), autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')


def new_vhost(prefix: str) -> str:
    """A new RabbitMQ virtual host that the guest user may use."""
    name = prefix + uuid.uuid4().hex[:10]
    rabbitmqctl("add_vhost", name)
    user = urlparse(rabbitmq_server()).username or "guest"
    rabbitmqctl("set_permissions", "-p", name, user, ".*", ".*", ".*")
    return name


def delete_vhost(name: str) -> None:
    rabbitmqctl("delete_vhost", name)


class ProductionStack:
    def __init__(self, data_dir: Path, *, delivery_limit: int = 5, prefetch: int = 2) -> None:
        self.data_dir = data_dir
        self.schema = self.dsn = self.vhost = self.amqp_url = ""  # made on __enter__
        self.delivery_limit = delivery_limit
        self.prefetch = prefetch
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.logs = data_dir / "logs"
        # Settings the processes get instead of the stack's own (a server reached
        # through a proxy, another document store); the test's own queries keep
        # going straight to the servers.
        self.overrides: dict[str, str] = {}

    def env(self, **extra: str) -> dict[str, str]:
        env = {
            **os.environ,
            "BULK_DATA_DIR": str(self.data_dir),
            "BULK_EVENT_STORE": "postgres",
            "BULK_POSTGRES_DSN": self.dsn,
            "BULK_TRANSPORT": "rabbitmq",
            "BULK_RABBITMQ_URL": self.amqp_url,
            "BULK_DELIVERY_LIMIT": str(self.delivery_limit),
            "BULK_RABBITMQ_PREFETCH": str(self.prefetch),
            "BULK_DOCUMENT_STORE": "sqlite",
            # Each process keeps its pool open: 2 (+2 on demand) is plenty for one
            # consumer, and keeps a dozen processes under max_connections=100.
            "BULK_POSTGRES_POOL_SIZE": "2",
            "BULK_LOG_LEVEL": "WARNING",
            "PYTHONPATH": str(REPO),
        }
        env.update(self.overrides)
        env.update(extra)
        return env

    def __enter__(self) -> ProductionStack:
        self.logs.mkdir(parents=True, exist_ok=True)
        self.schema, self.dsn = new_schema("bulk_t")
        self.vhost = new_vhost("bulk_t")
        self.amqp_url = vhost_url(self.vhost)
        return self

    def __exit__(self, *exc: object) -> None:
        for name in list(self.processes):
            self.kill(name)
        drop_schema(self.schema)
        delete_vhost(self.vhost)

    def start(self, name: str, *args: str, module: list[str] | None = None, **env: str) -> subprocess.Popen[bytes]:
        """Start ``bulkactions <args>`` (or another module's CLI) as process ``name``."""
        command = [*(module or BULKACTIONS), *args]
        log = (self.logs / f"{name}.log").open("ab")
        process = subprocess.Popen(command, cwd=REPO, env=self.env(**env), stdout=log, stderr=subprocess.STDOUT)
        self.processes[name] = process
        return process

    def start_api(self, **env: str) -> str:
        """Start ``bulkactions serve`` on any free port as process ``api``; its base URL
        once it answers."""
        self.start("api", "serve", "--port", "0", **env)

        def answers() -> str | None:
            assert self.processes["api"].poll() is None, self.log_text("api")
            base = served_url(self.log_text("api"))
            try:
                return base if base and httpx.get(base + "/openapi.json", timeout=1).status_code == 200 else None
            except httpx.HTTPError:
                return None

        base: str = wait_for(answers, 60, "the API")
        return base

    def kill(self, name: str, sig: int = signal.SIGKILL) -> int:
        process = self.processes.pop(name)
        if process.poll() is None:
            process.send_signal(sig)
        return process.wait(timeout=60)

    def run(self, *args: str, timeout: float = 240, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*BULKACTIONS, *args],
            cwd=REPO,
            env=self.env(**env),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def log_text(self, name: str) -> str:
        path = self.logs / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def query(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            return conn.execute(sql, params).fetchall()  # type: ignore[arg-type]

    def stored_outcomes(self) -> int:
        """Outcome events stored so far (every event of a chunk stream after ChunkQueued)."""
        try:
            rows = self.query(
                "SELECT count(*) FROM bulkactions_events WHERE topic LIKE %s",
                "domain.bulk_action:BulkChunk.Record%",
            )
        except psycopg.errors.UndefinedTable:
            return 0  # no process has created the events table yet
        return int(rows[0][0])
