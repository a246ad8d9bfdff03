"""The outbox against a real SMTP relay: aiosmtpd on 127.0.0.1, no mocks.

The relay is a sink that keeps every message it accepts (envelope and raw bytes)
and can be told to refuse the next few at a given stage (MAIL, RCPT, DATA) with a
given reply. calshare reaches it through CALSHARE_RELAY_* in the environment, the
way an operator would configure it.
"""

from __future__ import annotations

import email
import email.policy
import logging
import mailbox
import os
import re
import shutil
import signal
import sqlite3
import ssl
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import closing
from datetime import datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.smtp import AuthResult

from calshare.calendars import add_calendar
from calshare.clock import FixedClock, SystemClock
from calshare.config import load_settings
from calshare.levels import Level
from calshare.sharing import share
from calshare.store import Store
from calshare.tokens import token_hash
from mailer import compose
from tests.conftest import ROOT, CliResult
from tests.support.net import free_port
from tests.support.relay import Relay, Sink, relay, relay_env, running_relay

__all__ = ["relay"]  # the fixture

# The outbox with each mail's bytes (kept apart, in outbox_bodies, until sent).
WITH_BODIES = "outbox LEFT JOIN outbox_bodies ON outbox_bodies.outbox_id = outbox.id"

pytestmark = pytest.mark.network

Cli = Callable[..., CliResult]

OWNER = "ann@example.org"
INVITEE = "bob@example.org"
DOMAIN = "share.example.org"  # the default [mail] domain
TOKEN = re.compile(r"[a-z2-7]{26}")
CALSHARE = ROOT / ".venv" / "bin" / "calshare"
WAIT = 60.0  # seconds: a bound on every wait, never a pause


# --- calshare helpers


@pytest.fixture
def calendar(cli: Cli) -> str:
    ok(cli("calendar", "add", "project", "--owner", f"Ann Demo <{OWNER}>"))
    return "project"


def ok(result: CliResult) -> CliResult:
    assert result.code == 0, result.err
    assert "Traceback" not in result.err
    return result


def invite(
    cli: Cli, env: dict[str, str], invitee: str = INVITEE, level: str = "titles"
) -> dict[str, Any]:
    shared = ok(cli("share", "project", invitee, "--level", level, "--json", env=env)).json()
    assert isinstance(shared, dict)
    assert shared["action"] == "invited"
    return shared


def outbox_json(cli: Cli, env: dict[str, str]) -> list[dict[str, Any]]:
    listed = ok(cli("outbox", "--json", env=env)).json()
    assert isinstance(listed, list)
    return listed


def shares_json(cli: Cli, env: dict[str, str]) -> list[dict[str, Any]]:
    listed = ok(cli("shares", "--json", env=env)).json()
    assert isinstance(listed, list)
    return listed


def db_rows(db_path: Path, sql: str) -> list[tuple[Any, ...]]:
    with closing(sqlite3.connect(db_path)) as conn:
        return conn.execute(sql).fetchall()


def text_body(message: EmailMessage) -> str:
    part = message.get_body(("plain",))
    assert isinstance(part, EmailMessage)
    return str(part.get_content())


def html_body(message: EmailMessage) -> str:
    part = message.get_body(("html",))
    assert isinstance(part, EmailMessage)
    return str(part.get_content())


def invitation_token(message: EmailMessage) -> str:
    """The token of the Accept and Decline addresses of the plain-text part (they must agree).

    The text part shows them as plain addresses, one to a line: a mailto URL with a
    percent-encoded subject is noise to a reader (and to spam filters)."""
    text = text_body(message)
    domain = re.escape(DOMAIN)
    accepts = re.findall(rf"^  accept\+([^@\s]+)@{domain}\r?$", text, re.MULTILINE)
    declines = re.findall(rf"^  decline\+([^@\s]+)@{domain}\r?$", text, re.MULTILINE)
    assert accepts and set(accepts) == set(declines), text
    (token,) = set(accepts)
    assert TOKEN.fullmatch(token), token
    return str(token)


def bounce_key(envelope_from: str, message_id: str) -> str:
    """``key`` of ``bounces+<key>@share.example.org``, checked against the mail's Message-ID
    (which holds only a one-way hash of it: replies quote the Message-ID)."""
    match = re.fullmatch(rf"bounces\+([0-9a-f]{{32}})@{re.escape(DOMAIN)}", envelope_from)
    assert match, envelope_from
    assert compose.message_id_for(match[1], DOMAIN) == message_id
    assert match[1] not in message_id
    return match[1]


def secret_locations(db_path: Path, secret: str) -> list[str]:
    """Every place the database keeps ``secret``: table cells and the bytes of its files.

    The WAL is checkpointed (and truncated) first, so the main file holds every page;
    then the files beside it (-wal, -shm, the flush lock) are read too, in case.
    """
    found = []
    with closing(sqlite3.connect(db_path)) as conn:
        busy, _, _ = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        assert busy == 0, "another connection kept the WAL from being checkpointed"
        tables = [
            row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        ]
        for table in tables:
            for row in conn.execute(f'SELECT * FROM "{table}"'):
                for value in row:
                    if isinstance(value, bytes):
                        value = value.decode("latin-1")
                    if secret in str(value).lower():
                        found.append(f"table {table}")
    for path in sorted(db_path.parent.iterdir()):
        if path.is_file() and path.name.startswith(db_path.name):
            data = path.read_bytes()
            if secret.encode() in data or secret.upper().encode() in data:
                found.append(f"file {path.name}")
    return found


# --- 1. one invitation, end to end


def test_invitation_arrives_once_well_formed_and_the_db_keeps_no_token(
    cli: Cli, calendar: str, relay: Relay, db_path: Path
) -> None:
    env = relay.env()
    shared = invite(cli, env, f"Bob Invitee <{INVITEE}>")
    # While queued, the mail (and so its token) is in the outbox: the search below can see it.
    (queued_raw,) = db_rows(db_path, "SELECT raw FROM outbox_bodies")
    reply_to = re.search(rb"share\+([a-z2-7]{26})@", queued_raw[0])
    assert reply_to is not None
    queued_token = reply_to[1].decode()
    assert secret_locations(db_path, queued_token)

    flushed = ok(cli("outbox", "flush", env=env))
    assert "Sent 1 to the relay; 0 to retry later; 0 failed" in flushed.out
    ok(cli("outbox", "flush", "--force", env=env))  # nothing left to send: nothing sent again

    assert len(relay.sink.deliveries) == 1
    (delivery,) = relay.sink.deliveries
    message = delivery.message
    assert delivery.message_id == shared["message_id"]
    assert delivery.rcpt_tos == [INVITEE]
    assert message["To"].addresses[0].addr_spec == INVITEE
    assert message["From"].addresses[0].addr_spec == f"calendar@{DOMAIN}"
    assert message["Date"] is not None
    assert message["Subject"] == "Ann Demo shared the calendar “project” with you"

    # multipart/alternative: a plain-text part that works alone, then HTML
    assert message.get_content_type() == "multipart/alternative"
    assert [part.get_content_type() for part in message.iter_parts()] == [
        "text/plain",
        "text/html",
    ]
    token = invitation_token(message)
    assert token == queued_token
    text, html = text_body(message), html_body(message)
    assert f"/i/{token}" in text  # the web link

    # HTML that mail clients render: no <style>, no script, nothing fetched from the network
    lowered = html.lower()
    assert "<style" not in lowered
    assert "<script" not in lowered
    assert not re.search(r"<img\b[^>]*\bsrc\s*=\s*[\"']?\s*(?:https?:)?//", lowered)
    assert not re.search(r"<link\b", lowered)
    assert "url(" not in lowered
    assert f'href="mailto:accept+{token}@{DOMAIN}?subject=Accept%3A' in html
    assert f'href="mailto:decline+{token}@{DOMAIN}?subject=Decline%3A' in html

    # the token is in Reply-To and nowhere else of the headers or the envelope
    assert message["Reply-To"].addresses[0].addr_spec == f"share+{token}@{DOMAIN}"
    for name, value in message.items():
        assert (token in str(value)) == (name.lower() == "reply-to"), name
    assert token not in str(message.get("Return-Path", ""))
    bounce_key(delivery.mail_from, delivery.message_id)
    assert token not in delivery.mail_from
    assert message["Auto-Submitted"] == "auto-generated"
    assert message["X-Auto-Response-Suppress"] == "All"

    # the database holds the token's hash, and nothing else of it
    assert db_rows(db_path, "SELECT token_hash, revoked_at FROM invitations") == [
        (token_hash(token), None)
    ]
    assert outbox_json(cli, env) == []
    assert secret_locations(db_path, token) == []


# --- 2. temporary refusals: retried with backoff, delivered once


@pytest.mark.parametrize(
    ("stage", "reply"),
    [
        pytest.param("DATA", "451 4.3.0 Mailbox busy, try again later", id="451-after-data"),
        pytest.param("RCPT", "451 4.7.1 Greylisted, try again later", id="451-at-rcpt"),
        pytest.param("MAIL", "421 4.3.2 Service shutting down", id="421-at-mail"),
        pytest.param("DATA", "421 4.3.2 Service shutting down", id="421-after-data"),
    ],
)
def test_temporary_refusals_are_retried_until_delivered_exactly_once(
    cli: Cli, calendar: str, relay: Relay, clock: FixedClock, stage: str, reply: str
) -> None:
    env = relay.env()
    code = reply[:3]
    relay.sink.refuse(stage, reply, times=2)
    shared = invite(cli, env)

    first = ok(cli("outbox", "flush", env=env))
    assert "Sent 0 to the relay; 1 to retry later; 0 failed" in first.out
    assert code in first.err
    (waiting,) = outbox_json(cli, env)
    assert waiting["message_id"] == shared["message_id"]
    assert waiting["status"] == "queued"
    assert waiting["attempts"] == 1
    assert code in waiting["last_error"]
    retry_at = datetime.fromisoformat(waiting["next_attempt_at"])
    assert retry_at > clock.now()

    # not due yet: a plain flush leaves it alone and does not even call the relay
    assert "Sent 0 to the relay; 0 to retry later" in ok(cli("outbox", "flush", env=env)).out
    assert len(relay.sink.refusals) == 1

    # --force tries now, and the relay refuses a second time; the wait grows
    forced = ok(cli("outbox", "flush", "--force", env=env))
    assert "1 to retry later" in forced.out
    (waiting,) = outbox_json(cli, env)
    assert (waiting["status"], waiting["attempts"]) == ("queued", 2)
    assert code in waiting["last_error"]
    assert datetime.fromisoformat(waiting["next_attempt_at"]) > retry_at
    assert shares_json(cli, env)[0]["status"] == "invited"

    # once the wait is over, a plain flush delivers it
    clock.advance(datetime.fromisoformat(waiting["next_attempt_at"]) - clock.now())
    assert "Sent 1 to the relay" in ok(cli("outbox", "flush", env=env)).out
    ok(cli("outbox", "flush", "--force", env=env))
    assert outbox_json(cli, env) == []
    assert [refused for _, refused in relay.sink.refusals] == [reply, reply]
    assert relay.sink.message_ids() == Counter({shared["message_id"]: 1})
    assert len(relay.sink.deliveries) == 1
    assert shares_json(cli, env)[0]["status"] == "invited"


# --- 3. the relay down for the whole run


def test_relay_down_keeps_every_mail_queued_until_it_is_back(
    cli: Cli, calendar: str, clock: FixedClock
) -> None:
    port = free_port()
    env = relay_env(port)
    invitees = [f"person{number}@example.org" for number in range(3)]
    queued = {invite(cli, env, invitee)["message_id"] for invitee in invitees}

    for flush in (("outbox", "flush"), ("outbox", "flush", "--force")):
        down = cli(*flush, env=env)
        assert down.code == 1, down.err  # for cron: the operator must look
        assert "Sent 0 to the relay; 1 to retry later; 0 failed" in down.out
        assert f"127.0.0.1:{port}" in down.err
    waiting = outbox_json(cli, env)
    assert {entry["message_id"] for entry in waiting} == queued
    assert all(entry["status"] == "queued" for entry in waiting)
    # the first mail was tried (twice); the others were not, since there was no connection
    assert [entry["attempts"] for entry in waiting] == [2, 0, 0]
    assert f"127.0.0.1:{port}" in waiting[0]["last_error"]
    assert {share["status"] for share in shares_json(cli, env)} == {"invited"}

    sink = Sink()
    with running_relay(sink, port=port):
        clock.advance(timedelta(hours=1))
        back = ok(cli("outbox", "flush", env=env))
        assert "Sent 3 to the relay; 0 to retry later; 0 failed" in back.out
        ok(cli("outbox", "flush", "--force", env=env))
    assert sink.message_ids() == Counter(dict.fromkeys(queued, 1))
    assert len(sink.deliveries) == 3
    assert outbox_json(cli, env) == []


# --- 4. a permanent refusal


@pytest.mark.parametrize(
    ("stage", "reply"),
    [
        pytest.param("RCPT", "550 5.1.1 No such user here", id="550-at-rcpt"),
        pytest.param("DATA", "554 5.7.1 Message rejected", id="554-after-data"),
    ],
)
def test_permanent_refusal_makes_the_share_undeliverable_and_kills_the_token(
    cli: Cli, calendar: str, relay: Relay, db_path: Path, stage: str, reply: str
) -> None:
    env = relay.env()
    code = reply[:3]
    relay.sink.refuse(stage, reply, times=1)
    shared = invite(cli, env)

    flushed = cli("outbox", "flush", env=env)
    assert flushed.code == 1, flushed.err  # a mail failed: non-zero, for cron
    # the owner's notice that it could not be delivered goes out in the same flush
    assert "Sent 1 to the relay; 0 to retry later; 1 failed" in flushed.out
    assert code in flushed.err
    (failed,) = outbox_json(cli, env)  # what is waiting or failed: the sent notice is not
    assert db_rows(db_path, "SELECT kind, status FROM outbox ORDER BY id") == [
        ("invitation", "failed"),
        ("owner_undeliverable", "sent"),
    ]
    (notice,) = relay.sink.deliveries
    assert notice.rcpt_tos == [OWNER]
    assert failed["message_id"] == shared["message_id"]
    assert (failed["status"], failed["attempts"]) == ("failed", 1)
    assert code in failed["last_error"]
    (listed,) = shares_json(cli, env)
    assert (listed["email"], listed["status"]) == (INVITEE, "undeliverable")
    ((revoked_at,),) = db_rows(db_path, "SELECT revoked_at FROM invitations")
    assert revoked_at is not None  # the token no longer works

    ok(cli("outbox", "flush", "--force", env=env))  # a failed mail is never tried again
    assert relay.sink.deliveries == [notice]
    assert len(relay.sink.refusals) == 1
    assert shares_json(cli, env)[0]["status"] == "undeliverable"

    # stopping the share now tells nobody: the address does not take mail
    ok(cli("unshare", "project", INVITEE, env=env))
    ok(cli("outbox", "flush", "--force", env=env))
    assert relay.sink.deliveries == [notice]
    assert shares_json(cli, env)[0]["status"] == "revoked"


# --- 4b. the relay refuses calshare itself: the operator's problem, not the invitee's


def test_calshare_greets_the_relay_with_the_configured_name(
    cli: Cli, calendar: str, relay: Relay
) -> None:
    """Not socket.getfqdn() (often "localhost"): [relay] helo_name, else mail.domain."""
    invite(cli, relay.env())
    ok(cli("outbox", "flush", env=relay.env()))
    invite(cli, relay.env(), "carol@example.org")
    ok(cli("outbox", "flush", env=relay.env(CALSHARE_RELAY_HELO_NAME="out.example.net")))

    assert [session.host_name for session in relay.sink.sessions] == [DOMAIN, "out.example.net"]
    assert len(relay.sink.deliveries) == 2


@pytest.mark.parametrize(
    ("stage", "reply"),
    [
        pytest.param("MAIL", "553 5.7.1 <bounces+x@share.example.org>: Sender address rejected",
                     id="553-at-mail"),
        pytest.param("MAIL", "550 5.1.8 Bad sender's system address", id="550-at-mail"),
        pytest.param("RCPT", "504 5.5.2 <localhost>: Helo command rejected: need fully-qualified"
                     " hostname", id="504-helo-at-rcpt"),
        pytest.param("RCPT", "554 5.7.1 <bob@example.org>: Relay access denied",
                     id="554-relay-access-denied"),
    ],
)  # fmt: skip
def test_a_relay_refusing_calshare_itself_keeps_the_mail_queued_and_the_share_invited(
    cli: Cli, calendar: str, relay: Relay, db_path: Path, clock: FixedClock, stage: str, reply: str
) -> None:
    env = relay.env()
    queued = [invite(cli, env, f"person{number}@example.org")["message_id"] for number in range(3)]
    relay.sink.refuse(stage, reply, times=1)

    flushed = cli("outbox", "flush", env=env)

    assert flushed.code == 1, flushed.err  # the operator must act: non-zero for cron
    assert "Sent 0 to the relay; 1 to retry later; 0 failed" in flushed.out
    assert "refused calshare itself" in flushed.err and reply[:3] in flushed.err
    assert "not the recipients" in flushed.err
    # the first mail is deferred with backoff; the rest were not even tried (same relay)
    waiting = outbox_json(cli, env)
    assert [(entry["status"], entry["attempts"]) for entry in waiting] == [
        ("queued", 1),
        ("queued", 0),
        ("queued", 0),
    ]
    assert "refused calshare itself" in waiting[0]["last_error"]
    assert "helo_name" in waiting[0]["last_error"]  # what to look at
    assert datetime.fromisoformat(waiting[0]["next_attempt_at"]) > clock.now()
    assert {share["status"] for share in shares_json(cli, env)} == {"invited"}
    assert db_rows(db_path, "SELECT count(*) FROM invitations WHERE revoked_at IS NULL") == [(3,)]

    # the operator fixes it: everything goes, once
    clock.advance(timedelta(hours=2))
    assert (
        "Sent 3 to the relay; 0 to retry later; 0 failed" in ok(cli("outbox", "flush", env=env)).out
    )
    assert sorted(relay.sink.message_ids()) == sorted(queued)
    assert {share["status"] for share in shares_json(cli, env)} == {"invited"}


@pytest.mark.parametrize(
    ("stage", "reply"),
    [
        pytest.param("MAIL", "553 5.7.1 <{sender}>: Sender address rejected: not owned by user",
                     id="553-at-mail"),
        pytest.param("MAIL", "450 4.1.8 <{sender}>: Sender address rejected: Domain not found",
                     id="450-at-mail"),
        pytest.param("RCPT", "553 5.7.1 <{sender}>: Sender address rejected: not logged in",
                     id="553-at-rcpt"),
        pytest.param("DATA", "554 5.7.1 message from <{sender}> refused", id="554-at-data"),
    ],
)  # fmt: skip
def test_a_relay_quoting_our_bounce_address_leaks_not_its_key(
    cli: Cli,
    calendar: str,
    relay: Relay,
    db_path: Path,
    caplog: pytest.LogCaptureFixture,
    stage: str,
    reply: str,
) -> None:
    """Review of issue 11: the key of bounces+KEY@ lets whoever reads it forge a bounce,
    and relays quote the envelope sender in their refusals. Neither the log, nor the
    outbox (last_error, envelope_from once sent), nor the CLI's output may show it."""
    env = relay.env()
    invite(cli, env)
    relay.sink.refuse(stage, reply, times=1)
    with caplog.at_level(logging.DEBUG):
        flushed = cli("outbox", "flush", env=env)
        listed = cli("outbox", "--json", env=env)
        ((_, said),) = relay.sink.refusals
        key = re.fullmatch(r"bounces\+([0-9a-f]{32})@" + re.escape(DOMAIN), relay_sender(said))
        assert key is not None, said  # the relay did quote it
        assert "bounces+…@" in flushed.out + flushed.err  # what it said is still shown
        # and once sent, the outbox forgets the key (bounces are matched by Message-ID)
        forced = cli("outbox", "flush", "--force", env=env)
    went = stage != "DATA"  # refused for calshare or for now: sent once forced; else failed
    assert ("Sent 1 to the relay" in forced.out) == went, forced.out
    shown = flushed.out + flushed.err + listed.out + listed.err + forced.out + forced.err
    assert key[1] not in shown
    # calshare's log, not the fake relay's own (aiosmtpd logs the MAIL FROM it receives)
    ours = [record for record in caplog.records if record.name != "mail.log"]
    assert ours and all(key[1] not in logging.Formatter().format(r) for r in ours)
    rows = db_rows(db_path, "SELECT envelope_from, last_error, status FROM outbox")
    assert key[1] not in repr(rows), rows
    assert rows[0][2] == ("sent" if went else "failed"), rows


def relay_sender(reply: str) -> str:
    found = re.search(r"<(bounces\+[^>]+)>", reply)
    assert found is not None, reply
    return found[1]


def test_a_refused_login_keeps_the_mail_queued_and_names_the_user_not_the_password(
    cli: Cli, calendar: str
) -> None:
    def refuse(*_: Any) -> AuthResult:
        return AuthResult(success=False, handled=False)  # aiosmtpd answers 535 5.7.8

    with running_relay(Sink(), authenticator=refuse, auth_require_tls=False) as relay:
        env = relay.env(CALSHARE_RELAY_USERNAME="calshare", CALSHARE_RELAY_PASSWORD="s3cret-pw")
        invite(cli, env)

        flushed = cli("outbox", "flush", env=env)

        assert flushed.code == 1, flushed.err
        assert "AUTH as calshare" in flushed.err and "535" in flushed.err, flushed.err
        assert "s3cret-pw" not in flushed.err + flushed.out
        (waiting,) = outbox_json(cli, env)
        assert (waiting["status"], waiting["attempts"]) == ("queued", 1)
        assert "refused calshare itself" in waiting["last_error"]
        assert shares_json(cli, env)[0]["status"] == "invited"
        assert relay.sink.deliveries == []


def test_a_relay_problem_past_give_up_fails_the_mail_but_not_the_share(
    cli: Cli, calendar: str, clock: FixedClock
) -> None:
    env = relay_env(free_port())  # nothing listens: the relay is down for days
    invite(cli, env)
    assert cli("outbox", "flush", env=env).code == 1
    clock.advance(timedelta(hours=97))  # past outbox.give_up_hours (96)

    flushed = cli("outbox", "flush", env=env)

    assert flushed.code == 1
    assert "1 failed" in flushed.out
    (failed,) = outbox_json(cli, env)
    assert failed["status"] == "failed" and "gave up after 96 hours" in failed["last_error"]
    # nothing was learned about the address: the share is not undeliverable
    assert shares_json(cli, env)[0]["status"] == "invited"


# --- 5. one connection for many mails


def test_many_mails_go_over_one_connection(cli: Cli, calendar: str, relay: Relay) -> None:
    env = relay.env(CALSHARE_OUTBOX_BATCH="2")  # three batches, still one connection
    queued = [invite(cli, env, f"person{number}@example.org")["message_id"] for number in range(5)]

    assert "Sent 5 to the relay" in ok(cli("outbox", "flush", env=env)).out

    assert [delivery.message_id for delivery in relay.sink.deliveries] == queued  # queue order
    assert len(relay.sink.sessions) == 1
    assert all(delivery.session is relay.sink.sessions[0] for delivery in relay.sink.deliveries)
    assert not any(delivery.tls for delivery in relay.sink.deliveries)  # security = none


@pytest.mark.parametrize(
    ("reply", "connections"),
    [
        pytest.param("451 4.3.0 Mailbox busy, try again later", 1, id="451-keeps-the-connection"),
        pytest.param("421 4.3.2 Service shutting down", 2, id="421-means-a-new-connection"),
    ],
)
def test_a_temporary_refusal_mid_flush_does_not_hold_up_the_rest(
    cli: Cli, calendar: str, relay: Relay, reply: str, connections: int
) -> None:
    env = relay.env()
    queued = [invite(cli, env, f"person{number}@example.org")["message_id"] for number in range(4)]
    relay.sink.refuse("DATA", reply, times=1)  # the first mail

    flushed = ok(cli("outbox", "flush", env=env))

    assert "Sent 3 to the relay; 1 to retry later; 0 failed" in flushed.out
    assert [delivery.message_id for delivery in relay.sink.deliveries] == queued[1:]
    assert len(relay.sink.sessions) == connections
    (waiting,) = outbox_json(cli, env)
    assert (waiting["message_id"], waiting["attempts"]) == (queued[0], 1)
    assert reply[:3] in waiting["last_error"]


# --- 6. no relay: the Maildir


def test_without_a_relay_mail_is_written_to_the_maildir(
    cli: Cli, calendar: str, tmp_path: Path
) -> None:
    maildir = tmp_path / "maildir"
    env = {"CALSHARE_OUTBOX_MAILDIR": str(maildir)}
    shared = invite(cli, env)

    flushed = ok(cli("outbox", "flush", env=env))
    assert f"Sent 1 to the Maildir {maildir}" in flushed.out
    ok(cli("outbox", "flush", "--force", env=env))

    assert list((maildir / "tmp").iterdir()) == []
    (path,) = (maildir / "new").iterdir()
    assert len(mailbox.Maildir(maildir, create=False)) == 1
    message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    assert message["Message-ID"] == shared["message_id"]
    bounce_key(message["Return-Path"].strip("<>"), shared["message_id"])
    token = invitation_token(message)
    assert token not in message["Return-Path"]
    assert message["Reply-To"].addresses[0].addr_spec == f"share+{token}@{DOMAIN}"
    assert message.get_content_type() == "multipart/alternative"
    assert outbox_json(cli, env) == []


# --- 7. what is no longer true is not sent


def test_unshare_before_the_flush_cancels_the_invitation_and_tells_no_one(
    cli: Cli, calendar: str, relay: Relay, db_path: Path
) -> None:
    """Someone who never got the invitation is not told that the share is over."""
    env = relay.env()
    invite(cli, env)
    ok(cli("unshare", "project", INVITEE, env=env))

    assert "Sent 0 to the relay" in ok(cli("outbox", "flush", env=env)).out
    assert relay.sink.deliveries == []
    assert db_rows(db_path, "SELECT kind, status FROM outbox") == [("invitation", "cancelled")]


def test_unshare_after_the_invitation_went_out_sends_the_notice(
    cli: Cli, calendar: str, relay: Relay, db_path: Path
) -> None:
    env = relay.env()
    invited = invite(cli, env)
    assert "Sent 1 to the relay" in ok(cli("outbox", "flush", env=env)).out
    ok(cli("unshare", "project", INVITEE, env=env))
    assert "Sent 1 to the relay" in ok(cli("outbox", "flush", env=env)).out

    first, notice = relay.sink.deliveries
    assert first.message_id == invited["message_id"]
    assert notice.message["Subject"] == "Ann Demo stopped sharing the calendar “project” with you"
    assert notice.message["Reply-To"] is None
    for marker in (b"accept+", b"decline+", b"share+", b"/i/"):
        assert marker not in notice.raw
    bounce_key(notice.mail_from, notice.message_id)
    assert db_rows(
        db_path,
        f"SELECT kind, status, raw FROM {WITH_BODIES} ORDER BY id",
    ) == [
        ("invitation", "sent", None),
        ("unshared", "sent", None),
    ]
    ((revoked_at,),) = db_rows(db_path, "SELECT revoked_at FROM invitations")
    assert revoked_at is not None
    assert shares_json(cli, env)[0]["status"] == "revoked"


def test_sharing_again_while_invited_supersedes_the_first_invitation(
    cli: Cli, calendar: str, relay: Relay, db_path: Path
) -> None:
    env = relay.env()
    first = invite(cli, env, level="titles")
    second = invite(cli, env, level="details")
    assert second["message_id"] != first["message_id"]

    assert "Sent 1 to the relay" in ok(cli("outbox", "flush", env=env)).out

    (delivery,) = relay.sink.deliveries
    assert delivery.message_id == second["message_id"]
    assert "can view all details" in text_body(delivery.message)
    token = invitation_token(delivery.message)
    old, new = db_rows(db_path, "SELECT token_hash, level, revoked_at FROM invitations ORDER BY id")
    assert old[1:] == ("titles", old[2]) and old[2] is not None  # the first token is dead
    assert old[0] != token_hash(token)
    assert new == (token_hash(token), "details", None)
    assert db_rows(db_path, "SELECT message_id, status FROM outbox ORDER BY id") == [
        (first["message_id"], "cancelled"),
        (second["message_id"], "sent"),
    ]
    (listed,) = shares_json(cli, env)
    assert (listed["level"], listed["status"]) == ("details", "invited")


# --- 8. kill -9 in the middle of a thousand mails


def subprocess_env(relay: Relay, db_path: Path, **more: str) -> dict[str, str]:
    """The environment of a ``calshare`` process: ours, minus any CALSHARE_* of the caller."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("CALSHARE_")}
    return env | relay.env(CALSHARE_DB=str(db_path), **more)


def kill_flush_holding(
    relay: Relay, env: dict[str, str], cwd: Path, held: int, *flags: str
) -> Callable[[], None]:
    """Start ``calshare outbox flush`` in a process; once the relay holds its ``held``-th
    message (taken, but the 250 kept back), return a function that kills it with SIGKILL:
    the sender dies with a mail on the wire, the worst moment.
    """
    relay.sink.hold_at(held)
    process = subprocess.Popen(
        [str(CALSHARE), "outbox", "flush", *flags],
        env=env,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )

    def kill() -> None:
        try:
            os.kill(process.pid, signal.SIGKILL)
            process.communicate(timeout=WAIT)
        finally:
            if process.poll() is None:
                process.kill()
                process.communicate()
        assert process.returncode == -signal.SIGKILL
        relay.sink.release.set()

    deadline = time.monotonic() + WAIT
    while not relay.sink.reached.wait(0.05):
        if process.poll() is not None:
            out, err = process.communicate()
            pytest.fail(f"the flush ended before the relay held mail {held}: {out!r} {err!r}")
        if time.monotonic() > deadline:
            kill()
            pytest.fail(f"the relay never got mail {held}")
    return kill


def flush_in_a_process(env: dict[str, str], cwd: Path, *flags: str) -> None:
    done = subprocess.run(
        [str(CALSHARE), "outbox", "flush", *flags],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=WAIT * 2,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr


def test_kill_9_mid_flush_then_flush_again_delivers_every_mail(
    cli: Cli, relay: Relay, db_path: Path, tmp_path: Path
) -> None:
    count, batch, held = 1000, 50, 130  # the 130th mail is in the third batch
    clock = SystemClock()  # the flushes run as separate processes, on the real clock
    settings = load_settings(None, env={})
    with Store.open(db_path) as store:
        add_calendar(store, clock, "project", OWNER, None, "UTC")
        queued = {
            share(
                store, settings, clock, "project", f"person{number:04d}@example.org", Level.TITLES
            ).message_id
            for number in range(count)
        }
    assert len(queued) == count
    env = subprocess_env(relay, db_path, CALSHARE_OUTBOX_BATCH=str(batch))

    kill = kill_flush_holding(relay, env, tmp_path, held)
    # meanwhile a second sender stands aside rather than send the same mails
    busy = ok(cli("outbox", "flush", "--force", env=relay.env(CALSHARE_OUTBOX_BATCH="50")))
    assert "Another calshare process is sending the outbox" in busy.out
    kill()
    before_kill = [delivery.message_id for delivery in relay.sink.deliveries]
    assert len(before_kill) == held
    statuses = dict(db_rows(db_path, "SELECT status, count(*) FROM outbox GROUP BY status"))
    assert statuses.get("sending", 0) > 0, statuses  # killed with a claimed batch in hand
    # each delivery was recorded as it happened: all but the one in flight
    assert statuses.get("sent", 0) == held - 1, statuses

    flush_in_a_process(env, tmp_path)

    delivered = relay.sink.message_ids()
    assert set(delivered) == queued  # every queued mail arrived, and nothing else did
    assert sum(delivered.values()) == len(relay.sink.deliveries)
    twice = {message_id for message_id, times in delivered.items() if times > 1}
    assert all(delivered[message_id] == 2 for message_id in twice)
    # only the mail that was on its way when the sender died may arrive a second time,
    # with the same Message-ID
    assert twice <= {before_kill[-1]}
    assert db_rows(db_path, "SELECT status, count(*) FROM outbox GROUP BY status") == [
        ("sent", count)
    ]


def test_an_invitation_withdrawn_after_a_crashed_flush_is_not_sent(
    cli: Cli, calendar: str, relay: Relay, db_path: Path, tmp_path: Path
) -> None:
    """A flush dies holding Carol's and Bob's invitations; Bob is unshared before the
    next flush. Carol's may arrive twice; Bob's invitation must not arrive at all."""
    env = relay.env()
    carol = invite(cli, env, "carol@example.org")
    bob = invite(cli, env, INVITEE)

    # Carol's mail is on the wire, Bob's claimed in the same batch, when the sender dies.
    kill = kill_flush_holding(relay, subprocess_env(relay, db_path), tmp_path, 1, "--force")
    kill()
    ok(cli("unshare", "project", INVITEE, env=env))
    ok(cli("outbox", "flush", "--force", env=env))

    to_bob = [delivery for delivery in relay.sink.deliveries if delivery.rcpt_tos == [INVITEE]]
    # Bob never got the invitation, so he gets nothing at all: no invitation, no notice.
    assert to_bob == []
    assert set(relay.sink.message_ids()) == {carol["message_id"]}
    assert bob["message_id"] not in relay.sink.message_ids()
    assert db_rows(db_path, "SELECT message_id, status FROM outbox WHERE kind = 'invitation'") == [
        (carol["message_id"], "sent"),
        (bob["message_id"], "cancelled"),
    ]


# --- TLS to the relay: STARTTLS and implicit TLS, verified against a CA file


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1, made with the openssl command."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.fail("the TLS tests need the openssl command to make a test certificate")
    directory = tmp_path_factory.mktemp("tls")
    cert, key = directory / "relay.pem", directory / "relay.key"
    subprocess.run(
        [
            openssl,
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=relay.test",
            "-addext",
            "subjectAltName=IP:127.0.0.1,DNS:relay.test",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
        timeout=WAIT,
    )
    return cert, key


def server_context(certificate: tuple[Path, Path]) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*certificate)
    return context


@pytest.fixture(params=["starttls", "tls"])
def tls_relay(request: pytest.FixtureRequest, certificate: tuple[Path, Path]) -> Iterator[Relay]:
    context = server_context(certificate)
    smtp: dict[str, Any] = (
        {"tls_context": context, "require_starttls": True}
        if request.param == "starttls"
        else {"ssl_context": context}
    )
    with running_relay(Sink(), **smtp) as running:
        yield running


def security(relay: Relay) -> str:
    return "tls" if relay.controller.ssl_context is not None else "starttls"


def test_tls_relay_with_its_ca_file_gets_the_mail_encrypted(
    cli: Cli, calendar: str, tls_relay: Relay, certificate: tuple[Path, Path]
) -> None:
    env = relay_env(tls_relay.port, security(tls_relay)) | {
        "CALSHARE_RELAY_CA_FILE": str(certificate[0])
    }
    shared = invite(cli, env)

    assert "Sent 1 to the relay" in ok(cli("outbox", "flush", env=env)).out

    (delivery,) = tls_relay.sink.deliveries
    assert delivery.message_id == shared["message_id"]
    assert delivery.tls  # the message travelled inside TLS


def test_tls_relay_with_an_untrusted_certificate_gets_nothing(
    cli: Cli, calendar: str, tls_relay: Relay
) -> None:
    env = relay_env(tls_relay.port, security(tls_relay))  # the system's CAs only
    invite(cli, env)

    flushed = cli("outbox", "flush", env=env)
    assert flushed.code == 1, flushed.err

    assert "Sent 0 to the relay; 1 to retry later" in flushed.out
    assert "certificate" in flushed.err.lower()
    (waiting,) = outbox_json(cli, env)
    assert waiting["status"] == "queued"
    assert "certificate" in waiting["last_error"].lower()
    assert tls_relay.sink.deliveries == []
