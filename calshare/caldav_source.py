"""Read a CalDAV calendar collection, fetching only what changed since last time.

A CalDAV calendar is not one file but a folder of objects (one event series
each), so following it means listing the objects, fetching their data, and next
time asking the server what changed. In order of preference:

1. RFC 6578 ``sync-collection`` with the sync token kept from last time: the
   server names the changed and the removed objects; only those are fetched (one
   ``calendar-multiget``).
2. A server without it, or one that no longer knows our token (RFC 6578 3.2: a
   403/409 with DAV:valid-sync-token): a PROPFIND of every object's ETag (and a
   new token), compared with the ETags kept from last time; again only the
   changed objects are fetched.
3. The first time, or with a state that cannot be read (a reset): the whole
   collection in one ``calendar-query``, flagged ``complete``.

What is kept between calls is ``ObjectChanges.state``, opaque JSON text. The
transport (HTTP, auth negotiation, XML bodies and answers) is the ``caldav``
library's. A collection URL's path may be a secret and so is the password:
messages name only scheme and host, and the password is in no message, log line
or repr.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urljoin, urlsplit

from caldav.davclient import DAVClient
from caldav.elements import cdav, dav
from caldav.lib import error as caldav_error
from lxml import etree  # type: ignore[import-untyped]  # a caldav dependency
from niquests.adapters import BaseAdapter

from calshare.errors import FetchError, ImportFailed, PrivateAddress
from calshare.netguard import Guard
from calshare.sources import redact

log = logging.getLogger(__name__)

STATE_VERSION = 1
MULTIGET_BATCH = 200  # hrefs per calendar-multiget: one request for a usual change set
SYNC_PAGES = 20  # follow-ups of a truncated sync-collection answer (RFC 6578 3.6)
XML_ROOM = 1_000_000  # what an answer may carry beyond max_bytes of calendar data: XML

_CALENDAR = cdav.Calendar.tag  # {urn:ietf:params:xml:ns:caldav}calendar
_COLLECTION = dav.Collection.tag
_VALID_SYNC_TOKEN = dav.ValidSyncToken.tag


class CalDavFetchError(FetchError):
    """A CalDAV collection could not be read; ``cause`` says why in one word.

    ``cause`` uses the words of calshare.sources' fetches, so a live source's
    schedule and its owner's mail treat both alike: ``auth`` (401, 403),
    ``not_found`` (404, 410), ``html`` (not a CalDAV calendar: a web page such as a
    login page, a plain folder, XML that cannot be read), ``redirect_loop``,
    ``timeout``, ``network``, ``too_large``, ``rate_limited`` (429, 503; see
    ``retry_after``), ``http`` (any other answer). ``status`` is the HTTP status
    when there was one.
    """

    def __init__(
        self,
        message: str,
        cause: str,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.cause = cause
        self.status = status
        self.retry_after = retry_after


@dataclass(frozen=True)
class ObjectChanges:
    """What changed in a collection since ``state`` was handed in."""

    changed: dict[str, bytes] = field(repr=False)  # href -> that object's iCalendar bytes
    deleted: frozenset[str]  # hrefs gone since `state`
    state: str = field(repr=False)  # opaque text to store and hand back next time
    complete: bool  # True: `changed` is the whole collection (first sync/reset)
    requests: int  # HTTP requests made (for tests and logs)

    def __repr__(self) -> str:
        # hrefs carry the collection's path, which may be a secret: count them only
        return (
            f"ObjectChanges(changed={len(self.changed)} objects, "
            f"deleted={len(self.deleted)} objects, complete={self.complete}, "
            f"requests={self.requests})"
        )


@dataclass(frozen=True, repr=False)  # hrefs hold the collection's path: a secret
class _State:
    token: str | None  # the server's sync token, None: the server has no sync-collection
    etags: dict[str, str]  # href -> ETag, for the ETag fallback and to skip no-op changes
    auth: str | None  # the auth scheme the server took ("basic", "digest"): no 401 round next
    sync: bool  # False once the server refused sync-collection: go straight to ETags

    def dump(self) -> str:
        return json.dumps(
            {
                "v": STATE_VERSION,
                "token": self.token,
                "etags": self.etags,
                "auth": self.auth,
                "sync": self.sync,
            },
            sort_keys=True,
            separators=(",", ":"),
        )


def _load_state(text: str | None) -> _State | None:
    """The state handed back, or None (start over) for none or one we cannot read."""
    if not text:
        return None
    try:
        raw = json.loads(text)
        if raw.get("v") != STATE_VERSION:
            raise ValueError("another version")
        token = raw["token"]
        etags = raw["etags"]
        auth = raw.get("auth")
        if not (token is None or isinstance(token, str)) or not isinstance(etags, dict):
            raise ValueError("bad fields")
        if auth not in (None, "basic", "digest"):
            auth = None
        return _State(token, {str(k): str(v) for k, v in etags.items()}, auth, bool(raw["sync"]))
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        log.warning("CalDAV sync state unreadable (%s): fetching the whole collection", exc)
        return None


class _GuardedAdapter(BaseAdapter):
    """The session's own adapter, with the guard's check on every connection it uses.

    niquests calls ``on_post_connection`` once a live connection is picked for a
    request (new or pooled), before the request is written; each hop of a redirect
    is a ``send`` of its own, so each is checked. A send whose connection was never
    reported is refused afterwards: a guard that cannot tell fails closed.
    """

    def __init__(self, inner: Any, guard: Guard, label: str) -> None:
        super().__init__()
        self.inner = inner
        self.guard = guard
        self.label = label

    def send(self, request: Any, *args: Any, **kwargs: Any) -> Any:
        after = kwargs.get("on_post_connection")
        checked = False

        def check(info: Any) -> None:
            nonlocal checked
            peer = getattr(info, "destination_address", None)
            self.guard.check(str(peer[0]) if peer else "", self.label)
            checked = True
            if after is not None:
                after(info)

        kwargs["on_post_connection"] = check
        response = self.inner.send(request, *args, **kwargs)
        if not checked:  # niquests did not say where it connected: refused, unread
            response.close()
            raise PrivateAddress(self.label, "an address niquests did not report")
        return response

    def close(self) -> None:
        self.inner.close()


class _Session:
    """One fetch: a caldav DAVClient plus the counting, the deadline and the size caps."""

    def __init__(
        self,
        url: str,
        username: str | None,
        password: str | None,
        *,
        timeout: float,
        max_bytes: int,
        auth: str | None,
        guard: Guard | None = None,
    ) -> None:
        self.url = url if url.endswith("/") else url + "/"
        self.label = redact(url)
        self.timeout = timeout
        self.max_bytes = max_bytes
        self.requests = 0
        self.deadline = time.monotonic() + timeout
        self.client = DAVClient(
            url=self.url,
            username=username,
            password=password,
            auth_type=auth if username is not None and password is not None else None,
            timeout=timeout,  # type: ignore[arg-type]  # niquests takes a float
            enable_rfc6764=False,  # the URL is the collection: no DNS discovery
        )
        hooks: Any = self.client.session.hooks
        hooks["response"].append(self._on_response)
        if guard is not None:
            session: Any = self.client.session
            for prefix in ("http://", "https://"):
                session.mount(
                    prefix, _GuardedAdapter(session.get_adapter(prefix), guard, self.label)
                )
        self.path = _path_of(self.url)

    # -- transport --------------------------------------------------------------------

    def _on_response(self, response: Any, *args: Any, **kwargs: Any) -> Any:
        """Count every HTTP exchange (auth rounds and redirects too) and cap its body.

        niquests calls response hooks before it reads the body, so a server sending
        gigabytes is stopped here, at max_bytes plus room for the XML around it.
        """
        self.requests += 1
        cap = self.max_bytes + XML_ROOM
        length = response.headers.get("Content-Length")
        if length and length.isdigit() and int(length) > cap:
            response.close()
            raise self._too_large()
        chunks: list[bytes] = []
        received = 0
        for chunk in response.iter_content(64 * 1024):
            received += len(chunk)
            if received > cap:
                response.close()
                raise self._too_large()
            if time.monotonic() > self.deadline:
                response.close()
                raise self._timed_out()
            chunks.append(chunk)
        # what niquests itself does once it has read a body: later .content returns it
        response._content = b"".join(chunks)
        response._content_consumed = True
        return response

    def _too_large(self) -> CalDavFetchError:
        return CalDavFetchError(
            f"{self.label} holds more than the import limit of {_size(self.max_bytes)} "
            "(setting import.max_bytes)",
            "too_large",
        )

    def _timed_out(self) -> CalDavFetchError:
        return CalDavFetchError(
            f"Could not fetch {self.label}: no answer within {self.timeout:g} s", "timeout"
        )

    def call(
        self, method: str, url: str, body: bytes, depth: int | None, *, sync: bool = False
    ) -> Any:
        """One request through the caldav client, its failures turned into ours.

        ``sync``: this is the sync-collection REPORT, whose refusals can mean "that token
        is unknown" or "no such report here" rather than "forbidden".
        """
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise self._timed_out()
        self.client.timeout = left  # type: ignore[assignment]  # niquests takes a float
        headers = {"Depth": str(depth)} if depth is not None else {}
        try:
            response = self.client.request(url, method, body.decode("utf-8"), headers)
        except caldav_error.AuthorizationError as exc:
            if sync and exc.status == 403 and _VALID_SYNC_TOKEN in exc.preconditions:
                raise _SyncTokenRefused() from None
            if sync and exc.status == 403 and dav.SupportedReport.tag in exc.preconditions:
                raise _SyncUnsupported() from None
            raise self._refused(exc) from None
        except caldav_error.RateLimitError as exc:
            raise CalDavFetchError(
                f"Could not fetch {self.label}: the server is busy (HTTP {exc.status or 429}); "
                "it asks to try again later",
                "rate_limited",
                exc.status or 429,
                exc.retry_after_seconds,
            ) from None
        except FetchError:  # ours: a cap, the deadline, or the guard's refusal
            raise
        except etree.XMLSyntaxError:
            raise self._not_calendar("its answer is XML that cannot be read") from None
        except (OSError, caldav_error.DAVError, NotImplementedError) as exc:
            # niquests' errors are OSErrors; NotImplementedError: no auth scheme we know
            raise self._network(exc) from None
        return response

    def _refused(self, exc: caldav_error.AuthorizationError) -> CalDavFetchError:
        if exc.status == 401:
            return CalDavFetchError(
                f"{self.label} refused the CalDAV user name or password (HTTP 401): check the "
                "credentials in the configuration (for iCloud and Fastmail, an app password)",
                "auth",
                401,
            )
        return CalDavFetchError(
            f"{self.label} answered 403 Forbidden: the CalDAV account may not read that calendar",
            "auth",
            exc.status or 403,
        )

    def _not_calendar(self, why: str) -> CalDavFetchError:
        return CalDavFetchError(
            f"{self.label} is not a CalDAV calendar collection: {why}; give the URL of the "
            "calendar itself (see CalDAV sources in the operator guide)",
            "html",
        )

    def _network(self, exc: Exception) -> CalDavFetchError:
        if time.monotonic() > self.deadline or _is_timeout(exc):
            return self._timed_out()
        name = type(exc).__name__
        if name == "TooManyRedirects":
            return CalDavFetchError(
                f"Could not fetch {self.label}: it redirects in a loop", "redirect_loop"
            )
        if "refused" in str(exc).lower():
            why = "connection refused"
        elif "name or service not known" in str(exc).lower() or "resolve" in str(exc).lower():
            why = "unknown host"
        elif "ssl" in name.lower() or "certificate" in str(exc).lower():
            why = "TLS failed"
        else:
            why = f"the connection failed ({name})"
        log.info("CalDAV fetch of %s failed: %s", self.label, name)
        return CalDavFetchError(f"Could not fetch {self.label}: {why}", "network")

    def check_status(self, response: Any) -> None:
        """A multistatus (207) is what every request here expects; anything else fails."""
        status = int(response.status)
        if status == 207:
            return
        if status in (404, 410):
            raise CalDavFetchError(
                f"{self.label} has no calendar at that address (HTTP {status}): it may have "
                "been deleted or moved; check the collection URL",
                "not_found",
                status,
            )
        if status == 200 or (300 <= status < 400):
            raise self._not_calendar(
                f"it answered HTTP {status} where CalDAV answers 207 (an .ics address is "
                "a plain URL source, not a CalDAV one)"
            )
        busy = status in (429, 503)
        raise CalDavFetchError(
            f"Could not fetch {self.label}: HTTP {status} {response.reason or ''}".rstrip(),
            "rate_limited" if busy else "http",
            status,
        )

    def auth_scheme(self) -> str | None:
        name = type(self.client.auth).__name__ if self.client.auth is not None else ""
        return {"HTTPBasicAuth": "basic", "HTTPDigestAuth": "digest"}.get(name)

    # -- the three requests -----------------------------------------------------------

    def collection_props(self) -> str | None:
        """PROPFIND Depth 0: is this a calendar, and its current sync token if any."""
        body = _xml(_tree(dav.Propfind(), _tree(dav.Prop(), dav.ResourceType(), dav.SyncToken())))
        response = self.call("PROPFIND", self.url, body, 0)
        self.check_status(response)
        if response.tree is None:
            raise self._not_calendar("it answered a web page, not WebDAV")
        for found in _responses(response.tree):
            if _path_of(urljoin(self.url, found.href)) != self.path:
                continue
            if _CALENDAR not in found.types:
                raise self._not_calendar("it is a folder, not a calendar")
            return found.props.get(dav.SyncToken.tag) or None
        raise self._not_calendar("it does not describe itself")

    def etags(self) -> tuple[str | None, dict[str, tuple[str, str]]]:
        """PROPFIND Depth 1: the collection's sync token (None: it has none), and each
        object's key -> (href as the server spells it, ETag)."""
        prop = _tree(dav.Prop(), dav.ResourceType(), dav.GetEtag(), dav.SyncToken())
        body = _xml(_tree(dav.Propfind(), prop))
        response = self.call("PROPFIND", self.url, body, 1)
        self.check_status(response)
        if response.tree is None:
            raise self._not_calendar("it answered a web page, not WebDAV")
        found: dict[str, tuple[str, str]] = {}
        token: str | None = None
        for item in _responses(response.tree):
            key = _path_of(urljoin(self.url, item.href))
            if key == self.path:
                if _CALENDAR not in item.types:
                    raise self._not_calendar("it is a folder, not a calendar")
                token = item.props.get(dav.SyncToken.tag) or None
                continue
            if _COLLECTION in item.types or item.status == 404:
                continue
            found[key] = (item.href, item.props.get(dav.GetEtag.tag) or "")
        return token, found

    def query_all(self) -> dict[str, tuple[str, bytes]]:
        """calendar-query: every object with its data and ETag, in one request."""
        prop = _tree(dav.Prop(), dav.GetEtag(), cdav.CalendarData())
        every = _tree(cdav.Filter(), cdav.CompFilter("VCALENDAR"))
        body = _xml(_tree(cdav.CalendarQuery(), prop, every))
        response = self.call("REPORT", self.url, body, 1)
        self.check_status(response)
        return self._with_data(response)

    def multiget(self, hrefs: Iterable[str]) -> dict[str, tuple[str, bytes]]:
        """calendar-multiget of the named objects; one missing (gone meanwhile) is left out."""
        wanted = list(hrefs)
        got: dict[str, tuple[str, bytes]] = {}
        for start in range(0, len(wanted), MULTIGET_BATCH):
            batch = wanted[start : start + MULTIGET_BATCH]
            prop = _tree(dav.Prop(), dav.GetEtag(), cdav.CalendarData())
            body = _xml(_tree(cdav.CalendarMultiGet(), prop, *(dav.Href(value=h) for h in batch)))
            response = self.call("REPORT", self.url, body, None)  # RFC 4791 7.9: no Depth
            self.check_status(response)
            got.update(self._with_data(response))
        return got

    def sync(self, token: str) -> tuple[str, dict[str, tuple[str, str]], set[str]]:
        """sync-collection from ``token``: (new token, key -> (href, ETag), deleted keys)."""
        changed: dict[str, tuple[str, str]] = {}
        deleted: set[str] = set()
        for _page in range(SYNC_PAGES):
            body = _xml(
                _tree(
                    dav.SyncCollection(),
                    dav.SyncToken(value=token),
                    dav.SyncLevel(value="1"),
                    _tree(dav.Prop(), dav.GetEtag()),
                )
            )
            response = self.call("REPORT", self.url, body, 0, sync=True)
            status = int(response.status)
            # RFC 6578 3.2 says 403 for an unknown token (the caldav client raised that
            # one); 409 and 412 (Xandikos) say the same, whatever their body names
            if status in (409, 412) or _VALID_SYNC_TOKEN in _error_conditions(response):
                raise _SyncTokenRefused()
            if status in (400, 405, 415, 501):  # no such report here
                raise _SyncUnsupported()
            self.check_status(response)
            if response.tree is None:
                raise self._not_calendar("it answered a web page, not WebDAV")
            new_token = None
            truncated = False
            for item in _responses(response.tree):
                key = _path_of(urljoin(self.url, item.href))
                if key == self.path:  # RFC 6578 3.6: the collection itself, 507 = truncated
                    truncated = truncated or item.status == 507
                    continue
                if item.status == 404:
                    deleted.add(key)
                    changed.pop(key, None)
                else:
                    changed[key] = (item.href, item.props.get(dav.GetEtag.tag) or "")
                    deleted.discard(key)
            for element in response.tree.iter(dav.SyncToken.tag):
                new_token = (element.text or "").strip() or None
            if new_token is None:
                raise self._not_calendar("its sync-collection answer has no sync token")
            if not truncated or new_token == token:
                return new_token, changed, deleted
            token = new_token
        return token, changed, deleted

    def _with_data(self, response: Any) -> dict[str, tuple[str, bytes]]:
        if response.tree is None:
            raise self._not_calendar("it answered a web page, not WebDAV")
        got: dict[str, tuple[str, bytes]] = {}
        for item in _responses(response.tree):
            key = _path_of(urljoin(self.url, item.href))
            data = item.props.get(cdav.CalendarData.tag)
            if key == self.path or item.status == 404 or data is None:
                continue
            got[key] = (item.props.get(dav.GetEtag.tag) or "", data.encode("utf-8"))
        return got


class _SyncTokenRefused(Exception):
    """The server no longer knows our sync token (RFC 6578 3.2): start over."""


class _SyncUnsupported(Exception):
    """The server does not do sync-collection: compare ETags instead."""


@dataclass(frozen=True)
class _Found:
    href: str
    status: int
    types: frozenset[str]
    props: dict[str, str]


def _responses(tree: Any) -> list[_Found]:
    """The DAV:response elements of a multistatus, with the properties found (200)."""
    found: list[_Found] = []
    for response in tree.iter(dav.Response.tag):
        href = response.findtext(dav.Href.tag)
        if href is None:
            continue
        status = _status(response.findtext(dav.Status.tag))
        props: dict[str, str] = {}
        types: set[str] = set()
        for propstat in response.iter(dav.PropStat.tag):
            if _status(propstat.findtext(dav.Status.tag)) != 200:
                continue
            for prop in propstat.iter(dav.Prop.tag):
                for child in prop:
                    text = child.text or ""
                    if child.tag == dav.ResourceType.tag:
                        types.update(str(t.tag) for t in child)
                    elif child.tag == cdav.CalendarData.tag:
                        props[str(child.tag)] = text  # the data as it is
                    else:
                        props[str(child.tag)] = text.strip()
        found.append(_Found(href.strip(), status, frozenset(types), props))
    return found


_STATUS = re.compile(r"HTTP/\S+\s+(\d{3})")


def _status(line: str | None) -> int:
    if line is None:
        return 200
    matched = _STATUS.search(line)
    return int(matched[1]) if matched else 200


def _error_conditions(response: Any) -> list[str]:
    """The pre/postconditions a DAV:error answer names (RFC 4918 16)."""
    tree = response.tree
    if tree is None or tree.tag != "{DAV:}error":
        return []
    return [str(child.tag) for child in tree]


def _is_timeout(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, TimeoutError) or "timeout" in type(seen).__name__.lower():
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _tree(parent: Any, *children: Any) -> Any:
    """A request body element with its children (caldav's own append is typed too narrowly)."""
    for child in children:
        parent.append(child)
    return parent


def _xml(element: Any) -> bytes:
    return bytes(etree.tostring(element.xmlelement(), encoding="utf-8", xml_declaration=True))


def _path_of(url: str) -> str:
    """An object's key: its URL's path, unquoted, so two spellings of one href agree."""
    return unquote(urlsplit(url).path)


def _size(size: int) -> str:
    return f"{size:,} bytes" if size < 1_000_000 else f"{size / 1_000_000:.1f} MB"


def fetch_changes(
    url: str,
    username: str | None,
    password: str | None,
    state: str | None,
    *,
    timeout: float,
    max_bytes: int,
    guard: Guard | None = None,
) -> ObjectChanges:
    """What changed in the CalDAV collection at ``url`` since ``state`` (None: everything).

    ``timeout`` bounds the whole fetch, every request together; ``max_bytes`` the
    calendar data fetched. Raises CalDavFetchError (a FetchError) naming only the
    URL's scheme and host. With a ``guard`` (a source an owner added), every
    connection, redirects' too, is checked before a request is written on it: one to
    an address it refuses is PrivateAddress.
    """
    if not url.lower().startswith(("http://", "https://")):
        raise CalDavFetchError(
            f"A CalDAV source needs an http(s) URL, not {redact(url)}", "invalid"
        )
    known = _load_state(state)
    pinned = known.auth if known else None
    session = _Session(
        url, username, password, timeout=timeout, max_bytes=max_bytes, auth=pinned, guard=guard
    )
    try:
        result = _fetch(session, known)
    except CalDavFetchError as exc:
        if exc.status != 401 or pinned is None:
            raise
        # the scheme remembered may be one the server dropped (Basic -> Digest): negotiate
        # again, once, within what is left of the time
        log.info("CalDAV %s refused %s auth: negotiating again", session.label, pinned)
        session.client.close()
        again = _Session(
            url, username, password, timeout=timeout, max_bytes=max_bytes, auth=None, guard=guard
        )
        again.requests, again.deadline, session = session.requests, session.deadline, again
        result = _fetch(session, known)
    finally:
        session.client.close()
    log.info(
        "CalDAV %s: %d changed, %d deleted%s in %d requests",
        session.label,
        len(result.changed),
        len(result.deleted),
        " (whole collection)" if result.complete else "",
        result.requests,
    )
    return result


def _fetch(session: _Session, known: _State | None) -> ObjectChanges:
    if known is not None and known.sync and known.token:
        try:
            return _by_sync_token(session, known, known.token)
        except _SyncTokenRefused:
            # RFC 6578 3.2: the server no longer knows the token (expired, or reset). The
            # kept ETags still tell what changed; the same PROPFIND brings a new token.
            log.info("CalDAV %s forgot our sync token: comparing ETags", session.label)
            return _by_etags(session, known, sync=True)
        except _SyncUnsupported:
            log.info("CalDAV %s has no sync-collection: comparing ETags", session.label)
            return _by_etags(session, known, sync=False)
    elif known is not None:
        return _by_etags(session, known, sync=known.sync)
    return _everything(session)


def _everything(session: _Session) -> ObjectChanges:
    token = session.collection_props()  # first: changes after it are reported next time
    objects = session.query_all()
    _check_total(session, (data for _, data in objects.values()))
    etags = {k: etag for k, (etag, _) in objects.items()}
    state = _State(token, etags, session.auth_scheme(), token is not None)
    return ObjectChanges(
        changed={key: data for key, (_, data) in sorted(objects.items())},
        deleted=frozenset(),
        state=state.dump(),
        complete=True,
        requests=session.requests,
    )


def _by_sync_token(session: _Session, known: _State, token: str) -> ObjectChanges:
    new_token, reported, deleted = session.sync(token)
    stale = {
        k: href for k, (href, etag) in reported.items() if not etag or known.etags.get(k) != etag
    }
    fetched = session.multiget(stale.values()) if stale else {}
    return _changes(
        session, known, new_token, True, fetched, deleted | (stale.keys() - fetched.keys())
    )


def _by_etags(session: _Session, known: _State, *, sync: bool) -> ObjectChanges:
    token, listed = session.etags()
    stale = {
        k: href for k, (href, etag) in listed.items() if not etag or known.etags.get(k) != etag
    }
    deleted = known.etags.keys() - listed.keys()
    fetched = session.multiget(stale.values()) if stale else {}
    gone = deleted | (stale.keys() - fetched.keys())
    return _changes(session, known, token if sync else None, sync, fetched, gone)


def _changes(
    session: _Session,
    known: _State,
    token: str | None,
    sync: bool,
    fetched: dict[str, tuple[str, bytes]],
    deleted: set[str],
) -> ObjectChanges:
    _check_total(session, (data for _, data in fetched.values()))
    etags = {k: v for k, v in known.etags.items() if k not in deleted}
    etags.update({k: etag for k, (etag, _) in fetched.items()})
    state = _State(token, etags, session.auth_scheme() or known.auth, sync)
    return ObjectChanges(
        changed={key: data for key, (_, data) in sorted(fetched.items())},
        deleted=frozenset(k for k in deleted if k in known.etags),
        state=state.dump(),
        complete=False,
        requests=session.requests,
    )


def _check_total(session: _Session, datas: Iterable[bytes]) -> None:
    if sum(len(data) for data in datas) > session.max_bytes:
        raise session._too_large()


# -- one calendar of many objects ---------------------------------------------------------

_PRODID = b"PRODID:-//calshare//CalDAV collection//EN"


def assemble(objects: Mapping[str, bytes]) -> bytes:
    """One VCALENDAR of all objects (VTIMEZONEs de-duplicated by TZID), in href order.

    Works on lines rather than parsed components: the importer parses the result
    anyway, and a collection of thousands of objects is assembled in milliseconds.
    The objects' own bytes are kept as they are, line endings made CRLF.
    """
    zones: dict[bytes, list[bytes]] = {}
    parts: list[bytes] = []
    for href in sorted(objects):
        for name, lines in _components(objects[href], href):
            if name == b"VTIMEZONE":
                zones.setdefault(_tzid(lines), lines)
            else:
                parts.extend(lines)
    out = [b"BEGIN:VCALENDAR", b"VERSION:2.0", _PRODID]
    for lines in zones.values():
        out.extend(lines)
    out.extend(parts)
    out.append(b"END:VCALENDAR")
    return b"\r\n".join(out) + b"\r\n"


def _components(data: bytes, href: str) -> list[tuple[bytes, list[bytes]]]:
    """The components directly inside an object's VCALENDAR, each as its raw lines."""
    where = href.rsplit("/", 1)[-1] or "an object"
    lines = [line for line in re.split(rb"\r?\n", data) if line.strip()]
    if not lines or lines[0].strip().upper() != b"BEGIN:VCALENDAR":
        raise ImportFailed(f"The CalDAV object {where} is not an iCalendar object")
    found: list[tuple[bytes, list[bytes]]] = []
    depth = 0
    current: list[bytes] = []
    names: list[bytes] = []
    for line in lines:
        head = line.strip().upper()
        folded = line[:1] in (b" ", b"\t")
        if not folded and head.startswith(b"BEGIN:"):
            names.append(head[6:])
            depth += 1
        if depth >= 2:
            current.append(line)
        if not folded and head.startswith(b"END:"):
            if not names or names.pop() != head[4:]:
                raise ImportFailed(f"The CalDAV object {where} has unbalanced BEGIN/END lines")
            depth -= 1
            if depth == 1:
                found.append((head[4:], current))
                current = []
    if depth != 0:
        raise ImportFailed(f"The CalDAV object {where} is cut short")
    return found


def _tzid(lines: list[bytes]) -> bytes:
    for line in lines[1:]:
        if line.upper().startswith(b"BEGIN:"):
            break
        if line.upper().startswith(b"TZID"):
            return line.split(b":", 1)[-1].strip()
    return b""


__all__ = ["CalDavFetchError", "ObjectChanges", "assemble", "fetch_changes"]
