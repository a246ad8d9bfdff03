"""A calendar that follows a CalDAV collection, end to end, against a real Radicale.

Issue 13's check: an event created, changed and deleted on a CalDAV server with a
CalDAV client (the `caldav` library, as another calendar app would) reaches the
grant's feed after one ``calshare calendar refresh``, and only the changed objects
are downloaded (counted from the server's side by tests/support/radicale.py's
recorder). The collection's credentials come from the environment and appear in no
output, log line or stored row.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import caldav
import icalendar
import pytest

from calshare.clock import FixedClock
from calshare.config import load_settings
from calshare.levels import Level
from calshare.store import Store
from tests.conftest import CliResult
from tests.support.inbox import Inbox, inbox_env
from tests.support.radicale import Radicale, Seen, start_radicale
from tests.support.web import Web, http

Cli = Callable[..., CliResult]
USER, PASSWORD = "ann", "s3cret-caldav-pass"
COLLECTION = "team-c0ll3ction"  # part of the URL path: shown nowhere
OWNER = "ann@example.org"


def vevent(uid: str, summary: str, day: int, hour: int = 10) -> str:
    return (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//caldav live//EN\r\n"
        f"BEGIN:VEVENT\r\nUID:{uid}\r\nDTSTAMP:20261101T000000Z\r\n"
        f"DTSTART:202612{day:02d}T{hour:02d}0000Z\r\nDTEND:202612{day:02d}T{hour + 1:02d}0000Z\r\n"
        f"SUMMARY:{summary}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    )


@pytest.fixture
def radicale(tmp_path: Path) -> Iterator[Radicale]:
    with start_radicale(tmp_path, {USER: PASSWORD}) as server:
        yield server


def ok(result: CliResult) -> CliResult:
    assert result.code == 0, result.err
    return result


def summaries(feed: bytes) -> dict[str, str]:
    """SUMMARY by DTSTART (UTC text) of every VEVENT in a feed."""
    parsed = icalendar.Calendar.from_ical(feed)
    return {
        event.decoded("DTSTART").strftime("%m-%dT%H"): str(event.get("SUMMARY"))
        for event in parsed.walk("VEVENT")
    }


def data_fetched(seen: list[Seen]) -> list[Seen]:
    """The requests that could carry calendar data: REPORTs (query, multiget) and GETs."""
    return [item for item in seen if item.method in ("REPORT", "GET")]


def test_create_change_delete_on_the_server_reach_the_grant_feed_after_one_refresh(
    cli: Cli,
    db_path: Path,
    clock: FixedClock,
    tmp_path: Path,
    radicale: Radicale,
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caldav.DAVClient(url=radicale.base + "/", username=USER, password=PASSWORD) as app:
        collection = app.principal().make_calendar(name="Team", cal_id=COLLECTION)
        for number in range(20):
            collection.save_event(vevent(f"ev{number:02d}@t", f"Event {number}", 1 + number))
        radicale.recorder.take()
        url = f"{radicale.base}/{USER}/{COLLECTION}/"
        env = {
            **inbox_env(),
            "CALSHARE_SOURCE_USERNAME_PROJECT": USER,
            "CALSHARE_SOURCE_PASSWORD_PROJECT": PASSWORD,
        }
        with caplog.at_level(logging.DEBUG, logger="calshare"):
            added = ok(cli("calendar", "add", "project", "--owner", OWNER, "--source", url,
                           "--caldav", env=env))  # fmt: skip
        assert "20 events now" in added.out, added.out
        radicale.recorder.take()

        settings = load_settings(None, env=env)
        inbox = Inbox(settings, db_path, clock, http=True).start()
        store = Store.open(db_path)
        try:
            web = Web(store, settings, clock, inbox, db_path, tmp_path)
            feed = web.accept_by_mail("bob@example.org", Level.TITLES)
            before = http(feed)
            assert before.status == 200
            shown = summaries(before.body)
            assert shown["12-03T10"] == "Event 2" and shown["12-05T10"] == "Event 4"

            # another app: one new event, one moved and renamed, one deleted
            collection.save_event(vevent("new@t", "Added on the server", 28, 15))
            changed = collection.event_by_uid("ev02@t")
            changed.data = vevent("ev02@t", "Changed on the server", 3, 16)
            changed.save()
            collection.event_by_uid("ev04@t").delete()
            radicale.recorder.take()

            with caplog.at_level(logging.DEBUG, logger="calshare"):
                refreshed = ok(cli("calendar", "refresh", "project", env=env))
            assert refreshed.out.strip() == "project: changed: 20 events now", refreshed.out
            seen = radicale.recorder.take()

            after = http(feed, **{"If-None-Match": before.headers["ETag"]})
            assert after.status == 200
            shown = summaries(after.body)
            assert shown["12-28T15"] == "Added on the server"
            assert shown["12-03T16"] == "Changed on the server" and "12-03T10" not in shown
            assert "12-05T10" not in shown  # deleted
            assert shown["12-01T10"] == "Event 0"  # untouched

            # only what changed came down: one sync REPORT and one multiget of 2 objects
            fetched = data_fetched(seen)
            assert [item.method for item in fetched] == ["REPORT", "REPORT"], seen
            sync, multiget = fetched
            assert b"sync-collection" in sync.body and b"calendar-multiget" in multiget.body
            assert multiget.body.count(b"href>") == 2 * 2  # the added and the changed object
            assert sum(item.sent for item in fetched) < 20 * len(vevent("x", "y", 1)), seen

            # a second refresh with nothing changed: no new version, the feed stays a 304
            ok(cli("calendar", "refresh", "project", env=env))
            again = http(feed, **{"If-None-Match": after.headers["ETag"]})
            assert again.status == 304
        finally:
            inbox.stop()
            store.close()

    # the password and the collection's path are nowhere: output, log, the store
    row: dict[str, Any] = ok(cli("calendar", "sources", "--json", env=env)).json()[0]
    listed = ok(cli("calendar", "list", "--json", env=env)).out
    for text in (added.out, added.err, refreshed.out, refreshed.err, str(row), listed, caplog.text):
        assert PASSWORD not in text and COLLECTION not in text
    with closing(sqlite3.connect(db_path)) as conn:
        dumped = "\n".join(conn.iterdump())
    assert PASSWORD not in dumped
