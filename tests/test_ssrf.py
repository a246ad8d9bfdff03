"""Owners' sources may not make the server read its own network (server-side request forgery).

The pure check first (which addresses are internal), then real sockets: a name that
resolves to 127.0.0.1 and a redirect to it refused when the connection is made, for
plain URLs and CalDAV; the console's Add page refusing with one line and storing
nothing; a guarded source that leads inward later failing with its cause and the
owner's mail; the operator's CLI still adding a source on 127.0.0.1.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import timedelta
from ipaddress import ip_address, ip_network
from pathlib import Path

import caldav
import pytest

from calshare.caldav_source import CalDavFetchError, _GuardedAdapter, fetch_changes
from calshare.calendars import get_calendar
from calshare.clock import FixedClock
from calshare.config import load_settings
from calshare.console.base import LANG_COOKIE
from calshare.errors import PrivateAddress
from calshare.links import ADD_CALENDAR_ROUTE, CALENDARS_ROUTE
from calshare.netguard import STRICT, Guard, internal, literal_address, owner_guard
from calshare.refresh import FAILED, Attempt, cause_words, refresh_one
from calshare.sources import fetch_url
from calshare.store import Store
from calshare.subscriptions import SourceRecord, find_source, get_source
from tests.conftest import CliResult
from tests.support.console import ANN, Client, Console, console, running_console
from tests.support.inbox import inbox_env, queued
from tests.support.radicale import Radicale, start_radicale
from tests.support.snapshot import AWKWARD
from tests.support.source_server import SourceServer
from tests.support.web import Got

__all__ = ["console"]

REFUSED_LINE = (
    "The calendar was not added: calshare does not read addresses inside its own network "
    "(127.0.0.1); ask the operator."
)
# the refusal, as the connection's check words it (the Add page shows it in its line)
REFUSED_AT_CONNECT = "calshare does not read addresses inside its own network (127.0.0.1)"
ONLY_127_0_0_1 = Guard((ip_network("127.0.0.1/32"),))  # 127.0.0.2 plays a public server
ONLY_TEN = Guard((ip_network("10.0.0.0/8"),))  # lets both loopback servers through
MAX = 1_000_000
DAV_USER, DAV_PASSWORD = "ann", "s3cret-caldav-pass"


@pytest.fixture
def server() -> Iterator[SourceServer]:
    running = SourceServer().start()
    yield running
    running.stop()


@pytest.fixture
def front() -> Iterator[SourceServer]:
    """A second server, on 127.0.0.2: "public" to ONLY_127_0_0_1, and made to redirect."""
    running = SourceServer("127.0.0.2").start()
    yield running
    running.stop()


def line(got: Got, css: str) -> str:
    found = re.search(rf'<p class="{css}"[^>]*>(.*?)</p>', got.text, re.S)
    return html.unescape(found[1]) if found else ""


def add_url(client: Client, name: str, url: str, kind: str = "url") -> Got:
    client.get(ADD_CALENDAR_ROUTE)
    return client.post(ADD_CALENDAR_ROUTE, {"name": name, "kind": kind, "url": url})


# --- the pure check


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "127.8.9.10",
        "::1",
        "::ffff:127.0.0.1",  # IPv4-mapped: the loopback to a dual-stack socket
        "::ffff:10.0.0.1",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",  # the cloud's metadata service
        "fe80::1",
        "fc00::1",
        "fd12:3456::1",
        "100.64.0.1",  # CGNAT
        "0.0.0.0",
        "::",
        "224.0.0.1",  # multicast: is_global alone lets it through
        "ff02::1",
        "240.0.0.1",
        "255.255.255.255",
        "192.0.2.1",  # documentation
        "2002:7f00:1::1",  # 6to4 of 127.0.0.1
        "64:ff9b::a00:1",  # NAT64 of 10.0.0.1
    ],
)
def test_internal_addresses_are_refused(address: str) -> None:
    assert internal(ip_address(address))
    assert STRICT.refuses(address)
    with pytest.raises(PrivateAddress) as refused:
        STRICT.check(address, "http://host/")
    assert refused.value.cause == "private_address" and f"({address})" in str(refused.value)


@pytest.mark.parametrize(
    "address", ["93.184.216.34", "8.8.8.8", "2606:4700::1111", "::ffff:8.8.8.8", "64:ff9b::808:808"]
)
def test_public_addresses_pass(address: str) -> None:
    assert not internal(ip_address(address))
    assert not STRICT.refuses(address)
    STRICT.check(address, "http://host/")  # no exception


def test_a_peer_that_is_no_ip_address_is_refused_and_a_zone_is_no_host() -> None:
    assert STRICT.refuses("")  # a guard that cannot tell fails closed
    assert STRICT.refuses("/run/some.sock")
    assert STRICT.refuses("fe80::1%eth0")


def test_a_narrower_guard_refuses_only_its_networks_mapped_forms_too() -> None:
    assert ONLY_127_0_0_1.refuses("127.0.0.1")
    assert ONLY_127_0_0_1.refuses("::ffff:127.0.0.1")
    assert not ONLY_127_0_0_1.refuses("127.0.0.2")
    assert not ONLY_127_0_0_1.refuses("::1")


def test_the_setting_decides_whether_owners_sources_are_guarded() -> None:
    assert owner_guard(False) is STRICT
    assert owner_guard(True) is None
    assert load_settings(None, env={}).owners.private_sources is False
    env = {"CALSHARE_OWNERS_PRIVATE_SOURCES": "true"}
    assert load_settings(None, env=env).owners.private_sources is True


@pytest.mark.parametrize(
    ("url", "literal"),
    [
        ("http://127.0.0.1:8080/cal.ics", "127.0.0.1"),
        ("https://[::1]/cal.ics", "::1"),
        ("http://[::ffff:127.0.0.1]/x", "::ffff:7f00:1"),
        ("webcal://169.254.169.254/latest/", "169.254.169.254"),
        ("https://calendar.example.org/cal.ics", None),
        ("http://2130706433/", None),  # a name to the resolver: the connection's check sees it
        ("http://[bad/", None),
    ],
)
def test_the_add_page_knows_an_address_written_out(url: str, literal: str | None) -> None:
    assert literal_address(url) == literal


# --- plain URLs, checked when the connection is made


def test_a_name_that_resolves_to_the_loopback_is_refused_before_a_byte_is_sent(
    server: SourceServer,
) -> None:
    server.serve(AWKWARD)
    url = server.url().replace("127.0.0.1", "localhost")
    with pytest.raises(PrivateAddress) as refused:
        fetch_url(url, max_bytes=MAX, timeout=5, guard=STRICT)
    assert refused.value.cause == "private_address"
    assert str(refused.value) == (
        f"Could not fetch http://localhost:{server.port}/…: {REFUSED_AT_CONNECT}; ask the operator"
    )
    assert server.requests == []
    assert fetch_url(url, max_bytes=MAX, timeout=5).data == AWKWARD  # unguarded: the CLI's


def test_a_redirect_to_an_internal_address_is_refused_at_that_hop(
    server: SourceServer, front: SourceServer
) -> None:
    server.serve(AWKWARD)
    front.serve(b"", status=302, headers={"Location": server.url()})
    with pytest.raises(PrivateAddress) as refused:
        fetch_url(front.url(), max_bytes=MAX, timeout=5, guard=ONLY_127_0_0_1)
    assert "(127.0.0.1)" in str(refused.value) and "127.0.0.2" in str(refused.value)
    assert (len(front.requests), server.requests) == (1, [])
    # the same redirect under a guard that allows both hops arrives
    fetched = fetch_url(front.url(), max_bytes=MAX, timeout=5, guard=ONLY_TEN)
    assert fetched.data == AWKWARD and len(server.requests) == 1


def test_the_first_hop_is_refused_too_and_nothing_is_sent(front: SourceServer) -> None:
    front.serve(AWKWARD)
    with pytest.raises(PrivateAddress):
        fetch_url(front.url(), max_bytes=MAX, timeout=5, guard=STRICT)
    assert front.requests == []


# --- CalDAV: the niquests adapter checks each connection


@pytest.fixture
def radicale(tmp_path: Path) -> Iterator[Radicale]:
    with start_radicale(tmp_path, {DAV_USER: DAV_PASSWORD}) as running:
        yield running


def _collection(radicale: Radicale) -> str:
    with caldav.DAVClient(url=radicale.base + "/", username=DAV_USER, password=DAV_PASSWORD) as app:
        collection = app.principal().make_calendar(name="Team", cal_id="team")
        collection.save_event(
            "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//t//EN\r\nBEGIN:VEVENT\r\n"
            "UID:team@t\r\nDTSTAMP:20270301T000000Z\r\nDTSTART:20270321T100000Z\r\n"
            "DTEND:20270321T110000Z\r\nSUMMARY:Team\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
        )
    return f"{radicale.base}/{DAV_USER}/team/"


def test_a_caldav_collection_on_the_loopback_is_refused_and_allowed_without_the_guard(
    radicale: Radicale,
) -> None:
    url = _collection(radicale)
    with pytest.raises(PrivateAddress) as refused:
        fetch_changes(url, DAV_USER, DAV_PASSWORD, None, timeout=10, max_bytes=MAX, guard=STRICT)
    assert refused.value.cause == "private_address"
    changes = fetch_changes(url, DAV_USER, DAV_PASSWORD, None, timeout=10, max_bytes=MAX)
    assert len(changes.changed) == 1


def test_a_caldav_redirect_to_an_internal_address_is_refused_before_it_is_sent(
    radicale: Radicale, front: SourceServer
) -> None:
    url = _collection(radicale)
    front.serve(b"", status=301, headers={"Location": url})
    with pytest.raises(PrivateAddress) as refused:
        fetch_changes(
            front.url("team/"), DAV_USER, DAV_PASSWORD, None, timeout=10, max_bytes=MAX,
            guard=ONLY_127_0_0_1,
        )  # fmt: skip
    assert "(127.0.0.1)" in str(refused.value)
    assert len(front.requests) == 1  # the first hop was let through, the second never left
    # with a guard that allows both, the redirect is followed: Radicale itself answers
    # (401: niquests does not take the credentials to another host, as it should not)
    with pytest.raises(CalDavFetchError) as answered:
        fetch_changes(
            front.url("team/"), DAV_USER, DAV_PASSWORD, None, timeout=10, max_bytes=MAX,
            guard=ONLY_TEN,
        )  # fmt: skip
    assert (answered.value.cause, answered.value.status) == ("auth", 401)


class _SilentAdapter:
    """A transport (niquests' role, not ours) that never reports where it connected."""

    def __init__(self) -> None:
        self.closed = 0

    def send(self, request: object, **kwargs: object) -> _SilentAdapter:
        return self

    def close(self) -> None:
        self.closed += 1


def test_a_caldav_connection_that_is_never_reported_is_refused() -> None:
    """The guard fails closed: a send whose peer niquests never named is not read."""
    silent = _SilentAdapter()
    with pytest.raises(PrivateAddress, match="an address niquests did not report"):
        _GuardedAdapter(silent, STRICT, "https://dav.example.org/").send(object())
    assert silent.closed == 1


# --- the console's Add page (the daemon's default: private_sources false)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:{port}/calendar/private-7f3a9c/basic.ics",
        "http://[::ffff:127.0.0.1]:{port}/calendar/x.ics",
        "webcal://127.0.0.1:{port}/calendar/x.ics",
    ],
)
def test_the_add_page_refuses_an_internal_address_with_one_line_and_stores_nothing(
    console: Console, server: SourceServer, url: str
) -> None:
    console.calendar("project")  # Ann may add
    server.serve(AWKWARD)
    before = console.state()
    got = add_url(console.client(), "inside", url.format(port=server.port))
    assert got.status == 422
    expected = REFUSED_LINE.replace("127.0.0.1", "::ffff:7f00:1") if "ffff" in url else REFUSED_LINE
    assert line(got, "error") == expected
    assert "Traceback" not in got.text and "private-7f3a9c" not in got.text
    assert console.state() == before and server.requests == []


def test_the_refusal_is_said_in_norwegian_too(console: Console, server: SourceServer) -> None:
    console.calendar("project")
    before = console.state()
    client = console.client()
    client.cookies[LANG_COOKIE] = "nb"
    got = add_url(client, "inne", server.url())
    assert got.status == 422
    assert line(got, "error") == (
        "Kalenderen ble ikke lagt til: calshare leser ikke adresser i sitt eget nettverk "
        "(127.0.0.1); spør den som drifter tjenesten."
    )
    assert console.state() == before


@pytest.mark.parametrize("kind", ["url", "caldav"])
def test_a_name_that_resolves_inward_is_refused_when_connecting_and_nothing_is_stored(
    console: Console, server: SourceServer, kind: str
) -> None:
    console.calendar("project")
    server.serve(AWKWARD)
    before = console.state()
    got = add_url(console.client(), "inside", server.url().replace("127.0.0.1", "localhost"), kind)
    assert got.status == 422, got.text
    error = line(got, "error")
    assert error.startswith("The calendar was not added: ") and REFUSED_AT_CONNECT in error, error
    assert "\n" not in error and "private-7f3a9c" not in got.text
    assert console.state() == before and server.requests == []


def test_with_private_sources_allowed_the_owner_adds_it_guarded_for_later(
    db_path: Path, clock: FixedClock, tmp_path: Path, server: SourceServer
) -> None:
    with running_console(
        db_path, clock, tmp_path, CALSHARE_OWNERS_PRIVATE_SOURCES="true"
    ) as running:
        running.calendar("project")
        server.serve(AWKWARD)
        got = add_url(running.client(), "family", server.url())
        assert got.status == 303, line(got, "error")
        family = get_calendar(running.store.db, "family", ANN)
        record = find_source(running.store.db, family.id)
        assert record is not None and record.guarded is True
        assert family.event_count == AWKWARD.count(b"BEGIN:VEVENT")


def test_a_guarded_source_that_leads_inward_later_fails_and_its_owner_is_told(
    db_path: Path, clock: FixedClock, tmp_path: Path, server: SourceServer
) -> None:
    """Added while the operator allowed private addresses; then they stop allowing them
    (as if the name had moved inward): every later read is refused, the owner's mail and
    My calendars say why, and the events the calendar had stay."""
    with running_console(
        db_path, clock, tmp_path, CALSHARE_OWNERS_PRIVATE_SOURCES="true"
    ) as running:
        running.calendar("project")
        server.serve(AWKWARD)
        assert add_url(running.client(), "family", server.url()).status == 303
        family = get_calendar(running.store.db, "family", ANN)
        strict = replace(
            running.settings, owners=replace(running.settings.owners, private_sources=False)
        )
        sent = len(server.requests)
        for _ in range(2):  # failing, then failing past sources.notify_after: the owner is told
            refreshed = refresh_one(running.store, strict, running.clock, family.id)
            assert refreshed is not None
            assert (refreshed.result, refreshed.cause) == (FAILED, "private_address")
            running.clock.advance(timedelta(seconds=strict.sources.notify_after + 60))
        assert len(server.requests) == sent  # refused before a request was written
        source = get_source(running.store.db, "family", ANN)
        assert source.last_cause == "private_address" and REFUSED_AT_CONNECT in (
            source.last_error or ""
        )
        assert get_calendar(running.store.db, "family", ANN).event_count == family.event_count
        (mail,) = queued(db_path, "o.kind = 'source_failing'", ())
        text = re.sub(r"\s+", " ", mail.text)
        assert (
            "leads inside the server's own network, and calshare does not read addresses there"
            in text
        )
        assert "they can allow such addresses" in text
        page = html.unescape(running.client().get(CALENDARS_ROUTE).text)
        assert "the address leads inside the server's own network" in page


def test_the_owners_mail_words_the_cause_in_norwegian(server: SourceServer) -> None:
    record = SourceRecord(
        1, "family", ANN, "url", server.url(), 900, None, None, None, None, None, None,
        None, None, None, None, None, None, None, 0, guarded=True,
    )  # fmt: skip
    words = cause_words(Attempt(FAILED, "private_address"), record, "127.0.0.1", "nb")
    assert "fører inn i tjenerens eget nettverk" in words["cause"]
    assert "kan tillate slike adresser" in words["hint"]


# --- the operator's CLI is trusted


def test_the_cli_still_adds_a_source_on_the_loopback_and_reads_it_again(
    cli: Callable[..., CliResult], db_path: Path, clock: FixedClock, server: SourceServer
) -> None:
    """The default settings (private_sources false) guard owners' sources, not the CLI's."""
    server.serve(AWKWARD)
    env = inbox_env()
    result = cli("calendar", "add", "family", "--owner", ANN, "--source", server.url(), env=env)
    assert result.code == 0, result.err
    with Store.open(db_path) as store:
        source = get_source(store.db, "family", ANN)
        assert source.guarded is False
        refreshed = refresh_one(store, load_settings(None, env=env), clock, source.calendar_id)
    assert refreshed is not None and refreshed.result != FAILED, refreshed
    assert len(server.requests) == 2
