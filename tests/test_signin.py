"""Signing in to the owner console by email, over real HTTP against the daemon.

The link is read from the sign-in mail the daemon queued (its relay never answers,
so the mail waits in the outbox with its bytes). What is checked: the page says the
same whoever asks; only the link's hash is stored; a link works once, for 15 minutes,
and only through its button (a GET never signs in); the buttons need the
pre-session cookie and its field; the rate limits; who may sign in; the session
cookie's flags; rotation, the timeouts and sign-out ending the session on the server.
"""

from __future__ import annotations

import hashlib
import re
import sqlite3
from contextlib import closing
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from calshare import sessions, signin
from calshare.clock import FixedClock, utc_text
from calshare.config import load_settings
from calshare.errors import AddressError
from calshare.links import SIGNIN_ROUTE, SIGNOUT_ROUTE, signin_link_path
from calshare.store import Store
from calshare.tokens import new_token, token_hash
from tests.conftest import NOW
from tests.support.console import (
    ANN,
    ZOE,
    Client,
    Console,
    ask_for_link,
    console,
    link_in,
    press_sign_in,
    running_console,
    session_csrf,
    sign_in_by_mail,
    signin_mails,
)
from tests.support.inbox import db_rows

__all__ = ["console"]

CSRF_FIELD = re.compile(r'name="csrf" value="[0-9a-f]{64}"')
PRESESSION = "calshare_presession"


def rows(console: Console, sql: str, *parameters: object) -> list[tuple[object, ...]]:
    return db_rows(console.db_path, sql, tuple(parameters))


def live_sessions(console: Console) -> list[tuple[object, ...]]:
    return rows(console, "SELECT email FROM sessions WHERE ended_at IS NULL")


def without_field(page: str) -> str:
    return CSRF_FIELD.sub('name="csrf" value="…"', page)


def cookie_line(client: Client, name: str) -> str:
    (line,) = [line for line in client.set_cookies if line.startswith(f"{name}=")]
    return line


@pytest.fixture
def ann(console: Console) -> Console:
    """The console with Ann owning a calendar: she may sign in."""
    console.calendar("project", ANN)
    return console


# --- the address form


def test_a_known_and_an_unknown_address_get_the_same_page(ann: Console) -> None:
    client = Client(ann.base)
    known = ask_for_link(client, ANN)
    unknown = ask_for_link(client, "bob@example.org")  # as long as Ann's address
    assert known.status == unknown.status == 200
    assert "If ann@example.org may sign in, a link is on its way" in known.text
    assert without_field(known.text).replace(ANN, "X") == without_field(unknown.text).replace(
        "bob@example.org", "X"
    )
    assert known.body.replace(ANN.encode(), b"X") == unknown.body.replace(
        b"bob@example.org", b"X"
    )  # the same pre-session cookie: even the field is the same
    ignored = {"Date", "Set-Cookie"}
    assert {k: v for k, v in known.headers.items() if k not in ignored} == {
        k: v for k, v in unknown.headers.items() if k not in ignored
    }
    assert len(signin_mails(ann, ANN)) == 1
    assert signin_mails(ann, "bob@example.org") == []
    # both asks are recorded, for the limits; only Ann's has a link
    assert len(rows(ann, "SELECT * FROM signin_requests")) == 2
    assert rows(ann, "SELECT email FROM signin_links") == [(ANN,)]


def test_the_mail_links_the_landing_page_in_the_askers_language(ann: Console) -> None:
    client = Client(ann.base, accept_language="nb-NO,nb;q=0.9")
    asked = ask_for_link(client, "  Ann@Example.ORG ")
    assert "Hvis ann@example.org kan logge inn" in asked.text
    (mail,) = signin_mails(ann, ANN)
    message = mail.message
    assert message["Subject"] == "Lenken din for å logge inn på calshare"
    assert "via" not in str(message["From"])  # the service writes in its own name
    assert "15 minutter" in mail.text
    html = message.get_body(("html",))
    assert html is not None and link_in(mail) in str(html.get_content())
    assert link_in(mail).startswith("/signin/")


@pytest.mark.parametrize(
    ("typed", "lang", "shown"),
    [
        ("not an address", "en", "“not an address” is not an email address"),
        ("", "en", "“” is not an email address"),
        ("ann@@example.org", "en", "“ann@@example.org” is not an email address"),
        ("Team: a@example.org, b@example.org;", "en", "is not an email address"),
        ("ann@localhost", "nb", "«ann@localhost» er ikke en e-postadresse"),
        ("x" * 5000 + "@example.org", "en", "is not an email address"),
        ("ann\u200b@example.org", "en", "is not an email address"),
    ],
)
def test_what_is_not_an_address_is_refused_on_the_page(
    ann: Console, typed: str, lang: str, shown: str
) -> None:
    client = Client(ann.base, accept_language=lang)
    client.get(SIGNIN_ROUTE)
    before = ann.state(), rows(ann, "SELECT * FROM signin_requests")
    got = client.post(SIGNIN_ROUTE, {"address": typed, "next": ""})
    assert got.status == 422
    (line,) = re.findall(r'<p class="error" role="alert">(.*?)</p>', got.text)
    assert shown in line.replace("&#34;", '"')
    assert len(line) < 200  # one line, however long the input
    assert "Traceback" not in got.text
    assert (ann.state(), rows(ann, "SELECT * FROM signin_requests")) == before


def test_an_ask_without_the_pre_session_cookie_or_field_sends_nothing(ann: Console) -> None:
    before = ann.state(), rows(ann, "SELECT * FROM signin_requests")
    # another site's form: no cookie (SameSite=Lax keeps it home), no field it could know
    stranger = Client(ann.base)
    refused = stranger.post(SIGNIN_ROUTE, {"address": ANN, "csrf": "0" * 64})
    assert refused.status == 403
    assert "did not come from calshare; nothing was sent" in refused.text
    # the cookie without its field, and a field made for another cookie
    client = Client(ann.base)
    client.get(SIGNIN_ROUTE)
    assert client.post(SIGNIN_ROUTE, {"address": ANN, "csrf": ""}).status == 403
    other = Client(ann.base)
    other.get(SIGNIN_ROUTE)
    assert client.post(SIGNIN_ROUTE, {"address": ANN, "csrf": other.csrf}).status == 403
    assert (ann.state(), rows(ann, "SELECT * FROM signin_requests")) == before
    # the refusal's page carries a good form: the visitor can try again
    assert ask_for_link(stranger, ANN).status == 200
    assert len(signin_mails(ann, ANN)) == 1


def test_asking_past_the_limit_for_an_address_sends_no_more_mail(ann: Console) -> None:
    limit = ann.settings.owners.links_per_address
    pages = [ask_for_link(Client(ann.base), ANN) for _ in range(limit + 2)]
    assert len(signin_mails(ann, ANN)) == limit
    assert {without_field(page.text) for page in pages} == {without_field(pages[0].text)}
    assert {page.status for page in pages} == {200}
    # an hour later the window has moved on
    ann.clock.at += timedelta(hours=1, seconds=1)
    ask_for_link(Client(ann.base), ANN)
    assert len(signin_mails(ann, ANN)) == limit + 1


def test_asking_past_the_limit_for_a_client_sends_no_more_mail(
    db_path: Path, clock: FixedClock, tmp_path: Path
) -> None:
    env = {"CALSHARE_OWNERS_ALLOW": "*@example.org", "CALSHARE_OWNERS_LINKS_PER_CLIENT": "3"}
    with running_console(db_path, clock, tmp_path, **env) as running:
        client = Client(running.base)
        pages = [ask_for_link(client, f"person{n}@example.org") for n in range(5)]
        assert [len(signin_mails(running, f"person{n}@example.org")) for n in range(5)] == [
            1,
            1,
            1,
            0,
            0,
        ]
        texts = {without_field(p.text).replace(f"person{n}@", "X@") for n, p in enumerate(pages)}
        assert len(texts) == 1


def test_the_limits_count_each_address_and_each_client_on_its_own(
    store: Store, clock: FixedClock
) -> None:
    settings = load_settings(
        None,
        env={
            "CALSHARE_OWNERS_ALLOW": "*@example.org",
            "CALSHARE_OWNERS_LINKS_PER_CLIENT": "2",
            "CALSHARE_OWNERS_LINKS_PER_ADDRESS": "2",
        },
    )
    asks = [
        ("a@example.org", "one"),
        ("b@example.org", "one"),
        ("c@example.org", "one"),  # client "one" is over its limit
        ("c@example.org", "two"),  # another client is not
        ("c@example.org", "three"),  # c is now over its own
    ]
    outcomes = [
        signin.request_link(store, settings, clock, address, client).outcome
        for address, client in asks
    ]
    assert outcomes == [
        signin.Outcome.SENT,
        signin.Outcome.SENT,
        signin.Outcome.LIMITED,
        signin.Outcome.SENT,
        signin.Outcome.LIMITED,
    ]
    assert store.db.execute("SELECT COUNT(*) FROM outbox WHERE kind = 'signin'").fetchone() == (3,)


def test_asks_older_than_a_day_are_forgotten(store: Store, clock: FixedClock) -> None:
    settings = load_settings(None, env={"CALSHARE_OWNERS_ALLOW": "*@example.org"})
    signin.request_link(store, settings, clock, "a@example.org", "one")
    clock.at += timedelta(hours=23)
    signin.request_link(store, settings, clock, "b@example.org", "one")
    clock.at += timedelta(hours=2)
    signin.request_link(store, settings, clock, "c@example.org", "one")
    emails = [row[0] for row in store.db.execute("SELECT email FROM signin_requests")]
    assert emails == ["b@example.org", "c@example.org"]
    # links a day past their end go too: a's (expired 25 h ago), not b's (expired 1h45 ago)
    links = [row[0] for row in store.db.execute("SELECT email FROM signin_links")]
    assert links == ["b@example.org", "c@example.org"]


def test_a_flood_of_old_asks_is_worked_off_a_batch_per_ask(store: Store, clock: FixedClock) -> None:
    settings = load_settings(None, env={})
    old = int((clock.now() - timedelta(days=2)).timestamp())
    with store.write() as db:
        for n in range(2 * signin.PRUNE_BATCH + 50):
            db.execute(
                "INSERT INTO signin_requests (email, client, at_ts) VALUES (?, 'x', ?)",
                [f"p{n}@example.org", old],
            )
    left = []
    for _ in range(3):
        signin.request_link(store, settings, clock, "a@example.org", "one")
        query = "SELECT COUNT(*) FROM signin_requests WHERE at_ts = ?"
        left.append(store.db.execute(query, [old]).fetchone()[0])
    assert left == [signin.PRUNE_BATCH + 50, 50, 0]


def test_request_link_refuses_what_is_not_an_address_and_stores_nothing(
    store: Store, clock: FixedClock
) -> None:
    settings = load_settings(None, env={"CALSHARE_OWNERS_ALLOW": "*@example.org"})
    for typed in ("nobody", "a@example.org" + " " * 400 + "x", "a@example.org, b@example.org"):
        with pytest.raises(AddressError):
            signin.request_link(store, settings, clock, typed, "one")
    assert store.db.execute("SELECT COUNT(*) FROM signin_requests").fetchone() == (0,)


@settings(max_examples=150, deadline=None)
@given(
    st.one_of(
        st.emails(), st.text(max_size=80), st.text(max_size=20).map(lambda t: f"{t}@example.org")
    )
)
def test_whatever_is_typed_is_an_address_or_an_address_error(typed: str) -> None:
    """No input makes the form fail otherwise (a 500): composing the mail included."""
    allowing = load_settings(None, env={"CALSHARE_OWNERS_ALLOW": "*@example.org"})
    with Store.open(":memory:") as store:
        try:
            asked = signin.request_link(store, allowing, FixedClock(NOW), typed, "one")
        except AddressError:
            assert store.db.execute("SELECT COUNT(*) FROM signin_requests").fetchone() == (0,)
        else:
            sent = store.db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0]
            assert sent == (asked.outcome == signin.Outcome.SENT)


def test_the_client_is_kept_as_a_keyed_hash() -> None:
    key = b"k" * 32
    one = signin.client_key(key, "192.0.2.1")
    assert one == signin.client_key(key, "192.0.2.1") != signin.client_key(key, "192.0.2.2")
    assert "192.0.2.1" not in one and one != signin.client_key(b"j" * 32, "192.0.2.1")


# --- who may sign in


def test_whom_owners_allow_names_may_sign_in_and_nobody_else(
    db_path: Path, clock: FixedClock, tmp_path: Path
) -> None:
    with running_console(
        db_path, clock, tmp_path, CALSHARE_OWNERS_ALLOW="*@staff.example.org"
    ) as running:
        client = sign_in_by_mail(running, "carl@staff.example.org")
        assert live_sessions(running) == [("carl@staff.example.org",)]
        assert client.get(SIGNIN_ROUTE).status == 303  # signed in: on to the console
        ask_for_link(Client(running.base), "mallory@example.org")
        assert signin_mails(running, "mallory@example.org") == []


def test_by_default_only_owners_of_calendars_may_sign_in(console: Console) -> None:
    for address in ("carl@staff.example.org", ZOE):
        ask_for_link(Client(console.base), address)
    assert rows(console, "SELECT COUNT(*) FROM outbox") == [(0,)]
    console.calendar("zoes", ZOE)
    sign_in_by_mail(console, ZOE)
    assert live_sessions(console) == [(ZOE,)]


def test_a_link_of_someone_no_longer_allowed_signs_nobody_in(console: Console) -> None:
    """A link sent while the address was allowed, used after it no longer is (the operator
    narrowed ``[owners] allow``): who may sign in is asked again when the button is pressed."""
    token = new_token()
    at = utc_text(console.clock.now())
    later = utc_text(console.clock.now() + timedelta(minutes=15))
    with console.store.write() as db:
        db.execute(
            "INSERT INTO signin_links (email, token_hash, created_at, expires_at)"
            " VALUES ('carl@staff.example.org', ?, ?, ?)",
            [token_hash(token), at, later],
        )
    got = press_sign_in(Client(console.base), signin_link_path(token))
    assert got.status != 303 and live_sessions(console) == []


# --- the link


def test_only_the_links_hash_is_stored_and_it_works_once(ann: Console) -> None:
    ask_for_link(Client(ann.base), ANN)
    link = link_in(signin_mails(ann, ANN)[0])
    token = link.split("/")[-1].split("?")[0]
    ((stored,),) = rows(ann, "SELECT token_hash FROM signin_links")
    assert stored == hashlib.sha256(token.encode()).hexdigest()
    # the token is nowhere in the database but in the waiting mail's bytes
    with closing(sqlite3.connect(ann.db_path)) as conn:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        for table in tables:
            held = repr(conn.execute(f"SELECT * FROM {table}").fetchall())
            assert (token in held) == (table == "outbox_bodies"), table
    # a second browser opens the page now and presses the button after the first did
    late = Client(ann.base)
    assert late.get(link).status == 200
    first = Client(ann.base)
    signed = press_sign_in(first, link)
    assert signed.status == 303 and signed.headers["Location"] == "/calendars"
    assert live_sessions(ann) == [(ANN,)]
    before = ann.state()
    replay = late.post(link, {"next": ""})
    assert replay.status == 410 and "already used, has expired" in replay.text
    assert sessions.COOKIE not in late.cookies
    assert ann.state() == before and live_sessions(ann) == [(ANN,)]
    # and the page of a used link says so, with the way to a new one
    gone = Client(ann.base).get(link)
    assert gone.status == 410 and f'href="{SIGNIN_ROUTE}"' in gone.text


def test_a_link_works_for_15_minutes(ann: Console) -> None:
    ask_for_link(Client(ann.base), ANN)
    link = link_in(signin_mails(ann, ANN)[0])
    client = Client(ann.base)
    ann.clock.at += timedelta(minutes=14, seconds=59)
    assert client.get(link).status == 200
    ann.clock.at += timedelta(seconds=1)
    before = ann.state()
    got = client.post(link, {"next": ""})
    assert got.status == 410 and live_sessions(ann) == []
    assert ann.state() == before
    assert rows(ann, "SELECT used_at FROM signin_links") == [(None,)]


@pytest.mark.parametrize(
    "path", ["/signin/notatoken", "/signin/%C3%A6" + "a" * 25, "/signin/" + "a" * 26]
)
def test_a_link_that_is_no_link_says_so(ann: Console, path: str) -> None:
    got = Client(ann.base).get(path)
    assert got.status == 410 and "This link no longer works" in got.text
    assert f'href="{SIGNIN_ROUTE}"' in got.text


def test_a_get_of_the_link_does_not_sign_in(ann: Console) -> None:
    ask_for_link(Client(ann.base), ANN)
    link = link_in(signin_mails(ann, ANN)[0])
    scanner = Client(ann.base)
    before = ann.state()
    for _ in range(3):
        page = scanner.get(link)
        assert page.status == 200 and "Press the button to sign in as ann@example.org" in page.text
    assert sessions.COOKIE not in scanner.cookies
    assert rows(ann, "SELECT COUNT(*) FROM sessions") == [(0,)]
    assert ann.state() == before  # the link unused: a person can still press its button
    assert press_sign_in(Client(ann.base), link).status == 303


def test_the_button_needs_the_pre_session_cookie_and_its_field(ann: Console) -> None:
    ask_for_link(Client(ann.base), ANN)
    link = link_in(signin_mails(ann, ANN)[0])
    before = ann.state()
    # login CSRF: a form on another site posts a link of its own; no cookie goes with it
    forged = Client(ann.base).post(link, {"next": "", "csrf": "0" * 64})
    assert forged.status == 403 and "open the link in the mail again" in forged.text
    browser = Client(ann.base)
    browser.get(link)
    assert browser.post(link, {"next": "", "csrf": ""}).status == 403
    # the field of the sign-in form (another purpose) does not do either
    browser.get(SIGNIN_ROUTE)
    assert browser.post(link, {"next": ""}).status == 403
    # nor the cookie of another browser with this browser's field
    other = Client(ann.base)
    other.get(link)
    other.cookies[PRESESSION] = browser.cookies[PRESESSION]
    assert other.post(link, {"next": ""}).status == 403
    assert ann.state() == before and rows(ann, "SELECT COUNT(*) FROM sessions") == [(0,)]
    assert press_sign_in(browser, link).status == 303


def test_using_a_link_ends_the_others_of_the_address(ann: Console) -> None:
    for _ in range(2):
        ask_for_link(Client(ann.base), ANN)
    first, second = (link_in(mail) for mail in signin_mails(ann, ANN))
    assert press_sign_in(Client(ann.base), second).status == 303
    assert Client(ann.base).get(first).status == 410


def test_sign_in_goes_back_to_the_page_asked_for_and_stays_on_this_site(ann: Console) -> None:
    client = Client(ann.base)
    ask_for_link(client, ANN, "/calendars/3/share?x=1&y=2")
    link = link_in(signin_mails(ann, ANN)[-1])
    assert press_sign_in(client, link).headers["Location"] == "/calendars/3/share?x=1&y=2"
    evil = Client(ann.base)
    ask_for_link(evil, ANN, "//evil.example/")
    link = link_in(signin_mails(ann, ANN)[-1])
    assert press_sign_in(evil, link).headers["Location"] == "/calendars"


# --- the session it opens


def test_the_session_cookie_is_http_only_lax_and_for_this_browser_session(ann: Console) -> None:
    client = sign_in_by_mail(ann, ANN)
    line = cookie_line(client, sessions.COOKIE)
    flags = {part.strip().split("=")[0].lower() for part in line.split(";")[1:]}
    assert {"httponly", "samesite", "path"} <= flags
    assert "samesite=lax" in line.lower() and "path=/;" in line.lower() + ";"
    assert "max-age" not in flags and "expires" not in flags  # a browser-session cookie
    assert ann.settings.http.base_url.startswith("https://") and "secure" in flags
    assert PRESESSION not in client.cookies  # the pre-session cookie is done with


def test_the_cookies_are_not_secure_when_the_base_url_is_http(
    db_path: Path, clock: FixedClock, tmp_path: Path
) -> None:
    """A plain-http installation (a test box, a LAN): a Secure cookie would never come back."""
    with running_console(
        db_path, clock, tmp_path, CALSHARE_HTTP_BASE_URL="http://calendar.example.org"
    ) as running:
        running.calendar("project", ANN)
        client = Client(running.base)
        client.get(SIGNIN_ROUTE)
        assert "secure" not in cookie_line(client, PRESESSION).lower()
        assert "httponly" in cookie_line(client, PRESESSION).lower()
        client = sign_in_by_mail(running, ANN)
        line = cookie_line(client, sessions.COOKIE).lower()
        assert "secure" not in line and "httponly" in line and "samesite=lax" in line


def test_signing_in_ends_the_session_the_browser_had(ann: Console) -> None:
    client = Client(ann.base)
    old = ann.session(ANN)  # planted by someone, or left from before
    client.cookies[sessions.COOKIE] = old
    ask_for_link(Client(ann.base), ANN)
    assert press_sign_in(client, link_in(signin_mails(ann, ANN)[-1])).status == 303
    new = client.cookies[sessions.COOKIE]
    assert new != old
    ended = rows(ann, "SELECT ended_at FROM sessions WHERE email = ? ORDER BY id", ANN)
    assert ended[0] == (utc_text(ann.clock.now()),) and ended[1] == (None,)


def test_idle_and_absolute_timeouts_end_access(ann: Console) -> None:
    owners = ann.settings.owners
    client = sign_in_by_mail(ann, ANN)
    assert client.get(SIGNIN_ROUTE).status == 303  # signed in
    ann.clock.at += timedelta(minutes=owners.idle_minutes - 1)
    assert client.get(SIGNIN_ROUTE).status == 303
    ann.clock.at += timedelta(minutes=2)
    assert client.get(SIGNIN_ROUTE).status == 200  # idle too long: the form again
    # absolute: busy all along (last seen just now), yet over max_hours after sign-in
    client = sign_in_by_mail(ann, ANN)
    ann.clock.at += timedelta(hours=owners.max_hours, seconds=1)
    with ann.store.write() as db:
        db.execute("UPDATE sessions SET last_seen_at = ?", [utc_text(ann.clock.now())])
    assert client.get(SIGNIN_ROUTE).status == 200
    before = ann.state()
    out = client.post(SIGNOUT_ROUTE, {"csrf": "0" * 64})  # nothing to end: the sign-in page
    assert out.status == 303 and out.headers["Location"] == SIGNIN_ROUTE
    assert ann.state() == before


def test_sign_out_ends_the_session_on_the_server(ann: Console) -> None:
    client = sign_in_by_mail(ann, ANN)
    cookie = client.cookies[sessions.COOKIE]
    before = ann.state()
    forged = client.post(SIGNOUT_ROUTE, {"csrf": "0" * 64})
    assert forged.status == 403 and live_sessions(ann) == [(ANN,)]
    missing = client.post(SIGNOUT_ROUTE, {"csrf": ""})
    assert missing.status == 403 and live_sessions(ann) == [(ANN,)]
    assert ann.state() == before
    out = client.post(SIGNOUT_ROUTE, {"csrf": session_csrf(ann, client)})
    assert out.status == 303 and out.headers["Location"] == f"{SIGNIN_ROUTE}?done=signed_out"
    assert sessions.COOKIE not in client.cookies
    assert live_sessions(ann) == []
    assert "You are signed out." in client.get(out.headers["Location"]).text
    # the old cookie, kept by someone, is worth nothing now
    thief = Client(ann.base, cookies={sessions.COOKIE: cookie})
    assert thief.get(SIGNIN_ROUTE).status == 200
    assert thief.post(SIGNOUT_ROUTE, {"csrf": "0" * 64}).headers["Location"] == SIGNIN_ROUTE


def test_sign_out_without_a_session_goes_to_sign_in(ann: Console) -> None:
    before = ann.state()
    got = Client(ann.base).post(SIGNOUT_ROUTE, {"csrf": ""})
    assert got.status == 303 and got.headers["Location"] == SIGNIN_ROUTE
    assert ann.state() == before


def test_another_owners_session_signs_out_only_itself(ann: Console) -> None:
    ann.calendar("zoes", ZOE)
    zoe = sign_in_by_mail(ann, ZOE)
    annie = sign_in_by_mail(ann, ANN)
    # Zoe's field does not sign Ann out, and Ann's session stays
    refused = annie.post(SIGNOUT_ROUTE, {"csrf": session_csrf(ann, zoe)})
    assert refused.status == 403
    assert sorted(live_sessions(ann)) == [(ANN,), (ZOE,)]
