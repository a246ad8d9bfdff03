"""A real Radicale (PyPI) CalDAV server in-process on cheroot, port 0, storage under tmp.

``start_radicale`` runs one with no auth (anyone is whoever they say) or with
htpasswd users (plain-text file: the tests exercise credentials, not hashing).
Every request passes a recorder first, so tests count what a client asked for
and how many bytes it was sent, from the server's side; ``refuse_sync`` turns
Radicale into a server without RFC 6578 sync-collection (it answers that REPORT
501, as servers that do not implement a report do).
"""

from __future__ import annotations

import io
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import radicale
from cheroot import wsgi
from radicale import config as radicale_config


@dataclass(frozen=True)
class Seen:
    method: str
    path: str
    status: int
    body: bytes  # what the client sent
    sent: int  # bytes of the answer's body


@dataclass
class Recorder:
    """WSGI middleware: records each request, and can play a server without sync-collection."""

    app: Any
    seen: list[Seen] = field(default_factory=list)
    refuse_sync: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(body)
        environ.pop("HTTP_ACCEPT_ENCODING", None)  # plain answers: their sizes compare
        method, path = environ["REQUEST_METHOD"], environ.get("PATH_INFO", "")
        if self.refuse_sync and method == "REPORT" and b"sync-collection" in body:
            start_response("501 Not Implemented", [("Content-Length", "0")])
            self._note(Seen(method, path, 501, body, 0))
            return [b""]
        status: list[int] = []

        def recording_start(line: str, headers: Any, *exc: Any) -> Any:
            status.append(int(line.split()[0]))
            return start_response(line, headers, *exc)

        answer = b"".join(self.app(environ, recording_start))
        self._note(Seen(method, path, status[0], body, len(answer)))
        return [answer]

    def _note(self, seen: Seen) -> None:
        with self.lock:
            self.seen.append(seen)

    def take(self) -> list[Seen]:
        """What was seen since the last take."""
        with self.lock:
            taken, self.seen = self.seen, []
        return taken


@dataclass
class Radicale:
    base: str  # http://127.0.0.1:PORT
    storage: Path
    recorder: Recorder


@contextmanager
def start_radicale(tmp_path: Path, users: dict[str, str] | None = None) -> Iterator[Radicale]:
    """Radicale on 127.0.0.1:0; ``users``: htpasswd name -> password, None: no auth."""
    storage = tmp_path / "radicale"
    conf = tmp_path / "radicale.conf"
    if users is None:
        auth = "[auth]\ntype = none\n"
    else:
        htpasswd = tmp_path / "radicale.htpasswd"
        htpasswd.write_text("".join(f"{u}:{p}\n" for u, p in users.items()), encoding="utf-8")
        auth = (
            f"[auth]\ntype = htpasswd\nhtpasswd_filename = {htpasswd}\n"
            "htpasswd_encryption = plain\ndelay = 0\n"
        )
    conf.write_text(
        f"{auth}[storage]\nfilesystem_folder = {storage}\n[logging]\nlevel = error\n",
        encoding="utf-8",
    )
    configuration = radicale_config.load([(str(conf), False)])
    # as Radicale's own tests do: no fsync per stored object (tmp files, thrown away)
    configuration.update({"storage": {"_filesystem_fsync": "False"}}, "test", privileged=True)
    recorder = Recorder(radicale.Application(configuration))
    server = wsgi.Server(("127.0.0.1", 0), recorder)
    server.prepare()
    thread = threading.Thread(target=server.serve, name="test-radicale", daemon=True)
    thread.start()
    try:
        yield Radicale(f"http://127.0.0.1:{server.bind_addr[1]}", storage, recorder)
    finally:
        server.stop()
        thread.join(10)
