"""The mails that tell an owner an invitation needs them: it could not be delivered, or an
answer to it is held until the invitee confirms.

Both link to the calendar's People page, where the owner acts (send again, remove);
no mail names a command. Both go to the owner only, never to the invitee or to whoever
answered, and only about an invitation: nothing here reacts to an owner mail itself, so
an owner notice that fails cannot cause another one.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlite_utils import Database

from calshare import wording
from calshare.addresses import Mailbox, parse_mailbox
from calshare.config import Settings
from calshare.links import ConsolePage, console_url, hide_bounce_key
from calshare.tokens import redact
from mailer import compose

# how much of a mail server's own words an owner mail quotes: enough to see the cause
DETAIL_CHARS = 200


@dataclass(frozen=True)
class Parties:
    """Who an invitation is between, and about which calendar: what an owner notice names."""

    owner: str
    owner_name: str
    invitee: str
    invitee_name: str
    calendar: str
    calendar_id: int


def parties(db: Database, share_id: int) -> Parties | None:
    """The owner, invitee and calendar of a share, as the store holds them now."""
    row = db.execute(
        """SELECT o.email, o.name, s.invitee, s.invitee_name, c.name, c.id
           FROM shares s
           JOIN calendars c ON c.id = s.calendar_id
           JOIN owners o ON o.id = c.owner_id
           WHERE s.id = ?""",
        [share_id],
    ).fetchone()
    return None if row is None else Parties(*row)


def undeliverable(
    settings: Settings, who: Parties, *, bounced: bool, detail: str = "", key: str
) -> compose.NoticeSpec:
    """The owner's notice that an invitation could not be delivered, in plain words.

    ``bounced``: a delivery report came back later (what our classifier read in it is
    no news to an owner, so it is not quoted); otherwise the receiving server refused
    the mail when we sent it, and ``detail``, its own words, is quoted short and with
    no token or bounce key in them.
    """
    lang = settings.mail.lang
    if bounced:
        why = wording.text("undeliverable.bounced", lang)
    else:
        quoted = hide_bounce_key(redact(" ".join(detail.split())))[:DETAIL_CHARS]
        why = wording.text("undeliverable.refused", lang, detail=quoted)
    return _spec(settings, who, "undeliverable", (("why", why),), key)


def held(settings: Settings, who: Parties, *, answered_by: str, key: str) -> compose.NoticeSpec:
    """The owner's notice that an answer from another address waits for the invitee."""
    return _spec(settings, who, "held", (("answered_by", answered_by),), key)


def _spec(
    settings: Settings,
    who: Parties,
    kind: str,
    extra: tuple[tuple[str, str], ...],
    key: str,
) -> compose.NoticeSpec:
    owner = Mailbox(who.owner, who.owner_name)
    return compose.NoticeSpec(
        sender=compose.Sender(
            domain=settings.mail.domain,
            from_mailbox=parse_mailbox(settings.mail.from_address),
            owner=owner,
        ),
        to=owner,
        kind=kind,
        calendar=who.calendar,
        lang=settings.mail.lang,
        extra=(
            ("invitee", who.invitee_name or who.invitee),
            ("invitee_address", who.invitee),
            *extra,
        ),
        # where the owner acts: check the address and send again, or remove the person
        links=(
            (
                "owner.people",
                console_url(settings.http.base_url, who.calendar_id, ConsolePage.PEOPLE),
            ),
        ),
        key=key,
    )
