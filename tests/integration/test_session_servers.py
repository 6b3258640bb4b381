"""The servers this very session runs against are the ones its machine allows
(tests/servers.py): here, with no Docker engine, nx-27017 and the local servers."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.integration.production_stack import (
    LOCAL_POSTGRES,
    LOCAL_RABBITMQ,
    POSTGRES,
    RABBITMQ,
    _postgres_unreachable,
    _rabbitmq_unreachable,
)
from tests.mongo_server import MONGODB, session_replica_set
from tests.servers import Store, docker_engine_error

pytestmark = pytest.mark.integration


def test_the_session_runs_mongodb_tests_on_the_server_its_machine_allows() -> None:
    server = MONGODB.get()
    if os.environ.get("BULK_MONGODB_URI"):
        assert server.label.startswith("BULK_MONGODB_URI")
    elif docker_engine_error() is None:
        assert server.label == "mongo:7 container (replica set rs0)"
        assert session_replica_set() == "rs0"
    else:
        assert server.label.startswith("nx-27017 ")
        assert session_replica_set() is None  # nx-27017 answers `hello` as a standalone server


@pytest.mark.parametrize(
    ("store", "variable", "local", "unreachable", "container"),
    [
        (POSTGRES, "BULK_TEST_POSTGRES", LOCAL_POSTGRES, _postgres_unreachable, "postgres:16 container"),
        (RABBITMQ, "BULK_TEST_RABBITMQ", LOCAL_RABBITMQ, _rabbitmq_unreachable, "rabbitmq:3.13 container"),
    ],
    ids=["postgresql", "rabbitmq"],
)
def test_the_session_uses_the_local_server_where_it_answers_else_a_container(
    store: Store, variable: str, local: str, unreachable: Callable[[str], str | None], container: str
) -> None:
    server = store.get()
    if os.environ.get(variable):
        assert server.label == variable
    elif unreachable(local) is None:
        assert (server.label, server.uri) == ("local server", local)
    else:
        assert server.label == container


def test_under_xdist_the_closing_summary_still_names_every_store_s_server(tmp_path: Path) -> None:
    # The tests run in pytest-xdist workers (README's test command), each choosing its
    # own servers; the controller prints the summary from what they report (tests/conftest.py).
    options = ["-n", "2", "-p", "no:cacheprovider", f"--basetemp={tmp_path / 'run'}", "-k", "test_the_session"]
    done = subprocess.run(
        [sys.executable, "-m", "pytest", *options, __file__],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0 and "3 passed" in done.stdout, done.stdout[-3000:] + done.stderr[-3000:]
    summary = done.stdout.split(" servers ")[1].splitlines()[1:]
    for name, chosen in (("MongoDB", MONGODB), ("PostgreSQL", POSTGRES), ("RabbitMQ", RABBITMQ)):
        lines = [line for line in summary if line.startswith(name + ": ")]
        assert lines, done.stdout[-3000:]
        # The servers this session chose too (nx-27017: one per worker, on ports of its own).
        assert all(f"{name}: {chosen.get().label} at " in line for line in lines), lines
