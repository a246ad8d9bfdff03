"""The daemon's web side over real sockets: grant feeds and answer pages.

The daemon runs in-process (tests/support/inbox.Inbox) with SMTP, LMTP and HTTP
on port 0; requests are real HTTP over 127.0.0.1 (urllib), replies real SMTP.
Outgoing mail goes to a relay nothing listens on, so every mail stays in the outbox
for the test to read (as in the inbox tests).
"""

from __future__ import annotations

import gzip
import os
import re
import signal
import subprocess
import urllib.error
import urllib.request
from datetime import timedelta
from email.utils import format_datetime
from pathlib import Path

import icalendar
import pytest

from calshare.calendars import add_calendar
from calshare.clock import FixedClock
from calshare.config import load_settings
from calshare.importer import import_calendar
from calshare.levels import Level
from calshare.publishing import publish
from calshare.sharing import share, unshare
from calshare.store import Store
from tests.support.inbox import (
    CALSHARE,
    Inbox,
    db_rows,
    inbox_env,
    queued,
    wait_until,
)
from tests.support.snapshot import AWKWARD, STAND_INS
from tests.support.web import OWNER, SECURITY, Web, http, web

__all__ = ["web"]  # the fixture


def test_share_reply_feed_unshare_end_to_end(web: Web) -> None:
    url = web.accept_by_mail("bob@example.org", Level.TITLES)
    got = http(url)
    assert got.status == 200, got.text
    assert got.headers["Content-Type"] == "text/calendar; charset=utf-8"
    for name, value in SECURITY.items():
        assert got.headers[name] == value
    assert "script-src" not in got.headers["Content-Security-Policy"]
    assert got.headers["Cache-Control"] == "private, max-age=300"
    calendar = icalendar.Calendar.from_ical(got.body)
    assert str(calendar["X-WR-CALNAME"]) == "project"
    assert "REFRESH-INTERVAL" in calendar and "X-PUBLISHED-TTL" in calendar
    events = calendar.walk("VEVENT")
    summaries = {str(event["SUMMARY"]) for event in events}
    assert {"Night shift handover", "Stand-up (moved)", "Floating coffee"} <= summaries
    assert all("DESCRIPTION" not in event for event in events)  # titles hides it
    # the owner stops sharing: the same URL is gone at once
    unshare(web.store, web.settings, web.clock, "project", "bob@example.org")
    gone = http(url)
    assert gone.status == 410 and b"no longer shared" in gone.body
    assert gone.headers["Referrer-Policy"] == "no-referrer"


def test_feeds_are_cached_by_etag_and_date_and_change_with_the_calendar(web: Web) -> None:
    url = web.accept_by_mail("bob@example.org")
    first = http(url)
    etag, modified = first.headers["ETag"], first.headers["Last-Modified"]
    assert re.fullmatch(r'"[0-9a-f]{32}"', etag)
    again = http(url, **{"If-None-Match": etag})
    assert again.status == 304 and again.body == b"" and again.headers["ETag"] == etag
    assert http(url, **{"If-Modified-Since": modified}).status == 304
    assert http(url, **{"If-None-Match": '"something-else"'}).status == 200
    # a re-import with a change: a new body and a new ETag
    web.clock.advance(timedelta(minutes=5))
    web.reimport(AWKWARD.replace(b"Floating coffee", b"Floating tea"))
    changed = http(url, **{"If-None-Match": etag})
    assert changed.status == 200 and changed.headers["ETag"] != etag
    assert b"Floating tea" in changed.body and b"Floating coffee" not in changed.body
    # the grant changes: the level goes to free-busy, and so does the feed
    share(web.store, web.settings, web.clock, "project", "bob@example.org", Level.FREE_BUSY)
    busy = http(url, **{"If-None-Match": changed.headers["ETag"]})
    assert busy.status == 200
    events = icalendar.Calendar.from_ical(busy.body).walk("VEVENT")
    assert events and all(str(event["SUMMARY"]) in STAND_INS for event in events)
    # the window moves with the days: tomorrow's feed is another one
    web.clock.advance(timedelta(days=1))
    assert http(url, **{"If-None-Match": busy.headers["ETag"]}).status == 200


def test_unknown_and_malformed_secrets_are_plain_404s(web: Web) -> None:
    url = web.accept_by_mail("bob@example.org")
    secret = url.rsplit("/", 1)[1][:-4]
    other = ("a" if secret[0] != "a" else "b") + secret[1:]
    answers = [
        http(f"{web.base}/feeds/{other}.ics"),
        http(f"{web.base}/feeds/not-a-secret.ics"),
        http(f"{web.base}/feeds/{secret}"),
        http(f"{web.base}/feeds/"),
    ]
    assert [got.status for got in answers] == [404, 404, 404, 404]
    assert answers[0].body == answers[1].body  # no hint whether it ever existed
    assert all("X-Content-Type-Options" in got.headers for got in answers)
    # upper case is the same secret (mail systems change case; base32 survives it)
    assert http(url.replace(secret, secret.upper())).status == 200


def test_a_reinvited_share_gets_a_new_feed_and_the_old_one_is_gone(web: Web) -> None:
    first = web.accept_by_mail("bob@example.org")
    unshare(web.store, web.settings, web.clock, "project", "bob@example.org")
    second = web.accept_by_mail("bob@example.org")
    assert first != second
    assert http(first).status == 410 and http(second).status == 200


def test_looking_at_the_answer_page_changes_nothing(web: Web) -> None:
    invitation = web.invite("carol@example.org", Level.DETAILS)
    page = f"{web.base}/i/{invitation.token}"
    for _ in range(10):
        got = http(page)
        assert got.status == 200
        assert http(page, method="HEAD").status == 200
    assert web.status(invitation) == "invited"
    html = got.text
    assert "carol@example.org" in html and "can view all details" in html
    assert "<script" not in html.lower() and 'method="post"' in html
    assert got.headers["Cache-Control"] == "no-store"
    assert "default-src 'none'" in got.headers["Content-Security-Policy"]
    csrf = re.search(r'name="csrf" value="([0-9a-f]{64})"', html)
    assert csrf
    # a scanner that posts without the form's field is refused, and nothing changes
    assert http(page, "POST", b"answer=accept").status == 403
    forged = f"answer=accept&csrf={'0' * 64}".encode()
    assert http(page, "POST", forged).status == 403
    assert web.status(invitation) == "invited"
    # a person's click: the same path as an emailed answer
    accepted = http(page, "POST", f"answer=accept&csrf={csrf[1]}".encode())
    assert accepted.status == 200 and "Accepted" in accepted.text
    assert web.status(invitation) == "accepted"
    kinds = [q.kind for q in queued(web.db_path, "o.share_id = ?", (invitation.share_id,))]
    assert kinds == ["invitation", "welcome", "owner_accepted"]
    (logged,) = db_rows(
        web.db_path, "SELECT kind, outcome FROM inbound WHERE share_id = ?", (invitation.share_id,)
    )
    assert logged == ("accept", "accepted")
    # the used link now says so, and a second click changes nothing
    used = http(page)
    assert used.status == 410 and "already accepted" in used.text.lower()
    assert http(page, "POST", f"answer=decline&csrf={csrf[1]}".encode()).status == 410
    assert web.status(invitation) == "accepted"


def test_declining_on_the_web(web: Web) -> None:
    invitation = web.invite("dave@example.org")
    page = f"{web.base}/i/{invitation.token}"
    csrf = re.search(r'name="csrf" value="([0-9a-f]{64})"', http(page).text)
    assert csrf
    declined = http(page, "POST", f"answer=decline&csrf={csrf[1]}".encode())
    assert declined.status == 200 and "Declined" in declined.text
    assert web.status(invitation) == "declined"


def test_expired_revoked_and_unknown_invitations_get_clear_pages(web: Web) -> None:
    revoked = web.invite("erin@example.org")
    unshare(web.store, web.settings, web.clock, "project", "erin@example.org")
    got = http(f"{web.base}/i/{revoked.token}")
    assert got.status == 410 and "withdrawn" in got.text.lower()
    expired = web.invite("frank@example.org")
    web.clock.advance(timedelta(days=15))
    got = http(f"{web.base}/i/{expired.token}")
    assert got.status == 410 and "expired" in got.text.lower()
    unknown = http(f"{web.base}/i/{'a' * 26}")
    assert unknown.status == 404 and "Invitation not found" in unknown.text
    assert http(f"{web.base}/i/nonsense").status == 404


def test_methods_sizes_and_paths_are_limited(web: Web) -> None:
    invitation = web.invite("gina@example.org")
    page = f"{web.base}/i/{invitation.token}"
    assert http(page, "PUT", b"x").status == 405
    assert http(page, "DELETE").status == 405
    url = web.accept_by_mail("bob@example.org")
    assert http(url, "POST", b"x").status == 405
    big = b"answer=accept&csrf=" + b"x" * 100_000
    assert http(page, "POST", big).status == 413
    for path in ("/feeds", "/templates/", "/../calshare.db", "/i/", "/console/", "/calendars/x"):
        got = http(web.base + path)
        assert got.status == 404, path
        assert b"Traceback" not in got.body and got.headers["X-Frame-Options"] == "DENY"


def test_the_feed_dates_are_http_dates(web: Web) -> None:
    url = web.accept_by_mail("bob@example.org")
    got = http(url)
    modified = got.headers["Last-Modified"]
    assert re.fullmatch(r"\w{3}, \d{2} \w{3} \d{4} \d{2}:\d{2}:\d{2} GMT", modified)
    later = format_datetime(web.clock.now() + timedelta(days=1), usegmt=True)
    assert http(url, **{"If-Modified-Since": later}).status == 304


def test_one_process_serves_smtp_and_http_and_stops_on_sigterm(
    tmp_path: Path, db_path: Path, clock: FixedClock
) -> None:
    """`calshare serve --smtp … --http …` as `make run` starts it: one process, one SIGTERM."""
    settings = load_settings(None, env={})
    with Store.open(db_path) as store:
        add_calendar(store, clock, "project", OWNER, None, "UTC")
        source = tmp_path / "project.ics"
        source.write_bytes(AWKWARD)
        import_calendar(store, settings, clock, "project", str(source))
        made = publish(store, settings, clock, "project", Level.FREE_BUSY)
    environment = {k: v for k, v in os.environ.items() if not k.startswith("CALSHARE_")}
    environment["CALSHARE_DB"] = str(db_path)
    log = tmp_path / "serve.log"
    with log.open("wb") as err:
        process = subprocess.Popen(
            [str(CALSHARE), "serve", "--smtp", "127.0.0.1:0", "--http", "127.0.0.1:0"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=err,
            env=environment,
            cwd=tmp_path,
        )
    try:
        found = wait_until(
            lambda: re.search(r"serving HTTP on 127\.0\.0\.1:(\d+)", log.read_text()),
            "the HTTP listener",
        )
        base = f"http://127.0.0.1:{found[1]}"
        page = http(base + made.links.html[made.links.html.index("/p/") :])
        assert page.status == 200 and "project" in page.text
        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 0, log.read_text()
        with pytest.raises(urllib.error.URLError):
            urllib.request.urlopen(base + "/", timeout=5)
        assert made.links.html.rsplit("/", 1)[1] not in log.read_text()  # no secret in the log
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(30)


def test_feeds_are_gzipped_for_clients_that_take_it(web: Web) -> None:
    url = web.accept_by_mail("bob@example.org")
    plain = http(url)
    packed = http(url, **{"Accept-Encoding": "gzip, deflate"})
    assert packed.status == 200 and packed.headers["Content-Encoding"] == "gzip"
    assert "Content-Encoding" not in plain.headers
    assert plain.headers["Vary"] == packed.headers["Vary"] == "Accept-Encoding"
    assert gzip.decompress(packed.body) == plain.body
    assert packed.headers["ETag"] == plain.headers["ETag"][:-1] + '-gz"'
    # either representation's tag says "you have this version"
    for tag in (packed.headers["ETag"], plain.headers["ETag"]):
        assert http(url, **{"If-None-Match": tag, "Accept-Encoding": "gzip"}).status == 304


def test_bad_forms_are_400s_and_a_second_click_mails_no_one(web: Web) -> None:
    invitation = web.invite("hank@example.org")
    page = f"{web.base}/i/{invitation.token}"
    assert http(page, "POST", b"answer=accept&csrf=%C3%A9").status == 403
    assert http(page, "POST", b"answer=accept&csrf=\xff\xfe").status in (400, 403)
    odd = http(page, "POST", b"answer=accept", **{"Content-Type": "text/plain; charset=nope"})
    assert odd.status in (400, 403)
    csrf = re.search(r'name="csrf" value="([0-9a-f]{64})"', http(page).text)
    assert csrf
    form = f"answer=accept&csrf={csrf[1]}".encode()
    assert http(page, "POST", form).status == 200
    again = http(page, "POST", form)  # a double click, a reload
    assert again.status == 410 and "already accepted" in again.text.lower()
    kinds = [q.kind for q in queued(web.db_path, "o.share_id = ?", (invitation.share_id,))]
    assert kinds == ["invitation", "welcome", "owner_accepted"]  # no "invalid token" mail


def test_gzip_refused_with_q0_gets_plain(web: Web) -> None:
    url = web.accept_by_mail("bob@example.org")
    got = http(url, **{"Accept-Encoding": "gzip;q=0, identity"})
    assert got.status == 200 and "Content-Encoding" not in got.headers
    assert got.body.startswith(b"BEGIN:VCALENDAR")


def test_policy_lowered_later_applies_to_existing_feeds(
    web: Web, db_path: Path, clock: FixedClock
) -> None:
    url = web.accept_by_mail("eve@elsewhere.net")  # external: titles is allowed today
    assert b"SUMMARY:Night shift handover" in http(url).body
    path = url[url.index("/feeds/") :]
    for env, status in (
        ({"CALSHARE_POLICY_EXTERNAL_MAX_LEVEL": "free-busy"}, 200),
        ({"CALSHARE_POLICY_EXTERNAL_MAX_LEVEL": "none"}, 410),
        ({"CALSHARE_POLICY_SHARING": "false"}, 410),
    ):
        settings = load_settings(None, env=inbox_env(**env))
        other = Inbox(settings, db_path, clock, http=True).start()
        try:
            got = http(other.web + path)
        finally:
            other.stop()
        assert got.status == status, env
        if status == 200:
            assert b"Night shift handover" not in got.body and b"SUMMARY:Busy" in got.body


def test_non_ascii_file_names_are_sent_both_ways() -> None:
    from calshare.web import _inline_file

    assert _inline_file("Møter.ics") == (
        "inline; filename=\"M_ter.ics\"; filename*=UTF-8''M%C3%B8ter.ics"
    )
