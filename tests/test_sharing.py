"""Sharing semantics: share, share again, change the level, unshare, list; tokens and the mail.

Accepting an invitation arrives with a later issue, so tests that need an accepted
share set ``status = 'accepted'`` with SQL, as the inbox will.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import re
import sqlite3
from collections.abc import Callable, Iterator
from datetime import timedelta
from email import message_from_bytes
from email import policy as email_policy
from email.message import EmailMessage
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from calshare import sharing
from calshare.clock import FixedClock
from calshare.config import Settings, load_settings
from calshare.errors import ShareStateError, UnknownShare
from calshare.levels import Level
from calshare.sharing import ShareAction, change_level, resend
from calshare.store import Store
from calshare.tokens import TOKEN_LENGTH, log_id, new_token, parse_token, token_hash
from mailer.compose import message_id_for
from tests.conftest import NOW, CliResult

# The outbox with each mail's bytes (kept apart, in outbox_bodies, until sent).
WITH_BODIES = "outbox LEFT JOIN outbox_bodies ON outbox_bodies.outbox_id = outbox.id"

Cli = Callable[..., CliResult]

OWNER = "ann@example.org"
BOB = "bob@example.org"
TOKEN_IN = re.compile(r"(?:share|accept|decline)\+([a-z2-7]{26})@")


@pytest.fixture
def project(cli: Cli, db_path: Path) -> Path:
    added = cli("calendar", "add", "project", "--owner", f"Ann Owner <{OWNER}>")
    assert added.code == 0, added.err
    return db_path


@pytest.fixture
def conn(project: Path) -> Iterator[sqlite3.Connection]:
    """A second connection to the test database, for looking and (rarely) for writing."""
    connection = sqlite3.connect(project, isolation_level=None)
    connection.row_factory = sqlite3.Row
    yield connection
    connection.close()


def rows(conn: sqlite3.Connection, sql: str, *params: Any) -> list[sqlite3.Row]:
    return conn.execute(sql, params).fetchall()


def counts(conn: sqlite3.Connection) -> dict[str, int]:
    return {
        table: conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
        for table in ("shares", "invitations", "outbox", "audit")
    }


def parse(raw: bytes) -> EmailMessage:
    message = message_from_bytes(raw, policy=email_policy.default)
    assert isinstance(message, EmailMessage)
    return message


def parts(message: EmailMessage) -> tuple[str, str]:
    text, html = message.get_body(("plain",)), message.get_body(("html",))
    assert text is not None and html is not None
    return text.get_content(), html.get_content()


def queued(conn: sqlite3.Connection, kind: str | None = None) -> list[sqlite3.Row]:
    where = "status = 'queued'" + (" AND kind = ?" if kind else "")
    return rows(
        conn,
        f"SELECT * FROM {WITH_BODIES} WHERE {where} ORDER BY id",
        *([kind] if kind else []),
    )


def token_of(raw: bytes) -> str:
    found = set(TOKEN_IN.findall(raw.decode("ascii")))
    assert len(found) == 1, found
    return found.pop()


def share(cli: Cli, *args: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    result = cli("share", "project", *args, "--json", env=env)
    assert result.code == 0, result.err
    outcome: dict[str, Any] = result.json()
    return outcome


def accept_with_sql(conn: sqlite3.Connection, invitee: str = BOB) -> None:
    """Accepting arrives with a later issue (the inbox); until then, do what it will do."""
    conn.execute(
        "UPDATE shares SET status = 'accepted', answered_at = ? WHERE invitee = ?",
        ["2026-11-27T10:00:00Z", invitee],
    )
    conn.execute(
        "UPDATE invitations SET used_at = ? WHERE revoked_at IS NULL AND share_id ="
        " (SELECT id FROM shares WHERE invitee = ?)",
        ["2026-11-27T10:00:00Z", invitee],
    )


def assert_one_line_error(result: CliResult, *fragments: str) -> None:
    assert result.code == 2, (result.out, result.err)
    assert result.out == ""
    lines = result.err.splitlines()
    assert len(lines) == 1, result.err
    assert lines[0].startswith("calshare: error: ")
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


# --- share


def test_share_stores_one_share_one_invitation_one_mail_and_an_audit_row(
    cli: Cli, conn: sqlite3.Connection
) -> None:
    outcome = share(cli, "Bob Builder <Bob@Example.org>", "--level", "details")
    assert outcome["action"] == "invited"
    assert outcome["message_id"].endswith("@share.example.org>")
    assert counts(conn) == {"shares": 1, "invitations": 1, "outbox": 1, "audit": 1}

    (stored,) = rows(conn, "SELECT * FROM shares")
    assert (stored["invitee"], stored["invitee_name"], stored["level"], stored["status"]) == (
        BOB,
        "Bob Builder",
        "details",
        "invited",
    )
    assert stored["invited_at"] == "2026-11-26T09:00:00Z"
    assert stored["expires_at"] == "2026-12-10T09:00:00Z"  # invitation_days = 14

    (invitation,) = rows(conn, "SELECT * FROM invitations")
    assert invitation["share_id"] == stored["id"] and invitation["revoked_at"] is None
    assert invitation["expires_at"] == stored["expires_at"]

    (mail,) = queued(conn)
    assert mail["kind"] == "invitation" and mail["share_id"] == stored["id"]
    assert mail["message_id"] == outcome["message_id"]
    assert mail["recipients"] == f'["{BOB}"]'

    (audit,) = rows(conn, "SELECT * FROM audit")
    assert (audit["action"], audit["subject"]) == ("invited", BOB)

    token = token_of(mail["raw"])
    assert invitation["token_hash"] == token_hash(token)


def test_the_token_is_only_where_the_invitee_answers(cli: Cli, conn: sqlite3.Connection) -> None:
    share(cli, BOB, "--level", "titles")
    (mail,) = queued(conn)
    token = token_of(mail["raw"])
    message = parse(mail["raw"])
    assert message["Reply-To"].addresses[0].addr_spec == f"share+{token}@share.example.org"
    for header in ("From", "To", "Message-ID", "Return-Path", "Sender"):
        assert token not in str(message.get(header, ""))
    assert token not in mail["envelope_from"]
    # the bounce address holds a key whose one-way hash is the Message-ID, not the Message-ID
    key = re.fullmatch(r"bounces\+([0-9a-f]{32})@share\.example\.org", mail["envelope_from"])
    assert key is not None
    assert mail["message_id"] == message_id_for(key[1], "share.example.org")
    text, html = parts(message)
    assert f"mailto:accept+{token}@share.example.org?subject=Accept%3A%20" in html
    assert f"mailto:decline+{token}@share.example.org?subject=Decline%3A%20" in html
    # the text part shows the plain addresses (issue 10: no percent-encoded URLs there)
    assert f"\n  accept+{token}@share.example.org\r\n" in text
    assert f"\n  decline+{token}@share.example.org\r\n" in text
    for part in (text, html):
        assert f"http://127.0.0.1:8080/i/{token}" in part
    assert message["Auto-Submitted"] == "auto-generated"
    assert message["X-Auto-Response-Suppress"] == "All"
    assert message.get_content_type() == "multipart/alternative"
    # Outside the queued mail's bytes, nothing in the database holds the raw token.
    conn.execute("DELETE FROM outbox_bodies")
    assert not any(token in line for line in conn.iterdump())


def test_sharing_again_while_invited_makes_a_new_token_and_keeps_one_share(
    cli: Cli, conn: sqlite3.Connection
) -> None:
    first = share(cli, BOB, "--level", "titles")
    (first_mail,) = queued(conn)
    first_token = token_of(first_mail["raw"])

    second = share(cli, BOB, "--level", "details")
    assert second["action"] == "invited" and second["level"] == "details"
    assert second["message_id"] != first["message_id"]

    assert len(rows(conn, "SELECT * FROM shares")) == 1
    old, new = rows(conn, "SELECT * FROM invitations ORDER BY id")
    assert old["token_hash"] == token_hash(first_token)
    assert old["revoked_at"] == "2026-11-26T09:00:00Z"
    assert new["revoked_at"] is None and new["level"] == "details"

    cancelled, sending = rows(
        conn,
        f"SELECT * FROM {WITH_BODIES} ORDER BY id",
    )
    assert (cancelled["status"], cancelled["raw"]) == ("cancelled", None)
    assert sending["status"] == "queued" and sending["message_id"] == second["message_id"]
    second_token = token_of(sending["raw"])
    assert second_token != first_token
    assert new["token_hash"] == token_hash(second_token)
    assert [row["action"] for row in rows(conn, "SELECT action FROM audit ORDER BY id")] == [
        "invited",
        "invited",
    ]


def test_sharing_again_without_a_name_keeps_the_name(cli: Cli, conn: sqlite3.Connection) -> None:
    """The owner typed Bob's name once; a later bare address must not forget it."""
    share(cli, "Bob Builder <bob@example.org>", "--level", "titles")
    again = share(cli, BOB, "--level", "details")
    assert again["name"] == "Bob Builder"
    message = parse(queued(conn)[0]["raw"])
    assert message["To"].addresses[0].display_name == "Bob Builder"
    # a new name, though, replaces the old one
    renamed = share(cli, "Robert Builder <bob@example.org>", "--level", "details")
    assert renamed["name"] == "Robert Builder"


def test_sharing_again_at_the_same_level_once_accepted_sends_nothing(
    cli: Cli, conn: sqlite3.Connection
) -> None:
    share(cli, BOB, "--level", "titles")
    accept_with_sql(conn)
    before = counts(conn)
    again = share(cli, BOB, "--level", "titles")
    assert (again["action"], again["message_id"], again["status"]) == (
        "unchanged",
        None,
        "accepted",
    )
    assert counts(conn) == before
    plain = cli("share", "project", BOB, "--level", "titles")
    assert plain.code == 0 and "nothing sent" in plain.out


def test_another_level_once_accepted_updates_it_and_queues_a_notice(
    cli: Cli, conn: sqlite3.Connection
) -> None:
    share(cli, BOB, "--level", "titles")
    accept_with_sql(conn)
    conn.execute("UPDATE outbox SET status = 'sent'")  # the invitation went out
    conn.execute("DELETE FROM outbox_bodies")
    changed = share(cli, BOB, "--level", "free-busy")
    assert (changed["action"], changed["level"], changed["status"]) == (
        "level_changed",
        "free-busy",
        "accepted",
    )
    assert len(rows(conn, "SELECT * FROM shares")) == 1
    assert len(rows(conn, "SELECT * FROM invitations")) == 1  # no new token
    (notice,) = queued(conn)
    assert notice["kind"] == "level_changed" and notice["message_id"] == changed["message_id"]
    message = parse(notice["raw"])
    assert "Reply-To" not in message
    assert message["Subject"] == "Ann Owner changed your access to the calendar “project”"
    text, html = parts(message)
    assert "can view when I'm busy" in text and "can view when I&#39;m busy" in html
    assert not TOKEN_IN.search(notice["raw"].decode("ascii"))
    assert rows(conn, "SELECT action, detail FROM audit ORDER BY id")[-1][:] == (
        "level_changed",
        "titles -> free-busy",
    )


def test_a_level_change_still_obeys_policy(cli: Cli, conn: sqlite3.Connection) -> None:
    share(cli, "carol@other.example", "--level", "titles")
    accept_with_sql(conn, "carol@other.example")
    before = counts(conn)
    result = cli("share", "project", "carol@other.example", "--level", "details")
    assert_one_line_error(
        result, "This calendar can't be shared:", "share at titles (--level titles)"
    )
    assert counts(conn) == before


# --- unshare


def test_unshare_revokes_tokens_and_queues_a_notice(
    cli: Cli, conn: sqlite3.Connection, tmp_path: Path
) -> None:
    share(cli, "Bob Builder <bob@example.org>", "--level", "titles")
    # The first invitation goes out (to a Maildir), so Bob knows of the share...
    maildir = {"CALSHARE_OUTBOX_MAILDIR": str(tmp_path / "maildir")}
    assert cli("outbox", "flush", env=maildir).code == 0
    share(cli, "Bob Builder <bob@example.org>", "--level", "details")  # two tokens, one revoked
    result = cli("unshare", "project", "BOB@example.org", "--json")
    assert result.code == 0, result.err
    shown = result.json()
    assert (shown["email"], shown["status"], shown["revoked_at"]) == (
        BOB,
        "revoked",
        "2026-11-26T09:00:00Z",
    )
    assert all(row["revoked_at"] for row in rows(conn, "SELECT * FROM invitations"))
    (notice,) = queued(conn)
    assert notice["kind"] == "unshared"
    message = parse(notice["raw"])
    assert message["To"].addresses[0].display_name == "Bob Builder"
    assert "stopped sharing" in message["Subject"]
    assert not TOKEN_IN.search(notice["raw"].decode("ascii"))
    # ...and the invitation that was still queued will never be sent
    assert [
        row["status"] for row in rows(conn, "SELECT * FROM outbox WHERE kind = 'invitation'")
    ] == ["sent", "cancelled"]
    assert rows(conn, "SELECT action FROM audit ORDER BY id")[-1][0] == "unshared"
    assert cli("shares", "--json").json()[0]["status"] == "revoked"


def test_unshare_sends_nothing_when_notices_are_off(cli: Cli, conn: sqlite3.Connection) -> None:
    share(cli, BOB, "--level", "titles")
    accept_with_sql(conn)
    off = {"CALSHARE_MAIL_NOTIFY_UNSHARE": "false"}
    assert cli("unshare", "project", BOB, env=off).code == 0
    assert queued(conn, "unshared") == []
    assert rows(conn, "SELECT status FROM shares")[0][0] == "revoked"


def test_unshare_then_share_again_invites_afresh(cli: Cli, conn: sqlite3.Connection) -> None:
    share(cli, BOB, "--level", "titles")
    assert cli("unshare", "project", BOB).code == 0
    again = share(cli, BOB, "--level", "titles")
    assert (again["action"], again["status"], again["revoked_at"]) == ("invited", "invited", None)
    assert len(rows(conn, "SELECT * FROM shares")) == 1
    live = rows(conn, "SELECT * FROM invitations WHERE revoked_at IS NULL")
    assert len(live) == 1


@pytest.mark.parametrize(
    ("setup", "invitee", "fragments"),
    [
        ([], BOB, ["'project' is not shared with bob@example.org"]),
        ([["share", "project", BOB, "--level", "titles"]], "eve@example.org", ["not shared"]),
        (
            [["share", "project", BOB, "--level", "titles"], ["unshare", "project", BOB]],
            BOB,
            ["not shared with bob@example.org"],
        ),
        ([], "not-an-address", ["not an email address"]),
    ],
    ids=["never-shared", "someone-else", "already-revoked", "bad-address"],
)
def test_unshare_of_something_not_shared_is_one_line_exit_2(
    cli: Cli, conn: sqlite3.Connection, setup: list[list[str]], invitee: str, fragments: list[str]
) -> None:
    for args in setup:
        assert cli(*args).code == 0
    before = list(conn.iterdump())
    assert_one_line_error(cli("unshare", "project", invitee), *fragments)
    assert list(conn.iterdump()) == before


def test_unshare_of_an_unknown_calendar(cli: Cli, project: Path) -> None:
    assert_one_line_error(cli("unshare", "nope", BOB), "No calendar named 'nope'")


# --- shares


def test_shares_json_fields_and_statuses(
    cli: Cli, conn: sqlite3.Connection, clock: FixedClock
) -> None:
    assert cli("shares", "--json").json() == []
    assert cli("shares").out.strip() == "Not shared with anyone."
    share(cli, "Bob Builder <bob@example.org>", "--level", "details", "--lang", "nb")
    share(cli, "carol@other.example", "--level", "titles")
    share(cli, "dave@example.org", "--level", "free-busy")
    accept_with_sql(conn, "carol@other.example")
    assert cli("unshare", "project", "dave@example.org").code == 0

    listed = cli("shares", "project", "--json").json()
    assert [item["email"] for item in listed] == [BOB, "carol@other.example", "dave@example.org"]
    assert listed[0] == {
        "calendar": "project",
        "email": BOB,
        "name": "Bob Builder",
        "level": "details",
        "status": "invited",
        "lang": "nb",
        "invited_at": "2026-11-26T09:00:00Z",
        "expires_at": "2026-12-10T09:00:00Z",
        "answered_at": None,
        "revoked_at": None,
    }
    assert [item["status"] for item in listed] == ["invited", "accepted", "revoked"]
    assert listed[1]["answered_at"] == "2026-11-27T10:00:00Z"
    assert listed[2]["revoked_at"] == "2026-11-26T09:00:00Z"
    assert cli("shares", "--json").json() == listed  # all calendars: only this one

    table = cli("shares").out
    assert "carol@other.example" in table and "accepted" in table and "revoked" in table

    # The clock passes the invitation's end: the unanswered one shows as expired, once.
    clock.advance(timedelta(days=14) - timedelta(seconds=1))
    assert [item["status"] for item in cli("shares", "--json").json()] == [
        "invited",
        "accepted",
        "revoked",
    ]
    clock.advance(timedelta(seconds=1))
    statuses = [item["status"] for item in cli("shares", "--json").json()]
    assert statuses == ["expired", "accepted", "revoked"]
    assert cli("shares").out.count("expired") == 1
    # Stored as invited; "expired" is how it is shown.
    assert rows(conn, "SELECT status FROM shares WHERE invitee = ?", BOB)[0][0] == "invited"

    # An expired invitation can be renewed by sharing again.
    renewed = share(cli, BOB, "--level", "details")
    assert (renewed["action"], renewed["status"]) == ("invited", "invited")
    assert renewed["expires_at"] == "2026-12-24T09:00:00Z"


def test_shares_of_an_unknown_calendar(cli: Cli, project: Path) -> None:
    assert_one_line_error(cli("shares", "nope"), "No calendar named 'nope'")


def test_shares_undeliverable_is_shown(cli: Cli, conn: sqlite3.Connection) -> None:
    share(cli, BOB, "--level", "titles")
    conn.execute("UPDATE shares SET status = 'undeliverable'")  # what a 5xx from the relay does
    assert cli("shares", "--json").json()[0]["status"] == "undeliverable"


# --- the invitation mail: language, the owner's message


def test_lang_nb_gives_a_norwegian_mail_with_a_babel_date(
    cli: Cli, conn: sqlite3.Connection
) -> None:
    share(cli, BOB, "--level", "titles", "--lang", "nb")
    (mail,) = queued(conn)
    message = parse(mail["raw"])
    assert "har delt kalenderen" in message["Subject"]
    assert message["Subject"] == "Ann Owner har delt kalenderen «project» med deg"
    assert mail["subject"] == message["Subject"]
    text, html = parts(message)
    for part in (text, html):
        assert "10. desember 2026" in part
        assert "kan se titler og steder" in part
        assert "Godta" in part or "godta" in part
    assert '<html lang="nb">' in html
    assert rows(conn, "SELECT lang FROM shares")[0][0] == "nb"


def test_the_default_language_comes_from_config(cli: Cli, conn: sqlite3.Connection) -> None:
    share(cli, BOB, "--level", "titles", env={"CALSHARE_MAIL_LANG": "nb"})
    share(cli, "carol@other.example", "--level", "titles")
    nb, en = (parse(row["raw"]) for row in queued(conn))
    assert "har delt kalenderen" in nb["Subject"]
    assert en["Subject"] == "Ann Owner shared the calendar “project” with you"
    assert "December 10, 2026" in parts(en)[0]


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def test_the_owners_message_is_in_both_parts_and_escaped_in_html(
    cli: Cli, conn: sqlite3.Connection
) -> None:
    note = 'Hi Bob & co <script>alert(1)</script>\nSee you "soon" — Ann\'s team'
    share(cli, BOB, "--level", "titles", "--message", note)
    (mail,) = queued(conn)
    text, html = parts(parse(mail["raw"]))
    assert "> Hi Bob & co <script>alert(1)</script>" in text
    assert '> See you "soon" — Ann\'s team' in text
    assert "Hi Bob &amp; co &lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<script" not in html.lower()
    parser = _Tags()
    parser.feed(html)
    assert "script" not in parser.tags
    assert "Hi Bob & co <script>alert(1)</script>" in "".join(parser.text)
    assert rows(conn, "SELECT message FROM shares")[0][0] == note


def test_no_message_means_no_quote(cli: Cli, conn: sqlite3.Connection) -> None:
    share(cli, BOB, "--level", "titles")
    text, _ = parts(parse(queued(conn)[0]["raw"]))
    assert "wrote:" not in text


@pytest.mark.parametrize("length", [2001, 10_000])
def test_a_message_longer_than_2000_characters_is_refused(
    cli: Cli, conn: sqlite3.Connection, length: int
) -> None:
    before = list(conn.iterdump())
    result = cli("share", "project", BOB, "--level", "titles", "--message", "x" * length)
    assert_one_line_error(result, "longer than 2,000 characters")
    assert list(conn.iterdump()) == before


def test_a_message_of_exactly_2000_characters_is_fine(cli: Cli, conn: sqlite3.Connection) -> None:
    share(cli, BOB, "--level", "titles", "--message", "é" * 2000)
    text, html = parts(parse(queued(conn)[0]["raw"]))
    assert f"> {'é' * 2000}" in text.splitlines()
    assert "é" * 2000 in html


# --- tokens


def test_new_token_is_26_lowercase_base32_characters_of_128_bits() -> None:
    token = new_token()
    assert len(token) == TOKEN_LENGTH == 26
    assert re.fullmatch(r"[a-z2-7]{26}", token)
    assert len(base64.b32decode(token.upper() + "======")) == 16
    assert len({new_token() for _ in range(200)}) == 200


@pytest.mark.parametrize("raw", [bytes(16), b"\xff" * 16, bytes(range(16)), bytes(range(240, 256))])
def test_new_token_decodes_back_to_its_bytes(raw: bytes) -> None:
    token = new_token(lambda n: raw[:n])
    assert len(token) == 26 and re.fullmatch(r"[a-z2-7]{26}", token)
    assert base64.b32decode(token.upper() + "======") == raw


def test_new_token_refuses_a_short_random_source() -> None:
    with pytest.raises(ValueError, match="15 bytes"):
        new_token(lambda n: bytes(n - 1))


def test_parse_token() -> None:
    token = new_token(lambda n: bytes(range(n)))
    assert parse_token(token) == token
    assert parse_token(token.upper()) == token
    assert parse_token(f"  {token.title()}\r\n") == token
    for bad in (
        token[:-1],
        token + "a",
        "",
        token[:-1] + "1",
        token[:-1] + "8",
        token[:-1] + "0",
        token[:-1] + "=",
        token[:-1] + "é",
        token[:13] + " " + token[14:],
        token[:-1] + "\u0430",  # Cyrillic a
    ):
        assert parse_token(bad) is None, bad


def test_token_hash_is_stable() -> None:
    token = "abcdefghijklmnopqrstuvwxyz"
    expected = hashlib.sha256(token.encode("ascii")).hexdigest()
    assert token_hash(token) == expected == token_hash(token)
    assert token_hash(token.upper()) == expected  # mail systems may change the case
    assert token_hash("a" * 26) != expected
    assert re.fullmatch(r"[0-9a-f]{64}", expected)
    assert log_id(token) == expected[:12]


def test_log_lines_never_contain_the_token(
    cli: Cli, conn: sqlite3.Connection, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    share(cli, BOB, "--level", "titles")
    share(cli, BOB, "--level", "details")  # re-invite: the old token is revoked
    tokens = {token_of(row["raw"]) for row in queued(conn)}
    assert cli("unshare", "project", BOB).code == 0
    logged = [record.getMessage() for record in caplog.records]
    sharing_lines = [
        record.getMessage() for record in caplog.records if record.name == "calshare.sharing"
    ]
    assert sharing_lines, logged  # the test sees the lines it checks
    for token in tokens:
        assert any(log_id(token) in line for line in sharing_lines)
        assert not any(token in line for line in logged)
        assert not any(token.upper() in line.upper() for line in logged)


def test_expiry_uses_invitation_days(cli: Cli, conn: sqlite3.Connection) -> None:
    outcome = share(cli, BOB, "--level", "titles", env={"CALSHARE_POLICY_INVITATION_DAYS": "1"})
    assert outcome["expires_at"] == "2026-11-27T09:00:00Z"
    assert rows(conn, "SELECT expires_at FROM invitations")[0][0] == "2026-11-27T09:00:00Z"
    assert NOW.isoformat().startswith("2026-11-26")


# --- names typed at the command line never break the mail (see test_mail_headers.py)

X60 = "x" * 60
TYPED_NAMES = {
    "long-invitee-name": ("Ann Owner", "b" * 2000 + " <bob@example.org>"),
    "long-owner-name": ("a" * 2000, BOB),
    "line-separator-in-owner-name": ("Ann\u2028Owner", BOB),
    "next-line-in-owner-name": ("Ann\x85Owner", BOB),
    "line-separator-in-invitee-name": ("Ann Owner", "Bob\u2028Builder <bob@example.org>"),
    "address-in-owner-name": (f'"Mallory, via <security@example.org> {X60}"', BOB),
    "address-in-invitee-name": ("Ann Owner", f'"Bob, <boss@example.org> {X60}" <bob@example.org>'),
    "plain": ("Åse Ødegård", "Bjørn Ærø <bob@example.org>"),
}


@pytest.mark.parametrize(
    ("owner_name", "invitee"), list(TYPED_NAMES.values()), ids=list(TYPED_NAMES)
)
def test_names_typed_at_the_cli_never_break_the_mail(
    cli: Cli, db_path: Path, owner_name: str, invitee: str
) -> None:
    """Either a refusal on one line, or a mail with exactly our From and To: never a traceback."""
    added = cli("calendar", "add", "project", "--owner", f"{owner_name} <{OWNER}>")
    if added.code == 2:  # refused up front, before any mail can be made: fine too
        assert_one_line_error(added)
        return
    assert added.code == 0, added.err
    try:
        result = cli("share", "project", invitee, "--level", "titles")
    except Exception as exc:  # noqa: BLE001 - any escape is the failure we test for
        pytest.fail(f"calshare let {type(exc).__name__} escape (a traceback): {exc!r}"[:500])
    assert "Traceback" not in result.err
    if result.code == 2:
        assert_one_line_error(result)
        return
    assert result.code == 0, result.err
    connection = sqlite3.connect(db_path)
    try:
        (raw,) = connection.execute("SELECT raw FROM outbox_bodies").fetchone()
    finally:
        connection.close()
    head = raw.partition(b"\r\n\r\n")[0]
    assert all(len(line) <= 998 for line in head.split(b"\r\n"))
    message = parse(raw)
    assert [a.addr_spec for a in message["From"].addresses] == ["calendar@share.example.org"]
    assert [a.addr_spec for a in message["To"].addresses] == [BOB]


# --- the People page's moves: change_level and resend (services the console calls)


def _service(store: Store, clock: FixedClock) -> Settings:
    from calshare.calendars import add_calendar

    add_calendar(store, clock, "project", f"Ann Owner <{OWNER}>", None, "UTC")
    return load_settings(None, env={})


def _invitation_tokens(store: Store) -> list[tuple[str, str | None]]:
    """(level, revoked_at) of every invitation, oldest first."""
    found = store.db.execute("SELECT level, revoked_at FROM invitations ORDER BY id")
    return [(str(level), revoked) for level, revoked in found]


def test_resend_keeps_level_language_and_message_and_kills_the_old_token(
    store: Store, clock: FixedClock
) -> None:
    settings = _service(store, clock)
    sharing.share(store, settings, clock, "project", BOB, Level.DETAILS, lang="nb", message="Hei!")
    clock.advance(timedelta(days=20))  # expired
    again = resend(store, settings, clock, "project", BOB, owner=OWNER)
    assert again.action == ShareAction.INVITED and again.share.status == "invited"
    assert again.share.level == Level.DETAILS and again.share.lang == "nb"
    (message,) = store.db.execute("SELECT message FROM shares").fetchone()
    assert message == "Hei!"
    assert [revoked is not None for _, revoked in _invitation_tokens(store)] == [True, False]


def test_change_level_of_an_open_invitation_invites_again_at_the_new_level(
    store: Store, clock: FixedClock
) -> None:
    settings = _service(store, clock)
    sharing.share(store, settings, clock, "project", BOB, Level.TITLES, message="For the launch")
    changed = change_level(store, settings, clock, "project", BOB, Level.FREE_BUSY, owner=OWNER)
    assert changed.action == ShareAction.INVITED
    assert _invitation_tokens(store)[-1][0] == "free-busy"
    assert [revoked is not None for _, revoked in _invitation_tokens(store)] == [True, False]
    (message,) = store.db.execute("SELECT message FROM shares").fetchone()
    assert message == "For the launch"
    same = change_level(store, settings, clock, "project", BOB, Level.FREE_BUSY, owner=OWNER)
    assert same.action == ShareAction.UNCHANGED and len(_invitation_tokens(store)) == 2


@pytest.mark.parametrize(
    ("status", "move"),
    [("declined", "change"), ("revoked", "change"), ("accepted", "resend"), ("revoked", "resend")],
)
def test_moves_a_state_does_not_allow_are_refused_and_change_nothing(
    store: Store, clock: FixedClock, status: str, move: str
) -> None:
    settings = _service(store, clock)
    sharing.share(store, settings, clock, "project", BOB, Level.TITLES)
    with store.write() as db:  # the state an answer or Remove leaves (lifecycle's tests)
        db.execute("UPDATE shares SET status = ?", [status])
    before = counts_of(store)
    with pytest.raises(ShareStateError, match=f"{BOB} is {status}"):
        if move == "change":
            change_level(store, settings, clock, "project", BOB, Level.DETAILS, owner=OWNER)
        else:
            resend(store, settings, clock, "project", BOB, owner=OWNER)
    assert counts_of(store) == before
    with pytest.raises(UnknownShare):
        resend(store, settings, clock, "project", "carl@example.org", owner=OWNER)


def counts_of(store: Store) -> list[int]:
    return [
        store.db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
        for table in ("shares", "invitations", "outbox", "audit")
    ]
