"""The Publish page: links anyone can open, as Outlook's "Publish calendar" dialog.

calshare keeps only a hash of a publication's secret, so the links exist in clear
once: on the page that answers Publish (or Reset links, which is publishing again).
A later visit says "published at LEVEL since DATE" and offers new links instead;
nothing here stores or re-derives the secret. The actions are the CLI's own
(``publishing.publish``, ``unpublish``, ``sync``), always with ``owner=``.

The WebDAV copy is written with the operator's ``[webdav]`` password, so an owner may
name only a folder under one of ``[owners] webdav_folders`` (none: no WebDAV field),
and every WebDAV request of this page goes through the SSRF guard unless the
operator allows private addresses (``owners.private_sources``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aiohttp import web
from babel.dates import format_date

from calshare import publishing, wording
from calshare.calendars import Calendar
from calshare.clock import parse_utc
from calshare.console import base, words
from calshare.errors import CalshareError, StillRunning
from calshare.levels import Level
from calshare.links import ConsolePage, calendar_page_path, calendar_route
from calshare.netguard import allowed_folder, owner_guard
from calshare.publishing import Publication, Published
from calshare.store import Store
from calshare.webcontext import CONTEXT, WebContext

ACTIONS = ("publish", "unpublish", "push")
MAX_URL = 2000  # a WebDAV folder's URL; the form limit is the app's 16 KiB


class FormProblem(ValueError):
    """A field of the form cannot be used; the message is a sentence of the page."""


@dataclass(frozen=True)
class PublishForm:
    action: str
    level: Level
    webdav: str | None


def levels_offered(highest: Level | None) -> list[Level]:
    """The levels the drop-down offers: none above ``policy.publish_max_level``."""
    if highest is None:
        return []
    return [level for level in Level if level.rank <= highest.rank]


def parse_form(
    form: Any, highest: Level | None, lang: str, folders: tuple[str, ...] = ()
) -> PublishForm:
    """The POSTed fields, checked; a level not offered is refused, never quietly capped.

    ``folders``: the operator's ``[owners] webdav_folders``; a WebDAV folder outside
    them (or any, with none) is refused before anything is sent or stored.
    """
    action = str(form.get("action", ""))
    if action not in ACTIONS:
        raise FormProblem(words.text("publish.bad_action", lang))
    if action != "publish":
        return PublishForm(action, Level.FREE_BUSY, None)
    offered = levels_offered(highest)
    if not offered:
        raise FormProblem(words.text("publish.off", lang))
    chosen = str(form.get("level", ""))
    level = next((item for item in offered if item.value == chosen), None)
    if level is None:
        names = ", ".join(words.level(item, lang) for item in offered)
        raise FormProblem(words.text("publish.bad_level", lang, levels=names))
    webdav = str(form.get("webdav", "")).strip() or None
    if webdav is None:
        return PublishForm(action, level, None)
    if not folders:
        raise FormProblem(words.text("publish.no_webdav", lang))
    if len(webdav) > MAX_URL or not webdav.lower().startswith(("http://", "https://")):
        raise FormProblem(words.text("publish.bad_webdav", lang))
    if not allowed_folder(webdav, folders):
        raise FormProblem(words.text("publish.webdav_outside", lang, folders=", ".join(folders)))
    return PublishForm(action, level, webdav)


def _since(created_at: str, calendar: Calendar, lang: str) -> str:
    day = parse_utc(created_at).astimezone(calendar.zoneinfo).date()
    return format_date(day, "long", locale=wording.babel_locale(lang))


def _page(
    visit: base.Visit,
    context: WebContext,
    calendar: Calendar,
    live: Publication | None,
    *,
    made: Published | None = None,
    status: int = 200,
    done: str | None = None,
    error: str | None = None,
    form: PublishForm | None = None,
) -> web.Response:
    lang = visit.lang
    highest = context.settings.policy.publish_max_level
    offered = levels_offered(highest)
    current = form.level if form else (live.level if live else Level.FREE_BUSY)
    folder = form.webdav if form else (live.webdav_url if live else None)
    status_line = None
    if live is not None and made is None:
        status_line = words.text(
            "publish.status",
            lang,
            level=words.level(live.level, lang),
            since=_since(live.created_at, calendar, lang),
        )
    return base.render(
        visit,
        lang,
        "publish.html",
        words.text("publish.title", lang, calendar=calendar.name),
        status=status,
        path=calendar_page_path(calendar.id, ConsolePage.PUBLISH),
        tabs=base.calendar_tabs(calendar, lang, ConsolePage.PUBLISH),
        action=calendar_page_path(calendar.id, ConsolePage.PUBLISH),
        levels=[
            {"value": level.value, "label": words.level(level, lang), "selected": level == current}
            for level in offered
        ],
        webdav=folder or "",
        webdav_folders=context.settings.owners.webdav_folders,
        live=live,
        status_line=status_line,
        made=made,
        made_level=words.level(made.level, lang) if made is not None else "",
        link_fields=_link_fields(made, lang) if made is not None else [],
        capped_line=(
            words.text("publish.capped", lang, level=words.level(made.level, lang))
            if made is not None and made.capped
            else None
        ),
        done=done,
        error=error,
    )


def _link_fields(made: Published, lang: str) -> list[dict[str, str]]:
    """The three links, each for a read-only field with its Copy button."""
    return [
        {
            "id": "link-page",
            "label": words.text("publish.link_html", lang),
            "value": made.links.html,
        },
        {"id": "link-ics", "label": words.text("publish.link_ics", lang), "value": made.links.ics},
        {
            "id": "link-subscribe",
            "label": words.text("publish.link_subscribe", lang),
            "value": made.links.webcal,
        },
    ]


async def publish_get(request: web.Request) -> web.StreamResponse:
    visit = await base.signed_in(request)
    context = request.app[CONTEXT]
    wanted = base.calendar_id(request)

    def load() -> tuple[Calendar, Publication | None]:
        calendar = base.owned_calendar(context, visit, wanted)
        return calendar, publishing.live_publication(context.store.db, calendar.id)

    calendar, live = await context.run(load)
    done = base.done_message(request.query, visit.lang)
    error = None
    if context.settings.policy.publish_max_level is None:
        error = words.text("publish.off", visit.lang)
    return _page(visit, context, calendar, live, done=done, error=error)


async def publish_post(request: web.Request) -> web.StreamResponse:
    """Publish (or again: new links), unpublish, or write the WebDAV copy again.

    Publishing answers with the links themselves (they exist in clear only now);
    the other two go back to the page by GET with a line saying what was done.
    """
    visit = await base.signed_in(request)
    form = await base.read_form(request, visit)
    context = request.app[CONTEXT]
    wanted = base.calendar_id(request)
    settings, clock = context.settings, context.clock
    guard = owner_guard(settings.owners.private_sources)  # the owner's requests: guarded

    # Who owns it is read on the database worker; the rest may wait on the WebDAV
    # server, so it runs on the slow lane (its own connection), one job per owner.
    calendar = await context.run(lambda: base.owned_calendar(context, visit, wanted))

    def act(store: Store) -> web.StreamResponse:
        try:
            chosen = parse_form(
                form, settings.policy.publish_max_level, visit.lang, settings.owners.webdav_folders
            )
        except FormProblem as exc:
            live = publishing.live_publication(store.db, calendar.id)
            return _page(visit, context, calendar, live, status=422, error=str(exc))
        path = calendar_page_path(calendar.id, ConsolePage.PUBLISH)
        try:
            if chosen.action == "unpublish":
                publishing.unpublish(
                    store, settings, clock, calendar.name, owner=visit.owner, guard=guard
                )
                return base.see_other(path, done="unpublished")
            if chosen.action == "push":
                copy = publishing.sync(
                    store, settings, clock, calendar.name, owner=visit.owner, guard=guard
                )
                if not copy.problems:
                    return base.see_other(path, done="webdav_pushed")
                live = publishing.live_publication(store.db, calendar.id)
                problems = " ".join(copy.problems)
                return _page(visit, context, calendar, live, status=409, error=problems)
            made = publishing.publish(
                store,
                settings,
                clock,
                calendar.name,
                chosen.level,
                webdav=chosen.webdav,
                owner=visit.owner,
                guard=guard,
            )
        except CalshareError as exc:
            live = publishing.live_publication(store.db, calendar.id)
            return _page(visit, context, calendar, live, status=409, error=str(exc), form=chosen)
        live = publishing.live_publication(store.db, calendar.id)
        # the links work even when the WebDAV copy failed: show both
        return _page(visit, context, calendar, live, made=made, error=made.webdav_error)

    try:
        answer = await context.run_slow(visit.owner, act)
    except StillRunning:
        live = await context.run(lambda: publishing.live_publication(context.store.db, calendar.id))
        return _page(
            visit, context, calendar, live, status=429, error=words.text("slow.running", visit.lang)
        )
    if isinstance(answer, web.HTTPSeeOther):
        raise answer
    return answer


def register(router: web.UrlDispatcher) -> None:
    route = calendar_route(ConsolePage.PUBLISH)
    router.add_get(route, publish_get)
    router.add_post(route, publish_post)
