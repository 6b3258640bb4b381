"""Dependencies of the routes, as ``Annotated`` aliases: the application services, the
authenticated account (API key, then the per-minute request limit), and the intake.

They are ``async``. Reading a local SQLite file takes microseconds, less than a hop
to the thread pool, so on the embedded stores the key and rate checks run on the event
loop (measured: p99 of GET /v1/bulk-actions/{id} during a large import about halves).
A network store (MongoDB) must not block the loop for a round trip: then they run in
the thread pool (``ApiState.store_io``)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.http.problems import ProblemError
from api.http.ratelimit_headers import record_decision, requests_refused
from api.http.spool import SpoolFolder
from api.input_storing import InputStoring
from application.accounts import REQUEST_WINDOW_SECONDS, Account
from application.completion import Cancellation
from application.queries import ActionQueries
from infrastructure.bootstrap import ApplicationServices

T = TypeVar("T")


KEY_CACHE_SECONDS = 10.0


@dataclass
class ApiState:
    """What the routes share: the application services, the intake, the upload cap."""

    services: ApplicationServices
    storer: InputStoring
    spool: SpoolFolder
    max_upload_bytes: int
    _known_keys: dict[str, tuple[Account, float]] = field(default_factory=dict)

    async def store_io(self, call: Callable[..., T], *args: Any) -> T:
        """Run a store call: inline on local stores, in the thread pool otherwise."""
        if self.services.local_stores:
            return call(*args)
        return await run_in_threadpool(call, *args)

    def authenticate(self, api_key: str) -> Account | None:
        """The key's account, remembered for a few seconds: clients poll, and a lookup
        per poll is wasted work (a changed limit applies within KEY_CACHE_SECONDS)."""
        now = time.monotonic()
        known = self._known_keys.get(api_key)
        if known is not None and known[1] > now:
            return known[0]
        account = self.services.accounts.authenticate(api_key)
        if account is not None:
            if len(self._known_keys) > 10_000:
                self._known_keys.clear()
            self._known_keys[api_key] = (account, now + KEY_CACHE_SECONDS)
        return account


async def api_state(request: Request) -> ApiState:
    found: ApiState = request.app.state.api
    return found


StateDep = Annotated[ApiState, Depends(api_state)]


async def queries(state: StateDep) -> ActionQueries:
    return state.services.queries


QueriesDep = Annotated[ActionQueries, Depends(queries)]


async def cancellation(state: StateDep) -> Cancellation:
    return state.services.cancellation


CancellationDep = Annotated[Cancellation, Depends(cancellation)]

bearer = HTTPBearer(auto_error=False, description="An API key from `bulkactions accounts create`")


async def current_account(
    request: Request,
    state: StateDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Account:
    """The caller's account, once its key is known and its request rate allows one more."""
    challenge = {"WWW-Authenticate": 'Bearer realm="bulk-actions"'}
    if credentials is None:
        raise ProblemError(
            401,
            "unauthenticated",
            "Unauthorized",
            "send an API key: Authorization: Bearer <key>",
            headers=challenge,
        )
    account = await state.store_io(state.authenticate, credentials.credentials)
    if account is None:
        raise ProblemError(401, "unauthenticated", "Unauthorized", "unknown API key", headers=challenge)
    decision = await state.store_io(state.services.accounts.count_request, account)
    record_decision(request, decision, REQUEST_WINDOW_SECONDS)
    if not decision.allowed:
        raise requests_refused(decision, REQUEST_WINDOW_SECONDS)
    return account


AccountDep = Annotated[Account, Depends(current_account)]


async def reject_unknown_query(request: Request) -> None:
    """A misspelt filter is refused (422), not silently ignored."""
    route = request.scope.get("route")
    dependant = getattr(route, "dependant", None)
    if dependant is None:
        return
    known = {param.alias for param in _all_query_params(dependant)}
    unknown = sorted(set(request.query_params) - known)
    if unknown:
        raise ProblemError(
            422,
            "invalid-request",
            "Invalid Request",
            f"unknown query parameter(s): {', '.join(map(repr, unknown))}"
            f" (known: {', '.join(sorted(known)) or 'none'})",
        )


def _all_query_params(dependant: Any) -> list[Any]:
    found = list(dependant.query_params)
    for sub in dependant.dependencies:
        found += _all_query_params(sub)
    return found
