"""The owner hears when an invitation needs them: it could not be delivered, or an answer
to it is held until the invitee confirms.

Each against a real daemon (its SMTP inbox on 127.0.0.1, a real SQLite file) or a real
relay (aiosmtpd) that refuses: one mail to the owner per invitation, linking to the
calendar's People page, in plain words and no command; never a second one for a late
bounce, and never a mail about an owner mail that failed (no loops).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from email.message import EmailMessage
from pathlib import Path

import pytest

from calshare.clock import FixedClock
from calshare.config import load_settings
from calshare.links import ConsolePage, console_url
from tests.conftest import CliResult
from tests.support.inbox import (
    DOMAIN,
    OWNER,
    Queued,
    World,
    db_rows,
    deliver,
    make_world,
    new_message_id,
    queued,
    reply,
    world,
)
from tests.support.relay import Relay, relay

__all__ = ["make_world", "relay", "world"]

pytestmark = pytest.mark.network

Cli = Callable[..., CliResult]
GONE = "gone@example.org"


def dsn(raw: bytes, invitee: str, *, to: str) -> bytes:
    """A standard delivery status notification for ``invitee``, quoting the mail ``raw``."""
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
            "Content-Type: text/plain\r\n"
            "\r\n"
            "Your message could not be delivered.\r\n"
            "\r\n"
            "--B0UND\r\n"
            "Content-Type: message/delivery-status\r\n"
            "\r\n"
            "Reporting-MTA: dns; mx.example.net\r\n"
            "\r\n"
            f"Final-Recipient: rfc822; {invitee}\r\n"
            "Action: failed\r\n"
            "Status: 5.1.1\r\n"
            "Diagnostic-Code: smtp; 550 5.1.1 User unknown\r\n"
            "\r\n"
            "--B0UND\r\n"
            "Content-Type: message/rfc822\r\n"
            "\r\n"
        ).encode()
        + raw
        + b"\r\n--B0UND--\r\n"
    )


def bounce(world: World, raw: bytes, envelope_from: str, invitee: str) -> None:
    """Deliver a DSN about the mail (``raw``, sent from ``envelope_from``) to its bounce
    address, from the null sender, as a receiving server does."""
    assert deliver(world.inbox.smtp, dsn(raw, invitee, to=envelope_from), envelope_from, "").code
    assert envelope_from.startswith("bounces+")


def owner_mails(db_path: Path, kind: str) -> list[Queued]:
    return queued(db_path, "o.kind = ?", (kind,))


def people_url(base_url: str, db_path: Path) -> str:
    ((calendar_id,),) = db_rows(db_path, "SELECT id FROM calendars WHERE name = 'project'")
    return console_url(base_url, calendar_id, ConsolePage.PEOPLE)


def told_plainly(mail: Queued, people: str, *secrets: str) -> None:
    """An owner mail: to the owner, linking to People (text and HTML), naming no command
    and holding none of ``secrets`` (tokens, bounce keys)."""
    assert mail.recipients == f'["{OWNER}"]'
    assert f"{people}\r\n" in mail.text or f"{people}\n" in mail.text
    html = mail.message.get_body(("html",))
    assert html is not None and f'href="{people}"' in str(html.get_content())
    raw = mail.raw.decode("utf-8", "replace")
    assert re.search(r"\bcalshare\s+(share|unshare|invite|shares)\b", raw) is None
    assert re.search(r"(?<![\w-])--[a-z][a-z-]*", mail.text) is None
    for secret in secrets:
        assert secret not in raw


def test_a_bounce_tells_the_owner_once_and_a_second_bounce_tells_nobody(world: World) -> None:
    invitation = world.invite(GONE)
    envelope_from = f"bounces+{invitation.bounce_key}@{DOMAIN}"
    bounce(world, invitation.raw, envelope_from, GONE)

    assert world.status(invitation) == "undeliverable"
    (told,) = owner_mails(world.db_path, "owner_undeliverable")
    people = people_url(world.settings.http.base_url, world.db_path)
    told_plainly(told, people, invitation.token, invitation.bounce_key)
    assert str(told.message["Subject"]) == f"Your invitation to {GONE} could not be delivered"
    assert f"Your invitation to {GONE} for the calendar “project” could not be" in told.text
    assert "their mail server sent it back, so the address may be mistyped" in " ".join(
        told.text.split()
    )
    assert "bounce address" not in told.text  # our classifier's words are no news to them
    assert "People page" in told.text

    # the same invitation bounces again (another server, a second copy): no second mail
    bounce(world, invitation.raw, envelope_from, GONE)
    share_address = f"share+{invitation.token}@{DOMAIN}"
    deliver(world.inbox.smtp, dsn(invitation.raw, GONE, to=share_address), share_address, GONE)
    assert len(owner_mails(world.db_path, "owner_undeliverable")) == 1
    assert world.outcomes(invitation)[0] == "undeliverable"


def test_the_owner_mail_bouncing_draws_no_further_mail(world: World) -> None:
    invitation = world.invite(GONE)
    bounce(world, invitation.raw, f"bounces+{invitation.bounce_key}@{DOMAIN}", GONE)
    (told,) = owner_mails(world.db_path, "owner_undeliverable")
    ((envelope_from,),) = db_rows(
        world.db_path, "SELECT envelope_from FROM outbox WHERE message_id = ?", (told.message_id,)
    )
    before = world.replies()

    bounce(world, told.raw, envelope_from, OWNER)  # the owner's own mailbox is gone too

    assert world.replies() == before  # no mail about the mail about the invitation
    assert world.rows("SELECT outcome FROM inbound ORDER BY id DESC LIMIT 1") == [
        ("bounce recorded",)
    ]


def test_a_held_answer_tells_the_owner_once_per_invitation(world: World, clock: FixedClock) -> None:
    invitation = world.invite()
    other = world.invite("dora@example.org")
    recipient = f"accept+{invitation.token}@{DOMAIN}"

    def stranger(address: str, to: str = recipient) -> None:
        sent = reply(to=to, sender=address, subject="Accept: project")
        assert deliver(world.inbox.smtp, sent, to, address).code == 250

    stranger("carl@example.net")
    assert world.status(invitation) == "invited"
    (told,) = world.mails(invitation, "owner_held")
    told_plainly(told, people_url(world.settings.http.base_url, world.db_path), invitation.token)
    assert (
        f"{invitation.invitee} was asked to confirm an answer to your invitation to the"
        " calendar “project” that came from carl@example.net"
    ) in " ".join(told.text.split())
    assert "Nothing changes until they do" in told.text

    # more strangers, the same day and days later: the invitee is asked again, the owner not
    stranger("carl2@example.net")
    clock.advance(timedelta(days=1, minutes=1))
    stranger("carl3@example.net")
    assert len(world.mails(invitation, "confirm")) == 2
    assert len(world.mails(invitation, "owner_held")) == 1

    # another invitation is another invitation
    stranger("carl@example.net", f"accept+{other.token}@{DOMAIN}")
    assert len(world.mails(other, "owner_held")) == 1


def test_an_invitee_answering_from_their_own_address_tells_no_held(world: World) -> None:
    invitation = world.invite()
    recipient = f"accept+{invitation.token}@{DOMAIN}"
    assert deliver(world.inbox.smtp, reply(to=recipient, subject="Accept: x"), recipient).code
    assert world.status(invitation) == "accepted"
    assert world.mails(invitation, "owner_held") == []


# --- the relay refuses: the outbox gives up


def ok(result: CliResult) -> CliResult:
    assert result.code == 0, result.err
    return result


def text_of(message: EmailMessage) -> str:
    part = message.get_body(("plain",))
    assert isinstance(part, EmailMessage)
    return str(part.get_content())


def test_a_refused_invitation_tells_the_owner_once(cli: Cli, relay: Relay, db_path: Path) -> None:
    env = relay.env()
    ok(cli("calendar", "add", "project", "--owner", f"Ann Demo <{OWNER}>", env=env))
    relay.sink.refuse("RCPT", "550 5.1.1 No such user here", times=1)
    ok(cli("share", "project", GONE, "--level", "titles", env=env))

    flushed = cli("outbox", "flush", env=env)
    assert flushed.code == 1, flushed.err  # the invitation failed for good

    ((status,),) = db_rows(db_path, "SELECT status FROM shares")
    assert status == "undeliverable"
    # the notice is queued in the transaction that records the failure, and goes out
    (delivery,) = relay.sink.deliveries
    assert delivery.rcpt_tos == [OWNER]
    message = delivery.message
    assert str(message["Subject"]) == f"Your invitation to {GONE} could not be delivered"
    people = people_url(load_settings(None, env=env).http.base_url, db_path)
    told = Queued("owner_undeliverable", f'["{OWNER}"]', str(message["Message-ID"]), delivery.raw)
    told_plainly(told, people)
    assert "their mail server did not accept it (550 5.1.1 No such user here)" in " ".join(
        text_of(message).split()
    )

    # flushing again, even forced, sends and tells nobody again
    ok(cli("outbox", "flush", "--force", env=env))
    assert len(relay.sink.deliveries) == 1
    assert db_rows(db_path, "SELECT kind, status FROM outbox ORDER BY id") == [
        ("invitation", "failed"),
        ("owner_undeliverable", "sent"),
    ]


def test_a_refused_owner_notice_tells_nobody(cli: Cli, relay: Relay, db_path: Path) -> None:
    env = relay.env()
    ok(cli("calendar", "add", "project", "--owner", f"Ann Demo <{OWNER}>", env=env))
    # the invitee's address and the owner's own are both refused
    relay.sink.refuse("RCPT", "550 5.1.1 No such user here", times=2)
    ok(cli("share", "project", GONE, "--level", "titles", env=env))

    assert cli("outbox", "flush", env=env).code == 1
    ok(cli("outbox", "flush", "--force", env=env))

    assert relay.sink.deliveries == []
    assert len(relay.sink.refusals) == 2
    assert db_rows(db_path, "SELECT kind, status FROM outbox ORDER BY id") == [
        ("invitation", "failed"),
        ("owner_undeliverable", "failed"),
    ]


def test_the_owner_is_told_in_the_mail_language(make_world: Callable[..., World]) -> None:
    world = make_world(CALSHARE_MAIL_LANG="nb")
    gone = world.invite(GONE)
    bounce(world, gone.raw, f"bounces+{gone.bounce_key}@{DOMAIN}", GONE)
    held = world.invite()
    recipient = f"accept+{held.token}@{DOMAIN}"
    sent = reply(to=recipient, sender="carl@example.net", subject="Accept: project")
    assert deliver(world.inbox.smtp, sent, recipient, "carl@example.net").code == 250

    (undeliverable,) = owner_mails(world.db_path, "owner_undeliverable")
    assert str(undeliverable.message["Subject"]) == f"Invitasjonen til {GONE} kunne ikke leveres"
    assert "e-postserveren deres sendte den tilbake" in " ".join(undeliverable.text.split())
    (told,) = owner_mails(world.db_path, "owner_held")
    assert "er bedt om å bekrefte et svar" in " ".join(told.text.split())
    assert "Personer" in told.text and "Personer" in undeliverable.text
    people = people_url(world.settings.http.base_url, world.db_path)
    told_plainly(undeliverable, people, gone.token, gone.bounce_key)
    told_plainly(told, people, held.token)
