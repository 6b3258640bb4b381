"""The operator's dashboard: ``GET /ui``, a static page with its script and style.

The page asks for an API key, keeps it in the browser tab's session storage only, and
reads the same endpoints as any client (the key in the Authorization header, never in
a URL): the action list, the progress stream, the logs and the results CSVs. No build
step and nothing from another origin: the files are package data (``api/http/ui/``),
read once, and the Content-Security-Policy lets the page load only this server's
script and style and talk only to this server.
"""

from __future__ import annotations

import functools
from importlib import resources

from fastapi import APIRouter
from fastapi.responses import Response

from api.http.problems import not_found

router = APIRouter(tags=["dashboard"], include_in_schema=False)
_MEDIA_TYPES = {
    "index.html": "text/html; charset=utf-8",
    "app.js": "text/javascript; charset=utf-8",
    "app.css": "text/css; charset=utf-8",
}
_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self';"
        " img-src 'self' data:; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    ),
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-cache",
}


@router.get("/ui")
def dashboard() -> Response:
    """The dashboard page (log in with an API key, then the account's actions)."""
    return _file("index.html")


@router.get("/ui/{name}")
def dashboard_asset(name: str) -> Response:
    """The page's script and style sheet."""
    if name not in _MEDIA_TYPES or name == "index.html":
        raise not_found(f"dashboard file {name!r}")
    return _file(name)


def _file(name: str) -> Response:
    return Response(_content(name), media_type=_MEDIA_TYPES[name], headers=_HEADERS)


@functools.cache
def _content(name: str) -> bytes:
    return resources.files("api.http").joinpath("ui", name).read_bytes()
