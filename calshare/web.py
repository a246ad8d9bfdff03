"""The daemon's web side: grant feeds and the answer pages, on aiohttp in the daemon's loop.

Database work runs on one worker thread with its own connection, so the event
loop (which also runs the inbox and the outbox sender) never waits on SQLite.
Every response carries the same security headers, aiohttp's own replies to
malformed requests too (``_Connection``), and none names a software version; feed
secrets and tokens are in paths only, never logged (the access log is off, a bad
request line is not logged, our own log lines carry hash prefixes), and
``Referrer-Policy: no-referrer`` keeps them out of other sites' logs. A client
must send its request headers within ``[http] header_timeout_seconds``. GET and
HEAD never change anything: link scanners open every link in a mail, so only a
person's POST answers an invitation.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import re
from collections.abc import Awaitable, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

from aiohttp import web

from calshare import answers, wording
from calshare.calendars import calendar_by_id
from calshare.clock import Clock
from calshare.config import Settings
from calshare.console import add_routes as add_console_routes
from calshare.errors import StoreError
from calshare.feeds import GONE, FeedMaker, Grant, Version, find_grant, http_date
from calshare.levels import Level
from calshare.links import (
    ANSWER_PAGE_ROUTE,
    FEED_ROUTE,
    PUBLISHED_ICS_ROUTE,
    PUBLISHED_PAGE_ROUTE,
    published_links,
)
from calshare.pages import VIEWS, navigation, view_of
from calshare.publishing import Publication, find_publication, page_html, served_level
from calshare.ranges import FIRST_DAY, LAST_DAY
from calshare.store import Store
from calshare.tokens import log_id, parse_token, token_hash
from calshare.webcontext import CONTEXT, SlowLane, WebContext
from inbox.classify import VerdictKind
from mailer.templates import render

log = logging.getLogger(__name__)

MAX_REQUEST_BYTES = 16 * 1024  # the largest thing we take is a two-field form


def content_security_policy(frame_ancestors: str = "'none'") -> str:
    """No script at all: nothing on our pages can submit a form by itself. Only a
    published page asked for with ``?embed=1`` names the sites that may frame it."""
    return (
        "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; "
        f"form-action 'self'; frame-ancestors {frame_ancestors}; base-uri 'none'"
    )


SECURITY_HEADERS = {
    "Content-Security-Policy": content_security_policy(),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Server": "calshare",  # not aiohttp's default, which names its version
}
# Published links may be cached, but every use asks us first (ETag, Last-Modified):
# after an unpublish no shared cache may go on serving them.
PUBLISHED_CACHE = "no-cache"
T = TypeVar("T")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def _guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Security headers on everything; our errors as short pages, never a stack trace."""
    try:
        response = await handler(request)
    except web.HTTPException as exc:  # 404, 405, 410, 413…: our headers on them too
        response = web.Response(status=exc.status, text=exc.text, headers=exc.headers)
    except StoreError as exc:
        log.warning("web: %s %s: the store is busy or broken: %s", request.method, "-", exc)
        response = web.Response(status=503, text="Busy; try again in a minute.\n")
        response.headers["Retry-After"] = "60"
    except Exception:
        log.exception("web: %s request failed", request.method)
        response = web.Response(status=500, text="Something went wrong on our side.\n")
    _secure(response)
    return response


def _secure(response: web.StreamResponse) -> None:
    # a page that names who may frame it (frame-ancestors) must not be denied by X-Frame-Options
    framed = "frame-ancestors 'none'" not in response.headers.get(
        "Content-Security-Policy", "frame-ancestors 'none'"
    )
    for name, value in SECURITY_HEADERS.items():
        if not (framed and name == "X-Frame-Options"):
            response.headers.setdefault(name, value)


class _Connection(web.RequestHandler):
    """aiohttp's connection protocol, with its replies to unreadable requests made ours.

    aiohttp answers a request it cannot parse itself, before our middleware runs: its
    reply echoes the request line (a feed secret with it), lacks our headers, and its
    log line carries the line and a traceback. Ours: a fixed text, our headers, and one
    log line naming only the kind of error.
    """

    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        log.info("web: refused an unreadable request: %d (%s)", status, type(exc).__name__)
        if request.writer.output_size > 0:  # a reply had begun: all we can do is hang up
            raise ConnectionError("a response was being sent; the connection is dropped")
        text = "Bad request.\n" if status < 500 else "Something went wrong on our side.\n"
        response = web.Response(status=status, text=text)
        _secure(response)
        response.force_close()
        return response


def make_app(context: WebContext) -> web.Application:
    app = web.Application(middlewares=[_guard], client_max_size=MAX_REQUEST_BYTES)
    app[CONTEXT] = context
    app.router.add_get(FEED_ROUTE, feed, allow_head=True)
    app.router.add_get(PUBLISHED_ICS_ROUTE, published_ics, allow_head=True)
    app.router.add_get(PUBLISHED_PAGE_ROUTE, published_page, allow_head=True)
    app.router.add_get(ANSWER_PAGE_ROUTE, answer_page, allow_head=True)
    app.router.add_post(ANSWER_PAGE_ROUTE, answer_post)
    add_console_routes(app)
    return app


# --- grant feeds


async def feed(request: web.Request) -> web.StreamResponse:
    context = request.app[CONTEXT]
    now = context.clock.now()
    # Two indexed reads on the loop's own connection (WAL: readers never wait for the
    # writer), so a conditional GET never leaves the loop; rendering does, below.
    found = find_grant(context.reader.db, request.match_info["secret"])
    if found is None:
        raise web.HTTPNotFound(text="Not found.\n")
    if found == GONE:
        raise web.HTTPGone(text="This calendar is no longer shared with you.\n")
    assert isinstance(found, Grant)
    level = found.served_level(context.settings.policy)
    if level is None:
        raise web.HTTPGone(text="This calendar is no longer shared with you.\n")
    version = context.feeds.version(context.reader, found.calendar_id, level, found.updated_at, now)
    return await _send_feed(
        request, context, version, f"private, max-age={context.settings.http.feed_max_age_seconds}"
    )


async def _send_feed(
    request: web.Request, context: WebContext, version: Version, cache: str
) -> web.StreamResponse:
    """304 from the version alone; else the cached body, gzipped when the client takes it."""
    gzipped = _accepts_gzip(request.headers.get("Accept-Encoding", ""))
    etag = version.etag[:-1] + '-gz"' if gzipped else version.etag
    headers = {
        "ETag": etag,
        "Last-Modified": http_date(version.last_modified),
        "Cache-Control": cache,
        "Vary": "Accept-Encoding",
    }
    if _not_modified(request, version):
        return web.Response(status=304, headers=headers)
    body = context.feeds.cached(version)
    if body is None:
        now = context.clock.now()
        body = await context.run(lambda: context.feeds.body(context.store, version, now))
    headers["Content-Disposition"] = _inline_file(f"{version.calendar_name}.ics")
    if gzipped:
        headers["Content-Encoding"] = "gzip"
    return web.Response(
        body=body.gzipped if gzipped else body.plain,
        content_type="text/calendar",
        charset="utf-8",
        headers=headers,
    )


# --- published calendars


async def published_ics(request: web.Request) -> web.StreamResponse:
    context = request.app[CONTEXT]
    now = context.clock.now()
    found = _published(find_publication(context.reader.db, request.match_info["secret"]))
    level = _publication_level(context, found)
    version = context.feeds.version(context.reader, found.calendar_id, level, found.created_at, now)
    return await _send_feed(request, context, version, PUBLISHED_CACHE)


def _publication_level(context: WebContext, found: Publication) -> Level:
    level = served_level(context.settings, found.level)
    if level is None:
        raise web.HTTPGone(text="Publishing is turned off on this server.\n")
    return level


def _accepts_gzip(header: str) -> bool:
    """Whether Accept-Encoding allows gzip (``gzip;q=0`` says it does not)."""
    for item in header.lower().split(","):
        name, _, params = item.strip().partition(";")
        if name.strip() in ("gzip", "x-gzip"):
            quality = params.strip().removeprefix("q=").strip()
            try:
                return not params.strip().startswith("q=") or float(quality) > 0
            except ValueError:
                return False
    return False


def _inline_file(name: str) -> str:
    """Content-Disposition with an ASCII fallback and the real name (RFC 6266)."""
    fallback = name.encode("ascii", "replace").decode().replace("?", "_").replace('"', "_")
    return f"inline; filename=\"{fallback}\"; filename*=UTF-8''{quote(name)}"


def _published(found: Any) -> Publication:
    if found is None:
        raise web.HTTPNotFound(text="Not found.\n")
    if found == GONE:
        raise web.HTTPGone(text="This calendar is no longer published.\n")
    assert isinstance(found, Publication)
    return found


_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")
_MONTH = re.compile(r"\d{4}-\d{2}")


@dataclass(frozen=True)
class PageQuery:
    """What a published page's query string asks for, checked before any work."""

    view: str
    day: date | None  # None: today
    embed: bool
    by_month: bool  # the older ?month=YYYY-MM links


def page_query(query: Mapping[str, str]) -> PageQuery:
    """``view=month|week|agenda``, ``date=YYYY-MM-DD``, ``embed=1``; ``month=YYYY-MM`` as
    links made before the week view had it. A wrong value is a 400 saying what is right."""
    view = query.get("view", "month")
    if view not in VIEWS:
        raise web.HTTPBadRequest(text=f"view must be one of: {', '.join(VIEWS)}.\n")
    embed = query.get("embed", "0")
    if embed not in ("0", "1"):
        raise web.HTTPBadRequest(text="embed must be 1 (or left out).\n")
    day = None
    text = query.get("date")
    month = query.get("month")
    try:
        if text is not None:
            if not _DAY.fullmatch(text):
                raise ValueError(text)
            day = date.fromisoformat(text)
        elif month:
            if not _MONTH.fullmatch(month):
                raise ValueError(month)
            day = date.fromisoformat(f"{month}-01")
        if day is not None and not FIRST_DAY <= day <= LAST_DAY:
            raise ValueError(day)  # a week or month around it must stay in the calendar
    except ValueError:
        what = (
            "date must be a day like 2026-12-01 (years 1900 to 2199)"
            if text is not None
            else "month must look like 2026-12 (years 1900 to 2199)"
        )
        raise web.HTTPBadRequest(text=f"{what}.\n") from None
    return PageQuery(view, day, embed == "1", text is None and bool(month))


async def published_page(request: web.Request) -> web.StreamResponse:
    context = request.app[CONTEXT]
    settings = context.settings
    secret = request.match_info["secret"]
    now = context.clock.now()
    asked = page_query(request.query)

    def make() -> str | None:
        found = find_publication(context.store.db, secret)
        if not isinstance(found, Publication):
            return found
        calendar = calendar_by_id(context.store.db, found.calendar_id)
        zone = calendar.zoneinfo
        level = _publication_level(context, found)
        start, end = context.feeds.window(now)
        # only days of the feed window (whole months), so a visitor cannot make the
        # daemon expand (and store) decades of a calendar
        first = start.astimezone(zone).date().replace(day=1)
        last = (end - timedelta(days=1)).astimezone(zone).date()
        today = now.astimezone(zone).date()
        day = asked.day or today
        view = view_of(asked.view, day, zone)
        if view.days.last < first or view.days.first > last:  # as pages.navigation links
            shown = (
                f"months from {first:%Y-%m} to {last:%Y-%m}"
                if asked.by_month
                else f"days from {first} to {last}"
            )
            raise web.HTTPNotFound(text=f"This page shows the {shown}.\n")
        lang = settings.mail.lang
        nav = navigation(view, today, first, last, lang, embed=asked.embed)
        shown_links = published_links(settings.http.base_url, secret.lower())
        return page_html(
            context.store,
            settings,
            calendar,
            level,
            view,
            now,
            shown_links.ics,
            shown_links.webcal,
            nav,
            embed=asked.embed,
        )

    page = await context.run(make)
    if page is None or page == GONE:
        _published(page)
    assert isinstance(page, str)
    etag = '"' + hashlib.sha256(page.encode()).hexdigest()[:32] + '"'
    headers = {"ETag": etag, "Cache-Control": PUBLISHED_CACHE}
    origins = settings.http.embed_origins
    if asked.embed and origins:
        headers["Content-Security-Policy"] = content_security_policy(" ".join(origins))
    match = request.headers.get("If-None-Match")
    if match is not None and etag in {tag.strip().removeprefix("W/") for tag in match.split(",")}:
        return web.Response(status=304, headers=headers)
    return web.Response(text=page, content_type="text/html", headers=headers)


def _not_modified(request: web.Request, version: Version) -> bool:
    """RFC 9110: If-None-Match wins; If-Modified-Since only when there is none.

    The gzipped representation's ETag is the plain one with "-gz": either matches.
    """
    match = request.headers.get("If-None-Match")
    if match is not None:
        tags = {tag.strip().removeprefix("W/").replace('-gz"', '"') for tag in match.split(",")}
        return "*" in tags or version.etag in tags
    since = request.if_modified_since
    return since is not None and version.last_modified <= since


# --- answer pages


def csrf_token(key: bytes, token: str) -> str:
    """The form's anti-forgery field: keyed by the installation, bound to this invitation."""
    message = f"answer:{token_hash(token)}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def _page(lang: str, status: int = 200, **context: Any) -> web.Response:
    fields = {
        "lang": lang,
        "footer": wording.text("page.service_footer", lang, domain=context.pop("domain")),
        "form": None,
        "detail": None,
        **context,
    }
    response = web.Response(
        status=status, text=render("web/answer_page.html", **fields), content_type="text/html"
    )
    response.headers["Cache-Control"] = "no-store"
    return response


def _state(store: Store, token: str, now: datetime) -> tuple[Any, str | None]:
    invitation = answers.find_invitation(store.db, token)
    if invitation is None:
        return None, None
    return invitation, answers.why_invalid(invitation, now)


async def answer_page(request: web.Request) -> web.StreamResponse:
    context = request.app[CONTEXT]
    token = parse_token(request.match_info["token"])
    now = context.clock.now()
    settings = context.settings
    domain = settings.mail.domain
    if token is None:
        return _page(settings.mail.lang, 404, domain=domain, **_unknown(settings.mail.lang))
    invitation, why = await context.run(lambda: _state(context.store, token, now))
    if invitation is None:
        return _page(settings.mail.lang, 404, domain=domain, **_unknown(settings.mail.lang))
    lang = invitation.lang
    owner = invitation.owner_name or invitation.owner
    if why is not None:
        return _page(
            lang,
            410,
            domain=domain,
            title=wording.text("page.closed_title", lang),
            body=wording.text(f"invalid_token.{why}", lang)
            + ". "
            + wording.text(f"invalid_token.advice_{why}", lang, owner=owner),
        )
    level = wording.level_words(invitation.level_enum, lang)
    return _page(
        lang,
        domain=domain,
        title=wording.text("invitation.heading", lang),
        body=wording.text(
            "page.intro",
            lang,
            owner=owner,
            owner_who=wording.who(owner, invitation.owner),
            calendar=invitation.calendar,
            invitee=invitation.invitee,
        ),
        detail=wording.text(
            "invitation.level",
            lang,
            level=level,
            explanation=wording.explanation(invitation.level_enum, lang, owner),
        ),
        form={
            "csrf": csrf_token(context.csrf_key, token),
            "accept": wording.text("invitation.accept", lang),
            "decline": wording.text("invitation.decline", lang),
        },
    )


def _unknown(lang: str) -> dict[str, str]:
    return {
        "title": wording.text("page.unknown_title", lang),
        "body": wording.text("page.unknown", lang),
    }


# the page that thanks for an answer that counted, by its outcome (wording keys page.*)
_ANSWERED_PAGE = {answers.Outcome.ACCEPTED: "accepted", answers.Outcome.DECLINED: "declined"}


async def answer_post(request: web.Request) -> web.StreamResponse:
    context = request.app[CONTEXT]
    settings = context.settings
    token = parse_token(request.match_info["token"])
    if token is None:
        return _page(settings.mail.lang, 404, domain=settings.mail.domain, **_unknown("en"))
    try:
        async with asyncio.timeout(settings.http.header_timeout_seconds):  # no slow bodies
            form = await request.post()
    except TimeoutError:
        raise web.HTTPRequestTimeout(text="The form came too slowly.\n") from None
    except (UnicodeDecodeError, LookupError, ValueError):
        raise web.HTTPBadRequest(text="The form could not be read.\n") from None
    given = str(form.get("csrf", "")).encode("utf-8", "replace")
    choice = str(form.get("answer", ""))
    if not hmac.compare_digest(given, csrf_token(context.csrf_key, token).encode()):
        raise web.HTTPForbidden(text="This form has expired; open the link in the mail again.\n")
    if choice not in (VerdictKind.ACCEPT, VerdictKind.DECLINE):
        raise web.HTTPBadRequest(text="Choose Accept or Decline.\n")
    now = context.clock.now()

    def answer() -> tuple[answers.Outcome, Any]:
        invitation = answers.find_invitation(context.store.db, token)
        if invitation is None:
            return answers.Outcome.UNKNOWN_TOKEN, None
        if answers.why_invalid(invitation, now) is not None:
            # a second click, a reload: the page says why, and no mail is sent about it
            return answers.Outcome.CLOSED, invitation
        with context.store.write() as db:  # the page is the invitee's own link
            outcome = answers.answer_invitation(
                db, settings, now, token, choice, by=invitation.invitee, via="web"
            )
        return outcome, invitation

    outcome, invitation = await context.run(answer)
    log.info("web: answer %s for token %s: %s", choice, log_id(token), outcome)
    if invitation is None:
        return _page(settings.mail.lang, 404, domain=settings.mail.domain, **_unknown("en"))
    if outcome != answers.Outcome.CLOSED:
        context.on_mail_queued()
    lang = invitation.lang
    owner = invitation.owner_name or invitation.owner
    page = _ANSWERED_PAGE.get(outcome)
    if page is not None:
        return _page(
            lang,
            domain=settings.mail.domain,
            title=wording.text(f"page.{page}_title", lang),
            body=wording.text(f"page.{page}", lang, owner=owner, calendar=invitation.calendar),
        )
    why = answers.why_invalid(invitation, now) or answers.Closed.REVOKED
    return _page(
        lang,
        410,
        domain=settings.mail.domain,
        title=wording.text("page.closed_title", lang),
        body=wording.text(f"invalid_token.{why}", lang)
        + ". "
        + wording.text(f"invalid_token.advice_{why}", lang, owner=owner),
    )


# --- running it


class WebServer:
    """The HTTP side of ``calshare serve``: started and stopped with the daemon."""

    def __init__(
        self, settings: Settings, db_path: Path, clock: Clock, on_mail_queued: Callable[[], None]
    ) -> None:
        self.worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="web-db")
        self.store = self.worker.submit(Store.open, db_path, same_thread=False).result()
        self.reader = Store.open(db_path, same_thread=False)  # then only the loop's thread
        self.context = WebContext(
            settings,
            clock,
            self.store,
            self.reader,
            self.worker,
            FeedMaker(settings),
            on_mail_queued,
            self.worker.submit(lambda: self.store.uid_key).result(),
            SlowLane(db_path),
        )
        self.runner = web.AppRunner(make_app(self.context), access_log=None, shutdown_timeout=5)
        self.listener: asyncio.Server | None = None
        self.port = 0

    async def start(self, host: str, port: int) -> None:
        await self.runner.setup()
        server, loop = self.runner.server, asyncio.get_running_loop()
        assert server is not None
        # aiohttp closes a connection whose request has not fully arrived when its
        # keep-alive time runs out, counted from the connection's start: the header
        # timeout, against clients that send a byte now and then to hold a connection.
        timeout = self.context.settings.http.header_timeout_seconds
        self.listener = await loop.create_server(
            lambda: _Connection(
                server,
                loop=loop,
                keepalive_timeout=timeout,
                access_log=None,  # type: ignore[arg-type]  # aiohttp's way to turn it off
            ),
            host,
            port,
        )
        self.port = int(self.listener.sockets[0].getsockname()[1])
        log.info("serving HTTP on %s:%d", host, self.port)

    async def stop(self) -> None:
        if self.listener is not None:
            self.listener.close()  # no new connections; cleanup closes the open ones
        await self.runner.cleanup()
        if self.listener is not None:
            await self.listener.wait_closed()
        await asyncio.get_running_loop().run_in_executor(self.worker, self.store.close)
        self.reader.close()
        self.worker.shutdown(wait=True)
        self.context.slow.close()
