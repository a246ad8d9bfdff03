"""Publishing: links anyone can open, served by the daemon; and copies pushed to WebDAV.

The daemon runs in-process with HTTP on port 0 (tests/support/inbox.Inbox); a real
WebDAV server (wsgidav on cheroot, from PyPI) runs on 127.0.0.1 with basic auth over a
temporary folder, so PUT, If-Match, 401, 409 and 412 are the server's own.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import icalendar
import pytest

from calshare.clock import FixedClock
from calshare.config import load_settings
from tests.support.dav import Dav, dav
from tests.support.inbox import Inbox, inbox_env, tables_holding
from tests.support.publish import (
    DETAILS_ALLOWED,
    USER,
    WEBDAV_ENV,
    Cli,
    calendar,
    command_named,
    daemon,
    local,
)
from tests.support.snapshot import AWKWARD, STAND_INS
from tests.support.web import SECURITY, http

__all__ = ["calendar", "daemon", "dav"]  # fixtures


def published(cli: Cli, *args: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    result = cli("publish", "awkward", *args, "--json", env=env)
    assert result.code == 0, result.err
    made: dict[str, Any] = result.json()
    return made


def test_publish_caps_the_level_and_prints_three_links(
    cli: Cli, calendar: None, db_path: Path
) -> None:
    made = published(cli, "--level", "details")
    assert made["level"] == "free-busy" and made["capped"] is True  # the default policy
    secret = re.fullmatch(r"http://127\.0\.0\.1:8080/p/([a-z2-7]{26})", made["html"])
    assert secret
    assert made["ics"] == made["html"] + ".ics"
    assert made["webcal"] == "webcal://127.0.0.1:8080/p/" + secret[1] + ".ics"
    text = cli("publish", "awkward", "--level", "titles", env=DETAILS_ALLOWED)
    assert text.code == 0 and "Anyone with these links can see it" in text.out
    assert "web page:  http://127.0.0.1:8080/p/" in text.out
    # only hashes are kept: the secret is in no table
    last = published(cli, "--level", "free-busy")
    assert tables_holding(db_path, last["html"].rsplit("/", 1)[1]) == set()


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (
            ["--level", "free-busy"],
            {"CALSHARE_POLICY_PUBLISH_MAX_LEVEL": "none"},
            "This calendar can't be published: publishing is turned off on this server",
        ),
        (["--level", "public"], {}, "Unknown level 'public'"),
        (["--level", "titles", "--webdav", "ftp://x/"], {}, "is not an http(s) URL"),
        (
            ["--level", "titles", "--webdav", "https://ann:pw@dav.example.org/"],
            {},
            "not in the URL",
        ),
    ],
)
def test_publish_refusals(
    cli: Cli, calendar: None, args: list[str], env: dict[str, str], message: str
) -> None:
    result = cli("publish", "awkward", *args, env=env)
    assert result.code == 2 and message in result.err, result.err
    assert "Traceback" not in result.err
    assert cli("unpublish", "awkward").code == 2  # nothing was published


def test_unpublish_when_not_published(cli: Cli, calendar: None) -> None:
    result = cli("unpublish", "awkward")
    assert result.code == 2 and "'awkward' is not published" in result.err


def test_published_links_serve_the_calendar_and_die_on_unpublish(
    cli: Cli, calendar: None, daemon: Inbox
) -> None:
    made = published(cli, "--level", "titles", env=DETAILS_ALLOWED)
    page = http(local(daemon.web, made["html"]) + "?month=2027-03")
    assert page.status == 200, page.text
    for name, value in SECURITY.items():
        assert page.headers[name] == value
    assert "Night shift handover" in page.text and "Stand-up (moved)" in page.text
    assert "<script" not in page.text.lower()
    secret = made["html"].rsplit("/", 1)[1]
    assert re.search(rf'href="webcal://[^"]+/p/{secret}\.ics"', page.text)
    assert "February 2027" in page.text and "April 2027" in page.text  # month navigation
    ics = http(local(daemon.web, made["ics"]))
    assert ics.status == 200 and ics.headers["Content-Type"] == "text/calendar; charset=utf-8"
    events = icalendar.Calendar.from_ical(ics.body).walk("VEVENT")
    assert events and all("DESCRIPTION" not in event for event in events)
    cached = http(local(daemon.web, made["ics"]), **{"If-None-Match": ics.headers["ETag"]})
    assert cached.status == 304
    assert http(local(daemon.web, made["html"]) + "?month=March").status == 400
    # only the feed window's months: a visitor cannot make the daemon expand decades
    far = http(local(daemon.web, made["html"]) + "?month=2199-12")
    assert far.status == 404 and "This page shows the months from" in far.text
    # and the page links only to months it serves (the window: 30 days back, a year ahead)
    first = http(local(daemon.web, made["html"]) + "?month=2027-02").text
    assert "January 2027" not in first and "?view=month&amp;date=2027-03-01" in first
    last = http(local(daemon.web, made["html"]) + "?month=2028-03").text
    assert "April 2028" not in last and "?view=month&amp;date=2028-02-01" in last
    # unpublish: both links are gone at once
    assert cli("unpublish", "awkward").code == 0
    assert http(local(daemon.web, made["html"])).status == 410
    assert http(local(daemon.web, made["ics"])).status == 410
    # publishing again gives new links; the old stay gone
    again = published(cli, "--level", "free-busy")
    assert again["html"] != made["html"]
    assert http(local(daemon.web, again["ics"])).status == 200
    assert http(local(daemon.web, made["ics"])).status == 410
    free_busy = http(local(daemon.web, again["html"]) + "?month=2027-03").text
    assert "Night shift" not in free_busy and "Busy" in free_busy
    assert http(daemon.web + "/p/" + "a" * 26).status == 404


def test_webdav_gets_both_files_and_follows_reimports(
    cli: Cli, calendar: None, dav: Dav, tmp_path: Path
) -> None:
    env = {**WEBDAV_ENV, **DETAILS_ALLOWED}
    made = published(cli, "--level", "titles", "--webdav", dav.url.rstrip("/"), env=env)
    assert made["webdav"] == dav.url
    ics, html = dav.file("awkward.ics"), dav.file("awkward.html")
    calendar_file = icalendar.Calendar.from_ical(ics.read_bytes())
    assert {str(e["SUMMARY"]) for e in calendar_file.walk("VEVENT")} >= {"Night shift handover"}
    page = html.read_text(encoding="utf-8")
    assert 'href="awkward.ics"' in page and "Stand-up" in page
    # a re-import writes both again (with If-Match: the server's files are still ours)
    changed = tmp_path / "changed.ics"
    changed.write_bytes(AWKWARD.replace(b"Night shift handover", b"Night shift briefing"))
    imported = cli("calendar", "import", "awkward", str(changed), env=env)
    assert imported.code == 0, imported.err
    assert "updated the published copy of 'awkward' on WebDAV" in imported.err
    assert b"Night shift briefing" in ics.read_bytes()
    assert "Night shift briefing" in html.read_text(encoding="utf-8")
    # someone edits the file on the server: the next push is refused, not overwritten
    ics.write_bytes(ics.read_bytes() + b"\r\n")
    again = tmp_path / "again.ics"
    again.write_bytes(AWKWARD)
    refused = cli("calendar", "import", "awkward", str(again), env=env)
    assert refused.code == 2
    assert "was changed on the WebDAV server since calshare last wrote it" in refused.err
    assert refused.err.startswith("calshare: error: Imported, but the published copy")
    # unpublish deletes what calshare put there, and leaves what someone else changed
    gone = cli("unpublish", "awkward", env=env)
    assert gone.code == 2
    assert (
        f"The links are withdrawn (they answer 410), but {dav.url}awkward.ics was changed on "
        "the WebDAV server since calshare last wrote it, so it stays there." in gone.err
    )
    assert "`calshare unpublish awkward` tries again" in gone.err
    assert not html.exists() and ics.exists()
    # once the other editor's copy is gone, a second unpublish finishes the job
    ics.unlink()
    assert cli("unpublish", "awkward", env=env).code == 0
    assert cli("unpublish", "awkward", env=env).code == 2  # now there is nothing left


def test_webdav_refusals_say_what_to_do(cli: Cli, calendar: None, dav: Dav) -> None:
    """The links are made first; a copy the server refuses says why, with exit 2."""
    both = {**WEBDAV_ENV, **DETAILS_ALLOWED}
    wrong = {**DETAILS_ALLOWED, "CALSHARE_WEBDAV_USERNAME": USER, "CALSHARE_WEBDAV_PASSWORD": "no"}
    cases = [
        (dav.url, wrong, "refused the user name or password"),
        (dav.url + "no-such-folder/", both, "does not exist on the WebDAV server (409 Conflict)"),
        (dav.url.replace("/calendars/", "/readonly/"), both, "does not allow writing"),
        ("http://127.0.0.1:9/", both, "Cannot reach the WebDAV server at 127.0.0.1:9"),
    ]
    for folder, env, message in cases:
        result = cli("publish", "awkward", "--level", "titles", "--webdav", folder, "--json",
                     env=env)  # fmt: skip
        assert result.code == 2, result.err
        assert message in result.err and "The links work and stay" in result.err, result.err
        assert result.err.count("\n") == 1 and "Traceback" not in result.err
        assert result.json()["webdav_error"]  # the links are printed all the same
    assert not list((dav.root / "calendars").iterdir())


def test_moving_or_dropping_the_webdav_copy_removes_the_old_one(
    cli: Cli, calendar: None, dav: Dav
) -> None:
    env = {**WEBDAV_ENV, **DETAILS_ALLOWED}
    (dav.root / "calendars" / "other").mkdir()
    published(cli, "--level", "details", "--webdav", dav.url, env=env)
    assert dav.file("awkward.ics").exists()
    # published again elsewhere: the details copy in the first folder goes
    published(cli, "--level", "free-busy", "--webdav", dav.url + "other/", env=env)
    assert not dav.file("awkward.ics").exists()
    assert (dav.root / "calendars" / "other" / "awkward.ics").exists()
    # published again without WebDAV: no copy is left anywhere
    published(cli, "--level", "free-busy", env=env)
    assert not (dav.root / "calendars" / "other" / "awkward.ics").exists()


def test_policy_lowered_later_lowers_what_links_show(
    cli: Cli, calendar: None, db_path: Path, clock: FixedClock
) -> None:
    made = published(cli, "--level", "details", env=DETAILS_ALLOWED)
    for env, expect in (({}, "free-busy"), ({"CALSHARE_POLICY_PUBLISH_MAX_LEVEL": "none"}, None)):
        settings = load_settings(None, env=inbox_env(**env))
        inbox = Inbox(settings, db_path, clock, http=True).start()
        try:
            got = http(local(inbox.web, made["ics"]))
        finally:
            inbox.stop()
        if expect is None:
            assert got.status == 410
        else:
            events = icalendar.Calendar.from_ical(got.body).walk("VEVENT")
            assert events and all(str(event["SUMMARY"]) in STAND_INS for event in events)


# --- issue 10: defects 4, 5, 7 and 9 against WsgiDAV


def test_publish_names_the_files_it_wrote_and_writes_them_conditionally(
    cli: Cli, calendar: None, dav: Dav, tmp_path: Path
) -> None:
    env = {**WEBDAV_ENV, **DETAILS_ALLOWED}
    text = cli("publish", "awkward", "--level", "titles", "--webdav", dav.url, env=env)
    assert text.code == 0, text.err
    assert "NAME" not in text.out  # no placeholder: the real URLs
    assert f"  WebDAV:    {dav.url}awkward.ics\n" in text.out
    assert f"             {dav.url}awkward.html\n" in text.out
    assert text.err == ""  # WsgiDAV gives ETags: nothing to warn about
    # the first write of each file says "only if there is nothing there yet"
    for name in ("awkward.ics", "awkward.html"):
        assert dav.conditions("PUT", "/calendars/" + name) == [{"If-None-Match": "*"}]
    # a re-import writes them again "only if still the one calshare wrote"
    changed = tmp_path / "changed.ics"
    changed.write_bytes(AWKWARD.replace(b"Night shift handover", b"Night shift briefing"))
    assert cli("calendar", "import", "awkward", str(changed), env=env).code == 0
    again = dav.conditions("PUT", "/calendars/awkward.ics")[-1]
    assert set(again) == {"If-Match"} and again["If-Match"].startswith('"')
    made = published(cli, "--level", "titles", "--webdav", dav.url, env=env)
    assert made["webdav_files"] == [dav.url + "awkward.ics", dav.url + "awkward.html"]
    assert made["webdav_etags"] is True


def test_first_write_never_replaces_a_file_calshare_did_not_write(
    cli: Cli, calendar: None, dav: Dav, daemon: Inbox
) -> None:
    env = {**WEBDAV_ENV, **DETAILS_ALLOWED}
    theirs = b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//someone else//EN\r\nEND:VCALENDAR\r\n"
    dav.file("awkward.ics").write_bytes(theirs)
    result = cli("publish", "awkward", "--level", "titles", "--webdav", dav.url, "--json",
                 env=env)  # fmt: skip
    assert result.code == 2
    assert (
        f"{dav.url}awkward.ics already exists on the WebDAV server and calshare did not "
        "write it" in result.err
    )
    assert "`calshare push awkward --force`" in result.err
    assert result.err.count("\n") == 1 and "Traceback" not in result.err
    assert dav.file("awkward.ics").read_bytes() == theirs  # untouched
    made = result.json()
    assert http(local(daemon.web, made["ics"])).status == 200  # the links work all the same
    # the way out the message names: replace it on purpose, the links stay
    forced = cli(*command_named(result.err), env=env)
    assert forced.code == 0, forced.err
    assert b"PRODID:-//someone else//EN" not in dav.file("awkward.ics").read_bytes()
    assert dav.file("awkward.html").exists()
    assert http(local(daemon.web, made["ics"])).status == 200


def test_a_changed_copy_never_blocks_the_links_and_force_clears_it(
    cli: Cli, calendar: None, dav: Dav, daemon: Inbox
) -> None:
    env = {**WEBDAV_ENV, **DETAILS_ALLOWED}
    published(cli, "--level", "titles", "--webdav", dav.url, env=env)
    ics = dav.file("awkward.ics")
    ics.write_bytes(ics.read_bytes() + b"\r\n")  # someone else edits the copy
    # publishing again without --webdav: new links all the same, the copy stays (said exactly)
    moved = cli("publish", "awkward", "--level", "free-busy", "--json", env=env)
    assert moved.code == 2
    made = moved.json()
    assert http(local(daemon.web, made["ics"])).status == 200
    assert (
        f"The old copy was not removed: {dav.url}awkward.ics was changed on the WebDAV server "
        "since calshare last wrote it, so it stays there." in moved.err
    )
    assert "Writing the copy again tries again (with force even if someone changed it)" in moved.err
    assert "(`calshare push awkward` tries again; `calshare push awkward --force` " in moved.err
    assert not dav.file("awkward.html").exists()  # what was still ours went
    # at any level, into the same folder: links again; the changed file is not replaced
    same = cli("publish", "awkward", "--level", "details", "--webdav", dav.url, "--json",
               env=env)  # fmt: skip
    assert same.code == 2
    assert http(local(daemon.web, same.json()["ics"])).status == 200
    assert "Writing the copy again with force replaces it with calshare's copy" in same.err
    assert "(`calshare push awkward --force` writes it even over someone else's change)" in same.err
    assert ics.read_bytes().endswith(b"\r\n\r\n")
    # unpublish: the links die whatever the server says, and it says what stays there
    gone = cli("unpublish", "awkward", env=env)
    assert gone.code == 2
    assert http(local(daemon.web, same.json()["ics"])).status == 410
    assert (
        f"The links are withdrawn (they answer 410), but {dav.url}awkward.ics was changed "
        "on the WebDAV server since calshare last wrote it, so it stays there." in gone.err
    )
    assert "`calshare unpublish awkward --force` deletes them even if someone changed them" in (
        gone.err
    )
    assert ics.exists()
    forced = cli("unpublish", "awkward", "--force", env=env)
    assert forced.code == 0, forced.err
    assert not ics.exists()
    assert "Removed what was left of 'awkward' on WebDAV" in forced.out
    assert "is not published" in cli("unpublish", "awkward", env=env).err


def test_unpublish_force_forgets_a_copy_it_cannot_delete_and_names_it(
    cli: Cli, calendar: None, dav: Dav, daemon: Inbox
) -> None:
    env = {**WEBDAV_ENV, **DETAILS_ALLOWED}
    made = published(cli, "--level", "titles", "--webdav", dav.url, env=env)
    locked_out = {**env, "CALSHARE_WEBDAV_PASSWORD": "changed since"}
    failed = cli("unpublish", "awkward", env=locked_out)
    assert failed.code == 2 and "refused the user name or password" in failed.err
    assert http(local(daemon.web, made["html"])).status == 410
    forgot = cli("unpublish", "awkward", "--force", env=locked_out)
    assert forgot.code == 0, forgot.err
    warnings = forgot.err.splitlines()
    assert len(warnings) == 2
    for line, name in zip(warnings, ("awkward.html", "awkward.ics"), strict=True):
        assert line.startswith(f"calshare: warning: {dav.url}{name} stays on the WebDAV server")
        assert "no longer keeps track of it" in line and "remove it there yourself" in line
    assert dav.file("awkward.ics").exists() and dav.file("awkward.html").exists()
    assert "is not published" in cli("unpublish", "awkward", env=env).err  # nothing tracked


def test_retrying_a_failed_copy_keeps_the_links(
    cli: Cli, calendar: None, dav: Dav, daemon: Inbox
) -> None:
    env = {**WEBDAV_ENV, **DETAILS_ALLOWED}
    folder = dav.url + "later/"
    result = cli("publish", "awkward", "--level", "titles", "--webdav", folder, "--json", env=env)
    assert result.code == 2
    assert "does not exist on the WebDAV server (409 Conflict)" in result.err
    made = result.json()
    (dav.root / "calendars" / "later").mkdir()  # the owner fixes the server
    retry = cli(*command_named(result.err), env=env)  # and runs what the message said
    assert retry.code == 0, retry.err
    assert "its links are unchanged" in retry.out and f"{folder}awkward.ics" in retry.out
    assert (dav.root / "calendars" / "later" / "awkward.html").exists()
    assert "The links work and stay as they are" in result.err
    for link in (made["html"], made["ics"]):
        assert http(local(daemon.web, link)).status == 200
    # and again: nothing changes, the links still work
    assert cli("push", "awkward", env=env).code == 0
    assert http(local(daemon.web, made["ics"])).status == 200


def test_push_force_removes_an_old_changed_copy_and_keeps_the_links(
    cli: Cli, calendar: None, dav: Dav, daemon: Inbox
) -> None:
    env = {**WEBDAV_ENV, **DETAILS_ALLOWED}
    published(cli, "--level", "details", "--webdav", dav.url, env=env)
    ics = dav.file("awkward.ics")
    ics.write_bytes(ics.read_bytes().replace(b"Night shift", b"Day shift"))
    moved = cli("publish", "awkward", "--level", "free-busy", "--json", env=env)
    assert moved.code == 2
    made = moved.json()
    retried = cli(*command_named(moved.err), env=env)  # `calshare push awkward`
    assert retried.code == 2 and "so it stays there" in retried.err and ics.exists()
    forced = cli("push", "awkward", "--force", env=env)
    assert forced.code == 0, forced.err
    assert f"Removed the old copy {dav.url}awkward.ics" in forced.out
    assert not ics.exists()
    assert http(local(daemon.web, made["ics"])).status == 200
    done = cli("push", "awkward", env=env)
    assert done.code == 0 and "No WebDAV copy of 'awkward' is left" in done.out


def test_a_file_created_just_before_the_first_write_is_refused_by_the_server(
    cli: Cli, calendar: None, dav: Dav
) -> None:
    """calshare looks first; someone creating the file right after that look is stopped by
    the server itself: the first PUT carries If-None-Match: * and WsgiDAV answers 412."""
    env = {**WEBDAV_ENV, **DETAILS_ALLOWED}
    theirs = "<html>created a moment ago by someone else</html>"
    html = dav.file("awkward.html")
    dav.after[("GET", "/calendars/awkward.html")] = lambda: html.write_text(theirs)
    result = cli("publish", "awkward", "--level", "titles", "--webdav", dav.url, env=env)
    assert result.code == 2
    assert dav.conditions("PUT", "/calendars/awkward.html") == [{"If-None-Match": "*"}]
    assert (
        f"{dav.url}awkward.html already exists on the WebDAV server and calshare did not "
        "write it" in result.err
    )
    assert html.read_text() == theirs
