"""Dependencies of the routes, as ``Annotated`` aliases: the container's ports, the
authenticated account (API key, then the per-minute request limit), and the intake.

They are ``async``. Reading a local SQLite file takes microseconds, less than a hop
to the thread pool, so on the embedded stores the key and rate checks run on the event
loop (measured: p99 of GET /v1/bulk-actions/{id} during a large import about halves).
A network store (MongoDB) must not block the loop for a round trip: then they run in
the thread pool (``Services.store_io``)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.http.intake import Queuer
from api.http.problems import ProblemError
from api.http.ratelimit_headers import record_decision, requests_refused
from api.http.spool import SpoolFolder
from application.accounts import Account, Accounts
from application.event_store import BulkActionLog
from application.ports.read_models import ReadModelStore
from infrastructure.bootstrap import Container

WINDOW_SECONDS = 60
T = TypeVar("T")


KEY_CACHE_SECONDS = 10.0


@dataclass
class Services:
    container: Container
    accounts: Accounts
    queuer: Queuer
    spool: SpoolFolder
    _known_keys: dict[str, tuple[Account, float]] = field(default_factory=dict)

    async def store_io(self, call: Callable[..., T], *args: Any) -> T:
        """Run a store call: inline on local SQLite, in the thread pool otherwise."""
        if self.container.settings.document_store == "sqlite":
            return call(*args)
        return await run_in_threadpool(call, *args)

    def authenticate(self, api_key: str) -> Account | None:
        """The key's account, remembered for a few seconds: clients poll, and a lookup
        per poll is wasted work (a changed limit applies within KEY_CACHE_SECONDS)."""
        now = time.monotonic()
        known = self._known_keys.get(api_key)
        if known is not None and known[1] > now:
            return known[0]
        account = self.accounts.authenticate(api_key)
        if account is not None:
            if len(self._known_keys) > 10_000:
                self._known_keys.clear()
            self._known_keys[api_key] = (account, now + KEY_CACHE_SECONDS)
        return account


async def services(request: Request) -> Services:
    found: Services = request.app.state.services
    return found


ServicesDep = Annotated[Services, Depends(services)]


async def container(svc: ServicesDep) -> Container:
    return svc.container


ContainerDep = Annotated[Container, Depends(container)]


async def read_models(c: ContainerDep) -> ReadModelStore:
    return c.read_models


ReadModelsDep = Annotated[ReadModelStore, Depends(read_models)]


async def event_log(c: ContainerDep) -> BulkActionLog:
    return c.events


EventsDep = Annotated[BulkActionLog, Depends(event_log)]

bearer = HTTPBearer(auto_error=False, description="An API key from `bulkactions accounts create`")


async def current_account(
    request: Request,
    svc: ServicesDep,
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
    account = await svc.store_io(svc.authenticate, credentials.credentials)
    if account is None:
        raise ProblemError(401, "unauthenticated", "Unauthorized", "unknown API key", headers=challenge)
    c = svc.container
    decision = await svc.store_io(
        c.rate_limiter.hit, account.account_id, account.limits.requests_per_minute, WINDOW_SECONDS, c.clock.now()
    )
    record_decision(request, decision, WINDOW_SECONDS)
    if not decision.allowed:
        raise requests_refused(decision, WINDOW_SECONDS)
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
