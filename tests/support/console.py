"""The owner-console harness: the daemon serving HTTP, owners with calendars, and a
browser-like client that keeps a session cookie and sends each form's anti-forgery field.

``Console.session(email)`` opens a session the way signing in does (``sessions.start``)
without the mail round trip; ``sign_in_by_mail(console, email)`` goes through the real
pages and the real mail (the link read from the queued sign-in mail).
``state(db_path)`` is everything the database holds but the session bookkeeping, for
"nothing changed" checks before and after a refused request.
"""

from __future__ import annotations

import html
import json
import re
import sqlite3
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from calshare import sessions
from calshare.calendars import Calendar, add_calendar
from calshare.clock import FixedClock
from calshare.config import Settings, load_settings
from calshare.importer import import_calendar
from calshare.links import SIGNIN_ROUTE
from calshare.store import Store
from tests.support.inbox import Inbox, Queued, inbox_env, queued
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
    set_cookies: list[str] = field(default_factory=list)  # the last response's Set-Cookie lines

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
        self.set_cookies = list(set_cookies)
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


@contextmanager
def running_console(
    db_path: Path, clock: FixedClock, tmp_path: Path, **env: str
) -> Iterator[Console]:
    """The daemon (SMTP, LMTP, HTTP) over an empty database, with ``env``'s settings
    on top of the test daemon's (``CALSHARE_OWNERS_ALLOW``, an https base URL…)."""
    settings = load_settings(None, env=inbox_env(**env))
    store = Store.open(db_path)
    clock.at = clock.at.replace(year=2027, month=3, day=20)  # AWKWARD's events are in March 2027
    inbox = Inbox(settings, db_path, clock, http=True).start()
    try:
        yield Console(store, settings, clock, inbox, db_path, tmp_path)
    finally:
        inbox.stop()
        store.close()


@pytest.fixture
def console(
    db_path: Path, clock: FixedClock, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[Console]:
    """The daemon (SMTP, LMTP, HTTP) over an empty database; Ann and Zoe sign in.

    A test module's ``CONSOLE_ENV`` (CALSHARE_* settings) adds to the daemon's settings,
    e.g. WebDAV credentials or a policy to refuse by; ``running_console`` takes them
    per test.
    """
    more = getattr(request.module, "CONSOLE_ENV", {})
    with running_console(db_path, clock, tmp_path, **more) as running:
        yield running


# --- signing in through the real pages and the real mail

_SIGNIN_LINK = re.compile(r"https?://[^\s/]+(/signin/[a-z2-7]{26}(?:\?next=[^\s]*)?)")
_NEXT = re.compile(r'name="next" value="([^"]*)"')


def signin_mails(console: Console, email: str) -> list[Queued]:
    """The sign-in mails queued for ``email``, oldest first."""
    return queued(console.db_path, "o.kind = 'signin' AND o.recipients = ?", (json.dumps([email]),))


def link_in(mail: Queued) -> str:
    """The path (and ``?next=``) of the sign-in link in a mail's text part."""
    found = _SIGNIN_LINK.search(mail.text)
    assert found, mail.text
    return found[1]


def ask_for_link(client: Client, email: str, next_path: str = "") -> Got:
    """The sign-in form, as a browser fills it in (GET, then POST with its fields)."""
    query = f"?{urllib.parse.urlencode({'next': next_path})}" if next_path else ""
    form = client.get(SIGNIN_ROUTE + query)
    assert form.status == 200, form.text
    shown = _NEXT.search(form.text)
    return client.post(
        SIGNIN_ROUTE, {"address": email, "next": html.unescape(shown[1]) if shown else ""}
    )


def press_sign_in(client: Client, link: str) -> Got:
    """Open the mail's link and press its button; the 303 that signs in (or not)."""
    landing = client.get(link)
    assert landing.status == 200, landing.text
    shown = _NEXT.search(landing.text)
    return client.post(link.split("?")[0], {"next": html.unescape(shown[1]) if shown else ""})


def sign_in_by_mail(console: Console, email: str = ANN) -> Client:
    """A browser signed in as ``email`` the way a person does it: the form, the mail's
    link (read from the queued mail), the button. ``email`` must be allowed to sign in
    (an owner of a calendar, or named by ``[owners] allow``)."""
    client = Client(console.base)
    before = len(signin_mails(console, email))
    asked = ask_for_link(client, email)
    assert asked.status == 200, asked.text
    mails = signin_mails(console, email)
    assert len(mails) == before + 1, f"no sign-in mail for {email}"
    signed = press_sign_in(client, link_in(mails[-1]))
    assert signed.status == 303 and sessions.COOKIE in client.cookies, signed.text
    return client


def session_csrf(console: Console, client: Client) -> str:
    """The console forms' field for the client's session (what a signed-in page carries)."""
    session = sessions.find(
        console.store.db, client.cookies.get(sessions.COOKIE), console.clock.now(),
        console.settings.owners,
    )  # fmt: skip
    assert session is not None, "the client has no live session"
    return sessions.csrf_token(console.store.uid_key, session)
