"""The inbox classifier: real clients' replies, the shared corpus, its pieces, a fuzz run, the CLI.

The fixtures under ``tests/fixtures/mail/`` are written after what Outlook (desktop, on
the web, in Norwegian, English and German), Gmail, Apple Mail, Thunderbird, Samsung
Email, Exchange, Gmail's vacation responder and Postfix really send. They all carry one
invitation token, ``TOKEN``, quoted back the way each client quotes: an auto-reply or a
bounce that quotes the Accept link must never be taken as an answer.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from email import message_from_bytes, policy
from email.message import EmailMessage, Message
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from calshare.tokens import log_id
from inbox import authresults
from inbox.classify import (
    ParsedMail,
    Verdict,
    VerdictKind,
    _strip_prefixes,
    answer_in_words,
    body_text,
    classify,
    first_words,
    html_to_text,
    normalize_line_ends,
    parse_mail,
    part_text,
    reported_recipients,
)
from tests.conftest import CORPUS, FIXTURES, CliResult

ACCEPT, DECLINE, UNKNOWN = VerdictKind.ACCEPT, VerdictKind.DECLINE, VerdictKind.UNKNOWN
AUTO_REPLY, BOUNCE = VerdictKind.AUTO_REPLY, VerdictKind.BOUNCE
TOKEN = "k3fp7q2mxa5ttw6nbe4rdzy2oc"  # 26 characters of [a-z2-7], as tokens.new_token makes
DOMAIN = "share.example.org"  # the default [mail] domain
ACCEPT_TO = f"accept+{TOKEN}@{DOMAIN}"
DECLINE_TO = f"decline+{TOKEN}@{DOMAIN}"
SHARE_TO = f"share+{TOKEN}@{DOMAIN}"
OPERATOR = f"calendar@{DOMAIN}"  # the From of our mails; an operator address of the inbox
BOUNCE_KEY = "583acd5bd9dcea90d9d4eff470e0861d"
KINDS = {ACCEPT, DECLINE, AUTO_REPLY, BOUNCE, UNKNOWN}
ANSWERS = {ACCEPT, DECLINE}

MAIL = FIXTURES / "mail"
BOUNCES = sorted((CORPUS / "bounces" / "flufl.bounce").glob("*.eml"))
REPLY_TEXTS = sorted((CORPUS / "replies" / "email_reply_parser").glob("*.txt"))

# The invitation as a client quotes it under a reply: both links, both words.
QUOTED_INVITATION = f"""\
On Thu, 26 Nov 2026 at 06:26, Kari Nordmann via Calendar <calendar@share.example.org> wrote:
> Calendar sharing invitation
>
> To accept, send an empty mail to:
>   mailto:{ACCEPT_TO}?subject=Accept%3A%20Kari%20Nordmann
> To decline, send an empty mail to:
>   mailto:{DECLINE_TO}?subject=Decline%3A%20Kari%20Nordmann
> Or reply to this mail with the word “accept” or “decline”.
> Accept
"""


def header(mail: ParsedMail, name: str) -> str:
    return str(mail.message.get(name) or "").strip()


def envelope_sender(mail: ParsedMail) -> str:
    return header(mail, "Return-Path").strip("<>")


def read(name: str) -> ParsedMail:
    return parse_mail((MAIL / name).read_bytes())


def verdict_of(
    mail: ParsedMail, *, recipient: str | None = None, mail_from: str | None = None
) -> Verdict:
    """Classify as delivered: to its Delivered-To, from its Return-Path, unless told otherwise."""
    return classify(
        mail,
        mail_from=envelope_sender(mail) if mail_from is None else mail_from,
        recipient=header(mail, "Delivered-To") if recipient is None else recipient,
        domain=DOMAIN,
    )


def make_mail(
    body: str,
    *,
    to: str = SHARE_TO,
    subject: str = "Re: Kari Nordmann shared the calendar “Team” with you",
    sender: str = "Bob Smith <bob.smith@example.com>",
    charset: str = "utf-8",
    headers: dict[str, str] | None = None,
) -> bytes:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    message["Message-ID"] = "<reply-1@example.com>"
    for name, value in (headers or {}).items():
        message[name] = value
    message.set_content(body, charset=charset)
    return bytes(message)


def classify_bytes(
    raw: bytes, *, recipient: str = SHARE_TO, mail_from: str = "bob@example.com"
) -> Verdict:
    return classify(parse_mail(raw), mail_from=mail_from, recipient=recipient, domain=DOMAIN)


# --- 1. Real clients ------------------------------------------------------------------

# fixture: (kind, normalised From)
REPLIES = {
    # Outlook (Microsoft 365) in Norwegian: SV:, text + HTML, "________ Fra:/Sendt:/Til:/Emne:"
    # in the text and divRplyFwdMsg in the HTML; ISO-8859-1 quoted-printable.
    "outlook_nb_godta.eml": (ACCEPT, "ola.nordmann@example.no"),
    # Outlook desktop in English: RE:, base64 UTF-8 text, Word HTML with a border-top quote.
    "outlook_en_accept.eml": (ACCEPT, "bob.smith@example.com"),
    # Gmail, HTML only: the answer in a div, the invitation in gmail_quote.
    "gmail_html_only_yes.eml": (ACCEPT, "per.hansen@gmail.com"),
    # Gmail, text + HTML, a few words after the answer; the attribution line wrapped.
    "gmail_decline.eml": (DECLINE, "bob.smith@gmail.com"),
    # Apple Mail: lower case, "> On … wrote:" and blockquote type=cite.
    "apple_mail_accept.eml": (ACCEPT, "anna.berg@icloud.com"),
    # Thunderbird in Norwegian: ISO-8859-1, quoted-printable, format=flowed, "Den … skrev".
    "thunderbird_avsla_latin1_qp.eml": (DECLINE, "ingrid.dahl@example.no"),
    # Samsung Email: base64 UTF-8 in both parts, an emoji after the answer.
    "samsung_nei_takk_base64.eml": (DECLINE, "ola.nordmann@example.no"),
    # German Outlook answering a message whose subject already says "Accept:".
    "outlook_de_aw_accept_subject.eml": (ACCEPT, "jonas.keller@example.de"),
    # The Accept button: an empty mail (a signature only) to accept+TOKEN.
    "mailto_accept_click.eml": (ACCEPT, "ola.nordmann@example.no"),
    # Not an answer, though the quote below says "Accept" and links to accept+TOKEN.
    "think_about_it.eml": (UNKNOWN, "bob.smith@gmail.com"),
    # The invitation was forwarded and someone else clicked Accept: an accept from another
    # address (the inbox holds it and asks the invitee; the verdict names the real sender).
    "forwarded_accepted_by_other.eml": (ACCEPT, "per.hansen@example.com"),
    # A reply that reached an operator address (the From of the invitation), not share+:
    # the token is found in the quoted links, the answer in the first line, "Nei".
    "operator_address_reply_nei.eml": (DECLINE, "ingrid.dahl@example.no"),
}

# fixture: kind, whatever address it reaches and whoever the envelope says sent it
AUTOMATIC = {
    # Exchange Online out-of-office (a mailbox rule), null sender, quoting the invitation
    "exchange_oof_quotes_invitation.eml": AUTO_REPLY,
    # Gmail's vacation responder: Auto-Submitted: auto-replied, the person's own address
    "gmail_vacation.eml": AUTO_REPLY,
    # Postfix DSN (multipart/report) with the whole invitation attached
    "postfix_dsn_quotes_invitation.eml": BOUNCE,
    # A vacation program answering the envelope sender (RFC 3834 says responses go to
    # the Return-Path), i.e. our bounces+ address: proof of delivery, not a bounce.
    "vacation_to_bounce_address.eml": AUTO_REPLY,
}


def test_every_fixture_is_listed() -> None:
    assert {path.name for path in MAIL.glob("*.eml")} == set(REPLIES) | set(AUTOMATIC)


@pytest.mark.parametrize("name", sorted(REPLIES))
def test_real_client_reply(name: str) -> None:
    kind, sender = REPLIES[name]
    mail = read(name)
    verdict = verdict_of(mail)
    assert verdict.kind == kind, verdict
    assert verdict.token == TOKEN
    assert verdict.sender == sender
    assert verdict.message_id == header(mail, "Message-ID")


def test_outlook_reply_is_read_from_its_first_line() -> None:
    verdict = verdict_of(read("outlook_nb_godta.eml"))
    assert verdict.form == "share"
    assert "Godta" in verdict.reason


def test_german_reply_is_read_from_its_subject() -> None:
    verdict = verdict_of(read("outlook_de_aw_accept_subject.eml"))
    assert "subject" in verdict.reason


def test_mailto_button_answers_by_its_address() -> None:
    verdict = verdict_of(read("mailto_accept_click.eml"))
    assert verdict.form == "accept"
    assert "accept+" in verdict.reason


@pytest.mark.parametrize(
    "name",
    [
        "outlook_nb_godta.eml",
        "outlook_en_accept.eml",
        "gmail_decline.eml",
        "apple_mail_accept.eml",
        "samsung_nei_takk_base64.eml",
        "think_about_it.eml",
    ],
)
def test_html_alternative_says_the_same_as_the_text(name: str) -> None:
    """Each client's HTML part, read alone (quotes skipped), gives the same answer."""
    message = read(name).message
    parts = {part.get_content_type(): part for part in message.walk()}
    plain = first_words(part_text(parts["text/plain"]))
    from_html = first_words(html_to_text(part_text(parts["text/html"])))
    assert from_html == plain
    kind = REPLIES[name][0]
    assert answer_in_words(from_html) == (None if kind == UNKNOWN else kind)


@pytest.mark.parametrize("name", sorted(AUTOMATIC))
def test_automatic_mail_as_delivered(name: str) -> None:
    verdict = verdict_of(read(name))
    assert verdict.kind == AUTOMATIC[name], verdict


@pytest.mark.parametrize("name", sorted(AUTOMATIC))
@pytest.mark.parametrize(
    "recipient", [ACCEPT_TO, DECLINE_TO, SHARE_TO, OPERATOR, ACCEPT_TO.upper()]
)
def test_automatic_mail_is_never_an_answer(name: str, recipient: str) -> None:
    """Auto-replies and bounces quote the token and the word Accept: never an answer."""
    mail = read(name)
    for mail_from in (envelope_sender(mail), "", "ola.nordmann@example.no"):
        verdict = verdict_of(mail, recipient=recipient, mail_from=mail_from)
        assert verdict.kind not in ANSWERS, (mail_from, verdict)
        assert verdict.kind == AUTOMATIC[name], (mail_from, verdict)


def test_dsn_to_the_bounce_address_names_the_bounced_mail() -> None:
    verdict = verdict_of(read("postfix_dsn_quotes_invitation.eml"))
    assert (verdict.kind, verdict.form, verdict.bounce_key) == (BOUNCE, "bounces", BOUNCE_KEY)


def test_auto_reply_verdict_carries_no_token() -> None:
    """An auto-reply is recorded and ignored: nothing downstream may act on its token."""
    for name in ("exchange_oof_quotes_invitation.eml", "gmail_vacation.eml"):
        assert verdict_of(read(name), recipient=SHARE_TO).token is None


# --- 2. The shared corpus ------------------------------------------------------------

# Delay warnings: "not yet delivered, still trying" (DSN Action: delayed, or the same in
# words). The invitation may still arrive, so they must not mark it undeliverable the way a
# bounce does (answers._bounced revokes the token): recorded and ignored, like an auto-reply.
# flufl.bounce, where these come from, counts them as temporary failures, not bounces.
DELAY_WARNINGS = {
    "dsn_05.eml",  # Action: delayed
    "dsn_07.eml",  # Action: delayed
    "dsn_17.eml",  # Postfix "THIS IS A WARNING ONLY", Action: delayed
    "simple_03.eml",  # Exim "has not yet been delivered ... after more than 24 hours"
    "simple_21.eml",  # "has not yet been delivered ... This is just a warning"
    "simple_35.eml",  # "advisory-only ... postponed due to a full mailbox"
}


@pytest.mark.parametrize("path", BOUNCES, ids=lambda path: path.name)
def test_corpus_bounce_is_never_an_answer(path: Path) -> None:
    mail = parse_mail(path.read_bytes())
    for recipient in (ACCEPT_TO, DECLINE_TO, SHARE_TO, OPERATOR):
        for mail_from in (envelope_sender(mail) or "MAILER-DAEMON", "", "bob@example.com"):
            verdict = verdict_of(mail, recipient=recipient, mail_from=mail_from)
            assert verdict.kind in KINDS - ANSWERS, (recipient, mail_from, verdict)


@pytest.mark.parametrize("path", BOUNCES, ids=lambda path: path.name)
def test_corpus_bounce_kind(path: Path) -> None:
    """A failure is a bounce, whoever the envelope names; a delay warning is not."""
    mail = parse_mail(path.read_bytes())
    expected = AUTO_REPLY if path.name in DELAY_WARNINGS else BOUNCE
    senders = (envelope_sender(mail) or "MAILER-DAEMON", "", "ola.nordmann@example.no")
    kinds = {
        mail_from: verdict_of(mail, recipient=ACCEPT_TO, mail_from=mail_from)
        for mail_from in senders
    }
    wrong = {sender: (v.kind, v.reason) for sender, v in kinds.items() if v.kind != expected}
    assert not wrong, f"expected {expected}: {wrong}"


def test_corpus_bounce_to_the_bounce_address_names_the_key() -> None:
    for path in BOUNCES:
        verdict = verdict_of(
            parse_mail(path.read_bytes()), recipient=f"bounces+{BOUNCE_KEY}@{DOMAIN}"
        )
        if path.name in DELAY_WARNINGS:
            assert verdict.kind == AUTO_REPLY, (path.name, verdict)
        else:
            assert (verdict.kind, verdict.bounce_key) == (BOUNCE, BOUNCE_KEY), (path.name, verdict)


def _reply_text(path: Path) -> str:
    return path.read_text(encoding="utf-8")


@pytest.mark.parametrize("path", REPLY_TEXTS, ids=lambda path: path.name)
def test_corpus_reply_says_neither(path: Path) -> None:
    verdict = classify_bytes(make_mail(_reply_text(path)))
    assert (verdict.kind, verdict.token) == (UNKNOWN, TOKEN), verdict


@pytest.mark.parametrize("path", REPLY_TEXTS, ids=lambda path: path.name)
@pytest.mark.parametrize(
    ("first_line", "kind"),
    [("Accept", ACCEPT), ("Nei", DECLINE), ("yes", ACCEPT), ("Godta!", ACCEPT)],
)
def test_corpus_reply_with_an_answer_on_top(path: Path, first_line: str, kind: str) -> None:
    verdict = classify_bytes(make_mail(f"{first_line}\n\n{_reply_text(path)}"))
    assert (verdict.kind, verdict.token) == (kind, TOKEN), verdict


@pytest.mark.parametrize("path", REPLY_TEXTS, ids=lambda path: path.name)
def test_corpus_reply_over_a_quoted_accept(path: Path) -> None:
    """The quote says Accept and links accept+TOKEN; the person wrote something else."""
    verdict = classify_bytes(make_mail(f"{_reply_text(path)}\n\n{QUOTED_INVITATION}"))
    assert (verdict.kind, verdict.token) == (UNKNOWN, TOKEN), verdict


# --- 3. The pieces -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("subject", "stripped"),
    [
        ("Re: Kari shared a calendar", "Kari shared a calendar"),
        ("RE: Kari", "Kari"),
        ("SV: Kari", "Kari"),
        ("Sv: Kari", "Kari"),
        ("AW: Kari", "Kari"),
        ("Antw: Kari", "Kari"),
        ("VS: Kari", "Kari"),
        ("Odp: Kari", "Kari"),
        ("R: Kari", "Kari"),
        ("Fwd: Kari", "Kari"),
        ("WG: Kari", "Kari"),
        ("Re[2]: Kari", "Kari"),
        ("RE : Kari", "Kari"),  # French Outlook puts a space before the colon
        ("re:Kari", "Kari"),
        ("  Re: SV: AW: Re: Kari", "Kari"),
        ("AW: Accept: Kari", "Accept: Kari"),
        ("SV: Godta: Kari", "Godta: Kari"),
        ("Regarding: Kari", "Regarding: Kari"),
        ("Reply needed: Kari", "Reply needed: Kari"),
        ("Accept: Kari", "Accept: Kari"),
        ("", ""),
    ],
)
def test_reply_prefixes(subject: str, stripped: str) -> None:
    assert _strip_prefixes(subject) == stripped


@pytest.mark.parametrize(
    ("subject", "kind"),
    [
        ("Accept: Kari Nordmann shared the calendar “Team” with you", ACCEPT),
        ("Decline: Kari Nordmann shared the calendar “Team” with you", DECLINE),
        ("Re: Accept: Kari", ACCEPT),
        ("SV: Decline: Kari", DECLINE),
        ("AW: AW: Accept: Kari", ACCEPT),
        ("ACCEPTED: Kari", ACCEPT),
        ("Godta: Kari", ACCEPT),
        ("Avslå: Kari", DECLINE),
        ("=?utf-8?q?Avsl=C3=A5=3A?= Kari", DECLINE),
        ("Re: Kari Nordmann shared the calendar “Team: Accept” with you", UNKNOWN),
        ("Acceptance test: Kari", UNKNOWN),
    ],
)
def test_answer_in_the_subject(subject: str, kind: str) -> None:
    verdict = classify_bytes(make_mail("\n", subject=subject))
    assert verdict.kind == kind, verdict


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("Godta", "Godta"),
        ("\n\n   Godta  \n\nHilsen Ola", "Godta"),
        ("\r\n\r\nYes\r\n", "Yes"),
        ("\u00a0\nAccept", "Accept"),
        ("> Accept\nOn top", ""),
        ("On Thu, 26 Nov 2026 at 06:26, Kari <calendar@share.example.org> wrote:\n> Accept", ""),
        ("-----Original Message-----\nAccept", ""),
        ("-----Opprinnelig melding-----\nGodta", ""),
        ("________________________________\nFra: Kari\nAccept", ""),
        ("From: Kari Nordmann via Calendar <calendar@share.example.org>\nSent: today", ""),
        ("Fra: Kari Nordmann via Calendar <calendar@share.example.org>\nSendt: i dag", ""),
        ("", ""),
        ("\n \n\t\n", ""),
    ],
)
def test_first_words(text: str, line: str) -> None:
    assert first_words(text) == line


@pytest.mark.parametrize(
    "text",
    [
        "Den 26.11.2026 kl. 06:26 skrev Kari Nordmann via Calendar:\n> Godta",  # Thunderbird nb
        "tor. 26. nov. 2026 kl. 06:26 skrev Kari Nordmann <calendar@share.example.org>:\n> Ja",
        "Am 26.11.2026 um 06:26 schrieb Kari Nordmann:\n> Accept",  # Thunderbird de
        "On 26 Nov 2026, at 06:26, Kari Nordmann <calendar@share.example.org> wrote:\n> Yes",
    ],
)
def test_an_attribution_line_is_no_answer(text: str) -> None:
    """Nothing written above the quote: whatever the client's "X wrote:" line, no answer."""
    assert answer_in_words(first_words(text)) is None


@pytest.mark.parametrize(
    "text",
    [
        "Accept",
        "accept",
        "ACCEPT",
        "Accept.",
        "  accept  ",
        "Accepted",
        "I accept",
        "Yes",
        "yes",
        "Yes!",
        "YES!!!",
        "Yes, please",
        "Yes please, thank you",
        "OK",
        "Ok.",
        "Okay!",
        "Godta",
        "GODTA",
        "godtar",
        "Jeg godtar",
        "Ja",
        "ja",
        "Ja!",
        "Ja takk",
        "ja takk!",
        "Ja, gjerne",
        "Ja takk 🙂",
    ],
)
def test_accepting_words(text: str) -> None:
    assert answer_in_words(text) == ACCEPT


@pytest.mark.parametrize(
    "text",
    [
        "Decline",
        "decline",
        "DECLINE.",
        "Declined",
        "I decline",
        "No",
        "no",
        "No.",
        "no thanks",
        "No thanks!",
        "No, thank you",
        "Nei",
        "NEI",
        "Nei takk",
        "nei takk.",
        "Avslå",
        "AVSLÅ",
        "avslår",
        "Jeg avslår",
    ],
)
def test_declining_words(text: str) -> None:
    assert answer_in_words(text) == DECLINE


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "not now",
        "Not now, maybe later",
        "Nope",
        "Maybe",
        "Sure thing",
        "yesterday I was away",
        "nothing to add",
        "Okapi",
        "Janne here",
        "Neither",
        "accepting",
        "declines",
        "I'd like to think about it",
        "I don't accept",
        "Yes yes yes yes yes yes yes",
        ":+1:",
        "Hi folks",
    ],
)
def test_words_that_are_no_answer(text: str) -> None:
    assert answer_in_words(text) is None


@pytest.mark.parametrize(
    ("text", "not_this"),
    [
        # A common English reply that means yes.
        ("No problem, happy to!", DECLINE),
        # Norwegian "Nei, så hyggelig!" is "Oh, how nice!", not a no.
        ("Nei, så hyggelig!", DECLINE),
        # Starting with an answer word is not saying it.
        ("OK, but I'd rather not", ACCEPT),
        ("Yes? What is this?", ACCEPT),
    ],
)
def test_sentences_that_only_begin_with_an_answer_word(text: str, not_this: str) -> None:
    assert answer_in_words(text) != not_this


@pytest.mark.parametrize(
    ("markup", "words"),
    [
        ("<div>Yes</div><blockquote>Accept</blockquote>", "Yes"),
        ('<div dir="ltr">Yes</div><br><div class="gmail_quote">Decline</div>', "Yes"),
        ('<div class="gmail_quote gmail_quote_container">Accept</div>', ""),
        ('<blockquote type="cite"><div>On … wrote:</div>Accept</blockquote>', ""),
        ('<div id="divRplyFwdMsg" dir="ltr"><b>From:</b> Kari<br>Accept</div>', ""),
        ('<div class="yahoo_quoted">Accept</div>', ""),
        ("<style>p{}</style><script>Accept</script><p>Nei</p>", "Nei"),
        ("<html><head><title>Accept</title></head><body><p>Avslå</p></body></html>", "Avslå"),
        ("<p>Ja&nbsp;takk</p>", "Ja\u00a0takk"),
        ("<p>Yes &amp; thanks</p>", "Yes & thanks"),
        ("<p>Godta<br>Hilsen Ola</p>", "Godta"),
    ],
)
def test_html_to_text(markup: str, words: str) -> None:
    assert first_words(html_to_text(markup)) == words.strip()


@pytest.mark.parametrize(
    "markup",
    ["<div <<<>>> </", "<!-- never closed Accept", "<![CDATA[ x", "</div></p></b>", "<" * 1000],
)
def test_html_to_text_takes_broken_markup(markup: str) -> None:
    assert isinstance(html_to_text(markup), str)


def _mime(raw: str) -> Message:
    return parse_mail(raw.encode("utf-8")).message


def test_body_text_prefers_plain_over_html() -> None:
    message = _mime(
        "From: bob@example.com\nContent-Type: multipart/alternative; boundary=b\n\n"
        "--b\nContent-Type: text/html\n\n<p>Decline</p>\n"
        "--b\nContent-Type: text/plain\n\nAccept\n--b--\n"
    )
    assert body_text(message).strip() == "Accept"


def test_body_text_reads_html_when_there_is_no_plain() -> None:
    message = _mime(
        "From: bob@example.com\nContent-Type: text/html; charset=utf-8\n\n"
        '<div dir="ltr">Ja takk</div><div class="gmail_quote">Avslå</div>\n'
    )
    assert first_words(body_text(message)) == "Ja takk"


def test_body_text_skips_attachments() -> None:
    message = _mime(
        "From: bob@example.com\nContent-Type: multipart/mixed; boundary=m\n\n"
        "--m\nContent-Type: text/plain; name=notes.txt\nContent-Disposition: attachment\n\n"
        "Decline\n"
        "--m\nContent-Type: text/html\n\n<p>Accept</p>\n--m--\n"
    )
    assert first_words(body_text(message)) == "Accept"


def test_body_text_of_a_message_without_text() -> None:
    message = _mime("From: bob@example.com\nContent-Type: image/png\n\niVBORw0KGgo=\n")
    assert body_text(message) == ""


@pytest.mark.parametrize(
    ("charset", "body", "words", "kind"),
    [
        ("iso-8859-1", "Avslå".encode("iso-8859-1"), "Avslå", DECLINE),
        ("ISO-8859-1", "Godta – ja".encode(), None, None),  # mislabelled: no crash
        ("windows-1252", "Avslå \u2013 takk".encode("cp1252"), "Avslå \u2013 takk", DECLINE),
        ("x-klingon", b"Godta", "Godta", ACCEPT),  # unknown: read as UTF-8
        ("utf-8", b"Ja \xff\xfe takk", None, None),  # invalid bytes: replaced
        ("", b"Accept", "Accept", ACCEPT),
        ("utf-16", "Nei".encode("utf-16"), "Nei", DECLINE),
    ],
)
def test_charsets(charset: str, body: bytes, words: str | None, kind: str | None) -> None:
    content_type = f"text/plain; charset={charset}" if charset else "text/plain"
    raw = (
        f"From: ingrid@example.no\r\nTo: {SHARE_TO}\r\nContent-Type: {content_type}\r\n"
        "Content-Transfer-Encoding: 8bit\r\n\r\n"
    ).encode() + body
    verdict = classify_bytes(raw)
    assert verdict.kind in KINDS
    if words is not None:
        assert first_words(body_text(parse_mail(raw).message)) == words
        assert verdict.kind == kind


@pytest.mark.parametrize(
    ("charset", "body"),
    [
        ("idna", b"Accept"),  # the decoder refuses errors="replace": UnicodeError
        ("undefined", b"Accept"),  # a codec that always raises UnicodeError
        ("punycode", b"\xff\xfeAccept"),  # UnicodeDecodeError on non-ASCII bytes
        ('"utf-8\x00"', b"Accept"),  # ValueError: embedded null character
    ],
)
def test_charset_naming_a_codec_that_cannot_replace(charset: str, body: bytes) -> None:
    """Charset names Python's codec lookup accepts (or chokes on) but cannot decode with."""
    head = f"From: a@example.com\nContent-Type: text/plain; charset={charset}\n\n"
    verdict = classify_bytes(head.encode() + body)
    assert verdict.kind in KINDS


def test_quoted_printable_and_base64_bodies() -> None:
    quote = f"Den 26.11.2026 skrev Kari:\n> For å godta: mailto:{ACCEPT_TO}\n> Godta\n"
    message = EmailMessage()
    message["From"] = "ingrid.dahl@example.no"
    message.set_content("Avslå\n\n" + quote, charset="iso-8859-1", cte="quoted-printable")
    assert b"Avsl=E5" in bytes(message)
    assert classify_bytes(bytes(message)).kind == DECLINE
    message = EmailMessage()
    message["From"] = "ola@example.no"
    message.set_content("Godta 🙂\n\n" + QUOTED_INVITATION, cte="base64")
    assert classify_bytes(bytes(message)).kind == ACCEPT


def test_line_end_normalisation() -> None:
    assert normalize_line_ends(b"a\rb\nc\r\nd\n\r") == b"a\r\nb\r\nc\r\nd\r\n\r\n"
    assert normalize_line_ends(b"") == b""


@pytest.mark.parametrize("line_end", [b"\n", b"\r", b"\r\n"])
def test_bare_line_ends_parse_the_same(line_end: bytes) -> None:
    lines = [
        b"From: Ola Nordmann <ola.nordmann@example.no>",
        b"To: " + SHARE_TO.encode(),
        b"Subject: SV: Kari",
        b"",
        b"Godta",
        b"",
        b"> Decline",
    ]
    mail = parse_mail(line_end.join(lines))
    assert b"\r\n" in mail.raw and b"\r\r" not in mail.raw
    verdict = classify(mail, mail_from="ola@example.no", recipient=SHARE_TO, domain=DOMAIN)
    assert (verdict.kind, verdict.sender) == (ACCEPT, "ola.nordmann@example.no")


def test_message_without_message_id_gets_a_stable_one() -> None:
    raw = b"From: ola@example.no\nTo: x@example.org\nSubject: hi\n\nGodta\n"
    first, again = parse_mail(raw), parse_mail(raw)
    assert re.fullmatch(r"<sha256-[0-9a-f]{40}@calshare\.invalid>", first.message_id)
    assert first.message_id == again.message_id
    assert parse_mail(raw.replace(b"\n", b"\r\n")).message_id == first.message_id
    assert parse_mail(raw.replace(b"Godta", b"Avsla")).message_id != first.message_id
    verdict = classify(first, mail_from="ola@example.no", recipient=SHARE_TO, domain=DOMAIN)
    assert verdict.message_id == first.message_id


def test_message_id_is_taken_as_written() -> None:
    mail = parse_mail(b"Message-ID:\n <abc@example.no>\nFrom: a@example.no\n\nx\n")
    assert mail.message_id == "<abc@example.no>"


def test_token_in_an_address_of_any_case() -> None:
    verdict = classify_bytes(make_mail("Yes"), recipient=SHARE_TO.upper())
    assert (verdict.kind, verdict.token) == (ACCEPT, TOKEN)


@pytest.mark.parametrize(
    "recipient", [f"share+{TOKEN[:-1]}@{DOMAIN}", f"share+{TOKEN}x@{DOMAIN}", f"share+@{DOMAIN}"]
)
def test_no_token_in_a_malformed_address(recipient: str) -> None:
    verdict = classify_bytes(make_mail("Yes"), recipient=recipient)
    assert (verdict.kind, verdict.token) == (UNKNOWN, None)


def test_token_from_the_body_when_sent_to_an_operator_address() -> None:
    verdict = classify_bytes(
        make_mail("Yes\n\n" + QUOTED_INVITATION, to=OPERATOR), recipient=OPERATOR
    )
    assert (verdict.kind, verdict.token) == (ACCEPT, TOKEN)


def test_token_from_the_subject_when_sent_to_an_operator_address() -> None:
    raw = make_mail("Ja", to=OPERATOR, subject=f"Re: invitation share+{TOKEN.upper()}@{DOMAIN}")
    verdict = classify_bytes(raw, recipient=OPERATOR)
    assert (verdict.kind, verdict.token) == (ACCEPT, TOKEN)


@pytest.mark.parametrize(
    "body",
    [
        f"Yes\n\n> mailto:accept+{TOKEN}@evil.example",  # another domain
        f"Yes\n\n> mailto:accept+{TOKEN[:25]}@{DOMAIN}",  # too short
        f"Yes\n\n> mailto:accept+{TOKEN[:25]}1@{DOMAIN}",  # 1 is not base32
        "Yes",
    ],
)
def test_no_token_in_the_body(body: str) -> None:
    verdict = classify_bytes(make_mail(body, to=OPERATOR), recipient=OPERATOR)
    assert (verdict.kind, verdict.token) == (UNKNOWN, None)


@pytest.mark.parametrize(
    ("first_line", "kind"),
    [
        ("Nei", DECLINE),
        ("Decline", DECLINE),
        ("Ja", ACCEPT),
        ("I'd like to think about it", UNKNOWN),
        ("", UNKNOWN),
    ],
)
def test_words_decide_when_the_token_is_only_quoted(first_line: str, kind: str) -> None:
    """Sent to an operator address: the quoted mailto link's form (accept+, listed first in
    the invitation) says nothing about the answer; the person's first line does."""
    raw = make_mail(f"{first_line}\n\n{QUOTED_INVITATION}", to=OPERATOR)
    verdict = classify_bytes(raw, recipient=OPERATOR)
    assert (verdict.kind, verdict.token) == (kind, TOKEN), verdict


@pytest.mark.parametrize(
    ("form", "first_line", "kind"),
    [
        ("accept", "Hmm.", UNKNOWN),  # the decline link quoted: no answer in the words
        ("accept", "Nei", DECLINE),
        ("decline", "Ja", ACCEPT),
        ("decline", "", UNKNOWN),
    ],
)
def test_an_address_form_without_its_own_token_does_not_decide(
    form: str, first_line: str, kind: str
) -> None:
    """accept+<not a token> quoting only the decline link is no accept: a token from quoted
    text says nothing about which link was meant, so only the words decide."""
    other = "decline" if form == "accept" else "accept"
    quoted = f"> To {other}: mailto:{other}+{TOKEN}@{DOMAIN}?subject=x\n"
    recipient = f"{form}+nonsense@{DOMAIN}"
    raw = make_mail(f"{first_line}\n\n{quoted}", to=recipient, subject="Re: Team")
    verdict = classify_bytes(raw, recipient=recipient)
    assert (verdict.kind, verdict.token) == (kind, TOKEN), verdict


def test_a_delivery_report_names_its_recipients() -> None:
    reported = {
        path.name: reported_recipients(parse_mail(path.read_bytes()).message) for path in BOUNCES
    }
    assert reported["dsn_01.eml"] == ("jimmymcegypt@go.com", "jimmymcegypt@sims-ms-daemon")
    assert reported["dsn_09.eml"] == ("pr@allen-heath.com",)  # the x400 one is not an address
    assert reported["dsn_11.eml"] == ("joem@example.com",)  # three times, once
    assert reported["qmail_02.eml"] == ()  # not a standard report: names no one
    verdict = verdict_of(read("postfix_dsn_quotes_invitation.eml"))
    assert verdict.kind == BOUNCE and verdict.reported


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({"Auto-Submitted": "auto-replied"}, "Auto-Submitted"),
        ({"Auto-Submitted": "auto-generated; owner-email=ola@example.no"}, "Auto-Submitted"),
        ({"Auto-Submitted": "Auto-Notified"}, "Auto-Submitted"),
        ({"X-Autoreply": "yes"}, "X-Autoreply"),
        ({"X-Autorespond": "Out of office"}, "X-Autorespond"),
        ({"Precedence": "bulk"}, "Precedence"),
        ({"Precedence": "Junk"}, "Precedence"),
        ({"Precedence": "list"}, "Precedence"),
        ({"X-MS-Exchange-Generated-Message-Source": "Mailbox Rules Agent"}, "Exchange"),
        ({"List-Id": "<team.example.org>"}, "mailing-list"),
    ],
)
def test_auto_reply_headers(headers: dict[str, str], reason: str) -> None:
    verdict = classify_bytes(make_mail("Yes", headers=headers), recipient=ACCEPT_TO)
    assert verdict.kind == AUTO_REPLY
    assert reason in verdict.reason


@pytest.mark.parametrize(
    "subject",
    [
        "Automatic reply: Kari shared the calendar",
        "Automatisk svar: Kari har delt kalenderen",
        "Autosvar: Kari",
        "Out of Office: Kari",
        "Out of Office AutoReply: Kari",
        "Abwesenheitsnotiz: Kari",
        "Fravær: Kari",
        "Re: Automatic reply: Kari",
    ],
)
def test_auto_reply_subjects(subject: str) -> None:
    verdict = classify_bytes(make_mail("Yes", subject=subject), recipient=ACCEPT_TO)
    assert verdict.kind == AUTO_REPLY


def test_auto_submitted_no_is_a_person() -> None:
    raw = make_mail("Yes", headers={"Auto-Submitted": "no"})
    assert classify_bytes(raw).kind == ACCEPT


def test_null_sender_is_never_an_answer() -> None:
    verdict = classify_bytes(make_mail("Yes"), recipient=ACCEPT_TO, mail_from="<>")
    assert (verdict.kind, verdict.reason) == (AUTO_REPLY, "null sender")


@pytest.mark.parametrize(
    ("headers", "mail_from"),
    [
        ({"Content-Type": "multipart/report; report-type=delivery-status; boundary=x"}, "a@b.c"),
        ({}, "MAILER-DAEMON@mx.example.no"),
        ({"Return-Path": "<postmaster@example.no>"}, "a@b.c"),
    ],
)
def test_bounce_shapes(headers: dict[str, str], mail_from: str) -> None:
    if "Content-Type" in headers:
        raw = (
            f"From: a@b.c\nContent-Type: {headers['Content-Type']}\n\n--x\n"
            "Content-Type: text/plain\n\nAccept\n--x--\n"
        ).encode()
    else:
        raw = make_mail("Accept", headers=headers)
    verdict = classify_bytes(raw, recipient=ACCEPT_TO, mail_from=mail_from)
    assert (verdict.kind, verdict.weak) == (BOUNCE, False)  # a report, or from a daemon


def test_a_bounce_by_its_subject_alone_is_weak() -> None:
    """Anyone can write "Returned mail" in a subject: the verdict says so in a field,
    which is what decides (calshare.answers), not the words of its reason."""
    raw = make_mail("Your mail could not be sent", subject="Returned mail: see transcript")
    verdict = classify_bytes(raw, recipient=SHARE_TO, mail_from="ola@example.no")
    assert (verdict.kind, verdict.weak, verdict.token) == (BOUNCE, True, TOKEN)
    to_key = classify_bytes(raw, recipient=f"bounces+{'0' * 32}@{DOMAIN}", mail_from="")
    assert (to_key.kind, to_key.weak) == (BOUNCE, False)  # its address says it is a bounce


# --- Authentication-Results -----------------------------------------------------------

OURS = "mx.share.example.org"


def _with_results(*values: str, author: str = "ola@example.no") -> Message:
    head = "".join(f"Authentication-Results: {value}\n" for value in values)
    raw = f"{head}From: Ola <{author}>\nSubject: x\n\nGodta\n"
    return message_from_bytes(raw.encode(), policy=policy.default)


def passes(message: Message, require: str, author: str | None = "ola@example.no") -> bool:
    return authresults.passes(message, require=require, authserv_id=OURS, author=author)


def test_auth_none_required() -> None:
    assert passes(_with_results(), "none", author=None)


def test_auth_without_author_or_header() -> None:
    assert not passes(_with_results(f"{OURS}; dmarc=pass header.from=example.no"), "dmarc", None)
    assert not passes(_with_results(), "dmarc")
    assert not passes(_with_results(), "dkim")


@pytest.mark.parametrize(
    "value",
    [
        f"{OURS}; dmarc=pass (p=reject dis=none) header.from=example.no",
        f"{OURS}; spf=pass smtp.mailfrom=example.no; dkim=pass header.d=example.no; dmarc=pass",
        f"{OURS.upper()}; DMARC=PASS header.from=example.no",
        f"{OURS} 1; dmarc=pass header.from=example.no",
        f"{OURS};dmarc=pass header.from=example.no",
    ],
)
def test_auth_dmarc_pass_from_our_server(value: str) -> None:
    assert passes(_with_results(value), "dmarc")


def test_auth_only_the_topmost_of_ours_counts() -> None:
    """Ours (added last, on top) failed; a forged one lower down with our id says pass."""
    message = _with_results(
        f"{OURS}; dkim=none; dmarc=fail (p=none) header.from=example.no",
        f"{OURS}; dkim=pass header.d=example.no; dmarc=pass header.from=example.no",
    )
    assert not passes(message, "dmarc")
    assert not passes(message, "dkim")


def test_auth_ours_says_nothing_a_forged_one_below_says_pass() -> None:
    message = _with_results(f"{OURS}; none", f"{OURS}; dmarc=pass header.from=example.no")
    assert not passes(message, "dmarc")


def test_auth_other_servers_do_not_count() -> None:
    message = _with_results(
        "mx.google.com; dkim=pass header.d=example.no; dmarc=pass header.from=example.no",
        f"{OURS}.evil.example; dmarc=pass header.from=example.no",
        f"evil.{OURS}; dmarc=pass",
    )
    assert not passes(message, "dmarc")
    assert not passes(message, "dkim")


def test_auth_another_server_above_ours() -> None:
    message = _with_results(
        "relay.example.net; dmarc=fail", f"{OURS}; dmarc=pass header.from=example.no"
    )
    assert passes(message, "dmarc")


@pytest.mark.parametrize(
    ("dkim", "author", "ok"),
    [
        ("dkim=pass header.d=example.no header.s=sel1", "ola@example.no", True),
        ("dkim=pass header.d=example.no", "ola@mail.example.no", True),  # relaxed
        ("dkim=pass header.d=EXAMPLE.NO.", "ola@example.no", True),
        ("dkim=pass header.i=@example.no", "ola@example.no", True),
        ("dkim=pass header.d=mail.example.no", "ola@example.no", False),
        ("dkim=pass header.d=notexample.no", "ola@example.no", False),
        ("dkim=pass header.d=example.no.evil.example", "ola@example.no", False),
        ("dkim=pass header.d=evil.example", "ola@example.no", False),
        ("dkim=fail header.d=example.no", "ola@example.no", False),
        ("dkim=pass", "ola@example.no", False),
        ("dkim=pass header.d=evil.example; dkim=fail header.d=example.no", "ola@example.no", False),
        ("dkim=fail header.d=evil.example; dkim=pass header.d=example.no", "ola@example.no", True),
    ],
)
def test_auth_dkim_alignment(dkim: str, author: str, ok: bool) -> None:
    assert passes(_with_results(f"{OURS}; {dkim}", author=author), "dkim", author) is ok


@pytest.mark.parametrize(
    ("dkim", "author", "ok"),
    [
        # a public suffix is the parent of every domain under it, and no one owns it
        ("dkim=pass header.d=co.uk", "ola@example.co.uk", False),
        ("dkim=pass header.d=no", "ola@example.no", False),
        ("dkim=pass header.i=@co.uk", "ola@example.co.uk", False),
        ("dkim=pass header.d=github.io", "ola@example.github.io", False),  # a private suffix
        ("dkim=pass header.d=example.co.uk", "ola@mail.example.co.uk", True),
        ("dkim=pass header.d=example.github.io", "ola@example.github.io", True),
    ],
)
def test_auth_dkim_alignment_stops_at_public_suffixes(dkim: str, author: str, ok: bool) -> None:
    assert passes(_with_results(f"{OURS}; {dkim}", author=author), "dkim", author) is ok


@pytest.mark.parametrize(
    ("dkim", "author", "ok"),
    [
        # header.i is [local-part]@domain (RFC 6376 §3.5): the domain is after the last @
        ("dkim=pass header.i=ola@example.no", "ola@example.no", True),
        ("dkim=pass header.i=ola@mail.example.no", "ola@mail.example.no", True),
        ('dkim=pass header.i="o;la"@example.no', "ola@example.no", True),
        ("dkim=pass header.i=example.no@evil.example", "ola@example.no", False),
        ("dkim=pass header.i=ola@evil.example", "ola@example.no", False),
        ('dkim=pass header.d="example.no"', "ola@example.no", True),
        # d= is the signer; i= is checked against d= by the verifier, not by us
        ("dkim=pass header.d=evil.example header.i=@example.no", "ola@example.no", False),
    ],
)
def test_auth_dkim_identity_is_read_as_an_address(dkim: str, author: str, ok: bool) -> None:
    assert passes(_with_results(f"{OURS}; {dkim}", author=author), "dkim", author) is ok


@pytest.mark.parametrize(
    ("peer", "networks", "trusted"),
    [
        (("127.0.0.1", 2525), ("127.0.0.1/32",), True),
        (("127.0.0.2", 2525), ("127.0.0.1/32",), False),
        (("10.1.2.3", 25), ("10.0.0.0/8",), True),
        (("::ffff:127.0.0.1", 25, 0, 0), ("127.0.0.1/32",), True),  # a dual-stack listener
        (("::1", 25, 0, 0), ("127.0.0.1/32",), False),
        (("::1", 25, 0, 0), ("::1/128",), True),
        (("127.0.0.1", 25), (), False),
        ("/run/calshare.sock", ("127.0.0.1/32",), False),
        (None, ("127.0.0.1/32",), False),
    ],
)
def test_auth_only_trusted_peers_may_vouch(
    peer: object, networks: tuple[str, ...], trusted: bool
) -> None:
    assert authresults.peer_trusted(peer, networks) is trusted


def test_auth_each_requirement_wants_its_own_method() -> None:
    only_dkim = _with_results(f"{OURS}; dkim=pass header.d=example.no; dmarc=none")
    only_dmarc = _with_results(f"{OURS}; dkim=none; dmarc=pass header.from=example.no")
    assert not passes(only_dkim, "dmarc")
    assert not passes(only_dmarc, "dkim")
    assert not passes(_with_results(f"{OURS}; spf=pass smtp.mailfrom=example.no"), "dmarc")


@pytest.mark.parametrize(
    "value",
    [
        # The envelope sender is the attacker's; a quoted local part may hold ";" and then
        # anything. Rspamd and others copy it into smtp.mailfrom and into a comment.
        f'{OURS}; dkim=none; spf=pass (domain of "x;dmarc=pass"@evil.example designates '
        f'192.0.2.1 as permitted sender) smtp.mailfrom="x;dmarc=pass"@evil.example; '
        "dmarc=fail (p=reject) header.from=example.no",
        # A comment is not a result.
        f"{OURS}; dkim=none; dmarc=fail (said: x; dmarc=pass) header.from=example.no",
    ],
)
def test_auth_results_hidden_in_quotes_or_comments_do_not_count(value: str) -> None:
    assert not passes(_with_results(value), "dmarc")


def test_auth_dmarc_must_have_judged_the_from_we_read() -> None:
    other = _with_results(f"{OURS}; dmarc=pass header.from=evil.example")
    assert not passes(other, "dmarc")
    assert passes(_with_results(f"{OURS}; dmarc=pass header.from=EXAMPLE.NO"), "dmarc")


def test_auth_two_from_headers_never_pass() -> None:
    # which From did the server judge? Ours reads one; a DMARC verifier may read the other
    value = f"{OURS}; dmarc=pass header.from=example.no; dkim=pass header.d=example.no"
    raw = (
        f"Authentication-Results: {value}\nFrom: ola@example.no\nFrom: mallory@evil.example\n\nx\n"
    )
    message = message_from_bytes(raw.encode(), policy=policy.default)
    assert not passes(message, "dmarc")
    assert not passes(message, "dkim")


def test_auth_deeply_nested_comments_are_read_in_one_pass() -> None:
    # a sender-chosen value nested 40,000 deep: stripped whole, and the real result still read
    nested = "(" * 40_000 + "dmarc=pass" + ")" * 40_000
    fail = _with_results(f"{OURS}; spf=pass {nested} smtp.mailfrom=x; dmarc=fail")
    assert not passes(fail, "dmarc")
    good = _with_results(f"{OURS}; spf=pass {nested} smtp.mailfrom=x; dmarc=pass")
    assert passes(good, "dmarc")


# --- 4. Robustness -------------------------------------------------------------------

RECIPIENTS = [ACCEPT_TO, DECLINE_TO, SHARE_TO, OPERATOR, f"bounces+{BOUNCE_KEY}@{DOMAIN}", ""]
SENDERS = ["", "MAILER-DAEMON", "ola@example.no", "<>", "\x00"]
HEADER_NAMES = [
    "From",
    "To",
    "Cc",
    "Subject",
    "Message-ID",
    "Return-Path",
    "Content-Type",
    "Content-Transfer-Encoding",
    "Content-Disposition",
    "MIME-Version",
    "Auto-Submitted",
    "Precedence",
    "X-Autoreply",
    "List-Id",
    "Authentication-Results",
    "Delivered-To",
    "X-MS-Exchange-Inbox-Rules-Loop",
    "X-Weird",
]
CHARSETS = [
    "utf-8",
    "iso-8859-1",
    "windows-1252",
    "utf-16",
    "utf-7",
    "x-unknown",
    "",
    '"utf-8',
    "utf-8\x00",
    "base64",
    "rot13",
    "idna",
    "undefined",
    "punycode",
    "unicode_escape",
]
ENCODINGS = ["7bit", "8bit", "base64", "quoted-printable", "binary", "x-uuencode", "bogus", ""]


def _pipeline(raw: bytes, recipient: str, mail_from: str) -> Verdict:
    """What the daemon does with each message: parse, classify, check authentication."""
    mail = parse_mail(raw)
    verdict = classify(mail, mail_from=mail_from, recipient=recipient, domain=DOMAIN)
    assert verdict.kind in KINDS
    assert isinstance(verdict.reason, str)
    assert isinstance(verdict.message_id, str) and verdict.message_id
    for require in ("dmarc", "dkim"):
        assert authresults.passes(
            mail.message, require=require, authserv_id=OURS, author=verdict.sender
        ) in (True, False)
    return verdict


header_values = st.one_of(
    st.text(max_size=200),
    st.binary(max_size=200).map(lambda b: b.decode("latin-1")),
    st.sampled_from(
        [
            "multipart/mixed; boundary=",
            "multipart/report; report-type=delivery-status",
            "text/plain; charset*=utf-8''%ff%fe",
            "text/html; charset=idna",
            '"unterminated <a@b',
            "=?utf-8?b?!!!?=",
            "=?x-unknown?q?abc?=",
            "<<<@>>>",
            ";;;",
            "(((((a)))))",
            "auto-replied",
            "attachment; filename*=bad'bad'%%",
        ]
    ),
)


@st.composite
def mime_tree(draw: st.DrawFn, depth: int = 0) -> bytes:
    """A MIME entity with random types, charsets, encodings, boundaries, some broken."""
    kind = draw(st.sampled_from(["leaf", "leaf", "multipart"] if depth < 6 else ["leaf"]))
    boundary = draw(st.sampled_from(["b", "B1", "==x==", "", "a b", "-" * 80])) + str(depth)
    if kind == "multipart":
        subtype = draw(st.sampled_from(["mixed", "alternative", "report", "related", "x"]))
        children = draw(st.lists(mime_tree(depth + 1), max_size=3))
        # Sometimes a wrong or missing boundary line, or no closing one.
        sep = draw(st.sampled_from([boundary, boundary, boundary + "x", ""])).encode()
        body = b"".join(b"--" + sep + b"\r\n" + child + b"\r\n" for child in children)
        if draw(st.booleans()):
            body += b"--" + sep + b"--\r\n"
        head = f'Content-Type: multipart/{subtype}; boundary="{boundary}"\r\n'.encode()
        return head + b"\r\n" + body
    content_type = draw(
        st.sampled_from(
            ["text/plain", "text/html", "message/rfc822", "message/delivery-status", "image/png"]
        )
    )
    charset = draw(st.sampled_from(CHARSETS))
    encoding = draw(st.sampled_from(ENCODINGS))
    payload = draw(
        st.one_of(
            st.sampled_from(
                [
                    b"Accept",
                    b"<div>Yes</div><blockquote>Decline</blockquote>",
                    b"QWNjZXB0",
                    b"!!!not base64===",
                    b"Avsl=E5=\r\n=XY",
                    b"\x00\x00Nei\x00",
                    b"\xff\xfe\x00A",
                    f"mailto:accept+{TOKEN}@{DOMAIN}".encode(),
                ]
            ),
            st.binary(max_size=300),
        )
    )
    head = f"Content-Type: {content_type}; charset={charset}\r\n"
    head += f"Content-Transfer-Encoding: {encoding}\r\n"
    return head.encode("utf-8", "surrogateescape") + b"\r\n" + payload


@st.composite
def messages(draw: st.DrawFn) -> bytes:
    headers = draw(st.lists(st.tuples(st.sampled_from(HEADER_NAMES), header_values), max_size=8))
    head = b"".join(
        name.encode() + b": " + value.encode("utf-8", "surrogatepass") + b"\r\n"
        for name, value in headers
    )
    line_end = draw(st.sampled_from([b"\r\n", b"\n", b"\r"]))
    return (head + draw(mime_tree())).replace(b"\r\n", line_end)


FUZZ = settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@FUZZ
@given(
    raw=st.binary(max_size=3000),
    recipient=st.sampled_from(RECIPIENTS),
    mail_from=st.sampled_from(SENDERS),
)
def test_fuzz_arbitrary_bytes(raw: bytes, recipient: str, mail_from: str) -> None:
    _pipeline(raw, recipient, mail_from)


@FUZZ
@given(raw=messages(), recipient=st.sampled_from(RECIPIENTS), mail_from=st.sampled_from(SENDERS))
def test_fuzz_broken_mime(raw: bytes, recipient: str, mail_from: str) -> None:
    verdict = _pipeline(raw, recipient, mail_from)
    if recipient.startswith("bounces+"):
        assert verdict.kind in (BOUNCE, AUTO_REPLY)


@FUZZ
@given(
    name=st.sampled_from(sorted(REPLIES) + sorted(AUTOMATIC)),
    cut=st.integers(min_value=0, max_value=20000),
    junk=st.binary(max_size=40),
    recipient=st.sampled_from(RECIPIENTS),
)
def test_fuzz_damaged_fixtures(name: str, cut: int, junk: bytes, recipient: str) -> None:
    """A real client's mail, cut short and with junk spliced in: still a verdict."""
    raw = (MAIL / name).read_bytes()
    cut = min(cut, len(raw))
    verdict = _pipeline(raw[:cut] + junk + raw[cut:], recipient, "ola@example.no")
    if name in AUTOMATIC and verdict.kind in ANSWERS:
        # Damage may hide what made it automatic, but only by cutting the headers away.
        assert cut <= raw.index(b"\n\n")


def _nested(depth: int) -> bytes:
    body = b"Content-Type: text/plain\r\n\r\nAccept\r\n"
    for level in range(depth):
        boundary = b"b%d" % level
        body = (
            b"Content-Type: multipart/mixed; boundary="
            + boundary
            + b"\r\n\r\n--"
            + boundary
            + b"\r\n"
            + body
            + b"\r\n--"
            + boundary
            + b"--\r\n"
        )
    return b"From: a@example.com\r\nMIME-Version: 1.0\r\n" + body


def _nested_comment(header_name: str, prefix: str, depth: int) -> bytes:
    value = prefix + "(" * depth + ")" * depth
    return f"From: a@example.com\r\n{header_name}: {value}\r\n\r\nAccept\r\n".encode()


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(_nested(50), id="multipart-50-deep"),
        pytest.param(_nested(1200), id="multipart-1200-deep"),
        pytest.param(
            b"From: a@example.com (" + b"(" * 600 + b")" * 600 + b")\r\n\r\nAccept\r\n",
            id="from-comment-600-deep",
        ),
        pytest.param(
            _nested_comment("Content-Type", "text/plain; charset=utf-8 ", 600),
            id="content-type-comment-600-deep",
        ),
        pytest.param(
            _nested_comment("Content-Disposition", "inline ", 600),
            id="content-disposition-comment-600-deep",
        ),
        pytest.param(
            _nested_comment("Message-ID", "<a@example.com> ", 3000),
            id="message-id-comment-3000-deep",
        ),
        pytest.param(
            b"From: a@example.com\r\nSubject: " + b"x" * 1_000_000 + b"\r\n\r\nAccept\r\n",
            id="subject-1MB",
        ),
        pytest.param(
            b"".join(b"X-H%d: v\r\n" % i for i in range(20000)) + b"From: a@b.c\r\n\r\nYes\r\n",
            id="20000-headers",
        ),
        pytest.param(b"\x00" * 10000, id="nul-bytes"),
        pytest.param(b"From: a@b.c\x00\r\nSubject: Accept:\x00\r\n\r\nYes\x00\r\n", id="nul-mixed"),
        pytest.param(
            b"From: a@b.c\r\nContent-Transfer-Encoding: base64\r\n\r\n!!!!====Zm9v===\r\n",
            id="invalid-base64",
        ),
        pytest.param(b"", id="empty"),
        pytest.param(b"\r\n\r\n\r\n", id="only-line-ends"),
    ],
)
def test_hostile_messages_get_a_verdict(raw: bytes) -> None:
    for recipient in (ACCEPT_TO, SHARE_TO, OPERATOR):
        _pipeline(raw, recipient, "a@example.com")


# --- 5. The command line -------------------------------------------------------------

Cli = Callable[..., CliResult]
OUTLOOK_NB_ID = "<AM9PR07MB7170B2C1E0F4A1D33B5E8C7A9D2A2@AM9PR07MB7170.eurprd07.prod.outlook.com>"


def test_cli_classify_json(cli: Cli) -> None:
    result = cli("inbox", "classify", str(MAIL / "outlook_nb_godta.eml"), "--json")
    assert (result.code, result.err) == (0, "")
    shown = result.json()
    assert shown == {
        "kind": ACCEPT,
        "reason": shown["reason"],
        "message_id": OUTLOOK_NB_ID,
        "from": "ola.nordmann@example.no",
        "to": shown["to"],
        "form": "share",
        "token": log_id(TOKEN),
    }
    assert same_address(shown["to"], SHARE_TO)
    assert "Godta" in result.json()["reason"]
    assert re.fullmatch(r"[0-9a-f]{12}", result.json()["token"])


def test_cli_never_prints_the_token(cli: Cli) -> None:
    """Not in "token" (a hash prefix) and not in "to" either: the address holds the token."""
    leaks = []
    for path in sorted(MAIL.glob("*.eml")):
        for extra in ([], ["--json"]):
            result = cli("inbox", "classify", str(path), *extra)
            assert result.code == 0
            if TOKEN in (result.out + result.err).lower():
                leaks.append(f"{path.name} {' '.join(extra)}: {result.out!r}")
    assert not leaks, "\n".join(leaks)


def same_address(shown: str | None, expected: str | None) -> bool:
    """The address the CLI shows: the same form and domain (the token part may be masked)."""
    if shown is None or expected is None:
        return shown == expected
    return shown.split("+")[0] == expected.split("+")[0] and shown.endswith("@" + DOMAIN)


@pytest.mark.parametrize(
    ("name", "kind", "to", "form"),
    [
        ("postfix_dsn_quotes_invitation.eml", BOUNCE, f"bounces+{BOUNCE_KEY}@{DOMAIN}", "bounces"),
        ("exchange_oof_quotes_invitation.eml", AUTO_REPLY, None, None),
        ("gmail_vacation.eml", AUTO_REPLY, SHARE_TO, "share"),
        ("think_about_it.eml", UNKNOWN, SHARE_TO, "share"),
        ("mailto_accept_click.eml", ACCEPT, ACCEPT_TO, "accept"),
    ],
)
def test_cli_classify_finds_the_recipient(
    cli: Cli, name: str, kind: str, to: str | None, form: str | None
) -> None:
    shown = cli("inbox", "classify", str(MAIL / name), "--json").json()
    assert (shown["kind"], shown["form"]) == (kind, form)
    assert same_address(shown["to"], to), shown["to"]


def test_cli_classify_to_override(cli: Cli) -> None:
    path = str(MAIL / "think_about_it.eml")
    shown = cli("inbox", "classify", path, "--to", DECLINE_TO, "--json").json()
    assert (shown["kind"], shown["form"]) == (DECLINE, "decline")
    assert same_address(shown["to"], DECLINE_TO)
    assert shown["token"] == log_id(TOKEN)


def test_cli_classify_from_override(cli: Cli) -> None:
    path = str(MAIL / "think_about_it.eml")
    null = cli("inbox", "classify", path, "--from", "", "--json").json()
    assert (null["kind"], null["reason"]) == (AUTO_REPLY, "null sender")
    daemon = cli("inbox", "classify", path, "--from", "MAILER-DAEMON@mx.example.no", "--json")
    assert daemon.json()["kind"] == BOUNCE


def test_cli_classify_text_output(cli: Cli) -> None:
    result = cli("inbox", "classify", str(MAIL / "gmail_decline.eml"))
    assert result.code == 0
    assert result.out.startswith("decline: ")
    assert result.out.count("\n") == 1


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(_nested(1200), id="multipart-1200-deep"),
        pytest.param(_nested_comment("Content-Type", "text/plain ", 600), id="comment-600-deep"),
        pytest.param(
            b"From: a@example.com\r\nContent-Type: text/plain; charset=idna\r\n\r\nAccept\r\n",
            id="charset-idna",
        ),
    ],
)
def test_cli_classify_hostile_file(cli: Cli, tmp_path: Path, raw: bytes) -> None:
    """A verdict, or one line on stderr and exit 2: never a traceback."""
    path = tmp_path / "hostile.eml"
    path.write_bytes(raw)
    result = cli("inbox", "classify", str(path), "--to", SHARE_TO, "--json")
    if result.code == 0:
        assert result.json()["kind"] in KINDS
    else:
        assert result.code == 2
        assert result.err.count("\n") == 1


@pytest.mark.parametrize("target", ["missing.eml", "a-directory"])
def test_cli_classify_unreadable_file(cli: Cli, tmp_path: Path, target: str) -> None:
    (tmp_path / "a-directory").mkdir()
    result = cli("inbox", "classify", str(tmp_path / target), "--json")
    assert result.code == 2
    assert result.out == ""
    assert result.err.startswith("calshare: error: ")
    assert result.err.count("\n") == 1
