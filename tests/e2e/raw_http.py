"""A raw HTTP/1.1 client over a socket, for requests no client library would send:
oversized or endless headers, a Content-Length that does not match the body, a body
cut short by a disconnect."""

from __future__ import annotations

import json
import select
import socket
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit


@dataclass
class RawResponse:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""

    def json(self) -> Any:
        return json.loads(self.body)


def connect(base_url: str, timeout: float = 30) -> socket.socket:
    where = urlsplit(base_url)
    assert where.hostname is not None and where.port is not None
    return socket.create_connection((where.hostname, where.port), timeout=timeout)


def head(method: str, path: str, headers: dict[str, str] | list[tuple[str, str]]) -> bytes:
    """A request line and headers, ending with the blank line."""
    pairs = headers.items() if isinstance(headers, dict) else headers
    lines = [f"{method} {path} HTTP/1.1", "Host: test", *(f"{k}: {v}" for k, v in pairs)]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def exchange(base_url: str, data: bytes) -> RawResponse:
    """Send ``data`` as it is and read the first response."""
    with connect(base_url) as sock:
        sock.sendall(data)
        return read_response(sock)


def send_until_answered(sock: socket.socket, pieces: Iterable[bytes]) -> int:
    """Send pieces until the server answers (or stops reading); returns the bytes sent."""
    sent = 0
    for piece in pieces:
        readable, _, _ = select.select([sock], [], [], 0)
        if readable:
            break
        try:
            sock.sendall(piece)
        except OSError:  # the server closed: its answer is waiting to be read
            break
        sent += len(piece)
    return sent


def read_response(sock: socket.socket) -> RawResponse:
    """One response: status line, headers, and a body of Content-Length bytes (or up to
    the close when there is no Content-Length)."""
    buffer = b""
    while b"\r\n\r\n" not in buffer:
        chunk = sock.recv(65536)
        if not chunk:
            raise AssertionError(f"the connection closed before a response: {buffer[:200]!r}")
        buffer += chunk
    head_bytes, body = buffer.split(b"\r\n\r\n", 1)
    status_line, *header_lines = head_bytes.decode("latin-1").split("\r\n")
    headers = {name.strip().lower(): value.strip() for name, value in (h.split(":", 1) for h in header_lines)}
    length = int(headers.get("content-length", "-1"))
    while length < 0 or len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return RawResponse(int(status_line.split()[1]), headers, body[:length] if length >= 0 else body)
