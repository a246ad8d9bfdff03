"""HTTP hardening (issue 11, finding 6), over raw sockets against the daemon's real aiohttp app.

aiohttp answers requests it cannot parse before any of our code runs: these tests
send such requests byte for byte and check what comes back and what is logged. A
slow client is a socket that sends a header byte now and then.
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from calshare.calendars import add_calendar
from calshare.clock import FixedClock
from calshare.config import load_settings
from calshare.importer import import_calendar
from calshare.levels import Level
from calshare.publishing import publish, unpublish
from calshare.store import Store
from tests.support.inbox import HOST, WAIT, Inbox, inbox_env
from tests.support.snapshot import AWKWARD
from tests.support.web import OWNER, SECURITY, Web, http, web

__all__ = ["web"]  # the fixture

pytestmark = pytest.mark.network

ALL_SECURITY = {
    **SECURITY,
    "Cross-Origin-Resource-Policy": "same-origin",
    "Server": "calshare",
}


def raw_exchange(port: int, request: bytes) -> bytes:
    """Send bytes as they are, read until the server closes (it must: a bad request)."""
    with socket.create_connection((HOST, port), timeout=WAIT) as conn:
        conn.sendall(request)
        received = b""
        while chunk := conn.recv(65536):
            received += chunk
        return received


def head_of(reply: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = reply.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip()] = value.strip()
    return int(status_line.split()[1]), headers, body


def port_of(web: Web) -> int:
    return int(web.base.rsplit(":", 1)[1])


def test_unreadable_requests_get_our_400_and_leave_no_secret_or_traceback_in_the_log(
    web: Web, caplog: pytest.LogCaptureFixture
) -> None:
    feed = web.accept_by_mail("bob@example.org")
    secret = feed.rsplit("/", 1)[1][:-4]
    caplog.set_level(logging.DEBUG)  # aiohttp logs some of these at DEBUG: all levels
    bad = [
        f"GET /feeds/{secret}\x01.ics HTTP/1.1\r\nHost: x\r\n\r\n",  # a control character
        f"GARBAGE /feeds/{secret}.ics\r\n\r\n",  # not HTTP at all
        f"GET /feeds/{secret}.ics HTTP/1.1\r\nBad Header\r\n\r\n",  # a header without colon
        f"GET /feeds/{secret}.ics HTTP/9.9\r\nHost: x\r\n\r\n",  # no such version
        f"GET /feeds/{secret}.ics?{'a' * 9000} HTTP/1.1\r\nHost: x\r\n\r\n",  # too long
    ]
    for request in bad:
        reply = raw_exchange(port_of(web), request.encode("latin-1"))
        status, headers, body = head_of(reply)
        assert status == 400, reply
        for name, value in ALL_SECURITY.items():
            assert headers.get(name) == value, (name, reply)
        assert "aiohttp" not in reply.decode("latin-1").lower()
        assert secret.encode() not in reply and b"feeds" not in body, reply  # no echo
    # the feed itself still works, and nothing logged names the secret or has a traceback
    assert http(feed).status == 200
    records = [
        record for record in caplog.records if record.name.startswith(("aiohttp", "calshare"))
    ]
    assert any("unreadable request" in record.getMessage() for record in records)
    for record in caplog.records:
        text = record.getMessage() + (record.exc_text or "")
        assert secret not in text and secret.upper() not in text, text
        assert record.exc_info is None, f"a traceback was logged: {record.getMessage()}"


def test_every_response_has_our_headers_and_no_software_version(web: Web) -> None:
    feed = web.accept_by_mail("bob@example.org")
    first = http(feed)
    answers = [
        first,
        http(feed, **{"If-None-Match": first.headers["ETag"]}),  # 304
        http(feed, method="HEAD"),
        http(feed, method="POST", data=b"x=1"),  # 405
        http(web.base + "/feeds/" + "a" * 26 + ".ics"),  # 404
        http(web.base + "/nothing/here"),  # 404 from the router
    ]
    assert [got.status for got in answers] == [200, 304, 200, 405, 404, 404]
    for got in answers:
        for name, value in ALL_SECURITY.items():
            assert got.headers.get(name) == value, (got.status, name, got.headers)


def test_published_links_are_revalidated_every_time_so_unpublish_is_immediate(web: Web) -> None:
    made = publish(web.store, web.settings, web.clock, "project", Level.FREE_BUSY)
    for link in (made.links.html, made.links.ics):
        url = web.base + link[link.index("/p/") :]
        got = http(url)
        assert got.status == 200, got.text
        cache = got.headers["Cache-Control"]
        assert "no-cache" in cache and "public" not in cache and "max-age" not in cache, cache
        etag = got.headers["ETag"]
        again = http(url, **{"If-None-Match": etag})
        assert again.status == 304 and again.body == b"" and again.headers["ETag"] == etag
        assert again.headers["Cache-Control"] == cache
        assert http(url, **{"If-None-Match": '"other"'}).status == 200
    unpublish(web.store, web.settings, web.clock, "project")
    for link in (made.links.html, made.links.ics):
        url = web.base + link[link.index("/p/") :]
        # a cache revalidating what it holds learns at once that it is gone
        assert http(url, **{"If-None-Match": '"anything"'}).status == 410


@pytest.fixture
def slow_web(db_path: Path, clock: FixedClock, tmp_path: Path) -> Iterator[str]:
    """The daemon with HTTP and a one-second header timeout."""
    settings = load_settings(None, env=inbox_env(CALSHARE_HTTP_HEADER_TIMEOUT_SECONDS="1"))
    with Store.open(db_path) as store:
        add_calendar(store, clock, "project", OWNER, None, "UTC")
        source = tmp_path / "project.ics"
        source.write_bytes(AWKWARD)
        import_calendar(store, settings, clock, "project", str(source))
        made = publish(store, settings, clock, "project", Level.FREE_BUSY)
    inbox = Inbox(settings, db_path, clock, http=True).start()
    try:
        yield inbox.web + made.links.html[made.links.html.index("/p/") :]
    finally:
        inbox.stop()


def test_a_client_sending_headers_a_byte_at_a_time_is_cut_off(slow_web: str) -> None:
    assert load_settings(None, env={}).http.header_timeout_seconds == 15.0  # the default
    port = int(slow_web.split(":")[2].split("/")[0])
    path = slow_web.split(str(port), 1)[1]
    drip = f"GET {path} HTTP/1.1\r\nHost: x\r\nX-Slow: {'a' * 1000}".encode()
    closed = False
    start = time.monotonic()
    with socket.create_connection((HOST, port), timeout=WAIT) as conn:
        conn.settimeout(0.25)  # between bytes: a slow client, a byte every quarter second
        for byte in drip:
            if time.monotonic() - start > WAIT:
                break
            try:
                conn.sendall(bytes([byte]))
                if conn.recv(65536) == b"":
                    closed = True
                    break
            except TimeoutError:
                continue
            except (BrokenPipeError, ConnectionResetError):
                closed = True
                break
    assert closed, "the server kept a client that never finished its headers"
    # the timeout is per connection, not a stall: a normal client is served
    assert http(slow_web).status == 200


def test_a_form_sent_a_byte_at_a_time_is_refused_408(slow_web: str) -> None:
    port = int(slow_web.split(":")[2].split("/")[0])
    head = (
        f"POST /i/{'a' * 26} HTTP/1.1\r\nHost: x\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 400\r\n\r\n"
    ).encode()
    received = b""
    start = time.monotonic()
    with socket.create_connection((HOST, port), timeout=WAIT) as conn:
        conn.sendall(head)
        conn.settimeout(0.25)
        for byte in b"answer=accept&csrf=" + b"0" * 381:
            if time.monotonic() - start > WAIT or received:
                break
            try:
                conn.sendall(bytes([byte]))
                received += conn.recv(65536)
            except TimeoutError:
                continue
            except (BrokenPipeError, ConnectionResetError):
                break
    status, headers, _ = head_of(received)
    assert status == 408 and headers["Server"] == "calshare", received
