"""Put and delete files on a WebDAV server (RFC 4918), with If-Match so we never clobber.

Only the two verbs publishing needs, over urllib: PUT a file (If-Match with the
ETag we got last time, so a file someone else changed is not overwritten) and
DELETE it. Every refusal becomes one WebDavError saying what to do about it.
"""

from __future__ import annotations

import base64
import logging
import urllib.error
import urllib.request
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from calshare.errors import UsageError, WebDavError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str
    timeout: float


def check_collection(url: str) -> str:
    """The collection URL, ending in '/', with no credentials in it (they go in config)."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(f"--webdav {url!r} is not an http(s) URL of a WebDAV folder")
    if parts.username or parts.password:
        raise UsageError(
            "Put the WebDAV user name and password in [webdav] (or CALSHARE_WEBDAV_*), "
            "not in the URL"
        )
    path = parts.path if parts.path.endswith("/") else parts.path + "/"
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


def _explain(status: int, url: str, reason: str) -> str:
    where = _host(url)
    return {
        401: f"The WebDAV server at {where} refused the user name or password "
        "(settings webdav.username and webdav.password)",
        403: f"The WebDAV server at {where} does not allow writing {url}",
        404: f"{url} was not found on the WebDAV server",
        409: f"The folder for {url} does not exist on the WebDAV server (409 Conflict); "
        "create it first",
        412: f"{url} was changed on the WebDAV server since calshare last wrote it; "
        "unpublish and publish again to replace it",
        507: f"The WebDAV server at {where} is out of space (507 Insufficient Storage)",
    }.get(status, f"The WebDAV server at {where} answered {status} {reason} for {url}")


def _host(url: str) -> str:
    return urlsplit(url).netloc


def _request(
    method: str,
    url: str,
    credentials: Credentials,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, str | None]:
    request = urllib.request.Request(url, data=body, method=method, headers=dict(headers or {}))
    if credentials.username:
        pair = f"{credentials.username}:{credentials.password}".encode()
        request.add_header("Authorization", "Basic " + base64.b64encode(pair).decode("ascii"))
    try:
        with urllib.request.urlopen(request, timeout=credentials.timeout) as response:
            return response.status, response.headers.get("ETag")
    except urllib.error.HTTPError as error:
        error.close()
        raise WebDavError(_explain(error.code, url, str(error.reason)), error.code) from None
    except (urllib.error.URLError, OSError, TimeoutError) as error:
        reason = getattr(error, "reason", error)
        raise WebDavError(f"Cannot reach the WebDAV server at {_host(url)}: {reason}") from None
    except (UnicodeError, ValueError) as error:  # a header or URL http.client cannot send
        raise WebDavError(f"Cannot send this request to {_host(url)}: {error}") from None


def put(
    url: str, body: bytes, content_type: str, credentials: Credentials, etag: str | None
) -> str | None:
    """PUT ``body``; with ``etag``, only if the file is still the one we wrote. New ETag."""
    headers = {"Content-Type": content_type}
    if etag:
        headers["If-Match"] = etag
    status, new_etag = _request("PUT", url, credentials, body, headers)
    log.info("webdav: PUT %s: %d", url, status)
    return new_etag


def delete(url: str, credentials: Credentials, etag: str | None) -> None:
    """DELETE the file; one already gone is fine (the goal is that it is not there)."""
    headers = {"If-Match": etag} if etag else {}
    try:
        status, _ = _request("DELETE", url, credentials, headers=headers)
    except WebDavError as exc:
        if exc.status in (404, 410):
            return
        raise
    log.info("webdav: DELETE %s: %d", url, status)
