"""Header safety of the mails we compose, and what every mail and template says and looks like.

These tests attack ``mailer.compose`` itself: they build Mailbox objects directly,
so names and domains that calshare's address parser would refuse still reach it.
Whatever the names hold (CR, LF, Unicode line separators, 2,000 characters,
emoji, right-to-left text, quotes, commas, IDN domains), the bytes must parse
back with the standard library, carry exactly our header fields, keep every
line CRLF-terminated and at most 998 octets, and decode to the intended text.
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterator
from datetime import UTC, date, datetime
from email import message_from_bytes
from email import policy as email_policy
from email.header import decode_header, make_header
from email.message import EmailMessage
from email.utils import parseaddr
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from calshare import wording
from calshare.addresses import Mailbox, normalize_domain
from calshare.levels import Level
from mailer import compose
from mailer.headers import MAX_LINE, HeaderInjection, check_generated
from mailer.templates import render, template_dir
from tests.support.mail_html import assert_mail_safe_html

NOW = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
EXPIRES = date(2026, 12, 10)
TOKEN = "abcdefghijklmnopqrstuvwxyz"
OWNER_ADDRESS = "ann@example.org"
SERVICE = Mailbox("calendar@share.example.org", "Calendar")

INVITATION_HEADERS = {
    "from",
    "to",
    "subject",
    "date",
    "message-id",
    "auto-submitted",
    "x-auto-response-suppress",
    "mime-version",
    "content-type",
    "reply-to",
}
NOTICE_HEADERS = INVITATION_HEADERS - {"reply-to"}
KINDS = ("invitation", "level_changed", "unshared")


def sender(owner_name: str) -> compose.Sender:
    return compose.Sender("share.example.org", SERVICE, Mailbox(OWNER_ADDRESS, owner_name))


def build(
    kind: str,
    owner_name: str,
    to: Mailbox,
    calendar: str,
    lang: str = "en",
    level: Level = Level.TITLES,
    message: str | None = None,
) -> compose.OutgoingMail:
    if kind == "invitation":
        return compose.invitation(
            sender(owner_name),
            to,
            calendar=calendar,
            level=level,
            token=TOKEN,
            base_url="https://calendar.example.org",
            expires=EXPIRES,
            lang=lang,
            message=message,
            now=NOW,
        )
    return compose.notice(
        sender(owner_name),
        to,
        kind=kind,
        calendar=calendar,
        lang=lang,
        now=NOW,
        level=level if kind == "level_changed" else None,
    )


def fold(text: str) -> str:
    """What a header can carry of a text: line breaks and runs of white space become one space."""
    return " ".join(text.split())


def squash(text: str) -> str:
    """The text without any white space, for where only the characters can be compared."""
    return "".join(text.split())


def parse(raw: bytes) -> EmailMessage:
    message = message_from_bytes(raw, policy=email_policy.default)
    assert isinstance(message, EmailMessage)
    return message


def header_block(raw: bytes) -> bytes:
    head, separator, _ = raw.partition(b"\r\n\r\n")
    assert separator, "no blank line after the headers"
    return head


def assert_well_formed(mail: compose.OutgoingMail, kind: str) -> EmailMessage:
    """The structural promises: fields, line ends, line lengths, 7-bit headers."""
    raw = mail.raw
    assert raw.endswith(b"\r\n")
    # Every line of the whole message ends in CRLF: no bare CR or LF anywhere.
    assert b"\r" not in raw.replace(b"\r\n", b"")
    assert b"\n" not in raw.replace(b"\r\n", b"")
    for line in raw.split(b"\r\n"):
        assert len(line) <= MAX_LINE, f"a line of {len(line)} octets: {line[:60]!r}"
    head = header_block(raw)
    assert head.isascii(), "8-bit header without SMTPUTF8"
    names = [
        line.split(b":", 1)[0].decode("ascii").lower()
        for line in head.split(b"\r\n")
        if line[:1] not in (b" ", b"\t")
    ]
    expected = INVITATION_HEADERS if kind == "invitation" else NOTICE_HEADERS
    assert sorted(names) == sorted(expected), names
    message = parse(raw)
    assert not message.defects, message.defects
    assert {name.lower() for name in message} == expected
    for name in expected:
        assert len(message.get_all(name) or []) == 1, name
    assert "Bcc" not in message and "Cc" not in message
    assert message.get_content_type() == "multipart/alternative"
    assert [part.get_content_type() for part in message.iter_parts()] == [
        "text/plain",
        "text/html",
    ]
    # the envelope: ASCII, and no token where bounces and auto-replies go
    assert mail.envelope_from.isascii() and TOKEN not in mail.envelope_from
    assert all(recipient.isascii() for recipient in mail.recipients)
    assert TOKEN not in str(message["From"]) and TOKEN not in str(message["Message-ID"])
    return message


def shown_name(text: str) -> str:
    """A name as compose.clean lets it into a header: folded, "=?" broken up (no forged
    encoded-word can start there)."""
    return fold(text).replace("=?", "= ?")


def owner_candidates(owner_name: str) -> set[str]:
    """How the owner may be named in a header: the folded name, or the address if none."""
    folded = shown_name(owner_name)
    if folded:
        return {folded}
    return {OWNER_ADDRESS} if owner_name == "" else {"", OWNER_ADDRESS}


def decodings(message: EmailMessage, raw: bytes, name: str) -> set[str]:
    """The header's text as the stdlib's two decoders read it (folded).

    For an address header, the display name. policy.default keeps the white space
    between adjacent encoded-words of a phrase, which RFC 2047 6.2 says to drop
    (so a long non-ASCII name decodes with spaces inserted); the legacy decoder
    drops it but also decodes encoded-words glued to other text. Where they
    disagree the bytes are still correct, so either reading counts.
    """
    modern = message[name]
    legacy = message_from_bytes(raw, policy=email_policy.compat32)[name]
    legacy = re.sub(r"\r?\n(?=[ \t])", "", legacy)
    if name in ("From", "To"):
        addr_spec(message, name)  # exactly one address
        display = modern.addresses[0].display_name
        found = {display, str(make_header(decode_header(parseaddr(legacy)[0])))}
    else:
        found = {str(modern), str(make_header(decode_header(legacy)))}
    return {fold(text) for text in found}


def addr_spec(message: EmailMessage, name: str) -> str:
    addresses = message[name].addresses
    assert len(addresses) == 1, f"{name} holds {[a.addr_spec for a in addresses]}"
    return str(addresses[0].addr_spec)


def assert_round_trip(
    mail: compose.OutgoingMail,
    message: EmailMessage,
    kind: str,
    owner_name: str,
    to: Mailbox,
    calendar: str,
    lang: str,
) -> None:
    assert addr_spec(message, "From") == SERVICE.address
    owners = owner_candidates(owner_name)
    wanted_from = {fold(f"{owner} via Calendar") for owner in owners}
    assert decodings(message, mail.raw, "From") & wanted_from, wanted_from
    assert addr_spec(message, "To") == to.address
    assert shown_name(to.display_name) in decodings(message, mail.raw, "To")
    fields = {"owner_address": OWNER_ADDRESS, "calendar": calendar}
    if kind == "level_changed":
        fields["level"] = wording.level_words(Level.TITLES, lang)
        fields["explanation"] = "x"
    subjects = {
        squash(wording.text(f"{kind}.subject", lang, **fields, owner=owner)) for owner in owners
    }
    # White space aside: CPython's folder can drop a space where it splits an
    # encoded-word (see test_a_space_inside_a_split_encoded_word_survives).
    decoded = {squash(text) for text in decodings(message, mail.raw, "Subject")}
    assert decoded & subjects, subjects


# --- hypothesis: names and calendar names from hostile text

LINE_BREAKS = "\r\n\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"
PIECES = [
    "\r\nBcc: evil@x.org",
    "\nBcc: evil@x.org",
    "\rBcc: evil@x.org",
    "\r\n\r\n<html>body</html>",
    "\u2028Bcc: evil@x.org",
    '"Quoted, Name"',
    "O'Brien, Jr.",
    "Smith, John <john@evil.example>",
    "a@b.c",
    "(comment)",
    "\\",
    "Åse Øvergård",
    "Bjørn Æbelø",
    "😀🎉👩‍👩‍👧",
    "שלום עולם",
    "مرحبا بالعالم",
    "\u202eevil\u202c",
    "\u200b",
    "x" * 80,
    "æ" * 100,
    " " * 5,
    "\t",
]
TEXT = st.text(
    alphabet=st.one_of(
        st.characters(blacklist_categories=("Cs", "Cc")),
        st.sampled_from(LINE_BREAKS + "\t \"',;:<>@()[]\\=?"),
    ),
    max_size=40,
)
# Up to 100 characters a name must come through whole; longer ones may be cut
# visibly (test_very_long_names_are_encoded_not_overlong).
WHOLE = 100
NAMES = st.lists(st.one_of(st.sampled_from(PIECES), TEXT), max_size=4).map(
    lambda pieces: "".join(pieces)[:WHOLE]
)
INVITEES = st.sampled_from(
    [
        "bob@example.org",
        "o'hara@example.org",
        "bob+tag@sub.example.org",
        "x@xn--bcher-kva.example",
        "a.very.long.local.part.of.sixty.four.characters.at.most.abcdefg@example.org",
    ]
)


@settings(max_examples=200, deadline=None)
@given(
    kind=st.sampled_from(KINDS),
    owner_name=NAMES,
    invitee_name=NAMES,
    invitee=INVITEES,
    calendar=NAMES.filter(lambda name: name.strip() != ""),
    lang=st.sampled_from(wording.LANGUAGES),
)
@example(
    kind="invitation",
    owner_name="Ann",
    invitee_name="Bob\r\nBcc: evil@x.org",
    invitee="bob@example.org",
    calendar="project",
    lang="en",
)
@example(
    kind="invitation",
    owner_name="Ann\r\nBcc: evil@x.org",
    invitee_name="Bob",
    invitee="bob@example.org",
    calendar="project\r\nBcc: evil@x.org",
    lang="en",
)
@example(
    kind="unshared",
    owner_name='Åse "the boss", 😀 שלום',
    invitee_name="Bjørn, Æ",
    invitee="bob@example.org",
    calendar="Prosjekt «Ø»",
    lang="nb",
)
def test_hostile_names_never_inject_and_round_trip(
    kind: str, owner_name: str, invitee_name: str, invitee: str, calendar: str, lang: str
) -> None:
    to = Mailbox(invitee, invitee_name)
    mail = build(kind, owner_name, to, calendar, lang)
    message = assert_well_formed(mail, kind)
    assert_round_trip(mail, message, kind, owner_name, to, calendar, lang)


# --- the named attacks, one by one, so a failure names its cause

ATTACKS = {
    "crlf-bcc": "Bob\r\nBcc: evil@x.org",
    "lf-bcc": "Bob\nBcc: evil@x.org",
    "cr-bcc": "Bob\rBcc: evil@x.org",
    "crlf-body": "Bob\r\n\r\nfake body",
    "line-separator": "Bob\u2028Bcc: evil@x.org",
    "paragraph-separator": "Bob\u2029Smith",
    "next-line": "Bob\x85Smith",
    "vertical-tab": "Bob\x0bSmith",
}


@pytest.mark.parametrize("where", ["owner", "invitee", "calendar"])
@pytest.mark.parametrize("attack", list(ATTACKS.values()), ids=list(ATTACKS))
def test_line_breaks_in_names_are_folded_away(where: str, attack: str) -> None:
    kind = "invitation"  # the notices share _build; the property test covers them
    owner = attack if where == "owner" else "Ann Owner"
    to = Mailbox("bob@example.org", attack if where == "invitee" else "Bob")
    calendar = attack if where == "calendar" else "project"
    mail = build(kind, owner, to, calendar)
    message = assert_well_formed(mail, kind)
    assert_round_trip(mail, message, kind, owner, to, calendar, "en")


ENCODED_WORDS = [
    "=?utf-8?q?Bob=0D=0ABcc:_evil@x.org?=",
    "=?utf-8?b?Qm9iDQpCY2M6IGV2aWxAeC5vcmc=?=",
    "=?us-ascii?q?a=0Ab?= =?utf-8?q?=0D=0A?=",
]


@pytest.mark.parametrize("where", ["owner", "invitee", "calendar"])
@pytest.mark.parametrize("name", ENCODED_WORDS)
def test_encoded_words_in_names_are_not_decoded_into_headers(where: str, name: str) -> None:
    """A name that looks like RFC 2047 must not smuggle a line break in through decoding."""
    owner = name if where == "owner" else "Ann Owner"
    to = Mailbox("bob@example.org", name if where == "invitee" else "Bob")
    calendar = name if where == "calendar" else "project"
    mail = build("invitation", owner, to, calendar)
    assert_well_formed(mail, "invitation")


SPECIALS = {
    "comma-angle": "Smith, John <john@evil.example> " + "x" * 60,
    "comma-angle-glued": "Smith, John <john@evil.example>" + "x" * 60,
    "address-like": "a@b.c" + "x" * 80,
    "quoted": '"Quoted, Name"' + "x" * 80,
    "comma": "O'Brien, Jr." + "x" * 80,
    "semicolon-group": "Team: a@evil.example; " + "x" * 70,
    "short-comma-angle": "Smith, John <john@evil.example>",
}


@pytest.mark.parametrize("where", ["owner", "invitee"])
@pytest.mark.parametrize("name", list(SPECIALS.values()), ids=list(SPECIALS))
def test_specials_in_long_names_stay_inside_the_display_name(where: str, name: str) -> None:
    """Folded or not, a name with , < > @ " ; : must not become a second address."""
    kind = "invitation"
    owner = name if where == "owner" else "Ann Owner"
    to = Mailbox("bob@example.org", name if where == "invitee" else "Bob")
    mail = build(kind, owner, to, "project")
    message = assert_well_formed(mail, kind)
    assert addr_spec(message, "From") == SERVICE.address
    assert addr_spec(message, "To") == "bob@example.org"
    assert_round_trip(mail, message, kind, owner, to, "project", "en")


LONG_NAMES = {
    "ascii-77": "a" * 77,
    "ascii-79": "a" * 79,
    "ascii-500": "a" * 500,
    "ascii-990": "a" * 990,
    "ascii-2000": "a" * 2000,
    "words-2000": "ab " * 666 + "ab",
    "nordic-2000": "æ" * 2000,
    "emoji-2000": "😀" * 2000,
    "rtl-2000": "ש" * 2000,
    "quotes-2000": '"a,' * 666 + "a",
    "mixed-2000": ("Åse " + "x" * 96) * 20,
    "ascii-words-101": "Ann " * 25 + "B",
}


def _allowed_long(decoded: set[str], intended: str) -> bool:
    """The whole text, or a visible cut ("…") keeping at least the first WHOLE characters."""
    intended = fold(intended)
    if intended in decoded:
        return True
    cut = [text.removesuffix("…").rstrip() for text in decoded if text.endswith("…")]
    return any(len(text) >= WHOLE - 1 and intended.startswith(text) for text in cut)


@pytest.mark.parametrize("where", ["owner", "invitee", "calendar"])
@pytest.mark.parametrize("name", list(LONG_NAMES.values()), ids=list(LONG_NAMES))
def test_very_long_names_are_encoded_not_overlong(where: str, name: str) -> None:
    owner = name if where == "owner" else "Ann Owner"
    to = Mailbox("bob@example.org", name if where == "invitee" else "Bob")
    calendar = name if where == "calendar" else "project"
    mail = build("invitation", owner, to, calendar)
    message = assert_well_formed(mail, "invitation")
    subjects = decodings(message, mail.raw, "Subject")
    if where == "owner":
        shown = {
            text.removesuffix(" via Calendar")
            for text in decodings(message, mail.raw, "From")
            if text.endswith(" via Calendar")
        }
        assert _allowed_long(shown, name)
        assert _allowed_long({text.split(" shared the calendar")[0] for text in subjects}, name)
    elif where == "invitee":
        assert _allowed_long(decodings(message, mail.raw, "To"), name)
    else:
        assert all(text.startswith("Ann Owner shared the calendar “") for text in subjects)
        inner = {text.split("“", 1)[1].rsplit("”", 1)[0] for text in subjects}
        assert _allowed_long(inner, name)


IDN_INVITEES = {
    "german": "bob@bücher.example",
    "japanese": "taro@例え.テスト",
    "uppercase-idn": "bob@BÜCHER.example",
    "already-punycode": "bob@xn--bcher-kva.example",
    "nordic-subdomain": "kari@post.blåbær.no",
}


@pytest.mark.parametrize("name", ["", "Bjørn Ærø, Jr."])
@pytest.mark.parametrize("address", list(IDN_INVITEES.values()), ids=list(IDN_INVITEES))
def test_idn_invitee_domains_become_ascii(address: str, name: str) -> None:
    to = Mailbox(address, name)
    mail = build("invitation", "Ann Owner", to, "project")
    message = assert_well_formed(mail, "invitation")
    (parsed,) = message["To"].addresses
    local, _, domain = address.rpartition("@")
    assert parsed.username == local
    assert parsed.domain.isascii() and "=?" not in parsed.domain
    assert normalize_domain(parsed.domain) == normalize_domain(domain)
    assert fold(parsed.display_name) == fold(name)
    (recipient,) = mail.recipients
    assert recipient == f"{local}@{normalize_domain(domain)}"


@pytest.mark.parametrize("lang", wording.LANGUAGES)
@pytest.mark.parametrize("kind", KINDS)
def test_plain_names_round_trip_exactly(kind: str, lang: str) -> None:
    """The everyday case, exactly: no folding needed, no characters lost."""
    to = Mailbox("bob@example.org", 'Bjørn "Bob" Ærø, Jr.')
    mail = build(kind, "Åse Ødegård 😀", to, "Prosjekt-2026", lang)
    message = assert_well_formed(mail, kind)
    assert message["From"].addresses[0].display_name == "Åse Ødegård 😀 via Calendar"
    assert message["To"].addresses[0].display_name == 'Bjørn "Bob" Ærø, Jr.'
    assert mail.subject == str(message["Subject"])
    assert "Åse Ødegård 😀" in mail.subject and "Prosjekt-2026" in mail.subject
    assert message["Message-ID"] == mail.message_id
    assert message["Date"] == "Thu, 26 Nov 2026 09:00:00 +0000"
    if kind == "invitation":
        assert message["Reply-To"] == f"share+{TOKEN}@share.example.org"


def test_a_space_inside_a_split_encoded_word_survives() -> None:
    """CPython (3.11-3.13) drops the space where its folder splits an encoded-word at a
    space; compose never folds header fields below 998 octets, so it cannot happen."""
    owner = '"Quoted, Name""Quoted, Name"'
    mail = build("level_changed", owner, Mailbox("bob@example.org"), '"Quoted, Name"')
    message = assert_well_formed(mail, "level_changed")
    assert str(message["Subject"]) == mail.subject


# --- check_generated on hand-made header blocks

GOOD = b"From: a@example.org\r\nTo: b@example.org\r\nSubject: hi\r\n there\r\n\r\nbody\r\n"


def test_check_generated_accepts_a_good_block() -> None:
    check_generated(GOOD, ["From", "To", "Subject"])
    check_generated(GOOD, ["subject", "to", "FROM"])  # case-insensitive, any order


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param(
            b"From: a@example.org\nBcc: e@x.org\r\nTo: b@example.org\r\n\r\nbody",
            ["From", "To"],
            id="bare-lf",
        ),
        pytest.param(
            b"From: a@example.org\rBcc: e@x.org\r\nTo: b@example.org\r\n\r\nbody",
            ["From", "To"],
            id="bare-cr",
        ),
        pytest.param(
            b"From: a@example.org\r\nBcc: e@x.org\r\nTo: b@example.org\r\n\r\nbody",
            ["From", "To"],
            id="injected-field",
        ),
        pytest.param(
            b"From: a@example.org\r\nTo: b@example.org\r\n", ["From", "To"], id="no-blank-line"
        ),
        pytest.param(
            b"From: a@example.org\r\nTo: b@example.org", ["From", "To"], id="no-line-end-at-all"
        ),
        pytest.param(
            b"From: a@example.org\r\nTo: b@example.org\r\nFrom: c@example.org\r\n\r\n",
            ["From", "To"],
            id="duplicate-field",
        ),
        pytest.param(b"From: a@example.org\r\n\r\nbody", ["From", "To"], id="missing-field"),
        pytest.param(
            b"From: a@example.org\r\nSubject: " + b"x" * 990 + b"\r\n\r\n",
            ["From", "Subject"],
            id="overlong-line",
        ),
        pytest.param(
            b" folded: x\r\nFrom: a@example.org\r\n\r\n", ["From"], id="starts-with-continuation"
        ),
        pytest.param(
            b"From: a@example.org\r\nnot a header line\r\n\r\n", ["From"], id="not-a-field"
        ),
        pytest.param(
            b"From: a@example.org\r\nTo: b\x00@example.org\r\n\r\n", ["From", "To"], id="nul"
        ),
        pytest.param(
            b"From: a@example.org\r\nX Bad: y\r\n\r\n", ["From", "X Bad"], id="space-in-name"
        ),
    ],
)
def test_check_generated_raises_on_bad_header_blocks(raw: bytes, expected: list[str]) -> None:
    with pytest.raises(HeaderInjection):
        check_generated(raw, expected)
    assert issubclass(HeaderInjection, AssertionError)


def test_check_generated_allows_a_line_of_exactly_998_octets() -> None:
    line = b"Subject: " + b"x" * (MAX_LINE - len(b"Subject: "))
    assert len(line) == MAX_LINE
    check_generated(b"From: a@example.org\r\n" + line + b"\r\n\r\n", ["From", "Subject"])
    with pytest.raises(HeaderInjection, match="999 octets"):
        check_generated(b"From: a@example.org\r\n" + line + b"x\r\n\r\n", ["From", "Subject"])


# --- wording: every sentence in every language


def _placeholders(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


def test_every_wording_key_exists_in_every_language() -> None:
    assert wording.LANGUAGES == ("en", "nb")
    english = wording.keys("en")
    assert english, "no sentences at all"
    for lang in wording.LANGUAGES:
        assert wording.keys(lang) == english, lang


def test_the_languages_use_the_same_placeholders() -> None:
    for key in wording.keys("en"):
        fields = {
            lang: _placeholders(wording._TEXT[lang][key])  # the raw sentence
            for lang in wording.LANGUAGES
        }
        assert fields["en"] == fields["nb"], key
        values = dict.fromkeys(fields["en"], "X")
        for lang in wording.LANGUAGES:
            said = wording.text(key, lang, **values)
            assert "{" not in said and "}" not in said, (key, lang)
            assert said.strip(), (key, lang)


@pytest.mark.parametrize("lang", wording.LANGUAGES)
def test_every_level_has_words_in_every_language(lang: str) -> None:
    words = {level: wording.level_words(level, lang) for level in Level}
    assert len(set(words.values())) == len(Level)
    explanations = {level: wording.explanation(level, lang, "Ann") for level in Level}
    assert len(set(explanations.values())) == len(Level)
    assert "Ann" in explanations[Level.FREE_BUSY]
    if lang == "en":  # Outlook's wording, as the design promises
        assert words == {
            Level.FREE_BUSY: "can view when I'm busy",
            Level.TITLES: "can view titles and locations",
            Level.DETAILS: "can view all details",
        }


# --- templates: every one renders in both languages, and the HTML is mail-safe


def _context(lang: str) -> dict[str, Any]:
    """Everything any of our templates may ask for, in one language."""
    fields = {
        "owner": "Ann",
        "owner_who": wording.who("Ann", OWNER_ADDRESS),
        "calendar": "project",
    }
    level = {
        "level": wording.level_words(Level.TITLES, lang),
        "explanation": wording.explanation(Level.TITLES, lang, "Ann"),
    }
    return {
        "lang": lang,
        "subject": wording.text("invitation.subject", lang, **fields),
        "heading": wording.text("invitation.heading", lang),
        "intro": wording.text("invitation.intro", lang, **fields),
        "level_line": wording.text("invitation.level", lang, **level),
        "message": "A note\nover two lines",
        "message_from": wording.text("invitation.message_from", lang, **fields),
        "accept_url": f"mailto:accept+{TOKEN}@share.example.org?subject=Accept",
        "decline_url": f"mailto:decline+{TOKEN}@share.example.org?subject=Decline",
        "web_url": f"https://calendar.example.org/i/{TOKEN}",
        "accept_label": wording.text("invitation.accept", lang),
        "decline_label": wording.text("invitation.decline", lang),
        "web_label": wording.text("invitation.web", lang),
        "how": wording.text("invitation.how", lang),
        "how_text": wording.text("invitation.how_text", lang, accept="A", decline="D", web="W"),
        "links": [("Subscribe", f"webcal://calendar.example.org/feeds/{TOKEN}.ics")],
        "stacked": True,  # the welcome's subscribe buttons, one above the other
        "copies": [("Copy", f"https://calendar.example.org/feeds/{TOKEN}.ics")],
        "after": wording.text("invitation.after", lang),
        "valid_until": wording.text("invitation.valid_until", lang, date="10"),
        "body": wording.text("unshared.body", lang, **fields),
        "footer": wording.text("footer", lang, domain="share.example.org"),
    }


def _mail_templates() -> list[str]:
    """The mails' templates; layout.html is only extended by the HTML ones, and
    partials (``_schedule.html``) are only imported by them."""
    return sorted(
        path.name
        for path in template_dir().iterdir()
        if path.suffix in (".html", ".txt")
        and path.name != "layout.html"
        and not path.name.startswith("_")
    )


# Mails whose context is more than sentences; tests/test_snapshot.py renders them.
_STRUCTURED = ("snapshot.html", "snapshot.txt")


def test_the_mail_templates_come_in_text_and_html_twins() -> None:
    names = _mail_templates()
    assert {"invitation.html", "invitation.txt", "notice.html", "notice.txt"} <= set(names)
    stems = {name.rsplit(".", 1)[0] for name in names}
    assert set(names) == {f"{stem}.{suffix}" for stem in stems for suffix in ("html", "txt")}


@pytest.mark.parametrize("lang", wording.LANGUAGES)
@pytest.mark.parametrize("name", [t for t in _mail_templates() if t not in _STRUCTURED])
def test_every_template_renders_in_every_language(name: str, lang: str) -> None:
    rendered = render(name, **_context(lang))
    assert rendered.strip()
    assert "{{" not in rendered and "{%" not in rendered
    assert wording.text("footer", lang, domain="share.example.org") in rendered
    if name.endswith(".html"):
        assert f'lang="{lang}"' in rendered
        assert_mail_safe_html(rendered)


def _rendered_mails() -> Iterator[tuple[str, str, str, str]]:
    for lang in wording.LANGUAGES:
        for kind in KINDS:
            for level in Level:
                mail = build(
                    kind,
                    "Ann Owner",
                    Mailbox("bob@example.org", "Bob"),
                    "project",
                    lang,
                    level,
                    message="Hello <b>Bob</b> & team" if kind == "invitation" else None,
                )
                message = parse(mail.raw)
                text, html = message.get_body(("plain",)), message.get_body(("html",))
                assert text is not None and html is not None
                yield lang, kind, text.get_content(), html.get_content()


def test_every_composed_mail_says_its_level_in_both_parts() -> None:
    seen = 0
    for lang, kind, text, html in _rendered_mails():
        seen += 1
        assert "{" not in text and "None" not in text, (lang, kind)
        if kind != "unshared":
            said = [wording.level_words(level, lang) for level in Level]
            assert any(words in text for words in said), (lang, kind)
        assert wording.text("footer", lang, domain="share.example.org") in text
        assert_mail_safe_html(html)
        if kind == "invitation":
            assert "Hello &lt;b&gt;Bob&lt;/b&gt; &amp; team" in html
            assert f"accept+{TOKEN}@share.example.org" in text
            assert f"decline+{TOKEN}@share.example.org" in text
    assert seen == len(wording.LANGUAGES) * len(KINDS) * len(Level)


def test_an_owner_without_a_name_is_named_once() -> None:
    assert wording.who("", "ann@example.org") == "ann@example.org"
    assert wording.who("ann@example.org", "ann@example.org") == "ann@example.org"
    assert wording.who("Ann Demo", "ann@example.org") == "Ann Demo (ann@example.org)"
    sender = compose.Sender(
        "share.example.org", Mailbox("calendar@share.example.org", "Calendar"),
        Mailbox("ann@example.org", ""),
    )  # fmt: skip
    mail = compose.invitation(
        sender, Mailbox("bob@example.org", "Bob"), calendar="project", level=Level.TITLES,
        token=TOKEN, base_url="https://c.example.org", expires=date(2026, 12, 10), lang="en",
        message=None, now=NOW,
    )  # fmt: skip
    text = message_from_bytes(mail.raw, policy=email_policy.default)
    body = text.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "ann@example.org would like to share" in body
    assert "(ann@example.org)" not in body


@pytest.mark.parametrize("kind", ["invitation", "unshared"])
def test_the_message_id_does_not_give_away_the_bounce_address(kind: str) -> None:
    """Every reply quotes the Message-ID (In-Reply-To); a bounce to bounces+<key> kills an
    invitation. So the Message-ID holds a one-way hash of the key, never the key."""
    mail = build(kind, "Ann Demo", Mailbox("bob@example.org", "Bob"), "project")
    found = re.fullmatch(r"bounces\+([0-9a-f]{32})@share\.example\.org", mail.envelope_from)
    assert found is not None, mail.envelope_from
    key = found[1]
    message_id = parse(mail.raw)["Message-ID"]
    assert key not in message_id and key not in mail.raw.decode("ascii", "replace")
    assert message_id == mail.message_id == compose.message_id_for(key, "share.example.org")
    assert re.fullmatch(r"<[0-9a-f]{32}@share\.example\.org>", message_id)
    # the same key always names the same message: a notice composed again is the same mail
    spec = compose.NoticeSpec(
        kind="welcome",
        sender=sender("Ann Demo"),
        to=Mailbox("bob@example.org", "Bob"),
        calendar="project",
        lang="en",
        key=key,
    )
    again = compose.NoticeSpec.from_json(spec.to_json())
    assert (again.message_id, again.envelope_from) == (spec.message_id, spec.envelope_from)
    assert spec.message_id == compose.message_id_for(key, "share.example.org")
