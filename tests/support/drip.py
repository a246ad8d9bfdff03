"""A server that answers one byte a second, forever: the slow peer of the slow-work tests.

It reads nothing it does not need and never finishes a status line, so only an
overall deadline (not a per-read socket timeout) ends a request to it.
"""

from __future__ import annotations

import socketserver
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

HOST = "127.0.0.1"
ANSWER = b"HTTP/1.1 200 OK\r\nX-Slow: " + b"z" * 100_000  # never ends within a test


class _Drip(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        server = self.server
        assert isinstance(server, _Server)
        with server.lock:
            server.connections += 1
        for byte in ANSWER:
            if server.stopped.wait(1.0):
                return
            try:
                self.request.sendall(bytes([byte]))
            except OSError:  # the client gave up: what the tests expect of it
                return


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        super().__init__((HOST, 0), _Drip)
        self.stopped = threading.Event()
        self.lock = threading.Lock()
        self.connections = 0


@contextmanager
def dripping() -> Iterator[_Server]:
    """A dripping server on 127.0.0.1; ``url(server)`` is its root."""
    server = _Server()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.stopped.set()
        server.shutdown()
        server.server_close()


def url(server: socketserver.TCPServer, path: str = "/") -> str:
    host, port = server.server_address[:2]
    return f"http://{host}:{port}{path}"


def wait_for_connection(server: _Server, count: int = 1, timeout: float = 10.0) -> None:
    """Until ``count`` requests have reached the server (the slow job is under way)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with server.lock:
            if server.connections >= count:
                return
        time.sleep(0.05)
    raise AssertionError(f"no request reached the dripping server within {timeout:g} s")
