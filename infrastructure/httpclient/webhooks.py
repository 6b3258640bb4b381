"""Sending a webhook delivery, and resolving a callback's host.

``http.client`` rather than a client library: one POST, no redirects followed (a
redirect to an internal address must not be taken), and the connection made to the
address that was checked (``_create_connection``), while the request keeps its host
name (``Host`` header, TLS server name and certificate check).
"""

from __future__ import annotations

import http.client
import socket
import ssl
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

from application.ports.webhooks import WebhookSendError

# Read at most this much of an answer: only its status counts.
_MAX_ANSWER_BYTES = 64 * 1024


class SocketResolver:
    def addresses(self, host: str, port: int) -> Sequence[str]:
        try:
            found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError) as exc:
            raise LookupError(str(exc)) from None
        return list(dict.fromkeys(str(info[4][0]) for info in found))


class HttpClientSender:
    def post(self, url: str, address: str, body: bytes, headers: dict[str, str], timeout: float) -> int:
        parts = urlsplit(url)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        connection = _connection(parts.scheme, parts.hostname or "", parts.port, timeout)
        pinned = address

        def connect(where: tuple[str, int], *args: Any, **kwargs: Any) -> socket.socket:
            return socket.create_connection((pinned, where[1]), *args, **kwargs)

        connection._create_connection = connect  # type: ignore[attr-defined]
        try:
            connection.request("POST", target, body=body, headers=headers)
            answer = connection.getresponse()
            answer.read(_MAX_ANSWER_BYTES)
            return answer.status
        except (OSError, http.client.HTTPException) as exc:
            raise WebhookSendError(f"no answer from {parts.hostname}: {type(exc).__name__}: {exc}") from None
        finally:
            connection.close()


def _connection(scheme: str, host: str, port: int | None, timeout: float) -> http.client.HTTPConnection:
    if scheme == "https":
        return http.client.HTTPSConnection(host, port, timeout=timeout, context=ssl.create_default_context())
    return http.client.HTTPConnection(host, port, timeout=timeout)
