"""What every console page stands on: sessions (timeouts, sign-out, rotation, the
anti-forgery field), the language choice and switch, and the console's own files."""

from __future__ import annotations

import urllib.parse
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st

from calshare import sessions
from calshare.calendars import add_calendar
from calshare.clock import FixedClock
from calshare.config import OwnersSettings, load_settings
from calshare.console import words
from calshare.console.base import CSP, LANG_COOKIE, from_accept_language, local_path
from calshare.owners import may_add_calendars, may_sign_in
from calshare.store import Store
from tests.conftest import NOW
from tests.support.console import ANN, Console, console

__all__ = ["console"]

OWNERS = OwnersSettings(idle_minutes=30, max_hours=8)


def test_a_session_lives_until_idle_or_too_old(store: Store, clock: FixedClock) -> None:
    with store.write() as db:
        cookie = sessions.start(db, ANN, clock.now())
    found = sessions.find(store.db, cookie, clock.now(), OWNERS)
    assert found is not None and found.email == ANN
    assert sessions.find(store.db, cookie.upper(), clock.now(), OWNERS) is not None
    # idle: 31 minutes without a request ends it; a touch at 29 keeps it going
    assert sessions.find(store.db, cookie, clock.now() + timedelta(minutes=31), OWNERS) is None
    for minutes in range(29, 8 * 60, 29):
        at = clock.now() + timedelta(minutes=minutes)
        live = sessions.find(store.db, cookie, at, OWNERS)
        assert live is not None, minutes
        with store.write() as db:
            sessions.touch(db, live, at)
    # absolute: however busy, 8 hours after sign-in it is over
    late = clock.now() + timedelta(hours=8, minutes=1)
    with store.write() as db:
        db.execute("UPDATE sessions SET last_seen_at = ?", [late.strftime("%Y-%m-%dT%H:%M:%SZ")])
    assert sessions.find(store.db, cookie, late, OWNERS) is None


def test_sign_out_ends_the_session_and_rotation_ends_the_old_one(
    store: Store, clock: FixedClock
) -> None:
    with store.write() as db:
        first = sessions.start(db, ANN, clock.now())
        second = sessions.start(db, ANN, clock.now(), replacing=first)
    assert second != first
    assert sessions.find(store.db, first, clock.now(), OWNERS) is None
    assert sessions.find(store.db, second, clock.now(), OWNERS) is not None
    with store.write() as db:
        assert sessions.end(db, second, clock.now())
        assert not sessions.end(db, second, clock.now())
    assert sessions.find(store.db, second, clock.now(), OWNERS) is None
    stored = [row[0] for row in store.db.execute("SELECT secret_hash FROM sessions")]
    assert first not in stored and second not in stored  # only hashes


@given(st.text(max_size=40))
def test_nothing_but_the_secret_finds_a_session(cookie: str) -> None:
    with Store.open(":memory:") as store:
        with store.write() as db:
            secret = sessions.start(db, ANN, NOW)
        found = sessions.find(store.db, cookie, NOW, OWNERS)
        assert found is None or cookie.strip().lower() == secret


def test_the_form_field_is_bound_to_its_session(store: Store, clock: FixedClock) -> None:
    with store.write() as db:
        one = sessions.start(db, ANN, clock.now())
        two = sessions.start(db, ANN, clock.now())
    a = sessions.find(store.db, one, clock.now(), OWNERS)
    b = sessions.find(store.db, two, clock.now(), OWNERS)
    assert a is not None and b is not None
    key = store.uid_key
    assert sessions.csrf_ok(key, a, sessions.csrf_token(key, a))
    assert not sessions.csrf_ok(key, a, sessions.csrf_token(key, b))
    assert not sessions.csrf_ok(key, a, "")
    assert not sessions.csrf_ok(key, a, "é" * 64)


@pytest.mark.parametrize(
    ("header", "lang"),
    [
        ("", "en"),
        ("nb-NO,nb;q=0.9,en;q=0.5", "nb"),
        ("no", "nb"),
        ("nn-NO", "nb"),
        ("de-DE,de;q=0.9,en;q=0.8,nb;q=0.7", "en"),
        ("de-DE,nb;q=0.4,en;q=0.2", "nb"),
        ("fr", "en"),
        ("nb;q=abc, en;q=0.1", "en"),
    ],
)
def test_the_language_follows_accept_language(header: str, lang: str) -> None:
    assert from_accept_language(header, "en") == lang


@pytest.mark.parametrize(
    ("target", "shown"),
    [
        ("/calendars/3/share", "/calendars/3/share"),
        ("//evil.example/x", "/calendars"),
        ("https://evil.example/", "/calendars"),
        ("/\\evil.example", "/calendars"),
        ("/\t/evil.example/login", "/calendars"),
        ("/\n/evil.example", "/calendars"),
        ("/\r\n/evil.example", "/calendars"),
        ("/ /evil.example", "/calendars"),
        ("/\x7f/evil.example", "/calendars"),
        ("/calendars?done=added", "/calendars?done=added"),
        (None, "/calendars"),
    ],
)
def test_going_back_stays_on_this_site(target: str | None, shown: str) -> None:
    assert local_path(target) == shown


@given(st.text(max_size=30))
def test_no_way_back_leads_to_another_site(target: str) -> None:
    """Whatever ``next`` holds, the browser stays here: read as browsers read a URL
    (tabs and line breaks dropped, backslashes as slashes), it names no other host."""
    shown = local_path(target)
    as_read = shown.replace("\t", "").replace("\n", "").replace("\r", "").replace("\\", "/")
    assert as_read.startswith("/") and not as_read.startswith("//")
    assert not urlsplit(as_read).netloc


def test_every_sentence_is_in_both_languages() -> None:
    assert words.keys("en") == words.keys("nb")


def test_the_switch_sets_a_cookie_and_goes_back(console: Console) -> None:
    client = console.client(None)
    got = client.get("/language?lang=nb&next=/calendars/7/people")
    assert got.status == 303 and got.headers["Location"] == "/calendars/7/people"
    assert client.cookies[LANG_COOKIE] == "nb"
    assert client.get("/language?lang=xx").status == 400
    away = client.get("/language?lang=en&next=//evil.example/")
    assert away.headers["Location"] == "/calendars"


def test_the_console_files_are_served_with_our_headers(console: Console) -> None:
    client = console.client(None)
    css = client.get("/console/console.css")
    assert css.status == 200 and css.headers["Content-Type"].startswith("text/css")
    assert css.headers["X-Content-Type-Options"] == "nosniff"
    script = client.get("/console/console.js")
    assert script.status == 200 and "data-copy" in script.text
    assert client.get("/console/../store.py").status == 404
    assert client.get("/console/secret.txt").status == 404
    assert "script-src 'self'" in CSP and "unsafe-inline" not in CSP.split("script-src")[1]


def test_owners_and_allowed_addresses_may_sign_in(store: Store, clock: FixedClock) -> None:
    settings = load_settings(None, env={"CALSHARE_OWNERS_ALLOW": "*@staff.example.org"})
    nobody = load_settings(None, env={})
    add_calendar(store, clock, "project", ANN, None, "UTC")
    assert may_sign_in(store.db, nobody, ANN)
    assert not may_sign_in(store.db, nobody, "carl@staff.example.org")
    assert may_sign_in(store.db, settings, "carl@staff.example.org")
    assert may_add_calendars(store.db, settings, "carl@staff.example.org")
    assert not may_sign_in(store.db, settings, "carl@staff.example.org.evil.example")
    assert not may_sign_in(store.db, settings, "mallory@example.org")


def test_odd_numbers_in_a_path_or_query_are_refused_not_failed(console: Console) -> None:
    calendar = console.calendar("project", ANN)
    client = console.client(ANN)
    history = f"/calendars/{calendar.id}/history"
    assert client.get(history).status == 200
    for before in ("²", "1" * 30, "-1", "x"):
        got = client.get(f"{history}?before={urllib.parse.quote(before)}")
        assert got.status == 400, before
    assert client.get(f"/calendars/{'9' * 30}/history").status == 404
    assert client.get(f"/calendars/{'9' * 18}/history").status == 404
