"""The inbox over real sockets: SMTP and LMTP on 127.0.0.1, the daemon as it runs, no mocks.

Most tests run ``calshare.daemon.Daemon`` in-process: its asyncio loop in a thread of
the test, listening on ports the kernel picks, sharing the test's FixedClock (so an
invitation can be made to expire). The shutdown and crash tests run
``calshare serve`` as a subprocess and signal it. Replies are built like real
clients' and sent with aiosmtplib, smtplib.LMTP, or (where the bytes on the wire are
the point: LMTP's one reply per recipient, bare line ends, a message cut in half)
a small line client over a plain socket.

Outgoing mail goes to a relay port nothing listens on, with give-up set far out: the
daemon's sender tries, fails and leaves every mail queued, so the outbox keeps each
mail's bytes for the test to read.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import random
import re
import shutil
import signal
import smtplib
import sqlite3
import ssl
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import closing, suppress
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import aiosmtplib
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from calshare import answers
from calshare.calendars import add_calendar
from calshare.clock import FixedClock
from calshare.config import load_settings
from calshare.levels import Level
from calshare.sharing import share, unshare
from calshare.store import Store
from inbox.classify import parse_mail, reported_recipients
from tests.conftest import CORPUS
from tests.support.inbox import (
    CALSHARE,
    DOMAIN,
    HOST,
    INVITEE,
    OWNER,
    TEMPORARY,
    TOKEN,
    WAIT,
    Cli,
    Invitation,
    Reply,
    Wire,
    World,
    answer,
    count,
    db_rows,
    deliver,
    inbox_env,
    make_world,
    new_message_id,
    prepend,
    quoted_invitation,
    refused,
    reply,
    stuffed,
    tables_holding,
    transaction,
    wait_until,
    world,
)

__all__ = ["make_world", "world"]  # fixtures

pytestmark = pytest.mark.network

# --- 1. accept and decline, three ways each


@pytest.mark.parametrize("way", ["address", "subject", "words", "html"])
@pytest.mark.parametrize("kind", ["accept", "decline"])
def test_an_answer_is_recorded_before_250_with_its_mails_queued(
    world: World, cli: Cli, way: str, kind: str
) -> None:
    invitation = world.invite(f"Bob Invitee <{INVITEE}>")
    recipient, raw = answer(way, kind, invitation)

    answered = deliver(world.inbox.smtp, raw, recipient)

    assert answered.code == 250, answered
    expected = "accepted" if kind == "accept" else "declined"
    assert answered.text.endswith(expected), answered
    shares = cli("shares", "--json").json()
    assert [(item["email"], item["status"]) for item in shares] == [(INVITEE, expected)]
    assert world.outcomes(invitation) == [expected]
    notices = world.mails(invitation, f"owner_{expected}")
    assert [mail.recipients for mail in notices] == [f'["{OWNER}"]']
    assert "Bob Invitee" in notices[0].text
    welcome = world.mails(invitation, "welcome")
    if kind == "decline":
        assert welcome == []
        assert world.rows("SELECT feed_hash FROM shares") == [(None,)]
        return
    (mail,) = welcome
    assert mail.recipients == f'["{INVITEE}"]'
    assert mail.message["To"].addresses[0].addr_spec == INVITEE
    text = mail.text
    feeds = re.findall(r"(webcal|https)://cal\.example\.org/feeds/([^\s/]+)\.ics", text)
    assert {scheme for scheme, _ in feeds} == {"webcal", "https"}, text
    secrets = {secret for _, secret in feeds}
    assert len(secrets) == 1, feeds
    (secret,) = secrets
    assert TOKEN.fullmatch(secret), secret
    assert secret != invitation.token
    assert world.rows("SELECT feed_hash FROM shares") == [
        (hashlib.sha256(secret.encode()).hexdigest(),)
    ]
    # the secret itself is in the queued welcome mail's bytes and nowhere else
    assert tables_holding(world.db_path, secret) == {"outbox_bodies"}
    # and in no one else's mail: the owner's notice names the invitee, never their feed
    owner_mail = notices[0].message
    assert secret not in owner_mail.get_body(("plain",)).get_content()
    assert secret not in owner_mail.get_body(("html",)).get_content()


def test_lmtp_single_recipient_with_smtplib(world: World, cli: Cli) -> None:
    invitation = world.invite()
    recipient, raw = answer("address", "accept", invitation)
    with smtplib.LMTP(HOST, world.inbox.lmtp, local_hostname="client.test", timeout=WAIT) as lmtp:
        failed = lmtp.sendmail(INVITEE, [recipient], raw)
    assert failed == {}
    assert cli("shares", "--json").json()[0]["status"] == "accepted"


# --- 2. 250 only after the commit


def test_the_row_is_there_when_the_client_sees_250(world: World) -> None:
    invitations = [world.invite(f"person{number}@example.org") for number in range(5)]
    observer = sqlite3.connect(world.db_path, timeout=WAIT)
    try:
        for invitation in invitations:
            recipient = f"accept+{invitation.token}@{DOMAIN}"
            message_id = new_message_id()
            raw = reply(to=recipient, sender=invitation.invitee, message_id=message_id)
            answered = deliver(world.inbox.smtp, raw, recipient, invitation.invitee)
            assert answered.code == 250
            # right away, from another connection: the commit is visible
            assert observer.execute(
                "SELECT outcome FROM inbound WHERE message_id = ?", (message_id,)
            ).fetchall() == [("accepted",)]
            assert observer.execute(
                "SELECT status FROM shares WHERE id = ?", (invitation.share_id,)
            ).fetchall() == [("accepted",)]
    finally:
        observer.close()


# --- 3. the same message twice


def test_a_duplicate_delivery_answers_250_and_changes_nothing(world: World) -> None:
    invitation = world.invite()
    recipient, raw = answer("address", "accept", invitation)
    first = deliver(world.inbox.smtp, raw, recipient)
    second = deliver(world.inbox.smtp, raw, recipient)
    # and once more over LMTP, as Postfix would after a lost reply
    with smtplib.LMTP(HOST, world.inbox.lmtp, local_hostname="client.test", timeout=WAIT) as lmtp:
        assert lmtp.sendmail(INVITEE, [recipient], raw) == {}

    assert (first.code, second.code) == (250, 250)
    assert first.text.endswith("accepted") and second.text.endswith("duplicate")
    assert world.count("SELECT COUNT(*) FROM inbound") == 1
    assert len(world.mails(invitation, "welcome")) == 1
    assert len(world.mails(invitation, "owner_accepted")) == 1
    assert world.status(invitation) == "accepted"


# --- 4. who and how much the listener takes


@pytest.mark.parametrize(
    "recipient",
    [
        f"someone@{DOMAIN}",
        f"accept@{DOMAIN}",  # a form without its token
        "accept+aaaaaaaaaaaaaaaaaaaaaaaaaa@other.example.org",  # another domain
        INVITEE,
        f"postmaster@{DOMAIN}",  # not configured as an operator here
    ],
)
def test_an_address_we_do_not_serve_is_refused_at_rcpt(world: World, recipient: str) -> None:
    sent = transaction(world.inbox.smtp, reply(to=recipient, body="accept"), [recipient])
    assert str(sent.rcpt[recipient]).startswith("550 5.1.1"), sent.rcpt
    assert sent.data is None
    assert world.count("SELECT COUNT(*) FROM inbound") == 0


def test_operators_are_served_and_refused_recipients_do_not_take_the_rest(
    make_world: Callable[..., World],
) -> None:
    world = make_world(CALSHARE_INBOX_OPERATORS=f"postmaster@{DOMAIN}, *-admin@{DOMAIN}")
    invitation = world.invite()
    accept = f"accept+{invitation.token}@{DOMAIN}"
    recipients = [f"postmaster@{DOMAIN}", f"calendar-admin@{DOMAIN}", f"nobody@{DOMAIN}", accept]
    sent = transaction(world.inbox.smtp, reply(to=accept), recipients)
    assert [sent.rcpt[address].code for address in recipients] == [250, 250, 550, 250]
    assert sent.data is not None and sent.data.code == 250, sent.data
    stored = world.rows("SELECT recipient, outcome FROM inbound ORDER BY id")
    assert stored == [
        (f"postmaster@{DOMAIN}", "ignored"),
        (f"calendar-admin@{DOMAIN}", "ignored"),
        (f"accept+…@{DOMAIN}", "accepted"),
    ]


def test_limits_recipients_size_and_line_length(make_world: Callable[..., World]) -> None:
    world = make_world(
        CALSHARE_INBOX_MAX_RECIPIENTS="2",
        CALSHARE_INBOX_MAX_MESSAGE_BYTES="4096",
        CALSHARE_INBOX_MAX_LINE_LENGTH="1000",
    )
    first, second, third = (world.invite(f"p{number}@example.org") for number in range(3))
    to = [f"decline+{invitation.token}@{DOMAIN}" for invitation in (first, second, third)]

    # a third recipient: 452, the first two are delivered
    sent = transaction(world.inbox.smtp, reply(to=to[0], sender="p0@example.org"), to)
    assert [sent.rcpt[address].code for address in to] == [250, 250, 452]
    assert str(sent.rcpt[to[2]]).startswith("452 4.5.3")
    assert sent.data is not None and sent.data.code == 250
    assert world.count("SELECT COUNT(*) FROM inbound") == 2

    # too big: 552, declared in MAIL (SIZE=) or found out during DATA
    big = reply(to=to[2], sender="p2@example.org", body="decline\n" + ("x" * 70 + "\n") * 100)
    assert len(big) > 4096
    declared = transaction(world.inbox.smtp, big, [to[2]], "p2@example.org")
    assert declared.mail.code == 552, declared.mail
    undeclared = transaction(world.inbox.smtp, big, [to[2]], "p2@example.org", size=False)
    assert undeclared.data is not None and undeclared.data.code == 552, undeclared.data

    # a line longer than max_line_length: 500 after the whole message is read
    long_line = (
        f"From: p2@example.org\r\nTo: {to[2]}\r\nMessage-ID: {new_message_id()}\r\n\r\n"
        f"decline\r\n{'y' * 1500}\r\n"
    ).encode()
    too_long = transaction(world.inbox.smtp, long_line, [to[2]], "p2@example.org")
    assert too_long.data is not None and too_long.data.code == 500, too_long.data

    assert world.count("SELECT COUNT(*) FROM inbound") == 2
    assert world.status(third) == "invited"
    # the same session still works after each refusal: the next message is taken
    ok = transaction(
        world.inbox.smtp, reply(to=to[2], sender="p2@example.org"), [to[2]], "p2@example.org"
    )
    assert ok.data is not None and ok.data.code == 250
    assert world.status(third) == "declined"


# --- 5. the store cannot take it: 451, and the retry is taken


class LogEvents(logging.Handler):
    """Log lines of one logger, for waiting on something the daemon says it did."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []
        self.changed = threading.Condition()

    def emit(self, record: logging.LogRecord) -> None:
        with self.changed:
            self.lines.append(record.getMessage())
            self.changed.notify_all()

    def wait_for(self, pattern: str, timeout: float = WAIT) -> str:
        with self.changed:
            found = self.changed.wait_for(
                lambda: next((line for line in self.lines if re.search(pattern, line)), None),
                timeout,
            )
        assert found, f"no log line like {pattern!r} in {self.lines}"
        return str(found)


@pytest.fixture
def inbox_log() -> Iterator[LogEvents]:
    handler = LogEvents()
    logger = logging.getLogger("inbox.server")
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)


def test_a_locked_database_answers_451_and_stores_nothing_then_the_retry_is_taken(
    make_world: Callable[..., World], inbox_log: LogEvents
) -> None:
    world = make_world(CALSHARE_INBOX_COMMIT_TIMEOUT_SECONDS="1")
    invitation = world.invite()
    recipient, raw = answer("address", "accept", invitation)
    locker = sqlite3.connect(world.db_path, isolation_level=None, timeout=WAIT)
    try:
        locker.execute("BEGIN IMMEDIATE")
        started = time.monotonic()
        first = deliver(world.inbox.smtp, raw, recipient)
        assert str(first).startswith(TEMPORARY), first
        assert time.monotonic() - started < 4.5  # the commit timeout, not the busy timeout
        # the committer gives up too (its busy timeout): nothing of that message is stored
        inbox_log.wait_for(r"commit of 1 messages failed")
        assert locker.execute("SELECT COUNT(*) FROM inbound").fetchone() == (0,)
    finally:
        locker.execute("ROLLBACK")
        locker.close()
    assert world.count("SELECT COUNT(*) FROM inbound") == 0
    assert world.status(invitation) == "invited"

    retried = deliver(world.inbox.smtp, raw, recipient)
    assert retried.code == 250 and retried.text.endswith("accepted"), retried
    assert world.status(invitation) == "accepted"
    assert len(world.mails(invitation, "welcome")) == 1


def test_a_451_stored_late_makes_the_retry_a_duplicate(
    make_world: Callable[..., World], inbox_log: LogEvents
) -> None:
    """The lock goes away after the 451 but before the committer gives up: stored once."""
    world = make_world(CALSHARE_INBOX_COMMIT_TIMEOUT_SECONDS="1")
    invitation = world.invite()
    recipient, raw = answer("address", "accept", invitation)
    locker = sqlite3.connect(world.db_path, isolation_level=None, timeout=WAIT)
    try:
        locker.execute("BEGIN IMMEDIATE")
        first = deliver(world.inbox.smtp, raw, recipient)
        assert str(first).startswith(TEMPORARY), first
    finally:
        locker.execute("ROLLBACK")
        locker.close()
    retried = deliver(world.inbox.smtp, raw, recipient)
    assert retried.code == 250, retried
    assert world.count("SELECT COUNT(*) FROM inbound") == 1
    assert world.status(invitation) == "accepted"
    assert len(world.mails(invitation, "welcome")) == 1
    assert not [line for line in inbox_log.lines if "failed" in line]


def test_a_locked_database_does_not_stall_the_other_sessions(
    make_world: Callable[..., World], inbox_log: LogEvents
) -> None:
    """While another process holds the write lock, every other session still gets answers.

    The committer waits for the lock in its own thread; nothing that waits for the
    database may run on the event loop, or every connection freezes with it.
    """
    world = make_world(CALSHARE_INBOX_COMMIT_TIMEOUT_SECONDS="1")
    invitation = world.invite()
    recipient, raw = answer("address", "accept", invitation)
    locker = sqlite3.connect(world.db_path, isolation_level=None, timeout=WAIT)
    probe = Wire(world.inbox.smtp, timeout=1.5)
    try:
        assert probe.command("EHLO probe.test").code == 250
        locker.execute("BEGIN IMMEDIATE")
        assert str(deliver(world.inbox.smtp, raw, recipient)).startswith(TEMPORARY)
        # the committer gives up and wakes the outbox sender, which goes for the lock too
        inbox_log.wait_for(r"commit of 1 messages failed")
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline:
            try:
                assert probe.command("NOOP").code == 250
            except TimeoutError:
                pytest.fail(
                    "NOOP went unanswered for 1.5 s while another process held the "
                    "database's write lock: something waits for SQLite on the event loop"
                )
    finally:
        locker.execute("ROLLBACK")
        locker.close()
        probe.close()


def test_stopping_finishes_the_message_being_stored_and_does_not_wait_for_idle_clients(
    world: World,
) -> None:
    """Daemon.stop() (SIGTERM): the message whose DATA is done is stored and answered 250;
    then the daemon stops, even though that client keeps its connection open (Postfix
    caches connections), instead of waiting for it to say QUIT.
    """
    invitation = world.invite()
    recipient, raw = answer("address", "accept", invitation)
    locker = sqlite3.connect(world.db_path, isolation_level=None, timeout=WAIT)
    wire = Wire(world.inbox.smtp)
    try:
        wire.command("EHLO client.test")
        locker.execute("BEGIN IMMEDIATE")  # holds the commit until we let go
        wire.envelope(INVITEE, [recipient])
        assert wire.command("DATA").code == 354
        wire.send(stuffed(raw))
        daemon = world.inbox.daemon
        assert daemon is not None
        wait_until(lambda: daemon.sessions.receiving() > 0, "DATA to be handled")
        world.inbox.request_stop()
        wait_until(
            lambda: not any(server.is_serving() for server in daemon.servers),
            "the listeners to close",
        )
        locker.execute("ROLLBACK")
        answered = wire.reply()
        assert answered.code == 250 and answered.text.endswith("accepted"), answered
        assert world.status(invitation) == "accepted"
        # the client says nothing more, but keeps the connection: the daemon stops anyway
        assert world.inbox.stopped_within(5.0), (
            "the daemon still runs 5 s after its last message was answered: stop() waits "
            "for the client's connection to end, not for the message"
        )
    finally:
        if locker.in_transaction:
            locker.execute("ROLLBACK")
        locker.close()
        wire.close()


SECRET_DETAIL = "sqlite trigger at /srv/calshare/internal.db"


@pytest.mark.parametrize(
    "undo",
    [
        pytest.param("ABORT", id="statement-fails"),
        # what SQLITE_FULL or SQLITE_IOERR may do: the whole transaction is rolled back
        pytest.param("ROLLBACK", id="transaction-rolled-back"),
    ],
)
def test_a_handler_error_answers_451_without_internals_and_the_daemon_recovers(
    make_world: Callable[..., World], undo: str
) -> None:
    world = make_world(CALSHARE_INBOX_COMMIT_TIMEOUT_SECONDS="2")
    invitation = world.invite()
    recipient, raw = answer("address", "accept", invitation)
    with closing(sqlite3.connect(world.db_path, isolation_level=None)) as conn:
        conn.execute(
            f"""CREATE TRIGGER break_inbound BEFORE INSERT ON inbound
                BEGIN SELECT RAISE({undo}, '{SECRET_DETAIL}'); END"""
        )
    first = deliver(world.inbox.smtp, raw, recipient)
    assert str(first).startswith(TEMPORARY), first
    assert "trigger" not in str(first) and "sqlite" not in str(first).lower()
    assert world.count("SELECT COUNT(*) FROM inbound") == 0
    assert world.status(invitation) == "invited"
    assert world.replies() == []

    with closing(sqlite3.connect(world.db_path, isolation_level=None)) as conn:
        conn.execute("DROP TRIGGER break_inbound")
    retried = deliver(world.inbox.smtp, raw, recipient)
    assert retried.code == 250, f"the daemon did not recover: {retried}"
    assert world.status(invitation) == "accepted"


def test_a_message_our_code_fails_on_is_kept_unread_not_refused_for_days(
    world: World, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # A bug of ours, met by one message: 451 would have its server retry for days.
    def broken(*args: object, **kwargs: object) -> str:
        raise ZeroDivisionError("a bug in calshare")

    monkeypatch.setattr(answers, "_accept", broken)
    failing, fine = world.invite(), world.invite(calendar="family")
    recipient, raw = answer("address", "accept", failing)
    other, declined = answer("address", "decline", fine)
    with caplog.at_level(logging.INFO, logger="inbox"):
        taken = deliver(world.inbox.smtp, raw, recipient)
        assert deliver(world.inbox.smtp, declined, other).code == 250  # the next one is fine
    assert taken.code == 250, taken
    assert world.status(failing) == "invited" and world.status(fine) == "declined"
    stored = world.rows("SELECT kind, reason, outcome, token_hash FROM inbound ORDER BY id")
    assert stored[0] == (
        "unknown",
        "not read: calshare failed on it (ZeroDivisionError)",
        "ignored",
        None,
    )
    assert [row[2] for row in stored] == ["ignored", "declined"]
    assert world.replies() == ["owner_declined"]
    assert "keeping it unread" in caplog.text and failing.token not in caplog.text


def test_a_message_the_parser_chokes_on_gets_no_500_no_internals_and_the_session_goes_on(
    world: World,
) -> None:
    invitation = world.invite()
    recipient = f"share+{invitation.token}@{DOMAIN}"
    raw = (
        f"From: {INVITEE}\r\nTo: {recipient}\r\nSubject: Re: project\r\n"
        f"Message-ID: {new_message_id()}\r\n"
        'Content-Type: text/plain; charset="utf-8\x00"\r\n\r\naccept\r\n'
    ).encode()
    with Wire(world.inbox.smtp) as wire:
        wire.command("EHLO client.test")
        wire.envelope(INVITEE, [recipient])
        (answered,) = wire.data(raw)
        assert answered.code != 500 and answered.code in (250, 451), answered
        assert "null" not in answered.text and "Error" not in answered.text, answered
        # the transaction is over (RFC 5321 4.1.1.4): the next one starts without RSET
        again = wire.command(f"MAIL FROM:<{INVITEE}>")
        assert again.code == 250, again


# --- 6. LMTP: one reply per recipient


def test_lmtp_answers_each_recipient_of_one_message(world: World, cli: Cli) -> None:
    first = world.invite(calendar="project")
    second = world.invite(calendar="family")
    bounced = world.invite("carol@example.org")
    recipients = [
        f"accept+{first.token}@{DOMAIN}",
        f"decline+{second.token}@{DOMAIN}",
        f"bounces+{bounced.bounce_key}@{DOMAIN}",
    ]
    raw = reply(to=", ".join(recipients[:2]), subject="Accept: project")
    with Wire(world.inbox.lmtp) as wire:
        assert wire.greeting.code == 220
        assert wire.command("HELO client.test").code == 500
        assert wire.command("EHLO client.test").code == 500
        assert wire.command(f"MAIL FROM:<{INVITEE}>").code == 503  # LHLO first
        assert wire.command("LHLO client.test").code == 250
        assert [r.code for r in wire.envelope(INVITEE, recipients)] == [250, 250, 250]
        replies = wire.data(raw, replies=3, then=b"NOOP\r\n")
        noop = wire.reply()
    assert [reply.code for reply in replies] == [250, 250, 250], replies
    assert [reply.text.split(" ", 2)[-1] for reply in replies] == [
        "accepted",
        "declined",
        # an answer copied to a bounce address is no bounce: it is not from the null sender
        "bounce recorded (not from the null sender: no change)",
    ]
    assert (noop.code, noop.text) == (250, "OK")
    status = {
        (item["calendar"], item["email"]): item["status"] for item in cli("shares", "--json").json()
    }
    assert status == {
        ("project", INVITEE): "accepted",
        ("family", INVITEE): "declined",
        ("project", "carol@example.org"): "invited",
    }


def _lmtp_refusal(world: World, raw: bytes) -> tuple[list[Reply], Reply]:
    first = world.invite(calendar="project")
    second = world.invite(calendar="family")
    recipients = [f"accept+{first.token}@{DOMAIN}", f"accept+{second.token}@{DOMAIN}"]
    with Wire(world.inbox.lmtp) as wire:
        assert wire.command("LHLO client.test").code == 250
        assert [r.code for r in wire.envelope(INVITEE, recipients)] == [250, 250]
        # NOOP goes with the final dot: a missing per-recipient reply shows as its "250 OK"
        replies = wire.data(raw, replies=2, then=b"NOOP\r\n")
        assert all(reply.text != "OK" for reply in replies), (
            f"one reply for two recipients (RFC 2033 wants one each): {replies}"
        )
        noop = wire.reply()
    return replies, noop


@pytest.mark.parametrize(
    ("limit", "body", "code"),
    [
        pytest.param(
            "CALSHARE_INBOX_MAX_MESSAGE_BYTES",
            ("accept\r\n" + "x" * 70 + "\r\n") * 60,
            552,
            id="too-big",
        ),
        pytest.param(
            "CALSHARE_INBOX_MAX_LINE_LENGTH",
            "accept\r\n" + "y" * 3000 + "\r\n",
            500,
            id="line-too-long",
        ),
    ],
)
def test_lmtp_refusals_at_data_are_one_per_recipient(
    make_world: Callable[..., World], limit: str, body: str, code: int
) -> None:
    world = make_world(**{limit: "2048" if "BYTES" in limit else "1000"})
    head = f"From: {INVITEE}\r\nSubject: Accept: project\r\nMessage-ID: {new_message_id()}\r\n"
    raw = f"{head}\r\n{body}".encode()
    replies, noop = _lmtp_refusal(world, raw)
    assert [reply.code for reply in replies] == [code, code], replies
    assert noop.code == 250
    assert world.count("SELECT COUNT(*) FROM inbound") == 0


def test_lmtp_handler_errors_are_one_reply_per_recipient(world: World) -> None:
    raw = (
        f"From: {INVITEE}\r\nSubject: Accept: project\r\nMessage-ID: {new_message_id()}\r\n"
        'Content-Type: text/plain; charset="utf-8\x00"\r\n\r\naccept\r\n'
    ).encode()
    replies, noop = _lmtp_refusal(world, raw)
    assert replies[0].code == replies[1].code and replies[0].code != 500, replies
    assert noop.code == 250


# --- 7. who may answer


def test_an_answer_from_another_address_is_held_and_the_invitee_asked(world: World) -> None:
    invitation = world.invite(f"Bob Invitee <{INVITEE}>")
    recipient = f"accept+{invitation.token}@{DOMAIN}"
    forwarded = reply(to=recipient, sender="carol@example.org", subject="Accept: project")
    answered = deliver(world.inbox.smtp, forwarded, recipient, "carol@example.org")
    assert answered.code == 250
    assert world.status(invitation) == "invited"
    assert world.outcomes(invitation) == ["replied: held, the invitee was asked to confirm"]
    (confirm,) = world.mails(invitation, "confirm")
    assert confirm.recipients == f'["{INVITEE}"]'
    assert "carol@example.org" in confirm.text
    assert (
        confirm.message["Reply-To"].addresses[0].addr_spec == f"share+{invitation.token}@{DOMAIN}"
    )
    assert sorted(world.replies()) == ["confirm", "owner_held"]  # the owner hears of it
    # the invitee confirms from their own address: now it counts
    confirmed = reply(to=recipient, subject="Accept: project")
    assert deliver(world.inbox.smtp, confirmed, recipient).text.endswith("accepted")
    assert world.status(invitation) == "accepted"
    # the question not yet sent is moot now, and is not sent
    statuses = world.rows(
        "SELECT kind, status FROM outbox WHERE share_id = ? AND kind != 'invitation' ORDER BY id",
        (invitation.share_id,),
    )
    # (the daemon's sender may be trying the unreachable relay with the others right now)
    assert [kind for kind, _ in statuses] == ["confirm", "owner_held", "welcome", "owner_accepted"]
    assert statuses[0][1] == "cancelled"
    assert {status for _, status in statuses[1:]} <= {"queued", "sending"}
    # the forwarder tries again: the used invitation tells them nothing, and mails no one
    again = reply(to=recipient, sender="carol@example.org", subject="Accept: project")
    deliver(world.inbox.smtp, again, recipient, "carol@example.org")
    assert world.outcomes(invitation)[-1] == "invalid token (accepted)"
    assert sorted(world.replies()) == ["confirm", "owner_accepted", "owner_held", "welcome"]


OURS = "mx.example.org"


@pytest.mark.parametrize(
    ("headers", "counts"),
    [
        pytest.param((), False, id="no-authentication-results"),
        pytest.param(
            (f"Authentication-Results: {OURS}; dmarc=pass header.from=example.org",),
            True,
            id="ours-pass",
        ),
        pytest.param(
            (
                f"Authentication-Results: {OURS}; dkim=pass header.d=example.org;"
                " dmarc=pass header.from=example.org",
                "Authentication-Results: mx.example.net; dmarc=fail header.from=example.org",
            ),
            True,
            id="ours-pass-above-another",
        ),
        pytest.param(
            (
                f"Authentication-Results: {OURS}; dmarc=fail header.from=example.org",
                f"Authentication-Results: {OURS}; dmarc=pass header.from=example.org",
            ),
            False,
            id="forged-pass-below-ours",
        ),
        pytest.param(
            ("Authentication-Results: mx.example.net; dmarc=pass header.from=example.org",),
            False,
            id="another-authserv-id",
        ),
        pytest.param(
            (f"Authentication-Results: {OURS}.evil.example; dmarc=pass header.from=example.org",),
            False,
            id="lookalike-authserv-id",
        ),
    ],
)
def test_require_dmarc_counts_only_our_servers_topmost_verdict(
    make_world: Callable[..., World], headers: tuple[str, ...], counts: bool
) -> None:
    world = make_world(
        CALSHARE_INBOX_REQUIRE_AUTH="dmarc",
        CALSHARE_INBOX_AUTHSERV_ID=OURS,
        CALSHARE_INBOX_TRUSTED_PEERS="127.0.0.1",
    )
    invitation = world.invite()
    recipient, raw = answer("address", "accept", invitation)
    answered = deliver(world.inbox.smtp, prepend(raw, *headers), recipient)
    assert answered.code == 250, answered
    if counts:
        assert world.status(invitation) == "accepted"
        assert len(world.mails(invitation, "welcome")) == 1
    else:
        assert world.status(invitation) == "invited"
        assert world.outcomes(invitation) == ["not counted: Authentication-Results did not pass"]
        assert world.replies() == []  # no backscatter to a From that may be forged


def _send_from(source: str, port: int, raw: bytes, recipient: str, *, lmtp: bool) -> str:
    """Deliver from a chosen loopback source address (Linux routes all of 127/8 to lo)."""
    client = (smtplib.LMTP if lmtp else smtplib.SMTP)(
        HOST, port, source_address=(source, 0), timeout=WAIT
    )
    with client:
        client.ehlo_or_helo_if_needed() if not lmtp else client.ehlo("client.test")
        client.mail(INVITEE)
        code, _ = client.rcpt(recipient)
        assert code == 250
        code, text = client.data(raw)
        assert code == 250, text
        return text.decode()


@pytest.mark.parametrize("protocol", ["smtp", "lmtp"])
def test_authentication_results_count_only_on_connections_from_trusted_peers(
    make_world: Callable[..., World], protocol: str
) -> None:
    """RFC 8601 §5: a header our server did not add is not our server's verdict."""
    world = make_world(
        CALSHARE_INBOX_REQUIRE_AUTH="dmarc",
        CALSHARE_INBOX_AUTHSERV_ID=OURS,
        CALSHARE_INBOX_TRUSTED_PEERS="127.0.0.1",
    )
    port = world.inbox.lmtp if protocol == "lmtp" else world.inbox.smtp
    forged = f"Authentication-Results: {OURS}; dmarc=pass header.from=example.org"
    spoofed, trusted = world.invite(calendar="project"), world.invite(calendar="family")
    # a client reaching the listener directly writes our server's verdict itself
    recipient, raw = answer("address", "accept", spoofed)
    assert _send_from("127.0.0.2", port, prepend(raw, forged), recipient, lmtp=protocol == "lmtp")
    assert world.status(spoofed) == "invited"
    assert world.outcomes(spoofed) == ["not counted: Authentication-Results did not pass"]
    assert world.replies() == []
    # the same header from the mail server in front counts
    recipient, raw = answer("address", "accept", trusted)
    _send_from("127.0.0.1", port, prepend(raw, forged), recipient, lmtp=protocol == "lmtp")
    assert world.status(trusted) == "accepted"


def test_strangers_holding_the_token_draw_one_confirm_question_a_day(
    world: World, clock: FixedClock
) -> None:
    invitation = world.invite()
    recipient = f"accept+{invitation.token}@{DOMAIN}"

    def stranger(number: int) -> None:
        address = f"stranger{number}@example.net"
        sent = reply(to=recipient, sender=address, subject="Accept: project")
        assert deliver(world.inbox.smtp, sent, recipient, address).code == 250

    for number in range(5):
        stranger(number)
    assert len(world.mails(invitation, "confirm")) == 1
    assert world.outcomes(invitation)[0] == "replied: held, the invitee was asked to confirm"
    assert set(world.outcomes(invitation)[1:]) == {
        "held: not from the invitee (the invitee was asked today)"
    }
    clock.advance(timedelta(days=1, minutes=1))
    stranger(5)
    stranger(6)
    assert len(world.mails(invitation, "confirm")) == 2
    assert world.status(invitation) == "invited"


def test_a_quoted_decline_link_sent_to_an_accept_address_without_a_token_is_no_accept(
    world: World,
) -> None:
    invitation = world.invite()
    recipient = f"accept+nonsense@{DOMAIN}"
    body = (
        "Hmm.\n\n> Decline: "
        f"mailto:decline+{invitation.token}@{DOMAIN}?subject=Decline%3A%20project\n"
    )
    sent = reply(to=recipient, subject="Re: project", body=body)
    assert deliver(world.inbox.smtp, sent, recipient).code == 250
    assert world.status(invitation) == "invited"
    assert world.outcomes(invitation) == ["replied: how to answer"]


# --- 8. answers that cannot count


def test_an_expired_invitation_gets_one_polite_reply_a_day(
    world: World, clock: FixedClock, cli: Cli
) -> None:
    invitation = world.invite()
    recipient = f"accept+{invitation.token}@{DOMAIN}"
    clock.advance(timedelta(days=15))  # invitations last 14 days
    first = deliver(world.inbox.smtp, reply(to=recipient, subject="Accept: project"), recipient)
    again = deliver(world.inbox.smtp, reply(to=recipient, subject="Accept: project"), recipient)
    assert (first.code, again.code) == (250, 250)
    assert world.outcomes(invitation) == [
        "replied: invalid token (expired)",
        "invalid token (expired)",
    ]
    (sorry,) = world.mails(invitation, "invalid_token")
    assert sorry.recipients == f'["{INVITEE}"]'
    assert sorry.message["Subject"] == "This calendar invitation is no longer valid"
    assert "has expired" in sorry.text
    assert world.status(invitation) == "invited"  # nothing granted: shown as expired
    assert [item["status"] for item in cli("shares", "--json").json()] == ["expired"]
    assert world.replies() == ["invalid_token"]
    # a day later the person may hear it once more
    clock.advance(timedelta(days=1, minutes=1))
    deliver(world.inbox.smtp, reply(to=recipient, subject="Accept: project"), recipient)
    assert len(world.mails(invitation, "invalid_token")) == 2


def test_an_answered_invitation_answered_again_is_told_so(world: World) -> None:
    invitation = world.invite()
    recipient = f"accept+{invitation.token}@{DOMAIN}"
    deliver(world.inbox.smtp, reply(to=recipient, subject="Accept: project"), recipient)
    decline = f"decline+{invitation.token}@{DOMAIN}"
    deliver(world.inbox.smtp, reply(to=decline, subject="Decline: project"), decline)
    assert world.status(invitation) == "accepted"
    assert world.outcomes(invitation) == ["accepted", "replied: invalid token (accepted)"]
    (sorry,) = world.mails(invitation, "invalid_token")
    assert "already accepted" in sorry.text and "welcomed you" in sorry.text


def test_unsharing_an_accepted_calendar_kills_its_feed_secret(world: World) -> None:
    invitation = world.invite()
    recipient = f"accept+{invitation.token}@{DOMAIN}"
    deliver(world.inbox.smtp, reply(to=recipient, subject="Accept: project"), recipient)
    feed = "SELECT feed_hash FROM shares WHERE id = ?"
    ((secret_hash,),) = world.rows(feed, (invitation.share_id,))
    assert secret_hash is not None
    unshare(world.store, world.settings, world.clock, "project", INVITEE)
    assert world.rows(feed, (invitation.share_id,)) == [(None,)]


def test_an_unreadable_answer_gets_one_how_to_answer_reply(world: World) -> None:
    invitation = world.invite()
    recipient = f"share+{invitation.token}@{DOMAIN}"
    message_id = new_message_id()
    unclear = reply(to=recipient, body="Maybe next week? Let me think.\n", message_id=message_id)
    assert deliver(world.inbox.smtp, unclear, recipient).code == 250
    again = reply(to=recipient, body="Hm, what does this mean?\n")
    assert deliver(world.inbox.smtp, again, recipient).code == 250
    assert world.outcomes(invitation) == ["replied: how to answer", "unknown answer"]
    (helping,) = world.mails(invitation, "answer_help")
    assert helping.recipients == f'["{INVITEE}"]'
    assert helping.message["In-Reply-To"] == message_id
    assert f"accept+{invitation.token}@{DOMAIN}" in helping.text
    assert world.status(invitation) == "invited"
    assert world.replies() == ["answer_help"]


def auto_replies(invitation: Invitation) -> list[tuple[str, str, bytes]]:
    """(envelope sender, recipient, message): automatic answers, each quoting the invitation."""
    token, person = invitation.token, invitation.invitee
    share_address, accept = f"share+{token}@{DOMAIN}", f"accept+{token}@{DOMAIN}"
    decline = f"decline+{token}@{DOMAIN}"
    quote = quoted_invitation(invitation, "On Thu, Ann Demo wrote:")
    return [
        (  # RFC 3834, and a first line that would be an answer from a person
            person,
            share_address,
            reply(
                to=share_address,
                sender=person,
                subject="Auto: Ann Demo shared the calendar “project” with you",
                body="OK\n\nI am away until Monday." + quote,
                headers=(("Auto-Submitted", "auto-replied"),),
            ),
        ),
        (  # Exchange's out-of-office, in Norwegian
            person,
            share_address,
            reply(
                to=share_address,
                sender=person,
                subject="Automatisk svar: Ann Demo har delt kalenderen med deg",
                body="Ja\n\nJeg er på ferie." + quote,
                headers=(
                    ("X-MS-Exchange-Inbox-Rules-Loop", person),
                    ("X-Auto-Response-Suppress", "All"),
                ),
            ),
        ),
        (  # a responder that answered the mailto link
            person,
            accept,
            reply(
                to=accept,
                sender=person,
                subject="Accept: project",
                body="accept" + quote,
                headers=(("X-Autoreply", "yes"),),
            ),
        ),
        (
            person,
            decline,
            reply(
                to=decline,
                sender=person,
                subject="Decline: project",
                headers=(("Precedence", "bulk"),),
            ),
        ),
        ("", accept, reply(to=accept, sender=person, subject="Accept: project", body="accept")),
        (  # no header says so, only the subject
            person,
            share_address,
            reply(
                to=share_address,
                sender=person,
                subject="Out of Office: project",
                body="Yes" + quote,
            ),
        ),
    ]


def test_auto_replies_change_nothing_and_get_no_answer(world: World) -> None:
    invitations = [world.invite(f"auto{number}@example.org") for number in range(6)]
    for number, invitation in enumerate(invitations):
        mail_from, recipient, raw = auto_replies(invitation)[number]
        assert deliver(world.inbox.smtp, raw, recipient, mail_from).code == 250
        assert world.status(invitation) == "invited", world.outcomes(invitation)
    assert world.count("SELECT COUNT(*) FROM inbound WHERE kind = 'auto-reply'") == 6
    assert world.count("SELECT COUNT(*) FROM shares WHERE status IN ('accepted', 'declined')") == 0
    assert world.replies() == []


def dsn(invitation: Invitation, *, to: str) -> bytes:
    """A standard delivery status notification quoting the whole invitation."""
    return (
        (
            "From: Mail Delivery System <MAILER-DAEMON@mx.example.net>\r\n"
            f"To: {to}\r\n"
            "Subject: Undelivered Mail Returned to Sender\r\n"
            f"Message-ID: {new_message_id()}\r\n"
            "Auto-Submitted: auto-replied\r\n"
            "MIME-Version: 1.0\r\n"
            'Content-Type: multipart/report; report-type=delivery-status; boundary="B0UND"\r\n'
            "\r\n"
            "--B0UND\r\n"
            "Content-Type: text/plain; charset=us-ascii\r\n"
            "\r\n"
            "I'm sorry to have to inform you that your message could not be delivered.\r\n"
            f"<{invitation.invitee}>: host mx.example.org said: 550 5.1.1 User unknown\r\n"
            "\r\n"
            "--B0UND\r\n"
            "Content-Type: message/delivery-status\r\n"
            "\r\n"
            "Reporting-MTA: dns; mx.example.net\r\n"
            "\r\n"
            f"Final-Recipient: rfc822; {invitation.invitee}\r\n"
            "Action: failed\r\n"
            "Status: 5.1.1\r\n"
            "Diagnostic-Code: smtp; 550 5.1.1 User unknown\r\n"
            "\r\n"
            "--B0UND\r\n"
            "Content-Type: message/rfc822\r\n"
            "\r\n"
        ).encode()
        + invitation.raw
        + b"\r\n--B0UND--\r\n"
    )


# the only mail a bounce causes: the owner told, once per undeliverable invitation
UNDELIVERABLE_SHARES = "SELECT COUNT(*) FROM shares WHERE status = 'undeliverable'"


def plain_bounce(invitation: Invitation, *, to: str) -> bytes:
    """The non-standard kind: text/plain, the invitation pasted in, its Accept link and all."""
    return (
        "From: MAILER-DAEMON@mail.example.net\r\n"
        f"To: {to}\r\n"
        "Subject: Mail delivery failed: returning message to sender\r\n"
        f"Message-ID: {new_message_id()}\r\n"
        "\r\n"
        "This message was created automatically by mail delivery software.\r\n"
        "\r\n"
        "A message that you sent could not be delivered to one or more of its\r\n"
        f"recipients. This is a permanent error.\r\n\r\n  {invitation.invitee}\r\n"
        "    mailbox is full\r\n"
        "\r\n"
        "------ This is a copy of the message, including all the headers. ------\r\n"
        "\r\n"
    ).encode() + invitation.raw


def test_bounces_never_answer_and_a_bounce_to_bounces_key_makes_the_share_undeliverable(
    world: World,
) -> None:
    to_key, to_share, plain = (world.invite(f"gone{number}@example.org") for number in range(3))
    bounce_address = f"bounces+{to_key.bounce_key}@{DOMAIN}"
    assert deliver(world.inbox.smtp, dsn(to_key, to=bounce_address), bounce_address, "").code == 250
    share_address = f"share+{to_share.token}@{DOMAIN}"
    assert deliver(world.inbox.smtp, dsn(to_share, to=share_address), share_address, "").code == 250
    accept = f"accept+{plain.token}@{DOMAIN}"
    assert deliver(world.inbox.smtp, plain_bounce(plain, to=accept), accept, "").code == 250

    assert world.status(to_key) == "undeliverable"
    assert {world.status(to_share), world.status(plain)} <= {"invited", "undeliverable"}
    assert world.count("SELECT COUNT(*) FROM inbound WHERE kind = 'bounce'") == 3
    assert world.count("SELECT COUNT(*) FROM shares WHERE status IN ('accepted', 'declined')") == 0
    assert world.replies() == ["owner_undeliverable"] * world.count(UNDELIVERABLE_SHARES)
    # a dead invitation cannot be accepted any more
    late = f"accept+{to_key.token}@{DOMAIN}"
    deliver(world.inbox.smtp, reply(to=late, sender=to_key.invitee), late, to_key.invitee)
    assert world.status(to_key) == "undeliverable"
    assert world.outcomes(to_key)[-1] == "replied: invalid token (revoked)"


def test_a_delivery_failure_subject_from_a_real_sender_kills_no_invitation(world: World) -> None:
    # anyone can type "Returned mail" into a subject; only the null sender's does count
    forged, named = world.invite("carol@example.org"), world.invite()
    share_address = f"share+{forged.token}@{DOMAIN}"
    prank = reply(
        to=share_address, subject="Returned mail: see transcript", sender="carol@example.org"
    )
    assert deliver(world.inbox.smtp, prank, share_address, "carol@example.org").code == 250
    assert world.status(forged) == "invited"
    assert world.outcomes(forged) == [
        "bounce recorded (by its subject alone, from a real sender: no change)"
    ]
    # and an answer to a calendar whose name looks like a failure is still an answer
    accept = f"accept+{named.token}@{DOMAIN}"
    answer = reply(to=accept, subject="Accept: Undeliverable mail report")
    assert deliver(world.inbox.smtp, answer, accept).code == 250
    assert world.status(named) == "accepted"


def test_real_bounces_sent_to_token_addresses_change_no_answer(world: World) -> None:
    files = sorted((CORPUS / "bounces" / "flufl.bounce").glob("*.eml"))
    assert len(files) > 40
    invitations = [world.invite(f"b{number}@example.org") for number in range(len(files))]
    for path, invitation in zip(files, invitations, strict=True):
        recipient = f"share+{invitation.token}@{DOMAIN}"
        answered = deliver(world.inbox.smtp, path.read_bytes(), recipient, "")
        assert answered.code == 250, (path.name, answered)
    assert world.count("SELECT COUNT(*) FROM inbound") == len(files)
    assert world.count("SELECT COUNT(*) FROM shares WHERE status IN ('accepted', 'declined')") == 0
    assert world.replies() == []
    # each is known for what it is: a bounce, except the delay warnings ("still trying"),
    # which are automatic mail; but a token address is written by anyone who saw a reply,
    # so a report sent there counts only as an answer would: from the invitee. None is.
    rows = world.rows("SELECT kind, outcome FROM inbound ORDER BY id")
    not_bounces = {
        path.name: kind for path, (kind, _) in zip(files, rows, strict=True) if kind != "bounce"
    }
    assert not_bounces == dict.fromkeys(DELAY_WARNINGS, "auto-reply")
    assert {outcome for kind, outcome in rows if kind == "bounce"} == {
        "bounce recorded (not from the invitee: no change)"
    }
    assert world.count("SELECT COUNT(*) FROM shares WHERE status = 'undeliverable'") == 0


def test_real_bounces_to_the_invitations_bounce_address_make_them_undeliverable(
    world: World,
) -> None:
    files = sorted((CORPUS / "bounces" / "flufl.bounce").glob("*.eml"))
    invitations = []
    for number, path in enumerate(files):
        # the invitee is whom the report names, where it names anyone (as a real one would)
        named = reported_recipients(parse_mail(path.read_bytes()).message)
        invitations.append(world.invite(named[0] if named else f"b{number}@example.org"))
    for path, invitation in zip(files, invitations, strict=True):
        recipient = f"bounces+{invitation.bounce_key}@{DOMAIN}"
        answered = deliver(world.inbox.smtp, path.read_bytes(), recipient, "")
        assert answered.code == 250, (path.name, answered)
    statuses = {path.name: world.status(inv) for path, inv in zip(files, invitations, strict=True)}
    assert {name for name, status in statuses.items() if status != "undeliverable"} == set(
        DELAY_WARNINGS
    )
    assert world.replies() == ["owner_undeliverable"] * world.count(UNDELIVERABLE_SHARES)


def test_a_forged_bounce_to_the_message_id_key_kills_no_invitation(world: World) -> None:
    """The Message-ID is quoted in every reply's In-Reply-To: it must not be the bounce key."""
    invitation = world.invite()
    public = invitation.message_id.strip("<>").split("@")[0]
    address = f"bounces+{public}@{DOMAIN}"
    prank = reply(to=address, subject="Re: project", body="ha", sender="carol@example.org")
    assert deliver(world.inbox.smtp, prank, address, "carol@example.org").code == 250
    # even a well-formed report from the null sender: the address is not one we gave out
    assert deliver(world.inbox.smtp, dsn(invitation, to=address), address, "").code == 250
    assert world.status(invitation) == "invited"
    assert world.count("SELECT COUNT(*) FROM inbound WHERE outcome = 'undeliverable'") == 0
    assert world.count("SELECT COUNT(*) FROM invitations WHERE revoked_at IS NOT NULL") == 0
    assert public != invitation.bounce_key
    # the invitee can still accept
    accept = f"accept+{invitation.token}@{DOMAIN}"
    assert (
        deliver(world.inbox.smtp, reply(to=accept, subject="Accept: project"), accept).code == 250
    )
    assert world.status(invitation) == "accepted"


def test_a_bounce_counts_only_from_the_null_sender_and_naming_the_invitee(world: World) -> None:
    invitation = world.invite()
    address = f"bounces+{invitation.bounce_key}@{DOMAIN}"
    # a plain mail to the right address from a real sender is no delivery report
    plain = reply(to=address, subject="Undeliverable: project", sender="carol@example.org")
    deliver(world.inbox.smtp, plain, address, "carol@example.org")
    # a report about another recipient is about another mail
    other = dsn(invitation, to=address).replace(
        f"Final-Recipient: rfc822; {INVITEE}".encode(), b"Final-Recipient: rfc822; x@example.net"
    )
    deliver(world.inbox.smtp, other, address, "")
    assert world.status(invitation) == "invited"
    assert world.outcomes(invitation) == [
        "bounce recorded (not from the null sender: no change)",
        "bounce recorded (it reports another recipient: no change)",
    ]
    # the real thing: the null sender, our address, our recipient
    assert deliver(world.inbox.smtp, dsn(invitation, to=address), address, "").code == 250
    assert world.status(invitation) == "undeliverable"
    assert world.outcomes(invitation)[-1] == "undeliverable"
    # the key is a capability now: the inbound log keeps the address without it
    assert {row[0] for row in world.rows("SELECT recipient FROM inbound")} == {
        f"bounces+…@{DOMAIN}"
    }


def test_a_report_to_a_token_address_needs_what_an_answer_needs(
    make_world: Callable[..., World],
) -> None:
    world = make_world(
        CALSHARE_INBOX_REQUIRE_AUTH="dmarc",
        CALSHARE_INBOX_AUTHSERV_ID=OURS,
        CALSHARE_INBOX_TRUSTED_PEERS="127.0.0.1",
    )
    invitation = world.invite()
    address = f"share+{invitation.token}@{DOMAIN}"
    # a multipart/report from a stranger, from the null sender, forged "From: the invitee"
    deliver(world.inbox.smtp, dsn(invitation, to=address), address, "")
    forged = dsn(invitation, to=address).replace(b"MAILER-DAEMON@mx.example.net", INVITEE.encode())
    deliver(world.inbox.smtp, forged, address, "")
    assert world.status(invitation) == "invited"
    assert world.outcomes(invitation) == [
        "bounce recorded (Authentication-Results did not pass: no change)",
        "bounce recorded (Authentication-Results did not pass: no change)",
    ]
    # authenticated by the mail server in front, but not from the invitee: still nothing
    vouched = f"Authentication-Results: {OURS}; dmarc=pass header.from=mx.example.net"
    deliver(world.inbox.smtp, prepend(dsn(invitation, to=address), vouched), address, "")
    assert world.outcomes(invitation)[-1] == "bounce recorded (not from the invitee: no change)"
    assert world.status(invitation) == "invited"
    assert world.count("SELECT COUNT(*) FROM invitations WHERE revoked_at IS NOT NULL") == 0
    # from the invitee and vouched for: it counts, as an answer would
    own = dsn(invitation, to=address).replace(b"MAILER-DAEMON@mx.example.net", INVITEE.encode())
    vouched = f"Authentication-Results: {OURS}; dmarc=pass header.from=example.org"
    deliver(world.inbox.smtp, prepend(own, vouched), address, "")
    assert world.status(invitation) == "undeliverable"


# Corpus files that report a delay, not a failure (Action: delayed, "will keep trying").
DELAY_WARNINGS = (
    "dsn_05.eml",
    "dsn_07.eml",
    "dsn_17.eml",
    "simple_03.eml",
    "simple_21.eml",
    "simple_35.eml",
)


# --- the daemon as a process


@dataclass
class Served:
    process: subprocess.Popen[bytes]
    log: Path
    port: int

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_for_log(self, pattern: str) -> re.Match[str]:
        def seen() -> re.Match[str] | None:
            found = re.search(pattern, self.log_text())
            if found is None and self.process.poll() is not None:
                pytest.fail(f"calshare serve exited {self.process.returncode}:\n{self.log_text()}")
            return found

        return wait_until(seen, f"{pattern!r} in the daemon's log")  # type: ignore[no-any-return]


@pytest.fixture
def serve(tmp_path: Path, db_path: Path) -> Iterator[Callable[..., Served]]:
    """``serve(env)``: ``calshare serve --smtp 127.0.0.1:0`` as a process, killed at the end."""
    started: list[subprocess.Popen[bytes]] = []

    def start(env: dict[str, str]) -> Served:
        log = tmp_path / f"serve-{len(started)}.log"
        environment = {
            key: value for key, value in os.environ.items() if not key.startswith("CALSHARE_")
        }
        environment.update(env, CALSHARE_DB=str(db_path))
        with log.open("wb") as err:
            process = subprocess.Popen(
                [str(CALSHARE), "serve", "--smtp", f"{HOST}:0"],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=err,
                env=environment,
                cwd=tmp_path,
            )
        started.append(process)
        served = Served(process, log, 0)
        served.port = int(served.wait_for_log(r"serving SMTP on 127\.0\.0\.1:(\d+)")[1])
        return served

    try:
        yield start
    finally:
        for process in started:
            if process.poll() is None:
                process.kill()
            process.wait(WAIT)


def prepared(db_path: Path, clock: FixedClock, invitees: list[str]) -> list[Invitation]:
    """A calendar shared with each of ``invitees``, before any daemon runs."""
    settings = load_settings(None, env=inbox_env())
    with Store.open(db_path, durable=False) as store:
        add_calendar(store, clock, "project", f"Ann Demo <{OWNER}>", None, "UTC")
        message_ids = [
            share(store, settings, clock, "project", invitee, Level.TITLES).message_id
            for invitee in invitees
        ]
    rows = db_rows(
        db_path,
        """SELECT o.message_id, o.share_id, o.envelope_from, b.raw
           FROM outbox o JOIN outbox_bodies b ON b.outbox_id = o.id""",
    )
    by_id = {row[0]: row for row in rows}
    invitations = []
    for invitee, message_id in zip(invitees, message_ids, strict=True):
        _, share_id, envelope_from, raw = by_id[message_id]
        token = re.search(rb"share\+([a-z2-7]{26})@", raw)
        assert token is not None and message_id
        key = envelope_from.split("+", 1)[1].split("@", 1)[0]
        invitations.append(
            Invitation("project", invitee, token[1].decode(), share_id, message_id, key, raw)
        )
    return invitations


# --- 9. SIGTERM while a message is arriving


def test_sigterm_finishes_the_message_in_flight_then_exits(
    serve: Callable[..., Served], db_path: Path, clock: FixedClock
) -> None:
    (invitation,) = prepared(db_path, clock, [INVITEE])
    served = serve(inbox_env())
    recipient = f"accept+{invitation.token}@{DOMAIN}"
    head = reply(to=recipient, subject="Accept: project", body="accept\n")
    filler = b"".join(b"%08d " % number + b"z" * 66 + b"\r\n" for number in range(40_000))
    assert len(filler) > 3_000_000
    half = len(filler) // 2

    answered: Reply | None = None
    with Wire(served.port) as wire:
        wire.command("EHLO client.test")
        assert [r.code for r in wire.envelope(INVITEE, [recipient])] == [250]
        assert wire.command("DATA").code == 354
        wire.send(head + filler[:half])
        served.process.send_signal(signal.SIGTERM)
        served.wait_for_log(r"stopping on a signal")
        # no new connections once it is stopping
        wait_until(lambda: refused(served.port), "the listener to close")
        with suppress(OSError):
            wire.send(filler[half:] + b".\r\n")
            answered = wire.reply()

    code = served.process.wait(WAIT)
    stored = count(db_path, "SELECT COUNT(*) FROM inbound")
    status = db_rows(db_path, "SELECT status FROM shares")[0][0]
    # never a 250 for something not stored, whatever else happens
    if answered is not None and answered.code == 250:
        assert (stored, status) == (1, "accepted")
    assert code == 0, served.log_text()
    assert refused(served.port)
    # and the message that was arriving when the signal came is finished, not cut off
    assert answered is not None, "the daemon closed the connection of a message in flight"
    assert answered.code == 250 and answered.text.endswith("accepted"), answered
    assert (stored, status) == (1, "accepted")


# --- 10. kill -9 in the middle of 2,000 answers


@dataclass(frozen=True)
class Answer:
    sender: str
    recipient: str
    message_id: str
    raw: bytes


async def _send_all(
    port: int,
    answers: list[Answer],
    indexes: list[int],
    *,
    concurrency: int,
    on_ack: Callable[[int], None] | None = None,
) -> dict[int, str | None]:
    """Send each answer once over ``concurrency`` reused connections; its 250 text or None."""
    pending = deque(indexes)
    results: dict[int, str | None] = {}
    acked = 0

    async def worker() -> None:
        nonlocal acked
        client: aiosmtplib.SMTP | None = None
        while pending:
            index = pending.popleft()
            answer = answers[index]
            try:
                if client is None:
                    client = aiosmtplib.SMTP(
                        hostname=HOST,
                        port=port,
                        local_hostname="client.test",
                        start_tls=False,
                        timeout=WAIT,
                    )
                    await client.connect()
                _, text = await client.sendmail(answer.sender, [answer.recipient], answer.raw)
            except (aiosmtplib.SMTPException, OSError):
                results[index] = None
                if client is not None:
                    client.close()
                    client = None
                continue
            results[index] = text
            acked += 1
            if on_ack is not None:
                on_ack(acked)
        if client is not None:
            try:
                await client.quit()
            except aiosmtplib.SMTPException:
                client.close()

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return results


# The run is 2,000 (INBOX_KILL9_MESSAGES=2000); the inbox takes about 120 a second
# here (composing the welcome mail and the owner's notice is most of it), so the default
# keeps this test to a few seconds.
MESSAGES = int(os.environ.get("INBOX_KILL9_MESSAGES", "600"))


def test_kill_9_mid_stream_loses_no_answer_that_got_250_and_retries_make_up_the_rest(
    serve: Callable[..., Served], db_path: Path, clock: FixedClock
) -> None:
    invitees = [f"person{number:04d}@example.org" for number in range(MESSAGES)]
    invitations = prepared(db_path, clock, invitees)
    answers = []
    for invitation in invitations:
        recipient = f"accept+{invitation.token}@{DOMAIN}"
        message_id = new_message_id()
        raw = reply(
            to=recipient,
            sender=invitation.invitee,
            subject="Accept: project",
            message_id=message_id,
        )
        answers.append(Answer(invitation.invitee, recipient, message_id, raw))
    env = inbox_env()

    first = serve(env)
    killed = threading.Event()

    def kill_halfway(acked: int) -> None:
        if acked >= MESSAGES // 2 and not killed.is_set():
            os.kill(first.process.pid, signal.SIGKILL)
            killed.set()

    results = asyncio.run(
        _send_all(first.port, answers, list(range(MESSAGES)), concurrency=16, on_ack=kill_halfway)
    )
    assert first.process.wait(WAIT) == -signal.SIGKILL
    acked = {index for index, text in results.items() if text is not None}
    assert killed.is_set() and MESSAGES // 2 <= len(acked) < MESSAGES

    # the sending MTAs retry what got no 250; some resend what did (a lost reply)
    second = serve(env)
    again = sorted(set(range(MESSAGES)) - acked)
    duplicates = sorted(random.Random(4).sample(sorted(acked), len(acked) // 10))
    retried = asyncio.run(_send_all(second.port, answers, again + duplicates, concurrency=16))
    assert all(text is not None for text in retried.values()), [
        index for index, text in retried.items() if text is None
    ]
    assert all(str(retried[index]).endswith("duplicate") for index in duplicates)

    second.process.send_signal(signal.SIGTERM)
    assert second.process.wait(WAIT) == 0, second.log_text()
    stored = {row[0] for row in db_rows(db_path, "SELECT message_id FROM inbound")}
    assert {answers[index].message_id for index in acked} <= stored  # every 250 is kept
    assert len(stored) == count(db_path, "SELECT COUNT(*) FROM inbound") == MESSAGES
    assert count(db_path, "SELECT COUNT(*) FROM shares WHERE status = 'accepted'") == MESSAGES
    assert count(db_path, "SELECT COUNT(*) FROM outbox WHERE kind = 'welcome'") == MESSAGES
    assert count(db_path, "SELECT COUNT(*) FROM outbox WHERE kind = 'owner_accepted'") == MESSAGES
    assert db_rows(db_path, "PRAGMA integrity_check") == [("ok",)]


# --- 11. nasty messages


def nested(depth: int) -> bytes:
    head = b"".join(
        b'Content-Type: multipart/mixed; boundary="b%d"\r\n\r\n--b%d\r\n' % (level, level)
        for level in range(depth)
    )
    return head + b"Content-Type: text/plain\r\n\r\naccept\r\n"


def nasty_messages(token: str) -> dict[str, bytes]:
    to = f"To: share+{token}@{DOMAIN}\r\n".encode()
    top = b"From: " + INVITEE.encode() + b"\r\n" + to

    def mid() -> bytes:
        return f"Message-ID: {new_message_id()}\r\n".encode()

    return {
        "no-boundary": top + mid() + b"Content-Type: multipart/mixed\r\n\r\naccept\r\n",
        "unclosed-boundary": top
        + mid()
        + b'Content-Type: multipart/alternative; boundary="x"\r\n\r\n--x\r\n'
        b"Content-Type: text/plain\r\n\r\naccept\r\n--x\r\nContent-Type: text/html\r\n\r\n<p>",
        "nested-3000-deep": top + mid() + nested(3000),
        "nul-bytes": top + mid() + b"Subject: Acc\x00ept: project\r\n\r\nac\x00cept\r\n\x00\r\n",
        "nul-in-charset": top
        + mid()
        + b'Content-Type: text/plain; charset="utf-8\x00"\r\n\r\naccept\r\n',
        "10000-headers": top
        + mid()
        + b"".join(b"X-Filler-%d: v\r\n" % n for n in range(10_000))
        + b"\r\naccept\r\n",
        "unknown-charset": top
        + mid()
        + b"Content-Type: text/plain; charset=x-klingon\r\n\r\naccept\r\n",
        "8bit-charset-name": top
        + mid()
        + b"Content-Type: text/plain; charset=\xff\xfe\r\n\r\naccept\r\n",
        "broken-rfc2231": top
        + mid()
        + b"Content-Type: text/plain; charset*=utf-8''%ZZ%\r\n\r\naccept\r\n",
        "bad-encoded-words": b"From: =?utf-8?b?!!!?= <bob@example.org>\r\n"
        + to
        + mid()
        + b"Subject: =?x-bad?q?abc?= =?utf-8?q?=E2=80?=\r\n\r\naccept\r\n",
        "8bit-headers": b"From: \xff\xfe <bob@example.org>\r\n"
        + to
        + mid()
        + b"Subject: \xe6\xf8\xe5\r\n\r\nja\r\n",
        "bad-base64": top + mid() + b"Content-Transfer-Encoding: base64\r\n\r\n!!!!====\r\n",
        "bad-quoted-printable": top
        + mid()
        + b"Content-Transfer-Encoding: quoted-printable\r\n\r\n=ZZaccept=\r\n",
        "bare-lf": (top + mid() + b"Subject: Accept: project\r\n\r\naccept\r\n").replace(
            b"\r\n", b"\n"
        ),
        "bare-cr": (top + mid() + b"Subject: Accept: project\r\n\r\naccept\r\n").replace(
            b"\r\n", b"\r"
        ),
        "no-headers-at-all": b"accept\r\n",
        "empty": b"",
        "continuation-first": b" folded\r\n" + top + mid() + b"\r\naccept\r\n",
        "unterminated-from": b'From: "Bob <bob@example.org\r\n' + to + mid() + b"\r\naccept\r\n",
        "empty-report": top + mid() + b"Content-Type: multipart/report; report-type=\r\n\r\n",
        "html-garbage": top + mid() + b"Content-Type: text/html\r\n\r\n"
        b"<blockquote><![CDATA[ &#99999999999; &#x110000; <script>accept\r\n",
        "2000-params": top
        + mid()
        + b"Content-Type: text/plain; "
        + b";\r\n ".join(b"p%d=v" % n for n in range(2000))
        + b"\r\n\r\naccept\r\n",
        "two-message-ids": top + b"Message-ID: <<<>>>\r\nMessage-ID: x\r\n\r\naccept\r\n",
        "bad-authentication-results": top + mid() + b"Authentication-Results: ;\r\n\r\naccept\r\n",
    }


NASTY_NAMES = list(nasty_messages("a" * 26))


def _nasty_world(make_world: Callable[..., World]) -> World:
    # Authentication-Results are read only when required: require them, to read them too.
    return make_world(
        CALSHARE_INBOX_REQUIRE_AUTH="dmarc",
        CALSHARE_INBOX_AUTHSERV_ID=OURS,
        CALSHARE_INBOX_TRUSTED_PEERS="127.0.0.1",
    )


def _send_raw(port: int, recipient: str, raw: bytes) -> Reply:
    with Wire(port) as wire:
        wire.command("EHLO client.test")
        wire.envelope(INVITEE, [recipient])
        (answered,) = wire.data(raw)
        # the session goes on: the daemon is alive and the connection usable
        assert wire.command("RSET").code == 250
        assert wire.command("NOOP").code == 250
    return answered


@pytest.mark.parametrize("name", NASTY_NAMES)
def test_a_nasty_message_is_recorded_not_refused_for_ever(
    make_world: Callable[..., World], name: str
) -> None:
    """A message the parser cannot read is still stored (and ignored): 250, an inbound row.

    A 4xx would have the sender retry a message that will never be readable for days;
    a 5xx would bounce a person's answer because of our parser.
    """
    world = _nasty_world(make_world)
    invitation = world.invite()
    recipient = f"share+{invitation.token}@{DOMAIN}"
    answered = _send_raw(world.inbox.smtp, recipient, nasty_messages(invitation.token)[name])
    assert answered.code == 250, answered
    assert world.count("SELECT COUNT(*) FROM inbound") == 1
    assert world.status(invitation) in ("invited", "undeliverable")


CHUNKS = [
    b"", b";", b"=", b'"', b"<", b">", b"@", b"=?utf-8?q?", b"?=", b"=?x?b?", b"\x00", b"\xff",
    b"\r", b"\n", b" ", b"multipart/", b"report", b"text/html", b"boundary=", b"charset=",
    b"*0*=", b"''", b"%", b"--", OURS.encode(), b"dmarc=pass", b"header.d=", INVITEE.encode(),
    b"accept", b"<blockquote>", b"&#", b"base64", b"quoted-printable", b"message/rfc822",
    b"(", b")", b"\\", b"[", b"]", b",", b":", b"ja", b"x", b"\r\n", b"\r\n\r\n",
]  # fmt: skip
FIELDS = [
    "From", "Subject", "Content-Type", "Content-Transfer-Encoding", "Message-ID",
    "Auto-Submitted", "Precedence", "Authentication-Results", "Return-Path",
    "Content-Disposition", "List-Id", "X-Autoreply",
]  # fmt: skip
_VALUE = st.lists(st.sampled_from(CHUNKS), max_size=12).map(b"".join)
_FIELD = st.tuples(st.sampled_from(FIELDS), _VALUE).map(
    lambda f: f[0].encode() + b": " + f[1] + b"\r\n"
)
NASTY = st.tuples(st.lists(_FIELD, max_size=10), _VALUE, st.binary(max_size=200)).map(
    lambda m: b"".join(m[0]) + b"\r\n" + m[1] + m[2]
)


def test_fuzzed_messages_never_take_the_daemon_down(make_world: Callable[..., World]) -> None:
    world = _nasty_world(make_world)
    invitation = world.invite()
    recipient = f"share+{invitation.token}@{DOMAIN}"
    codes: list[int] = []
    for raw in nasty_messages(invitation.token).values():
        codes.append(_send_raw(world.inbox.smtp, recipient, raw).code)

    @hypothesis_settings(
        max_examples=60,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(NASTY)
    def one(raw: bytes) -> None:
        codes.append(_send_raw(world.inbox.smtp, recipient, raw).code)

    one()
    assert all(200 <= code < 600 for code in codes)
    assert 500 not in codes  # aiosmtpd's "500 (the exception)" never shows
    assert world.inbox.alive
    # and it still serves an ordinary answer (to another invitation: a multipart/report
    # above made that one undeliverable)
    fresh = world.invite(calendar="family")
    accept = f"accept+{fresh.token}@{DOMAIN}"
    vouched = prepend(
        reply(to=accept, subject="Accept: family"),
        f"Authentication-Results: {OURS}; dmarc=pass header.from=example.org",
    )
    answered = deliver(world.inbox.smtp, vouched, accept)
    assert answered.code == 250, answered
    assert world.status(fresh) == "accepted"


def test_starttls_with_the_configured_certificate(
    make_world: Callable[..., World], tmp_path: Path
) -> None:
    """inbox.tls_cert/tls_key offer STARTTLS; an answer sent over it counts like any other."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.fail("this test needs the openssl command to make a certificate")
    cert, key = tmp_path / "inbox.pem", tmp_path / "inbox.key"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-days", "2", "-subj", "/CN=inbox.test",
         "-addext", "subjectAltName=IP:127.0.0.1,DNS:inbox.test",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=WAIT,
    )  # fmt: skip
    world = make_world(CALSHARE_INBOX_TLS_CERT=str(cert), CALSHARE_INBOX_TLS_KEY=str(key))
    invitation = world.invite()
    recipient, raw = answer("address", "accept", invitation)

    async def send() -> tuple[bool, str]:
        context = ssl.create_default_context(cafile=str(cert))
        client = aiosmtplib.SMTP(
            hostname=HOST, port=world.inbox.smtp, start_tls=True, tls_context=context
        )
        async with client:
            encrypted = client.get_transport_info("sslcontext") is not None
            _, reply_text = await client.sendmail(INVITEE, [recipient], raw)
        return encrypted, reply_text

    encrypted, reply_text = asyncio.run(send())
    assert encrypted and "accepted" in reply_text
    assert world.status(invitation) == "accepted"
