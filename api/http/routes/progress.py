"""Live progress of one action as Server-Sent Events (``text/event-stream``).

A ``progress`` event with the action as GET detail shows it (the same read model, the
same ``ActionPublic``) when it has changed, read at most every ``INTERVAL_SECONDS``;
then one ``final`` event with the final status and counts, and the stream ends. Auth
and tenancy are those of every endpoint, checked before the stream starts: 401 without
a key, 404 for an action of another account.

Why sse-starlette and not a plain ``StreamingResponse``: the event format is a few
lines either way, but an open stream must not hold ``serve``'s shutdown (uvicorn waits
for every open response; sse-starlette ends its streams when uvicorn is told to exit),
and a proxy must not drop an idle stream (it sends a keep-alive comment every 15 s).
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Awaitable, Callable

import anyio
from fastapi import APIRouter
from sse_starlette import EventSourceResponse, ServerSentEvent

from api.http.deps import AccountDep, QueriesDep, StateDep
from api.http.problems import PROBLEM_RESPONSES, UNAVAILABLE, FaultTranslatingRoute
from api.http.public import action_public, action_uuid
from application.faults import FaultPolicy
from application.ports.read_models import ActionView
from application.queries import is_final

router = APIRouter(
    prefix="/v1/bulk-actions", tags=["bulk-actions"], responses=PROBLEM_RESPONSES, route_class=FaultTranslatingRoute
)
INTERVAL_SECONDS = 0.5
RECONNECT_MILLISECONDS = 2000
_STREAM_DOC = {
    200: {
        "description": "`event: progress` with the action (as GET detail) whenever it changed, at most every"
        " 500 ms; then one `event: final` with the final status and counts, and the stream ends",
        "content": {
            "text/event-stream": {  # OpenAPI 3.1: the schema of one event
                "schema": {
                    "type": "object",
                    "required": ["event", "data"],
                    "properties": {
                        "event": {"type": "string", "enum": ["progress", "final"]},
                        "data": {
                            "type": "string",
                            "contentMediaType": "application/json",
                            "contentSchema": {"$ref": "#/components/schemas/ActionPublic"},
                        },
                    },
                }
            }
        },
    }
}


@router.get("/{action_id}/progress", response_class=EventSourceResponse, responses=_STREAM_DOC)  # type: ignore[arg-type]
async def stream_progress(
    action_id: str, account: AccountDep, state: StateDep, queries: QueriesDep
) -> EventSourceResponse:
    """Progress pushed as it happens (Server-Sent Events), until the action is finished."""
    read = functools.partial(state.store_io, queries.owned_view, account.account_id, action_uuid(action_id))
    first = await read()  # not found or not the account's: 404 before the stream starts
    shutdown = anyio.Event()  # set by sse-starlette when uvicorn is told to exit
    return EventSourceResponse(
        _events(first, read, state.services.faults, shutdown),
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        shutdown_event=shutdown,
        shutdown_grace_period=2 * INTERVAL_SECONDS,
    )


async def _events(
    view: ActionView, read: Callable[[], Awaitable[ActionView]], faults: FaultPolicy, shutdown: anyio.Event
) -> AsyncIterator[ServerSentEvent]:
    """Progress while the action runs, then the final event. On the server's shutdown
    the stream ends cleanly without it (the client reconnects, ``retry``)."""
    sent = None
    while not is_final(view.status):
        shown = action_public(view).model_dump_json()
        if shown != sent:
            yield ServerSentEvent(shown, event="progress", retry=RECONNECT_MILLISECONDS)
            sent = shown
        with anyio.move_on_after(INTERVAL_SECONDS):
            await shutdown.wait()
        if shutdown.is_set():
            return
        view = await _next(view, read, faults)
    yield ServerSentEvent(action_public(view).model_dump_json(), event="final")


async def _next(view: ActionView, read: Callable[[], Awaitable[ActionView]], faults: FaultPolicy) -> ActionView:
    """The view now; the last one read while a store is unavailable (the next tick tries
    again: the headers are sent, a 503 can no longer be answered)."""
    try:
        return await read()
    except Exception as exc:
        if not faults.is_infrastructure(exc):
            raise
        faults.episodes.failed(UNAVAILABLE, exc)
        return view
