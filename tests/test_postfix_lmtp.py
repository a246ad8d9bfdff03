"""Postfix in front of the inbox: a reply injected with Postfix's sendmail becomes a grant.

The test runs a private Postfix instance of its own (Debian's postfix package, which
``make test`` installs), started with ``postfix -c CONFIG_DIR`` beside any system one:
its main.cf and master.cf, queue directory and log file live in the test's temporary
directory (its data directory in one of its own, see ``mail_system``); it listens on
no port (mail comes in through ``sendmail -C``, that is postdrop and pickup), and it
relays the mail domain to ``calshare serve --lmtp`` on a free port of 127.0.0.1, run
as a subprocess the way an operator runs it. Whatever else Postfix would send (its
bounce notices) goes to the discard transport: nothing leaves the machine. Postfix
and calshare are stopped after the module, whatever happened.

Postfix's master runs only as root; the test fails (not skips) without root or
without Postfix, so a machine that cannot run it never passes silently.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from email import message_from_bytes
from email import policy as email_policy
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path

import pytest

from calshare.calendars import add_calendar
from calshare.clock import SystemClock
from calshare.config import load_settings
from calshare.levels import Level
from calshare.lifecycle import ShareStatus
from calshare.sharing import share
from calshare.store import Store
from mailer import outbox
from tests.support.net import free_port
from tests.support.postfix import (
    MASTER_CF,
    Postfix,
    require_postfix,
    tail,
    wait_for,
)

pytestmark = pytest.mark.network

DOMAIN = "share.example.org"  # the default [mail] domain
OWNER = "Ann Owner <ann@example.org>"
CALENDAR = "project"
INVITEES = ("bob@example.org", "carol@example.org", "dave@example.org")


def main_cf(postfix: Postfix, lmtp_port: int) -> str:
    """The private instance's main.cf: its own directories, the mail domain to calshare."""
    root = postfix.root
    return f"""\
compatibility_level = 3.6
queue_directory = {root / "spool"}
data_directory = {postfix.data_dir}
mail_owner = postfix
setgid_group = postdrop
syslog_name = postfix-calshare-test
maillog_file = {root / "maillog"}
maillog_file_prefixes = {root}
myhostname = mx.calshare.test
mydomain = calshare.test
myorigin = $myhostname
inet_interfaces = loopback-only
inet_protocols = ipv4
mydestination =
local_recipient_maps =
alias_maps =
alias_database =
relay_domains = {DOMAIN}
relay_transport = lmtp:inet:127.0.0.1:{lmtp_port}
default_transport = discard:nothing leaves this test
smtputf8_enable = no
biff = no
"""


# --- calshare


def invitation_tokens(db_path: Path) -> dict[str, str]:
    """Invite each of INVITEES; their tokens, from the Reply-To of the queued invitations.

    Read before the daemon starts: its sender delivers the invitations, and a sent
    mail's bytes (with the token) are deleted from the outbox.
    """
    clock = SystemClock()  # the daemon's clock: an invitation must not have expired for it
    settings = load_settings(None, env={})
    tokens = {}
    with Store.open(db_path) as store:
        add_calendar(store, clock, CALENDAR, OWNER, "Europe/Oslo", settings.calendars.default_tz)
        for invitee in INVITEES:
            share(store, settings, clock, CALENDAR, invitee, Level.TITLES)
        rows = store.db.execute(
            """SELECT o.recipients, b.raw FROM outbox o
               JOIN outbox_bodies b ON b.outbox_id = o.id WHERE o.kind = ?""",
            [outbox.OutboxKind.INVITATION],
        ).fetchall()
    for recipients, raw in rows:
        message = message_from_bytes(raw, policy=email_policy.default)
        reply_to = message["Reply-To"].addresses[0].addr_spec
        found = re.fullmatch(rf"share\+([a-z2-7]{{26}})@{re.escape(DOMAIN)}", reply_to)
        assert found, reply_to
        (invitee,) = [name for name in INVITEES if name in recipients]
        tokens[invitee] = found[1]
    assert sorted(tokens) == sorted(INVITEES)
    return tokens


@dataclass
class Calshare:
    """``calshare serve --lmtp 127.0.0.1:PORT`` in a process of its own."""

    db_path: Path
    port: int
    process: subprocess.Popen[bytes]
    log: Path

    def listening(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                return True
        except OSError:
            return False

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)  # graceful: finish what is in flight
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def query(self, sql: str, *params: object) -> list[tuple[object, ...]]:
        with closing(sqlite3.connect(self.db_path, timeout=10)) as connection:
            return connection.execute(sql, params).fetchall()


def start_calshare(work: Path) -> Calshare:
    db_path = work / "calshare.db"
    port = free_port()
    # The operator's environment, less any CALSHARE_* of the machine running the tests.
    env = {name: value for name, value in os.environ.items() if not name.startswith("CALSHARE_")}
    env |= {"CALSHARE_DB": str(db_path), "CALSHARE_OUTBOX_MAILDIR": str(work / "maildir")}
    log = work / "calshare.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "calshare", "serve", "--lmtp", f"127.0.0.1:{port}"],
            cwd=work,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    daemon = Calshare(db_path, port, process, log)

    def ready() -> bool | None:
        if daemon.listening():
            return True
        return False if process.poll() is not None else None  # exited, or not yet

    try:
        if not wait_for(ready, f"calshare to listen on 127.0.0.1:{port}", lambda: tail(log)):
            pytest.fail(f"calshare serve exited with {process.returncode}\n{tail(log)}")
    except BaseException:
        daemon.stop()
        raise
    return daemon


# --- Postfix


@dataclass
class MailSystem:
    postfix: Postfix
    calshare: Calshare
    tokens: dict[str, str]

    def explain(self) -> str:
        return f"{tail(self.postfix.maillog)}\n{tail(self.calshare.log)}"

    def delivered(self, address: str, count: int = 1) -> list[str]:
        """Wait for Postfix's first ``count`` final delivery lines for ``address``."""
        return wait_for(
            lambda: self.postfix.final(address, count) or None,
            f"Postfix to deliver {count} message(s) to {address}",
            self.explain,
        )

    def share_status(self, invitee: str) -> str:
        ((status,),) = self.calshare.query("SELECT status FROM shares WHERE invitee = ?", invitee)
        return str(status)


@pytest.fixture(scope="module")
def mail_system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MailSystem]:
    require_postfix()
    work = tmp_path_factory.mktemp("postfix-lmtp")
    tokens = invitation_tokens(work / "calshare.db")
    # Postfix's master opens its lock in data_directory as the postfix user, and pytest's
    # temporary directories are root's alone (0700): the data directory goes in a
    # directory of its own that the postfix user can reach. Everything else is read as
    # root or relative to the queue directory, which Postfix enters as root.
    reachable = Path(tempfile.mkdtemp(prefix="calshare-postfix-"))
    postfix = Postfix(work / "postfix", reachable / "data")  # postfix check makes it, its own
    daemon: Calshare | None = None
    try:
        reachable.chmod(0o755)
        daemon = start_calshare(work)
        postfix.config_dir.mkdir(parents=True)
        (postfix.root / "spool").mkdir()  # postfix check creates what goes inside
        (postfix.config_dir / "main.cf").write_text(main_cf(postfix, daemon.port))
        (postfix.config_dir / "master.cf").write_text(MASTER_CF)
        postfix.start()
        yield MailSystem(postfix, daemon, tokens)
    finally:
        try:
            postfix.stop()
        finally:
            if daemon is not None:
                daemon.stop()
            shutil.rmtree(reachable, ignore_errors=True)


def reply(sender: str, to: list[str], first_line: str) -> EmailMessage:
    """An answer as a mail client writes it: Re: subject, the invitation quoted below."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = ", ".join(to)
    message["Subject"] = f"Re: Ann Owner shared the calendar {CALENDAR} with you"
    message["Date"] = format_datetime(SystemClock().now())
    message["Message-ID"] = make_msgid(domain="example.org")
    message.set_content(
        f"{first_line}\n\n"
        "On Thu, Nov 26, 2026 at 10:00 AM Ann Owner <ann@example.org> wrote:\n"
        f"> Ann Owner would like to share the calendar {CALENDAR} with you.\n"
        "> Accept: reply to this mail with Accept.\n"
    )
    return message


def test_a_reply_injected_with_sendmail_becomes_a_grant(mail_system: MailSystem) -> None:
    bob = "bob@example.org"
    address = f"share+{mail_system.tokens[bob]}@{DOMAIN}"
    answer = reply(f"Bob <{bob}>", [address], "Yes, thanks!")
    assert mail_system.share_status(bob) == ShareStatus.INVITED

    mail_system.postfix.sendmail(answer, bob)

    (line,) = mail_system.delivered(address)
    port = mail_system.calshare.port
    assert "/lmtp[" in line and f"relay=127.0.0.1[127.0.0.1]:{port}," in line, line
    assert "status=sent (250 2.0.0 OK accepted)" in line, line
    # 250 came after the commit: the grant is there as soon as Postfix has logged it
    assert mail_system.share_status(bob) == ShareStatus.ACCEPTED
    assert mail_system.calshare.query(
        "SELECT kind, outcome, mail_from FROM inbound WHERE message_id = ?", answer["Message-ID"]
    ) == [("accept", "accepted", bob)]
    welcome = """SELECT count(*) FROM outbox o JOIN shares s ON s.id = o.share_id
                 WHERE s.invitee = ? AND o.kind = ?"""
    assert mail_system.calshare.query(welcome, bob, outbox.OutboxKind.WELCOME) == [(1,)]

    # The same message again (a retry after a lost 250, say): 250 again, nothing changes.
    mail_system.postfix.sendmail(answer, bob)
    _, again = mail_system.delivered(address, 2)
    assert "status=sent (250 2.0.0 OK duplicate)" in again, again
    assert mail_system.share_status(bob) == ShareStatus.ACCEPTED
    assert mail_system.calshare.query(welcome, bob, outbox.OutboxKind.WELCOME) == [(1,)]
    assert mail_system.calshare.query(
        "SELECT count(*) FROM inbound WHERE message_id = ?", answer["Message-ID"]
    ) == [(1,)]
    # Every message is logged, the duplicate too, by a hash of its token, never the token.
    logged = mail_system.calshare.log.read_text(encoding="utf-8", errors="replace")
    assert logged.count(answer["Message-ID"]) >= 2, logged[-2000:]
    for token in mail_system.tokens.values():
        assert token not in logged


def test_a_reply_to_an_address_calshare_does_not_serve_bounces(
    mail_system: MailSystem,
) -> None:
    bob = "bob@example.org"
    nobody = f"nobody@{DOMAIN}"

    mail_system.postfix.sendmail(reply(f"Bob <{bob}>", [nobody], "Yes"), bob)

    (line,) = mail_system.delivered(nobody)
    assert f"relay=127.0.0.1[127.0.0.1]:{mail_system.calshare.port}," in line, line
    assert "dsn=5.1.1, status=bounced" in line, line
    assert "said: 550 5.1.1 No such address here (in reply to RCPT TO command)" in line, line
    # Postfix writes Bob a non-delivery notice (which goes to the discard transport here)
    (notice,) = mail_system.delivered(bob)
    assert "/discard[" in notice and "status=sent" in notice, notice
    # refused at RCPT: nothing was stored
    assert mail_system.calshare.query(
        "SELECT count(*) FROM inbound WHERE recipient = ?", nobody
    ) == [(0,)]


def test_one_lmtp_transaction_for_two_recipients_gets_a_reply_for_each(
    mail_system: MailSystem,
) -> None:
    """RFC 2033: after the data, one reply per accepted recipient, in RCPT order.

    Carol answers her own invitation and Dave's in one mail: hers is granted; his is
    held (the answer is not from him) and he is asked to confirm. Postfix delivers
    both recipients in one LMTP transaction and reads a reply for each; were one
    missing, it would wait for it (and the wait here would run out).
    """
    carol, dave = "carol@example.org", "dave@example.org"
    to = [f"share+{mail_system.tokens[name]}@{DOMAIN}" for name in (carol, dave)]

    mail_system.postfix.sendmail(reply(f"Carol <{carol}>", to, "Accept"), carol)

    (for_carol,), (for_dave,) = (mail_system.delivered(address) for address in to)
    assert "status=sent (250 2.0.0 OK accepted)" in for_carol, for_carol
    held = "status=sent (250 2.0.0 OK replied: held, the invitee was asked to confirm)"
    assert held in for_dave, for_dave
    assert for_carol.split(": ")[1] == for_dave.split(": ")[1]  # one message, one queue id
    assert mail_system.share_status(carol) == ShareStatus.ACCEPTED
    assert mail_system.share_status(dave) == ShareStatus.INVITED
    assert mail_system.calshare.query(
        """SELECT count(*) FROM outbox o JOIN shares s ON s.id = o.share_id
           WHERE s.invitee = ? AND o.kind = ?""",
        dave,
        outbox.OutboxKind.CONFIRM,
    ) == [(1,)]
