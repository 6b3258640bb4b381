"""The HTTP/1.1 protocol ``bulkactions serve`` runs: uvicorn's httptools protocol (the
fast C parser, llhttp) with a bounded request head.

llhttp has no limit of its own, and httptools hands uvicorn a header only once its
whole value has arrived: one 200 MB header was held whole (the server's peak RSS went
from 58 to 459 MB, and 70 s of CPU went on concatenating it) before the request was
even authenticated. Here the parser is never fed more than ``MAX_HEAD_BYTES`` of one
request's head; past that, or past ``MAX_LINE_BYTES`` in one header or in the request
target, or past ``MAX_HEADERS`` headers, the request is answered with a problem (431,
or 414 for the target) and the connection is closed. h11, uvicorn's other parser, has
a size limit, but answers 400 and parses in Python.

Every answer the protocol itself gives (these, and 400 for a request that is not
HTTP) is an RFC 9457 problem, as the app's are. When a malformed request follows a
complete one on the same connection (a Content-Length shorter than the body sent), the
complete one is answered first and the connection then closed: the client must not
read a 400 meant for the leftover bytes as the answer to a request that was accepted.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import httptools
import orjson
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from api.http.problems import PROBLEM_TYPE, ProblemError, problem_body

log = logging.getLogger(__name__)

MAX_HEAD_BYTES = 64 * 1024  # the request line and every header, as sent
MAX_LINE_BYTES = 16 * 1024  # the request target; one header's name and value
MAX_HEADERS = 100
# After a refusal the rest of what the client sends is read and dropped for a moment
# before closing: closing with unread data resets the connection, and a client still
# sending would then never read the answer (nginx's "lingering close").
LINGER_SECONDS = 2.0


class _RefusedError(Exception):
    def __init__(self, problem: ProblemError) -> None:
        super().__init__(problem.detail)
        self.problem = problem


def header_too_large(detail: str) -> ProblemError:
    return ProblemError(431, "header-too-large", "Request Header Fields Too Large", detail)


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """``HttpToolsProtocol`` that counts each request's head as it is fed to the parser."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_bytes: int | None = 0  # None while a body is being read
        self._header_count = 0
        self._dropping = False
        self._linger: asyncio.TimerHandle | None = None

    def data_received(self, data: bytes) -> None:
        if self._dropping:
            return
        self._unset_keepalive_if_required()
        rest = memoryview(data)
        while rest:
            if self._head_bytes is None:
                self._feed(rest)
                return
            room = MAX_HEAD_BYTES - self._head_bytes
            if room <= 0:
                self._refuse(header_too_large(f"the request line and headers are larger than {MAX_HEAD_BYTES} bytes"))
                return
            piece, rest = rest[:room], rest[room:]
            self._head_bytes += len(piece)
            if not self._feed(piece):
                return

    def _feed(self, data: memoryview) -> bool:
        """Parse ``data``; False once the connection is refused, upgraded or closing."""
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserCallbackError as exc:
            refused = exc.__context__
            if not isinstance(refused, _RefusedError):
                raise
            self._refuse(refused.problem)
            return False
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
            return False
        except httptools.HttpParserError as exc:
            self._refuse(ProblemError(400, "malformed-request", "Bad Request", f"malformed HTTP request: {exc}"))
            return False
        return not self.transport.is_closing()

    # Parser callbacks: each checks a limit, then does what uvicorn does.

    def on_message_begin(self) -> None:
        self._header_count = 0
        super().on_message_begin()

    def on_url(self, url: bytes) -> None:
        super().on_url(url)
        if len(self.url) > MAX_LINE_BYTES:
            raise _RefusedError(
                ProblemError(
                    414, "uri-too-long", "URI Too Long", f"the request target is longer than {MAX_LINE_BYTES} bytes"
                )
            )

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_count += 1
        if self._header_count > MAX_HEADERS:
            raise _RefusedError(header_too_large(f"the request has more than {MAX_HEADERS} headers"))
        if len(name) + len(value) > MAX_LINE_BYTES:
            raise _RefusedError(header_too_large(f"a header is larger than {MAX_LINE_BYTES} bytes"))
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._head_bytes = None
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._head_bytes = 0  # the next request on this connection has a head of its own
        super().on_message_complete()

    # Refusing

    def _refuse(self, problem: ProblemError) -> None:
        """Answer ``problem`` and close, reading nothing more from this connection.

        If the previous request on the connection is still being answered, that answer
        goes out first and the connection closes after it, without a second one."""
        log.info("refused a request with %d: %s", problem.status, problem.detail)
        self._dropping = True
        cycle: Any = self.cycle
        if cycle is not None and not cycle.response_complete:
            if cycle.more_body:  # this request's own body is malformed: it is incomplete
                if not cycle.response_started:
                    self.transport.write(self._problem_bytes(problem))
                self.transport.close()
            else:
                cycle.keep_alive = False
            return
        self.transport.write(self._problem_bytes(problem))
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self.flow.resume_reading()
        self._linger = self.loop.call_later(LINGER_SECONDS, self.transport.close)

    def _problem_bytes(self, problem: ProblemError) -> bytes:
        body = orjson.dumps(problem_body(problem))
        lines = [STATUS_LINE[problem.status]]
        for name, value in self.server_state.default_headers:
            lines.append(name + b": " + value + b"\r\n")
        lines.append(b"content-type: " + PROBLEM_TYPE.encode() + b"\r\n")
        lines.append(b"content-length: " + str(len(body)).encode() + b"\r\n")
        lines.append(b"connection: close\r\n\r\n")
        return b"".join(lines) + body

    def connection_lost(self, exc: Exception | None) -> None:
        if self._linger is not None:
            self._linger.cancel()
        super().connection_lost(exc)
