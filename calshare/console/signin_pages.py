"""Signing in and out of the owner console: the address form, the mail's landing
page with its button, and sign-out.

No page here has a session to bind its form to, so each binds it to a pre-session
cookie instead: a random value set by the GET (``HttpOnly``, ``SameSite=Lax``), and a
form field that is an HMAC of it under the installation's key. Another site can
neither read the cookie nor compute the field, and a browser does not send a Lax
cookie with a cross-site POST: so no other site can make a visitor's browser ask for
mail (beyond what the rate limits allow anyone), nor sign a visitor in as someone
else (login CSRF: the landing page's field also binds the link).

A GET of the link never signs in: mail scanners fetch links. Its button does, and
starts a new session (the browser's old one, if any, is ended: rotation).
"""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Any
from urllib.parse import urlencode

from aiohttp import web
from multidict import MultiDictProxy

from calshare import sessions, signin
from calshare.console import base, words
from calshare.errors import AddressError
from calshare.links import (
    CALENDARS_ROUTE,
    SIGNIN_LINK_ROUTE,
    SIGNIN_ROUTE,
    SIGNOUT_ROUTE,
    signin_link_path,
)
from calshare.owners import may_sign_in
from calshare.tokens import log_id, parse_token, token_hash
from calshare.webcontext import CONTEXT, WebContext

log = logging.getLogger(__name__)

PRESESSION_COOKIE = "calshare_presession"
# Long enough to type an address or come back from the mail; the link itself lasts 15.
PRESESSION_SECONDS = 30 * 60
_PRESESSION = re.compile(r"[0-9a-f]{32}")
# How much of a refused address the page shows back.
SHOWN_ADDRESS = 100


def _secure(context: WebContext) -> bool:
    return context.settings.http.base_url.startswith("https://")


def _presession(request: web.Request) -> tuple[str, bool]:
    """The browser's pre-session value, and whether it is new (to be set as a cookie)."""
    value = request.cookies.get(PRESESSION_COOKIE, "")
    if _PRESESSION.fullmatch(value):
        return value, False
    return signin.new_presession(), True


def _set_presession(response: web.StreamResponse, context: WebContext, value: str) -> None:
    response.set_cookie(
        PRESESSION_COOKIE,
        value,
        max_age=PRESESSION_SECONDS,
        path=SIGNIN_ROUTE,
        httponly=True,
        samesite="Lax",
        secure=_secure(context),
    )


def _with_query(path: str, **query: str) -> str:
    return f"{path}?{urlencode(query)}" if query else path


async def _read_post(request: web.Request, context: WebContext) -> MultiDictProxy[Any]:
    """The form, read within the header timeout; an unreadable one is a 400."""
    try:
        async with asyncio.timeout(context.settings.http.header_timeout_seconds):
            return await request.post()
    except TimeoutError:
        raise web.HTTPRequestTimeout(text="The form came too slowly.\n") from None
    except (UnicodeDecodeError, LookupError, ValueError):
        raise web.HTTPBadRequest(text="The form could not be read.\n") from None


# --- the address form


def _signin_page(
    request: web.Request,
    context: WebContext,
    lang: str,
    next_path: str,
    *,
    status: int = 200,
    address: str = "",
    done: str | None = None,
    error: str | None = None,
    sent: bool = False,
) -> web.Response:
    presession, new = _presession(request)
    response = base.render(
        None,
        lang,
        "signin.html",
        words.text("signin.title", lang),
        status=status,
        path=_with_query(SIGNIN_ROUTE, next=next_path),
        action=SIGNIN_ROUTE,
        form_csrf=signin.form_key(context.csrf_key, "ask", presession),
        next=next_path,
        address=address,
        sent=sent,
        done=done,
        error=error,
    )
    if new:
        _set_presession(response, context, presession)
    return response


def _live_session(request: web.Request, context: WebContext) -> sessions.Session | None:
    cookie = request.cookies.get(sessions.COOKIE)
    return sessions.find(context.reader.db, cookie, context.clock.now(), context.settings.owners)


async def signin_form(request: web.Request) -> web.StreamResponse:
    """The address form; a browser already signed in goes on to where it was going."""
    context = request.app[CONTEXT]
    next_path = base.local_path(request.query.get("next"))
    if _live_session(request, context) is not None:
        return web.Response(status=303, headers={"Location": next_path})
    lang = base.choose_lang(request, context.settings.mail.lang)
    return _signin_page(
        request, context, lang, next_path, done=base.done_message(request.query, lang)
    )


async def signin_ask(request: web.Request) -> web.StreamResponse:
    """Ask for a link: the same page for every outcome (sent, unknown, over a limit)."""
    context = request.app[CONTEXT]
    lang = base.choose_lang(request, context.settings.mail.lang)
    form = await _read_post(request, context)
    next_path = base.local_path(str(form.get("next", "")))
    presession = request.cookies.get(PRESESSION_COOKIE, "")
    if not (
        _PRESESSION.fullmatch(presession)
        and signin.form_ok(context.csrf_key, str(form.get("csrf", "")), "ask", presession)
    ):
        log.info("signin: refused an ask without its pre-session cookie or field")
        error = words.text("signin.form_expired", lang)
        return _signin_page(request, context, lang, next_path, status=403, error=error)
    typed = str(form.get("address", "")).strip()
    client = signin.client_key(context.csrf_key, request.remote)

    def ask() -> signin.Asked:
        return signin.request_link(
            context.store, context.settings, context.clock, typed, client,
            lang=lang, next_path=None if next_path == CALENDARS_ROUTE else next_path,
        )  # fmt: skip

    try:
        asked = await context.run(ask)
    except AddressError:
        shown = typed[:SHOWN_ADDRESS]
        error = words.text("signin.bad_address", lang, address=shown)
        return _signin_page(
            request, context, lang, next_path, status=422, address=shown, error=error
        )
    log.info("signin: an ask for a link: %s", asked.outcome)
    context.on_mail_queued()  # in every case: the page must not take longer for a sent mail
    done = words.text("signin.sent", lang, address=asked.address)
    return _signin_page(request, context, lang, next_path, done=done, sent=True)


# --- the mail's link


def _link_csrf(context: WebContext, token: str, presession: str) -> str:
    return signin.form_key(context.csrf_key, "link", token_hash(token), presession)


def _gone(context: WebContext, lang: str, token: str | None) -> web.Response:
    """The page of a link that does not sign in (unknown, used, expired, or no token)."""
    log.info("signin: link %s is unknown, used or expired", log_id(token) if token else "-")
    return base.render(
        None,
        lang,
        "signin_link.html",
        words.text("signin.link_gone_title", lang),
        status=410,
        path=SIGNIN_ROUTE,
        address=None,
        gone=True,
        ask_href=SIGNIN_ROUTE,
    )


async def link_page(request: web.Request) -> web.StreamResponse:
    """The landing page: a button that signs in. Reads only; sets the pre-session cookie."""
    context = request.app[CONTEXT]
    lang = base.choose_lang(request, context.settings.mail.lang)
    token = parse_token(request.match_info["token"])
    if token is None:
        return _gone(context, lang, None)
    # an indexed read on the loop's own connection, as base.signed_in's
    address = signin.link_state(context.reader.db, token, context.clock.now())
    if address is None:
        return _gone(context, lang, token)
    presession, new = _presession(request)
    next_path = base.local_path(request.query.get("next"))
    response = base.render(
        None,
        lang,
        "signin_link.html",
        words.text("signin.link_title", lang),
        path=_with_query(signin_link_path(token), next=next_path),
        action=signin_link_path(token),
        form_csrf=_link_csrf(context, token, presession),
        next=next_path,
        address=address,
        gone=False,
        ask_href=SIGNIN_ROUTE,
    )
    if new:
        _set_presession(response, context, presession)
    return response


async def link_signin(request: web.Request) -> web.StreamResponse:
    """The button: use the link, start a session (ending the browser's old one), go on."""
    context = request.app[CONTEXT]
    lang = base.choose_lang(request, context.settings.mail.lang)
    token = parse_token(request.match_info["token"]) or ""
    form = await _read_post(request, context)
    presession = request.cookies.get(PRESESSION_COOKIE, "")
    if not (
        token
        and _PRESESSION.fullmatch(presession)
        and signin.form_ok(
            context.csrf_key, str(form.get("csrf", "")), "link", token_hash(token), presession
        )
    ):
        log.info("signin: refused a sign-in without its pre-session cookie or field")
        return base.render(
            None,
            lang,
            "signin_link.html",
            words.text("signin.link_title", lang),
            status=403,
            path=SIGNIN_ROUTE,
            address=None,
            gone=False,
            ask_href=SIGNIN_ROUTE,
            error=words.text("signin.link_expired_form", lang),
        )
    now = context.clock.now()
    replacing = request.cookies.get(sessions.COOKIE)

    def use() -> str | None:
        with context.store.write() as db:
            email = signin.use_link(db, token, now)
            # who may sign in is asked again: the operator may have narrowed [owners] allow
            # since the link was sent (the link is used up either way)
            if email is None or not may_sign_in(db, context.settings, email):
                return None
            return sessions.start(db, email, now, replacing=replacing)

    secret = await context.run(use)
    if secret is None:
        return _gone(context, lang, token)
    log.info("signin: link %s used; a session started", log_id(token))
    # Not web.HTTPSeeOther: the app's middleware rebuilds raised responses without cookies.
    response = web.Response(
        status=303, headers={"Location": base.local_path(str(form.get("next", "")))}
    )
    response.set_cookie(
        sessions.COOKIE,
        secret,
        path="/",
        httponly=True,
        samesite="Lax",
        secure=_secure(context),
    )  # no Max-Age: a browser-session cookie; the server enforces the timeouts
    response.del_cookie(PRESESSION_COOKIE, path=SIGNIN_ROUTE)
    base.secure_page(response)
    return response


# --- sign-out


async def signout(request: web.Request) -> web.StreamResponse:
    """End the session on the server, forget the cookie, and say so on the sign-in page."""
    context = request.app[CONTEXT]
    gone = web.Response(
        status=303, headers={"Location": _with_query(SIGNIN_ROUTE, done="signed_out")}
    )
    if _live_session(request, context) is None:
        # nothing to end (ended, timed out, or never signed in): the sign-in page
        gone.headers["Location"] = SIGNIN_ROUTE
        gone.del_cookie(sessions.COOKIE, path="/")
        return gone
    visit = await base.signed_in(request)
    await base.read_form(request, visit)  # 403 for a forged or missing field
    cookie = request.cookies.get(sessions.COOKIE)
    now = context.clock.now()

    def end() -> bool:
        with context.store.write() as db:
            return sessions.end(db, cookie, now)

    await context.run(end)
    gone.del_cookie(sessions.COOKIE, path="/")
    base.secure_page(gone)
    return gone


def register(router: web.UrlDispatcher) -> None:
    router.add_get(SIGNIN_ROUTE, signin_form)
    router.add_post(SIGNIN_ROUTE, signin_ask)
    router.add_get(SIGNIN_LINK_ROUTE, link_page)
    router.add_post(SIGNIN_LINK_ROUTE, link_signin)
    router.add_post(SIGNOUT_ROUTE, signout)
