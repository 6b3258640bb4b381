"""RFC 9457 problem details: every error the API answers is application/problem+json.

Domain and application errors are mapped to statuses here and nowhere else.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from application.event_store import ActionNotFoundError
from application.faults import FaultPolicy
from application.ports.inputs import InputError
from application.ports.quotas import QuotaExceededError
from application.queries import InvalidCursorError, InvalidInstantError, RowBeyondTotalError, RowNotFoundError
from application.retry import RetryRowsError
from application.submission import IdempotencyKeyReusedError, InvalidCommandError
from application.webhooks import CallbackUrlError
from domain.errors import (
    ActionAlreadyFinishedError,
    ActionNotFinishedError,
    AlreadyRetriedError,
    AlreadyRevertedError,
    CannotRetryError,
    CannotRevertError,
    DomainError,
)

log = logging.getLogger(__name__)
PROBLEM_TYPE = "application/problem+json"
_TYPE_BASE = "https://bulk-actions.example/problems/"


class ProblemBody(BaseModel):
    """An RFC 9457 problem: ``type`` names the kind, ``detail`` says what happened."""

    model_config = ConfigDict(extra="allow")
    type: str
    title: str
    status: int
    detail: str
    instance: str | None = None


class ProblemError(Exception):
    def __init__(
        self,
        status: int,
        kind: str,
        title: str,
        detail: str,
        *,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        self.status, self.kind, self.title, self.detail = status, kind, title, detail
        self.headers = headers or {}
        self.extra = extra


def not_found(what: str) -> ProblemError:
    return ProblemError(404, "not-found", "Not Found", f"no {what}")


def problem_body(problem: ProblemError, instance: str | None = None) -> dict[str, Any]:
    """The problem as JSON; ``instance`` is the request's path when it is known."""
    body: dict[str, Any] = {
        "type": _TYPE_BASE + problem.kind,
        "title": problem.title,
        "status": problem.status,
        "detail": problem.detail,
    }
    if instance is not None:
        body["instance"] = instance
    return body | problem.extra


def problem_response(request: Request, problem: ProblemError) -> JSONResponse:
    body = problem_body(problem, request.url.path)
    return JSONResponse(body, status_code=problem.status, headers=problem.headers, media_type=PROBLEM_TYPE)


def _validation_detail(exc: RequestValidationError) -> tuple[str, list[dict[str, Any]]]:
    errors = []
    for err in exc.errors():
        where = ".".join(str(part) for part in err.get("loc", ()))
        errors.append({"location": where, "message": err.get("msg", ""), "code": err.get("type", "")})
    first = errors[0] if errors else {"location": "request", "message": "invalid"}
    return f"{first['location']}: {first['message']}", errors


# A store that cannot be written now (full disk, database down): when to try again.
RETRY_AFTER_UNAVAILABLE_SECONDS = 30


# Refusals that depend on the state an action is in: 409, each its own problem type.
_CONFLICTS: tuple[tuple[type[DomainError], str], ...] = (
    (ActionAlreadyFinishedError, "action-finished"),
    (ActionNotFinishedError, "action-not-finished"),
    (AlreadyRevertedError, "already-reverted"),
    (CannotRevertError, "cannot-revert"),
    (AlreadyRetriedError, "already-retried"),
    (CannotRetryError, "cannot-retry"),
)


def install(app: FastAPI, faults: FaultPolicy) -> None:
    """Map every error to a problem: an infrastructure fault is a 503 (try again
    later, logged once per episode), anything else unexpected a 500, never a 200."""

    @app.exception_handler(ProblemError)
    async def on_problem(request: Request, exc: ProblemError) -> JSONResponse:
        return problem_response(request, exc)

    @app.exception_handler(RequestValidationError)
    async def on_invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        detail, errors = _validation_detail(exc)
        return problem_response(request, ProblemError(422, "invalid-request", "Invalid Request", detail, errors=errors))

    @app.exception_handler(StarletteHTTPException)
    async def on_http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        kind = "not-found" if exc.status_code == 404 else "http-error"
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            headers["Allow"] = ", ".join(_allowed_methods(request))
        return problem_response(
            request,
            ProblemError(exc.status_code, kind, _title(exc.status_code), str(exc.detail), headers=headers),
        )

    @app.exception_handler(InputError)
    async def on_input(request: Request, exc: InputError) -> JSONResponse:
        return problem_response(request, ProblemError(422, "invalid-input", "Invalid Input", str(exc)))

    @app.exception_handler(DomainError)
    async def on_domain(request: Request, exc: DomainError) -> JSONResponse:
        conflict = next((kind for error, kind in _CONFLICTS if isinstance(exc, error)), None)
        if conflict is not None:
            return problem_response(request, ProblemError(409, conflict, "Conflict", str(exc)))
        return problem_response(request, ProblemError(422, "invalid-command", "Invalid Command", str(exc)))

    @app.exception_handler(InvalidCommandError)
    async def on_invalid_command(request: Request, exc: InvalidCommandError) -> JSONResponse:
        if isinstance(exc, RetryRowsError):
            return problem_response(request, ProblemError(400, "rows-not-failed", "Bad Request", str(exc)))
        if isinstance(exc, IdempotencyKeyReusedError):
            return problem_response(
                request, ProblemError(422, "idempotency-key-reused", "Idempotency Key Reused", str(exc))
            )
        return problem_response(request, ProblemError(422, "invalid-request", "Invalid Request", str(exc)))

    @app.exception_handler(CallbackUrlError)
    async def on_callback_url(request: Request, exc: CallbackUrlError) -> JSONResponse:
        return problem_response(request, ProblemError(422, "invalid-callback-url", "Invalid Callback URL", str(exc)))

    @app.exception_handler(QuotaExceededError)
    async def on_quota(request: Request, exc: QuotaExceededError) -> JSONResponse:
        return problem_response(request, quota_problem(exc))

    @app.exception_handler(ActionNotFoundError)
    async def on_missing(request: Request, exc: ActionNotFoundError) -> JSONResponse:
        return problem_response(request, not_found(f"action {exc.action_id}"))

    @app.exception_handler(RowNotFoundError)
    async def on_missing_row(request: Request, exc: RowNotFoundError) -> JSONResponse:
        if isinstance(exc, RowBeyondTotalError):
            return problem_response(
                request, not_found(f"row {exc.row}: action {exc.action_id} has {exc.total} records")
            )
        return problem_response(request, not_found(f"row {exc.row} of action {exc.action_id} (not stored yet)"))

    @app.exception_handler(InvalidCursorError)
    async def on_cursor(request: Request, exc: InvalidCursorError) -> JSONResponse:
        return problem_response(request, ProblemError(400, "invalid-cursor", "Bad Request", str(exc)))

    @app.exception_handler(InvalidInstantError)
    async def on_instant(request: Request, exc: InvalidInstantError) -> JSONResponse:
        return problem_response(request, ProblemError(422, "invalid-request", "Invalid Request", str(exc)))

    @app.exception_handler(Exception)
    async def on_error(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        problem = ProblemError(500, "internal-error", "Internal Server Error", "the server failed; nothing was lost")
        return problem_response(request, problem)


UNAVAILABLE = "API requests"


class FaultTranslatingRoute(APIRoute):
    """Routes whose infrastructure faults (a full disk, a store down) are answered as a
    503 problem, logged once per episode. Translated here, inside the route, because
    Starlette re-raises (and logs with a traceback) whatever reaches its 500 handler."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()

        async def translated(request: Request) -> Response:
            faults: FaultPolicy = request.app.state.api.services.faults
            try:
                response = await handle(request)
            except Exception as exc:
                if not faults.is_infrastructure(exc):
                    raise
                faults.episodes.failed(UNAVAILABLE, exc)
                raise unavailable() from exc
            if request.method != "GET":
                faults.episodes.recovered(UNAVAILABLE)
            return response

        return translated


def unavailable() -> ProblemError:
    return ProblemError(
        503,
        "service-unavailable",
        "Service Unavailable",
        "the request could not be stored now (a store is unavailable or full); nothing was created, try again later",
        headers={"Retry-After": str(RETRY_AFTER_UNAVAILABLE_SECONDS)},
    )


def _allowed_methods(request: Request) -> list[str]:
    """Every method some route takes at this path (Starlette names only the first route's)."""
    methods: set[str] = set()
    for route in request.app.router.routes:
        match, _ = route.matches(request.scope)
        if match is not Match.NONE:
            methods |= set(getattr(route, "methods", None) or ())
    return sorted(methods - {"HEAD"})


def quota_problem(exc: QuotaExceededError) -> ProblemError:
    """429; with ``Retry-After`` only when waiting can help (not for a request that
    alone is larger than the limit)."""
    retry = {} if exc.retry_after_seconds is None else {"Retry-After": str(exc.retry_after_seconds)}
    return ProblemError(429, "quota-exceeded", "Too Many Requests", exc.detail, limit=exc.limit, headers=retry)


def _title(status: int) -> str:
    from http import HTTPStatus

    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {
        "description": text,
        "content": {PROBLEM_TYPE: {"schema": {"$ref": "#/components/schemas/ProblemBody"}}},
    }
    for status, text in (
        (401, "Missing or unknown API key"),
        (404, "No such action for this account"),
        (422, "Invalid request"),
        (429, "A rate limit or quota is spent; see Retry-After and RateLimit headers"),
        (414, "Request target too long (see docs/api.md, Limits)"),
        (431, "Request headers too large or too many (see docs/api.md, Limits)"),
    )
}
