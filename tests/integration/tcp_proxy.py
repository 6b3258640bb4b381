"""A TCP proxy of our own between the processes under test and a shared server, so a
test can take "the server" away without stopping it (other test runs use it).

``cut()`` closes every forwarded connection and stops listening, so the processes see
what they would see if the server went down: dropped connections, then "connection
refused"; ``restore()`` listens again on the same port. One thread per direction of a
connection (blocking I/O: no direction can stall the other).
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from types import TracebackType
from urllib.parse import urlsplit, urlunsplit


class TcpProxy:
    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = 0  # chosen on start, kept across cut() / restore()
        self._listener: socket.socket | None = None
        self._connections: set[socket.socket] = set()
        self._lock = threading.Lock()
        self.accepted = 0  # connections forwarded so far, across cuts

    # ------------------------------------------------------------------ control

    def start(self) -> TcpProxy:
        self._listen()
        return self

    def cut(self) -> None:
        """Drop every connection and refuse new ones until ``restore()``."""
        with self._lock:
            listener, self._listener = self._listener, None
            connections, self._connections = self._connections, set()
        if listener is not None:
            _close(listener)
        for sock in connections:
            _close(sock)

    def restore(self) -> None:
        self._listen()

    def close(self) -> None:
        self.cut()

    def __enter__(self) -> TcpProxy:
        return self if self.port else self.start()

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    @property
    def is_cut(self) -> bool:
        return self._listener is None

    # ------------------------------------------------------------------ forwarding

    def _listen(self) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # The port is ours until the test ends; TIME_WAIT leftovers of the connections
        # cut() closed do not stop SO_REUSEADDR from binding it again. Retry briefly in
        # case the kernel is still tearing the old listener down.
        for attempt in range(50):
            try:
                listener.bind(("127.0.0.1", self.port))
                break
            except OSError:
                if attempt == 49:
                    raise
                time.sleep(0.1)
        listener.listen(128)
        self.port = listener.getsockname()[1]
        with self._lock:
            self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), name=f"proxy-{self.port}", daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # cut: the listener was closed
            try:
                upstream = socket.create_connection(self.target, timeout=10)
            except OSError:
                _close(client)
                continue
            upstream.settimeout(None)
            with self._lock:
                if self._listener is not listener:  # cut while connecting
                    _close(client)
                    _close(upstream)
                    return
                self._connections.update((client, upstream))
                self.accepted += 1
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        for sock in (source, sink):
            with self._lock:
                self._connections.discard(sock)
            _close(sock)


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        sock.close()


def through(url: str, proxy: TcpProxy) -> str:
    """``url`` (postgresql://, amqp://, mongodb://; one host) with its host and port
    replaced by the proxy's. A MongoDB URI also gets ``directConnection=true``: a
    replica set member would otherwise send the client to the addresses it announces."""
    parts = urlsplit(url)
    userinfo = parts.netloc.rpartition("@")[0]
    netloc = f"{userinfo}@" if userinfo else ""
    netloc += f"127.0.0.1:{proxy.port}"
    query = parts.query
    if parts.scheme.startswith("mongodb") and "directConnection" not in query:
        query = f"{query}&directConnection=true" if query else "directConnection=true"
    return urlunsplit((parts.scheme, netloc, parts.path or "/", query, parts.fragment))


_DEFAULT_PORTS = {"postgresql": 5432, "postgres": 5432, "amqp": 5672, "mongodb": 27017}


def proxy_for(url: str) -> TcpProxy:
    """A started proxy to the server ``url`` names (one host)."""
    parts = urlsplit(url)
    if parts.hostname is None or "," in parts.netloc:
        raise ValueError(f"a proxy needs one server, not {parts.netloc!r}")
    return TcpProxy(parts.hostname, parts.port or _DEFAULT_PORTS[parts.scheme]).start()
