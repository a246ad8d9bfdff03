"""A real WebDAV server for publishing tests: WsgiDAV on cheroot, on 127.0.0.1, with basic
auth over a temporary folder, so PUT, If-Match, 401, 409 and 412 are the server's own.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cheroot import wsgi
from wsgidav.wsgidav_app import WsgiDAVApp

from tests.support.publish import PASSWORD, USER


@dataclass
class Dav:
    root: Path
    url: str  # the collection calshare publishes into
    seen: list[tuple[str, str, dict[str, str]]]  # (method, path, conditional headers) received
    after: dict[tuple[str, str], Callable[[], None]]  # run once the server answered (method, path)

    def file(self, name: str) -> Path:
        return self.root / "calendars" / name

    def conditions(self, method: str, name: str) -> list[dict[str, str]]:
        return [headers for got, path, headers in self.seen if (got, path) == (method, name)]


def recording(
    app: Any,
    seen: list[tuple[str, str, dict[str, str]]],
    after: dict[tuple[str, str], Callable[[], None]],
) -> Any:
    """The WSGI app as is, noting each request's method, path and If-* headers.

    ``after`` lets a test act between two of calshare's requests, as another client
    writing at the same moment would.
    """

    def wrapped(environ: dict[str, Any], start_response: Any) -> Any:
        conditions = {
            key[5:].replace("_", "-").title(): value
            for key, value in environ.items()
            if key in ("HTTP_IF_MATCH", "HTTP_IF_NONE_MATCH")
        }
        request = (environ["REQUEST_METHOD"], environ["PATH_INFO"])
        seen.append((*request, conditions))
        answer = list(app(environ, start_response))  # the request is handled by now
        if request in after:
            after.pop(request)()
        return answer

    return wrapped


@pytest.fixture
def dav(tmp_path: Path) -> Iterator[Dav]:
    root = tmp_path / "dav"
    (root / "calendars").mkdir(parents=True)
    (tmp_path / "readonly").mkdir()
    app = WsgiDAVApp(
        {
            "provider_mapping": {
                "/": str(root),
                "/readonly": {"root": str(tmp_path / "readonly"), "readonly": True},
            },
            "http_authenticator": {
                "domain_controller": None,
                "accept_basic": True,
                "accept_digest": False,
                "default_to_digest": False,
            },
            "simple_dc": {"user_mapping": {"*": {USER: {"password": PASSWORD}}}},
            "verbose": 1,
            "logging": {"enable_loggers": []},
            "property_manager": True,
            "lock_storage": True,
        }
    )
    seen: list[tuple[str, str, dict[str, str]]] = []
    after: dict[tuple[str, str], Callable[[], None]] = {}
    server = wsgi.Server(("127.0.0.1", 0), recording(app, seen, after))
    server.prepare()
    thread = threading.Thread(target=server.serve, name="test-webdav", daemon=True)
    thread.start()
    try:
        yield Dav(root, f"http://127.0.0.1:{server.bind_addr[1]}/calendars/", seen, after)
    finally:
        server.stop()
        thread.join(10)
