"""Publishing to WebDAV servers that behave differently from WsgiDAV (issue 10).

- nginx's dav module (Debian `nginx-light`), a private unprivileged instance per test:
  it answers a PUT with no ETag and ignores If-Match and If-None-Match, so calshare
  must notice, say so, and compare the file itself before replacing or deleting it.
  nginx cannot listen on port 0, so the test binds 127.0.0.1:0 itself and hands the
  listening socket over (nginx's own `NGINX` variable, as in its binary upgrade).
- Radicale (PyPI), in-process on cheroot on port 0, auth none, storage under tmp: a
  CalDAV calendar collection is not a folder for files, and calshare says so.
"""

from __future__ import annotations

import base64
import os
import signal
import socket
import subprocess
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from calshare.clock import FixedClock
from tests.conftest import CliResult
from tests.support.inbox import Inbox
from tests.support.publish import (
    DETAILS_ALLOWED,
    WEBDAV_ENV,
    calendar,
    command_named,
    daemon,
    local,
)
from tests.support.radicale import Radicale, start_radicale
from tests.support.snapshot import AWKWARD
from tests.support.web import http

Cli = Callable[..., CliResult]
NGINX = Path("/usr/sbin/nginx")
ENV = {**WEBDAV_ENV, **DETAILS_ALLOWED}
__all__ = ["calendar", "daemon"]  # fixtures used here, defined with the WsgiDAV tests


@dataclass
class Nginx:
    root: Path  # the document root: what nginx serves and writes
    url: str  # the folder calshare publishes into

    def file(self, name: str) -> Path:
        return self.root / "calendars" / name


def _nginx_conf(prefix: Path, port: int) -> str:
    user = "user root root;\n" if os.geteuid() == 0 else ""  # workers may write tmp files
    temp = "\n".join(
        f"    {kind}_temp_path {prefix}/temp/{kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    return f"""{user}daemon off;
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log notice;
events {{ worker_connections 64; }}
http {{
    access_log off;
{temp}
    server {{
        listen 127.0.0.1:{port};
        root {prefix}/www;
        location / {{
            dav_methods PUT DELETE MKCOL COPY MOVE;
            create_full_put_path on;
            client_max_body_size 64m;
        }}
    }}
}}
"""


@pytest.fixture
def nginx(tmp_path: Path) -> Iterator[Nginx]:
    if not NGINX.exists():
        pytest.fail(f"{NGINX} is missing: install Debian's nginx-light (make system-packages)")
    prefix = tmp_path / "nginx"
    (prefix / "www" / "calendars").mkdir(parents=True)
    (prefix / "temp").mkdir()
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    port = listener.getsockname()[1]
    conf = prefix / "nginx.conf"
    conf.write_text(_nginx_conf(prefix, port), encoding="utf-8")
    fd = listener.fileno()
    os.set_inheritable(fd, True)
    with (prefix / "stderr").open("wb") as stderr:
        process = subprocess.Popen(
            [str(NGINX), "-c", str(conf), "-p", f"{prefix}/", "-e", str(prefix / "error.log")],
            env={"NGINX": f"{fd};"},  # nginx takes the socket already listening on the port
            pass_fds=[fd],
            stdin=subprocess.DEVNULL,
            stdout=stderr,
            stderr=stderr,
        )
    listener.close()
    url = f"http://127.0.0.1:{port}/calendars/"
    try:
        probe = http(url + "probe.txt")  # queued on the socket until nginx accepts it
        assert probe.status == 404, (prefix / "error.log").read_text()
        yield Nginx(prefix / "www", url)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(30)


def test_nginx_is_a_server_without_etags(nginx: Nginx) -> None:
    """The premise: nginx's dav module gives no ETag and ignores If-Match."""
    put = http(nginx.url + "x.txt", "PUT", b"one")
    assert put.status == 201 and "ETag" not in put.headers
    again = http(nginx.url + "x.txt", "PUT", b"two", **{"If-Match": '"not-this-one"'})
    assert again.status == 204 and nginx.file("x.txt").read_bytes() == b"two"


def test_nginx_without_etags_is_said_and_a_foreign_change_is_never_overwritten(
    cli: Cli, calendar: None, nginx: Nginx, tmp_path: Path
) -> None:
    made = cli("publish", "awkward", "--level", "titles", "--webdav", nginx.url, "--json", env=ENV)
    assert made.code == 0, made.err
    assert made.err.startswith(
        f"calshare: warning: the WebDAV server for {nginx.url} gives no ETags, so it cannot "
        "refuse to overwrite a file someone else changed; calshare reads each file back"
    )
    assert made.json()["webdav_etags"] is False
    ics, html = nginx.file("awkward.ics"), nginx.file("awkward.html")
    assert b"Night shift handover" in ics.read_bytes()
    # calshare's own files are still its own: a re-import replaces them
    changed = tmp_path / "changed.ics"
    changed.write_bytes(AWKWARD.replace(b"Night shift handover", b"Night shift briefing"))
    assert cli("calendar", "import", "awkward", str(changed), env=ENV).code == 0
    assert b"Night shift briefing" in ics.read_bytes()
    # someone else edits the copy: the next write is refused, and nothing is overwritten
    theirs = ics.read_bytes().replace(b"Night shift briefing", b"Night shift (edited)")
    ics.write_bytes(theirs)
    refused = cli("calendar", "import", "awkward", str(tmp_path / "awkward.ics"), env=ENV)
    assert refused.code == 2
    assert (
        f"{nginx.url}awkward.ics was changed on the WebDAV server since calshare last wrote it"
        in refused.err
    )
    assert "`calshare push awkward --force`" in refused.err
    assert ics.read_bytes() == theirs
    # unpublish deletes only what is still calshare's, and says what stays
    gone = cli("unpublish", "awkward", env=ENV)
    assert gone.code == 2 and f"{nginx.url}awkward.ics was changed" in gone.err
    assert not html.exists() and ics.read_bytes() == theirs
    assert cli("unpublish", "awkward", "--force", env=ENV).code == 0
    assert not ics.exists()


def test_nginx_first_write_never_replaces_a_file_calshare_did_not_write(
    cli: Cli, calendar: None, nginx: Nginx, daemon: Inbox
) -> None:
    """nginx ignores If-None-Match: *, so calshare looks before the first write."""
    theirs = b"<html>someone else's page</html>"
    nginx.file("awkward.html").write_bytes(theirs)
    result = cli("publish", "awkward", "--level", "titles", "--webdav", nginx.url, "--json",
                 env=ENV)  # fmt: skip
    assert result.code == 2
    assert (
        f"{nginx.url}awkward.html already exists on the WebDAV server and calshare did not "
        "write it" in result.err
    )
    assert nginx.file("awkward.html").read_bytes() == theirs
    assert nginx.file("awkward.ics").exists()  # the one that was free is written
    made = result.json()
    forced = cli(*command_named(result.err), env=ENV)
    assert forced.code == 0, forced.err
    assert b"someone else" not in nginx.file("awkward.html").read_bytes()
    assert http(local(daemon.web, made["html"])).status == 200  # the links stayed


@pytest.fixture
def radicale_server(tmp_path: Path) -> Iterator[Radicale]:
    with start_radicale(tmp_path) as server:  # auth none: anyone is who they say
        yield server


def _radicale(method: str, url: str) -> int:
    pair = base64.b64encode(f"{WEBDAV_ENV['CALSHARE_WEBDAV_USERNAME']}:x".encode()).decode()
    request = urllib.request.Request(url, method=method, headers={"Authorization": "Basic " + pair})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        error.close()
        return error.code


def test_a_caldav_calendar_is_refused_in_one_line(
    cli: Cli, calendar: None, radicale_server: Radicale, clock: FixedClock
) -> None:
    user = WEBDAV_ENV["CALSHARE_WEBDAV_USERNAME"]
    collection = f"{radicale_server.base}/{user}/work/"
    assert _radicale("MKCALENDAR", collection) == 201
    result = cli("publish", "awkward", "--level", "titles", "--webdav", collection, env=ENV)
    assert result.code == 2
    assert result.err == (
        f"calshare: error: Nothing was published: {collection} is a CalDAV calendar, which "
        "takes single entries, not files; publishing to WebDAV needs a plain WebDAV folder, "
        "where calshare writes awkward.ics and awkward.html (calendar apps can subscribe to "
        "the ICS link instead) (--webdav)\n"
    )
    assert result.out == ""
    assert "is not published" in cli("unpublish", "awkward", env=ENV).err
    stored = list(radicale_server.storage.rglob("*.ics"))
    assert stored == [], stored  # nothing was written into the calendar
