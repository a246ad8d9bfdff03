"""Owner mails send the owner to the page where they act, never to a shell.

Owners are people with a mail address, not operators: a mail that says "run calshare
unshare …" is no use to them. Every mail to an owner (an invitee accepted or declined,
a calendar's source failing or working again) links to the console instead, and none
names a command or a command-line flag, in any language or variant.
"""

from __future__ import annotations

import argparse
import re
from datetime import UTC, datetime

import pytest

from calshare import wording
from calshare.addresses import Mailbox
from calshare.cli import build_parser
from calshare.levels import Level
from calshare.links import ConsolePage, console_url
from mailer import compose
from tests.support.console import ANN, Console, console
from tests.support.inbox import BASE_URL, DOMAIN, Queued, deliver, queued, reply

__all__ = ["console"]

NOW = datetime(2027, 3, 20, 9, 0, tzinfo=UTC)
SENDER = compose.Sender(DOMAIN, Mailbox("calendar@share.example.org", "Calendar"), Mailbox(ANN))
OWNER = Mailbox(ANN, "Ann Demo")
CAUSES = ("auth", "not_found", "html", "redirect_loop", "timeout", "network", "shrunk")
KINDS = {"accept": "owner_accepted", "decline": "owner_declined"}
# owner mails about one invitation: they link to the calendar's People page
PEOPLE_KINDS = ("accepted", "declined", "undeliverable", "held")
COMPANIES = ("google", "outlook", "icloud", "generic")


def commands() -> set[str]:
    """Every command word of the CLI (``calshare calendar add``: calendar, add)."""
    found: set[str] = set()

    def walk(parser: argparse.ArgumentParser) -> None:
        for action in parser._actions:  # argparse keeps its subcommands nowhere public
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    found.add(name)
                    walk(sub)

    walk(build_parser())
    return found


def instructions(text: str) -> list[str]:
    """Anything in ``text`` that tells its reader to run something."""
    words = "|".join(sorted(commands(), key=len, reverse=True))
    told = re.findall(rf"\bcalshare\s+(?:{words})\b[^\n]*", text, re.IGNORECASE)
    return told + re.findall(r"(?<![\w-])--[a-z][a-z-]*", text)


def test_the_scan_finds_what_it_is_there_to_find() -> None:
    assert instructions("stop with: calshare unshare project bob@example.org")
    assert instructions("Kjør calshare calendar refresh project")
    assert instructions("share it with --level titles")
    assert not instructions("calshare can read the source again — nothing to do")
    assert {"unshare", "calendar", "refresh", "share", "publish"} <= commands()


def rendered(kind: str, lang: str, **extra: str) -> compose.OutgoingMail:
    fields = {
        "invitee": "Bob",
        "invitee_address": "bob@example.org",
        "source": "https://calendar.google.com/…",
        "since": "2027-03-19",
        "last_good": "2027-03-18",
        "cause": "",
        "hint": "",
        "answered_by": "carl@example.net",
        **extra,
    }
    link = "owner.people" if kind in PEOPLE_KINDS else "owner.calendars"
    return compose.notice(
        SENDER,
        OWNER,
        kind=kind,
        calendar="project",
        lang=lang,
        now=NOW,
        level=Level.TITLES,
        links=((link, console_url(BASE_URL, 1, ConsolePage.PEOPLE)),),
        extra=fields,
    )


def every_owner_mail() -> list[tuple[str, compose.OutgoingMail]]:
    mails = []
    for lang in wording.LANGUAGES:
        for kind in ("accepted", "declined", "held", "source_recovered"):
            mails.append((f"{kind}-{lang}", rendered(kind, lang)))
        bounced = wording.text("undeliverable.bounced", lang)
        refused = wording.text("undeliverable.refused", lang, detail="550 5.1.1 No such user")
        for name, why in (("bounced", bounced), ("refused", refused)):
            mails.append((f"undeliverable-{name}-{lang}", rendered("undeliverable", lang, why=why)))
        for company in COMPANIES:
            for hint in (f"source.hint.{company}", "source.hint.wait"):
                for cause in CAUSES:
                    said = wording.text(
                        f"source.cause.{cause}",
                        lang,
                        address="The address",
                        status="401",
                        count="1",
                        previous="9",
                    )
                    mail = rendered(
                        "source_failing", lang, cause=said, hint=wording.text(hint, lang)
                    )
                    mails.append((f"source_failing-{lang}-{hint}-{cause}", mail))
    return mails


def test_no_owner_mail_tells_the_owner_to_run_a_command() -> None:
    for name, mail in every_owner_mail():
        text = mail.raw.decode("utf-8", "replace")
        assert instructions(text) == [], name
        for part in PEOPLE_KINDS:
            if name.startswith(part):
                assert "People" in text or "Personer" in text, name


def _answer(console: Console, invitee: str, form: str) -> Queued:
    from calshare.sharing import share

    outcome = share(
        console.store, console.settings, console.clock, "project", invitee, Level.TITLES, owner=ANN
    )
    (invitation,) = queued(console.db_path, "o.message_id = ?", (outcome.message_id,))
    token = re.search(r"share\+([a-z2-7]{26})@", invitation.raw.decode())
    assert token
    recipient = f"{form}+{token[1]}@{DOMAIN}"
    answered = deliver(console.inbox.smtp, reply(to=recipient, sender=invitee), recipient, invitee)
    assert answered.code == 250, answered
    (told,) = queued(
        console.db_path, "o.kind = ? AND o.recipients LIKE ?", (KINDS[form], f"%{ANN}%")
    )
    return told


@pytest.mark.parametrize("form", ["accept", "decline"])
def test_the_owner_is_sent_to_the_people_page(console: Console, form: str) -> None:
    calendar = console.calendar("project")
    told = _answer(console, "bob@example.org", form)
    people = console_url(console.settings.http.base_url, calendar.id, ConsolePage.PEOPLE)
    assert f"{people}\r\n" in told.text  # the plain part: the link on its own line
    html = told.message.get_body(("html",))
    assert html is not None and f'href="{people}"' in str(html.get_content())
    assert instructions(told.raw.decode()) == []
    # and the page is there, for the owner who follows the link
    page = console.client(ANN).get(people.removeprefix(console.settings.http.base_url))
    assert page.status == 200 and "bob@example.org" in page.text
