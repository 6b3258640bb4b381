"""Shared test configuration.

Servers: PostgreSQL and RabbitMQ must answer where their suites run (``.ci/run``
starts them); a suite whose server is missing fails with a clear message instead of
being skipped, unless BULK_TEST_ALLOW_MISSING=1 is set on a developer machine.
"""

from __future__ import annotations

import os

import pytest

ALLOW_MISSING = os.environ.get("BULK_TEST_ALLOW_MISSING") == "1"


def require_server(name: str, reason: str) -> None:
    message = f"{name} is not reachable: {reason}"
    if ALLOW_MISSING:
        pytest.skip(message)
    pytest.fail(message + " (set BULK_TEST_ALLOW_MISSING=1 to skip locally)", pytrace=False)
