"""Token addresses and links have one home (``calshare.links``): what it builds, it parses.

Round trips (hypothesis) for every form: ``parse_address(answer_address(f, t, d), d)``
gives ``(f, t)`` back, in whatever case a mail system writes the local part; a
``mailto:`` link decodes (``urllib``) to its address and subject; the web links
resolve, through the daemon's own aiohttp router (``calshare.web.make_app``), to the
route and secret they were built from. The key of a bounce address is hidden by
redaction however it is quoted. And no module of calshare, mailer or inbox spells
an address or link itself (an AST scan of their string literals).
"""

from __future__ import annotations

import ast
import asyncio
import re
from pathlib import Path
from typing import Any, cast
from urllib.parse import parse_qs, urlsplit

import pytest
from aiohttp import web as aioweb
from aiohttp.test_utils import make_mocked_request
from hypothesis import given
from hypothesis import strategies as st

from calshare import web
from calshare.links import (
    ANSWER_FORMS,
    RecipientForm,
    address,
    answer_address,
    answer_mailto,
    answer_page_url,
    bounce_address,
    feed_urls,
    from_webcal,
    hide_bounce_key,
    parse_address,
    parse_local_part,
    published_links,
    quoted_answer,
    webcal,
)
from calshare.redaction import redact_text
from calshare.tokens import TOKEN_BYTES, new_token, parse_token

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "k3fp7q2mxa5ttw6nbe4rdzy2oc"
DOMAIN = "share.example.org"
BOUNCE_KEY = "583acd5bd9dcea90d9d4eff470e0861d"
SHARE_TO = f"share+{TOKEN}@{DOMAIN}"
ACCEPT_TO = f"accept+{TOKEN}@{DOMAIN}"

tokens = st.binary(min_size=TOKEN_BYTES, max_size=TOKEN_BYTES).map(
    lambda raw: new_token(lambda _: raw)
)
keys = st.binary(min_size=16, max_size=16).map(bytes.hex)  # as compose.new_message_key
labels = st.from_regex(r"[a-z0-9](?:[a-z0-9-]{0,10}[a-z0-9])?", fullmatch=True)
domains = st.lists(labels, min_size=1, max_size=3).map(lambda parts: ".".join([*parts, "org"]))
answer_forms = st.sampled_from(ANSWER_FORMS)
bases = st.sampled_from(["https://cal.example.org", "http://127.0.0.1:8080", "https://x.test"])


def recased(text: str, flips: list[bool]) -> str:
    flips = (flips + [False] * len(text))[: len(text)]
    return "".join(char.upper() if flip else char for char, flip in zip(text, flips, strict=True))


@pytest.mark.parametrize(
    ("recipient", "form", "detail"),
    [
        (ACCEPT_TO, "accept", TOKEN),
        (f"decline+{TOKEN}@{DOMAIN}", "decline", TOKEN),
        (SHARE_TO, "share", TOKEN),
        (f"bounces+{BOUNCE_KEY}@{DOMAIN}", "bounces", BOUNCE_KEY),
        (f"<{SHARE_TO}>", "share", TOKEN),
        (f" {SHARE_TO} ", "share", TOKEN),
        (ACCEPT_TO.upper(), "accept", TOKEN.upper()),
        (f"Accept+{TOKEN}@Share.Example.ORG", "accept", TOKEN),
        (f"share+{TOKEN}@{DOMAIN}.", "share", TOKEN),
        (f"share+{TOKEN}@evil.example", None, None),
        (f"share+{TOKEN}@{DOMAIN}.evil.example", None, None),
        (f"share+{TOKEN}@mail.{DOMAIN}", None, None),
        (f"share@{DOMAIN}", None, None),
        (f"calendar@{DOMAIN}", None, None),
        (f"calendar+{TOKEN}@{DOMAIN}", None, None),
        (f"accept+@{DOMAIN}", "accept", ""),
        ("", None, None),
        ("no-at-sign", None, None),
    ],
)
def test_parse_address(recipient: str, form: str | None, detail: str | None) -> None:
    assert parse_address(recipient, DOMAIN) == (form, detail)


@given(answer_forms, tokens, domains)
def test_an_answer_address_parses_back_to_its_form_and_token(
    form: RecipientForm, token: str, domain: str
) -> None:
    built = answer_address(form, token, domain)
    assert built == f"{form}+{token}@{domain}"
    assert parse_address(built, domain) == (form, token)
    assert parse_address(f"<{built}>", domain) == (form, token)
    assert parse_address(built, "other." + domain) == (None, None)


@given(answer_forms, tokens, domains, st.lists(st.booleans(), max_size=40))
def test_the_local_part_is_read_in_any_case(
    form: RecipientForm, token: str, domain: str, flips: list[bool]
) -> None:
    local, _, host = answer_address(form, token, domain).partition("@")
    written = f"{recased(local, flips)}@{host.upper()}"
    found, detail = parse_address(written, domain)
    assert found is form
    assert detail is not None and parse_token(detail) == token
    assert parse_local_part(recased(local, flips)) == (form, detail)


@given(keys, domains)
def test_a_bounce_address_parses_back_to_its_key(key: str, domain: str) -> None:
    built = bounce_address(key, domain)
    assert parse_address(built, domain) == (RecipientForm.BOUNCES, key)
    assert address(RecipientForm.BOUNCES, key, domain) == built


def test_a_bounce_address_carries_no_token() -> None:
    with pytest.raises(ValueError, match="bounces"):
        answer_address(RecipientForm.BOUNCES, TOKEN, DOMAIN)


@pytest.mark.parametrize("local", ["share", "accept", "+token", "Calendar+x", ""])
def test_a_local_part_that_is_no_form(local: str) -> None:
    assert parse_local_part(local) == (None, None)


@given(keys, domains, st.sampled_from(["{}", "<{}>", "=?utf-8?q?{}?=", "553 <{}>: refused"]))
def test_redaction_hides_the_key_of_every_bounce_address(key: str, domain: str, how: str) -> None:
    said = how.format(bounce_address(key, domain))
    for escaped in (said, said.replace("+", "=2B"), said.replace("+", "%2B")):
        for hidden in (hide_bounce_key(escaped), redact_text(escaped)):
            assert key not in hidden
            assert "…@" + domain in hidden


@given(answer_forms, tokens, st.lists(st.booleans(), max_size=40), st.text(max_size=40))
def test_a_quoted_answer_address_is_found_in_text(
    form: RecipientForm, token: str, flips: list[bool], before: str
) -> None:
    quoted = recased(answer_address(form, token, DOMAIN), flips)
    assert quoted_answer(f"{before} > mailto:{quoted}?subject=x", DOMAIN) == (form, token)


def test_a_quoted_address_of_another_domain_or_form_is_no_answer() -> None:
    assert quoted_answer(f"> mailto:accept+{TOKEN}@evil.example", DOMAIN) == (None, None)
    assert quoted_answer(f"> bounces+{TOKEN}@{DOMAIN}", DOMAIN) == (None, None)
    assert quoted_answer(f"> accept+{TOKEN[:25]}@{DOMAIN}", DOMAIN) == (None, None)


@given(answer_forms, tokens, domains, st.text(min_size=1, max_size=60))
def test_a_mailto_link_decodes_to_its_address_and_subject(
    form: RecipientForm, token: str, domain: str, subject: str
) -> None:
    link = urlsplit(answer_mailto(form, token, domain, subject))
    assert (link.scheme, link.path) == ("mailto", answer_address(form, token, domain))
    assert parse_qs(link.query, keep_blank_values=True, strict_parsing=True) == {
        "subject": [subject]
    }


def test_the_mailto_subject_is_percent_encoded() -> None:
    link = answer_mailto(RecipientForm.ACCEPT, TOKEN, DOMAIN, "Accept: Ann & Bob?")
    assert link == f"mailto:{ACCEPT_TO}?subject=Accept%3A%20Ann%20%26%20Bob%3F"


def _resolve(method: str, url: str) -> tuple[Any, dict[str, str]]:
    """What the daemon's router makes of a URL: the handler and its path's fields."""
    app = web.make_app(cast(web.WebContext, None))  # the context is not used to route
    request = make_mocked_request(method, urlsplit(url).path, app=app)
    found = asyncio.run(app.router.resolve(request))
    assert not isinstance(found, aioweb.HTTPException), url
    return found.route.handler, dict(found)


@given(tokens, bases)
def test_the_answer_page_link_routes_to_the_answer_page(token: str, base: str) -> None:
    url = answer_page_url(base, token)
    assert url == f"{base}/i/{token}"
    assert _resolve("GET", url) == (web.answer_page, {"token": token})
    assert _resolve("POST", url) == (web.answer_post, {"token": token})


@given(tokens, bases)
def test_the_feed_links_route_to_the_feed(secret: str, base: str) -> None:
    subscribe, https = feed_urls(base, secret)
    assert https == f"{base}/feeds/{secret}.ics"
    assert subscribe == "webcal" + https[https.index("://") :]
    assert from_webcal(subscribe) == "https" + https[https.index("://") :]
    assert _resolve("GET", https) == (web.feed, {"secret": secret})


@given(tokens, bases)
def test_the_published_links_route_to_the_page_and_the_file(secret: str, base: str) -> None:
    links = published_links(base, secret)
    assert (links.html, links.ics) == (f"{base}/p/{secret}", f"{base}/p/{secret}.ics")
    assert links.webcal == webcal(links.ics)
    assert _resolve("GET", links.html) == (web.published_page, {"secret": secret})
    assert _resolve("GET", links.ics) == (web.published_ics, {"secret": secret})
    shouted = f"{base}/p/{secret.upper()}"  # the page is served in either case
    assert _resolve("GET", shouted) == (web.published_page, {"secret": secret.upper()})


@pytest.mark.parametrize(
    ("url", "https"),
    [
        ("webcal://cal.example.org/a.ics", "https://cal.example.org/a.ics"),
        ("webcals://cal.example.org/a.ics", "https://cal.example.org/a.ics"),
        ("WebCal://cal.example.org/a.ics", "https://cal.example.org/a.ics"),
        ("https://cal.example.org/a.ics", "https://cal.example.org/a.ics"),
        ("http://cal.example.org/a.ics", "http://cal.example.org/a.ics"),
    ],
)
def test_from_webcal(url: str, https: str) -> None:
    assert from_webcal(url) == https


# --- one home: no other module writes these shapes itself

# Literal pieces that mean a module builds or parses an address or link itself.
_SHAPES = re.compile(r"(?:accept|decline|share|bounces)\+|/i/|/feeds/|/p/|webcal", re.IGNORECASE)
# Where such a piece is prose or another job, not one of our addresses or links.
_ALLOWED = {
    ("calshare/config.py", "domain of the share+/accept+/decline+/bounces+ addresses"),
    ("calshare/sources.py", "webcal://"),  # a calendar to import may be named by one
    ("calshare/sources.py", "webcals://"),
    ("calshare/cli.py", "webcal"),  # a key of `calshare publish --json`
    (
        "calshare/cli.py",
        "follow this https/webcal URL (or CalDAV collection, or file) from now on",
    ),  # help text
}


def _literals(tree: ast.Module) -> list[str]:
    """The string literals of a module, f-strings' literal parts included, docstrings not."""
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    return [
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and id(node) not in docstrings
    ]


def test_no_module_but_links_spells_an_address_or_link() -> None:
    found = []
    for package in ("calshare", "mailer", "inbox"):
        for path in sorted((ROOT / package).rglob("*.py")):
            name = path.relative_to(ROOT).as_posix()
            if name == "calshare/links.py":
                continue
            for text in _literals(ast.parse(path.read_text(encoding="utf-8"))):
                if _SHAPES.search(text) and (name, text) not in _ALLOWED:
                    found.append(f"{name}: {text!r}")
    assert found == [], "build or parse these in calshare/links.py"


def test_the_scan_sees_an_address_spelled_in_an_f_string() -> None:
    """The scan would catch the old spellings (``f"share+{token}@{domain}"``)."""
    tree = ast.parse('def f(token, domain):\n    return f"share+{token}@{domain}"\n')
    assert any(_SHAPES.search(text) for text in _literals(tree))
