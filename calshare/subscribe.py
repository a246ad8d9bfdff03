"""One-click subscribe: the links that add a feed to a calendar app, best first.

Pure: it takes the feed's two URLs (https and webcal, built by their owners:
``links.feed_urls`` for a grant, ``links.published_links`` for a publication) and
returns buttons; nothing here fetches or stores anything.

The add-by-URL forms, as the providers accept them (none documents them; these
are the forms in public use, checked against these sources, see also
docs/reference.md "Subscribe links"):

- Google Calendar: ``https://calendar.google.com/calendar/r?cid=<webcal URL>``, the
  whole ``webcal://`` URL percent-encoded as one query value. Simon Willison, "Providing
  a 'subscribe in Google Calendar' link for an ics feed"
  (https://til.simonwillison.net/ics/google-calendar-ics-subscribe-link) gives
  ``cid=webcal://…``; calagator/calagator#556 found that ``cid=https://…`` answers "This
  email address isn't associated with an active Google Calendar account" while
  ``cid=webcal%3A%2F%2F…`` subscribes; pl4nty/anutimetable#52 found the value must be
  encoded whole (``encodeURIComponent``) or a ``&`` in it ends it.
- Outlook on the web: ``https://outlook.live.com/calendar/0/addfromweb?url=<https
  URL>&name=<name>`` for personal Microsoft accounts (Outlook.com, Hotmail, Live) and
  the same path on ``outlook.office.com`` for work or school (Microsoft 365) accounts;
  each host only signs in its own kind of account. The hosts: the "Outlook web"
  page of InteractionDesignFoundation/add-event-to-calendar-docs and its pull request
  #10 ("live.com for the public, office.com for Office 365 subscribers", tested on
  both), spatie/calendar-links#134 (outlook.office.com for company mail, where
  outlook.office365.com only redirects); the ``addfromweb`` path with ``url`` and
  ``name``: the subscribe buttons of many public projects (found with code search),
  and jamesdoc's "Subscribe to calendar link" (2024) for Microsoft 365.
- Apple Calendar and Thunderbird (and Outlook for Windows, GNOME Calendar…): the
  ``webcal://`` link itself, which the system hands to its calendar app.
- The plain https link, shown as text to copy into any other app.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import quote

import segno

GOOGLE = "google"
OUTLOOK = "outlook"  # Outlook.com: personal Microsoft accounts
MICROSOFT_365 = "microsoft365"  # Outlook on the web for work or school accounts
APPLE = "apple"  # the webcal:// link: Apple Calendar, Thunderbird, any app that takes it
LINK = "link"  # the https link, to copy
COPY_LABEL = "subscribe.link"  # its label's wording key: mails show it as text, not a button

# When the provider is unknown (an address we do not recognise, or the published page,
# which has no recipient): the webcal:// link first. It is the only button that is not
# one company's website: the device hands it to the calendar app its owner set up
# (Apple Calendar on an iPhone or Mac, Thunderbird, Outlook for Windows, GNOME
# Calendar), and the published page led with it before. Then the two big hosted
# calendars, the work-account Outlook after the personal one (a work account's own
# domain tells us nothing), and the link to copy last, for everything else.
DEFAULT_ORDER = (APPLE, GOOGLE, OUTLOOK, MICROSOFT_365, LINK)

# Mail domains whose mailboxes are all one provider's: the bare domains only. Consumer
# mailboxes exist at exactly these names; an address at a subdomain (x@mail.gmail.com)
# is not an account there, so it gets the default order.
_PROVIDER_DOMAINS = {
    "gmail.com": GOOGLE,
    "googlemail.com": GOOGLE,
    "outlook.com": OUTLOOK,
    "hotmail.com": OUTLOOK,
    "live.com": OUTLOOK,
    "msn.com": OUTLOOK,
    "icloud.com": APPLE,
    "me.com": APPLE,
    "mac.com": APPLE,
}
# Microsoft 365 gives every tenant <tenant>.onmicrosoft.com: a work account, always.
_MICROSOFT_365_SUFFIX = ".onmicrosoft.com"


@dataclass(frozen=True)
class SubscribeOption:
    """One way to subscribe: the wording key of its label, where it goes, whose it is."""

    label: str  # a key in calshare.wording ("subscribe.google", …)
    href: str
    provider: str  # GOOGLE | OUTLOOK | MICROSOFT_365 | APPLE | LINK

    @property
    def is_copy(self) -> bool:
        """Shown as text to copy, not as a button: the https link is no app's button."""
        return self.provider == LINK


def provider_of(recipient: str | None) -> str | None:
    """The provider whose button goes first for this address; None when unknown.

    Case does not matter (``Bob@GMail.COM``), nor a trailing dot; subdomains do
    (see ``_PROVIDER_DOMAINS``), except a Microsoft 365 tenant's own.
    """
    if not recipient or "@" not in recipient:
        return None
    domain = recipient.rpartition("@")[2].strip().strip("<>").strip().rstrip(".").lower()
    if domain.endswith(_MICROSOFT_365_SUFFIX) and len(domain) > len(_MICROSOFT_365_SUFFIX):
        return MICROSOFT_365
    return _PROVIDER_DOMAINS.get(domain)


def _encoded(value: str) -> str:
    """One query value, everything reserved percent-encoded (``encodeURIComponent``)."""
    return quote(value, safe="")


def google_link(webcal_url: str) -> str:
    return f"https://calendar.google.com/calendar/r?cid={_encoded(webcal_url)}"


def outlook_link(feed_https_url: str, name: str, *, work: bool = False) -> str:
    host = "outlook.office.com" if work else "outlook.live.com"
    return (
        f"https://{host}/calendar/0/addfromweb?url={_encoded(feed_https_url)}&name={_encoded(name)}"
    )


def subscribe_options(
    feed_https_url: str, webcal_url: str, recipient: str | None, name: str
) -> list[SubscribeOption]:
    """The ways to subscribe to a feed, the recipient's own provider's first.

    ``recipient`` is the invitee's address (None on the published page): a Gmail
    address puts Google first, Outlook.com, Hotmail, Live (and MSN) put Outlook
    first, iCloud (me.com, mac.com) puts the webcal link first, a Microsoft 365
    tenant address puts Outlook for work first. Everything else keeps
    ``DEFAULT_ORDER`` (why that order: see there). ``name`` names the calendar in
    Outlook's form.
    """
    options = {
        APPLE: SubscribeOption("subscribe.apple", webcal_url, APPLE),
        GOOGLE: SubscribeOption("subscribe.google", google_link(webcal_url), GOOGLE),
        OUTLOOK: SubscribeOption("subscribe.outlook", outlook_link(feed_https_url, name), OUTLOOK),
        MICROSOFT_365: SubscribeOption(
            "subscribe.microsoft365", outlook_link(feed_https_url, name, work=True), MICROSOFT_365
        ),
        LINK: SubscribeOption(COPY_LABEL, feed_https_url, LINK),
    }
    first = provider_of(recipient)
    order = sorted(DEFAULT_ORDER, key=lambda provider: provider != first)  # stable
    return [options[provider] for provider in order]


def qr_code(url: str) -> segno.QRCode:
    """The QR code of ``url`` (error correction M: still read with a smudge or a glare)."""
    return segno.make(url, error="m", micro=False)


@lru_cache(maxsize=256)
def qr_svg(url: str, label: str = "QR code of the subscription link") -> str:
    """The QR code of ``url`` as inline SVG markup, named ``label`` for screen readers.

    Inline, so the page fetches nothing (and the CSP's ``img-src`` is not asked);
    black on a white square of its own, so it scans on any background. Kept once
    made: encoding one costs about 15 ms, and the page (rendered for every request,
    its ETag is the page's hash) shows the same few publications' codes again and again.
    """
    svg: str = qr_code(url).svg_inline(
        scale=4, title=label, dark="#000", light="#fff", svgclass=None, lineclass=None
    )
    escaped = label.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;")
    return svg.replace("<svg ", f'<svg role="img" aria-label="{escaped}" ', 1)
