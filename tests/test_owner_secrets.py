"""The operator's secrets never go where an owner chooses.

Owners sign in to the console; they are not the operator. Two ways their typing could
carry the operator's passwords to a server they control are closed here, over real
sockets:

- source credentials: a source an owner added (``guarded``) gets only the credential
  kept for ``"OWNER/NAME"``; one kept for the calendar's name or for a host is the
  operator's, for the sources they set (the test server records every header);
- WebDAV: the console's folder must lie under ``[owners] webdav_folders`` (the pure
  check, prefix tricks included), and a WebDAV server that redirects to another origin
  never passes the ``[webdav]`` password on (``calshare.webdav`` refuses the hop).
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from calshare.config import Settings, load_settings
from calshare.errors import WebDavError
from calshare.netguard import allowed_folder, folder_prefix
from calshare.refresh import FAILED, read_once
from calshare.subscriptions import SourceRecord
from calshare.webdav import Credentials, collection_kind, delete, put
from tests.support.source_server import SourceServer

ANN = "ann@example.org"
CREDENTIALS = """
[sources.credentials."family"]
username = "by-name"
password = "name-secret"

[sources.credentials."127.0.0.1"]
username = "by-host"
password = "host-secret"
"""
OWN = """
[sources.credentials."ann@example.org/family"]
username = "ann-own"
password = "ann-secret"
"""
CHALLENGE = {"WWW-Authenticate": 'Basic realm="cal"'}


@pytest.fixture
def server() -> Iterator[SourceServer]:
    running = SourceServer().start()
    yield running
    running.stop()


@pytest.fixture
def other() -> Iterator[SourceServer]:
    """A second machine (127.0.0.2): where a redirect leads."""
    running = SourceServer("127.0.0.2").start()
    yield running
    running.stop()


def settings_with(tmp_path: Path, text: str) -> Settings:
    config = tmp_path / "calshare.toml"
    config.write_text(text)
    # the test server is on the loopback: let the owner's source reach it, as the
    # operator can (the SSRF guard is tests/test_ssrf.py's)
    return load_settings(config, env={"CALSHARE_OWNERS_PRIVATE_SOURCES": "true"})


def caldav_record(url: str, *, guarded: bool) -> SourceRecord:
    return SourceRecord(
        1, "family", ANN, "caldav", url, 900, None, None, None, None, None, None,
        None, None, None, None, None, None, None, 0, guarded=guarded,
    )  # fmt: skip


def sent_users(server: SourceServer) -> set[str]:
    """The user names of every Basic Authorization header the server received."""
    users = set()
    for headers in server.requests:
        value = headers.get("Authorization", "")
        if value.startswith("Basic "):
            users.add(base64.b64decode(value[6:]).decode().split(":", 1)[0])
        elif value:
            users.add(value)
    return users


# --- source credentials


def test_an_owners_source_gets_no_credential_kept_for_a_name_or_a_host(
    tmp_path: Path, server: SourceServer
) -> None:
    server.serve(b"", status=401, headers=CHALLENGE)
    settings = settings_with(tmp_path, CREDENTIALS)
    attempt = read_once(caldav_record(server.url("family/"), guarded=True), settings)
    assert attempt.result == FAILED and attempt.status == 401
    assert server.requests and not any("Authorization" in got for got in server.requests)


def test_an_operators_source_still_gets_them(tmp_path: Path, server: SourceServer) -> None:
    server.serve(b"", status=401, headers=CHALLENGE)
    attempt = read_once(
        caldav_record(server.url("family/"), guarded=False), settings_with(tmp_path, CREDENTIALS)
    )
    assert attempt.result == FAILED
    assert sent_users(server) == {"by-name"}  # the calendar's, before the host's
    server.requests.clear()
    # the host's, for a calendar with no credential of its own
    record = replace(caldav_record(server.url("other/"), guarded=False), calendar="other")
    read_once(record, settings_with(tmp_path, CREDENTIALS))
    assert sent_users(server) == {"by-host"}


def test_an_owners_source_gets_the_credential_kept_for_owner_and_name(
    tmp_path: Path, server: SourceServer
) -> None:
    server.serve(b"", status=401, headers=CHALLENGE)
    settings = settings_with(tmp_path, CREDENTIALS + OWN)
    read_once(caldav_record(server.url("family/"), guarded=True), settings)
    assert sent_users(server) == {"ann-own"}
    # not another owner's, though the calendar's name is the same
    server.requests.clear()
    zoe = replace(caldav_record(server.url("family/"), guarded=True), owner="zoe@example.org")
    read_once(zoe, settings)
    assert server.requests and sent_users(server) == set()


# --- the console's WebDAV folder: the pure check

PREFIXES = ("https://dav.example.org/calshare/", "http://files.example.net:8080/")


@pytest.mark.parametrize(
    "url",
    [
        "https://dav.example.org/calshare/",
        "https://dav.example.org/calshare",  # the folder itself, without its slash
        "https://dav.example.org/calshare/ann/",
        "HTTPS://DAV.example.org:443/calshare/ann",  # scheme and host in any case, the port said
        "https://dav.example.org./calshare/x/",  # the root's dot
        "https://dav.example.org/calshare/a%20b/",
        "http://files.example.net:8080/anything/",
    ],
)
def test_a_folder_under_an_allowed_prefix_is_taken(url: str) -> None:
    assert allowed_folder(url, PREFIXES)


@pytest.mark.parametrize(
    "url",
    [
        "https://dav.example.org.evil.example/calshare/",  # a longer host
        "https://dav.example.org@evil.example/calshare/",  # user info: the host is evil's
        "https://ann:pw@dav.example.org/calshare/",
        "https://dav.example.org\\@evil.example/calshare/",
        "https://dav.example.org/calshare-evil/",  # the prefix on no "/" boundary
        "https://dav.example.org/",
        "https://dav.example.org/CALSHARE/",  # paths are case-sensitive
        "http://dav.example.org/calshare/",  # another scheme is another origin
        "https://dav.example.org:8443/calshare/",
        "http://files.example.net/anything/",  # port 80, not 8080
        "https://dav.example.org/calshare/../admin/",
        "https://dav.example.org/calshare/%2e%2e/admin/",
        "https://dav.example.org/calshare/..;/admin/",
        "https://dav.example.org/calshare/?x=/calshare/",
        "https://dav.example.org/calshare/#frag",
        "https://dav.example.org/cal share/",
        "https://dav.example.org:99999/calshare/",
        "ftp://dav.example.org/calshare/",
        "dav.example.org/calshare/",
        "",
    ],
)
def test_prefix_tricks_are_refused(url: str) -> None:
    assert not allowed_folder(url, PREFIXES)


def test_nothing_is_allowed_without_prefixes_and_a_prefix_is_checked_when_read() -> None:
    assert not allowed_folder("https://dav.example.org/calshare/", ())
    assert (
        folder_prefix(" https://dav.example.org/calshare ") == "https://dav.example.org/calshare/"
    )
    for bad in ("https://u@dav.example.org/", "dav.example.org/x/", "https://h/a/../b/"):
        with pytest.raises(ValueError, match="not an http"):
            folder_prefix(bad)
    env = {"CALSHARE_OWNERS_WEBDAV_FOLDERS": "https://dav.example.org/calshare"}
    assert load_settings(None, env={}).owners.webdav_folders == ()
    assert load_settings(None, env=env).owners.webdav_folders == (
        "https://dav.example.org/calshare/",
    )


# --- a WebDAV server that redirects to another origin


CREDS = Credentials("ann", "webdav-operator-secret", 5)


@pytest.mark.parametrize("status", [301, 307, 308])
def test_no_webdav_request_follows_a_redirect_to_another_origin(
    server: SourceServer, other: SourceServer, status: int
) -> None:
    other.serve(b"BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n")
    server.serve(b"", status=status, headers={"Location": other.url("moved/")})
    folder = server.url("calshare/").split("?")[0]
    target = folder + "family.ics"
    # a first write reads first (GET), then PUTs; with force it PUTs at once
    for attempt in (
        lambda: put(target, b"x", "text/calendar", CREDS, None),
        lambda: put(target, b"x", "text/calendar", CREDS, None, force=True),
        lambda: delete(target, CREDS, None, force=True),
    ):
        with pytest.raises(WebDavError) as refused:
            attempt()
        said = str(refused.value)
        assert "redirected to another server (127.0.0.2:" in said, said
        assert "does not send the WebDAV password there" in said and "\n" not in said
    assert collection_kind(folder, CREDS) is None  # the PROPFIND's redirect, refused quietly
    assert len(server.requests) == 4 and other.requests == []
    assert all("Authorization" in got for got in server.requests)  # the folder's own server


def test_a_write_is_never_redirected_even_on_its_own_server(server: SourceServer) -> None:
    """urllib would not resend a PUT's body: the owner is told to give the real address."""
    folder = server.url("calshare/").split("?")[0]
    server.serve(b"", status=307, headers={"Location": folder + "elsewhere.ics"})
    with pytest.raises(WebDavError) as refused:
        put(folder + "family.ics", b"x", "text/calendar", CREDS, None, force=True)
    assert "answered 307" in str(refused.value) and "does not write through redirects" in str(
        refused.value
    )
    assert len(server.requests) == 1
