"""Shared test configuration.

Servers are chosen once per session by ``tests/servers.py`` (an override, a local
server, a container where a Docker engine answers, or nx-27017 for MongoDB), and the
session's summary names them. A suite whose server is missing fails with a clear
message instead of being skipped, unless BULK_TEST_ALLOW_MISSING=1 is set on a
developer machine.
"""

from __future__ import annotations

import os
from typing import Any

import pytest

from tests import servers

ALLOW_MISSING = os.environ.get("BULK_TEST_ALLOW_MISSING") == "1"


def require_server(name: str, reason: str) -> None:
    message = f"{name} is not reachable: {reason}"
    if ALLOW_MISSING:
        pytest.skip(message)
    pytest.fail(message + " (set BULK_TEST_ALLOW_MISSING=1 to skip locally)", pytrace=False)


def pytest_report_header(config: pytest.Config) -> str:
    return servers.header_line()


# Under pytest-xdist the tests run in worker processes, each choosing its own servers;
# the controller, which prints the summary, hears what each chose when it finishes.
_WORKERS: dict[str, dict[str, str]] = {}


def pytest_sessionfinish(session: pytest.Session) -> None:
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:  # this is an xdist worker
        workeroutput["servers"] = servers.used()


@pytest.hookimpl(optionalhook=True)  # an xdist hook: unknown where xdist is not installed
def pytest_testnodedown(node: Any, error: object) -> None:
    output = getattr(node, "workeroutput", None) or {}
    _WORKERS[str(output.get("workerid", node.gateway.id))] = output.get("servers", {})


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Say once which server each store's tests ran against (tests/servers.py)."""
    terminalreporter.write_sep("=", "servers")
    for line in servers.summary_lines(_WORKERS):
        terminalreporter.write_line(line)


def pytest_unconfigure(config: pytest.Config) -> None:
    servers.stop_all()


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Tests marked for a real MongoDB (or a replica set) are reported as skipped, with the
    reason, where the session's server is not one; never passed without running."""
    from tests import mongo_server

    for marker, missing in (
        ("real_mongodb", mongo_server.real_mongodb_missing),
        ("mongodb_replica_set", mongo_server.replica_set_missing),
    ):
        if item.get_closest_marker(marker) is not None and (why := missing()) is not None:
            pytest.skip(why)
