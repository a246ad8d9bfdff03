"""The inbox harness: the daemon in-process, a world of calendars and shares, mail clients.

``Inbox`` runs ``calshare.daemon.Daemon`` with its own asyncio loop in a thread of the
test, on ports the kernel picks, sharing the test's FixedClock. ``make_world``/``world``
(fixtures: a test module imports them and names them in its ``__all__``) add two calendars
and start a daemon whose relay never answers, so every mail it sends stays queued in the
outbox for the test to read. Replies are built like real clients build them and sent with
aiosmtplib, or line by line over a socket (``Wire``) where the bytes on the wire matter.
"""

from __future__ import annotations

import asyncio
import re
import socket
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import dataclass
from datetime import timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path
from typing import Any

import aiosmtplib
import pytest

from calshare.calendars import add_calendar
from calshare.clock import FixedClock
from calshare.config import Settings, load_settings
from calshare.daemon import Daemon, Listen
from calshare.levels import Level
from calshare.sharing import share
from calshare.store import Store
from mailer.compose import NoticeSpec
from tests.conftest import NOW, ROOT, CliResult
from tests.support.net import HOST, free_port

Cli = Callable[..., CliResult]
DOMAIN = "share.example.org"  # the default [mail] domain
OWNER = "ann@example.org"
INVITEE = "bob@example.org"
BASE_URL = "https://cal.example.org"
CALSHARE = ROOT / ".venv" / "bin" / "calshare"
TOKEN = re.compile(r"[a-z2-7]{26}")
WAIT = 30.0  # seconds: a bound on every wait, never a pause
TEMPORARY = "451 4.3.0"


def refused(port: int) -> bool:
    try:
        socket.create_connection((HOST, port), timeout=WAIT).close()
    except ConnectionRefusedError:
        return True
    return False


def inbox_env(**more: str) -> dict[str, str]:
    """Settings for a test daemon: links on BASE_URL, a relay that never answers."""
    return {
        "CALSHARE_HTTP_BASE_URL": BASE_URL,
        "CALSHARE_RELAY_HOST": HOST,
        "CALSHARE_RELAY_PORT": str(free_port()),
        "CALSHARE_OUTBOX_GIVE_UP_HOURS": "720",
        **more,
    }


def wait_until(condition: Callable[[], Any], what: str, timeout: float = WAIT) -> Any:
    """Bounded polling: the first true value of ``condition``, or fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.01)


def db_rows(db_path: Path, sql: str, parameters: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    with closing(sqlite3.connect(db_path, timeout=WAIT)) as conn:
        return conn.execute(sql, parameters).fetchall()


def count(db_path: Path, sql: str, parameters: tuple[Any, ...] = ()) -> int:
    return int(db_rows(db_path, sql, parameters)[0][0])


# --- the daemon, in-process


class Inbox:
    """calshare.daemon.Daemon with its own asyncio loop in a thread, SMTP and LMTP on port 0."""

    def __init__(
        self, settings: Settings, db_path: Path, clock: FixedClock, *, http: bool = False
    ) -> None:
        self.settings = settings
        self.db_path = db_path
        self.clock = clock
        self.http = http  # also serve HTTP (feeds, answer pages) on a port of its own
        self._thread = threading.Thread(target=self._run, name="test-inbox", daemon=True)
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self.daemon: Daemon | None = None

    @property
    def smtp(self) -> int:
        assert self.daemon is not None
        return self.daemon.ports["smtp"]

    @property
    def lmtp(self) -> int:
        assert self.daemon is not None
        return self.daemon.ports["lmtp"]

    @property
    def web(self) -> str:
        assert self.daemon is not None
        return f"http://{HOST}:{self.daemon.ports['http']}"

    def start(self) -> Inbox:
        self._thread.start()
        assert self._ready.wait(WAIT), "the daemon did not start"
        if self._error is not None:
            raise self._error
        return self

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # noqa: BLE001 (stop() or start() raises it in the test)
            self._error = exc
            self._ready.set()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        self.daemon = Daemon(self.settings, self.db_path, self.clock)
        web = Listen(HOST, 0) if self.http else None
        await self.daemon.start(Listen(HOST, 0), Listen(HOST, 0), web)
        self._ready.set()
        await self._stop.wait()
        await self.daemon.stop()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def request_stop(self) -> None:
        """What SIGTERM does in ``calshare serve``: Daemon.stop(), without waiting for it."""
        if self._loop is not None and self._stop is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)

    def stopped_within(self, seconds: float) -> bool:
        self._thread.join(seconds)
        return not self._thread.is_alive()

    def stop(self) -> None:
        self.request_stop()
        self._thread.join(WAIT)
        assert not self._thread.is_alive(), "the daemon did not stop"
        if self._error is not None:
            raise self._error


@dataclass(frozen=True)
class Invitation:
    calendar: str
    invitee: str
    token: str
    share_id: int
    message_id: str
    bounce_key: str  # bounces+<key>@DOMAIN is the invitation's envelope sender
    raw: bytes  # the invitation as queued


@dataclass
class World:
    """The test's database (a calendar or two, their shares) and a daemon serving it."""

    db_path: Path
    clock: FixedClock
    settings: Settings
    store: Store
    inbox: Inbox

    def invite(
        self, invitee: str = INVITEE, calendar: str = "project", level: Level = Level.TITLES
    ) -> Invitation:
        outcome = share(self.store, self.settings, self.clock, calendar, invitee, level)
        assert outcome.action == "invited" and outcome.message_id
        return invitation_of(self.db_path, outcome.message_id, calendar, invitee)

    def rows(self, sql: str, parameters: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        return db_rows(self.db_path, sql, parameters)

    def count(self, sql: str, parameters: tuple[Any, ...] = ()) -> int:
        return count(self.db_path, sql, parameters)

    def status(self, invitation: Invitation) -> str:
        (row,) = self.rows("SELECT status FROM shares WHERE id = ?", (invitation.share_id,))
        return str(row[0])

    def outcomes(self, invitation: Invitation) -> list[str]:
        return [
            row[0]
            for row in self.rows(
                "SELECT outcome FROM inbound WHERE share_id = ? ORDER BY id",
                (invitation.share_id,),
            )
        ]

    def mails(self, invitation: Invitation, kind: str) -> list[Queued]:
        return queued(self.db_path, "o.share_id = ? AND o.kind = ?", (invitation.share_id, kind))

    def replies(self) -> list[str]:
        """Kinds of every mail the inbox queued (everything but the invitations)."""
        return [row[0] for row in self.rows("SELECT kind FROM outbox WHERE kind != 'invitation'")]


@dataclass(frozen=True)
class Queued:
    """A mail in the outbox, with its bytes (kept while it waits for the relay)."""

    kind: str
    recipients: str
    message_id: str
    raw: bytes

    @property
    def message(self) -> EmailMessage:
        parsed = message_from_bytes(self.raw, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed

    @property
    def text(self) -> str:
        part = self.message.get_body(("plain",))
        assert isinstance(part, EmailMessage)
        return str(part.get_content())


def queued(db_path: Path, where: str, parameters: tuple[Any, ...]) -> list[Queued]:
    rows = db_rows(
        db_path,
        f"""SELECT o.kind, o.recipients, o.message_id, b.raw, b.spec
            FROM outbox o LEFT JOIN outbox_bodies b ON b.outbox_id = o.id
            WHERE {where} ORDER BY o.id""",
        parameters,
    )
    # Answers queue their mails as specs, composed by the sender: compose them the same way.
    return [
        Queued(kind, recipients, message_id, raw or composed(spec))
        for kind, recipients, message_id, raw, spec in rows
    ]


def composed(spec: str | None) -> bytes:
    return NoticeSpec.from_json(spec).compose(NOW).raw if spec else b""


def invitation_of(db_path: Path, message_id: str, calendar: str, invitee: str) -> Invitation:
    ((share_id, envelope_from, raw),) = db_rows(
        db_path,
        """SELECT o.share_id, o.envelope_from, b.raw
           FROM outbox o JOIN outbox_bodies b ON b.outbox_id = o.id
           WHERE o.message_id = ?""",
        (message_id,),
    )
    token = re.search(rb"share\+([a-z2-7]{26})@", raw)
    key = re.fullmatch(rf"bounces\+([^@]+)@{re.escape(DOMAIN)}", envelope_from)
    assert token is not None and key is not None
    return Invitation(calendar, invitee, token[1].decode(), share_id, message_id, key[1], raw)


@pytest.fixture
def make_world(db_path: Path, clock: FixedClock) -> Iterator[Callable[..., World]]:
    """``make_world(CALSHARE_INBOX_…="…")``: calendars, and a daemon with those settings."""
    opened: list[tuple[Store, Inbox]] = []

    def make(**env: str) -> World:
        settings = load_settings(None, env=inbox_env(**env))
        store = Store.open(db_path)
        if not store.db.execute("SELECT 1 FROM calendars").fetchone():
            add_calendar(store, clock, "project", f"Ann Demo <{OWNER}>", None, "UTC")
            add_calendar(store, clock, "family", f"Ann Demo <{OWNER}>", None, "UTC")
        inbox = Inbox(settings, db_path, clock)
        opened.append((store, inbox))
        inbox.start()
        return World(db_path, clock, settings, store, inbox)

    yield make
    try:
        for _, inbox in opened:
            inbox.stop()
    finally:
        for store, _ in opened:
            store.close()


@pytest.fixture
def world(make_world: Callable[..., World]) -> World:
    return make_world()


def tables_holding(db_path: Path, secret: str) -> set[str]:
    with closing(sqlite3.connect(db_path)) as conn:
        tables = [
            row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        ]
        return {
            table
            for table in tables
            for row in conn.execute(f'SELECT * FROM "{table}"')
            for value in row
            if secret.encode() in (value if isinstance(value, bytes) else str(value).encode())
        }


# --- messages, built like real clients build them


def new_message_id() -> str:
    return make_msgid(domain="mail.example.org")


def reply(
    *,
    to: str,
    subject: str = "Re: Ann Demo shared the calendar “project” with you",
    body: str = "",
    sender: str = INVITEE,
    message_id: str | None = None,
    charset: str = "utf-8",
    cte: str | None = None,
    html: str | None = None,
    headers: tuple[tuple[str, str], ...] = (),
) -> bytes:
    message = EmailMessage()
    message["From"] = f"Bob Invitee <{sender}>"
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = format_datetime(NOW + timedelta(minutes=5))
    message["Message-ID"] = message_id or new_message_id()
    for name, value in headers:
        message[name] = value
    if html is not None:
        message.set_content(html, subtype="html", charset=charset, cte=cte)
    else:
        message.set_content(body, charset=charset, cte=cte)
    return message.as_bytes(policy=policy.SMTP)


def quoted_invitation(invitation: Invitation, intro: str) -> str:
    """The invitation as a client quotes it below a reply: both links, both answers' words."""
    domain = DOMAIN
    return (
        f"\n\n{intro}\n"
        '> Ann Demo wants to share the calendar "project" with you.\n'
        ">\n"
        f"> Accept: mailto:accept+{invitation.token}@{domain}?subject=Accept%3A%20project\n"
        f"> Decline: mailto:decline+{invitation.token}@{domain}?subject=Decline%3A%20project\n"
        "> Reply with accept or decline on the first line.\n"
    )


def answer(way: str, kind: str, invitation: Invitation) -> tuple[str, bytes]:
    """(recipient, message) for one way of answering: the address, the subject, the words."""
    token = invitation.token
    if way == "address":  # the mailto link, as the invitation writes it
        subject = "Accept: project" if kind == "accept" else "Decline: project"
        return f"{kind}+{token}@{DOMAIN}", reply(to=f"{kind}+{token}@{DOMAIN}", subject=subject)
    share_address = f"share+{token}@{DOMAIN}"
    if way == "subject":
        subject = "Accept: project" if kind == "accept" else "AW: Decline: project"
        return share_address, reply(to=share_address, subject=subject, body="See subject.\n")
    if way == "html":  # Gmail on the web: HTML only, the invitation in a gmail_quote
        first_line = "Yes, thanks!" if kind == "accept" else "Nei takk"
        quote = quoted_invitation(invitation, "").replace("\n", "<br>")
        html = (
            f'<div dir="ltr">{first_line}</div><br><div class="gmail_quote">'
            f'<div class="gmail_attr">On Thu, Ann Demo wrote:</div>'
            f"<blockquote>{quote}</blockquote></div>"
        )
        return share_address, reply(to=share_address, html=html, cte="quoted-printable")
    assert way == "words"
    if kind == "accept":  # Outlook in Norwegian, base64 UTF-8
        body = "Godta\n" + quoted_invitation(invitation, "Den 26.11.2026 skrev Ann Demo:")
        raw = reply(
            to=share_address,
            subject="SV: Ann Demo har delt kalenderen «project» med deg",
            body=body,
            cte="base64",
        )
    else:  # an old client: ISO-8859-1, quoted-printable
        body = "Avslå, takk\n" + quoted_invitation(invitation, "Ann Demo skrev:")
        raw = reply(
            to=share_address,
            subject="Sv: Ann Demo har delt kalenderen med deg",
            body=body,
            charset="iso-8859-1",
            cte="quoted-printable",
        )
    return share_address, raw


def prepend(raw: bytes, *headers: str) -> bytes:
    """Header fields on top of a message, as the receiving servers add them."""
    return "".join(f"{header}\r\n" for header in headers).encode() + raw


# --- SMTP and LMTP clients


@dataclass(frozen=True)
class Reply:
    code: int
    text: str

    def __str__(self) -> str:
        return f"{self.code} {self.text}"


@dataclass
class Transaction:
    mail: Reply
    rcpt: dict[str, Reply]
    data: Reply | None  # None: no recipient was accepted, DATA was not sent


async def _transaction(
    port: int, mail_from: str, recipients: list[str], raw: bytes, *, size: bool = True
) -> Transaction:
    client = aiosmtplib.SMTP(
        hostname=HOST, port=port, local_hostname="client.test", start_tls=False, timeout=WAIT
    )
    await client.connect()
    try:
        await client.ehlo()
        options = [f"SIZE={len(raw)}"] if size else []
        try:
            response = await client.mail(mail_from, options=options)
        except aiosmtplib.SMTPResponseException as exc:
            return Transaction(Reply(exc.code, exc.message), {}, None)
        mail = Reply(response.code, response.message)
        rcpt = {}
        for recipient in recipients:
            try:
                response = await client.rcpt(recipient)
            except aiosmtplib.SMTPResponseException as exc:
                rcpt[recipient] = Reply(exc.code, exc.message)
            else:
                rcpt[recipient] = Reply(response.code, response.message)
        if not any(reply.code == 250 for reply in rcpt.values()):
            return Transaction(mail, rcpt, None)
        try:
            response = await client.data(raw)
        except aiosmtplib.SMTPResponseException as exc:
            return Transaction(mail, rcpt, Reply(exc.code, exc.message))
        return Transaction(mail, rcpt, Reply(response.code, response.message))
    finally:
        try:
            await client.quit()
        except aiosmtplib.SMTPException:
            client.close()


def transaction(
    port: int, raw: bytes, recipients: list[str], mail_from: str = INVITEE, *, size: bool = True
) -> Transaction:
    return asyncio.run(_transaction(port, mail_from, recipients, raw, size=size))


def deliver(port: int, raw: bytes, recipient: str, mail_from: str = INVITEE) -> Reply:
    """Send one message to one recipient the inbox serves; the answer to DATA."""
    sent = transaction(port, raw, [recipient], mail_from)
    assert sent.rcpt[recipient].code == 250, sent.rcpt
    assert sent.data is not None
    return sent.data


def stuffed(raw: bytes) -> bytes:
    """DATA's bytes on the wire: dot-stuffed, ending CRLF . CRLF (bare CR or LF left alone)."""
    if not raw.endswith(b"\r\n"):
        raw += b"\r\n"
    lines = raw.split(b"\r\n")
    return b"\r\n".join(b"." + line if line.startswith(b".") else line for line in lines) + b".\r\n"


class Wire:
    """SMTP/LMTP line by line over a socket: every byte and every reply as it is."""

    def __init__(self, port: int, timeout: float = WAIT) -> None:
        self.sock = socket.create_connection((HOST, port), timeout=timeout)
        self.file = self.sock.makefile("rb")
        self.greeting = self.reply()

    def __enter__(self) -> Wire:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.file.close()
        self.sock.close()

    def reply(self) -> Reply:
        lines = []
        while True:
            line = self.file.readline(1 << 16)
            if not line:
                raise ConnectionError("the server closed the connection")
            lines.append(line.rstrip(b"\r\n").decode("utf-8", "replace"))
            if line[3:4] != b"-":
                break
        return Reply(int(lines[-1][:3]), "\n".join(line[4:] for line in lines))

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def command(self, line: str) -> Reply:
        self.send(line.encode() + b"\r\n")
        return self.reply()

    def envelope(self, mail_from: str, recipients: list[str]) -> list[Reply]:
        assert self.command(f"MAIL FROM:<{mail_from}>").code == 250
        return [self.command(f"RCPT TO:<{recipient}>") for recipient in recipients]

    def data(self, raw: bytes, replies: int = 1, then: bytes = b"") -> list[Reply]:
        """Send the message; read ``replies`` answers (``then``: bytes sent with the dot)."""
        started = self.command("DATA")
        assert started.code == 354, started
        self.send(stuffed(raw) + then)
        return [self.reply() for _ in range(replies)]
