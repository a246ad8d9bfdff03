"""The console's Publish and E-mail calendar pages over real HTTP: the daemon, its
SQLite file, a real WebDAV server (WsgiDAV), and the outbox the sends fill.

Publish: the links shown once (only a hash is kept) work, Reset retires them (410),
Unpublish kills them; the WebDAV copy. E-mail: the preview is the exact mail, Send
queues one per recipient; every range; bad input is one line and stores nothing;
free-busy shows no title anywhere; every GET and POST refuses other owners, no
session, an ended session and a forged or missing anti-forgery field.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import icalendar
import pytest

from calshare import sessions
from calshare.clock import FixedClock
from calshare.console.base import LANG_COOKIE
from calshare.console.email_pages import range_text, split_recipients
from calshare.console.publish_pages import FormProblem, levels_offered, parse_form
from calshare.levels import Level
from calshare.links import ConsolePage, calendar_page_path
from tests.support.console import ANN, ZOE, Client, Console, console, running_console
from tests.support.dav import Dav, dav
from tests.support.inbox import queued, tables_holding
from tests.support.publish import WEBDAV_ENV, local
from tests.support.snapshot import HOSTILE
from tests.support.web import http

__all__ = ["console", "dav"]

ALLOWED = "https://dav.example.org/calshare/"  # [owners] webdav_folders of most tests
CONSOLE_ENV = {
    **WEBDAV_ENV,
    "CALSHARE_POLICY_GROUPS": "all@example.org",
    "CALSHARE_OWNERS_WEBDAV_FOLDERS": ALLOWED,
}
TITLES = ("Night shift handover", "Stand-up", "Holiday on the last day", "Floating coffee")
# what the next 7 days from 2027-03-20 hold, and what they do not
WEEK = ("Night shift handover", "Stand-up")
LATER = ("Holiday on the last day",)
LINK = re.compile(r'id="(link-page|link-ics|link-subscribe)" value="([^"]+)"')
ALERT = re.compile(r'<p class="error" role="alert">([^<]+)</p>')


@pytest.fixture
def dav_console(db_path: Path, clock: FixedClock, tmp_path: Path, dav: Dav) -> Iterator[Console]:
    """The console with the test WebDAV server's root as the owners' allowed folder, and
    private addresses allowed (it listens on 127.0.0.1), as the operator would set it."""
    root = dav.url.removesuffix("calendars/")
    env = {
        **CONSOLE_ENV,
        "CALSHARE_OWNERS_WEBDAV_FOLDERS": root,
        "CALSHARE_OWNERS_PRIVATE_SOURCES": "true",
    }
    with running_console(db_path, clock, tmp_path, **env) as running:
        yield running


def publish_path(console: Console) -> str:
    calendar = console.calendar("awkward")
    return calendar_page_path(calendar.id, ConsolePage.PUBLISH)


def email_path(console: Console, name: str = "awkward", ics: bytes | None = None) -> str:
    calendar = console.calendar(name) if ics is None else console.calendar(name, ics=ics)
    return calendar_page_path(calendar.id, ConsolePage.EMAIL)


def links(page: str) -> dict[str, str]:
    return {name: html.unescape(value) for name, value in LINK.findall(page)}


def publish(client: Client, path: str, **fields: str) -> dict[str, str]:
    client.get(path)
    got = client.post(path, {"action": "publish", "level": "free-busy", **fields})
    assert got.status == 200, got.text
    found = links(got.text)
    assert set(found) == {"link-page", "link-ics", "link-subscribe"}, got.text
    return found


def frame_of(page: str) -> str:
    """The previewed mail's HTML, as the sandboxed frame gets it from its srcdoc."""
    found = re.search(r'srcdoc="([^"]*)"', page)
    assert found, page
    return html.unescape(found[1])


def alert(text: str) -> str:
    found = ALERT.search(text)
    assert found, text
    return html.unescape(found[1])


# --- Publish


def test_publish_at_free_busy_shows_links_once_and_they_work(console: Console) -> None:
    path = publish_path(console)
    client = console.client(ANN)
    page = client.get(path)
    assert page.status == 200 and page.headers["Cache-Control"] == "no-store"
    # policy allows free-busy at most: the drop-down offers nothing above it
    assert "Can view when I&#39;m busy" in page.text or "Can view when I'm busy" in page.text
    assert "Can view titles and locations" not in page.text
    got = client.post(path, {"action": "publish", "level": "free-busy"})
    assert got.status == 200
    assert "note these links now" in got.text.lower()
    made = links(got.text)
    assert made["link-subscribe"].startswith("webcal://") and made["link-ics"].endswith(".ics")
    for field in made:
        assert f'data-copy="{field}"' in got.text
    ics = http(local(console.base, made["link-ics"]))
    assert ics.status == 200
    assert not any(title in ics.text for title in TITLES)
    assert icalendar.Calendar.from_ical(ics.body).walk("VEVENT")
    assert http(local(console.base, made["link-page"]) + "?month=2027-03").status == 200
    # only the hash is kept: a later visit says since when, never the links
    secret = made["link-page"].rsplit("/", 1)[1]
    assert tables_holding(console.db_path, secret) == set()
    later = client.get(path)
    assert secret not in later.text and "link-ics" not in later.text
    assert "Published at “Can view when I" in later.text and "since" in later.text
    assert "Reset links" in later.text and "Unpublish" in later.text


def test_reset_links_retires_the_old_ones(console: Console) -> None:
    path = publish_path(console)
    client = console.client(ANN)
    old = publish(client, path)
    new = publish(client, path)
    assert new["link-ics"] != old["link-ics"]
    for name in ("link-ics", "link-page"):
        assert http(local(console.base, old[name])).status == 410
        assert http(local(console.base, new[name])).status == 200


def test_unpublish_kills_the_links(console: Console) -> None:
    path = publish_path(console)
    client = console.client(ANN)
    made = publish(client, path)
    got = client.post(path, {"action": "unpublish"})
    assert got.status == 303 and got.headers["Location"] == f"{path}?done=unpublished"
    for name in ("link-ics", "link-page"):
        assert http(local(console.base, made[name])).status == 410
    after = client.get(got.headers["Location"])
    assert "Unpublished: its links no longer work." in after.text
    assert "Unpublish" not in after.text.replace("Unpublished:", "")
    # unpublishing what is not published is one line, nothing changed
    before = console.state()
    again = client.post(path, {"action": "unpublish"})
    assert again.status == 409 and "is not published" in alert(again.text)
    assert console.state() == before


@pytest.mark.parametrize(
    ("fields", "says"),
    [
        ({"action": "publish", "level": "titles"}, "Choose a level from the list"),
        ({"action": "publish", "level": "admin"}, "Choose a level from the list"),
        ({"action": "publish"}, "Choose a level from the list"),
        ({"action": "publish", "level": "free-busy", "webdav": "ftp://x/"}, "WebDAV folder"),
        ({"action": "publish", "level": "free-busy", "webdav": "x" * 3000}, "WebDAV folder"),
        (
            {"action": "publish", "level": "free-busy", "webdav": "https://dav.example.org/x/"},
            f"inside one of the folders this server allows ({ALLOWED})",
        ),
        (
            {"action": "publish", "level": "free-busy", "webdav": f"{ALLOWED[:-1]}-evil/"},
            "inside one of the folders this server allows",
        ),
        (
            {
                "action": "publish",
                "level": "free-busy",
                "webdav": "https://u@dav.example.org/calshare/",
            },
            "inside one of the folders this server allows",
        ),
        ({"action": "launch"}, "not a button of this page"),
        ({"action": "push"}, "is not published"),
    ],
)
def test_bad_publish_input_is_one_line_and_stores_nothing(
    console: Console, fields: dict[str, str], says: str
) -> None:
    path = publish_path(console)
    client = console.client(ANN)
    client.get(path)
    before = console.state()
    got = client.post(path, fields)
    assert got.status in (409, 422)
    assert says in alert(got.text) and "Traceback" not in got.text
    assert console.state() == before


def test_the_form_offers_and_takes_no_level_above_policy() -> None:
    assert levels_offered(None) == []
    assert levels_offered(Level.TITLES) == [Level.FREE_BUSY, Level.TITLES]
    form = {"action": "publish", "level": "details"}
    with pytest.raises(FormProblem, match="Choose a level"):
        parse_form(form, Level.TITLES, "en")
    with pytest.raises(FormProblem, match="Publishing is turned off"):
        parse_form(form, None, "en")
    assert parse_form(form, Level.DETAILS, "en").level is Level.DETAILS
    # withdrawing needs no level, even with publishing turned off since
    assert parse_form({"action": "unpublish"}, None, "en").action == "unpublish"


@pytest.mark.network
def test_publishing_to_webdav_from_the_page(dav_console: Console, dav: Dav) -> None:
    console = dav_console
    path = publish_path(console)
    client = console.client(ANN)
    assert 'list="webdav-folders"' in client.get(path).text  # the allowed folder, offered
    made = publish(client, path, webdav=dav.url)
    written = dav.file("awkward.ics")
    assert written.exists() and dav.file("awkward.html").exists()
    assert not any(title in written.read_text() for title in TITLES)
    later = client.get(path)
    assert f"WebDAV folder {dav.url}" in later.text
    pushed = client.post(path, {"action": "push"})
    assert pushed.status == 303 and pushed.headers["Location"].endswith("done=webdav_pushed")
    assert http(local(console.base, made["link-ics"])).status == 200  # push keeps the links
    assert client.post(path, {"action": "unpublish"}).status == 303
    assert not written.exists()


@pytest.mark.network
def test_a_webdav_refusal_is_one_line_and_the_links_still_work(
    dav_console: Console, dav: Dav
) -> None:
    console = dav_console
    path = publish_path(console)
    client = console.client(ANN)
    client.get(path)
    readonly = dav.url.replace("/calendars/", "/readonly/")
    got = client.post(path, {"action": "publish", "level": "free-busy", "webdav": readonly})
    assert got.status == 200
    assert alert(got.text).startswith("The links work")
    made = links(got.text)
    assert http(local(console.base, made["link-ics"])).status == 200


@pytest.mark.network
def test_a_folder_outside_the_allowed_ones_is_refused_before_any_request(
    db_path: Path, clock: FixedClock, tmp_path: Path, dav: Dav
) -> None:
    """Only the server's own calendars/ folder is allowed: its readonly/ sibling, on the
    same server, is refused on the page; nothing is stored and no request reaches it."""
    env = {
        **CONSOLE_ENV,
        "CALSHARE_OWNERS_WEBDAV_FOLDERS": dav.url,
        "CALSHARE_OWNERS_PRIVATE_SOURCES": "true",
    }
    with running_console(db_path, clock, tmp_path, **env) as console:
        path = publish_path(console)
        client = console.client(ANN)
        client.get(path)
        before = console.state()
        for outside in (dav.url.replace("/calendars/", "/readonly/"), dav.url[:-1] + "-x/"):
            got = client.post(path, {"action": "publish", "level": "free-busy", "webdav": outside})
            assert got.status == 422
            assert alert(got.text) == (
                f"The WebDAV folder must be inside one of the folders this server allows "
                f"({dav.url}); nothing was published."
            )
        assert console.state() == before and dav.seen == []


def test_with_no_folders_allowed_there_is_no_field_and_a_posted_one_is_refused(
    db_path: Path, clock: FixedClock, tmp_path: Path
) -> None:
    env = {key: value for key, value in CONSOLE_ENV.items() if "WEBDAV_FOLDERS" not in key}
    with running_console(db_path, clock, tmp_path, **env) as console:
        path = publish_path(console)
        client = console.client(ANN)
        page = client.get(path)
        assert 'name="webdav"' not in page.text and 'name="level"' in page.text
        before = console.state()
        got = client.post(
            path, {"action": "publish", "level": "free-busy", "webdav": "https://dav.example.org/"}
        )
        assert got.status == 422 and "offers no WebDAV folder" in alert(got.text)
        assert console.state() == before
        client.cookies[LANG_COOKIE] = "nb"
        got = client.post(path, {"action": "publish", "level": "free-busy", "webdav": "https://x/"})
        assert "tilbyr ingen WebDAV-mappe" in alert(got.text)
        assert console.state() == before


@pytest.mark.network
def test_the_consoles_webdav_requests_are_guarded_unless_private_addresses_are_allowed(
    db_path: Path, clock: FixedClock, tmp_path: Path, dav: Dav
) -> None:
    """An allowed folder whose server is on the loopback: with ``owners.private_sources``
    false the links are made, the copy is refused before a request is sent."""
    env = {**CONSOLE_ENV, "CALSHARE_OWNERS_WEBDAV_FOLDERS": dav.url}
    with running_console(db_path, clock, tmp_path, **env) as console:
        path = publish_path(console)
        client = console.client(ANN)
        client.get(path)
        got = client.post(path, {"action": "publish", "level": "free-busy", "webdav": dav.url})
        assert got.status == 200, got.text
        said = alert(got.text)
        assert said.startswith("The links work") and "inside the server's own network" in said
        assert "(127.0.0.1); ask the operator" in said
        assert http(local(console.base, links(got.text)["link-ics"])).status == 200
        assert dav.seen == [] and not dav.file("awkward.ics").exists()


# --- E-mail calendar


def preview(client: Client, path: str, **fields: str) -> str:
    client.get(path)
    form = {"action": "preview", "range": "next-7-days", "detail": "details", "layout": "daily"}
    got = client.post(path, {**form, **fields})
    assert got.status == 200, got.text
    return got.text


def test_recipients_and_ranges_as_typed() -> None:
    typed = " bob@example.org,carol@example.net;\r\nDan <dan@example.org>\n,"
    expected = ["bob@example.org", "carol@example.net", "Dan <dan@example.org>"]
    assert split_recipients(typed) == expected
    assert range_text("next-30-days", "2027-01-01", "", "en") == "next-30-days"
    assert range_text("dates", " 2027-03-01", "2027-03-31 ", "en") == "2027-03-01..2027-03-31"
    with pytest.raises(ValueError, match="Choose a date range"):
        range_text("2027-03-01..2027-03-31", "", "", "en")  # only the page's own choices


def test_preview_is_the_exact_mail_and_sends_nothing(console: Console) -> None:
    path = email_path(console)
    client = console.client(ANN)
    before = console.state()
    page = preview(client, path)
    assert console.state() == before
    assert 'sandbox="" srcdoc="' in page
    assert page.lower().count("<script") == 1  # the console's own file; none from the mail
    frame = frame_of(page)
    assert all(title in frame for title in WEEK) and not any(t in frame for t in LATER)
    assert 'class="subject">' in page and "awkward" in page
    assert "awkward.ics" in page  # the attachment, named
    assert f"<dd>{ANN}</dd>" in page  # no recipient: the owner's own copy


def test_send_to_two_queues_two_snapshot_mails_with_the_ics(console: Console) -> None:
    path = email_path(console)
    client = console.client(ANN)
    client.get(path)
    got = client.post(
        path,
        {
            "action": "send",
            "range": "next-7-days",
            "detail": "titles",
            "layout": "list",
            "to": "bob@example.org,\ncarol@example.net",
        },
    )
    assert got.status == 303, got.text
    assert got.headers["Location"] == f"{path}?done=emailed&count=2"
    mails = queued(console.db_path, "o.kind = ?", ("snapshot",))
    recipients = sorted(json.loads(mail.recipients)[0] for mail in mails)
    assert recipients == ["bob@example.org", "carol@example.net"]
    for mail in mails:
        assert "Stand-up" in mail.text and "Holiday" not in mail.text
        attached = [part.get_filename() for part in mail.message.iter_attachments()]
        assert attached == ["awkward.ics"]
    done = client.get(got.headers["Location"])
    assert "Sent: 2 mails are in the outbox, one per recipient." in done.text


@pytest.mark.parametrize(
    ("fields", "shown", "hidden"),
    [
        ({"range": "today"}, (), TITLES),
        ({"range": "tomorrow"}, (), TITLES),
        ({"range": "next-7-days"}, WEEK, LATER),
        ({"range": "next-30-days"}, WEEK + LATER, ()),
        ({"range": "whole"}, WEEK + LATER, ()),
        ({"range": "dates", "first": "2027-03-29", "last": "2027-03-29"}, LATER, WEEK),
    ],
)
def test_each_range(
    console: Console, fields: dict[str, str], shown: tuple[str, ...], hidden: tuple[str, ...]
) -> None:
    page = preview(console.client(ANN), email_path(console), **fields)
    frame = frame_of(page)
    assert all(title in frame for title in shown), fields
    assert not any(title in frame for title in hidden), fields


@pytest.mark.parametrize(
    ("fields", "says"),
    [
        ({"range": "fortnight"}, "Choose a date range from the list"),
        ({"range": "dates", "first": "2027-03-29"}, "needs both a start and an end date"),
        ({"range": "dates", "first": "", "last": ""}, "needs both a start and an end date"),
        ({"range": "dates", "first": "29.03.2027", "last": "2027-03-30"}, "YYYY-MM-DD"),
        ({"range": "dates", "first": "2027-03-29", "last": "2027-03-01"}, "ends before it starts"),
        ({"detail": "everything"}, "Choose a detail from the list"),
        ({"layout": "poster"}, "Choose a layout from the list"),
        ({"to": "bob at example.org"}, "bob at example.org"),
        ({"to": "bob@example.org, all@example.org"}, "group address"),
        ({"to": " , "}, "Name at least one recipient"),
        ({"to": ""}, "Name at least one recipient"),
        ({"action": "post"}, "not a button of this page"),
    ],
)
def test_bad_email_input_is_one_line_and_queues_nothing(
    console: Console, fields: dict[str, str], says: str
) -> None:
    path = email_path(console)
    client = console.client(ANN)
    client.get(path)
    before = console.state()
    form = {
        "action": "send",
        "range": "next-7-days",
        "detail": "titles",
        "layout": "daily",
        "to": "bob@example.org",
    }
    got = client.post(path, {**form, **fields})
    assert got.status == 422, got.text
    assert says in alert(got.text) and "Traceback" not in got.text
    assert console.state() == before
    if "to" not in fields:  # what was typed stays in the form
        assert ">bob@example.org</textarea>" in got.text


def test_free_busy_shows_no_title_in_the_preview_nor_the_mail(console: Console) -> None:
    path = email_path(console)
    client = console.client(ANN)
    page = preview(client, path, detail="free-busy", range="whole", to="bob@example.org")
    assert not any(title in html.unescape(page) for title in TITLES)
    got = client.post(
        path,
        {"action": "send", "range": "whole", "detail": "free-busy", "layout": "list",
         "to": "bob@example.org"},
    )  # fmt: skip
    assert got.status == 303
    (mail,) = queued(console.db_path, "o.kind = ?", ("snapshot",))
    whole = mail.raw.decode("utf-8", "replace")
    assert "Busy" in mail.text
    for part in mail.message.walk():
        if part.get_content_maintype() != "multipart":
            body = part.get_content()
            text = body if isinstance(body, str) else body.decode("utf-8", "replace")
            assert not any(title in text for title in TITLES), part.get_content_type()
    assert not any(title in whole for title in TITLES)


def test_policy_caps_a_recipient_and_the_preview_says_so(console: Console) -> None:
    page = preview(
        console.client(ANN), email_path(console), to="bob@example.org, carol@example.net"
    )
    # example.org is internal (all details); example.net is outside: titles at most
    assert page.count('<article class="mail-preview">') == 2
    assert "<dd>Can view all details</dd>" in page
    assert "Can view titles and locations (policy allows no more)" in page
    assert "<dd>bob@example.org</dd>" in page and "<dd>carol@example.net</dd>" in page


def test_a_hostile_calendar_cannot_run_in_the_preview(console: Console) -> None:
    path = email_path(console, "hostile", HOSTILE.encode())
    page = preview(console.client(ANN), path, range="dates", first="2026-11-27", last="2026-11-27")
    assert "<script>alert" not in page and "<img src=x" not in page
    frame = frame_of(page)
    assert "&lt;script&gt;alert" in frame  # the title, as text, in the mail


def test_the_share_page_can_prefill_the_recipients(console: Console) -> None:
    path = email_path(console)
    page = console.client(ANN).get(path + "?to=bob%40ext.example&to=%22%3E%3Cb%3E")
    assert page.status == 200
    assert "bob@ext.example, &#34;&gt;&lt;b&gt;</textarea>" in page.text


def test_both_pages_speak_norwegian(console: Console) -> None:
    calendar = console.calendar("awkward")
    client = console.client(ANN)
    client.accept_language = "nb"
    email = client.get(calendar_page_path(calendar.id, ConsolePage.EMAIL))
    assert "Neste 7 dager" in email.text and "Dagsplan" in email.text
    assert "Kan se titler og steder" in email.text  # the levels in Outlook's Norwegian words
    publish_page = client.get(calendar_page_path(calendar.id, ConsolePage.PUBLISH))
    assert 'lang="nb"' in publish_page.text and "Publiser denne kalenderen" in publish_page.text
    got = client.post(
        calendar_page_path(calendar.id, ConsolePage.EMAIL),
        {"action": "send", "range": "fortnight", "detail": "titles", "layout": "daily"},
    )
    assert alert(got.text) == "Velg et datoområde fra listen; ingenting ble sendt."


# --- authorization: every GET and POST of both pages


POSTS = {
    ConsolePage.PUBLISH: {"action": "publish", "level": "free-busy"},
    ConsolePage.EMAIL: {
        "action": "send",
        "range": "next-7-days",
        "detail": "titles",
        "layout": "daily",
        "to": "bob@example.org",
    },
}


def _end(console: Console) -> Callable[[Client], None]:
    def end(client: Client) -> None:
        with console.store.write() as db:
            sessions.end(db, client.cookies[sessions.COOKIE], console.clock.now())

    return end


@pytest.mark.parametrize("page", [ConsolePage.PUBLISH, ConsolePage.EMAIL])
def test_another_owner_gets_404_and_changes_nothing(console: Console, page: ConsolePage) -> None:
    calendar = console.calendar("awkward")
    hers = console.calendar("zoes", owner=ZOE)
    path = calendar_page_path(calendar.id, page)
    zoe = console.client(ZOE)
    assert zoe.get(path).status == 404
    assert zoe.get(calendar_page_path(hers.id, page)).status == 200  # a live csrf field
    before = console.state()
    assert zoe.post(path, POSTS[page]).status == 404
    assert zoe.post(path, {**POSTS[page], "action": "unpublish"}).status == 404
    assert console.state() == before
    assert zoe.get(calendar_page_path(999, page)).status == 404


@pytest.mark.parametrize("page", [ConsolePage.PUBLISH, ConsolePage.EMAIL])
def test_no_session_an_ended_one_or_a_forged_form_changes_nothing(
    console: Console, page: ConsolePage
) -> None:
    calendar = console.calendar("awkward")
    path = calendar_page_path(calendar.id, page)
    nobody = console.client(None)
    got = nobody.get(path)
    assert got.status == 303 and got.headers["Location"].startswith("/signin?next=")
    before = console.state()
    assert nobody.post(path, POSTS[page]).status == 403
    ann = console.client(ANN)
    assert ann.get(path).status == 200
    assert ann.post(path, {**POSTS[page], "csrf": "0" * 64}).status == 403
    assert ann.post(path, [(k, v) for k, v in POSTS[page].items()] + [("csrf", "")]).status == 403
    _end(console)(ann)
    assert ann.post(path, POSTS[page]).status == 403
    assert ann.get(path).status == 303
    assert console.state() == before
