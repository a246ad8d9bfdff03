"""Issue 15, point 3: one-click subscribe, in the welcome mail and on the published page.

The links are checked by taking them apart again (host, path, and each query value
decoded back to exactly the feed URL), against the forms calshare/subscribe.py cites.
The QR code is read by zbar (Debian's zbar-tools, ``zbarimg``): once as the PNG segno
writes from the same code, and once from Chromium's screenshot of the page the daemon
serves over HTTP, so what a phone's camera would see is what is checked. The welcome
mails are the ones the daemon delivers to a real SMTP relay after an accept by mail.
"""

from __future__ import annotations

import email
import email.policy
import io
import re
import shutil
import subprocess
from collections.abc import Callable
from datetime import UTC, datetime
from email.message import EmailMessage
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st

from calshare import subscribe
from calshare.addresses import Mailbox
from calshare.levels import Level
from calshare.links import feed_urls, published_links
from calshare.publishing import publish
from calshare.subscribe import (
    APPLE,
    DEFAULT_ORDER,
    GOOGLE,
    LINK,
    MICROSOFT_365,
    OUTLOOK,
    provider_of,
    qr_code,
    qr_svg,
    subscribe_options,
)
from mailer import compose
from tests.support import chromium
from tests.support.inbox import DOMAIN, World, deliver, make_world, reply, wait_until
from tests.support.relay import Delivery, Relay, relay
from tests.support.web import Web, http, web

__all__ = ["make_world", "relay", "web"]  # fixtures

SECRET = "abcdefghijklmnopqrstuvwxyz"
NOW = datetime(2026, 12, 4, tzinfo=UTC)
WEBCAL, HTTPS = feed_urls("https://cal.example.org", SECRET)
PROVIDER_DOMAINS = {
    "gmail.com": GOOGLE,
    "googlemail.com": GOOGLE,
    "outlook.com": OUTLOOK,
    "hotmail.com": OUTLOOK,
    "live.com": OUTLOOK,
    "icloud.com": APPLE,
    "me.com": APPLE,
}
GOOGLE_FORM = ("calendar.google.com", "/calendar/r")
OUTLOOK_FORMS = {
    OUTLOOK: ("outlook.live.com", "/calendar/0/addfromweb"),
    MICROSOFT_365: ("outlook.office.com", "/calendar/0/addfromweb"),
}


def providers(recipient: str | None) -> list[str]:
    return [option.provider for option in subscribe_options(HTTPS, WEBCAL, recipient, "project")]


def with_first(provider: str) -> list[str]:
    return [provider] + [other for other in DEFAULT_ORDER if other != provider]


def zbarimg(png: bytes, work: Path) -> str:
    """What zbar reads in an image: the symbols' data, one per line (``--raw -q``)."""
    program = "/usr/bin/zbarimg"
    if not Path(program).is_file() and shutil.which("zbarimg") is None:
        pytest.fail(
            "zbarimg is missing: install Debian's zbar-tools package (`make system-packages` does)"
        )
    image = work / "code.png"
    image.write_bytes(png)
    done = subprocess.run(
        [shutil.which("zbarimg") or program, "--raw", "-q", str(image)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, f"zbarimg found no code ({done.returncode}): {done.stderr}"
    return done.stdout.rstrip("\n")


class Anchors(HTMLParser):
    """Every <a href> of a page, in order, with its text."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[tuple[str, str]] = []
        self._open: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self._open = dict(attrs).get("href") or ""
            self.found.append((self._open, ""))

    def handle_data(self, data: str) -> None:
        if self._open is not None:
            href, text = self.found[-1]
            self.found[-1] = (href, text + data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "a":
            self._open = None


def anchors(html: str) -> list[tuple[str, str]]:
    parser = Anchors()
    parser.feed(html)
    return parser.found


def provider_of_link(href: str) -> str | None:
    """Which option a link is, from its form alone."""
    if href.startswith("webcal://"):
        return APPLE
    parts = urlsplit(href)
    if (parts.netloc, parts.path) == GOOGLE_FORM:
        return GOOGLE
    for provider, form in OUTLOOK_FORMS.items():
        if (parts.netloc, parts.path) == form:
            return provider
    return None


def query(href: str) -> dict[str, str]:
    """The query's values, decoded; each given exactly once, and nothing after a '#'."""
    parts = urlsplit(href)
    assert parts.scheme == "https" and parts.fragment == "", href
    values = parse_qs(parts.query, keep_blank_values=True, strict_parsing=True)
    assert all(len(given) == 1 for given in values.values()), values
    return {name: given[0] for name, given in values.items()}


# --- the order


def test_the_default_order_when_the_provider_is_unknown() -> None:
    """No recipient (the published page), an unknown domain, or not an address at all."""
    for recipient in (None, "", "bob@example.org", "no address", "bob@gmail.com.example.net"):
        assert providers(recipient) == list(DEFAULT_ORDER), recipient
    assert DEFAULT_ORDER[0] == APPLE and DEFAULT_ORDER[-1] == LINK


def mixed_case(text: str, flips: list[bool]) -> str:
    flips = (flips + [False] * len(text))[: len(text)]
    return "".join(char.upper() if flip else char for char, flip in zip(text, flips, strict=True))


@given(
    local=st.from_regex(r"[a-z0-9._+-]{1,20}", fullmatch=True),
    domain=st.sampled_from(sorted(PROVIDER_DOMAINS)),
    flips=st.lists(st.booleans(), max_size=40),
    trailing_dot=st.booleans(),
)
def test_a_known_provider_goes_first_whatever_the_case(
    local: str, domain: str, flips: list[bool], trailing_dot: bool
) -> None:
    """``Bob@GMail.com`` is Gmail; the others keep the default order, the link last."""
    address = mixed_case(f"{local}@{domain}", flips) + ("." if trailing_dot else "")
    assert providers(address) == with_first(PROVIDER_DOMAINS[domain]), address
    assert providers(address)[-1] == LINK


@given(
    label=st.from_regex(r"[a-z0-9](?:[a-z0-9-]{0,20}[a-z0-9])?", fullmatch=True),
    domain=st.sampled_from(sorted(PROVIDER_DOMAINS)),
)
def test_a_subdomain_of_a_provider_is_not_that_provider(label: str, domain: str) -> None:
    """Decided: ``x@mail.gmail.com`` gets the default order. Consumer mailboxes exist at
    the bare domains only; an address below one is no account at that service."""
    assert providers(f"x@{label}.{domain}") == list(DEFAULT_ORDER)
    assert providers(f"x@{label}{domain}") == list(DEFAULT_ORDER)  # notgmail.com


def test_a_microsoft_365_tenant_address_puts_outlook_for_work_first() -> None:
    assert providers("kari@contoso.onmicrosoft.com") == with_first(MICROSOFT_365)
    assert providers("kari@onmicrosoft.com") == list(DEFAULT_ORDER)  # no tenant named
    assert provider_of("Kari@Contoso.OnMicrosoft.com") == MICROSOFT_365


def test_every_option_is_offered_once_for_any_recipient() -> None:
    for recipient in (None, "a@gmail.com", "a@hotmail.com", "a@me.com", "a@x.onmicrosoft.com"):
        assert sorted(providers(recipient)) == sorted(DEFAULT_ORDER)


# --- the link forms

# Feed addresses as an operator's base URL may make them: a path prefix with characters
# a query value must escape (& = ? # + % and spaces), and any calendar name.
base_urls = st.builds(
    lambda host, prefix: f"https://{host}{prefix}",
    st.from_regex(r"[a-z0-9-]{1,12}\.example(?::[0-9]{2,5})?", fullmatch=True),
    st.text(alphabet="abc/&=?#+% é", max_size=20).map(lambda text: "/" + text if text else ""),
)
names = st.text(st.characters(exclude_categories=("Cs",)), max_size=40)


@given(base=base_urls, name=names, recipient=st.sampled_from([None, "a@gmail.com", "a@live.com"]))
def test_each_link_decodes_to_exactly_the_feed_url(
    base: str, name: str, recipient: str | None
) -> None:
    webcal, https = feed_urls(base, SECRET)
    options = subscribe_options(https, webcal, recipient, name)
    by_provider = {option.provider: option.href for option in options}
    # Google: calendar.google.com/calendar/r, one value cid: the webcal:// URL, whole
    google = by_provider[GOOGLE]
    assert (urlsplit(google).netloc, urlsplit(google).path) == GOOGLE_FORM
    assert query(google) == {"cid": webcal}
    assert "webcal%3A%2F%2F" in google  # encoded as one value, as Google needs it
    # Outlook (personal and work): /calendar/0/addfromweb, url is the https URL, name the name
    for provider, form in OUTLOOK_FORMS.items():
        href = by_provider[provider]
        assert (urlsplit(href).netloc, urlsplit(href).path) == form
        assert query(href) == {"url": https, "name": name}
    # Apple and Thunderbird: the webcal link itself; the link to copy: the https URL
    assert by_provider[APPLE] == webcal and webcal.startswith("webcal://")
    assert by_provider[LINK] == https and https.startswith("https://")


def test_the_published_links_make_the_same_forms() -> None:
    made = published_links("https://cal.example.org", SECRET)
    options = {o.provider: o.href for o in subscribe_options(made.ics, made.webcal, None, "x")}
    assert query(options[GOOGLE]) == {"cid": "webcal://cal.example.org/p/" + SECRET + ".ics"}
    assert query(options[OUTLOOK])["url"] == made.ics
    assert options[APPLE] == made.webcal


# --- the QR code


@pytest.mark.parametrize(
    "url",
    [
        published_links("https://cal.example.org", SECRET).webcal,
        feed_urls("https://calendar.example.org:8443/sharing/calshare", SECRET)[0],
    ],
)
def test_the_qr_code_reads_back_as_the_webcal_url(url: str, tmp_path: Path) -> None:
    png = io.BytesIO()
    qr_code(url).save(png, kind="png", scale=6)
    assert zbarimg(png.getvalue(), tmp_path) == url


def test_the_qr_svg_is_inline_named_and_the_same_code() -> None:
    url = published_links("https://cal.example.org", SECRET).webcal
    svg = qr_svg(url, 'QR code "for" <you> & me')
    assert svg.startswith('<svg role="img" aria-label="QR code &quot;for&quot; &lt;you> &amp; me"')
    assert "<title>QR code" in svg and svg.endswith("</svg>")
    # nothing to fetch: no href, no image, no script, no style sheet
    assert not re.search(r"href|<image|<script|<style|url\(", svg, re.IGNORECASE)
    drawn = re.search(r'<path stroke="#000" d="([^"]+)"', svg)
    same = qr_code(url).svg_inline(scale=4, svgclass=None, lineclass=None)
    assert drawn and drawn[1] in same  # the modules of the PNG read above


# --- the welcome mail, as composed


def welcome(to: str) -> compose.OutgoingMail:
    options = subscribe_options(HTTPS, WEBCAL, to, "project")
    return compose.notice(
        compose.Sender(DOMAIN, Mailbox(f"calendar@{DOMAIN}"), Mailbox("ann@example.org", "Ann")),
        Mailbox(to),
        kind="welcome",
        calendar="project",
        lang="nb",
        now=NOW,
        level=Level.TITLES,
        links=[(option.label, option.href) for option in options],
    )


def parts(mail: bytes) -> tuple[str, str]:
    """The HTML and the text part of a mail."""
    message = email.message_from_bytes(mail, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    html = message.get_body(("html",))
    text = message.get_body(("plain",))
    assert html is not None and text is not None
    return html.get_content(), text.get_content().replace("\r\n", "\n")


def test_the_welcome_shows_buttons_in_order_and_the_link_as_text_to_copy() -> None:
    html, text = parts(welcome("kari@icloud.com").raw)
    shown = anchors(html)
    assert [provider_of_link(href) for href, _ in shown] == [APPLE, GOOGLE, OUTLOOK, MICROSOFT_365]
    assert [label.strip() for _, label in shown][:2] == [
        "Apple Kalender, Thunderbird",
        "Google Kalender",
    ]
    # the https link is no button (a click would only download the file): text to copy
    assert HTTPS not in [href for href, _ in shown]
    assert re.search(r"<p [^>]*user-select:\s*all[^>]*>" + re.escape(HTTPS) + "</p>", html)
    # the text part: every option on lines of its own, in the same order, the link last
    labels = re.findall(r"^(\S[^\n]*):\n  (\S+)$", text, re.MULTILINE)
    assert [provider_of_link(url) or url for _, url in labels] == [
        APPLE, GOOGLE, OUTLOOK, MICROSOFT_365, HTTPS,
    ]  # fmt: skip


def test_the_welcome_with_its_buttons_fits_a_narrow_window(tmp_path: Path) -> None:
    """Four buttons and a long link: one above the other, the link wrapped, no scrolling."""
    html, _ = parts(welcome("bob@example.org").raw)
    for width in (600, 500):  # 500: the narrowest window headless Chromium opens
        scrolled, window = chromium.scroll_width(html, width, tmp_path)
        assert window == width and scrolled <= width, (width, scrolled)


def test_a_welcome_queued_before_the_buttons_still_composes() -> None:
    """The outbox keeps answers' mails as specs, composed when sent: one queued by the
    version before this one names the labels it had, which must still exist."""
    sender = compose.Sender(DOMAIN, Mailbox(f"calendar@{DOMAIN}"), Mailbox("ann@example.org"))
    for lang in ("en", "nb"):
        spec = compose.NoticeSpec(
            kind="welcome",
            sender=sender,
            to=Mailbox("bob@example.org"),
            calendar="project",
            lang=lang,
            key=compose.new_message_key(),
            level=Level.TITLES,
            links=(("welcome.subscribe", WEBCAL), ("welcome.https", HTTPS)),
        )
        html, text = parts(compose.NoticeSpec.from_json(spec.to_json()).compose(NOW).raw)
        assert [href for href, _ in anchors(html)] == [WEBCAL, HTTPS]
        assert HTTPS in text


# --- for real: the welcome mail the daemon delivers, the page it serves


def accept(world: World, invitee: str) -> None:
    invitation = world.invite(invitee)
    address = f"accept+{invitation.token}@{DOMAIN}"
    answer = reply(to=address, subject="Accept: project", sender=invitee)
    assert deliver(world.inbox.smtp, answer, address, invitee).code == 250


def test_the_delivered_welcome_orders_the_buttons_by_the_invitees_provider(
    make_world: Callable[..., World], relay: Relay
) -> None:
    world = make_world(**relay.env())
    invitees = {"Bob@GMail.com": GOOGLE, "carol@hotmail.com": OUTLOOK, "dan@example.net": APPLE}
    for invitee in invitees:
        accept(world, invitee)

    def subjects(part: str) -> list[Delivery]:
        return [d for d in relay.sink.deliveries if part in str(d.message["Subject"])]

    # the invitations went out too: wait for each invitee's welcome and the owner's notices
    wait_until(
        lambda: (
            len(subjects("You can now see")) == len(subjects(" accepted your ")) == len(invitees)
        ),
        "a welcome and an owner's notice per invitee at the relay",
    )
    delivered = list(relay.sink.deliveries)
    welcomes = {d.rcpt_tos[0].lower(): d for d in subjects("You can now see")}
    secrets: list[str] = []
    for invitee, first in invitees.items():
        html, text = parts(welcomes[invitee.lower()].raw)
        https = re.search(r"https://\S+/feeds/([a-z2-7]{26})\.ics", text)
        assert https, text
        secrets.append(https[1])
        webcal = "webcal" + https[0][len("https") :]
        buttons = anchors(html)
        order = [provider_of_link(href) for href, _ in buttons]
        assert order == [p for p in with_first(first) if p != LINK], (invitee, order)
        for href, _ in buttons:  # each decodes to this invitee's own feed
            if provider_of_link(href) == GOOGLE:
                assert query(href) == {"cid": webcal}
            elif provider_of_link(href) in OUTLOOK_FORMS:
                assert query(href) == {"url": https[0], "name": "project"}
            else:
                assert href == webcal
        lines = re.findall(r"^  (\S+)$", text, re.MULTILINE)
        assert [provider_of_link(line) or line for line in lines] == [
            *order, https[0]
        ], invitee  # fmt: skip
    # no one else's mail carries a feed secret: the owner's notices, the other invitees'
    for delivery in delivered:
        mine = {s for s, i in zip(secrets, invitees, strict=True) if i.lower() in delivery.rcpt_tos}
        for secret in set(secrets) - mine:
            assert secret.encode() not in delivery.raw, delivery.rcpt_tos


def test_the_published_page_offers_the_buttons_and_a_qr_code_a_phone_can_read(
    web: Web, tmp_path: Path
) -> None:
    feed = web.accept_by_mail("bob@gmail.com")  # an invitee's own feed: not the page's
    feed_secret = re.search(r"/feeds/([a-z2-7]{26})\.ics", feed)
    assert feed_secret
    made = publish(web.store, web.settings, web.clock, "project", Level.FREE_BUSY).links
    page = http(web.base + made.html[made.html.index("/p/") :] + "?month=2027-03")
    assert page.status == 200, page.text
    # the buttons, in the default order (a page has no recipient), then the link to copy
    buttons = [href for href, _ in anchors(page.text) if provider_of_link(href)]
    assert [provider_of_link(href) for href in buttons] == [
        p for p in DEFAULT_ORDER if p != LINK
    ]  # fmt: skip
    assert query(buttons[1]) == {"cid": made.webcal}
    assert re.search(r"user-select:\s*all[^>]*>" + re.escape(made.ics) + "</p>", page.text)
    # the QR code: inline SVG with a name, and still no script and nothing fetched
    assert '<svg role="img" aria-label="QR code of the subscription link"' in page.text
    assert "<script" not in page.text.lower() and "<img" not in page.text.lower()
    policy = page.headers["Content-Security-Policy"]
    assert "default-src 'none'" in policy and "script-src" not in policy
    # the invitee's feed secret is theirs alone: never on the public page
    assert feed_secret[1] not in page.text
    # what a phone's camera sees: Chromium draws the served page, zbar reads the code
    shot = chromium.screenshot_url(
        web.base + made.html[made.html.index("/p/") :], tmp_path / "page.png", 600, 1400
    )
    assert zbarimg(shot, tmp_path) == made.webcal
    scrolled, window = chromium.scroll_width_url(
        web.base + made.html[made.html.index("/p/") :], 500
    )
    assert window == 500 and scrolled <= 500, scrolled


def test_the_module_is_pure() -> None:
    """No I/O: only the standard library (dataclasses, a cache, urllib.parse) and segno."""
    source = Path(subscribe.__file__).read_text(encoding="utf-8")
    imported = set(re.findall(r"^(?:from|import) (\S+)", source, re.MULTILINE))
    assert imported == {"__future__", "dataclasses", "functools", "urllib.parse", "segno"}
