"""My calendars, Add calendar and History over real HTTP: the daemon, its SQLite file,
a source server on 127.0.0.1 and the corpus's real exports.

Every refused request is checked twice: what the page says (one line, the status)
and that the database is as it was (``console.state()``).
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import caldav
import pytest

from calshare import lifecycle, sessions
from calshare.calendars import add_calendar, get_calendar
from calshare.clock import FixedClock
from calshare.console import words
from calshare.console.base import LANG_COOKIE
from calshare.importer import import_calendar
from calshare.levels import Level
from calshare.links import ADD_CALENDAR_ROUTE, CALENDARS_ROUTE, ConsolePage, calendar_page_path
from calshare.publishing import publish, unpublish
from calshare.refresh import refresh_one
from calshare.sharing import share, unshare
from tests.support.console import ANN, ZOE, Client, Console, console, running_console
from tests.support.corpus import EXPORTS_DIR
from tests.support.inbox import DOMAIN, deliver, invitation_of, reply
from tests.support.radicale import Radicale, start_radicale
from tests.support.snapshot import AWKWARD
from tests.support.source_server import SourceServer
from tests.support.web import Got

__all__ = ["console"]

BOB = "bob@example.org"
CARL = "carl@example.org"
SMALL = 64 * 1024  # import.max_bytes of the ``adding`` daemon: a too-large upload stays small
MAX_OCCURRENCES = 1000  # its calendars.max_occurrences_per_import
OUTLOOK = EXPORTS_DIR / "outlook_exchange.ics"
GOOGLE = EXPORTS_DIR / "google.ics"
SECRET = "private-7f3a9c"  # the secret part of SourceServer.url()
DAV_USER, DAV_PASSWORD = "ann", "s3cret-caldav-pass"  # the ``team`` calendar's, as set up
COLLECTION = "team-c0ll3ction"  # part of the CalDAV URL's path: shown nowhere
# The source servers here listen on 127.0.0.1, an address owners' sources may not use
# unless the operator allows it (tests/test_ssrf.py checks the refusal).
PRIVATE_SOURCES = {"CALSHARE_OWNERS_PRIVATE_SOURCES": "true"}
CONSOLE_ENV = PRIVATE_SOURCES


@pytest.fixture
def server() -> Iterator[SourceServer]:
    running = SourceServer().start()
    yield running
    running.stop()


@pytest.fixture
def radicale(tmp_path: Path) -> Iterator[Radicale]:
    with start_radicale(tmp_path, {DAV_USER: DAV_PASSWORD}) as running:
        yield running


@pytest.fixture
def adding(db_path: Path, clock: FixedClock, tmp_path: Path) -> Iterator[Console]:
    """The console's daemon with small import caps, where *@example.org may add calendars.

    Ann owns ``project``; Zoe owns ``zoework``. The CalDAV password of Ann's ``team`` is
    kept for ``ann@example.org/team``: a source an owner adds gets only such a credential.
    """
    config = tmp_path / "calshare.toml"
    config.write_text(
        f'[sources.credentials."{ANN}/team"]\n'
        f'username = "{DAV_USER}"\npassword = "{DAV_PASSWORD}"\n'
    )
    with running_console(
        db_path,
        clock,
        tmp_path,
        CALSHARE_IMPORT_MAX_BYTES=str(SMALL),
        CALSHARE_OWNERS_ALLOW="*@example.org",
        CALSHARE_CALENDARS_MAX_OCCURRENCES_PER_IMPORT=str(MAX_OCCURRENCES),
        CALSHARE_CONFIG=str(config),
        **PRIVATE_SOURCES,
    ) as running:
        running.calendar("project")
        running.calendar("zoework", ZOE)
        yield running


def line(got: Got, css: str) -> str:
    """The text of the page's one ``<p class="css">`` line ("" if there is none)."""
    found = re.search(rf'<p class="{css}"[^>]*>(.*?)</p>', got.text, re.S)
    return html.unescape(found[1]) if found else ""


def add_upload(client: Client, name: str, filename: str, data: bytes, **more: str) -> Got:
    client.get(ADD_CALENDAR_ROUTE)
    fields = {"name": name, "tz": more.pop("tz", ""), "kind": "file", **more}
    return client.post_multipart(ADD_CALENDAR_ROUTE, fields, {"file": (filename, data)})


def add_url(client: Client, name: str, url: str, kind: str = "url", **more: str) -> Got:
    client.get(ADD_CALENDAR_ROUTE)
    return client.post(ADD_CALENDAR_ROUTE, {"name": name, "kind": kind, "url": url, **more})


def events_in(path: Path) -> int:
    return path.read_bytes().count(b"BEGIN:VEVENT")


# --- My calendars


def test_my_calendars_shows_each_of_the_owners_calendars_and_nothing_of_others(
    console: Console, server: SourceServer
) -> None:
    console.calendar("project")
    project = get_calendar(console.store.db, "project", ANN)  # as imported
    console.calendar("zoework", ZOE)
    share(console.store, console.settings, console.clock, "project", BOB, Level.TITLES, owner=ANN)
    share(
        console.store, console.settings, console.clock, "project", CARL, Level.FREE_BUSY, owner=ANN
    )
    unshare(console.store, console.settings, console.clock, "project", CARL, owner=ANN)
    published = publish(
        console.store, console.settings, console.clock, "project", Level.TITLES, owner=ANN
    )
    server.serve(AWKWARD)
    read_at = console.clock.now()
    assert add_url(console.client(), "family", server.url()).status == 303
    family = get_calendar(console.store.db, "family", ANN)
    server.serve(b"", status=404)
    console.clock.advance(timedelta(hours=2))
    refresh_one(console.store, console.settings, console.clock, family.id)

    got = console.client().get(CALENDARS_ROUTE)
    assert got.status == 200 and got.headers["Cache-Control"] == "no-store"
    page = html.unescape(got.text)
    assert ">project</h2>" in page and ">family</h2>" in page
    assert "zoework" not in page
    zone = ZoneInfo(project.zone)
    assert f"Time zone: {project.zone} · {project.event_count} events · Last import: " in page
    assert "<dd>1 invited</dd>" in page  # Bob; Carl, removed, is nobody now
    assert f"Published: {words.level(published.level, 'en')}" in page
    assert "Not published" in page and "Nobody" in page  # family
    assert "A file on the server" in page and str(console.tmp_path) not in page
    shown = f"http://127.0.0.1:{server.port}/…"
    assert shown in page and SECRET not in page and "token=" not in page
    assert f"Last read: {read_at.astimezone(zone):%Y-%m-%d %H:%M}" in page
    failing = console.clock.now().astimezone(zone)
    assert f"Failing since {failing:%Y-%m-%d %H:%M}: the address no longer exists (404)" in page
    for page_name in ConsolePage:
        assert f'href="{calendar_page_path(project.id, page_name)}"' in got.text

    zoe = console.client(ZOE).get(CALENDARS_ROUTE).text
    assert "zoework" in zoe and "project" not in zoe and "family" not in zoe


def test_an_owner_with_no_calendar_is_invited_to_add_one(adding: Console) -> None:
    allowed = adding.client(CARL).get(CALENDARS_ROUTE)
    assert "You have no calendars yet." in allowed.text
    assert f'href="{ADD_CALENDAR_ROUTE}"' in allowed.text
    stranger = adding.client("mallory@elsewhere.example")
    assert "You have no calendars here." in stranger.get(CALENDARS_ROUTE).text
    form = stranger.get(ADD_CALENDAR_ROUTE)
    assert form.status == 200 and 'type="file"' not in form.text
    assert "Ask the person who runs calshare at " + DOMAIN in html.unescape(form.text)
    before = adding.state()
    refused = add_upload(stranger, "mine", "g.ics", GOOGLE.read_bytes())
    assert refused.status == 403 and "can add calendars" in line(refused, "error")
    assert adding.state() == before


# --- Add calendar


@pytest.mark.parametrize("export", [OUTLOOK, GOOGLE], ids=lambda path: path.stem)
def test_a_calendar_is_added_from_an_uploaded_export(adding: Console, export: Path) -> None:
    client = adding.client(CARL)  # allowed by [owners] allow, no calendar yet
    got = add_upload(client, "work", export.name, export.read_bytes(), tz="Europe/Oslo")
    assert got.status == 303 and got.headers["Location"] == f"{CALENDARS_ROUTE}?done=added"
    work = get_calendar(adding.store.db, "work", CARL)
    assert work.event_count == events_in(export) > 0
    assert (work.zone, work.tz, work.source) == ("Europe/Oslo", "Europe/Oslo", None)
    page = client.get(got.headers["Location"])
    assert line(page, "done") == "The calendar was added."
    assert ">work</h2>" in page.text and "Uploaded file (not followed)" in page.text


def test_a_calendar_is_added_from_a_url_and_follows_it(
    adding: Console, server: SourceServer
) -> None:
    server.serve(AWKWARD, etag=True)
    got = add_url(adding.client(), "feed", server.url(), every="30m")
    assert got.status == 303, line(got, "error")
    ((kind, interval, location),) = adding.store.db.execute(
        "SELECT kind, interval_seconds, location FROM calendar_sources"
    ).fetchall()
    assert (kind, interval) == ("url", 1800) and SECRET in location
    assert get_calendar(adding.store.db, "feed", ANN).event_count == AWKWARD.count(b"BEGIN:VEVENT")
    assert server.sent[200] == 1
    page = adding.client().get(CALENDARS_ROUTE).text
    assert "Read again every 30 minutes" in page and SECRET not in page


def test_a_calendar_is_added_from_a_caldav_collection(adding: Console, radicale: Radicale) -> None:
    with caldav.DAVClient(url=radicale.base + "/", username=DAV_USER, password=DAV_PASSWORD) as app:
        collection = app.principal().make_calendar(name="Team", cal_id=COLLECTION)
        for number in range(3):
            collection.save_event(
                "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//t//EN\r\nBEGIN:VEVENT\r\n"
                f"UID:team{number}@t\r\nDTSTAMP:20270301T000000Z\r\n"
                f"DTSTART:2027032{number}T100000Z\r\nDTEND:2027032{number}T110000Z\r\n"
                f"SUMMARY:Team {number}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
            )
    url = f"{radicale.base}/{DAV_USER}/{COLLECTION}/"
    got = add_url(adding.client(), "team", url, kind="caldav")
    assert got.status == 303, line(got, "error")
    assert get_calendar(adding.store.db, "team", ANN).event_count == 3
    page = html.unescape(adding.client().get(CALENDARS_ROUTE).text)
    assert f"CalDAV collection: <code>{radicale.base}/…</code>" in page
    assert COLLECTION not in page and DAV_PASSWORD not in page


def _binary() -> bytes:
    return bytes(range(256)) * 8


@pytest.mark.parametrize(
    ("case", "status", "message"),
    [
        ("too large", 422, f"larger than the limit of {SMALL / 1e6:.1f} MB"),
        ("binary", 422, "is not an iCalendar file (it holds binary data)"),
        ("empty", 422, "is empty: there is no calendar in it"),
        ("not a calendar", 422, "is not an iCalendar file"),
        ("too many occurrences", 422, "max_occurrences_per_import"),
        ("no file", 400, "choose an .ics file"),
        ("bad name", 400, "'a/b' cannot be a calendar name"),
        ("empty name", 400, "cannot be a calendar name"),
        ("duplicate", 409, "A calendar named 'project' exists already"),
        ("unknown zone", 400, "Unknown time zone 'Mars/Olympus'"),
        ("url 404", 422, "'web' was not added: its source could not be read"),
        ("url html", 422, "sent a web page, not a calendar"),
        ("server path", 400, "must start with https://, http://, webcal://"),
        ("no url", 400, "type the calendar's address"),
        ("bad interval", 400, "choose how often from the list"),
        ("bad kind", 400, "choose a web address, a CalDAV collection or a file"),
    ],
)
def test_bad_input_is_one_line_on_the_page_and_stores_nothing(
    adding: Console, server: SourceServer, case: str, status: int, message: str
) -> None:
    client = adding.client()
    before = adding.state()
    google = GOOGLE.read_bytes()
    calendar_text = google[: google.rindex(b"END:VCALENDAR")]
    if case == "too large":
        padding = b"X-PAD:" + b"x" * 70 + b"\r\n"
        big = calendar_text + padding * (SMALL // len(padding) + 10) + b"END:VCALENDAR\r\n"
        got = add_upload(client, "big", "big.ics", big)
    elif case == "binary":
        got = add_upload(client, "bin", "photo.ics", _binary())
    elif case == "empty":
        got = add_upload(client, "empty", "empty.ics", b"")
    elif case == "not a calendar":
        got = add_upload(client, "text", "notes.ics", b"Dear Ann,\r\nsee you soon.\r\n")
    elif case == "too many occurrences":
        series = "".join(
            f"BEGIN:VEVENT\r\nUID:s{n}@test\r\nDTSTAMP:20270301T000000Z\r\n"
            f"DTSTART:20270321T000000Z\r\nSUMMARY:Series {n}\r\n"
            "RRULE:FREQ=HOURLY;COUNT=100\r\nEND:VEVENT\r\n"
            for n in range(MAX_OCCURRENCES // 100 + 2)
        ).encode()
        got = add_upload(client, "busy", "busy.ics", calendar_text + series + b"END:VCALENDAR\r\n")
    elif case == "no file":
        got = add_url(client, "nofile", "", kind="file")
    elif case == "bad name":
        got = add_upload(client, "a/b", "g.ics", google)
    elif case == "empty name":
        got = add_upload(client, "", "g.ics", google)
    elif case == "duplicate":
        got = add_upload(client, "project", "g.ics", google)
    elif case == "unknown zone":
        got = add_upload(client, "zoned", "g.ics", google, tz="Mars/Olympus")
    elif case == "url 404":
        server.serve(b"", status=404)
        got = add_url(client, "web", server.url())
    elif case == "url html":
        server.serve(b"<!doctype html><title>Sign in</title>", content_type="text/html")
        got = add_url(client, "web", server.url())
    elif case == "server path":
        got = add_url(client, "local", str(OUTLOOK))
    elif case == "no url":
        got = add_url(client, "nourl", "  ")
    elif case == "bad interval":
        server.serve(AWKWARD)
        got = add_url(client, "often", server.url(), every="1m")
    else:
        got = add_url(client, "odd", server.url(), kind="path")
    assert got.status == status, got.text
    error = line(got, "error")
    assert error.startswith("The calendar was not added: ") and message in error, error
    assert "\n" not in error and "Traceback" not in got.text
    assert 'type="file"' in got.text  # the form again, to correct
    assert adding.state() == before
    assert SECRET not in got.text
    if case == "too large":  # what was typed before the file comes back
        assert 'id="name" name="name" value="big"' in got.text


def test_a_failed_add_leaves_no_new_owner_behind(adding: Console, server: SourceServer) -> None:
    """A first calendar that fails takes back the owner row its add created, too."""
    before = adding.state()
    server.serve(b"", status=404)
    got = add_url(adding.client(CARL), "first", server.url())
    assert got.status == 422
    assert adding.state() == before
    assert add_upload(adding.client(CARL), "first", "b.bin", _binary()).status == 422
    assert adding.state() == before


def test_an_upload_needs_its_form_field_before_the_file(
    adding: Console,
) -> None:
    client = adding.client()
    client.get(ADD_CALENDAR_ROUTE)
    before = adding.state()
    fields = [("name", "late"), ("kind", "file")]
    for csrf in ("0" * 64, "é", ""):
        got = client.post_multipart(
            ADD_CALENDAR_ROUTE, [("csrf", csrf), *fields], {"file": ("g.ics", GOOGLE.read_bytes())}
        )
        assert got.status == 403 and "nothing was changed" in got.text
    # the right field, but after the file (no browser sends our form so): refused
    boundary = "----calshare-file-first"
    body = b"".join(
        [
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
            f'filename="g.ics"\r\n\r\n'.encode(),
            GOOGLE.read_bytes(),
            f'\r\n--{boundary}\r\nContent-Disposition: form-data; name="csrf"\r\n\r\n'
            f"{client.csrf}\r\n--{boundary}--\r\n".encode(),
        ]
    )
    got = client.request(
        ADD_CALENDAR_ROUTE, body, content_type=f"multipart/form-data; boundary={boundary}"
    )
    assert got.status == 403
    assert adding.state() == before


# --- History


def test_history_says_what_happened_newest_first_in_the_calendars_zone(
    console: Console,
) -> None:
    add_calendar(console.store, console.clock, "project", ANN, "Europe/Oslo", "UTC")
    source = console.tmp_path / "p.ics"
    source.write_bytes(AWKWARD)
    import_calendar(console.store, console.settings, console.clock, "project", str(source))
    store, settings, clock = console.store, console.settings, console.clock
    first = clock.now()
    outcome = share(store, settings, clock, "project", BOB, Level.TITLES, owner=ANN)
    assert outcome.message_id is not None
    invitation = invitation_of(console.db_path, outcome.message_id, "project", BOB)
    clock.advance(timedelta(minutes=5))
    recipient = f"accept+{invitation.token}@{DOMAIN}"
    answered = deliver(console.inbox.smtp, reply(to=recipient, sender=BOB), recipient, BOB)
    assert answered.code == 250, answered
    clock.advance(timedelta(minutes=5))
    share(store, settings, clock, "project", BOB, Level.DETAILS, owner=ANN)
    share(store, settings, clock, "project", CARL, Level.FREE_BUSY, owner=ANN)
    unshare(store, settings, clock, "project", CARL, owner=ANN)
    publish(store, settings, clock, "project", Level.FREE_BUSY, owner=ANN)
    clock.advance(timedelta(hours=1))
    unpublish(store, settings, clock, "project", owner=ANN)
    project = get_calendar(store.db, "project", ANN)

    got = console.client().get(calendar_page_path(project.id, ConsolePage.HISTORY))
    assert got.status == 200
    rows = [
        [html.unescape(re.sub(r"<[^>]+>", "", cell)).strip() for cell in cells]
        for cells in (
            re.findall(r"<td>(.*?)</td>", row) for row in re.findall(r"<tr><td>.*?</tr>", got.text)
        )
    ]
    whats = [row[1] for row in rows]
    assert whats == [
        "Unpublished",
        "Published: Can view when I'm busy",
        f"{CARL} was removed",
        f"{CARL} was invited: Can view when I'm busy",
        f"{BOB}: level changed from Can view titles and locations to Can view all details",
        f"{BOB} accepted: Can view titles and locations",
        f"{BOB} was invited: Can view titles and locations",
    ]
    oslo = ZoneInfo("Europe/Oslo")
    assert rows[-1][0] == first.astimezone(oslo).strftime("%Y-%m-%d %H:%M")
    assert rows[0][0] == clock.now().astimezone(oslo).strftime("%Y-%m-%d %H:%M")
    assert rows[2][2] == "had been invited"
    assert "Times are in Europe/Oslo." in got.text
    assert 'aria-current="page"' in got.text
    assert "Older" not in got.text


def test_history_says_when_the_source_failed_and_came_back(
    console: Console, server: SourceServer
) -> None:
    console.calendar("project")  # Ann may add
    server.serve(AWKWARD)
    assert add_url(console.client(), "family", server.url()).status == 303
    family = get_calendar(console.store.db, "family", ANN)
    server.serve(b"", status=404)
    for _ in range(2):  # failing, then failing past sources.notify_after: the owner is told
        refresh_one(console.store, console.settings, console.clock, family.id)
        console.clock.advance(timedelta(seconds=console.settings.sources.notify_after + 60))
    server.serve(AWKWARD + b"\r\n")
    refresh_one(console.store, console.settings, console.clock, family.id)
    got = console.client().get(calendar_page_path(family.id, ConsolePage.HISTORY))
    page = html.unescape(got.text)
    shown = f"http://127.0.0.1:{server.port}/…"
    failed = page.index(f"Its source {shown} stopped working</td><td>the address no longer exists")
    assert page.index(f"Its source {shown} works again") < failed  # newest first
    assert SECRET not in page


def test_history_shows_the_200_newest_and_links_to_older(console: Console) -> None:
    project = console.calendar("project")
    with console.store.write() as db:
        for number in range(205):
            lifecycle.audit(db, console.clock.now(), "invited", project.id, f"p{number}@x.org", "")
    client = console.client()
    path = calendar_page_path(project.id, ConsolePage.HISTORY)
    newest = client.get(path).text
    assert newest.count("<tr><td>") == 200
    assert "p204@x.org" in newest and "p4@x.org was" not in newest
    older = re.search(r'href="([^"]+before=\d+)"', newest)
    assert older is not None
    rest = client.get(html.unescape(older[1])).text
    assert rest.count("<tr><td>") == 5 and "p0@x.org" in rest and "p5@x.org" not in rest
    assert client.get(path + "?before=x").status == 400


# --- languages


def test_the_pages_speak_norwegian_when_asked_and_the_cookie_wins(console: Console) -> None:
    project = console.calendar("project")
    client = console.client()
    client.accept_language = "nb-NO,nb;q=0.9"
    listing = html.unescape(client.get(CALENDARS_ROUTE).text)
    assert '<html lang="nb">' in listing and "Mine kalendere</h1>" in listing
    assert "Ikke publisert" in listing and "Tidssone: Europe/Oslo" in listing
    assert "Legg til fra" in html.unescape(client.get(ADD_CALENDAR_ROUTE).text)
    history = client.get(calendar_page_path(project.id, ConsolePage.HISTORY)).text
    assert "Historikk for project" in history
    client.cookies[LANG_COOKIE] = "en"
    assert "My calendars</h1>" in client.get(CALENDARS_ROUTE).text
    failed = add_upload(client, "a/b", "g.ics", GOOGLE.read_bytes())
    assert line(failed, "error").startswith("The calendar was not added")
    client.cookies[LANG_COOKIE] = "nb"
    failed = add_upload(client, "a/b", "g.ics", GOOGLE.read_bytes())
    assert line(failed, "error").startswith("Kalenderen ble ikke lagt til")


# --- authorization


@pytest.mark.parametrize("who", ["nobody", "ended", "too old"])
def test_without_a_live_session_pages_go_to_sign_in_and_adding_is_refused(
    console: Console, who: str
) -> None:
    """Beside the matrix (which ages a session by idleness): past ``owners.max_hours``."""
    project = console.calendar("project")
    pages = [CALENDARS_ROUTE, ADD_CALENDAR_ROUTE]
    pages.append(calendar_page_path(project.id, ConsolePage.HISTORY))
    client = console.client()
    client.get(ADD_CALENDAR_ROUTE)  # a real form field of a session that then ends
    if who == "nobody":
        client.cookies.clear()
    elif who == "ended":
        with console.store.write() as db:
            assert sessions.end(db, client.cookies[sessions.COOKIE], console.clock.now())
    else:
        console.clock.advance(timedelta(hours=console.settings.owners.max_hours, minutes=1))
    before = console.state()
    for path in pages:
        got = client.get(path)
        assert got.status == 303 and got.headers["Location"].startswith("/signin?next=")
    posted = client.post(ADD_CALENDAR_ROUTE, {"name": "x", "kind": "url", "url": "https://a.b/"})
    assert posted.status == 403
    fields = {"name": "y", "kind": "file"}
    uploaded = client.post_multipart(ADD_CALENDAR_ROUTE, fields, {"file": ("g.ics", b"x")})
    assert uploaded.status == 403
    assert console.state() == before


def test_another_owner_gets_404_on_history_and_a_forged_urlencoded_form_changes_nothing(
    console: Console,
) -> None:
    """Beside tests/test_console_authorization.py's matrix: the form sent urlencoded."""
    project = console.calendar("project")
    zoe = console.client(ZOE)
    assert zoe.get(calendar_page_path(project.id, ConsolePage.HISTORY)).status == 404
    assert zoe.get("/calendars/999/history").status == 404
    ann = console.client()
    ann.get(ADD_CALENDAR_ROUTE)
    before = console.state()
    for csrf in ("0" * 64, "", zoe.get(CALENDARS_ROUTE) and zoe.csrf):
        got = ann.post(
            ADD_CALENDAR_ROUTE, {"csrf": csrf, "name": "x", "kind": "url", "url": "https://a.b/"}
        )
        assert got.status == 403
    missing = ann.request(
        ADD_CALENDAR_ROUTE,
        b"name=x&kind=url&url=https%3A%2F%2Fa.b%2F",
        content_type="application/x-www-form-urlencoded",
    )
    assert missing.status == 403
    assert console.state() == before
