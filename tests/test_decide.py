"""``answers.decide`` as a table: every way an answer can go, from values, without a socket.

Each row is one answer (a mail for one recipient, or a click on the answer page), the
facts the store would give (its invitation, a bounced mail of ours, whether we wrote to
this sender today, whether the invitee was asked to confirm today) and what must come
of it: the action, the outcome the inbound log keeps, the share's new state, the mails
queued, the mails made moot, and whether a log row is written. The few tests after the
table check the details of the mails, the log row, and ``observe``/``apply`` on a real
SQLite store.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from calshare import answers
from calshare.answers import (
    Action,
    Answered,
    Decision,
    Facts,
    Fresh,
    Invitation,
    Outcome,
    Reply,
    SentMail,
    WebAnswer,
    decide,
)
from calshare.calendars import add_calendar
from calshare.clock import FixedClock
from calshare.config import Settings, load_settings
from calshare.errors import UsageError
from calshare.levels import Level
from calshare.owner_notices import Parties
from calshare.sharing import share
from calshare.store import Store
from calshare.tokens import new_token, token_hash
from inbox.classify import (
    WEAK_BOUNCE,
    Inbound,
    Verdict,
    VerdictKind,
)

CONFIRM_ASKED = Outcome.CONFIRM_ASKED
ACCEPT, DECLINE, UNKNOWN = VerdictKind.ACCEPT, VerdictKind.DECLINE, VerdictKind.UNKNOWN
AUTO_REPLY, BOUNCE = VerdictKind.AUTO_REPLY, VerdictKind.BOUNCE
NOW = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
TOKEN = "a" * 26
KEY = "0123456789abcdef0123456789abcdef"  # a bounces+<key> address's key
INVITEE = "bob@example.org"
OWNER = "ann@example.org"
STRANGER = "mallory@example.net"
FRESH = Fresh(feed_secret="f" * 26, keys=("k1" * 16, "k2" * 16))
OPEN = Invitation(
    id=7,
    share_id=3,
    used_at=None,
    revoked_at=None,
    expires_at="2026-12-10T09:00:00Z",
    level="details",
    status="invited",
    invitee=INVITEE,
    invitee_name="Bob Invitee",
    lang="en",
    calendar="project",
    owner=OWNER,
    owner_name="Ann Owner",
    calendar_id=1,
)
EXPIRED = OPEN._replace(expires_at="2026-11-26T08:59:59Z")
WITHDRAWN = OPEN._replace(revoked_at="2026-11-20T10:00:00Z", status="revoked")
UNDELIVERABLE = OPEN._replace(revoked_at="2026-11-20T10:00:00Z", status="undeliverable")
ACCEPTED = OPEN._replace(used_at="2026-11-25T10:00:00Z", status="accepted")
DECLINED = OPEN._replace(used_at="2026-11-25T10:00:00Z", status="declined")
# an invitation superseded by a newer one for the same share: used, share still invited
SUPERSEDED = OPEN._replace(used_at="2026-11-25T10:00:00Z")
INVITATION_MAIL = SentMail("invitation", 3, frozenset({INVITEE}))
MOOT = ("confirm", "answer_help")
PARTIES = Parties(OWNER, "Ann Demo", INVITEE, "Bob", "project", 1)


def mail(
    kind: str,
    *,
    token: str | None = TOKEN,
    sender: str | None = INVITEE,
    form: str | None = "share",
    authenticated: bool = True,
    mail_from: str = INVITEE,
    reason: str = "",
    bounce_key: str | None = None,
    reported: tuple[str, ...] = (),
    weak: bool = False,
) -> Inbound:
    """One mail for one recipient, as the inbox hands it to ``record``."""
    local = "bounces+" + (bounce_key or "x") if form == "bounces" else f"{form}+{token}"
    verdict = Verdict(
        kind=kind,
        reason=reason or f"a {kind}",
        token=token,
        form=form,
        bounce_key=bounce_key,
        sender=sender,
        message_id="<m1@example.org>",
        reported=reported,
        weak=weak,
    )
    recipient = f"{local}@calshare.test"
    raw = f"To: <{recipient}>\r\nSubject: x\r\n\r\nyes\r\n".encode()
    return Inbound(raw, mail_from, recipient, verdict, authenticated)


def web(answer: str, by: str = INVITEE) -> WebAnswer:
    return WebAnswer(TOKEN, answer, by, "web", "<web-1@calshare.test>")


def bounce(**given: object) -> Inbound:
    """A delivery report: from the null sender, with no sender address, unless told."""
    given = {"mail_from": "<>", "sender": None, "reason": "a delivery status report", **given}
    return mail(BOUNCE, **given)  # type: ignore[arg-type]


TO_KEY = {"form": "bounces", "bounce_key": KEY, "token": None}
# a bounce known by its subject alone, as the classifier says it: a field, and its words
WEAK = {"weak": True, "reason": f"{WEAK_BOUNCE} 'Returned mail'"}


@dataclass(frozen=True)
class Row:
    given: Inbound | WebAnswer
    facts: Facts
    action: Action
    outcome: str
    share_id: int | None = 3
    answered: Answered | None = None
    notices: tuple[tuple[str, str], ...] = ()  # (outbox kind, to)
    cancel: tuple[str, ...] = ()
    undeliverable: bool = False
    owner_told: bool = False  # an owner notice, queued if the share does become undeliverable
    logged: bool = True


def facts(invitation: Invitation | None = OPEN, **given: object) -> Facts:
    return Facts(invitation=invitation, **given)  # type: ignore[arg-type]


GRANTED = Answered(3, 7, "accepted", FRESH.feed_secret)
REFUSED = Answered(3, 7, "declined")
WELCOMED = (("welcome", INVITEE), ("owner_accepted", OWNER))
TOLD = (("owner_declined", OWNER),)
# the first time an invitation's answer is held, its owner hears of it too
CONFIRM = (("confirm", INVITEE), ("owner_held", OWNER))
HELD = "held: not from the invitee"
NO_AUTH = "not counted: Authentication-Results did not pass"

ROWS = {
    # answers from the invitee
    "accept from the invitee": Row(
        mail(ACCEPT), facts(), Action.GRANT, "accepted", 3, GRANTED, WELCOMED, MOOT
    ),
    "decline from the invitee": Row(
        mail(DECLINE), facts(), Action.DECLINE, "declined", 3, REFUSED, TOLD, MOOT
    ),
    "accept to the accept+ address": Row(
        mail(ACCEPT, form="accept"), facts(), Action.GRANT, "accepted", 3, GRANTED, WELCOMED, MOOT
    ),
    "accept although we replied today": Row(
        mail(ACCEPT),
        facts(replied_today=True),
        Action.GRANT,
        "accepted",
        3,
        GRANTED,
        WELCOMED,
        MOOT,
    ),
    "unreadable: how to answer": Row(
        mail(UNKNOWN),
        facts(),
        Action.EXPLAIN,
        "replied: how to answer",
        notices=(("answer_help", INVITEE),),
    ),
    "unreadable, replied today: no second reply": Row(
        mail(UNKNOWN), facts(replied_today=True), Action.IGNORE, "unknown answer"
    ),
    # answers from someone else (a forwarded invitation, a stranger with a valid token)
    "accept from a stranger: held, invitee asked": Row(
        mail(ACCEPT, sender=STRANGER, mail_from=STRANGER),
        facts(),
        Action.HOLD,
        CONFIRM_ASKED,
        notices=CONFIRM,
    ),
    "decline from a stranger: held, invitee asked": Row(
        mail(DECLINE, sender=STRANGER), facts(), Action.HOLD, CONFIRM_ASKED, notices=CONFIRM
    ),
    "forwarded, answered with no From: held, invitee asked": Row(
        mail(ACCEPT, sender=None, mail_from=""),
        facts(),
        Action.HOLD,
        CONFIRM_ASKED,
        notices=CONFIRM,
    ),
    "stranger, invitee asked days ago: asked again, the owner not told twice": Row(
        mail(ACCEPT, sender=STRANGER),
        facts(confirm_asked_ever=True),
        Action.HOLD,
        CONFIRM_ASKED,
        notices=(("confirm", INVITEE),),
    ),
    "stranger, invitee already asked today: one confirm a day": Row(
        mail(ACCEPT, sender=STRANGER),
        facts(confirm_asked_today=True),
        Action.HOLD,
        "held: not from the invitee (the invitee was asked today)",
    ),
    "stranger we replied to today: held, nothing sent": Row(
        mail(ACCEPT, sender=STRANGER), facts(replied_today=True), Action.HOLD, HELD
    ),
    "stranger, unreadable: held, nothing sent": Row(
        mail(UNKNOWN, sender=STRANGER), facts(), Action.HOLD, HELD
    ),
    # closed invitations: the invitee is told why, once a day; nobody else is
    "expired, from the invitee: explained": Row(
        mail(ACCEPT),
        facts(EXPIRED),
        Action.EXPLAIN,
        "replied: invalid token (expired)",
        notices=(("invalid_token", INVITEE),),
    ),
    "withdrawn, from the invitee: explained": Row(
        mail(DECLINE),
        facts(WITHDRAWN),
        Action.EXPLAIN,
        "replied: invalid token (revoked)",
        notices=(("invalid_token", INVITEE),),
    ),
    "undeliverable share, from the invitee: explained as withdrawn": Row(
        mail(ACCEPT),
        facts(UNDELIVERABLE),
        Action.EXPLAIN,
        "replied: invalid token (revoked)",
        notices=(("invalid_token", INVITEE),),
    ),
    "used (accepted), from the invitee: explained": Row(
        mail(ACCEPT),
        facts(ACCEPTED),
        Action.EXPLAIN,
        "replied: invalid token (accepted)",
        notices=(("invalid_token", INVITEE),),
    ),
    "used (declined), from the invitee: explained": Row(
        mail(UNKNOWN),
        facts(DECLINED),
        Action.EXPLAIN,
        "replied: invalid token (declined)",
        notices=(("invalid_token", INVITEE),),
    ),
    "superseded invitation: explained as withdrawn": Row(
        mail(ACCEPT),
        facts(SUPERSEDED),
        Action.EXPLAIN,
        "replied: invalid token (revoked)",
        notices=(("invalid_token", INVITEE),),
    ),
    "expired, replied today: silent": Row(
        mail(ACCEPT), facts(EXPIRED, replied_today=True), Action.IGNORE, "invalid token (expired)"
    ),
    "withdrawn, from a stranger: silent": Row(
        mail(ACCEPT, sender=STRANGER), facts(WITHDRAWN), Action.IGNORE, "invalid token (revoked)"
    ),
    # require_auth failing: no change and no reply, before anything else is looked at
    "accept, Authentication-Results failed": Row(
        mail(ACCEPT, authenticated=False), facts(), Action.IGNORE, NO_AUTH
    ),
    "stranger, Authentication-Results failed: no confirm": Row(
        mail(ACCEPT, sender=STRANGER, authenticated=False), facts(), Action.IGNORE, NO_AUTH
    ),
    "expired, Authentication-Results failed: no explanation": Row(
        mail(ACCEPT, authenticated=False), facts(EXPIRED), Action.IGNORE, NO_AUTH
    ),
    # what is never an answer
    "auto-reply quoting the token": Row(
        mail(AUTO_REPLY), facts(), Action.IGNORE, "ignored", share_id=None
    ),
    "no token": Row(mail(ACCEPT, token=None), facts(None), Action.IGNORE, "ignored", share_id=None),
    "a token we do not know": Row(
        mail(ACCEPT), facts(None), Action.IGNORE, "unknown token", share_id=None
    ),
    "a duplicate: nothing, not even a log row": Row(
        mail(ACCEPT),
        Facts(duplicate=True),
        Action.IGNORE,
        "duplicate",
        share_id=None,
        logged=False,
    ),
    # bounces to a bounces+<key> address: null sender, a key of ours, naming its recipient
    "bounce: null sender, key of an invitation": Row(
        bounce(**TO_KEY),
        facts(None, bounced_mail=INVITATION_MAIL),
        Action.UNDELIVERABLE,
        "undeliverable",
        undeliverable=True,
    ),
    "bounce with its share known: the owner's notice rides along": Row(
        bounce(**TO_KEY),
        facts(None, bounced_mail=INVITATION_MAIL, bounced_share=PARTIES),
        Action.UNDELIVERABLE,
        "undeliverable",
        undeliverable=True,
        owner_told=True,
    ),
    "bounce naming another recipient, share known: nobody told": Row(
        bounce(**TO_KEY, reported=("eve@example.com",)),
        facts(None, bounced_mail=INVITATION_MAIL, bounced_share=PARTIES),
        Action.IGNORE,
        "bounce recorded (it reports another recipient: no change)",
    ),
    "bounce naming the invitation's recipient": Row(
        bounce(**TO_KEY, reported=(INVITEE,)),
        facts(None, bounced_mail=INVITATION_MAIL),
        Action.UNDELIVERABLE,
        "undeliverable",
        undeliverable=True,
    ),
    "bounce naming another recipient": Row(
        bounce(**TO_KEY, reported=("eve@example.com",)),
        facts(None, bounced_mail=INVITATION_MAIL),
        Action.IGNORE,
        "bounce recorded (it reports another recipient: no change)",
    ),
    "bounce from a real sender to a key": Row(
        bounce(**TO_KEY, mail_from=STRANGER),
        facts(None, bounced_mail=INVITATION_MAIL),
        Action.IGNORE,
        "bounce recorded (not from the null sender: no change)",
    ),
    "bounce to a key of no mail of ours": Row(
        bounce(**TO_KEY),
        facts(None),
        Action.IGNORE,
        "bounce recorded (not a bounce address of ours: no change)",
        share_id=None,
    ),
    "bounce of a welcome mail: recorded": Row(
        bounce(**TO_KEY),
        facts(None, bounced_mail=SentMail("welcome", 3, frozenset({INVITEE}))),
        Action.IGNORE,
        "bounce recorded",
    ),
    "bounce of a mail of no share: recorded": Row(
        bounce(**TO_KEY),
        facts(None, bounced_mail=SentMail("invitation", None, frozenset({INVITEE}))),
        Action.IGNORE,
        "bounce recorded",
        share_id=None,
    ),
    "weak bounce (subject alone) from the null sender, to a key: acts": Row(
        bounce(**TO_KEY, **WEAK),
        facts(None, bounced_mail=INVITATION_MAIL),
        Action.UNDELIVERABLE,
        "undeliverable",
        undeliverable=True,
    ),
    "weak bounce from a real sender: recorded, no change": Row(
        bounce(**WEAK, mail_from=STRANGER, sender=STRANGER),
        facts(),
        Action.IGNORE,
        "bounce recorded (by its subject alone, from a real sender: no change)",
    ),
    "weak bounce from a real sender, no token": Row(
        bounce(**TO_KEY, **WEAK, mail_from=STRANGER),
        facts(None, bounced_mail=INVITATION_MAIL),
        Action.IGNORE,
        "bounce recorded (by its subject alone, from a real sender: no change)",
        share_id=None,
    ),
    # the field decides, not the reason's words (rewording a reason changes nothing)
    "weak bounce from the invitee, its reason reworded: recorded, no change": Row(
        bounce(weak=True, reason="Returned mail, by subject", sender=INVITEE, mail_from=INVITEE),
        facts(),
        Action.IGNORE,
        "bounce recorded (by its subject alone, from a real sender: no change)",
    ),
    "a bounce whose reason reads weak, not marked weak: acts": Row(
        bounce(reason=WEAK["reason"], sender=INVITEE, mail_from=INVITEE),
        facts(),
        Action.UNDELIVERABLE,
        "undeliverable",
        undeliverable=True,
    ),
    # bounces to a token address: only what an answer needs counts
    "bounce to a token address, from the invitee, authenticated": Row(
        bounce(sender=INVITEE, mail_from=INVITEE),
        facts(),
        Action.UNDELIVERABLE,
        "undeliverable",
        undeliverable=True,
    ),
    "bounce to a token address, not authenticated": Row(
        bounce(sender=INVITEE, authenticated=False),
        facts(),
        Action.IGNORE,
        "bounce recorded (Authentication-Results did not pass: no change)",
    ),
    "bounce to a token address, not from the invitee": Row(
        bounce(sender="mailer-daemon@example.org"),
        facts(),
        Action.IGNORE,
        "bounce recorded (not from the invitee: no change)",
    ),
    "bounce to a token address, naming another recipient": Row(
        bounce(sender=INVITEE, reported=("eve@example.com",)),
        facts(),
        Action.IGNORE,
        "bounce recorded (it reports another recipient: no change)",
    ),
    "bounce to an unknown token": Row(
        bounce(), facts(None), Action.IGNORE, "bounce recorded", share_id=None
    ),
    # the answer page: the same rules, but a closed invitation just says so
    "web accept": Row(web(ACCEPT), facts(), Action.GRANT, "accepted", 3, GRANTED, WELCOMED, MOOT),
    "web decline": Row(web(DECLINE), facts(), Action.DECLINE, "declined", 3, REFUSED, TOLD, MOOT),
    "web accept of a used invitation: closed, no mail, no log": Row(
        web(ACCEPT), facts(ACCEPTED), Action.IGNORE, "closed", logged=False
    ),
    "web accept of an expired invitation: closed": Row(
        web(ACCEPT), facts(EXPIRED), Action.IGNORE, "closed", logged=False
    ),
    "web decline of a withdrawn invitation: closed": Row(
        web(DECLINE), facts(WITHDRAWN), Action.IGNORE, "closed", logged=False
    ),
    "web answer to an unknown token": Row(
        web(ACCEPT), facts(None), Action.IGNORE, "unknown token", share_id=None, logged=False
    ),
    "web answer by someone else: held, invitee asked": Row(
        web(ACCEPT, by=STRANGER), facts(), Action.HOLD, CONFIRM_ASKED, notices=CONFIRM
    ),
}


@pytest.fixture(scope="module")
def config() -> Settings:
    return load_settings(None, env={})


@pytest.mark.parametrize("row", list(ROWS.values()), ids=list(ROWS))
def test_decide(row: Row, config: Settings) -> None:
    decision = decide(row.given, row.facts, FRESH, NOW, config)
    assert (decision.action, decision.outcome) == (row.action, row.outcome)
    assert decision.share_id == row.share_id
    assert decision.answered == row.answered
    assert [(n.kind, n.spec.to.address) for n in decision.notices] == list(row.notices)
    assert decision.cancel == row.cancel
    assert (decision.undeliverable is not None) == row.undeliverable
    told = decision.owner_undeliverable
    assert (told is not None) == row.owner_told
    if told is not None:
        assert (told.kind, told.spec.to.address) == ("owner_undeliverable", OWNER)
    assert (decision.log is not None) == row.logged
    assert decision.now == NOW
    if decision.log is not None:
        assert decision.log.token_hash == (token_hash(TOKEN) if _token(row.given) else None)
    # the same values decide the same: nothing else is read
    assert decide(row.given, row.facts, FRESH, NOW, config) == decision


def _token(given: Inbound | WebAnswer) -> str | None:
    return given.token if isinstance(given, WebAnswer) else given.verdict.token


def test_every_action_has_a_row() -> None:
    assert {row.action for row in ROWS.values()} == set(Action)


def test_an_invitation_expires_at_its_second(config: Settings) -> None:
    """Valid up to the second before ``expires_at``; at it, explained as expired."""
    at_expiry = OPEN._replace(expires_at="2026-11-26T09:00:00Z")
    assert decide(mail(ACCEPT), facts(at_expiry), FRESH, NOW, config).action == Action.EXPLAIN
    before = NOW - timedelta(seconds=1)
    assert decide(mail(ACCEPT), facts(at_expiry), FRESH, before, config).action == Action.GRANT


def test_the_welcome_carries_the_fresh_feed_secret(config: Settings) -> None:
    decision = decide(mail(ACCEPT), facts(), FRESH, NOW, config)
    welcome, owner = (notice.spec for notice in decision.notices)
    links = dict(welcome.links)
    https = f"{config.http.base_url}/feeds/{FRESH.feed_secret}.ics"
    assert links["subscribe.link"] == https
    assert links["subscribe.apple"] == "webcal" + https[https.index("://") :]
    # the invitee's address orders them (example.org: no provider, the default order)
    assert [label for label, _ in welcome.links] == [
        "subscribe.apple",
        "subscribe.google",
        "subscribe.outlook",
        "subscribe.microsoft365",
        "subscribe.link",
    ]
    assert (welcome.key, owner.key) == FRESH.keys
    assert welcome.level == Level.DETAILS and welcome.lang == "en"
    assert owner.lang == config.mail.lang
    assert dict(owner.extra) == {"invitee": "Bob Invitee", "invitee_address": INVITEE}


def test_the_confirm_names_the_forwarder_and_the_answer_addresses(config: Settings) -> None:
    notice, owner = decide(mail(DECLINE, sender=STRANGER), facts(), FRESH, NOW, config).notices
    assert (owner.kind, owner.spec.to.address) == ("owner_held", OWNER)
    assert ("answered_by", STRANGER) in owner.spec.extra
    assert dict(notice.spec.extra) == {"forwarder": STRANGER}
    assert notice.spec.reply_to == f"share+{TOKEN}@{config.mail.domain}"
    accept, decline = (url for _, url in notice.spec.links)
    assert accept.startswith(f"mailto:accept+{TOKEN}@") and decline.startswith("mailto:decline+")
    unnamed, told = decide(mail(ACCEPT, sender=None), facts(), FRESH, NOW, config).notices
    assert dict(unnamed.spec.extra) == {"forwarder": "an unknown address"}
    assert dict(told.spec.extra)["answered_by"] == "an unknown address"


def test_explanations_answer_the_mail_they_explain(config: Settings) -> None:
    (why,) = decide(mail(ACCEPT), facts(EXPIRED), FRESH, NOW, config).notices
    assert why.spec.in_reply_to == "<m1@example.org>"
    assert dict(why.spec.extra)["why"] and "Ann Owner" in dict(why.spec.extra)["advice"]
    (help_,) = decide(mail(UNKNOWN), facts(), FRESH, NOW, config).notices
    assert help_.spec.in_reply_to == "<m1@example.org>"
    assert help_.spec.reply_to == f"share+{TOKEN}@{config.mail.domain}"


def test_the_log_row_hides_tokens_and_keys(config: Settings) -> None:
    row = decide(bounce(**TO_KEY), facts(None), FRESH, NOW, config).log
    assert row is not None
    assert row.recipient == "bounces+…@calshare.test" and KEY not in repr(row)
    answered = decide(mail(ACCEPT, reason=f"answer {TOKEN}"), facts(), FRESH, NOW, config).log
    assert answered is not None and TOKEN not in answered.recipient + answered.reason
    assert answered.raw_copy is not None and answered.size == len(mail(ACCEPT).raw)
    assert TOKEN.encode() not in answered.raw_copy
    kept_none = replace(config, inbox=replace(config.inbox, keep_raw_days=0))
    unkept = decide(mail(ACCEPT), facts(), FRESH, NOW, kept_none).log
    assert unkept is not None and unkept.raw_copy is None


def test_a_web_answer_is_logged_as_one(config: Settings) -> None:
    row = decide(web(ACCEPT), facts(), FRESH, NOW, config).log
    assert row is not None
    assert (row.kind, row.reason, row.mail_from, row.sender) == (
        ACCEPT,
        "answered on the web page",
        "",
        INVITEE,
    )
    assert row.recipient == f"accept+…@{config.mail.domain}"
    assert (row.size, row.raw_copy) == (0, None)  # no mail, so no copy of one


# --- observe and apply, on a real SQLite store (still no socket)


@pytest.fixture
def invited(tmp_path: Path, config: Settings) -> Iterator[tuple[Store, str]]:
    """A store with one open invitation for Bob, and its token."""
    store = Store.open(tmp_path / "calshare.db")
    clock = FixedClock(NOW)
    add_calendar(store, clock, "project", f"Ann Owner <{OWNER}>", "UTC", "UTC")
    token = new_token(lambda n: b"\x07" * n)
    share(
        store, config, clock, "project", INVITEE, Level.TITLES, random_bytes=lambda n: b"\x07" * n
    )
    yield store, token
    store.close()


def test_observe_counts_replies_of_the_last_day(
    invited: tuple[Store, str], config: Settings
) -> None:
    store, token = invited
    unclear = mail(UNKNOWN, token=token)
    with store.write() as db:
        assert answers.record(db, config, NOW, unclear) == "replied: how to answer"
        again = replace(unclear, verdict=replace(unclear.verdict, message_id="<m2@example.org>"))
        assert answers.observe(db, config, NOW, unclear) == Facts(duplicate=True)
        seen = answers.observe(db, config, NOW + timedelta(hours=23), again)
        assert seen.invitation is not None and seen.replied_today
        assert not seen.confirm_asked_today
        assert not answers.observe(db, config, NOW + timedelta(hours=25), again).replied_today
        stranger = replace(again.verdict, sender=STRANGER, kind=ACCEPT, message_id="<m3@x>")
        assert not answers.observe(db, config, NOW, replace(again, verdict=stranger)).replied_today
        assert answers.record(db, config, NOW, replace(again, verdict=stranger)) == CONFIRM_ASKED
        assert answers.observe(db, config, NOW, again).confirm_asked_today


def test_answer_invitation_grants_once_then_is_closed(
    invited: tuple[Store, str], config: Settings, tmp_path: Path
) -> None:
    store, token = invited
    with store.write() as db:
        outcome = answers.answer_invitation(db, config, NOW, token, ACCEPT, by=INVITEE)
    assert outcome == "accepted"
    with store.write() as db:
        again = answers.answer_invitation(db, config, NOW, token, DECLINE, by=INVITEE)
        assert again == "closed"
        with pytest.raises(UsageError, match="accept or decline"):
            answers.answer_invitation(db, config, NOW, token, "maybe", by=INVITEE)
    look = sqlite3.connect(tmp_path / "calshare.db")
    status, feed = look.execute("SELECT status, feed_hash FROM shares").fetchone()
    assert status == "accepted" and feed is not None
    assert look.execute("SELECT used_at FROM invitations").fetchone() == ("2026-11-26T09:00:00Z",)
    kinds = [row[0] for row in look.execute("SELECT kind FROM outbox ORDER BY id")]
    assert kinds == ["invitation", "welcome", "owner_accepted"]
    logged = look.execute("SELECT kind, outcome, reason, mail_from FROM inbound").fetchall()
    assert logged == [(ACCEPT, "accepted", "answered on the web page", "")]
    look.close()


def test_apply_writes_an_undeliverable_bounce(
    invited: tuple[Store, str], config: Settings, tmp_path: Path
) -> None:
    store, token = invited
    with store.write() as db:
        invitation = answers.find_invitation(db, token)
        assert invitation is not None and answers.why_invalid(invitation, NOW) is None
        decision = Decision(
            Action.UNDELIVERABLE,
            "undeliverable",
            NOW,
            share_id=invitation.share_id,
            undeliverable="bounced: test",
        )
        answers.apply(db, decision)
        revoked = answers.find_invitation(db, token)
        assert revoked is not None and answers.why_invalid(revoked, NOW) == "revoked"
    look = sqlite3.connect(tmp_path / "calshare.db")
    assert look.execute("SELECT status FROM shares").fetchone() == ("undeliverable",)
    assert look.execute("SELECT COUNT(*) FROM inbound").fetchone() == (0,)  # no log row given
    look.close()


def test_observe_finds_the_mail_a_bounce_key_names(
    invited: tuple[Store, str], config: Settings
) -> None:
    store, token = invited
    with store.write() as db:
        (envelope_from,) = db.execute("SELECT envelope_from FROM outbox").fetchone()
        key = envelope_from.split("+", 1)[1].split("@", 1)[0]
        seen = answers.observe(db, config, NOW, bounce(form="bounces", bounce_key=key, token=None))
        assert seen.bounced_mail == SentMail("invitation", 1, frozenset({INVITEE}))
        for wrong in ("f" * 32, "not-hex", key.upper()[:-1] + "G"):
            unknown = bounce(form="bounces", bounce_key=wrong, token=None)
            assert answers.observe(db, config, NOW, unknown).bounced_mail is None
        # the key as a mail system may write it, in upper case, still names it
        upper = bounce(form="bounces", bounce_key=key.upper(), token=None)
        assert answers.observe(db, config, NOW, upper).bounced_mail == seen.bounced_mail
        assert answers.record(db, config, NOW, upper) == "undeliverable"
        assert answers.find_invitation(db, token) is not None
        assert db.execute("SELECT status FROM shares").fetchone() == ("undeliverable",)


def test_record_declines_and_logs(
    invited: tuple[Store, str], config: Settings, tmp_path: Path
) -> None:
    store, token = invited
    with store.write() as db:
        assert answers.record(db, config, NOW, mail(DECLINE, token=token)) == "declined"
        assert answers.record(db, config, NOW, mail(DECLINE, token=token)) == "duplicate"
    look = sqlite3.connect(tmp_path / "calshare.db")
    assert look.execute("SELECT status, feed_hash FROM shares").fetchone() == ("declined", None)
    kinds = [row[0] for row in look.execute("SELECT kind FROM outbox ORDER BY id")]
    assert kinds == ["invitation", "owner_declined"]
    logged = look.execute("SELECT kind, outcome, token_hash, size FROM inbound").fetchall()
    assert logged == [(DECLINE, "declined", token_hash(token), len(mail(DECLINE).raw))]
    (raw,) = look.execute("SELECT raw FROM inbound_raw").fetchone()
    assert token.encode() in mail(DECLINE, token=token).raw and token.encode() not in raw
    look.close()


def test_rewording_an_outcome_keeps_the_once_a_day_guards(
    invited: tuple[Store, str], config: Settings
) -> None:
    """The guards read ``inbound.reply``, not the outcome's words: reword every outcome
    already logged and no second reply goes out, nor a second request to confirm."""
    store, token = invited
    unclear = mail(UNKNOWN, token=token)
    stranger = mail(ACCEPT, token=token, sender=STRANGER, mail_from=STRANGER)
    stranger = replace(stranger, verdict=replace(stranger.verdict, message_id="<m2@x>"))
    with store.write() as db:
        assert answers.record(db, config, NOW, unclear) == Outcome.HOW_TO_ANSWER
        assert answers.record(db, config, NOW, stranger) == Outcome.CONFIRM_ASKED
        db.execute("UPDATE inbound SET outcome = 'we wrote back (' || id || ')'")
        later = NOW + timedelta(hours=1)
        again = replace(unclear, verdict=replace(unclear.verdict, message_id="<m3@example.org>"))
        assert answers.record(db, config, later, again) == Outcome.UNKNOWN_ANSWER
        other = mail(DECLINE, token=token, sender="eve@example.net", mail_from="eve@example.net")
        other = replace(other, verdict=replace(other.verdict, message_id="<m4@x>"))
        assert answers.record(db, config, later, other) == Outcome.HELD_ASKED_TODAY
        kinds = [row[0] for row in db.execute("SELECT kind FROM outbox ORDER BY id")]
    # one of each, no more (the owner hears of the held answer once)
    assert kinds == ["invitation", "answer_help", "confirm", "owner_held"]


def test_words_that_read_like_a_reply_hold_no_guard(
    invited: tuple[Store, str], config: Settings
) -> None:
    """An outcome that starts "replied" without a reply on record holds nothing back."""
    store, token = invited
    with store.write() as db:
        assert (
            answers.record(db, config, NOW, mail(UNKNOWN, token=token)) == "replied: how to answer"
        )
        db.execute("UPDATE inbound SET reply = NULL")  # the words stay, the field says none
        again = mail(UNKNOWN, token=token)
        again = replace(again, verdict=replace(again.verdict, message_id="<m2@example.org>"))
        assert answers.record(db, config, NOW, again) == Outcome.HOW_TO_ANSWER
        replies = db.execute("SELECT reply FROM inbound ORDER BY id").fetchall()
    assert replies == [(None,), (Reply.EXPLAINED,)]
