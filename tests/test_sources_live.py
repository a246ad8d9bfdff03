"""Live sources against a real HTTP server on 127.0.0.1 (tests/support/source_server.py).

A calendar follows a URL whose answers the test changes between refreshes: changes
reach ``calshare events``, a grant's feed and the published page after one
``calendar refresh``; validators turn unchanged rounds into 304s; every failure
keeps the last good copy, records why, tells the owner once after the threshold
(read from the Maildir the outbox writes) and once on recovery, and tells invitees
nothing; the URL's secret part appears nowhere; the daemon's refresher follows.
"""

from __future__ import annotations

import email
import email.policy
import logging
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import closing
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import icalendar
import pytest

from calshare.calendars import get_calendar
from calshare.clock import FixedClock
from calshare.config import load_settings
from calshare.feeds import FeedMaker
from calshare.levels import Level
from calshare.links import console_url
from calshare.refresh import cause_words, next_due_ts, provider
from calshare.store import Store
from calshare.subscriptions import get_source, jitter_fraction
from tests.conftest import CliResult
from tests.support.ics import calendar
from tests.support.inbox import Inbox, inbox_env, wait_until
from tests.support.source_server import SourceServer
from tests.support.web import Web, http

Cli = Callable[..., CliResult]
OWNER = "ann@example.org"
INVITEE = "bob@example.org"
POLICY = {"CALSHARE_POLICY_PUBLISH_MAX_LEVEL": "titles"}

KICKOFF = "UID:kickoff@t\nSUMMARY:Kickoff\nDTSTART:20261201T100000Z\nDTEND:20261201T110000Z"
REVIEW = "UID:review@t\nSUMMARY:Review\nDTSTART:20261202T100000Z\nDTEND:20261202T110000Z"
LUNCH = "UID:lunch@t\nSUMMARY:Lunch\nDTSTART:20261203T120000Z\nDTEND:20261203T130000Z"
PLANNING = "UID:planning@t\nSUMMARY:Planning\nDTSTART:20261204T090000Z\nDTEND:20261204T100000Z"
V1 = calendar(KICKOFF, REVIEW, LUNCH, PLANNING)
V2 = calendar(
    KICKOFF,
    REVIEW.replace("T100000Z", "T140000Z").replace("T110000Z", "T150000Z"),  # moved
    LUNCH + "\nSTATUS:CANCELLED",  # cancelled
    PLANNING + "\nCLASS:PRIVATE",  # newly private
    "UID:retro@t\nSUMMARY:Retro\nDTSTART:20261205T150000Z\nDTEND:20261205T160000Z",  # added
)


@pytest.fixture
def server() -> Iterator[SourceServer]:
    running = SourceServer().start()
    yield running
    running.stop()


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {"CALSHARE_OUTBOX_MAILDIR": str(tmp_path / "maildir"), **POLICY}


def ok(result: CliResult) -> CliResult:
    assert result.code == 0, result.err
    return result


def events(cli: Cli, env: dict[str, str], *level: str) -> dict[str, dict[str, Any]]:
    found = ok(cli("events", "project", "--from", "2026-11-30", "--to", "2026-12-31", "--json",
                   *level, env=env)).json()  # fmt: skip
    return {item["uid"]: item for item in found}


def source_row(cli: Cli, env: dict[str, str]) -> dict[str, Any]:
    (row,) = ok(cli("calendar", "sources", "--json", env=env)).json()
    return dict(row)


def version(db_path: Path) -> int:
    with closing(sqlite3.connect(db_path)) as conn:
        return int(
            conn.execute("SELECT version FROM calendars WHERE name = 'project'").fetchone()[0]
        )


def last_result(db_path: Path) -> str | None:
    with closing(sqlite3.connect(db_path)) as conn:
        row = conn.execute("SELECT last_result FROM calendar_sources").fetchone()
    return None if row is None else str(row[0])


def maildir_mails(env: dict[str, str], cli: Cli) -> list[EmailMessage]:
    ok(cli("outbox", "flush", env=env))
    folder = Path(env["CALSHARE_OUTBOX_MAILDIR"]) / "new"
    found = []
    for path in sorted(folder.iterdir()) if folder.is_dir() else []:
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        found.append(message)
    return found


def text_of(message: EmailMessage) -> str:
    part = message.get_body(("plain",))
    assert part is not None
    return str(part.get_content())


# --- changes arrive


def test_every_kind_of_change_reaches_events_a_grant_feed_and_the_published_page(
    cli: Cli, db_path: Path, clock: FixedClock, tmp_path: Path, server: SourceServer
) -> None:
    env = {**inbox_env(**POLICY), "CALSHARE_OUTBOX_MAILDIR": str(tmp_path / "maildir")}
    server.serve(V1, etag=True)
    added = ok(cli("calendar", "add", "project", "--owner", OWNER, "--source", server.url(),
                   env=env))  # fmt: skip
    assert "4 events now" in added.out
    published = ok(cli("publish", "project", "--level", "titles", "--json", env=env)).json()
    settings = load_settings(None, env=env)
    inbox = Inbox(settings, db_path, clock, http=True).start()
    store = Store.open(db_path)
    try:
        web = Web(store, settings, clock, inbox, db_path, tmp_path)
        feed = web.accept_by_mail(INVITEE, Level.TITLES)
        page = inbox.web + published["html"][published["html"].index("/p/") :] + "?month=2026-12"
        ics = inbox.web + published["ics"][published["ics"].index("/p/") :]
        before_feed, before_page = http(feed), http(page)
        assert b"Planning" in before_feed.body and "Planning" in before_page.text
        assert "Retro" not in before_page.text

        server.serve(V2, etag=True)
        result = ok(cli("calendar", "refresh", "project", env=env))
        assert result.out.strip() == "project: changed: 5 events now"

        found = events(cli, env)
        assert set(found) == {"kickoff@t", "review@t", "lunch@t", "planning@t", "retro@t"}
        assert found["review@t"]["start"] == "2026-12-02T14:00:00+00:00"  # moved
        assert found["lunch@t"]["busy"] == "free"  # cancelled: blocks no time
        assert found["planning@t"].get("private") is True
        titles = events(cli, env, "--level", "titles")
        hidden = [item for item in titles.values() if item["start"].startswith("2026-12-04T09")]
        assert len(hidden) == 1 and hidden[0].get("summary") != "Planning"  # busy time only
        assert "planning@t" not in titles  # a stand-in UID at a level that hides it

        after_feed = http(feed, **{"If-None-Match": before_feed.headers["ETag"]})
        assert (
            after_feed.status == 200 and after_feed.headers["ETag"] != before_feed.headers["ETag"]
        )
        parsed = icalendar.Calendar.from_ical(after_feed.body)
        summaries = {str(event.get("SUMMARY")) for event in parsed.walk("VEVENT")}
        assert "Retro" in summaries and "Planning" not in summaries
        moved = [e for e in parsed.walk("VEVENT") if str(e.get("SUMMARY")) == "Review"]
        assert moved[0].decoded("DTSTART") == datetime(2026, 12, 2, 14, tzinfo=UTC)
        after_page = http(page)
        assert "Retro" in after_page.text and "Planning" not in after_page.text
        assert b"Retro" in http(ics).body
    finally:
        inbox.stop()
        store.close()


@pytest.mark.parametrize("validator", ["etag", "last_modified"])
def test_validators_turn_unchanged_rounds_into_304s(
    cli: Cli, db_path: Path, clock: FixedClock, env: dict[str, str], server: SourceServer,
    validator: str,
) -> None:  # fmt: skip
    server.serve(V1, **{validator: True})
    ok(cli("calendar", "add", "project", "--owner", OWNER, "--source", server.url(), env=env))
    first = version(db_path)
    for _ in range(3):
        clock.advance(timedelta(minutes=20))
        assert ok(cli("calendar", "refresh", "--all", env=env)).out.strip() == "project: unchanged"
    assert (server.sent[200], server.sent[304]) == (1, 3)
    header = "If-None-Match" if validator == "etag" else "If-Modified-Since"
    assert all(header in request for request in server.requests[1:])
    assert version(db_path) == first
    server.serve(V2, **{validator: True})
    ok(cli("calendar", "refresh", "project", env=env))
    assert (server.sent[200], server.sent[304]) == (2, 3)
    assert version(db_path) == first + 1
    row = source_row(cli, env)
    assert row["last_result"] == "changed" and row["last_change_altered_events"] is True


def test_an_unchanged_body_without_validators_is_not_imported_again(
    cli: Cli, db_path: Path, clock: FixedClock, env: dict[str, str], server: SourceServer
) -> None:
    server.serve(V1)
    ok(cli("calendar", "add", "project", "--owner", OWNER, "--source", server.url(), env=env))
    settings = load_settings(None, env=env)
    with Store.open(db_path) as store:
        maker = FeedMaker(settings)
        calendar_id = get_calendar(store.db, "project").id
        tag = maker.version(
            store, calendar_id, Level.TITLES, "2026-11-01T00:00:00Z", clock.now()
        ).etag
        first = version(db_path)
        clock.advance(timedelta(minutes=20))
        assert ok(cli("calendar", "refresh", "project", env=env)).out.strip() == (
            "project: unchanged"
        )
        assert server.sent[200] == 2 and server.sent[304] == 0
        assert version(db_path) == first
        again = maker.version(store, calendar_id, Level.TITLES, "2026-11-01T00:00:00Z", clock.now())
        assert again.etag == tag
    assert source_row(cli, env)["last_result"] == "unchanged"


# --- failures keep the last good copy


FAILURES: dict[str, tuple[dict[str, Any], str]] = {
    "401": ({"status": 401}, "auth"),
    "403": ({"status": 403}, "auth"),
    "404": ({"status": 404}, "not_found"),
    "410": ({"status": 410}, "not_found"),
    "redirect loop": ({"redirect_loop": True}, "redirect_loop"),
    "timeout": ({"stall_seconds": 3.0}, "timeout"),
    "html login page": (
        {"content_type": "text/html", "body": b"<!DOCTYPE html><form>Sign in</form>"},
        "html",
    ),
    "truncated body": ({"truncate_to": len(V1) // 2}, "truncated"),
    "no events": ({"body": calendar()}, "empty"),
    "fewer than half": ({"body": calendar(KICKOFF)}, "shrunk"),
    "not a calendar": ({"body": b'{"error": "gone"}'}, "invalid"),
}


@pytest.mark.parametrize("mode", list(FAILURES))
def test_a_failing_source_keeps_its_events_and_tells_the_owner_once_then_once_more(
    cli: Cli, db_path: Path, clock: FixedClock, env: dict[str, str], server: SourceServer,
    mode: str,
) -> None:  # fmt: skip
    env = {**env, "CALSHARE_IMPORT_TIMEOUT_SECONDS": "1"}
    server.serve(V1, etag=True)
    ok(cli("calendar", "add", "project", "--owner", OWNER, "--source", server.url(), env=env))
    ok(cli("share", "project", INVITEE, "--level", "titles", env=env))
    good = events(cli, env)
    first = version(db_path)
    behaviour, cause = FAILURES[mode]
    body = behaviour.pop("body", V2)
    server.serve(body, **behaviour)

    failed = cli("calendar", "refresh", "project", env=env)
    assert failed.code == 2 and failed.err.count("\n") == 1, failed.err
    assert "failed:" in failed.out and "keeps its last good copy (4 events)" in failed.out
    row = source_row(cli, env)
    assert (row["last_result"], row["last_cause"], row["failures"]) == ("failed", cause, 1)
    assert row["owner_told"] is None and row["last_success"] is not None
    assert events(cli, env) == good and version(db_path) == first
    # failing for less than a day: nobody is told
    clock.advance(timedelta(hours=23))
    assert cli("calendar", "refresh", "project", env=env).code == 2
    assert source_row(cli, env)["owner_told"] is None
    # past the threshold: the owner, once
    clock.advance(timedelta(hours=2))
    assert cli("calendar", "refresh", "project", env=env).code == 2
    told = source_row(cli, env)["owner_told"]
    assert told is not None
    clock.advance(timedelta(hours=5))
    assert cli("calendar", "refresh", "project", env=env).code == 2
    assert source_row(cli, env)["owner_told"] == told
    assert events(cli, env) == good and version(db_path) == first
    # it works again: one more mail, and the change arrives
    server.serve(V2, etag=True)
    assert ok(cli("calendar", "refresh", "project", env=env)).out.strip() == (
        "project: changed: 5 events now"
    )
    row = source_row(cli, env)
    assert row["failures"] == 0 and row["owner_told"] is None and row["failing_since"] is None

    mails = maildir_mails(env, cli)
    to_owner = [mail for mail in mails if OWNER in str(mail["To"])]
    to_invitee = [mail for mail in mails if INVITEE in str(mail["To"])]
    assert [str(mail["Subject"]) for mail in to_invitee] == [
        "ann@example.org shared the calendar “project” with you"
    ]  # the invitation only
    by_subject = {str(mail["Subject"]): mail for mail in to_owner}
    assert len(to_owner) == 2 and set(by_subject) == {
        "Your calendar “project” is no longer updating",
        "Your calendar “project” is updating again",
    }  # (the Maildir's file names do not keep the order they were sent in)
    failing = " ".join(text_of(by_subject["Your calendar “project” is no longer updating"]).split())
    assert "The address at 127.0.0.1" in failing
    assert f"http://127.0.0.1:{server.port}/" in failing and "/calendar/" not in failing
    assert "calshare calendar" not in failing  # words to act on, no commands to run
    # both link to My calendars in the console, where the owner sees the source and acts
    calendars = console_url(load_settings(None, env=env).http.base_url)
    for mail in to_owner:
        assert f"{calendars}\n" in text_of(mail), mail["Subject"]


def test_a_429_with_retry_after_waits_at_least_that_long(
    cli: Cli, clock: FixedClock, env: dict[str, str], server: SourceServer
) -> None:
    server.serve(V1)
    ok(cli("calendar", "add", "project", "--owner", OWNER, "--source", server.url(), env=env))
    server.serve(V1, status=429, headers={"Retry-After": "7200"})
    assert cli("calendar", "refresh", "project", env=env).code == 2
    row = source_row(cli, env)
    due = datetime.fromisoformat(row["next_due"].replace("Z", "+00:00"))
    assert row["last_cause"] == "rate_limited"
    assert due >= clock.now() + timedelta(seconds=7200)


def test_max_age_is_honoured_and_the_interval_follows_every(
    cli: Cli, clock: FixedClock, env: dict[str, str], server: SourceServer, db_path: Path
) -> None:
    server.serve(V1, headers={"Cache-Control": "public, max-age=10800"})
    ok(cli("calendar", "add", "project", "--owner", OWNER, "--source", server.url(),
           "--every", "30m", env=env))  # fmt: skip
    row = source_row(cli, env)
    due = datetime.fromisoformat(row["next_due"].replace("Z", "+00:00"))
    assert row["every_seconds"] == 1800 and due >= clock.now() + timedelta(hours=3)
    settings = load_settings(None, env=env)
    with Store.open(db_path) as store:
        from calshare.feeds import feed_ics

        body = feed_ics(store, settings, get_calendar(store.db, "project"), Level.TITLES,
                        clock.now())  # fmt: skip
    assert b"REFRESH-INTERVAL;VALUE=DURATION:PT30M\r\n" in body
    assert b"X-PUBLISHED-TTL:PT30M\r\n" in body


def test_scheduling_jitters_backs_off_and_never_comes_earlier_than_asked() -> None:
    fractions = [jitter_fraction(number) for number in range(1, 2001)]
    assert 0 <= min(fractions) < 0.01 and 0.99 < max(fractions) < 1
    due = [next_due_ts(0, 900, fraction=f, jitter=0.1) for f in fractions]
    assert min(due) >= 810 and max(due) <= 990 and len(set(due)) > 100
    backoff = [
        next_due_ts(0, 900, fraction=0.5, jitter=0.1, failures=n, max_backoff=6 * 3600)
        for n in range(1, 12)
    ]
    assert backoff[:5] == [900, 1800, 3600, 7200, 14400] and set(backoff[5:]) == {21600}
    assert next_due_ts(0, 900, fraction=0.0, jitter=0.1, max_age=3600) == 3600
    assert next_due_ts(0, 900, fraction=0.5, jitter=0.1, retry_after=10**9) == 86400
    assert next_due_ts(0, 900, fraction=0.5, jitter=0.1, max_age=60) == 900


def test_the_owner_is_told_in_plain_words_per_provider() -> None:
    from calshare.refresh import Attempt
    from calshare.subscriptions import SourceRecord

    def words(url: str, lang: str = "en") -> str:
        record = SourceRecord(1, "project", OWNER, "url", url, 900, *([None] * 13), 0, 10)
        attempt = Attempt("failed", "not_found", "", status=404)
        found = cause_words(attempt, record, record.host, lang)
        return f"{found['cause']} {found['hint']}"

    google = words("https://calendar.google.com/calendar/ical/x%40gmail.com/private-abc/basic.ics")
    assert google.startswith("Your Google address answered 404 (not found).")
    assert "secret address may have been reset" in google
    assert "Outlook" in words("https://outlook.office365.com/owa/calendar/abc/reachcalendar.ics")
    assert "Outlook" in words("https://outlook.live.com/owa/calendar/abc/calendar.ics")
    assert "iCloud" in words("webcal://p52-caldav.icloud.com/published/2/abc")
    assert words("https://cal.example.net/x.ics").startswith("The address at cal.example.net")
    assert "Google-adressen din svarte 404" in words("https://calendar.google.com/a", "nb")
    assert [provider(h) for h in ("notgoogle.com", "outlook.example.com", "www.icloud.com")] == [
        "generic",
        "outlook",
        "icloud",
    ]


# --- the command line


def test_source_options_are_checked_before_anything_is_added(
    cli: Cli, env: dict[str, str], server: SourceServer, tmp_path: Path
) -> None:
    server.serve(V1)
    for args, words in (
        (["--source", server.url(), "--every", "1m"], "the shortest interval is 5 minutes"),
        (["--source", server.url(), "--every", "soon"], "not a duration"),
        (["--source", str(tmp_path / "missing.ics")], "is not a file"),
        (
            ["--source", str(tmp_path), "--caldav"],
            "A CalDAV source needs the collection's https:// URL (--caldav)",
        ),
        (["--every", "15m"], "go with --source"),
    ):
        result = cli("calendar", "add", "project", "--owner", OWNER, *args, env=env)
        assert result.code == 2 and words in result.err and result.err.count("\n") == 1
    assert ok(cli("calendar", "list", "--json", env=env)).json() == []
    assert cli("calendar", "refresh", env=env).code == 2


def test_a_file_source_is_static_and_read_again_only_by_hand(
    cli: Cli, clock: FixedClock, env: dict[str, str], tmp_path: Path
) -> None:
    path = tmp_path / "cal.ics"
    path.write_bytes(V1)
    ok(cli("calendar", "add", "project", "--owner", OWNER, "--source", str(path), env=env))
    row = source_row(cli, env)
    assert (row["kind"], row["next_due"], row["source"]) == ("file", None, str(path))
    path.write_bytes(V2)
    assert "No calendar follows" in ok(cli("calendar", "refresh", "--all", env=env)).out
    assert len(events(cli, env)) == 4
    ok(cli("calendar", "refresh", "project", env=env))
    assert len(events(cli, env)) == 5


def test_an_unreachable_caldav_source_fails_plainly_and_keeps_the_password(
    cli: Cli, env: dict[str, str], db_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A first read that fails adds nothing (the web's Add calendar does the same)."""
    password = "hunter2-caldav-secret"
    env = {**env, "CALSHARE_SOURCE_USERNAME_PROJECT": "ann",
           "CALSHARE_SOURCE_PASSWORD_PROJECT": password}  # fmt: skip
    url = "https://dav.example.invalid/remote.php/dav/calendars/ann/personal/"
    with caplog.at_level(logging.DEBUG):
        added = cli("calendar", "add", "project", "--owner", OWNER, "--source", url, "--caldav",
                    env=env)  # fmt: skip
        listed = ok(cli("calendar", "list", "--json", env=env)).json()
    assert added.code == 2 and listed == []
    assert "'project' was not added: its source could not be read" in added.err
    assert "https://dav.example.invalid/" in added.err
    with closing(sqlite3.connect(db_path)) as conn:
        for table in ("owners", "calendars", "calendar_sources"):
            assert conn.execute(f"SELECT count(*) FROM {table}").fetchone() == (0,), table
    settings = load_settings(None, env=env)
    assert password not in repr(settings)
    for text in (added.out, added.err, caplog.text):
        assert password not in text and "remote.php" not in text


# --- secrets


def test_no_part_of_the_secret_path_or_query_appears_anywhere(
    cli: Cli, clock: FixedClock, env: dict[str, str], server: SourceServer, db_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    counter = iter(range(10**6))

    @settings(max_examples=12, deadline=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture])  # fmt: skip
    @given(st.text("abcdefghijklmnopqrstuvwxyz0123456789_-", min_size=12, max_size=40))
    def check(raw: str) -> None:
        # a secret never reads as a word: Hypothesis also tries strings from our own source
        # (it found "quoted-print", which every mail's MIME header holds)
        token = f"q7z{raw}"
        name = f"cal{next(counter)}"
        url = f"http://127.0.0.1:{server.port}/ical/{token}/basic.ics?key={token[::-1]}"
        server.serve(V1, etag=True)
        outputs = []
        with caplog.at_level(logging.DEBUG):
            caplog.clear()
            for args in (
                ["calendar", "add", name, "--owner", OWNER, "--source", url],
                ["calendar", "add", f"{name}x", "--owner", OWNER, "--source", url, "--json"],
                ["calendar", "list"],
                ["calendar", "list", "--json"],
                ["calendar", "sources"],
                ["calendar", "sources", "--json"],
                ["calendar", "refresh", name, "--json"],
                ["-v", "calendar", "refresh", name],
            ):
                result = cli(*args, env=env)
                outputs += [result.out, result.err]
            server.serve(V1, status=404)
            for args in (
                ["-v", "calendar", "refresh", "--all"],
                ["-v", "calendar", "refresh", name, "--json"],
                ["calendar", "sources", "--json"],
            ):
                result = cli(*args, env=env)
                outputs += [result.out, result.err]
                clock.advance(timedelta(days=1))  # past the threshold: the owner is told
            outputs.append(caplog.text)
        outputs += [text_of(mail) for mail in maildir_mails(env, cli)]
        outputs += [str(mail) for mail in maildir_mails(env, cli)]
        for text in outputs:
            assert token not in text and token[::-1] not in text and "/ical/" not in text

    check()
    assert server.sent[404] > 0
    assert len(maildir_mails(env, cli)) > 0


def test_the_daemon_follows_a_source_on_its_own(
    cli: Cli, db_path: Path, clock: FixedClock, env: dict[str, str], server: SourceServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    monkeypatch.setattr("calshare.daemon.REFRESH_TICK", 0.05)
    server.serve(V1, etag=True)
    ok(cli("calendar", "add", "project", "--owner", OWNER, "--source", server.url(), env=env))
    first = version(db_path)
    inbox = Inbox(load_settings(None, env=inbox_env(**env)), db_path, clock).start()
    try:
        server.serve(V2, etag=True)
        clock.advance(timedelta(minutes=17))
        wait_until(lambda: version(db_path) == first + 1, "the daemon to apply the change")
        assert server.sent[200] == 2
        clock.advance(timedelta(minutes=17))
        wait_until(lambda: server.sent[304] == 1, "a conditional read answered 304")
        # the 304 is sent before the round records it: wait for the record too
        wait_until(lambda: last_result(db_path) == "unchanged", "the 304 to be recorded")
    finally:
        inbox.stop()
    assert len(events(cli, env)) == 5
    with Store.open(db_path) as store:
        assert get_source(store.db, "project").last_result == "unchanged"


def test_caldav_credentials_come_from_the_file_or_the_environment_and_are_never_shown(
    tmp_path: Path,
) -> None:
    from calshare.config import find_credential
    from calshare.errors import ConfigError

    secret = "pa55-word-in-file"
    config = tmp_path / "calshare.toml"
    config.write_text(
        '[sources.credentials."cloud.example.org"]\nusername = "host-user"\n'
        f'password = "{secret}"\n'
        '[sources.credentials."Team"]\nusername = "team-user"\npassword = "team-pass"\n'
    )
    env = {
        "CALSHARE_SOURCE_PASSWORD_TEAM_ROTA": "from-env",
        "CALSHARE_SOURCE_USERNAME_TEAM_ROTA": "e",
    }
    settings = load_settings(config, env=env)
    assert secret not in repr(settings) and "from-env" not in repr(settings)
    found = find_credential(settings, "team-rota", "cloud.example.org")
    assert found is not None and (found.username, found.password) == ("e", "from-env")
    found = find_credential(settings, "team", "cloud.example.org")
    assert found is not None and found.username == "team-user"
    found = find_credential(settings, "other", "CLOUD.example.org")
    assert found is not None and found.password == secret
    assert find_credential(settings, "other", "elsewhere.example.org") is None
    config.write_text(
        f'[sources.credentials."x"]\nusername = "u"\npassword = "{secret}"\ntoken = 1\n'
    )
    with pytest.raises(ConfigError) as raised:
        load_settings(config, env={})
    assert secret not in str(raised.value) and "takes only username and password" in str(
        raised.value
    )


def test_a_library_quoting_the_whole_address_is_scrubbed_before_it_is_stored(
    cli: Cli, clock: FixedClock, env: dict[str, str], server: SourceServer, db_path: Path
) -> None:
    from calshare.refresh import Attempt, record_attempt

    server.serve(V1)
    url = server.url("private-0a1b2c3d4e/basic.ics")
    ok(cli("calendar", "add", "project", "--owner", OWNER, "--source", url, env=env))
    settings = load_settings(None, env=env)
    with Store.open(db_path) as store:
        record = get_source(store.db, "project")
        said = f"GET {url} failed; path {url.split('/', 3)[3]}"
        done = record_attempt(store, settings, clock, record, Attempt("failed", "http", said))
    row = source_row(cli, env)
    for text in (done.message, row["last_error"]):
        assert "private-0a1b2c3d4e" not in text and text.startswith("GET … failed")


def test_a_failed_refresh_is_one_line_on_stderr_from_the_real_command(
    cli: Cli, db_path: Path, env: dict[str, str], server: SourceServer
) -> None:
    import os
    import subprocess

    from tests.support.inbox import CALSHARE

    server.serve(V1)
    ok(cli("calendar", "add", "project", "--owner", OWNER, "--source", server.url(), env=env))
    server.serve(V1, status=410)
    done = subprocess.run(
        [str(CALSHARE), "calendar", "refresh", "project"],
        env={**os.environ, **env, "CALSHARE_DB": str(db_path)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        "calshare: error: 1 of 1 sources could not be read (see calshare calendar sources)"
    ]
    assert done.stdout.startswith("project: failed: Could not fetch http://127.0.0.1:")
    assert "HTTP 410" in done.stdout and "/calendar/" not in done.stdout + done.stderr
    listed = ok(cli("calendar", "list", "--json", env=env)).json()
    assert listed[0]["follows"] == f"http://127.0.0.1:{server.port}/…"
