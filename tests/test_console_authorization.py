"""The console's authorization matrix: every page and every form, tried as someone else.

The pages and forms are not listed here: the test walks the daemon's own router for
the console's GET pages, opens each as its owner, and replays every form the page
offers (as the page filled it in) with other credentials: another owner's session,
no session, an ended session, a session past its idle time, and a forged or missing
anti-forgery field. Each must show nothing of Ann's and change nothing: the database
(but the session bookkeeping) is compared before and after, and no mail is queued.
A page added later is covered without touching this file.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta

import pytest

from calshare import sessions
from calshare.clock import utc_text
from calshare.levels import Level
from calshare.publishing import publish
from calshare.sharing import share
from calshare.web import make_app
from calshare.webcontext import WebContext
from tests.support.console import ANN, ZOE, Client, Console, console
from tests.support.forms import Form, forms_of
from tests.support.web import Got

__all__ = ["console"]

NAME = "ann-private-plans"
INVITEE = "bob.secret@example.org"
# Routes any visitor may use (sign-in, the language switch, the console's static files).
CALENDAR = b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//t//EN\r\nEND:VCALENDAR\r\n"
PUBLIC = {"/", "/language", "/console/{name}"}


def console_pages() -> list[str]:
    """The console's GET routes, as registered on the daemon's app."""
    app = make_app(WebContext.__new__(WebContext))  # routing needs no context
    found = []
    for route in app.router.routes():
        handler = getattr(route, "handler", None)
        module = getattr(handler, "__module__", "")
        path = route.resource.canonical if route.resource else ""
        if route.method != "GET" or not module.startswith("calshare.console."):
            continue
        if path in PUBLIC or path.startswith("/signin"):
            continue
        found.append(path)
    return sorted(set(found))


@dataclass
class Setup:
    console: Console
    calendar_id: int
    pages: list[str]  # with Ann's calendar id filled in


@pytest.fixture
def setup(console: Console) -> Iterator[Setup]:
    calendar = console.calendar(NAME, ANN)
    console.calendar("zoe-own", ZOE)
    share(console.store, console.settings, console.clock, NAME, INVITEE, Level.TITLES, owner=ANN)
    publish(console.store, console.settings, console.clock, NAME, Level.FREE_BUSY, owner=ANN)
    pages = [re.sub(r"\{calendar_id[^}]*\}", str(calendar.id), path) for path in console_pages()]
    yield Setup(console, calendar.id, pages)


def _outbox(console: Console) -> int:
    return int(console.store.db.execute("SELECT count(*) FROM outbox").fetchone()[0])


def _own_forms(setup: Setup) -> list[tuple[str, Form]]:
    """(page, form) for every POST form of every console page, as Ann sees them."""
    ann = setup.console.client(ANN)
    collected = []
    for page in setup.pages:
        got = ann.get(page)
        assert got.status == 200, (page, got.status, got.text[:300])
        for form in forms_of(got.text, page):
            if form.method == "post" and not form.action.startswith(("/signin", "/language")):
                collected.append((page, form))
    return collected


def _send(client: Client, form: Form, fields: list[tuple[str, str]]) -> Got:
    """The form as a browser sends it: multipart when it has a file field."""
    if form.has_file:
        return client.post_multipart(form.action, fields, {"file": ("x.ics", CALENDAR)})
    return client.post(form.action, fields)


def _shows_nothing_of_anns(text: str) -> None:
    assert NAME not in text and INVITEE not in text


def test_the_console_has_pages_to_check() -> None:
    pages = console_pages()
    assert "/calendars" in pages
    assert any("{calendar_id" in page for page in pages), pages


def test_another_owner_sees_and_changes_nothing_of_anns(setup: Setup) -> None:
    console = setup.console
    zoe = console.client(ZOE)
    for page in setup.pages:
        got = zoe.get(page)
        if str(setup.calendar_id) in page:
            assert got.status == 404, (page, got.status)
        _shows_nothing_of_anns(got.text)
    forms = _own_forms(setup)
    assert forms, "no console page offers a form"
    before, mails = console.state(), _outbox(console)
    for page, form in forms:
        if f"/{setup.calendar_id}/" not in form.action:
            continue  # not about Ann's calendar (sign-out, adding one's own calendar)
        zoe.get("/calendars")  # Zoe's own, valid anti-forgery field
        got = _send(zoe, form, [f for f in form.fields if f[0] != "csrf"])
        assert got.status == 404, (page, form.action, got.status)
        _shows_nothing_of_anns(got.text)
    assert console.state() == before and _outbox(console) == mails


def _expired(console: Console) -> Client:
    client = console.client(ANN)
    idle = console.clock.now() - timedelta(minutes=console.settings.owners.idle_minutes + 1)
    with console.store.write() as db:
        db.execute(
            "UPDATE sessions SET last_seen_at = ? WHERE secret_hash = ?",
            [utc_text(idle), sessions.token_hash(client.cookies[sessions.COOKIE])],
        )
    return client


def _ended(console: Console) -> Client:
    client = console.client(ANN)
    with console.store.write() as db:
        sessions.end(db, client.cookies[sessions.COOKIE], console.clock.now())
    return client


@pytest.mark.parametrize("who", ["nobody", "ended", "expired"])
def test_without_a_live_session_nothing_is_shown_or_changed(setup: Setup, who: str) -> None:
    console = setup.console
    forms = _own_forms(setup)
    csrf = console.client(ANN)
    csrf.get("/calendars")
    before, mails = console.state(), _outbox(console)
    client = {
        "nobody": lambda: console.client(None),
        "ended": lambda: _ended(console),
        "expired": lambda: _expired(console),
    }[who]()
    for page in setup.pages:
        got = client.get(page)
        assert got.status == 303, (page, got.status)
        assert got.headers["Location"].startswith("/signin?next="), got.headers["Location"]
        _shows_nothing_of_anns(got.text)
    for page, form in forms:
        fields = [(n, csrf.csrf if n == "csrf" else v) for n, v in form.fields]
        got = _send(client, form, fields)
        assert got.status in (303, 403), (page, form.action, got.status)
        if got.status == 303:
            assert got.headers["Location"].startswith("/signin"), (form.action, got.headers)
        _shows_nothing_of_anns(got.text)
    assert console.state() == before and _outbox(console) == mails


@pytest.mark.parametrize("forgery", ["missing", "other-session", "made-up"])
def test_a_forged_form_changes_nothing(setup: Setup, forgery: str) -> None:
    console = setup.console
    forms = _own_forms(setup)
    other = console.client(ANN)
    other.get("/calendars")
    before, mails = console.state(), _outbox(console)
    ann = console.client(ANN)
    for page, form in forms:
        fields = [(n, v) for n, v in form.fields if n != "csrf"]
        if forgery == "other-session":
            fields.append(("csrf", other.csrf))
        elif forgery == "made-up":
            fields.append(("csrf", "0" * 64))
        else:
            fields.append(("csrf", ""))
        got = _send(ann, form, fields)
        assert got.status == 403, (page, form.action, forgery, got.status)
    assert console.state() == before and _outbox(console) == mails
