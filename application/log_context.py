"""What a log line is about: the action and chunk in hand on this thread.

Set where work on a chunk (or an action's input) starts; a log formatter that wants
them (``BULK_LOG_FORMAT=json``) reads them from here, so no log call has to pass them.
Context variables: each thread (each worker consumer) has its own.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar
from uuid import UUID

_action_id: ContextVar[str | None] = ContextVar("action_id", default=None)
_chunk_no: ContextVar[int | None] = ContextVar("chunk_no", default=None)


@contextlib.contextmanager
def working_on(action_id: UUID | str, chunk_no: int | None = None) -> Iterator[None]:
    action_token = _action_id.set(str(action_id))
    chunk_token = _chunk_no.set(chunk_no)
    try:
        yield
    finally:
        _chunk_no.reset(chunk_token)
        _action_id.reset(action_token)


def current() -> tuple[str | None, int | None]:
    """(action id, chunk number) of the work in hand, None where there is none."""
    return _action_id.get(), _chunk_no.get()
