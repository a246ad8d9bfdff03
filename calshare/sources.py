"""Get a calendar's bytes from a file or an http(s) URL, within size and time limits.

A calendar URL is untrusted: it may never answer, answer slowly forever, or send
far more than a calendar. Every path ends in bytes or an ImportFailed that says
which limit was hit. URLs can carry secrets in their path (Google's private
addresses do), so messages and logs show only the scheme and host.
"""

from __future__ import annotations

import contextlib
import email.utils
import functools
import heapq
import http.client
import itertools
import logging
import socket
import ssl
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from calshare import __version__
from calshare.errors import FetchError, ImportFailed
from calshare.links import from_webcal
from calshare.netguard import Guard

log = logging.getLogger(__name__)

_CHUNK = 64 * 1024


@dataclass(frozen=True)
class Source:
    data: bytes
    label: str  # how messages name it: a path, or a URL without its path


def is_url(location: str) -> bool:
    return location.lower().startswith(("http://", "https://", "webcal://", "webcals://"))


def redact(url: str) -> str:
    """The URL without path, query or credentials: safe to print and log.

    Raises FetchError for a URL that cannot even be taken apart (a bad port, a
    broken IPv6 literal), since such a URL can be neither fetched nor shown.
    """
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError as exc:
        raise FetchError(f"That URL cannot be used: {exc}") from None
    if ":" in host:
        host = f"[{host}]"
    if port:
        host = f"{host}:{port}"
    hidden = parts.path not in ("", "/") or parts.query
    return f"{parts.scheme}://{host}/" + ("…" if hidden else "")


def _megabytes(size: int) -> str:
    """A size people can read: exact bytes below 1 MB, else MB with one decimal."""
    if size < 1_000_000:
        return f"{size:,} bytes"
    return f"{size / 1_000_000:.1f} MB"


def read_source(location: str, *, max_bytes: int, timeout: float) -> Source:
    if is_url(location):
        return _fetch(location, max_bytes=max_bytes, timeout=timeout)
    return _read_file(Path(location), max_bytes=max_bytes)


def _read_file(path: Path, *, max_bytes: int) -> Source:
    label = str(path)
    try:
        if path.is_dir():
            raise ImportFailed(f"{label} is a directory, not a calendar file")
        size = path.stat().st_size
        if size > max_bytes:
            raise ImportFailed(
                f"{label} is {_megabytes(size)}; the import limit is {_megabytes(max_bytes)} "
                "(setting import.max_bytes)"
            )
        with path.open("rb") as handle:
            data = handle.read(max_bytes + 1)
    except FileNotFoundError:
        raise ImportFailed(f"No such file: {label}") from None
    except PermissionError:
        raise ImportFailed(f"Cannot read {label}: permission denied") from None
    except OSError as exc:
        raise ImportFailed(f"Cannot read {label}: {exc.strerror or exc}") from None
    if len(data) > max_bytes:  # the file grew while we looked
        raise ImportFailed(f"{label} is larger than the import limit of {_megabytes(max_bytes)}")
    return Source(data, label)


class _Deadlines:
    """One thread that ends every fetch at its deadline.

    A thread (a ``threading.Timer``) per fetch costs more CPU than a 304 answer itself;
    this one sleeps until the earliest deadline among all fetches in flight.
    """

    def __init__(self) -> None:
        self._ready = threading.Condition()
        self._heap: list[tuple[float, int, _Watchdog]] = []
        self._order = itertools.count()
        self._thread: threading.Thread | None = None

    def add(self, when: float, watchdog: _Watchdog) -> None:
        with self._ready:
            heapq.heappush(self._heap, (when, next(self._order), watchdog))
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="fetch-deadlines")
                self._thread.daemon = True
                self._thread.start()
            self._ready.notify()

    def _run(self) -> None:
        while True:
            with self._ready:
                while not self._heap:
                    self._ready.wait()
                when, _, watchdog = self._heap[0]
                delay = when - time.monotonic()
                if delay > 0:
                    self._ready.wait(delay)
                    continue
                heapq.heappop(self._heap)
            watchdog.expire()


_DEADLINES = _Deadlines()


class _Watchdog:
    """Ends a fetch at its deadline, whatever http.client is blocked on.

    A socket timeout bounds one recv only, so a server that drips its status line or
    headers a byte at a time is never timed out by it. At the deadline this shuts the
    connection's socket down, which makes any blocked read return at once.
    """

    def __init__(self, timeout: float) -> None:
        self.expired = False
        self._done = False
        self._sock: socket.socket | None = None
        self._lock = threading.Lock()
        self._timeout = timeout

    def __enter__(self) -> _Watchdog:
        _DEADLINES.add(time.monotonic() + self._timeout, self)
        return self

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            self._done = True
            self._sock = None

    def watch(self, sock: socket.socket) -> None:
        with self._lock:
            self._sock = sock
            if self.expired:
                _shut(sock)

    def expire(self) -> None:
        with self._lock:
            if self._done:
                return
            self.expired = True
            if self._sock is not None:
                _shut(self._sock)


def _shut(sock: socket.socket) -> None:
    # The plain socket's shutdown, even for TLS: SSLSocket.shutdown would tear down
    # the TLS state under the reader's feet in the other thread.
    with contextlib.suppress(OSError):
        socket.socket.shutdown(sock, socket.SHUT_RDWR)


class WatchedRequest(urllib.request.Request):
    """A request that carries its fetch's watchdog and guard, across redirects too."""

    watchdog: _Watchdog
    guard: Guard | None = None  # refuses internal peers (an owner's source), or None
    label: str = ""  # how a refusal names the source: the first URL, redacted


class HttpOnlyRedirects(urllib.request.HTTPRedirectHandler):
    """Follow at most a few redirects, and only to http(s): never to ftp: or file:."""

    max_redirections = 5

    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: Any,
        code: int,
        msg: str,
        headers: Any,
        newurl: str,
    ) -> urllib.request.Request | None:
        if urlsplit(newurl).scheme.lower() not in ("http", "https"):
            raise FetchError(
                f"Could not fetch {redact(req.full_url)}: it redirects away from http(s)",
                cause="redirect_loop",
            )
        new = super().redirect_request(req, fp, code, msg, headers, newurl)
        if new is not None and isinstance(req, WatchedRequest):
            new.__class__ = WatchedRequest
            new.watchdog = req.watchdog  # type: ignore[attr-defined]
            new.guard = req.guard  # type: ignore[attr-defined]
            new.label = req.label  # type: ignore[attr-defined]
        return new


class _WatchedConnection:
    """A connection that hands its socket to the fetch's watchdog once connected.

    With a guard, the peer the socket connected to is checked before a byte is sent
    (before TLS too): whatever DNS answered this time, for this hop of a redirect.
    """

    def __init__(
        self,
        *args: Any,
        watchdog: _Watchdog,
        guard: Guard | None = None,
        label: str = "",
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.watchdog = watchdog
        if guard is not None:
            # http.client's connect() makes its socket with this; TLS wraps it afterwards
            self._create_connection = functools.partial(guarded_connection, guard, label)

    def connect(self) -> None:
        super().connect()  # type: ignore[misc]
        self.watchdog.watch(self.sock)  # type: ignore[attr-defined]


def guarded_connection(
    guard: Guard,
    label: str,
    address: tuple[str, int],
    timeout: Any = socket._GLOBAL_DEFAULT_TIMEOUT,  # type: ignore[attr-defined]
    source_address: tuple[str, int] | None = None,
) -> socket.socket:
    """``socket.create_connection``, then PrivateAddress if the peer is refused."""
    sock = socket.create_connection(address, timeout, source_address)
    try:
        guard.check(str(sock.getpeername()[0]), label)
    except BaseException:
        sock.close()
        raise
    return sock


class _HTTPConnection(_WatchedConnection, http.client.HTTPConnection):
    pass


class _HTTPSConnection(_WatchedConnection, http.client.HTTPSConnection):
    pass


# For calshare.webdav: the same deadline over a whole WebDAV request (no second watchdog).
Watchdog = _Watchdog


@functools.cache
def _tls() -> ssl.SSLContext:
    """One TLS context for every fetch: making one reads the CA store, each time."""
    return ssl.create_default_context()


class _HTTPHandler(urllib.request.HTTPHandler):
    def http_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        assert isinstance(req, WatchedRequest)
        connection = functools.partial(
            _HTTPConnection, watchdog=req.watchdog, guard=req.guard, label=req.label
        )
        return self.do_open(connection, req)


class _HTTPSHandler(urllib.request.HTTPSHandler):
    def https_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        assert isinstance(req, WatchedRequest)
        connection = functools.partial(
            _HTTPSConnection, watchdog=req.watchdog, guard=req.guard, label=req.label
        )
        return self.do_open(connection, req, context=_tls())


def http_only_opener(
    redirects: urllib.request.HTTPRedirectHandler,
) -> urllib.request.OpenerDirector:
    """An opener for http(s) only, whose connections hand their socket to the request's
    watchdog and guard (a ``WatchedRequest``); ``redirects`` decides which redirects to
    follow (a subclass of ``HttpOnlyRedirects``, which carries both to the next hop).

    Built by hand rather than with build_opener, which would add handlers for ftp:,
    file: and data: URLs that a redirect could lead to, outside the watchdog.
    """
    opener = urllib.request.OpenerDirector()
    for handler in (
        urllib.request.ProxyHandler(),
        urllib.request.UnknownHandler(),
        _HTTPHandler(),
        _HTTPSHandler(),
        urllib.request.HTTPDefaultErrorHandler(),
        redirects,
        urllib.request.HTTPErrorProcessor(),
    ):
        opener.add_handler(handler)
    return opener


@functools.cache
def _shared_opener() -> urllib.request.OpenerDirector:
    """Built once (the proxies from the environment read then): a round of thousands of
    sources would otherwise spend more on building openers than on fetching."""
    return http_only_opener(HttpOnlyRedirects())


@dataclass(frozen=True)
class Fetched:
    """What a (conditional) GET of a calendar URL gave.

    ``status`` is 200 (``data`` is the body) or 304 (not modified: ``data`` is empty).
    The validators and cache hints are the server's, for the next request and schedule.
    """

    status: int
    data: bytes
    label: str
    etag: str | None = None
    last_modified: str | None = None
    max_age: float | None = None  # Cache-Control: max-age, seconds
    content_type: str = ""


def _fetch(url: str, *, max_bytes: int, timeout: float) -> Source:
    fetched = fetch_url(url, max_bytes=max_bytes, timeout=timeout)
    return Source(fetched.data, fetched.label)


def fetch_url(
    url: str,
    *,
    max_bytes: int,
    timeout: float,
    etag: str | None = None,
    last_modified: str | None = None,
    guard: Guard | None = None,
) -> Fetched:
    """GET a calendar URL, conditionally when validators from last time are given.

    Every failure is a FetchError whose ``cause`` says what kind it was; its message
    names the source by scheme and host only. With a ``guard`` (a source an owner
    added), a connection to an address it refuses, at any hop, is PrivateAddress.
    """
    url = from_webcal(url)
    label = redact(url)
    headers = {"User-Agent": f"calshare/{__version__}", "Accept": "text/calendar, */*;q=0.5"}
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    request = WatchedRequest(url, headers=headers)
    started = time.monotonic()
    watchdog = _Watchdog(timeout)
    request.watchdog = watchdog
    request.guard = guard
    request.label = label
    chunks: list[bytes] = []
    received = 0
    try:
        with watchdog, _shared_opener().open(request, timeout=timeout) as response:
            length = response.headers.get("Content-Length")
            if length and length.isdigit() and int(length) > max_bytes:
                raise FetchError(
                    f"{label} sends {_megabytes(int(length))}; the import limit is "
                    f"{_megabytes(max_bytes)} (setting import.max_bytes)",
                    cause="too_large",
                )
            while chunk := response.read1(_CHUNK):
                received += len(chunk)
                if received > max_bytes:
                    raise FetchError(
                        f"{label} sends more than the import limit of {_megabytes(max_bytes)} "
                        "(setting import.max_bytes)",
                        cause="too_large",
                    )
                chunks.append(chunk)
            if watchdog.expired:  # the end of the body was ours, not the server's
                raise TimeoutError
            if length and length.isdigit() and received < int(length):
                raise FetchError(
                    f"Could not fetch {label}: the answer stopped after {received:,} of "
                    f"{int(length):,} bytes",
                    cause="truncated",
                )
            answer = response.headers
    except urllib.error.HTTPError as exc:
        if exc.code == 304:
            log.debug("fetched %s: not modified", label)
            return Fetched(
                304,
                b"",
                label,
                exc.headers.get("ETag") or etag,
                exc.headers.get("Last-Modified") or last_modified,
                max_age(exc.headers.get("Cache-Control")),
            )
        raise FetchError(
            f"Could not fetch {label}: {_failure(exc, timeout)}",
            cause=_http_cause(exc.code),
            status=exc.code,
            retry_after=retry_after(exc.headers.get("Retry-After"), time.time()),
        ) from None
    except http.client.IncompleteRead:
        raise FetchError(
            f"Could not fetch {label}: the answer stopped before its end", cause="truncated"
        ) from None
    except (OSError, http.client.HTTPException) as exc:
        if watchdog.expired:  # whatever the shut-down socket made http.client raise
            raise FetchError(
                f"Could not fetch {label}: no answer within {timeout:g} s", cause="timeout"
            ) from None
        cause = "timeout" if _timed_out(exc) else "network"
        raise FetchError(
            f"Could not fetch {label}: {_failure(exc, timeout)}", cause=cause
        ) from None
    log.info("fetched %s: %d bytes in %.2f s", label, received, time.monotonic() - started)
    return Fetched(
        200,
        b"".join(chunks),
        label,
        answer.get("ETag"),
        answer.get("Last-Modified"),
        max_age(answer.get("Cache-Control")),
        answer.get("Content-Type", ""),
    )


def _timed_out(exc: BaseException) -> bool:
    reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
    return isinstance(reason, TimeoutError)


def _http_cause(code: int) -> str:
    if code in (401, 403):
        return "auth"
    if code in (404, 410):
        return "not_found"
    if 300 <= code < 400:
        return "redirect_loop"
    if code in (429, 503):
        return "rate_limited"
    return "http"


def max_age(cache_control: str | None) -> float | None:
    """Seconds of ``Cache-Control: max-age=N`` (s-maxage is for shared caches: not us)."""
    if not cache_control:
        return None
    for directive in cache_control.split(","):
        name, _, value = directive.strip().partition("=")
        if name.strip().lower() == "max-age" and value.strip().strip('"').isdigit():
            return float(value.strip().strip('"'))
    return None


def retry_after(value: str | None, now: float) -> float | None:
    """Seconds a ``Retry-After`` asks for: a number of seconds or an HTTP date."""
    if not value:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        moment = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        return None
    return max(0.0, moment.timestamp() - now)


def _failure(exc: Exception, timeout: float) -> str:
    if isinstance(exc, urllib.error.HTTPError):
        if 300 <= exc.code < 400:  # urllib's own refusal names the target: keep it out
            return f"HTTP {exc.code}: it redirects somewhere calshare does not follow"
        return f"HTTP {exc.code} {exc.reason}"
    if isinstance(exc, urllib.error.URLError):
        return _why(exc.reason, timeout)
    if isinstance(exc, http.client.InvalidURL):
        return "the URL is not valid (a bad host, port or user part)"
    if isinstance(exc, http.client.HTTPException):
        # BadStatusLine, IncompleteRead, LineTooLong: not OSErrors, and the server's fault.
        return f"its answer is not valid HTTP ({type(exc).__name__})"
    return _why(exc, timeout)


def _why(reason: object, timeout: float) -> str:
    if isinstance(reason, TimeoutError):
        return f"no answer within {timeout:g} s"
    if isinstance(reason, ConnectionRefusedError):
        return "connection refused"
    if isinstance(reason, socket.gaierror):
        return "unknown host"
    if isinstance(reason, ssl.SSLError):
        return f"TLS failed ({reason.reason or reason})"
    if isinstance(reason, OSError) and reason.strerror:
        return reason.strerror
    return str(reason)
