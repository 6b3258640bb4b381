"""Which PostgreSQL errors are infrastructure faults (see application.faults): the
server unreachable or restarting, a connection dropped, no pooled connection in time."""

from __future__ import annotations

import psycopg
from psycopg_pool import PoolTimeout


def is_transient(exc: BaseException) -> bool:
    return isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError | PoolTimeout)
