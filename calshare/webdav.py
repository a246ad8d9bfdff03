"""Put and delete files on a WebDAV server (RFC 4918) without ever clobbering someone else's.

Only what publishing needs, over urllib. Each file calshare writes is remembered
with a *validator*, so a later write or delete can tell whether the file is still
the one calshare wrote:

- the server's ETag from the PUT's answer: later requests carry ``If-Match`` and
  the server itself refuses (412) if someone changed the file;
- ``sha256:<hex>`` of the bytes written, when the server gave no strong ETag (nginx's dav
  module gives none and ignores ``If-Match``): calshare reads the file back and
  compares before it writes or deletes. A change made between that read and the
  write can still be lost; the caller tells the owner so.

A first write sends ``If-None-Match: *`` and, since a server without ETags may
ignore that too, reads first: a file calshare did not write is never replaced.
``force`` drops all of these checks (the owner asked to replace or delete anyway).
Every refusal becomes one WebDavError saying what happened; publishing adds what
to do about it.

The requests carry the operator's ``[webdav]`` password, so no redirect to another
origin (scheme, host, port) is followed: urllib would send the Authorization header
along. A redirect within the folder's own server is followed for a read only; a write
never follows one. For the console (an owner's folder), ``Credentials.guard`` checks
each connection's peer as sources do (``calshare.netguard``).
"""

from __future__ import annotations

import base64
import functools
import hashlib
import http.client
import logging
import urllib.error
import urllib.request
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass, field
from email.message import Message
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from calshare.errors import Field, PrivateAddress, UsageError, WebDavConflict, WebDavError
from calshare.netguard import Guard
from calshare.sources import HttpOnlyRedirects, Watchdog, WatchedRequest, http_only_opener

log = logging.getLogger(__name__)

OWN = "sha256:"  # prefix of the validators calshare computes itself
MAX_READ = 64 * 1024 * 1024  # a file read back for comparison; anything larger is not ours
MAX_PROPFIND = 256 * 1024
CHANGED = 412  # the status of every "someone else changed it" refusal, the server's or ours
_CALDAV = "{urn:ietf:params:xml:ns:caldav}calendar"
_CARDDAV = "{urn:ietf:params:xml:ns:carddav}addressbook"
_PROPFIND = (
    b'<?xml version="1.0" encoding="utf-8"?>'
    b'<propfind xmlns="DAV:"><prop><resourcetype/></prop></propfind>'
)


@dataclass(frozen=True)
class Credentials:
    """The operator's ``[webdav]`` login, and the guard of an owner's folder (or None)."""

    username: str
    password: str = field(repr=False)
    timeout: float
    guard: Guard | None = None


@dataclass(frozen=True)
class _Response:
    status: int
    headers: Message
    body: bytes


def check_collection(url: str) -> str:
    """The collection URL, ending in '/', with no credentials in it (they go in config)."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(f"{url!r} is not an http(s) URL of a WebDAV folder", field=Field.WEBDAV)
    if parts.username or parts.password:
        raise UsageError(
            "Put the WebDAV user name and password in [webdav] (or CALSHARE_WEBDAV_*), "
            "not in the URL",
            field=Field.WEBDAV,
        )
    path = parts.path if parts.path.endswith("/") else parts.path + "/"
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


def fingerprint(body: bytes) -> str:
    """calshare's own validator for a file on a server that gives no ETag."""
    return OWN + hashlib.sha256(body).hexdigest()


def has_etag(validator: str | None) -> bool:
    """Whether the server gave an ETag for the file (else calshare compares contents)."""
    return bool(validator) and not str(validator).startswith(OWN)


def _explain(status: int, url: str, reason: str) -> str:
    where = _host(url)
    return {
        401: f"The WebDAV server at {where} refused the user name or password "
        "(settings webdav.username and webdav.password)",
        403: f"The WebDAV server at {where} does not allow writing {url}",
        404: f"{url} was not found on the WebDAV server",
        409: f"The folder for {url} does not exist on the WebDAV server (409 Conflict); "
        "create it first",
        412: f"{url} was changed on the WebDAV server since calshare last wrote it",
        507: f"The WebDAV server at {where} is out of space (507 Insufficient Storage)",
    }.get(status, f"The WebDAV server at {where} answered {status} {reason} for {url}")


def _changed(url: str) -> WebDavConflict:
    return WebDavConflict(_explain(CHANGED, url, ""), foreign=False)


def _foreign(url: str) -> WebDavConflict:
    return WebDavConflict(
        f"{url} already exists on the WebDAV server and calshare did not write it", foreign=True
    )


def _host(url: str) -> str:
    return urlsplit(url).netloc


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port or {"http": 80, "https": 443}.get(scheme)
    except ValueError:
        port = None
    return scheme, (parts.hostname or "").rstrip("."), port


class _Redirects(HttpOnlyRedirects):
    """Follows a read's redirect on the same origin only; refuses every other one.

    urllib copies the request's headers, Authorization included, to the redirect's
    target: another origin would get the operator's password. A write (PUT, DELETE,
    PROPFIND) is never redirected by urllib; it is refused here with its own words.
    """

    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: Any,
        code: int,
        msg: str,
        headers: http.client.HTTPMessage,
        newurl: str,
    ) -> urllib.request.Request | None:
        old = req.full_url
        if _origin(newurl) != _origin(old):
            fp.close()
            where = urlsplit(newurl).netloc or newurl
            raise WebDavError(
                f"The WebDAV server at {_host(old)} redirected to another server ({where}); "
                "calshare does not send the WebDAV password there: give the folder's own "
                "address on that server",
                code,
            )
        if req.get_method() not in ("GET", "HEAD"):
            fp.close()
            raise WebDavError(
                f"The WebDAV server at {_host(old)} answered {code} {msg} (a redirect) for "
                f"{old}; calshare does not write through redirects: give the folder's own "
                "address",
                code,
            )
        # the same watchdog and guard for the next hop (its address may differ)
        return super().redirect_request(req, fp, code, msg, headers, newurl)


@functools.cache
def _opener() -> urllib.request.OpenerDirector:
    """http(s) only (no file: or ftp: through a redirect), our redirect rule, the guard."""
    return http_only_opener(_Redirects())


def _request(
    method: str,
    url: str,
    credentials: Credentials,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    *,
    read: int = 0,
) -> _Response:
    """One request; an error status becomes WebDavError. ``read``: bytes of body to keep.

    ``credentials.timeout`` bounds the whole request (connect, status, headers, body),
    not one read: a server that drips a byte a second would otherwise hold the
    thread, and the owner's console request, for as long as it likes.
    """
    request = WatchedRequest(url, data=body, method=method, headers=dict(headers or {}))
    request.guard = credentials.guard
    request.label = _host(url)
    watchdog = request.watchdog = Watchdog(credentials.timeout)
    if credentials.username:
        pair = f"{credentials.username}:{credentials.password}".encode()
        request.add_header("Authorization", "Basic " + base64.b64encode(pair).decode("ascii"))
    try:
        with watchdog, _opener().open(request, timeout=credentials.timeout) as response:
            data = response.read(read + 1) if read else b""
            if watchdog.expired:  # the end of the body was the deadline's, not the server's
                raise TimeoutError
            return _Response(response.status, response.headers, data)
    except urllib.error.HTTPError as error:
        error.close()
        raise WebDavError(_explain(error.code, url, str(error.reason)), error.code) from None
    except PrivateAddress as refused:  # an owner's folder that leads inside (the guard)
        raise WebDavError(
            f"calshare does not write to {_host(url)}: it is inside the server's own network "
            f"({refused.address}); ask the operator"
        ) from None
    except (OSError, http.client.HTTPException) as error:  # URLError and TimeoutError too
        if watchdog.expired:  # whatever the shut-down socket made http.client raise
            raise WebDavError(
                f"The WebDAV server at {_host(url)} did not finish answering within "
                f"{credentials.timeout:g} s (setting webdav.timeout_seconds)"
            ) from None
        reason = getattr(error, "reason", error)
        raise WebDavError(f"Cannot reach the WebDAV server at {_host(url)}: {reason}") from None
    except (UnicodeError, ValueError) as error:  # a header or URL http.client cannot send
        raise WebDavError(f"Cannot send this request to {_host(url)}: {error}") from None


def _still_ours(url: str, credentials: Credentials, validator: str | None) -> bool:
    """Read the file back: False if it is not there; WebDavError(412) if it is not ours.

    For a first write (no validator) any existing file is someone else's; for a
    server without ETags the bytes must be the ones calshare wrote last time.
    """
    try:
        got = _request("GET", url, credentials, read=MAX_READ)
    except WebDavError as exc:
        if exc.status in (404, 410):
            return False
        raise
    if validator is None:
        raise _foreign(url)
    if validator == "":  # written before calshare kept validators for such servers
        raise WebDavConflict(
            f"calshare cannot tell whether {url} was changed on the WebDAV server since it "
            "wrote it (the server gives no ETag)",
            foreign=False,
        )
    if len(got.body) > MAX_READ or fingerprint(got.body) != validator:
        raise _changed(url)
    return True


def put(
    url: str,
    body: bytes,
    content_type: str,
    credentials: Credentials,
    validator: str | None,
    *,
    force: bool = False,
) -> str:
    """PUT ``body`` only if the file is still the one calshare wrote; the new validator.

    ``validator`` is what calshare stored for the URL: None if it never wrote it,
    ``""`` if it wrote it but cannot tell (a server without ETags, before this check
    existed). ``force`` replaces whatever is there.
    """
    headers = {"Content-Type": content_type}
    if not force:
        if has_etag(validator):
            headers["If-Match"] = str(validator)
        elif not _still_ours(url, credentials, validator):
            headers["If-None-Match"] = "*"  # still nothing there, as far as the server can tell
    try:
        response = _request("PUT", url, credentials, body, headers)
    except WebDavError as exc:
        if exc.status != CHANGED:
            raise
        raise (_foreign(url) if "If-None-Match" in headers else _changed(url)) from None
    log.info("webdav: PUT %s: %d", url, response.status)
    etag = response.headers.get("ETag")
    # a weak ETag never matches If-Match (RFC 9110 13.1.1: strong comparison)
    return etag if etag and not etag.startswith("W/") else fingerprint(body)


def delete(
    url: str, credentials: Credentials, validator: str | None, *, force: bool = False
) -> None:
    """DELETE the file if it is still the one calshare wrote (any file, with ``force``).

    One already gone is fine: the goal is that it is not there.
    """
    headers = {}
    try:
        if not force:
            if has_etag(validator):
                headers["If-Match"] = str(validator)
            elif not _still_ours(url, credentials, validator):
                return
        response = _request("DELETE", url, credentials, headers=headers)
    except WebDavError as exc:
        if exc.status in (404, 410):
            return
        if exc.status == CHANGED and not isinstance(exc, WebDavConflict):
            raise _changed(url) from None
        raise
    log.info("webdav: DELETE %s: %d", url, response.status)


def collection_kind(url: str, credentials: Credentials) -> str | None:
    """'calendar' or 'address book' if ``url`` is a CalDAV/CardDAV collection, else None.

    PROPFIND Depth 0 on the folder. calshare writes plain files; a CalDAV server
    takes only one event per resource there and answers a bare 400. Any answer that
    is not a readable 207 (no PROPFIND, unreachable, 401) says nothing here: the
    write that follows reports it.
    """
    try:
        response = _request(
            "PROPFIND",
            url,
            credentials,
            _PROPFIND,
            {"Depth": "0", "Content-Type": "application/xml; charset=utf-8"},
            read=MAX_PROPFIND,
        )
    except WebDavError as exc:
        log.info("webdav: PROPFIND %s: %s", url, exc)
        return None
    if response.status != 207 or len(response.body) > MAX_PROPFIND:
        return None
    try:
        # size-capped above; expat refuses entity expansion bombs
        root = ElementTree.fromstring(response.body)
    except ElementTree.ParseError:
        return None
    kinds = {element.tag for element in root.iter() if element.tag in (_CALDAV, _CARDDAV)}
    if _CALDAV in kinds:
        return "calendar"
    if _CARDDAV in kinds:
        return "address book"
    return None
