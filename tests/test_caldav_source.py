"""CalDAV sources (issue 13): calshare/caldav_source.py against a real Radicale (PyPI).

Radicale runs in-process on 127.0.0.1:0 with htpasswd users, so every fetch logs
in; its request recorder (tests/support/radicale.py) counts, from the server's
side, what calshare asked for and how many bytes it was sent. The collection and
its events are made and changed with the `caldav` client library, as another
calendar app would. What is checked: the first fetch is the whole collection, a
later one fetches only what changed (RFC 6578 sync-collection), a server without
sync-collection is followed by ETags, a forgotten token means a full resync, and
every failure is one of our messages naming scheme and host only, never the
password. Xandikos (PyPI), a second implementation of sync-collection, gets the
same counts; a small scripted HTTP server plays what no CalDAV server does on
purpose (a login page, a redirect loop, a busy server, an endless answer).
"""

from __future__ import annotations

import base64
import json
import logging
import socket
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import caldav
import pytest

from calshare.caldav_source import CalDavFetchError, ObjectChanges, assemble, fetch_changes
from calshare.errors import FetchError, ImportFailed
from tests.conftest import CliResult
from tests.support.radicale import Radicale, Seen, start_radicale
from tests.support.xandikos import start_xandikos

Cli = Callable[..., CliResult]
USER, PASSWORD = "ann", "hunter2 correct horse"
SECRET = "c0ll3ction-s3cret"  # the collection's name: part of the URL path, a secret
LIMIT = 10_000_000
BERLIN = """BEGIN:VTIMEZONE
TZID:Europe/Berlin
BEGIN:STANDARD
DTSTART:19701025T030000
RRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU
TZOFFSETFROM:+0200
TZOFFSETTO:+0100
TZNAME:CET
END:STANDARD
BEGIN:DAYLIGHT
DTSTART:19700329T020000
RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU
TZOFFSETFROM:+0100
TZOFFSETTO:+0200
TZNAME:CEST
END:DAYLIGHT
END:VTIMEZONE
"""


def event(uid: str, summary: str, day: int = 1, *, weekly: bool = False) -> str:
    """One CalDAV object: a Berlin-time event (weekly ones repeat 4 times)."""
    rule = "RRULE:FREQ=WEEKLY;COUNT=4\n" if weekly else ""
    text = (
        "BEGIN:VCALENDAR\nVERSION:2.0\nPRODID:-//test//caldav//EN\n"
        f"{BERLIN}BEGIN:VEVENT\nUID:{uid}\nDTSTAMP:20270101T000000Z\n"
        f"DTSTART;TZID=Europe/Berlin:202703{day:02d}T100000\n"
        f"DTEND;TZID=Europe/Berlin:202703{day:02d}T110000\n{rule}"
        f"SUMMARY:{summary}\nEND:VEVENT\nEND:VCALENDAR\n"
    )
    return text.replace("\n", "\r\n")


@dataclass
class Collection:
    server: Radicale
    url: str  # the collection URL calshare is given
    calendar: Any  # the caldav library's Calendar, to change it as another app would

    def fetch(self, state: str | None, **limits: Any) -> ObjectChanges:
        limits = {"timeout": 30.0, "max_bytes": LIMIT, **limits}
        return fetch_changes(self.url, USER, PASSWORD, state, **limits)

    def href(self, uid: str) -> str:
        return f"/{USER}/{SECRET}/{uid}.ics"

    def seen(self) -> list[Seen]:
        return self.server.recorder.take()


def _collection(server: Radicale, client: caldav.DAVClient, count: int) -> Collection:
    calendar = client.principal().make_calendar(name="Work", cal_id=SECRET)
    for number in range(count):
        calendar.save_event(event(f"ev{number:02d}", f"Event {number}", 1 + number % 28))
    server.recorder.take()
    return Collection(server, f"{server.base}/{USER}/{SECRET}/", calendar)


@pytest.fixture
def radicale(tmp_path: Path) -> Iterator[Radicale]:
    with start_radicale(tmp_path, {USER: PASSWORD}) as server:
        yield server


@pytest.fixture
def app(radicale: Radicale) -> Iterator[caldav.DAVClient]:
    """The other calendar app: the caldav library, making and changing the collection."""
    with caldav.DAVClient(url=radicale.base + "/", username=USER, password=PASSWORD) as client:
        yield client


@pytest.fixture
def fifty(radicale: Radicale, app: caldav.DAVClient) -> Collection:
    """Enough objects that fetching all of them again shows in every count."""
    return _collection(radicale, app, 50)


@pytest.fixture
def few(radicale: Radicale, app: caldav.DAVClient) -> Collection:
    return _collection(radicale, app, 5)


def _sent(seen: list[Seen]) -> int:
    return sum(item.sent for item in seen)


def _reports(seen: list[Seen], kind: bytes) -> list[Seen]:
    return [item for item in seen if item.method == "REPORT" and kind in item.body]


def test_the_first_fetch_is_the_whole_collection_in_three_requests(fifty: Collection) -> None:
    got = fifty.fetch(None)
    assert got.complete and got.deleted == frozenset()
    assert sorted(got.changed) == [fifty.href(f"ev{n:02d}") for n in range(50)]
    assert b"SUMMARY:Event 7\r\n" in got.changed[fifty.href("ev07")].replace(b"\n", b"\r\n")
    seen = fifty.seen()
    # a PROPFIND refused for want of credentials, the PROPFIND again, one calendar-query
    assert [(s.method, s.status) for s in seen] == [
        ("PROPFIND", 401),
        ("PROPFIND", 207),
        ("REPORT", 207),
    ]
    assert got.requests == len(seen) == 3
    assert _reports(seen, b"calendar-query")


def test_create_change_delete_then_sync_fetches_exactly_those(fifty: Collection) -> None:
    first = fifty.fetch(None)
    full = _sent(fifty.seen())
    fifty.calendar.save_event(event("new", "Added", 3))
    changed = fifty.calendar.get_event_by_uid("ev10")
    changed.data = event("ev10", "Moved", 20)
    changed.save()
    fifty.calendar.get_event_by_uid("ev20").delete()
    fifty.seen()

    got = fifty.fetch(first.state)
    assert not got.complete
    assert sorted(got.changed) == [fifty.href("ev10"), fifty.href("new")]
    assert got.deleted == frozenset({fifty.href("ev20")})
    assert b"SUMMARY:Moved" in got.changed[fifty.href("ev10")]
    assert b"SUMMARY:Added" in got.changed[fifty.href("new")]
    seen = fifty.seen()
    # one sync-collection from the kept token (auth known: no 401 round), one multiget
    # naming the two changed objects; nothing else, and no whole-collection query
    assert [(s.method, s.status) for s in seen] == [("REPORT", 207), ("REPORT", 207)]
    assert got.requests == 2
    assert len(_reports(seen, b"sync-collection")) == 1
    (multiget,) = _reports(seen, b"calendar-multiget")
    assert multiget.body.count(b"<D:href>") == 2
    # 2 of 50 objects' data: the answers weigh a fraction of the first fetch's
    assert _sent(seen) * 5 < full, (_sent(seen), full)


def test_an_unchanged_collection_costs_one_request(fifty: Collection) -> None:
    first = fifty.fetch(None)
    fifty.seen()
    again = fifty.fetch(first.state)
    assert again.changed == {} and again.deleted == frozenset() and not again.complete
    assert again.requests == 1 and [s.method for s in fifty.seen()] == ["REPORT"]
    # and its state still knows every object: a later change is still a small fetch
    fifty.calendar.get_event_by_uid("ev03").delete()
    later = fifty.fetch(again.state)
    assert later.deleted == frozenset({fifty.href("ev03")}) and later.changed == {}


def test_a_forgotten_sync_token_is_followed_by_etags_and_a_new_token(fifty: Collection) -> None:
    first = fifty.fetch(None)
    state = json.loads(first.state)
    state["token"] = "http://radicale.org/ns/sync/" + "0" * 64  # well formed, unknown
    fifty.calendar.save_event(event("after", "After the reset"))
    fifty.calendar.get_event_by_uid("ev05").delete()
    fifty.seen()
    got = fifty.fetch(json.dumps(state))
    assert not got.complete
    assert sorted(got.changed) == [fifty.href("after")]
    assert got.deleted == frozenset({fifty.href("ev05")})
    seen = fifty.seen()
    # the REPORT refused (403 DAV:valid-sync-token), the ETags and a new token in one
    # PROPFIND, a multiget of the one new object: not the whole collection again
    assert [(s.method, s.status) for s in seen] == [
        ("REPORT", 403),
        ("PROPFIND", 207),
        ("REPORT", 207),
    ]
    assert _reports(seen, b"calendar-multiget")[0].body.count(b"<D:href>") == 1
    # the new token works: the next fetch is one sync-collection again
    assert json.loads(got.state)["token"] != state["token"]
    fifty.calendar.save_event(event("later", "Later"))
    later = fifty.fetch(got.state)
    assert sorted(later.changed) == [fifty.href("later")] and later.requests == 2
    assert len(_reports(fifty.seen(), b"sync-collection")) == 1


@pytest.mark.parametrize("state", ["{not json", '{"v": 99}', "[]", '{"v": 1, "etags": 3}'])
def test_a_state_that_cannot_be_read_is_a_reset(few: Collection, state: str) -> None:
    got = few.fetch(state)
    assert got.complete and len(got.changed) == 5
    assert _reports(few.seen(), b"calendar-query")


def test_a_server_without_sync_collection_is_followed_by_etags(fifty: Collection) -> None:
    first = fifty.fetch(None)
    fifty.server.recorder.refuse_sync = True
    fifty.calendar.save_event(event("new", "Added"))
    changed = fifty.calendar.get_event_by_uid("ev01")
    changed.data = event("ev01", "Changed")
    changed.save()
    fifty.calendar.get_event_by_uid("ev02").delete()
    fifty.seen()

    got = fifty.fetch(first.state)
    assert not got.complete
    assert sorted(got.changed) == [fifty.href("ev01"), fifty.href("new")]
    assert got.deleted == frozenset({fifty.href("ev02")})
    seen = fifty.seen()
    # the refused REPORT, a PROPFIND of the ETags, a multiget of the two changed objects
    assert [(s.method, s.status) for s in seen] == [
        ("REPORT", 501),
        ("PROPFIND", 207),
        ("REPORT", 207),
    ]
    assert _reports(seen, b"calendar-multiget")[0].body.count(b"<D:href>") == 2
    # the state remembers: next time straight to the ETags, and nothing changed
    again = fifty.fetch(got.state)
    assert (again.changed, again.deleted, again.requests) == ({}, frozenset(), 1)
    assert [s.method for s in fifty.seen()] == ["PROPFIND"]


def test_an_auth_scheme_the_server_dropped_is_negotiated_again(few: Collection) -> None:
    state = json.loads(few.fetch(None).state)
    state["auth"] = "digest"  # as if the server had asked for Digest before
    few.calendar.save_event(event("new", "Added"))
    few.seen()
    got = few.fetch(json.dumps(state))
    assert sorted(got.changed) == [few.href("new")]
    assert json.loads(got.state)["auth"] == "basic"
    # digest's bare try (401), the sync again with Basic negotiated (401, 207), the multiget
    assert [(s.method, s.status) for s in few.seen()] == [
        ("REPORT", 401),
        ("REPORT", 401),
        ("REPORT", 207),
        ("REPORT", 207),
    ]
    assert got.requests == 4


def test_a_wrong_password_is_a_clear_error_without_the_password(
    few: Collection, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # every logger, the caldav library's too
    with pytest.raises(CalDavFetchError) as raised:
        fetch_changes(few.url, USER, "wrong " + PASSWORD, None, timeout=30, max_bytes=LIMIT)
    error = raised.value
    assert isinstance(error, FetchError) and isinstance(error, ImportFailed)
    assert (error.cause, error.status) == ("auth", 401)
    assert str(error) == (
        f"{few.server.base}/… refused the CalDAV user name or password (HTTP 401): check "
        "the credentials in the configuration (for iCloud and Fastmail, an app password)"
    )
    assert error.__cause__ is None and error.__suppress_context__
    for text in (str(error), repr(error), caplog.text):
        assert PASSWORD not in text
    assert SECRET not in str(error) and SECRET not in repr(error)


def test_the_logs_name_no_secret(few: Collection, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG):
        first = few.fetch(None)
        few.calendar.save_event(event("new", "Added"))
        few.fetch(first.state)
    basic = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()  # as Basic sends it
    for secret in (PASSWORD, basic):  # not even in the caldav library's debug lines
        assert secret not in caplog.text
    ours = [r.getMessage() for r in caplog.records if r.name.startswith("calshare")]
    assert any("2 changed" in m or "1 changed" in m for m in ours), ours
    assert all(SECRET not in m for m in ours), ours  # the path is a secret too


def test_a_wrong_path_is_a_404_error(few: Collection) -> None:
    url = f"{few.server.base}/{USER}/no-such-calendar/"
    with pytest.raises(CalDavFetchError) as raised:
        fetch_changes(url, USER, PASSWORD, None, timeout=30, max_bytes=LIMIT)
    assert (raised.value.cause, raised.value.status) == ("not_found", 404)
    assert str(raised.value) == (
        f"{few.server.base}/… has no calendar at that address (HTTP 404): it may have been "
        "deleted or moved; check the collection URL"
    )
    # a collection deleted after it was followed: the same, from the kept state
    first = few.fetch(None)
    few.calendar.delete()
    with pytest.raises(CalDavFetchError) as gone:
        few.fetch(first.state)
    assert gone.value.cause == "not_found", gone.value


def test_a_folder_is_not_a_calendar(few: Collection) -> None:
    home = f"{few.server.base}/{USER}/"  # the user's home: it holds calendars
    with pytest.raises(CalDavFetchError) as raised:
        fetch_changes(home, USER, PASSWORD, None, timeout=30, max_bytes=LIMIT)
    assert raised.value.cause == "html"
    assert "is not a CalDAV calendar collection: it is a folder, not a calendar" in str(
        raised.value
    )


class _Scripted(BaseHTTPRequestHandler):
    """A web server whose every answer is the server's ``answer(path) -> (status, headers,
    body chunks)``: a login page, a redirect loop, a busy server, an endless body."""

    protocol_version = "HTTP/1.1"

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        status, headers, chunks = self.server.answer(self.path)  # type: ignore[attr-defined]
        self.server.count += 1  # type: ignore[attr-defined]
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        if "Content-Length" not in headers:
            self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        try:
            for chunk in chunks:
                if "Content-Length" in headers:
                    self.wfile.write(chunk)
                else:
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            if "Content-Length" not in headers:
                self.wfile.write(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client stopped reading: as it should

    do_GET = do_PROPFIND = do_REPORT = _answer

    def log_message(self, *args: Any) -> None:
        """Quiet: requests are counted by the test, not logged to stderr."""


@contextmanager
def scripted(answer: Callable[[str], tuple[int, dict[str, str], Iterable[bytes]]]) -> Iterator[str]:
    """Serve ``answer`` on 127.0.0.1:0; yields a collection URL on it (with a secret path)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Scripted)
    server.answer = answer  # type: ignore[attr-defined]
    server.count = 0  # type: ignore[attr-defined]
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/remote.php/dav/calendars/{SECRET}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


def _fails(url: str, **limits: Any) -> CalDavFetchError:
    with pytest.raises(CalDavFetchError) as raised:
        fetch_changes(url, USER, PASSWORD, None, **{"timeout": 30, "max_bytes": LIMIT, **limits})
    assert SECRET not in str(raised.value) and PASSWORD not in str(raised.value)
    return raised.value


def test_a_web_page_is_not_a_calendar() -> None:
    page = b"<!doctype html><html><body><form>Log in</form></body></html>"
    headers = {"Content-Type": "text/html", "Content-Length": str(len(page))}
    with scripted(lambda path: (200, headers, [page])) as url:
        error = _fails(url)
    assert error.cause == "html" and "where CalDAV answers 207" in str(error)


def test_a_redirect_loop_is_named() -> None:
    loop = {"Location": "/elsewhere/", "Content-Length": "0"}
    with scripted(lambda path: (302, loop, [])) as url:
        error = _fails(url)
    assert error.cause == "redirect_loop" and "it redirects in a loop" in str(error)


def test_a_busy_server_says_when_to_come_back() -> None:
    busy = {"Retry-After": "120", "Content-Length": "0"}
    with scripted(lambda path: (503, busy, [])) as url:
        error = _fails(url)
    assert (error.cause, error.status, error.retry_after) == ("rate_limited", 503, 120.0)


def test_an_endless_answer_is_cut_at_the_limit() -> None:
    sent: list[int] = []

    def endless(path: str) -> tuple[int, dict[str, str], Iterable[bytes]]:
        def chunks() -> Iterator[bytes]:
            for _ in range(2000):  # 128 MB at most: far past the cap, bounded all the same
                sent.append(1)
                yield b"x" * 65536

        return 207, {"Content-Type": "application/xml"}, chunks()

    with scripted(endless) as url:
        error = _fails(url, max_bytes=1000)
    assert error.cause == "too_large"
    assert len(sent) < 200, len(sent)  # stopped about 1 MB in (XML room), not at the end
    declared = {"Content-Type": "application/xml", "Content-Length": str(10**9)}
    with scripted(lambda path: (207, declared, [])) as url:
        assert _fails(url, max_bytes=1000).cause == "too_large"  # said so up front


def test_max_bytes_counts_every_object_together(few: Collection) -> None:
    whole = sum(len(data) for data in few.fetch(None).changed.values())
    with pytest.raises(CalDavFetchError) as raised:
        few.fetch(None, max_bytes=whole - 1)  # each object is far below it
    assert raised.value.cause == "too_large"
    assert f"holds more than the import limit of {whole - 1:,} bytes" in str(raised.value)
    assert len(few.fetch(None, max_bytes=whole).changed) == 5


def test_a_server_that_never_answers_times_out() -> None:
    with socket.socket() as silent:  # listens, never accepts: the kernel queues the connect
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        url = f"http://127.0.0.1:{port}/dav/{SECRET}/"
        with pytest.raises(CalDavFetchError) as raised:
            fetch_changes(url, USER, PASSWORD, None, timeout=1, max_bytes=LIMIT)
    assert raised.value.cause == "timeout"
    assert str(raised.value) == (f"Could not fetch http://127.0.0.1:{port}/…: no answer within 1 s")


def test_a_closed_port_is_a_network_error() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(CalDavFetchError) as raised:
        fetch_changes(f"http://127.0.0.1:{port}/x/", USER, PASSWORD, None, timeout=5, max_bytes=1)
    assert raised.value.cause == "network" and "connection refused" in str(raised.value)


def test_results_and_state_show_no_secret(few: Collection) -> None:
    got = few.fetch(None)
    assert repr(got) == (
        "ObjectChanges(changed=5 objects, deleted=0 objects, complete=True, requests=3)"
    )
    assert PASSWORD not in got.state and USER + ":" not in got.state
    assert json.loads(got.state)["auth"] == "basic"  # the scheme, never the credentials


# -- one calendar of the objects, imported -----------------------------------------------


def test_assemble_keeps_one_vtimezone_per_tzid_and_href_order() -> None:
    objects = {
        "/c/b.ics": event("b", "Second").encode(),
        "/c/a.ics": event("a", "First").encode().replace(b"\r\n", b"\n"),  # bare LF
        "/c/c.ics": event("c", "Third", weekly=True).encode(),
    }
    data = assemble(objects)
    assert data.startswith(b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:")
    assert data.endswith(b"END:VCALENDAR\r\n")
    assert data.count(b"BEGIN:VTIMEZONE") == 1 and data.count(b"BEGIN:VCALENDAR") == 1
    assert data.index(b"BEGIN:VTIMEZONE") < data.index(b"BEGIN:VEVENT")
    uids = [line for line in data.split(b"\r\n") if line.startswith(b"UID:")]
    assert uids == [b"UID:a", b"UID:b", b"UID:c"]
    assert b"\n" not in data.replace(b"\r\n", b"")  # CRLF throughout
    assert assemble({}) == (
        b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//calshare//CalDAV collection//EN\r\n"
        b"END:VCALENDAR\r\n"
    )


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (b"<html>not a calendar</html>", "is not an iCalendar object"),
        (b"BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:x\r\nEND:VCALENDAR\r\n", "unbalanced"),
        (b"BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:x\r\nEND:VEVENT\r\n", "cut short"),
    ],
)
def test_assemble_refuses_a_broken_object(data: bytes, why: str) -> None:
    with pytest.raises(ImportFailed, match=why) as raised:
        assemble({f"/ann/{SECRET}/broken.ics": data})
    assert "broken.ics" in str(raised.value) and SECRET not in str(raised.value)


def _events(cli: Cli, name: str) -> list[dict[str, Any]]:
    result = cli("events", name, "--from", "2027-01-01", "--to", "2027-12-31", "--json")
    assert result.code == 0, result.err
    return sorted(result.json(), key=lambda e: (e["start"], e["uid"]))


def _load(cli: Cli, tmp_path: Path, name: str, data: bytes, *, new: bool = True) -> None:
    path = tmp_path / f"{name}.ics"
    path.write_bytes(data)
    if new:
        made = cli("calendar", "add", name, "--owner", "Ann Owner <ann@example.org>")
        assert made.code == 0, made.err
    imported = cli("calendar", "import", name, str(path))
    assert imported.code == 0, imported.err


def test_the_assembled_collection_imports_as_the_union_of_its_objects(
    radicale: Radicale, app: caldav.DAVClient, cli: Cli, tmp_path: Path
) -> None:
    collection = _collection(radicale, app, 6)
    collection.calendar.save_event(event("weekly", "Stand-up", 2, weekly=True))
    got = collection.fetch(None)
    _load(cli, tmp_path, "work", assemble(got.changed))
    union: list[dict[str, Any]] = []
    for number, data in enumerate(got.changed.values()):
        _load(cli, tmp_path, f"one{number}", data)  # each object alone, as its own calendar
        union.extend(_events(cli, f"one{number}"))
    assembled = _events(cli, "work")
    assert len(assembled) == 6 + 4  # six single events, four stand-ups
    assert assembled == sorted(union, key=lambda e: (e["start"], e["uid"]))


def test_a_change_on_the_server_reaches_events_after_a_refetch(
    radicale: Radicale, app: caldav.DAVClient, cli: Cli, tmp_path: Path
) -> None:
    collection = _collection(radicale, app, 5)
    first = collection.fetch(None)
    objects = dict(first.changed)
    _load(cli, tmp_path, "work", assemble(objects))
    before = {e["uid"]: e for e in _events(cli, "work")}
    assert before["ev01"]["summary"] == "Event 1" and "ev04" in before

    moved = collection.calendar.get_event_by_uid("ev01")
    moved.data = event("ev01", "Event 1, moved", 15)
    moved.save()
    collection.calendar.get_event_by_uid("ev04").delete()
    collection.calendar.save_event(event("new", "Added", 9))
    got = collection.fetch(first.state)
    assert len(got.changed) == 2 and len(got.deleted) == 1
    for href in got.deleted:
        del objects[href]
    objects.update(got.changed)
    _load(cli, tmp_path, "work", assemble(objects), new=False)

    after = {e["uid"]: e for e in _events(cli, "work")}
    assert after["ev01"]["summary"] == "Event 1, moved"
    assert after["ev01"]["start"].startswith("2027-03-15T10:00:00")
    assert "ev04" not in after and after["new"]["summary"] == "Added"
    assert set(after) == {"ev00", "ev01", "ev02", "ev03", "new"}


# -- the same client against Xandikos ---------------------------------------------------


def test_xandikos_sync_fetches_only_changes_and_its_412_for_a_forgotten_token(
    tmp_path: Path,
) -> None:
    with (
        start_xandikos(tmp_path, USER, PASSWORD) as xandikos,
        caldav.DAVClient(url=xandikos.base + "/", username=USER, password=PASSWORD) as client,
    ):
        calendar = client.calendar(url=xandikos.calendar)
        for number in range(20):
            calendar.save_event(event(f"ev{number:02d}", f"Event {number}", 1 + number))
        path = xandikos.calendar.removeprefix(xandikos.base)
        recorder = xandikos.recorder
        recorder.take()

        def fetch(state: str | None) -> ObjectChanges:
            return fetch_changes(
                xandikos.calendar, USER, PASSWORD, state, timeout=30, max_bytes=LIMIT
            )

        first = fetch(None)
        assert first.complete and len(first.changed) == 20
        assert [(s.method, s.status) for s in recorder.take()] == [
            ("PROPFIND", 401),
            ("PROPFIND", 207),
            ("REPORT", 207),
        ]
        calendar.save_event(event("new", "Added"))
        moved = calendar.get_event_by_uid("ev03")
        moved.data = event("ev03", "Moved", 25)
        moved.save()
        calendar.get_event_by_uid("ev04").delete()
        recorder.take()

        got = fetch(first.state)
        assert sorted(got.changed) == [f"{path}ev03.ics", f"{path}new.ics"]
        assert got.deleted == frozenset({f"{path}ev04.ics"}) and not got.complete
        seen = recorder.take()
        assert [(s.method, s.status) for s in seen] == [("REPORT", 207), ("REPORT", 207)]
        assert _reports(seen, b"calendar-multiget")[0].body.count(b"<D:href>") == 2

        state = json.loads(got.state)
        state["token"] = "0" * 40  # a commit Xandikos never made
        calendar.get_event_by_uid("ev05").delete()
        recorder.take()
        again = fetch(json.dumps(state))
        assert (again.changed, again.deleted) == ({}, frozenset({f"{path}ev05.ics"}))
        assert [(s.method, s.status) for s in recorder.take()] == [
            ("REPORT", 412),  # Xandikos' way of saying it does not know the token
            ("PROPFIND", 207),
        ]
        later = fetch(again.state)  # the token from that PROPFIND syncs again
        assert (later.changed, later.deleted, later.requests) == ({}, frozenset(), 1)
