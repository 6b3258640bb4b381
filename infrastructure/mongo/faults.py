"""Which MongoDB errors are infrastructure faults (see application.faults): no server
to talk to, a dropped connection, a timeout, a primary stepping down, or an error the
server labels retryable. A duplicate key is a decision the stores make themselves."""

from __future__ import annotations

from pymongo.errors import ConnectionFailure, ExecutionTimeout, PyMongoError, WriteConcernError

_RETRYABLE_LABELS = ("RetryableWriteError", "TransientTransactionError")


def is_transient(exc: BaseException) -> bool:
    if isinstance(exc, ConnectionFailure | ExecutionTimeout | WriteConcernError):
        return True
    return isinstance(exc, PyMongoError) and any(exc.has_error_label(label) for label in _RETRYABLE_LABELS)
