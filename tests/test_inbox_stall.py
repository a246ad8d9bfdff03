"""One mail must never stall everyone (issue 11, finding 1; and the SMTP silence timeout).

The daemon runs in-process with SMTP, LMTP and HTTP on 127.0.0.1 port 0 (the harness of
tests/support/inbox.py). Hostile mail is sent over a plain socket, so the test holds
the reply back while other clients talk to the daemon: a published page over HTTP and a
real accept answer over SMTP from another session must be answered within ``PROMPT``
each, and the hostile mail itself must get its 250 (or a 4xx/5xx) in bounded time.
"""

from __future__ import annotations

import itertools
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from calshare.calendars import add_calendar
from calshare.clock import FixedClock
from calshare.config import Settings, load_settings
from calshare.importer import import_calendar
from calshare.levels import Level
from calshare.publishing import publish
from calshare.sharing import share
from calshare.store import Store
from inbox import classify as classify_module
from inbox.classify import (
    HTML_READ_CHARS,
    classify,
    first_words,
    html_to_text,
    parse_mail,
)
from tests.support.inbox import (
    DOMAIN,
    OWNER,
    WAIT,
    Inbox,
    Invitation,
    Reply,
    Wire,
    db_rows,
    inbox_env,
    invitation_of,
    new_message_id,
    reply,
    stuffed,
    wait_until,
)

pytestmark = pytest.mark.network

# How soon another client must be answered while hostile mail is being read. Generous
# for a loaded two-core machine; the stall it guards against was 5.6 s per recipient.
PROMPT = 2.0
STRANGER = "mallory@example.net"
INVITEES = itertools.count()
ONE_EVENT = (
    "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\nBEGIN:VEVENT\r\n"
    "UID:one@test\r\nDTSTAMP:20261101T000000Z\r\nDTSTART:20261127T100000Z\r\n"
    "DTEND:20261127T110000Z\r\nSUMMARY:Planning\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
)


def hostile_html(size: int, recipients: list[str]) -> bytes:
    """HTML-only mail of ``<a b='`` repeated (unclosed tags and attributes), in lines the
    inbox takes (max_line_length), no token and no authentication."""
    line = "<a b='" * 600 + "\r\n"
    head = (
        f"From: {STRANGER}\r\nTo: {', '.join(recipients)}\r\nSubject: hello\r\n"
        f"Message-ID: {new_message_id()}\r\nMIME-Version: 1.0\r\n"
        "Content-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
    )
    return (head + line * (size // len(line))).encode()


def many_parts(size: int) -> bytes:
    """A multipart of tiny parts: the email package's own parse of it is slow (seconds)."""
    head = (
        f"From: {STRANGER}\r\nTo: share+x@{DOMAIN}\r\nSubject: parts\r\n"
        f"Message-ID: {new_message_id()}\r\nMIME-Version: 1.0\r\n"
        "Content-Type: multipart/mixed; boundary=b\r\n\r\n"
    )
    return (head + "--b\r\n\r\nx\r\n" * (size // 12) + "--b--\r\n").encode()


@dataclass
class Daemon:
    inbox: Inbox
    store: Store
    settings: Settings
    db_path: Path
    clock: FixedClock
    page: str  # a published calendar's page on the daemon's HTTP port

    def invite(self) -> Invitation:
        invitee = f"bob{next(INVITEES)}@example.org"
        outcome = share(self.store, self.settings, self.clock, "project", invitee, Level.TITLES)
        assert outcome.message_id is not None
        return invitation_of(self.db_path, outcome.message_id, "project", invitee)

    def storing(self) -> int:
        """How many sessions have their message in and are reading or storing it."""
        assert self.inbox.daemon is not None
        return sum(1 for session in self.inbox.daemon.sessions.open if session.calshare_storing)

    def timed_page(self) -> float:
        """Seconds until the published page was served (200, with the calendar's name)."""
        started = time.monotonic()
        with urllib.request.urlopen(self.page, timeout=WAIT) as response:
            body = response.read().decode()
            assert response.status == 200 and "project" in body
        return time.monotonic() - started

    def timed_answer(self) -> float:
        """Seconds for a whole SMTP session answering an invitation (250, and recorded)."""
        invitation = self.invite()
        recipient = f"accept+{invitation.token}@{DOMAIN}"
        raw = reply(to=recipient, subject="Accept: project", sender=invitation.invitee)
        started = time.monotonic()
        with Wire(self.inbox.smtp) as wire:
            assert wire.command("EHLO client.test").code == 250
            assert wire.envelope(invitation.invitee, [recipient])[0].code == 250
            (answered,) = wire.data(raw)
        took = time.monotonic() - started
        assert answered.code == 250, answered
        ((status,),) = db_rows(
            self.db_path, "SELECT status FROM shares WHERE id = ?", (invitation.share_id,)
        )
        assert status == "accepted"
        return took


@pytest.fixture
def make_daemon(db_path: Path, clock: FixedClock) -> Iterator[Callable[..., Daemon]]:
    started: list[tuple[Inbox, Store]] = []

    def make(**env: str) -> Daemon:
        settings = load_settings(None, env=inbox_env(**env))
        store = Store.open(db_path)
        add_calendar(store, clock, "project", f"Ann Demo <{OWNER}>", None, "UTC")
        source = db_path.parent / "project.ics"
        source.write_text(ONE_EVENT)
        import_calendar(store, settings, clock, "project", str(source))
        made = publish(store, settings, clock, "project", Level.FREE_BUSY)
        inbox = Inbox(settings, db_path, clock, http=True).start()
        started.append((inbox, store))
        page = inbox.web + made.links.html[made.links.html.index("/p/") :]
        daemon = Daemon(inbox, store, settings, db_path, clock, page)
        # A first page and a first answer warm what starts cold (templates, the readers'
        # first message), so the timings below measure stalls, not start-up.
        daemon.timed_page()
        daemon.timed_answer()
        return daemon

    yield make
    for inbox, store in started:
        try:
            inbox.stop()
        finally:
            store.close()


OPEN: list[Hostile] = []


@pytest.fixture(autouse=True)
def close_hostiles() -> Iterator[None]:
    yield
    while OPEN:
        OPEN.pop().wire.close()


class Hostile:
    """A hostile message sent over its own socket; its reply read in a thread of its own."""

    def __init__(
        self,
        port: int,
        raw: bytes,
        recipients: list[str],
        replies: int = 1,
        hello: str = "EHLO",
        timeout: float = WAIT,
    ) -> None:
        self.wire = Wire(port, timeout=timeout)
        assert self.wire.command(f"{hello} hostile.test").code == 250
        assert all(r.code == 250 for r in self.wire.envelope(STRANGER, recipients))
        self.replies: list[Reply] = []
        self.error: BaseException | None = None
        self.sent = time.monotonic()
        self.took = 0.0
        self._count = replies
        self._raw = raw
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        OPEN.append(self)

    def _run(self) -> None:
        try:
            self.replies = self.wire.data(self._raw, self._count)
        except (OSError, ConnectionError) as exc:
            self.error = exc
        self.took = time.monotonic() - self.sent

    def answered(self, within: float = WAIT) -> list[Reply]:
        self._thread.join(within)
        assert not self._thread.is_alive(), f"no reply to the hostile mail within {within:.0f} s"
        self.wire.close()
        assert self.error is None, self.error
        return self.replies


def definite(reply: Reply) -> bool:
    return reply.code == 250 or 400 <= reply.code < 600


def test_a_small_hostile_html_mail_to_20_recipients_stalls_no_one(
    make_daemon: Callable[..., Daemon],
) -> None:
    daemon = make_daemon()
    recipients = [f"share+x{number}@{DOMAIN}" for number in range(20)]
    raw = hostile_html(59_000, recipients)
    assert 58_000 < len(raw) < 64 * 1024  # small: was read on the event loop
    hostile = Hostile(daemon.inbox.smtp, raw, recipients)
    page, accept = daemon.timed_page(), daemon.timed_answer()
    assert page < PROMPT, f"the published page took {page:.1f} s while the mail was read"
    assert accept < PROMPT, f"another client's answer took {accept:.1f} s"
    (replied,) = hostile.answered()
    assert definite(replied), replied
    stored = db_rows(daemon.db_path, "SELECT kind FROM inbound WHERE recipient LIKE 'share+x%'")
    assert sorted(kind for (kind,) in stored) == ["unknown"] * 20  # read once, for each


def test_the_same_over_lmtp_answers_each_recipient(make_daemon: Callable[..., Daemon]) -> None:
    daemon = make_daemon()
    recipients = [f"share+y{number}@{DOMAIN}" for number in range(20)]
    hostile = Hostile(daemon.inbox.lmtp, hostile_html(59_000, recipients), recipients, 20, "LHLO")
    assert daemon.timed_page() < PROMPT
    assert daemon.timed_answer() < PROMPT
    assert all(reply.code == 250 for reply in hostile.answered()), hostile.replies


def test_two_hostile_megabytes_at_once_delay_no_later_message(
    make_daemon: Callable[..., Daemon],
) -> None:
    daemon = make_daemon()
    first = [f"share+a{number}@{DOMAIN}" for number in range(20)]
    second = [f"share+b{number}@{DOMAIN}" for number in range(20)]
    hostiles = [
        Hostile(daemon.inbox.smtp, hostile_html(1 << 20, first), first),
        Hostile(daemon.inbox.smtp, hostile_html(1 << 20, second), second),
    ]
    for _ in range(3):  # later normal messages, and pages, while both are in flight
        assert daemon.timed_answer() < PROMPT
        assert daemon.timed_page() < PROMPT
    for hostile in hostiles:
        (replied,) = hostile.answered()
        assert replied.code == 250, replied
    assert db_rows(daemon.db_path, "SELECT COUNT(*) FROM inbound WHERE kind = 'unknown'") == [(40,)]


def test_megabytes_of_empty_lines_arriving_stall_no_one(
    make_daemon: Callable[..., Daemon],
) -> None:
    # aiosmtpd reads DATA a line at a time, and buffered lines without a turn of the loop.
    # A quarter of a million lines each: at a million, the streams still stall the loop
    # for seconds now and then (a known residual, in the closing note of issue 11). The
    # per-line work is aiosmtpd's own and shares two cores with the senders: the bound is
    # "never stalled for the streams' whole length", not PROMPT (2.09 s seen in a full run).
    daemon = make_daemon()
    raw = (
        f"From: {STRANGER}\r\nTo: share+x@{DOMAIN}\r\nSubject: lines\r\n"
        f"Message-ID: {new_message_id()}\r\n\r\n" + "\r\n" * (1 << 18)
    ).encode()
    senders = [
        Hostile(daemon.inbox.smtp, raw, [f"share+{x}@{DOMAIN}"], timeout=120) for x in "abcd"
    ]
    assert daemon.timed_page() < 5.0
    assert daemon.timed_answer() < 5.0
    for sender in senders:
        (replied,) = sender.answered(120)
        assert replied.code == 250, replied


def test_slow_large_mail_uses_one_reader_and_answers_still_pass(
    make_daemon: Callable[..., Daemon],
) -> None:
    # Two large messages the email package takes seconds over: large mail gets at most
    # all readers but one, so an answer behind them is read at once.
    daemon = make_daemon(CALSHARE_INBOX_READ_TIMEOUT_SECONDS="60")
    slow = [
        Hostile(daemon.inbox.smtp, many_parts(1 << 20), [f"share+{x}@{DOMAIN}"], timeout=120)
        for x in "ab"
    ]
    # Both in (receiving 87,000 short lines is aiosmtpd's own work, on the loop) and
    # being read: the one by a reader, the other waiting for its turn.
    wait_until(lambda: daemon.storing() == 2, "both messages in")
    assert daemon.timed_answer() < PROMPT
    assert daemon.timed_page() < PROMPT
    for hostile in slow:
        (replied,) = hostile.answered(120)
        assert replied.code == 250, replied


def test_a_message_not_read_by_the_deadline_is_stored_unread_and_the_reader_replaced(
    make_daemon: Callable[..., Daemon],
) -> None:
    daemon = make_daemon(CALSHARE_INBOX_READ_TIMEOUT_SECONDS="0.5")
    hostile = Hostile(daemon.inbox.smtp, many_parts(3 << 20), [f"share+x@{DOMAIN}"])
    (replied,) = hostile.answered()
    assert replied.code == 250, replied  # kept, not refused: a 451 would come back for days
    ((kind, reason, outcome),) = db_rows(
        daemon.db_path,
        "SELECT kind, reason, outcome FROM inbound WHERE recipient = ?",
        (f"share+x@{DOMAIN}",),
    )
    assert (kind, outcome) == ("unknown", "ignored")
    assert reason == "not read: reading took longer than 0.5 s"
    kept = "SELECT COUNT(*) FROM inbound_raw JOIN inbound ON inbound.id = inbound_id"
    assert db_rows(daemon.db_path, kept + " WHERE recipient = ?", (f"share+x@{DOMAIN}",)) == [(1,)]
    assert daemon.inbox.daemon is not None and daemon.inbox.daemon.readers.replaced == 1
    for _ in range(3):  # the readers work on (the killed one was replaced)
        assert daemon.timed_answer() < PROMPT


# --- the command timeout: silence, not the length of a command


def test_an_idle_client_is_cut_after_the_command_timeout(
    make_daemon: Callable[..., Daemon],
) -> None:
    # 60 s, not RFC 5321's 5 minutes: see docs/operator-guide.md, "The inbox"
    assert Settings().inbox.command_timeout_seconds == 60
    daemon = make_daemon(CALSHARE_INBOX_COMMAND_TIMEOUT_SECONDS="5")
    with Wire(daemon.inbox.smtp) as wire:
        assert wire.command("EHLO idle.test").code == 250
        wire.sock.settimeout(WAIT)
        assert wire.file.readline() == b"", "the idle connection was not closed"


def test_a_message_trickling_in_is_not_cut_while_bytes_arrive(
    make_daemon: Callable[..., Daemon],
) -> None:
    # aiosmtpd cuts a DATA that lasts longer than the timeout, however lively the client.
    daemon = make_daemon(CALSHARE_INBOX_COMMAND_TIMEOUT_SECONDS="5")
    invitation = daemon.invite()
    recipient = f"accept+{invitation.token}@{DOMAIN}"
    raw = reply(to=recipient, subject="Accept: project", sender=invitation.invitee)
    with Wire(daemon.inbox.smtp) as wire:
        assert wire.command("EHLO slow.test").code == 250
        assert wire.envelope(invitation.invitee, [recipient])[0].code == 250
        assert wire.command("DATA").code == 354
        for number in range(8):  # 8 s in all, a header line every second
            wire.send(f"X-Slow-{number}: still here\r\n".encode())
            time.sleep(1)
        wire.send(stuffed(raw))
        answered = wire.reply()
    assert answered.code == 250, answered


# --- reading HTML: linear, bounded, and the answers still found


HOSTILE_MARKUP = ["<a b='", "<a>", "<!--", "<a b=\"x\" c='y'>", "<blockquote>", "&amp;", "<a <"]


@pytest.mark.parametrize("unit", HOSTILE_MARKUP)
def test_html_of_a_megabyte_is_read_in_bounded_time(unit: str) -> None:
    markup = unit * ((1 << 20) // len(unit))
    started = time.process_time()
    html_to_text(markup)
    spent = time.process_time() - started
    assert spent < 2.0, f"{spent:.1f} s of CPU for 1 MB of {unit!r}"  # html.parser: ~27 min


def test_a_hostile_megabyte_to_20_recipients_classifies_in_bounded_time() -> None:
    recipients = [f"share+x{number}@{DOMAIN}" for number in range(20)]
    mail = parse_mail(hostile_html(1 << 20, recipients))
    started = time.process_time()
    verdicts = [
        classify(mail, mail_from=STRANGER, recipient=recipient, domain=DOMAIN)
        for recipient in recipients
    ]
    spent = time.process_time() - started
    assert {verdict.kind for verdict in verdicts} == {"unknown"}
    assert spent < 2.0, f"{spent:.1f} s of CPU"


def test_the_body_is_read_once_for_all_recipients(monkeypatch: pytest.MonkeyPatch) -> None:
    reads: list[object] = []
    real = classify_module._body_text

    def counted(message: object) -> str:
        reads.append(message)
        return real(message)  # type: ignore[arg-type]

    monkeypatch.setattr(classify_module, "_body_text", counted)
    recipients = [f"share+x{number}@{DOMAIN}" for number in range(20)]
    mail = parse_mail(hostile_html(10_000, recipients))
    for recipient in recipients:
        classify(mail, mail_from=STRANGER, recipient=recipient, domain=DOMAIN)
    assert len(reads) == 1


def test_an_answer_behind_outlooks_long_head_is_still_read() -> None:
    styles = "p.MsoNormal, li.MsoNormal { margin: 0cm; font-size: 11.0pt; }\n" * 800
    markup = (
        f'<html><head><meta charset="utf-8"><style>{styles}</style></head><body>'
        '<div class="WordSection1"><p class="MsoNormal">Godta<o:p></o:p></p></div>'
        '<div id="divRplyFwdMsg"><b>Fra:</b> Ann<br>Decline</div></body></html>'
    )
    assert 40_000 < len(markup) < HTML_READ_CHARS
    assert first_words(html_to_text(markup)) == "Godta"


def test_html_beyond_the_prefix_is_not_read() -> None:
    assert first_words(html_to_text("<p>" + " " * HTML_READ_CHARS + "Accept</p>")) == ""
    assert first_words(html_to_text("<p>" + " " * 1000 + "Accept</p>")) == "Accept"
