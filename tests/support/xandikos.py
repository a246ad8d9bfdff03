"""A real Xandikos (PyPI) CalDAV server in-process on cheroot, port 0, storage under tmp.

Xandikos keeps each collection in a git repository (ETags are blob ids, sync
tokens commit ids) and answers a sync token it does not know with 412, where
Radicale answers 403: a second implementation of RFC 6578 for the same client.
Xandikos does no authentication itself (deployments put it behind a proxy that
does), so ``start_xandikos`` puts a Basic-auth check in front, as such a proxy
would, then the request recorder of tests/support/radicale.py.
"""

from __future__ import annotations

import base64
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cheroot import wsgi
from xandikos.web import SingleUserFilesystemBackend, XandikosApp

from tests.support.radicale import Recorder


@dataclass
class Xandikos:
    base: str  # http://127.0.0.1:PORT
    calendar: str  # the user's calendar collection, made at start
    recorder: Recorder


@dataclass
class BasicAuth:
    """WSGI middleware: one user name and password, or 401 with a Basic challenge."""

    app: Any
    user: str
    password: str

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        pair = base64.b64encode(f"{self.user}:{self.password}".encode()).decode()
        if environ.get("HTTP_AUTHORIZATION") != f"Basic {pair}":
            start_response(
                "401 Unauthorized",
                [("WWW-Authenticate", 'Basic realm="xandikos"'), ("Content-Length", "0")],
            )
            return [b""]
        environ["REMOTE_USER"] = self.user
        result: Iterable[bytes] = self.app(environ, start_response)
        return result


@contextmanager
def start_xandikos(tmp_path: Path, user: str, password: str) -> Iterator[Xandikos]:
    principal = f"/{user}/"
    backend = SingleUserFilesystemBackend(str(tmp_path / "xandikos"))
    backend._mark_as_principal(principal)
    backend.create_principal(principal, create_defaults=True)  # .../calendars/calendar/
    recorder = Recorder(
        BasicAuth(XandikosApp(backend, current_user_principal=principal), user, password)
    )
    server = wsgi.Server(("127.0.0.1", 0), recorder)
    server.prepare()
    thread = threading.Thread(target=server.serve, name="test-xandikos", daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.bind_addr[1]}"
    try:
        yield Xandikos(base, f"{base}{principal}calendars/calendar/", recorder)
    finally:
        server.stop()
        thread.join(10)
