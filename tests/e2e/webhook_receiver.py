"""A real HTTP server, in a thread of the test, that receives webhook deliveries: it
records every request and answers with the statuses it is told (500 until told
otherwise, for example)."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    answered: int

    @property
    def json(self) -> Any:
        return json.loads(self.body)


def signature_is_valid(secret: str, received: Received, tolerance: int = 300) -> bool:
    """What a receiver does (the docs' five lines): HMAC-SHA256 over "<t>." + body."""
    parts = dict(part.split("=", 1) for part in received.headers["Webhook-Signature"].split(","))
    signed = parts["t"].encode() + b"." + received.body
    expected = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, parts["v1"]) and abs(time.time() - int(parts["t"])) < tolerance


class WebhookReceiver:
    def __init__(self, failures: int = 0) -> None:
        self.failures = failures  # answer 500 to this many requests first, then 200
        self.received: list[Received] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                status = receiver._answer()
                with receiver._lock:
                    receiver.received.append(Received(self.path, dict(self.headers.items()), body, status))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def _answer(self) -> int:
        with self._lock:
            if self.failures > 0:
                self.failures -= 1
                return 500
            return 200

    def fail_always(self) -> None:
        with self._lock:
            self.failures = 10**9

    def succeed_from_now(self) -> None:
        with self._lock:
            self.failures = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hooks/bulk"

    def delivered(self) -> list[Received]:
        with self._lock:
            return [r for r in self.received if r.answered == 200]

    def __enter__(self) -> WebhookReceiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
