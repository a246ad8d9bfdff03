"""What every console page shares: who is signed in, the forms' anti-forgery check,
the owner's own calendar (or a 404), the language, and the layout.

Owners are tenants: a page reaches a calendar only through ``owned_calendar``, which
answers 404 alike for a calendar that does not exist and one that is someone else's,
so ids cannot be probed. Every POST passes ``read_form``, which checks the session's
anti-forgery field before the handler sees a single field. Only GETs are redirected
to the sign-in page; a POST without a live session is refused and changes nothing.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

from aiohttp import web
from multidict import MultiDictProxy

from calshare import sessions
from calshare.calendars import Calendar, calendar_by_id
from calshare.console import words
from calshare.errors import UnknownCalendar
from calshare.links import (
    ADD_CALENDAR_ROUTE,
    CALENDARS_ROUTE,
    CONSOLE_ASSET_ROUTE,
    LANGUAGE_ROUTE,
    SIGNIN_ROUTE,
    SIGNOUT_ROUTE,
    ConsolePage,
    calendar_page_path,
)
from calshare.pages import render_page
from calshare.sessions import Session
from calshare.webcontext import CONTEXT, WebContext
from mailer.templates import template_dir

log = logging.getLogger(__name__)

LANG_COOKIE = "calshare_lang"
# Console pages may run our own script (the copy buttons) and read our stylesheet;
# nothing from elsewhere, and no inline script.
CSP = (
    "default-src 'none'; style-src 'self' 'unsafe-inline'; script-src 'self'; "
    "img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
ASSETS = {"console.css": "text/css", "console.js": "text/javascript"}


@dataclass(frozen=True)
class Visit:
    """A signed-in owner's request: whose it is, in which language, the form field."""

    session: Session
    owner: str  # normalised address: every query of a page filters by it
    lang: str
    csrf: str


def choose_lang(request: web.Request, default: str) -> str:
    """The switch's cookie, else the browser's Accept-Language, else the server's."""
    chosen = request.cookies.get(LANG_COOKIE)
    if chosen in words.LANGUAGES:
        return chosen
    return from_accept_language(request.headers.get("Accept-Language", ""), default)


def from_accept_language(header: str, default: str) -> str:
    """The best of our languages by q-value; Norwegian in any spelling (no, nb, nn) is nb."""
    best, best_q = default, 0.0
    for item in header.split(","):
        tag, _, params = item.strip().partition(";")
        primary = tag.strip().lower().split("-")[0]
        lang = "nb" if primary in ("nb", "no", "nn") else primary
        if lang not in words.LANGUAGES:
            continue
        quality = 1.0
        params = params.strip()
        if params.startswith("q="):
            try:
                quality = float(params[2:])
            except ValueError:
                continue
        if quality > best_q:
            best, best_q = lang, quality
    return best


def local_path(target: str | None, fallback: str = CALENDARS_ROUTE) -> str:
    """``target`` if it is a path on this site (``/x``), else ``fallback``: no open redirect.

    Browsers drop tabs and line breaks from a URL and read a backslash as a slash, so
    a slash, a tab and ``/evil.example`` would take them to another site: any control
    character, space
    or backslash refuses the target, and so does anything ``urlsplit`` sees a host in.
    """
    if not target or not target.startswith("/") or target.startswith("//"):
        return fallback
    if any(char <= " " or char in "\\\x7f" for char in target):
        return fallback
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return fallback
    return target


async def signed_in(request: web.Request) -> Visit:
    """The visit of the owner whose live session the cookie names.

    None: a GET goes to the sign-in page (and back here after), anything else is refused.
    """
    context = request.app[CONTEXT]
    now = context.clock.now()
    cookie = request.cookies.get(sessions.COOKIE)
    # an indexed read on the loop's own connection; the rare touch goes to the worker
    session = sessions.find(context.reader.db, cookie, now, context.settings.owners)
    if session is None:
        if request.method in ("GET", "HEAD"):
            raise web.HTTPSeeOther(f"{SIGNIN_ROUTE}?{urlencode({'next': request.path_qs})}")
        raise web.HTTPForbidden(
            text="Your sign-in has ended; nothing was changed. Sign in again.\n"
        )
    if sessions.needs_touch(session, now):
        found = session

        def touch() -> None:
            with context.store.write() as db:
                sessions.touch(db, found, now)

        await context.run(touch)
    lang = choose_lang(request, context.settings.mail.lang)
    return Visit(session, session.email, lang, sessions.csrf_token(context.csrf_key, session))


async def read_form(
    request: web.Request, visit: Visit, *, timeout: float | None = None
) -> MultiDictProxy[Any]:
    """The POSTed form, after its anti-forgery field was checked (403, nothing read further)."""
    context = request.app[CONTEXT]
    try:
        async with asyncio.timeout(timeout or context.settings.http.header_timeout_seconds):
            form = await request.post()
    except TimeoutError:
        raise web.HTTPRequestTimeout(text="The form came too slowly.\n") from None
    except (UnicodeDecodeError, LookupError, ValueError):
        raise web.HTTPBadRequest(text="The form could not be read.\n") from None
    if not sessions.csrf_ok(context.csrf_key, visit.session, str(form.get("csrf", ""))):
        log.info("console: refused a form with a wrong anti-forgery field")
        raise web.HTTPForbidden(
            text="This form has expired or did not come from calshare; nothing was changed.\n"
        )
    return form


def owned_calendar(context: WebContext, visit: Visit, calendar_id: int) -> Calendar:
    """The visitor's own calendar; 404 alike for a missing one and someone else's.

    Runs on the worker thread (``context.run``), like every page's reads and writes.
    """
    try:
        calendar = calendar_by_id(context.store.db, calendar_id)
    except UnknownCalendar:
        raise web.HTTPNotFound(text="Not found.\n") from None
    if calendar.owner != visit.owner:
        raise web.HTTPNotFound(text="Not found.\n")
    return calendar


def calendar_id(request: web.Request) -> int:
    return int(request.match_info["calendar_id"])


def calendar_tabs(
    calendar: Calendar, lang: str, current: ConsolePage | None
) -> list[dict[str, Any]]:
    """One calendar's pages, in the order of Outlook's calendar menu."""
    return [
        {
            "href": calendar_page_path(calendar.id, page),
            "label": words.text(f"tab.{page.value}", lang),
            "current": page == current,
        }
        for page in ConsolePage
    ]


def render(
    visit: Visit | None,
    lang: str,
    template: str,
    title: str,
    *,
    status: int = 200,
    path: str = CALENDARS_ROUTE,
    **fields: Any,
) -> web.Response:
    """A console page in the shared layout (``templates/web/console/_layout.html``).

    ``t(key, **fields)`` in a template says a sentence of ``console.words`` in the page's
    language; ``path`` is the page's own, for the language switch to come back to.
    """
    other = "nb" if lang == "en" else "en"

    def say(key: str, **values: Any) -> str:
        return words.text(key, lang, **values)

    html = render_page(
        f"web/console/{template}",
        t=say,
        lang=lang,
        title=title,
        visit=visit,
        csrf=visit.csrf if visit else "",
        owner=visit.owner if visit else None,
        switch_href=f"{LANGUAGE_ROUTE}?{urlencode({'lang': other, 'next': path})}",
        switch_label=words.text("language.switch", other),
        switch_lang=other,
        calendars_href=CALENDARS_ROUTE,
        add_href=ADD_CALENDAR_ROUTE,
        signout_href=SIGNOUT_ROUTE,
        **fields,
    )
    response = web.Response(status=status, text=html, content_type="text/html")
    secure_page(response)
    return response


def secure_page(response: web.StreamResponse) -> None:
    """Console pages hold secrets (links, addresses) and forms: never cached, our CSP."""
    response.headers["Cache-Control"] = "no-store"
    response.headers["Content-Security-Policy"] = CSP


def see_other(path: str, **query: str) -> web.HTTPSeeOther:
    """After a POST that did something: the page again by GET (a reload repeats nothing)."""
    return web.HTTPSeeOther(path + (f"?{urlencode(query)}" if query else ""))


def done_message(query: Mapping[str, str], lang: str) -> str | None:
    """The line that says what the last POST did (``?done=KEY``), from an allow-list of
    sentences: nothing a visitor typed is echoed from a URL."""
    key = query.get("done", "")
    return words.text(f"done.{key}", lang) if words.has(f"done.{key}", lang) else None


# --- routes of the base: the language switch and the two static files


async def language(request: web.Request) -> web.StreamResponse:
    """Set the language cookie and go back (a GET changes only the browser's cookie)."""
    lang = request.query.get("lang", "")
    if lang not in words.LANGUAGES:
        raise web.HTTPBadRequest(text=f"lang must be one of: {', '.join(words.LANGUAGES)}.\n")
    response = web.Response(status=303, headers={"Location": local_path(request.query.get("next"))})
    context = request.app[CONTEXT]
    response.set_cookie(
        LANG_COOKIE,
        lang,
        max_age=365 * 86400,
        path="/",
        httponly=True,
        samesite="Lax",
        secure=context.settings.http.base_url.startswith("https://"),
    )
    return response


def _asset_dir() -> Path:
    return template_dir() / "web" / "console"


async def asset(request: web.Request) -> web.StreamResponse:
    name = request.match_info["name"]
    if name not in ASSETS:
        raise web.HTTPNotFound(text="Not found.\n")
    body = (_asset_dir() / name).read_bytes()
    response = web.Response(body=body, content_type=ASSETS[name])
    response.headers["Cache-Control"] = "public, max-age=3600"
    return response


async def home(request: web.Request) -> web.StreamResponse:
    raise web.HTTPSeeOther(CALENDARS_ROUTE)


def register(router: web.UrlDispatcher) -> None:
    router.add_get("/", home, allow_head=True)
    router.add_get(LANGUAGE_ROUTE, language)
    router.add_get(CONSOLE_ASSET_ROUTE, asset, allow_head=True)
