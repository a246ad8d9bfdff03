"""Token addresses and links: the one place that builds and parses them.

Every mail address and URL that carries one of our secrets has its shape here, so
the code that writes one (the invitation, the welcome mail, ``calshare publish``)
and the code that reads one back (the inbox at RCPT, the classifier, the web
routes, redaction) cannot drift apart:

- ``accept+<token>@domain``, ``decline+<token>@domain``, ``share+<token>@domain``:
  an answer to an invitation (the token names it); ``share+`` is the Reply-To.
- ``bounces+<key>@domain``: the envelope sender of each mail we send, so a bounce
  names the mail it bounces (the key is secret too: see ``hide_bounce_key``).
- ``<base>/i/<token>``: the answer page of an invitation.
- ``<base>/feeds/<secret>.ics`` and its ``webcal://`` twin: a grant's feed.
- ``<base>/p/<secret>`` (page), ``<base>/p/<secret>.ics`` and its ``webcal://`` twin:
  a published calendar.

The local part is read in any case (mail systems may change it), as are tokens
(``tokens.parse_token``); the domain must be ours (``[mail] domain``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import quote, urlencode


class RecipientForm(StrEnum):
    """The local part before the ``+`` of one of our addresses: what the mail is for."""

    ACCEPT = "accept"
    DECLINE = "decline"
    SHARE = "share"
    BOUNCES = "bounces"


# The forms whose detail is an invitation token (the bounce key is not one).
ANSWER_FORMS = (RecipientForm.ACCEPT, RecipientForm.DECLINE, RecipientForm.SHARE)


def address(form: RecipientForm, detail: str, domain: str) -> str:
    """``form+detail@domain``: the one way our addresses are written."""
    return f"{form.value}+{detail}@{domain}"


def answer_address(form: RecipientForm, token: str, domain: str) -> str:
    """``accept+<token>@…``, ``decline+<token>@…`` or ``share+<token>@…``."""
    if form not in ANSWER_FORMS:
        raise ValueError(f"{form.value}+ addresses do not carry an invitation token")
    return address(form, token, domain)


def bounce_address(key: str, domain: str) -> str:
    """The envelope sender of the mail whose bounce key is ``key``."""
    return address(RecipientForm.BOUNCES, key, domain)


def answer_mailto(form: RecipientForm, token: str, domain: str, subject: str) -> str:
    """A ``mailto:`` link to an answer address, with the subject the mail should have."""
    return f"mailto:{answer_address(form, token, domain)}?subject={quote(subject)}"


def parse_address(recipient: str, domain: str) -> tuple[RecipientForm | None, str | None]:
    """The form and detail of one of our addresses; (None, None) for any other address.

    ``recipient`` as an envelope or a header gives it (``<…>`` and spaces allowed);
    the local part's form in any case, the domain ours (``domain``, lowercase) with
    or without its final dot. The detail is returned as written: ``parse_token``
    decides whether it is a token.
    """
    local, at, host = recipient.strip().strip("<>").rpartition("@")
    if not at or host.lower().rstrip(".") != domain:
        return None, None
    return parse_local_part(local)


def parse_local_part(local: str) -> tuple[RecipientForm | None, str | None]:
    """The form and detail of a local part ``form+detail``; (None, None) if it is no form."""
    form, plus, detail = local.partition("+")
    if not plus:
        return None, None
    try:
        return RecipientForm(form.lower()), detail
    except ValueError:
        return None, None


def quoted_answer(text: str, domain: str) -> tuple[RecipientForm | None, str | None]:
    """The first answer address quoted in ``text`` (a reply quoting the invitation's links):
    its form and its token in lowercase, or (None, None)."""
    forms = "|".join(form.value for form in ANSWER_FORMS)
    pattern = rf"\b({forms})\+([a-z2-7]{{26}})@{re.escape(domain)}"
    found = re.search(pattern, text, re.IGNORECASE)
    if not found:
        return None, None
    return RecipientForm(found[1].lower()), found[2].lower()


# The key of a bounce address is a secret too (it lets a report count), and hex, not
# base32: a report quotes it in To, Return-Path, Received and Final-Recipient.
_BOUNCE_KEY = re.compile(r"(bounces(?:\+|=2B|%2B))[^@\s<>\"';,]+", re.IGNORECASE)


def hide_bounce_key(text: str) -> str:
    """``text`` with the key of every ``bounces+<key>`` address replaced by "…".

    For what a relay says back (its refusals quote our envelope sender) before it is
    logged or stored: whoever reads the key can forge a bounce to that mail.
    """
    return _BOUNCE_KEY.sub(r"\1…", text)


# SQL: the envelope sender with its bounce key replaced by "…" (other senders as they are).
BOUNCE_KEY_FORGOTTEN_SQL = (
    "CASE WHEN envelope_from LIKE 'bounces+%@%'"
    " THEN 'bounces+…' || substr(envelope_from, instr(envelope_from, '@'))"
    " ELSE envelope_from END"
)


# --- URLs. ``base_url`` is ``[http] base_url``: scheme and host, no trailing slash.

# aiohttp route patterns of the daemon's web side (``calshare.web``).
ANSWER_PAGE_ROUTE = "/i/{token}"
FEED_ROUTE = "/feeds/{secret}.ics"
PUBLISHED_ICS_ROUTE = "/p/{secret}.ics"
PUBLISHED_PAGE_ROUTE = "/p/{secret:[A-Za-z2-7]+}"


# The owner console (``calshare.console``): sign-in, and one page per dialog.
SIGNIN_ROUTE = "/signin"
SIGNIN_LINK_ROUTE = "/signin/{token}"
SIGNOUT_ROUTE = "/signout"
LANGUAGE_ROUTE = "/language"
CALENDARS_ROUTE = "/calendars"
ADD_CALENDAR_ROUTE = "/calendars/new"
CONSOLE_ASSET_ROUTE = "/console/{name}"


class ConsolePage(StrEnum):
    """The pages of one calendar in the console, as Outlook's dialogs are named."""

    SHARE = "share"
    PEOPLE = "people"
    PUBLISH = "publish"
    EMAIL = "email"
    HISTORY = "history"


def calendar_route(page: ConsolePage) -> str:
    """The aiohttp route pattern of one calendar's page."""
    return f"/calendars/{{calendar_id:[0-9]{{1,18}}}}/{page.value}"  # fits SQLite's INTEGER


def calendar_page_path(calendar_id: int, page: ConsolePage) -> str:
    return f"/calendars/{calendar_id}/{page.value}"


def console_url(
    base_url: str, calendar_id: int | None = None, page: ConsolePage | None = None
) -> str:
    """Where an owner acts: one calendar's page, or My calendars (owner mails link here)."""
    if calendar_id is None or page is None:
        return f"{base_url}{CALENDARS_ROUTE}"
    return f"{base_url}{calendar_page_path(calendar_id, page)}"


def signin_url(base_url: str, token: str, next_path: str | None = None) -> str:
    """The link in a sign-in mail: a landing page whose button signs in (GET does not).

    ``next_path``: the console page the owner was on when asked to sign in; the
    landing page goes there after (only a path on this site, see console.base).
    """
    url = f"{base_url}{signin_link_path(token)}"
    return f"{url}?{urlencode({'next': next_path})}" if next_path else url


def signin_link_path(token: str) -> str:
    """The landing page of a sign-in link, on this site (its form posts here)."""
    return f"/signin/{token}"


def answer_page_url(base_url: str, token: str) -> str:
    """The web page where an invitation is answered with a button."""
    return f"{base_url}/i/{token}"


# The beginnings of a calendar address the console's Add calendar takes, as pages say them.
SOURCE_SCHEMES_SHOWN = "https://, http://, webcal://"


def webcal(url: str) -> str:
    """The ``webcal://`` twin of an ``http(s)://`` feed URL: calendar apps subscribe to it."""
    return "webcal" + url[url.index("://") :]


def is_webcal(url: str) -> bool:
    """Whether a link is an absolute ``webcal://`` one (a WebDAV copy links by file name)."""
    return url.lower().startswith("webcal://")


def from_webcal(url: str) -> str:
    """The ``https://`` URL a ``webcal://`` or ``webcals://`` link names (others unchanged)."""
    if url.lower().startswith("webcal"):
        return "https" + url[len("webcal") :].removeprefix("s")
    return url


def feed_urls(base_url: str, secret: str) -> tuple[str, str]:
    """(webcal://…, https://…) for a feed secret: apps subscribe with either."""
    https = f"{base_url}/feeds/{secret}.ics"
    return webcal(https), https


@dataclass(frozen=True)
class Links:
    """The links of a published calendar."""

    html: str
    ics: str
    webcal: str


def published_links(base_url: str, secret: str) -> Links:
    """The page, the ``.ics`` file and its ``webcal://`` twin of a publication."""
    html = f"{base_url}/p/{secret}"
    ics = f"{html}.ics"
    return Links(html, ics, webcal(ics))
