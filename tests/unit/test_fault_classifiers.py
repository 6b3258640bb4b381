"""Each technology's classifier tells infrastructure faults (retry the work) from
everything else (a record's own problem, or a bug), on the libraries' real exceptions."""

from __future__ import annotations

import errno
import sqlite3

import pika.exceptions
import psycopg
import pytest
from eventsourcing.persistence import IntegrityError, OperationalError
from psycopg_pool import PoolTimeout
from pymongo.errors import AutoReconnect, DuplicateKeyError, OperationFailure, ServerSelectionTimeoutError

from application.faults import StoreUnavailableError, any_of, is_transient_os_error
from infrastructure.bootstrap import fault_policy
from infrastructure.events import faults as event_faults
from infrastructure.mongo import faults as mongo_faults
from infrastructure.postgres import faults as postgres_faults
from infrastructure.rabbitmq import faults as rabbitmq_faults
from infrastructure.settings import Settings
from infrastructure.sqlite import faults as sqlite_faults

pytestmark = pytest.mark.unit


def _raised_from(outer: Exception, inner: Exception) -> Exception:
    try:
        try:
            raise inner
        except Exception as exc:
            raise outer from exc
    except Exception as wrapped:
        return wrapped


@pytest.mark.parametrize(
    ("classify", "exc", "transient"),
    [
        (sqlite_faults.is_transient, sqlite3.OperationalError("database or disk is full"), True),
        (sqlite_faults.is_transient, sqlite3.OperationalError("database is locked"), True),
        (sqlite_faults.is_transient, sqlite3.IntegrityError("UNIQUE constraint failed"), False),
        (event_faults.is_transient, OperationalError("disk I/O error"), True),
        (event_faults.is_transient, IntegrityError("version taken"), False),
        (postgres_faults.is_transient, psycopg.OperationalError("server closed the connection"), True),
        (postgres_faults.is_transient, PoolTimeout("no connection"), True),
        (postgres_faults.is_transient, psycopg.errors.UniqueViolation("duplicate key"), False),
        (mongo_faults.is_transient, AutoReconnect("connection reset"), True),
        (mongo_faults.is_transient, ServerSelectionTimeoutError("no servers"), True),
        (mongo_faults.is_transient, DuplicateKeyError("E11000"), False),
        (mongo_faults.is_transient, OperationFailure("bad query", code=2), False),
        (rabbitmq_faults.is_transient, pika.exceptions.StreamLostError("lost"), True),
        (rabbitmq_faults.is_transient, pika.exceptions.AMQPConnectionError("refused"), True),
        (rabbitmq_faults.is_transient, pika.exceptions.NackError([]), True),
        (rabbitmq_faults.is_transient, ValueError("x"), False),
        (is_transient_os_error, OSError(errno.ENOSPC, "No space left on device"), True),
        (is_transient_os_error, FileNotFoundError(errno.ENOENT, "gone"), False),
    ],
)
def test_each_classifier_knows_its_librarys_faults(classify: object, exc: Exception, transient: bool) -> None:
    assert callable(classify)
    assert classify(exc) is transient


def test_the_composed_classifier_looks_through_wrapping_and_knows_only_the_chosen_technologies() -> None:
    embedded = fault_policy(Settings()).is_infrastructure
    production = fault_policy(
        Settings(event_store="postgres", document_store="mongodb", transport="rabbitmq")
    ).is_infrastructure
    wrapped_full_disk = _raised_from(OperationalError("wrapped"), sqlite3.OperationalError("database or disk is full"))
    assert embedded(wrapped_full_disk) and embedded(StoreUnavailableError("down"))
    assert not embedded(AutoReconnect("mongo is not in use here"))
    assert production(AutoReconnect("down")) and production(pika.exceptions.StreamLostError("lost"))
    assert not production(ValueError("a bug")) and not production(KeyError("a bug"))
    assert any_of()(StoreUnavailableError("raised by our own code"))
