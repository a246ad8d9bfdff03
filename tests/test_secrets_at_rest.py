"""No live secret at rest (issue 11, finding 4) and none in a redacted log line (finding 6).

Mails reach the real daemon over SMTP; what they leave behind is read back from
every table and from the SQLite file's bytes (the WAL before a checkpoint, the main
file after one), and searched for the secret in every encoding a mail could use.
"""

from __future__ import annotations

import base64
import html
import quopri
import re
import sqlite3
from collections.abc import Callable
from contextlib import closing
from email import policy
from email.message import EmailMessage
from pathlib import Path
from urllib.parse import unquote

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from sqlite_utils import Database

from calshare.redaction import redact_mail
from calshare.store import MIGRATIONS, Store
from calshare.tokens import new_token, redact, token_hash
from tests.support.inbox import (
    BASE_URL,
    DOMAIN,
    INVITEE,
    World,
    deliver,
    invitation_of,
    make_world,
    new_message_id,
    quoted_invitation,
    reply,
    wait_until,
    world,
)
from tests.support.relay import Relay, relay

__all__ = ["make_world", "relay", "world"]  # fixtures

pytestmark = pytest.mark.network

BASE32 = "abcdefghijklmnopqrstuvwxyz234567"
PLACES = [
    BASE_URL + "/feeds/{}.ics",
    BASE_URL + "/i/{}",
    BASE_URL + "/p/{}",
    "mailto:accept+{}@" + DOMAIN,
    "mailto:decline+{}@" + DOMAIN,
    "share+{}@" + DOMAIN,
    "bounces+{}@" + DOMAIN,
]


# --- finding the secret, however it is written


def _base64_runs(text: str) -> list[str]:
    decoded = []
    letters = re.sub(r"\s+", "", text)
    for run in re.findall(r"[A-Za-z0-9+/]{36,}", letters):
        for skip in range(4):
            usable = run[skip:][: (len(run) - skip) // 4 * 4]
            decoded.append(base64.b64decode(usable).decode("latin-1"))
    return decoded


def readings(data: bytes) -> list[str]:
    """The ways a reader could decode stored bytes, lower-cased: secrets must be in none."""
    text = data.decode("latin-1")
    forms = [
        text,
        data.decode("utf-8", "replace"),
        quopri.decodestring(data).decode("latin-1"),
        unquote(unquote(text)),
        html.unescape(text),
    ]
    forms += [unquote(html.unescape(form)) for form in list(forms)]
    forms += _base64_runs(text)
    return [form.lower() for form in forms]


def holds(data: bytes, secret: str) -> bool:
    return any(secret.lower() in form for form in readings(data))


def file_bytes(db_path: Path) -> bytes:
    """The database as it sits on disk: the main file and its WAL, if any."""
    wal = db_path.with_name(db_path.name + "-wal")
    return db_path.read_bytes() + (wal.read_bytes() if wal.exists() else b"")


def checkpointed(db_path: Path) -> bytes:
    with closing(sqlite3.connect(db_path)) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return file_bytes(db_path)


def tables_reading(db_path: Path, secret: str, skip: tuple[str, ...] = ()) -> list[str]:
    """Every table (but ``skip``) whose values, read back and decoded, hold the secret."""
    with closing(sqlite3.connect(db_path)) as conn:
        names = [
            row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
        ]
        found = []
        for name in names:
            if name in skip:
                continue
            for row in conn.execute(f'SELECT * FROM "{name}"'):
                for value in row:
                    data = value if isinstance(value, bytes) else str(value).encode()
                    if holds(data, secret):
                        found.append(name)
        return found


# --- the pure functions


def written(secret: str, style: str, split: int) -> str:
    """The secret as some mail or URL writes it."""
    if style == "upper":
        return secret.upper()
    if style == "glued":  # a letter glued to it: 27 characters
        return secret + "x"
    if style == "soft-break":
        return secret[:split] + "=\r\n" + secret[split:]
    if style == "percent":
        return "".join(f"%{ord(c):02X}" if i % 2 else c for i, c in enumerate(secret))
    if style == "percent-twice":
        return "".join(f"%25{ord(c):02x}" for c in secret)
    if style == "qp-escaped":
        return "".join(f"={ord(c):02X}" if i < split else c for i, c in enumerate(secret))
    if style == "entities":
        return "".join(f"&#{ord(c)};" if i % 3 else f"&#x{ord(c):x};" for i, c in enumerate(secret))
    assert style == "plain"
    return secret


STYLES = [
    "plain",
    "upper",
    "glued",
    "soft-break",
    "percent",
    "percent-twice",
    "qp-escaped",
    "entities",
]


@given(
    raw=st.binary(min_size=16, max_size=16),
    style=st.sampled_from(STYLES),
    place=st.sampled_from(PLACES),
    split=st.integers(1, 25),
)
def test_redact_hides_a_token_however_it_is_written(
    raw: bytes, style: str, place: str, split: int
) -> None:
    secret = new_token(lambda _: raw)
    text = f"Quoted: <{place.format(written(secret, style, split))}> thanks"
    assert not holds(redact(text).encode(), secret), redact(text)
    assert redact(text).startswith("Quoted: <") and redact(text).endswith("> thanks")


def test_redact_leaves_words_alone() -> None:
    text = "Maybe? Ann's calendar, 2026-12-03, abcdefghijklmnopqrstuvwxy (25 letters)"
    assert redact(text) == text
    assert redact("x" * 26) == "…" and redact("y" * 40) == "…"


@given(st.binary(max_size=3000))
def test_any_bytes_give_a_copy_without_raising(raw: bytes) -> None:
    assert isinstance(redact_mail(raw), bytes)


# --- mails over SMTP, what is left at rest


def mail_with(secret: str, encoding: str, pad: int) -> tuple[bytes, str]:
    """(message, envelope sender): the secret in a mail, encoded as ``encoding`` says."""
    link = f"{BASE_URL}/feeds/{secret}.ics"
    lead = "x" * pad
    message = EmailMessage(policy=policy.SMTP)
    message["From"] = f"Bob <{INVITEE}>"
    message["To"] = f"share@{DOMAIN}"
    message["Subject"] = "Re: your calendar"
    message["Message-ID"] = new_message_id()
    sender = INVITEE
    if encoding == "subject":  # RFC 2047: the whole subject as one base64 encoded word
        words = base64.b64encode(f"Ré: {link} – æøå".encode()).decode()
        message.set_content("maybe?\n")
        subject = f"Subject: =?utf-8?b?{words}?=".encode()
        return message.as_bytes().replace(b"Subject: Re: your calendar", subject), sender
    elif encoding == "qp":  # long lines: soft line breaks anywhere, also inside the secret
        message.set_content(f"maybe?\n> {lead} {link}?k={secret}\n", cte="quoted-printable")
    elif encoding == "base64":
        message.set_content(f"maybe?\n> {lead} {link}\n", cte="base64")
    elif encoding == "url":
        quoted = "".join(f"%{ord(c):02X}" for c in secret)
        message.set_content(f"maybe?\nhttps://redirect.example/?u={BASE_URL}%2Fi%2F{quoted}\n")
    elif encoding == "html":
        entities = "".join(f"&#{ord(c)};" for c in secret)
        message.set_content(
            f"<p>maybe?</p><blockquote>{lead}<a href='{link}'>{BASE_URL}/i/{entities}</a>",
            subtype="html",
            cte="quoted-printable",
        )
    elif encoding == "case":
        message.set_content(f"MAYBE?\n> {link.upper()}\n")
    elif encoding in ("report", "pasted"):
        # a delay report quoting our welcome mail (its body base64, as Python sends UTF-8)
        quoted = EmailMessage(policy=policy.SMTP)
        quoted["From"] = f"Calendar <calendar@{DOMAIN}>"
        quoted["Subject"] = "Welcome"
        quoted.set_content(f"Subscribe: {lead} {link}\nSeeing Ann’s calendar.\n", cte="base64")
        del message["From"]
        message["From"] = "Mail Delivery System <MAILER-DAEMON@mx.example.net>"
        sender = ""
        if encoding == "report":
            message.set_content("Delayed: still trying.\n")
            message.add_attachment(quoted)  # message/rfc822
            message.replace_header("Content-Type", "multipart/report; report-type=delivery-status")
            message.set_boundary("REPORT")
        else:  # the old kind: the original pasted below a line of text
            message.set_content(
                "This is a copy of the message.\n\n" + quoted.as_string(policy=policy.SMTP)
            )
    else:
        raise AssertionError(encoding)
    return message.as_bytes(), sender


ENCODINGS = ["subject", "qp", "base64", "url", "html", "case", "report", "pasted"]


@hypothesis_settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    raw=st.binary(min_size=16, max_size=16),
    encoding=st.sampled_from(ENCODINGS),
    pad=st.integers(0, 80),
)
def test_no_secret_in_a_mail_is_left_at_rest(
    world: World, raw: bytes, encoding: str, pad: int
) -> None:
    if not world.count("SELECT count(*) FROM shares"):  # one invitation for all examples
        world.invite()
    ((message_id,),) = world.rows("SELECT message_id FROM outbox WHERE kind = 'invitation'")
    invitation = invitation_of(world.db_path, message_id, "project", INVITEE)
    secret = new_token(lambda _: raw)
    message, sender = mail_with(secret, encoding, pad)
    assert holds(message, secret)  # the test's own reader finds it in the mail as sent
    before = world.count("SELECT count(*) FROM inbound_raw")
    recipient = f"share+{invitation.token}@{DOMAIN}"
    assert deliver(world.inbox.smtp, message, recipient, sender).code == 250
    assert world.count("SELECT count(*) FROM inbound_raw") == before + 1
    assert tables_reading(world.db_path, secret) == []
    assert not holds(file_bytes(world.db_path), secret)  # the WAL as written
    assert not holds(checkpointed(world.db_path), secret)  # and the file once it is folded in


def test_live_tokens_and_feed_secrets_from_real_mails_are_not_stored(
    make_world: Callable[..., World], relay: Relay
) -> None:
    """The attack run's three cases, with a relay that takes our mail so the outbox empties.

    An unclear answer and a held one quote the live invitation token; a delay report
    quotes the welcome mail and with it the live feed secret. Once every mail of ours
    is sent (their bytes dropped), the database file holds neither, in any encoding.
    """
    world = make_world(**relay.env())
    invitation = world.invite()
    share_address = f"share+{invitation.token}@{DOMAIN}"
    unclear = reply(
        to=share_address,
        body="maybe? what is this\n" + quoted_invitation(invitation, "Ann wrote:") + "x" * 90,
        cte="quoted-printable",
    )
    assert deliver(world.inbox.smtp, unclear, share_address).code == 250
    forwarded = reply(
        to=f"accept+{invitation.token}@{DOMAIN}",
        sender="carol@example.net",
        body="Accept\n" + quoted_invitation(invitation, "Fwd:"),
        cte="base64",
    )
    address = f"accept+{invitation.token}@{DOMAIN}"
    assert deliver(world.inbox.smtp, forwarded, address, "carol@example.net").code == 250
    accept = reply(to=address, subject="Accept: project")
    assert deliver(world.inbox.smtp, accept, address).code == 250
    welcome = wait_until(
        lambda: [
            d for d in relay.sink.deliveries if "/feeds/" in d.message.get_body().get_content()
        ],
        "the welcome mail at the relay",
    )[0]
    feed_secret = re.search(r"/feeds/([a-z2-7]{26})\.ics", welcome.message.get_body().get_content())
    assert feed_secret is not None
    assert world.count(
        "SELECT count(*) FROM shares WHERE feed_hash = ?", (token_hash(feed_secret[1]),)
    )  # live
    report = (
        (
            "From: Mail Delivery System <MAILER-DAEMON@mx.example.net>\r\n"
            f"To: {welcome.mail_from}\r\n"
            "Subject: Delayed Mail (still being retried)\r\n"
            f"Message-ID: {new_message_id()}\r\n"
            "MIME-Version: 1.0\r\n"
            'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\r\n\r\n'
            "--B\r\nContent-Type: text/plain\r\n\r\nYour message is delayed.\r\n"
            "--B\r\nContent-Type: message/delivery-status\r\n\r\n"
            f"Final-Recipient: rfc822; {INVITEE}\r\nAction: delayed\r\nStatus: 4.4.1\r\n\r\n"
            "--B\r\nContent-Type: message/rfc822\r\n\r\n"
        ).encode()
        + welcome.raw
        + b"\r\n--B--\r\n"
    )
    assert deliver(world.inbox.smtp, report, welcome.mail_from, "").code == 250
    # everything we queued has gone out: no mail of ours holds a secret any more
    wait_until(lambda: not world.count("SELECT count(*) FROM outbox_bodies"), "the outbox to empty")
    assert world.count("SELECT count(*) FROM inbound_raw") == 4
    copies = [
        bytes(row[0]) for row in world.rows("SELECT raw FROM inbound_raw ORDER BY inbound_id")
    ]
    assert b"maybe? what is this" in copies[0] and b"Your message is delayed" in copies[3]
    secrets = (invitation.token, feed_secret[1])
    for secret in secrets:
        assert tables_reading(world.db_path, secret) == [], secret
    # the bounce key is a secret too; the outbox keeps it (its envelope sender), the inbound
    # log must not
    bounce_key = welcome.mail_from.split("+", 1)[1].split("@", 1)[0]
    assert holds(report, bounce_key)
    assert tables_reading(world.db_path, bounce_key, skip=("outbox",)) == []
    # (the WAL still has the frames of our own mails as they waited: scanned once gone)
    world.inbox.stop()
    for secret in secrets:
        assert not holds(checkpointed(world.db_path), secret), secret


def test_migration_redacts_mails_and_reasons_stored_before(db_path: Path) -> None:
    """A schema-5 database holding a raw mail with a live token, as the old code stored it."""
    token = new_token()
    db_path.parent.mkdir(parents=True)
    conn = sqlite3.connect(db_path)
    old = Database(conn)
    for version, migration in enumerate(MIGRATIONS[:5]):
        migration(old)
        old.execute(f"PRAGMA user_version = {version + 1}")
    raw = reply(
        to=f"share+{token}@{DOMAIN}", body=f"maybe?\n> {BASE_URL}/i/{token}\n", cte="base64"
    )
    old.execute(
        """INSERT INTO inbound (id, received_at, dedup, message_id, mail_from,
               recipient, kind, reason, outcome, size)
           VALUES (1, 'x', 'd', 'm', 'f', ?, 'unknown', ?, 'o', 1)""",
        [f"share+{token}x@{DOMAIN}", f"unclear: {token}x"],
    )
    old.execute("INSERT INTO inbound_raw (inbound_id, raw) VALUES (1, ?)", [raw])
    conn.commit()
    conn.close()
    assert holds(db_path.read_bytes(), token)
    with Store.open(db_path) as store:
        assert store.schema_version == len(MIGRATIONS)
        ((copy,),) = store.db.execute("SELECT raw FROM inbound_raw").fetchall()
        assert b"maybe?" in copy
    assert tables_reading(db_path, token) == []
    assert not holds(checkpointed(db_path), token)


def test_the_stored_copy_is_readable(world: World) -> None:
    """Still useful to an operator: headers and text decoded; attachments named, not kept."""
    message = EmailMessage()
    message["From"] = f"Bob <{INVITEE}>"
    message["Subject"] = "Ré: vielleicht"
    message["Message-ID"] = new_message_id()
    message.set_content("Kanskje? Jeg må sjekke.\n", cte="base64")
    message.add_attachment(b"\x89PNG" + bytes(200), maintype="image", subtype="png")
    invitation = world.invite()
    address = f"share+{invitation.token}@{DOMAIN}"
    assert deliver(world.inbox.smtp, message.as_bytes(), address).code == 250
    ((copy,),) = world.rows("SELECT raw FROM inbound_raw")
    text = bytes(copy).decode("utf-8")
    assert "Subject: Ré: vielleicht" in text and "Kanskje? Jeg må sjekke." in text
    assert "[image/png, 204 bytes: not kept]" in text and "PNG" not in text


def test_a_long_part_is_cut_without_leaving_part_of_a_token() -> None:
    """The copy keeps a bounded prefix of each part; a token through the cut goes entirely."""
    from calshare.redaction import PART_CHARACTERS

    token = new_token()
    for offset in range(1, 26, 4):
        body = "w " * ((PART_CHARACTERS - offset) // 2) + "x" * ((PART_CHARACTERS - offset) % 2)
        raw = b"Subject: long\r\n\r\n" + f"{body}{token} tail\r\n".encode()
        copy = redact_mail(raw)
        assert b"more characters not kept" in copy
        head = copy.rsplit(b"\n[", 1)[0]
        assert head.endswith((b"w ", "…".encode())), head[-40:]  # cut, or glued and hidden
        assert token[:2].encode() not in head[-30:], head[-40:]


def test_a_huge_mail_is_read_in_part_without_leaving_part_of_a_token() -> None:
    from calshare.redaction import READ_BYTES

    token = new_token()
    for offset in range(0, 40, 5):
        filler = b"a b\r\n" * ((READ_BYTES - offset) // 5)
        raw = b"Subject: huge\r\n\r\n" + filler + token.upper().encode() + b"\r\nend\r\n"
        copy = redact_mail(raw)
        assert b"bytes of the message not read" in copy
        assert not holds(copy, token) and token[:3].upper().encode() not in copy


@given(pad=st.integers(0, 80), quote=st.sampled_from(["", "> ", ">> "]))
def test_a_pasted_base64_body_holding_a_token_is_not_kept(pad: int, quote: str) -> None:
    """A bounce that pastes our mail raw: its base64 lines, quoted, the short last one too."""
    token = new_token()
    encoded = base64.encodebytes(f"{'x' * pad} {BASE_URL}/i/{token}".encode()).decode()
    body = "".join(f"{quote}{line}\r\n" for line in encoded.splitlines())
    copy = redact_mail(f"Subject: bounce\r\n\r\nThe copy:\r\n\r\n{body}bye now\r\n".encode())
    assert b"holding a token-shaped string: not kept" in copy and b"bye now" in copy
    assert not holds(copy, token)
