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
import time
from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import dataclass
from email import message_from_bytes
from email import policy as email_policy
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path
from typing import TypeVar

import pytest

from calshare.calendars import add_calendar
from calshare.clock import SystemClock
from calshare.config import load_settings
from calshare.levels import Level
from calshare.sharing import ACCEPTED, INVITED, share
from calshare.store import Store
from mailer import outbox
from tests.support.net import free_port

pytestmark = pytest.mark.network

POSTFIX = Path("/usr/sbin/postfix")
SENDMAIL = Path("/usr/sbin/sendmail")
POSTCONF = Path("/usr/sbin/postconf")
DOMAIN = "share.example.org"  # the default [mail] domain
OWNER = "Ann Owner <ann@example.org>"
CALENDAR = "project"
INVITEES = ("bob@example.org", "carol@example.org", "dave@example.org")
WAIT = 30.0  # seconds: a bound on every wait, never a pause

T = TypeVar("T")

# Postfix's services, none of them chrooted (the queue is a temporary directory, not
# a chroot jail) and none listening on the network: mail arrives through postdrop.
MASTER_CF = """\
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""


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


# --- waiting, bounded


def wait_for(check: Callable[[], T | None], what: str, explain: Callable[[], str]) -> T:
    """Poll ``check`` until it returns something, for at most WAIT seconds."""
    deadline = time.monotonic() + WAIT
    while True:
        found = check()
        if found is not None:
            return found
        if time.monotonic() > deadline:
            pytest.fail(f"after {WAIT:.0f} s still waiting for {what}\n{explain()}")
        time.sleep(0.05)


def tail(path: Path, lines: int = 40) -> str:
    if not path.exists():
        return f"({path.name}: no such file)"
    text = path.read_text(errors="replace").splitlines()[-lines:]
    return f"--- last lines of {path.name}:\n" + "\n".join(text)


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
            [outbox.INVITATION],
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
class Postfix:
    """A private Postfix instance: ``postfix -c CONFIG_DIR``."""

    root: Path  # config (etc/), queue (spool/) and maillog
    data_dir: Path

    @property
    def config_dir(self) -> Path:
        return self.root / "etc"

    @property
    def maillog(self) -> Path:
        return self.root / "maillog"

    def command(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(POSTFIX), "-c", str(self.config_dir), *args],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    def master_pid(self) -> int | None:
        try:
            return int((self.root / "spool" / "pid" / "master.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def start(self) -> None:
        for args in (("check",), ("start",)):
            done = self.command(*args)
            if done.returncode != 0:
                pytest.fail(
                    f"postfix {' '.join(args)} failed ({done.returncode}): "
                    f"{done.stdout}{done.stderr}\n{tail(self.maillog)}"
                )
        wait_for(
            lambda: True if self.master_pid() and self.command("status").returncode == 0 else None,
            "the Postfix master to run",
            lambda: tail(self.maillog),
        )

    def stop(self) -> None:
        """``postfix stop``; ``postfix abort`` and then SIGKILL of its master if it lingers."""
        pid = self.master_pid()
        if pid is None:
            return
        self.command("stop")
        for _ in range(2):
            if _gone_within(pid, 15.0):
                return
            self.command("abort")
        os.kill(pid, signal.SIGKILL)  # the master this test started, by its pid

    def sendmail(self, message: EmailMessage, envelope_from: str) -> None:
        """``sendmail -C CONFIG_DIR -f FROM -t < message``: recipients from its To header."""
        done = subprocess.run(
            [str(SENDMAIL), "-C", str(self.config_dir), "-f", envelope_from, "-t"],
            input=bytes(message),
            capture_output=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, (done.stdout, done.stderr, tail(self.maillog))

    def deliveries(self, recipient: str) -> list[str]:
        """Postfix's log lines of delivery attempts to ``recipient`` (LMTP or discard)."""
        if not self.maillog.exists():
            return []
        marker = f" to=<{recipient}>,"
        return [
            line
            for line in self.maillog.read_text(errors="replace").splitlines()
            if marker in line and " status=" in line
        ]

    def final(self, recipient: str, count: int = 1) -> list[str]:
        """The first ``count`` delivery lines for ``recipient`` that are not deferrals."""
        lines = [line for line in self.deliveries(recipient) if "status=deferred" not in line]
        return lines[:count] if len(lines) >= count else []


def _gone_within(pid: int, seconds: float) -> bool:
    """Whether process ``pid`` has exited (or is a zombie) within ``seconds``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            return True
        if state == "Z":
            return True
        time.sleep(0.05)
    return False


def require_postfix() -> None:
    """Fail, not skip: CI installs Postfix through the Makefile, so its absence is a bug."""
    for program in (POSTFIX, SENDMAIL, POSTCONF):
        if not program.is_file():
            pytest.fail(
                f"{program} is missing: install Debian's postfix package "
                "(`make test` does, through the Makefile's system-packages target)"
            )
    if os.geteuid() != 0:
        pytest.fail("a private Postfix instance needs root (its master starts as root)")


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
    assert mail_system.share_status(bob) == INVITED

    mail_system.postfix.sendmail(answer, bob)

    (line,) = mail_system.delivered(address)
    port = mail_system.calshare.port
    assert "/lmtp[" in line and f"relay=127.0.0.1[127.0.0.1]:{port}," in line, line
    assert "status=sent (250 2.0.0 OK accepted)" in line, line
    # 250 came after the commit: the grant is there as soon as Postfix has logged it
    assert mail_system.share_status(bob) == ACCEPTED
    assert mail_system.calshare.query(
        "SELECT kind, outcome, mail_from FROM inbound WHERE message_id = ?", answer["Message-ID"]
    ) == [("accept", "accepted", bob)]
    welcome = """SELECT count(*) FROM outbox o JOIN shares s ON s.id = o.share_id
                 WHERE s.invitee = ? AND o.kind = ?"""
    assert mail_system.calshare.query(welcome, bob, outbox.WELCOME) == [(1,)]

    # The same message again (a retry after a lost 250, say): 250 again, nothing changes.
    mail_system.postfix.sendmail(answer, bob)
    _, again = mail_system.delivered(address, 2)
    assert "status=sent (250 2.0.0 OK duplicate)" in again, again
    assert mail_system.share_status(bob) == ACCEPTED
    assert mail_system.calshare.query(welcome, bob, outbox.WELCOME) == [(1,)]
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
    assert mail_system.share_status(carol) == ACCEPTED
    assert mail_system.share_status(dave) == INVITED
    assert mail_system.calshare.query(
        """SELECT count(*) FROM outbox o JOIN shares s ON s.id = o.share_id
           WHERE s.invitee = ? AND o.kind = ?""",
        dave,
        outbox.CONFIRM,
    ) == [(1,)]
