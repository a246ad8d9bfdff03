"""Bad input to ``calshare calendar import``: one clear line, exit 2, and the store unchanged.

Files are written into tmp_path. URLs are served by real servers on 127.0.0.1, port 0,
started and stopped by each test: ``http.server`` for well-behaved answers and a raw
socket server for the misbehaving ones (silent, dripping, lying about sizes, not HTTP).
"""

from __future__ import annotations

import contextlib
import http.server
import json
import re
import socket
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import CliResult
from tests.support.net import free_port

Cli = Callable[..., CliResult]

CALENDAR = "work"
# The window the good events fall in (the test clock stands at 2026-11-26 09:00 UTC).
WINDOW = ("--from", "2026-11-20", "--to", "2026-12-10")
# A URL path segment that stands for a secret (Google's private addresses look like this).
SECRET = "s3cr3t-9f8e7d6c5b4a"
SECRET_PATH = f"/calendar/ical/private-{SECRET}/basic.ics?token=hunter2"


def vevent(uid: str, day: int, summary: str, *, dtstart: str | None = None) -> str:
    start = dtstart or f"202611{day:02d}T090000Z"
    return (
        "BEGIN:VEVENT\r\n"
        f"UID:{uid}\r\n"
        "DTSTAMP:20261101T000000Z\r\n"
        f"DTSTART:{start}\r\n"
        f"DTEND:202611{day:02d}T100000Z\r\n"
        f"SUMMARY:{summary}\r\n"
        "END:VEVENT\r\n"
    )


def vcalendar(*events: str) -> str:
    return (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//calshare tests//EN\r\n"
        + "".join(events)
        + "END:VCALENDAR\r\n"
    )


GOOD = vcalendar(
    vevent("first@test", 27, "First"),
    vevent("second@test", 28, "Second"),
    vevent("third@test", 29, "Third"),
)
GOOD_UIDS = {"first@test", "second@test", "third@test"}


# --- helpers


def snapshot(db: Path) -> str:
    """Everything in the database, as SQL text."""
    with contextlib.closing(sqlite3.connect(db)) as connection:
        return "\n".join(connection.iterdump())


def run(cli: Cli, *args: str, env: dict[str, str] | None = None) -> CliResult:
    """Run the CLI; an exception escaping main() is what a user sees as a traceback."""
    try:
        return cli(*args, env=env)
    except Exception as exc:  # noqa: BLE001 - any escape is the failure we test for
        pytest.fail(f"calshare let {type(exc).__name__} escape (a traceback): {exc!r}")


def refused(result: CliResult, *fragments: str) -> str:
    """Assert a one-line error with exit 2 and return the message after the prefix."""
    assert result.code == 2, (result.code, result.out, result.err)
    assert result.out == ""
    assert "Traceback" not in result.err
    lines = result.err.splitlines()
    assert len(lines) == 1, result.err
    assert lines[0].startswith("calshare: error: "), result.err
    message = lines[0].removeprefix("calshare: error: ")
    for fragment in fragments:
        assert fragment.lower() in message.lower(), (fragment, message)
    return message


def import_(cli: Cli, source: str | Path, env: dict[str, str] | None = None) -> CliResult:
    return run(cli, "calendar", "import", CALENDAR, str(source), env=env)


def uids(cli: Cli) -> set[str]:
    result = run(cli, "events", CALENDAR, *WINDOW, "--json")
    assert result.code == 0, result.err
    return {occurrence["uid"] for occurrence in json.loads(result.out)}


def summaries(cli: Cli) -> dict[str, str]:
    result = run(cli, "events", CALENDAR, *WINDOW, "--json")
    assert result.code == 0, result.err
    return {o["uid"]: o.get("summary", "") for o in json.loads(result.out)}


def warnings_of(result: CliResult) -> list[str]:
    lines = result.err.splitlines()
    assert all(line.startswith("calshare: warning: ") for line in lines), result.err
    return [line.removeprefix("calshare: warning: ") for line in lines]


@pytest.fixture
def seeded(cli: Cli, db_path: Path, tmp_path: Path) -> Path:
    """A calendar with GOOD imported; returns the database path."""
    assert run(cli, "calendar", "add", CALENDAR, "--owner", "ann@example.org").code == 0
    good = tmp_path / "good.ics"
    good.write_text(GOOD, encoding="utf-8")
    result = import_(cli, good)
    assert result.code == 0, result.err
    assert uids(cli) == GOOD_UIDS
    return db_path


@pytest.fixture
def unchanged(seeded: Path, cli: Cli) -> Iterator[None]:
    """The test body must leave the database exactly as it found it."""
    before = snapshot(seeded)
    yield
    assert snapshot(seeded) == before, "a refused import changed the store"
    assert uids(cli) == GOOD_UIDS


# --- files that are not calendars, or not whole ones


def _empty(tmp: Path) -> Path:
    path = tmp / "empty.ics"
    path.write_bytes(b"")
    return path


def _whitespace(tmp: Path) -> Path:
    path = tmp / "blank.ics"
    path.write_bytes(b"  \r\n\t\n   \n")
    return path


def _binary(tmp: Path) -> Path:
    path = tmp / "picture.ics"
    noise = bytes((i * 37 + 11) % 256 for i in range(4096))  # holds NULs among everything else
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + noise)
    return path


def _binary_without_nul(tmp: Path) -> Path:
    path = tmp / "noise.ics"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(1, 256)) * 16)
    return path


def _truncated(tmp: Path) -> Path:
    path = tmp / "truncated.ics"
    cut = GOOD.index("SUMMARY:Second")  # in the middle of the second VEVENT
    path.write_text(GOOD[:cut], encoding="utf-8")
    return path


def _mismatched_end(tmp: Path) -> Path:
    path = tmp / "mismatched.ics"
    path.write_text(GOOD.replace("END:VEVENT", "END:VTODO", 1), encoding="utf-8")
    return path


def _missing(tmp: Path) -> Path:
    return tmp / "no-such-dir" / "missing.ics"


def _directory(tmp: Path) -> Path:
    path = tmp / "folder.ics"
    path.mkdir()
    return path


def _not_icalendar(tmp: Path) -> Path:
    path = tmp / "notes.ics"
    path.write_text("Shopping list:\nmilk\neggs\n", encoding="utf-8")
    return path


def _all_events_broken(tmp: Path) -> Path:
    path = tmp / "all-broken.ics"
    path.write_text(
        vcalendar(
            vevent("bad-1@test", 27, "Bad one", dtstart="2026-11-27 lunchtime"),
            vevent("bad-2@test", 28, "Bad two", dtstart="yesterday"),
        ),
        encoding="utf-8",
    )
    return path


FILE_CASES: dict[str, tuple[Callable[[Path], Path], tuple[str, ...]]] = {
    "empty": (_empty, ("empty.ics", "empty")),
    "whitespace-only": (_whitespace, ("blank.ics", "empty")),
    "binary": (_binary, ("picture.ics", "not an iCalendar file")),
    "binary-without-nul": (_binary_without_nul, ("noise.ics", "not an iCalendar file")),
    "truncated-in-vevent": (_truncated, ("truncated.ics", "truncated", "never closed")),
    "end-does-not-match-begin": (_mismatched_end, ("END:VTODO", "BEGIN:VEVENT", "line 10")),
    "nonexistent": (_missing, ("No such file", "missing.ics")),
    "directory": (_directory, ("folder.ics", "directory")),
    "plain-text": (_not_icalendar, ("notes.ics", "not an iCalendar file", "line 1")),
    "every-vevent-broken": (_all_events_broken, ("None of the 2 events", "nothing was imported")),
}


@pytest.mark.parametrize("case", FILE_CASES, ids=list(FILE_CASES))
@pytest.mark.usefixtures("unchanged")
def test_bad_file_is_refused_and_changes_nothing(cli: Cli, tmp_path: Path, case: str) -> None:
    make, fragments = FILE_CASES[case]
    refused(import_(cli, make(tmp_path)), *fragments)


@pytest.mark.usefixtures("unchanged")
def test_file_over_the_default_limit_is_refused(cli: Cli, tmp_path: Path) -> None:
    """A valid-looking calendar padded to 50 MB; the default limit is 20 MiB."""
    path = tmp_path / "huge.ics"
    padding = "DESCRIPTION:" + "x" * 60 + "\r\n"
    with path.open("w", encoding="ascii", newline="") as handle:
        handle.write("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//calshare tests//EN\r\n")
        number = 0
        while handle.tell() < 50 * 1024 * 1024:
            number += 1
            event = vevent(f"pad-{number}@test", 27, f"Padding {number}")
            handle.write(event.replace("END:VEVENT", padding * 100 + "END:VEVENT"))
        handle.write("END:VCALENDAR\r\n")
    assert path.stat().st_size >= 50 * 1024 * 1024
    started = time.monotonic()
    message = refused(import_(cli, path), "huge.ics", "limit", "import.max_bytes")
    assert any(limit in message for limit in ("20 MiB", "21.0 MB", "20971520", "20,971,520"))
    assert time.monotonic() - started < 10, "the size check should not need to read the file"


@pytest.mark.usefixtures("unchanged")
def test_file_over_a_configured_limit_is_refused(cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "big.ics"
    path.write_text(vcalendar(*(vevent(f"e{n}@test", 27, "x" * 50) for n in range(40))))
    assert path.stat().st_size > 4096
    refused(import_(cli, path, env={"CALSHARE_IMPORT_MAX_BYTES": "4096"}), "big.ics", "limit")


@pytest.mark.usefixtures("seeded")
def test_a_small_limit_is_shown_in_readable_units(cli: Cli, tmp_path: Path) -> None:
    """A 4096-byte limit must not be reported as "0.0 MB" (nor a 5 kB file as 0.0 MB)."""
    path = tmp_path / "big.ics"
    path.write_text(vcalendar(*(vevent(f"e{n}@test", 27, "x" * 50) for n in range(40))))
    message = refused(import_(cli, path, env={"CALSHARE_IMPORT_MAX_BYTES": "4096"}), "limit")
    assert "0.0 MB" not in message, message
    assert re.search(r"4096|4,096|4\.1 kB|4 KiB|4\.0 KiB", message), message


@pytest.mark.usefixtures("unchanged")
def test_import_into_an_unknown_calendar_says_how_to_add_it(cli: Cli, tmp_path: Path) -> None:
    good = tmp_path / "good.ics"
    message = refused(run(cli, "calendar", "import", "holidays", str(good)), "'holidays'")
    assert "calshare calendar add holidays --owner" in message


# --- files that are partly broken: the good part is imported, with a warning


def _bad_value(text: str) -> str:
    return text.replace("DTSTART:20261128T090000Z", "DTSTART:2026-11-28 lunchtime")


def _unparseable_line(text: str) -> str:
    return text.replace("SUMMARY:Second\r\n", "SUMMARY:Second\r\nthis line is not a property\r\n")


@pytest.mark.parametrize("breakage", [_bad_value, _unparseable_line], ids=["value", "line"])
@pytest.mark.usefixtures("seeded")
def test_one_bad_vevent_among_good_ones_is_named_in_a_warning(
    cli: Cli, tmp_path: Path, breakage: Callable[[str], str]
) -> None:
    text = breakage(
        vcalendar(
            vevent("good-1@test", 27, "Good one"),
            vevent("bad@test", 28, "Second"),
            vevent("good-2@test", 29, "Good two"),
        )
    )
    # The second VEVENT starts on line 11; its bad line is line 14 or 17.
    bad_lines = {
        number + 1
        for number, line in enumerate(text.split("\r\n"))
        if "lunchtime" in line or "not a property" in line
    }
    path = tmp_path / "mixed.ics"
    path.write_text(text, encoding="utf-8")

    result = import_(cli, path)

    assert result.code == 0, result.err
    assert "Traceback" not in result.err
    warnings = warnings_of(result)
    assert warnings, "a broken VEVENT must not pass silently"
    named = {11, *bad_lines}
    assert any(
        "mixed.ics" in warning and any(f"line {n}" in warning for n in named)
        for warning in warnings
    ), warnings
    assert {"good-1@test", "good-2@test"} <= uids(cli)
    assert not uids(cli) & GOOD_UIDS, "the import replaces the calendar's old events"


@pytest.mark.usefixtures("seeded")
def test_windows_1252_file_is_read_with_a_warning(cli: Cli, tmp_path: Path) -> None:
    summary = "Blåbærsyltetøy på Ål, 25 € — ÆØÅ"
    path = tmp_path / "outlook.ics"
    path.write_bytes(vcalendar(vevent("cp1252@test", 27, summary)).encode("cp1252"))
    with pytest.raises(UnicodeDecodeError):
        path.read_bytes().decode("utf-8")

    result = import_(cli, path)

    assert result.code == 0, result.err
    warnings = warnings_of(result)
    assert any("outlook.ics" in w and "UTF-8" in w for w in warnings), warnings
    assert summaries(cli) == {"cp1252@test": summary}


# --- URLs: a well-behaved HTTP server


class _Server(http.server.ThreadingHTTPServer):
    routes: dict[str, tuple[int, bytes]]
    requests: list[str]


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        self.server.requests.append(self.path)
        status, body = self.server.routes.get(self.path, (404, b"not here"))
        self.send_response(status)
        self.send_header("Content-Type", "text/calendar; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        return None  # no access log on stderr


@dataclass
class Web:
    server: _Server

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def serve(self, path: str, body: bytes, status: int = 200) -> str:
        self.server.routes[path] = (status, body)
        return self.base + path


@pytest.fixture
def web() -> Iterator[Web]:
    server = _Server(("127.0.0.1", 0), _Handler)
    server.routes, server.requests = {}, []
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="test-http", daemon=True
    )
    thread.start()
    try:
        yield Web(server)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
        assert not thread.is_alive()


def no_secret(result: CliResult) -> None:
    for text in (result.out, result.err):
        assert SECRET not in text
        assert "hunter2" not in text
        assert "/calendar/ical" not in text


@pytest.mark.network
@pytest.mark.usefixtures("seeded")
def test_calendar_over_http_is_imported(cli: Cli, web: Web) -> None:
    other = vcalendar(vevent("web-1@test", 27, "From the web"), vevent("web-2@test", 30, "Too"))
    url = web.serve(SECRET_PATH, other.encode())

    result = import_(cli, url)

    assert result.code == 0, result.err
    assert web.server.requests == [SECRET_PATH]
    no_secret(result)
    assert f"127.0.0.1:{web.server.server_address[1]}" in result.out
    assert uids(cli) == {"web-1@test", "web-2@test"}


@pytest.mark.network
@pytest.mark.usefixtures("unchanged")
def test_http_404_is_named(cli: Cli, web: Web) -> None:
    result = import_(cli, web.base + SECRET_PATH)
    refused(result, "404", f"127.0.0.1:{web.server.server_address[1]}")
    no_secret(result)


@pytest.mark.network
@pytest.mark.usefixtures("unchanged")
def test_broken_calendar_over_http_is_refused_without_the_path(cli: Cli, web: Web) -> None:
    url = web.serve(SECRET_PATH, GOOD[: GOOD.index("SUMMARY:Second")].encode())
    result = import_(cli, url)
    refused(result, "truncated")
    no_secret(result)


# --- URLs: misbehaving servers on raw sockets


@dataclass
class Peer:
    """One accepted connection, as a handler sees it."""

    sock: socket.socket
    stop: threading.Event
    deadline: float  # the handler gives up here whatever the client does
    sent: int = 0

    def stopped(self) -> bool:
        return self.stop.is_set() or time.monotonic() > self.deadline

    def read_request(self) -> bytes:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = self.sock.recv(4096)
            if not chunk:
                break
            data += chunk
        return data

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)
        self.sent += len(data)

    def hold(self, seconds: float) -> bool:
        """Wait without answering; True when the handler should end."""
        self.stop.wait(seconds)
        return self.stopped()


Handler = Callable[[Peer], None]


@dataclass
class RawServer:
    handler: Handler
    hard_limit: float
    listener: socket.socket = field(init=False)
    stop: threading.Event = field(default_factory=threading.Event)
    peers: list[Peer] = field(default_factory=list)
    threads: list[threading.Thread] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.acceptor = threading.Thread(target=self._accept, name="test-raw-accept")
        self.acceptor.start()

    @property
    def port(self) -> int:
        return int(self.listener.getsockname()[1])

    def url(self, path: str = SECRET_PATH) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            if self.stop.is_set():
                conn.close()
                return
            conn.settimeout(self.hard_limit)
            peer = Peer(conn, self.stop, time.monotonic() + self.hard_limit)
            thread = threading.Thread(target=self._serve, args=(peer,), name="test-raw-peer")
            with self.lock:
                self.peers.append(peer)
                self.threads.append(thread)
            thread.start()

    def _serve(self, peer: Peer) -> None:
        with contextlib.suppress(OSError), peer.sock:
            peer.read_request()
            self.handler(peer)

    def close(self) -> None:
        self.stop.set()
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port)):
            pass  # wakes accept()
        self.acceptor.join(5)
        self.listener.close()
        with self.lock:
            peers, threads = list(self.peers), list(self.threads)
        for peer in peers:
            with contextlib.suppress(OSError):
                peer.sock.shutdown(socket.SHUT_RDWR)
        for thread in threads:
            thread.join(5)
        assert not self.acceptor.is_alive()
        assert not any(thread.is_alive() for thread in threads)


@pytest.fixture
def raw_server() -> Iterator[Callable[..., RawServer]]:
    started: list[RawServer] = []

    def start(handler: Handler, hard_limit: float = 15.0) -> RawServer:
        server = RawServer(handler, hard_limit)
        started.append(server)
        return server

    yield start
    for server in started:
        server.close()


def endless_calendar() -> Iterator[bytes]:
    yield b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//slow//EN\r\n"
    number = 0
    while True:
        number += 1
        yield vevent(f"e{number}@test", 27, f"Event {number}").encode()


def timed(call: Callable[[], CliResult]) -> tuple[CliResult, float]:
    started = time.monotonic()
    result = call()
    return result, time.monotonic() - started


ONE_SECOND = {"CALSHARE_IMPORT_TIMEOUT_SECONDS": "1"}
# A liveness bound, not a benchmark: generous for slow CI machines.
LIVENESS = 10.0


def _silent(peer: Peer) -> None:
    peer.hold(peer.deadline - time.monotonic())


def _drip_body(peer: Peer) -> None:
    peer.send(b"HTTP/1.1 200 OK\r\nContent-Type: text/calendar\r\n\r\n")
    for piece in endless_calendar():
        for byte in piece:
            peer.send(bytes([byte]))
            if peer.hold(0.3):
                return


def _drip_headers(peer: Peer) -> None:
    peer.send(b"HTTP/1.1 200 OK\r\n")
    for piece in endless_calendar():
        for byte in b"X-Slow: " + piece.replace(b"\r\n", b" ") + b"\r\n":
            peer.send(bytes([byte]))
            if peer.hold(0.3):
                return


@pytest.mark.network
@pytest.mark.usefixtures("unchanged")
def test_server_that_never_answers_times_out(
    cli: Cli, raw_server: Callable[..., RawServer]
) -> None:
    server = raw_server(_silent)
    result, elapsed = timed(lambda: import_(cli, server.url(), env=ONE_SECOND))
    refused(result, "within 1 s", f"127.0.0.1:{server.port}")
    no_secret(result)
    assert elapsed < LIVENESS


@pytest.mark.network
@pytest.mark.usefixtures("unchanged")
def test_server_dripping_the_body_times_out(cli: Cli, raw_server: Callable[..., RawServer]) -> None:
    server = raw_server(_drip_body)
    result, elapsed = timed(lambda: import_(cli, server.url(), env=ONE_SECOND))
    refused(result, "within 1 s")
    no_secret(result)
    assert elapsed < LIVENESS


@pytest.mark.network
@pytest.mark.usefixtures("unchanged")
def test_server_dripping_the_headers_times_out(
    cli: Cli, raw_server: Callable[..., RawServer]
) -> None:
    """The status line comes, then header bytes one per 0.3 s forever.

    Each byte resets the socket timeout, so only a deadline over the whole request ends
    this. The server gives up after 12 s (so that a hang cannot stall the suite).
    """
    server = raw_server(_drip_headers, hard_limit=12.0)
    result, elapsed = timed(lambda: import_(cli, server.url(), env=ONE_SECOND))
    assert elapsed < LIVENESS, f"import ran {elapsed:.1f} s against a 1 s timeout"
    refused(result, "within 1 s")
    no_secret(result)


def _announces_60_mb(peer: Peer) -> None:
    peer.send(
        b"HTTP/1.1 200 OK\r\nContent-Type: text/calendar\r\n"
        b"Content-Length: 60000000\r\n\r\n" + next(endless_calendar())
    )
    peer.hold(peer.deadline - time.monotonic())  # the rest never comes


@pytest.mark.network
@pytest.mark.usefixtures("unchanged")
def test_announced_size_over_the_limit_is_refused_before_downloading(
    cli: Cli, raw_server: Callable[..., RawServer]
) -> None:
    server = raw_server(_announces_60_mb)
    env = {"CALSHARE_IMPORT_TIMEOUT_SECONDS": "5"}
    result, elapsed = timed(lambda: import_(cli, server.url(), env=env))
    message = refused(result, "limit", "60")
    assert "within" not in message, "it waited for the body instead of refusing at once"
    no_secret(result)
    assert elapsed < 4


def _chunked_flood(peer: Peer) -> None:
    peer.send(
        b"HTTP/1.1 200 OK\r\nContent-Type: text/calendar\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    for piece in endless_calendar():
        peer.send(b"%x\r\n%s\r\n" % (len(piece), piece))
        if peer.sent > 8 * 1024 * 1024 or peer.stopped():
            return


@pytest.mark.network
@pytest.mark.usefixtures("unchanged")
def test_chunked_body_over_the_limit_is_refused(
    cli: Cli, raw_server: Callable[..., RawServer]
) -> None:
    server = raw_server(_chunked_flood)
    env = {"CALSHARE_IMPORT_MAX_BYTES": "4096", "CALSHARE_IMPORT_TIMEOUT_SECONDS": "5"}
    result, elapsed = timed(lambda: import_(cli, server.url(), env=env))
    refused(result, "more than the import limit", "import.max_bytes")
    no_secret(result)
    assert elapsed < LIVENESS


@pytest.mark.network
@pytest.mark.usefixtures("unchanged")
def test_connection_refused(cli: Cli) -> None:
    port = free_port()
    result = import_(cli, f"http://127.0.0.1:{port}{SECRET_PATH}")
    refused(result, "connection refused", f"127.0.0.1:{port}")
    no_secret(result)


def _not_http(peer: Peer) -> None:
    peer.send(b"SSH-2.0-OpenSSH_9.6\r\n")


def _broken_chunks(peer: Peer) -> None:
    peer.send(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"11\r\nBEGIN:VCALENDAR\r\n\r\nnot-a-chunk-size\r\n"
    )


def _closes_mid_chunk(peer: Peer) -> None:
    peer.send(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n400\r\nBEGIN:VCALENDAR\r\n")


@pytest.mark.network
@pytest.mark.parametrize(
    "handler",
    [_not_http, _broken_chunks, _closes_mid_chunk],
    ids=["not-http", "broken-chunk-size", "closes-mid-chunk"],
)
@pytest.mark.usefixtures("unchanged")
def test_server_speaking_broken_http_gets_a_one_line_error(
    cli: Cli, raw_server: Callable[..., RawServer], handler: Handler
) -> None:
    server = raw_server(handler)
    result, elapsed = timed(lambda: import_(cli, server.url(), env=ONE_SECOND))
    refused(result, f"127.0.0.1:{server.port}")
    no_secret(result)
    assert elapsed < LIVENESS


@pytest.mark.network
@pytest.mark.usefixtures("unchanged")
def test_unknown_calendar_is_refused_before_fetching(
    cli: Cli, raw_server: Callable[..., RawServer]
) -> None:
    server = raw_server(_silent)
    result = run(cli, "calendar", "import", "holidays", server.url(), env=ONE_SECOND)
    refused(result, "calshare calendar add holidays")
    assert server.peers == [], "it connected before checking the calendar name"


def test_no_test_server_thread_is_left_running() -> None:
    """Runs after the network tests in this file: every server thread was joined."""
    names = {thread.name for thread in threading.enumerate()}
    assert not {name for name in names if name.startswith("test-")}, names


@pytest.mark.usefixtures("unchanged")
@pytest.mark.parametrize("target", ["ftp://127.0.0.1:9/passwd", "file:///etc/passwd"])
def test_a_redirect_away_from_http_is_refused(cli: Cli, target: str) -> None:
    """urllib would follow a 302 to ftp: or file:, outside our deadline and our reach."""
    import http.server
    import threading

    class Redirect(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(302)
            self.send_header("Location", target)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            return None

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Redirect)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/secret-path/cal.ics"
        result = import_(cli, url)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
    assert result.code == 2 and "redirect" in result.err
    assert "secret-path" not in result.err and "passwd" not in result.err


@pytest.mark.parametrize("url", ["http://[abc/x.ics", "http://example.org:99999/x.ics"])
@pytest.mark.usefixtures("unchanged")
def test_urls_that_cannot_be_parsed_are_one_line_errors(cli: Cli, url: str) -> None:
    result = import_(cli, url)
    assert result.code == 2 and result.err.startswith("calshare: error: That URL cannot be used")
