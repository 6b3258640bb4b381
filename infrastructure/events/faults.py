"""Which event store errors are infrastructure faults (see application.faults).

The eventsourcing library wraps its drivers' errors in its own classes: an
``OperationalError`` or ``InterfaceError`` is a database that cannot be used now;
an ``IntegrityError`` is a version already stored, which the application decides on.
"""

from __future__ import annotations

from eventsourcing.persistence import InterfaceError, OperationalError


def is_transient(exc: BaseException) -> bool:
    return isinstance(exc, OperationalError | InterfaceError)
