"""A calendar source on 127.0.0.1: a real HTTP server whose answers the test changes.

``SourceServer`` serves one body at any path (the path plays the secret part of a
Google or Outlook address), with an ETag and/or Last-Modified when asked, and
answers conditional requests with 304 the way real servers do. A test can make it
misbehave (a status, a redirect loop, an HTML page, a cut-off body, silence) and
counts what it sent: ``sent[200]``, ``sent[304]``.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tests.support.net import HOST


@dataclass
class Behaviour:
    body: bytes = b""
    etag: bool = False
    last_modified: bool = False
    status: int = 200  # anything else: answer with it (and ``headers``)
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "text/calendar; charset=utf-8"
    redirect_loop: bool = False
    truncate_to: int | None = None  # send Content-Length of the whole body, then only this much
    stall_seconds: float = 0.0  # wait this long before answering


class SourceServer:
    def __init__(self, host: str = HOST) -> None:
        """``host``: another loopback address (127.0.0.2) plays a second machine."""
        self.host = host
        self.behaviour = Behaviour()
        self.sent: Counter[int] = Counter()
        self.requests: list[dict[str, str]] = []
        self.modified = 1_700_000_000.0  # Last-Modified of the body, moved when it changes
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                return

            def do_GET(self) -> None:
                server._answer(self)

            # CalDAV's and WebDAV's methods get the same answer: enough to play a server
            # that redirects (a PUT's body is read first, so the connection stays usable)
            do_PROPFIND = do_REPORT = do_GET

            def do_PUT(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                server._answer(self)

            do_DELETE = do_GET

        self.httpd = ThreadingHTTPServer((host, 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return int(self.httpd.server_address[1])

    def url(self, secret: str = "private-7f3a9c/basic.ics") -> str:
        return f"http://{self.host}:{self.port}/calendar/{secret}?token=q{secret[:6]}"

    def start(self) -> SourceServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def serve(self, body: bytes, **changes: object) -> None:
        """Serve ``body`` from now on (a new Last-Modified when it differs), as told."""
        with self._lock:
            if body != self.behaviour.body:
                self.modified += 60
            self.behaviour = Behaviour(body=body, **changes)  # type: ignore[arg-type]

    def _answer(self, handler: BaseHTTPRequestHandler) -> None:
        with self._lock:
            behaviour = self.behaviour
            modified = self.modified
            self.requests.append(dict(handler.headers.items()))
        if behaviour.stall_seconds:
            time.sleep(behaviour.stall_seconds)
        if behaviour.redirect_loop:
            self._send(handler, 302, b"", {"Location": handler.path})
            return
        if behaviour.status != 200:
            self._send(handler, behaviour.status, b"no", behaviour.headers)
            return
        tag = '"' + hashlib.sha256(behaviour.body).hexdigest()[:16] + '"'
        stamp = formatdate(modified, usegmt=True)
        headers = {"Content-Type": behaviour.content_type, **behaviour.headers}
        if behaviour.etag:
            headers["ETag"] = tag
        if behaviour.last_modified:
            headers["Last-Modified"] = stamp
        match = handler.headers.get("If-None-Match")
        since = handler.headers.get("If-Modified-Since")
        if (behaviour.etag and match == tag) or (
            behaviour.last_modified and not match and since == stamp
        ):
            self._send(handler, 304, b"", headers)
            return
        body = behaviour.body
        if behaviour.truncate_to is not None:
            headers["Content-Length"] = str(len(body))
            body = body[: behaviour.truncate_to]
        self._send(handler, 200, body, headers)

    def _send(
        self, handler: BaseHTTPRequestHandler, status: int, body: bytes, headers: dict[str, str]
    ) -> None:
        with self._lock:
            self.sent[status] += 1
        handler.send_response(status)
        headers = dict(headers)
        if status != 304:
            headers.setdefault("Content-Length", str(len(body)))
        for name, value in headers.items():
            handler.send_header(name, value)
        # The handler speaks HTTP/1.0 and closes after each answer: say so, or a client
        # that keeps connections (niquests, for the CalDAV retry after a 401) may send its
        # next request into a connection being closed.
        handler.send_header("Connection", "close")
        handler.close_connection = True
        handler.end_headers()
        if status != 304:
            handler.wfile.write(body)
