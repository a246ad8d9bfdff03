"""The owner-console harness: the daemon serving HTTP, owners with calendars, and a
browser-like client that keeps a session cookie and sends each form's anti-forgery field.

``Console.session(email)`` opens a session the way signing in does (``sessions.start``)
without the mail round trip; the sign-in tests go through the real link instead.
``state(db_path)`` is everything the database holds but the session bookkeeping, for
"nothing changed" checks before and after a refused request.
"""

from __future__ import annotations

import re
import sqlite3
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from calshare import sessions
from calshare.calendars import Calendar, add_calendar
from calshare.clock import FixedClock
from calshare.config import Settings, load_settings
from calshare.importer import import_calendar
from calshare.store import Store
from tests.support.inbox import Inbox, inbox_env
from tests.support.snapshot import AWKWARD
from tests.support.web import Got

ANN = "ann@example.org"
ZOE = "zoe@example.org"  # another owner: must never see or change Ann's calendars
# Tables that change on every signed-in request or sign-in ask, not by what a page does.
BOOKKEEPING = {"sessions", "signin_requests"}
# Columns the outbox sender changes by itself (attempts at a relay that never answers):
# which mails are queued is what a page does, not how their delivery goes.
DELIVERY = {"outbox": "id, message_id, kind, share_id, envelope_from, recipients, subject"}
_CSRF = re.compile(r'name="csrf" value="([0-9a-f]{64})"')


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None  # a 303 comes back as it is, Location and all


_OPENER = urllib.request.build_opener(_NoRedirect)


@dataclass
class Client:
    """One browser: its cookies, and the anti-forgery field of the last page it read."""

    base: str
    cookies: dict[str, str] = field(default_factory=dict)
    csrf: str = ""
    accept_language: str = "en"

    def request(
        self, path: str, data: bytes | None = None, *, content_type: str | None = None
    ) -> Got:
        headers = {"Accept-Language": self.accept_language}
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        if content_type:
            headers["Content-Type"] = content_type
        request = urllib.request.Request(
            self.base + path, data=data, method="POST" if data is not None else "GET"
        )
        for name, value in headers.items():
            request.add_header(name, value)
        try:
            with _OPENER.open(request, timeout=30) as response:
                got = Got(response.status, dict(response.headers), response.read())
                set_cookies = response.headers.get_all("Set-Cookie") or []
        except urllib.error.HTTPError as error:
            got = Got(error.code, dict(error.headers), error.read())
            set_cookies = error.headers.get_all("Set-Cookie") or []
        for line in set_cookies:
            name, _, rest = line.partition("=")
            value = rest.split(";", 1)[0]
            if value in ("", '""') or "Max-Age=0" in line:
                self.cookies.pop(name.strip(), None)
            else:
                self.cookies[name.strip()] = value
        if got.headers.get("Content-Type", "").startswith("text/html"):
            found = _CSRF.search(got.text)
            if found:
                self.csrf = found[1]
        return got

    def get(self, path: str) -> Got:
        return self.request(path)

    def post(self, path: str, fields: dict[str, str] | list[tuple[str, str]]) -> Got:
        """A form POST; the last page's anti-forgery field unless ``fields`` has its own."""
        items = list(fields.items()) if isinstance(fields, dict) else list(fields)
        if not any(name == "csrf" for name, _ in items):
            items.append(("csrf", self.csrf))
        body = urllib.parse.urlencode(items).encode()
        return self.request(path, body, content_type="application/x-www-form-urlencoded")

    def post_multipart(
        self,
        path: str,
        fields: dict[str, str] | list[tuple[str, str]],
        files: dict[str, tuple[str, bytes]] | None = None,
    ) -> Got:
        """A form with a file (``files``: field -> (file name, bytes)), as browsers send it."""
        items = list(fields.items()) if isinstance(fields, dict) else list(fields)
        if not any(name == "csrf" for name, _ in items):
            items.append(("csrf", self.csrf))
        boundary = "----calshare-test-" + uuid.uuid4().hex
        parts = []
        for name, value in items:
            parts.append(
                f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'
                f"{value}\r\n".encode()
            )
        for name, (filename, data) in (files or {}).items():
            parts.append(
                f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; '
                f'filename="{filename}"\r\nContent-Type: text/calendar\r\n\r\n'.encode()
                + data
                + b"\r\n"
            )
        parts.append(f"--{boundary}--\r\n".encode())
        return self.request(
            path, b"".join(parts), content_type=f"multipart/form-data; boundary={boundary}"
        )


@dataclass
class Console:
    store: Store
    settings: Settings
    clock: FixedClock
    inbox: Inbox
    db_path: Path
    tmp_path: Path

    @property
    def base(self) -> str:
        return self.inbox.web

    def calendar(self, name: str, owner: str = ANN, ics: bytes = AWKWARD) -> Calendar:
        """A calendar of ``owner``'s, imported from ``ics``."""
        calendar = add_calendar(self.store, self.clock, name, owner, None, "UTC")
        source = self.tmp_path / f"{name}-{owner}.ics"
        source.write_bytes(ics)
        import_calendar(self.store, self.settings, self.clock, name, str(source), owner=owner)
        return calendar

    def session(self, email: str = ANN) -> str:
        """A live session's cookie value for ``email``, as signing in opens one."""
        with self.store.write() as db:
            return sessions.start(db, email, self.clock.now())

    def client(self, email: str | None = ANN) -> Client:
        """A browser signed in as ``email`` (None: not signed in)."""
        client = Client(self.base)
        if email is not None:
            client.cookies[sessions.COOKIE] = self.session(email)
        return client

    def state(self) -> dict[str, list[tuple[object, ...]]]:
        return state(self.db_path)


def state(db_path: Path) -> dict[str, list[tuple[object, ...]]]:
    """Every table's rows (but the session bookkeeping), in a stable order."""
    with closing(sqlite3.connect(db_path)) as conn:
        tables = [
            row[0]
            for row in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            )
        ]
        return {
            table: sorted(
                conn.execute(f"SELECT {DELIVERY.get(table, '*')} FROM {table}").fetchall(),
                key=repr,
            )
            for table in sorted(tables)
            if table not in BOOKKEEPING
        }


@pytest.fixture
def console(
    db_path: Path, clock: FixedClock, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[Console]:
    """The daemon (SMTP, LMTP, HTTP) over an empty database; Ann and Zoe sign in.

    A test module's ``CONSOLE_ENV`` (CALSHARE_* settings) adds to the daemon's settings,
    e.g. WebDAV credentials or a policy to refuse by.
    """
    more = getattr(request.module, "CONSOLE_ENV", {})
    settings = load_settings(None, env=inbox_env(**more))
    store = Store.open(db_path)
    clock.at = clock.at.replace(year=2027, month=3, day=20)  # AWKWARD's events are in March 2027
    inbox = Inbox(settings, db_path, clock, http=True).start()
    try:
        yield Console(store, settings, clock, inbox, db_path, tmp_path)
    finally:
        inbox.stop()
        store.close()


@pytest.fixture
def make_console(
    db_path: Path, clock: FixedClock, tmp_path: Path
) -> Iterator[Callable[..., Console]]:
    """``console`` with settings of the test's own (``CALSHARE_*`` variables): one daemon."""
    started: list[Console] = []

    def make(**env: str) -> Console:
        assert not started, "one daemon per test"
        settings = load_settings(None, env=inbox_env(**env))
        store = Store.open(db_path)
        clock.at = clock.at.replace(year=2027, month=3, day=20)
        inbox = Inbox(settings, db_path, clock, http=True).start()
        started.append(Console(store, settings, clock, inbox, db_path, tmp_path))
        return started[0]

    try:
        yield make
    finally:
        for made in started:
            made.inbox.stop()
            made.store.close()
