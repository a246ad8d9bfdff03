"""Sharing through the console in tests: the Share form, answers by SMTP, every status.

For the console's sharing tests and its browser test: an owner shares through the
real page, invitees answer over the daemon's SMTP port as a mail program would.
"""

from __future__ import annotations

import re
from datetime import timedelta

from calshare.lifecycle import mark_undeliverable
from calshare.links import ConsolePage, calendar_page_path
from tests.support.console import ANN, Client, Console
from tests.support.inbox import DOMAIN, Queued, deliver, queued, reply
from tests.support.web import Got

TOKEN = re.compile(r"share\+([a-z2-7]{26})@")
# One invitee per status the People page shows (an address says its status).
EVERY_STATUS = {
    "acc@example.org": "accepted",
    "dec@example.org": "declined",
    "exp@example.org": "expired",
    "und@example.org": "undeliverable",
    "inv@example.org": "invited",
    "rem@example.org": "revoked",
}


def paths(console: Console, name: str = "project") -> tuple[str, str, int]:
    """(Share page, People page, id) of a new calendar of Ann's."""
    calendar = console.calendar(name)
    return (
        calendar_page_path(calendar.id, ConsolePage.SHARE),
        calendar_page_path(calendar.id, ConsolePage.PEOPLE),
        calendar.id,
    )


def share(client: Client, path: str, to: str, level: str = "titles", **more: str) -> Got:
    """Fill in and send the Share form, as a browser does (its page first)."""
    client.get(path)
    return client.post(path, {"to": to, "level": level, "lang": "en", "message": "", **more})


def invitations(console: Console, invitee: str) -> list[Queued]:
    return queued(
        console.db_path, "o.kind = 'invitation' AND o.recipients LIKE ?", (f"%{invitee}%",)
    )


def token_of(mail: Queued) -> str:
    found = TOKEN.search(mail.raw.decode())
    assert found, mail.raw
    return found[1]


def answer(console: Console, invitee: str, form: str) -> None:
    """``form`` (accept or decline) the latest invitation to ``invitee``, by SMTP."""
    recipient = f"{form}+{token_of(invitations(console, invitee)[-1])}@{DOMAIN}"
    answered = deliver(console.inbox.smtp, reply(to=recipient, sender=invitee), recipient, invitee)
    assert answered.code == 250, answered


def accept(console: Console, invitee: str) -> str:
    """Accept by SMTP; the feed URL of the welcome, on the test daemon's port."""
    answer(console, invitee, "accept")
    welcome = queued(
        console.db_path, "o.kind = 'welcome' AND o.recipients LIKE ?", (f"%{invitee}%",)
    )[-1]
    found = re.search(r"https?://\S+/feeds/[a-z2-7]{26}\.ics", welcome.text)
    assert found, welcome.text
    return console.base + found[0][found[0].index("/feeds/") :]


def every_status(console: Console, share_path: str, people_path: str) -> Client:
    """Shares of the calendar in every status (``EVERY_STATUS``), each by its real path:
    the clock passes an invitation's date, invitees answer by mail, a bounce makes one
    undeliverable, the owner removes one. Returns Ann's browser (the clock moved on)."""
    share(console.client(ANN), share_path, "exp@example.org")
    console.clock.at += timedelta(days=15)  # past its 14 days; sessions end too
    client = console.client(ANN)
    others = ["acc@example.org", "dec@example.org", "und@example.org", "inv@example.org"]
    share(client, share_path, ", ".join([*others, "rem@example.org"]))
    accept(console, "acc@example.org")
    answer(console, "dec@example.org", "decline")
    with console.store.write() as db:  # what the outbox does when the relay refuses for good
        (share_id,) = db.execute(
            "SELECT id FROM shares WHERE invitee = 'und@example.org'"
        ).fetchone()
        assert mark_undeliverable(db, share_id, console.clock.now(), "550 5.1.1 no such user")
    client.get(people_path)
    removed = client.post(people_path, {"action": "remove", "invitee": "rem@example.org"})
    assert removed.status == 303
    return client
